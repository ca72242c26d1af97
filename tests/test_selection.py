"""`divplugin select`: exactly N distinct rows, deterministic by seed on any worker count, named
errors, and on a long-tailed pool of rewrite rules the diverse methods cover more rules."""

import collections
import json
import subprocess
import sys

import numpy as np
import pytest

from divplugin.diversity.select import (
    METHODS,
    SelectSettings,
    capped_quota,
    choose,
    facility_location,
    kcenter,
    random_rows,
    split_by_size,
)
from divplugin.diversity.subset import select_dataset
from divplugin.errors import ConfigError


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """A long-tailed pool: 200 rules, 6,000 examples, power-law counts (alpha 0.1)."""
    out = tmp_path_factory.mktemp("pool") / "pool"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "generate",
            "--preset",
            "cpu-small",
            "--num-rules",
            "200",
            "--num-examples",
            "6000",
            "--test-examples",
            "200",
            "--seen-test-examples",
            "100",
            "--allocation",
            "power",
            "--alpha",
            "0.1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out / "train.jsonl").open()]
    return out, rows


def _texts(rows):
    return [r["instruction"] + "\n" + r["input"] for r in rows]


@pytest.mark.parametrize("method", METHODS)
def test_exactly_n_distinct_rows_deterministic_on_any_worker_count(method, pool):
    _, rows = pool
    texts = _texts(rows)
    groups = [r["metadata"]["rule_id"] for r in rows] if method == "balanced" else None  # it needs a field
    settings = SelectSettings(method=method, seed=3, fold_size=1500)
    one = choose(texts, 700, settings, groups=groups, workers=1)
    assert len(one) == 700 and len(set(one.tolist())) == 700 and np.all(np.diff(one) > 0)
    assert np.array_equal(one, choose(texts, 700, settings, groups=groups, workers=3))
    other = choose(texts, 700, SelectSettings(method=method, seed=4, fold_size=1500), groups=groups, workers=1)
    assert not np.array_equal(one, other)  # the seed matters


def test_diverse_methods_cover_more_rules_than_random_on_a_long_tail(pool):
    """What the labels show after the fact (the selection never sees them): k-center spreads
    the budget over more distinct rules than a random draw does."""
    _, rows = pool
    texts, rules = _texts(rows), [r["metadata"]["rule_id"] for r in rows]
    covered = {}
    for method in ("random", "kcenter"):
        idx = choose(texts, 600, SelectSettings(method=method, seed=0))
        covered[method] = len({rules[i] for i in idx})
    assert covered["kcenter"] > 1.3 * covered["random"], covered


