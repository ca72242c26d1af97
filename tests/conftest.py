import os
from pathlib import Path

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def small_rewrite():
    """A small markov_rewrite config exercising no-ops and mixed occurrences."""
    return dict(
        seed=7, num_rules=40, num_examples=3000, test_rules=30, test_examples=700, seen_test_examples=300,
        input_len=24, pattern_len=(2, 4), replacement_len=(1, 4), noop_fraction=0.3, occurrences=[1, 2, 3],
    )


BENCHMARKS = SHARED / "data" / "benchmarks"


@pytest.fixture(scope="session")
def benchmarks_dir():
    if not (BENCHMARKS / "HumanEvalPlus.jsonl.gz").is_file():
        pytest.skip("benchmark test data (../shared/data/benchmarks) is not present")
    return BENCHMARKS


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A private divplugin cache for the session (expected outputs, code results)."""
    path = tmp_path_factory.mktemp("divplugin-cache")
    os.environ["DIVPLUGIN_CACHE"] = str(path)
    return path