def test_kcenter_is_the_farthest_point_greedy():
    """The chosen set equals a plain re-statement of greedy k-center from the same first row
    (each step: the row whose nearest chosen row is farthest, first row on ties)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    first = int(np.random.default_rng([7, 12]).integers(60))
    chosen = [first]
    while len(chosen) < 12:
        d = [min(1.0 - float(x[i] @ x[j]) for j in chosen) if i not in chosen else -1.0 for i in range(60)]
        chosen.append(int(np.argmax(d)))
    assert kcenter(x, 12, seed=7).tolist() == sorted(chosen)
    dup = np.repeat(x[:3], 2, axis=0)  # every row twice: a budget of all of them takes each once
    assert kcenter(dup, 6, seed=0).tolist() == [0, 1, 2, 3, 4, 5]


def test_facility_location_picks_a_representative_per_cluster():
    rng = np.random.default_rng(0)
    centres = np.eye(4, dtype=np.float32)
    x = np.concatenate([c + 0.05 * rng.standard_normal((30, 4)).astype(np.float32) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    chosen = facility_location(x, 4, neighbours=10)
    assert sorted(int(i) // 30 for i in chosen) == [0, 1, 2, 3]


def test_random_is_stratified_exactly():
    groups = ["a"] * 700 + ["b"] * 200 + ["c"] * 100
    idx = random_rows(1000, 100, seed=0, groups=groups)
    assert collections.Counter(groups[i] for i in idx) == {"a": 70, "b": 20, "c": 10}
    assert split_by_size(10, [1, 1, 1]) == [4, 3, 3] and sum(split_by_size(7, [5, 3, 2])) == 7


def test_balanced_caps_every_group_alike(pool):
    """Each group gives min(its size, one cap), the cap as large as the budget allows; the
    rows still missing go one each to the groups above the cap, in sorted group order."""
    groups = ["a"] * 700 + ["b"] * 200 + ["c"] * 100 + ["d"] * 5
    idx = choose(["x"] * len(groups), 300, SelectSettings(method="balanced"), groups=groups)
    assert collections.Counter(groups[i] for i in idx) == {"a": 99, "b": 98, "c": 98, "d": 5}
    assert capped_quota(9, [3, 3, 3]) == [3, 3, 3] and capped_quota(4, [1, 10, 10]) == [1, 2, 1]
    with pytest.raises(ValueError):
        capped_quota(10, [3, 3, 3])
    _, rows = pool  # on the long tail: every rule, and a flatter count than a random draw's
    rules = [r["metadata"]["rule_id"] for r in rows]
    counts = {
        m: collections.Counter(
            rules[i]
            for i in choose(
                _texts(rows), 600, SelectSettings(method=m, seed=1), groups=rules if m == "balanced" else None
            )
        )
        for m in ("random", "balanced")
    }
    assert len(counts["balanced"]) == len(set(rules)) > len(counts["random"])
    assert max(counts["balanced"].values()) < max(counts["random"].values())


def test_bad_input_is_named(pool, tmp_path):
    folder, rows = pool
    texts = _texts(rows)
    with pytest.raises(ConfigError, match=r"budget: must be between 1 and the 6,000 rows"):
        choose(texts, 6001, SelectSettings())
    with pytest.raises(ConfigError, match=r"method: unknown method 'k-center'; did you mean 'kcenter'"):
        choose(texts, 10, SelectSettings(method="k-center"))
    with pytest.raises(ConfigError, match=r"embedder: unknown embedder 'char'; did you mean 'chars'"):
        choose(texts, 10, SelectSettings(embedder="char"))
    with pytest.raises(ConfigError, match=r"row 0 has no field 'instrution'"):
        select_dataset(str(folder), tmp_path / "x", 10, SelectSettings(), fields=["instrution"])
    with pytest.raises(ConfigError, match=r"by: grouping by a field \(--by\) is for the random and balanced"):
        choose(texts, 10, SelectSettings(method="kcenter"), groups=["a"] * len(texts))
    with pytest.raises(ConfigError, match=r"by: the balanced method evens out the groups of a field: name it"):
        choose(texts, 10, SelectSettings(method="balanced"))
    with pytest.raises(ConfigError, match=r"row 0 has no field 'metadata.rule'"):
        select_dataset(
            str(folder),
            tmp_path / "x",
            10,
            SelectSettings(method="balanced"),
            fields=["instruction"],
            by="metadata.rule",
        )
    assert not (tmp_path / "x").exists()


def test_cli_writes_a_folder_training_and_evaluation_can_use(pool, tmp_path):
    folder, rows = pool
    out = tmp_path / "chosen"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "select",
            str(folder),
            "--budget",
            "500",
            "--out",
            str(out),
            "--method",
            "facility-location",
            "--dedup",
            "exact",
            "--fold-size",
            "2000",
            "--format",
            "jsonl,parquet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "selected" in proc.stdout and "Vendi" in proc.stdout
    chosen = [json.loads(line) for line in (out / "train.jsonl").open()]
    assert len(chosen) == 500 and all(r in rows for r in chosen[:50])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"]["method"] == "facility-location" and manifest["splits"]["train"]["examples"] == 500
    assert manifest["config"]["num_rules"] == 200  # the generated folder's config stays: the eval tasks read it
    assert (out / "test.jsonl").read_bytes() == (folder / "test.jsonl").read_bytes()
    assert (out / "train.parquet").is_file() and "| selected | 500 |" in (out / "report.md").read_text()
    again = subprocess.run(
        [sys.executable, "-m", "divplugin", "select", str(folder), "--budget", "500", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "--overwrite" in again.stderr
