"""Diversity scores: the Vendi score against its defining formula, the lexical scores by hand,
and `divplugin diversity` on a generated folder, a JSONL file and a mixture."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from divplugin.diversity.scores import (
    char_ngram_embeddings,
    compression_ratio,
    mean_cosine_distance,
    ngram_diversity,
    score_texts,
    vendi_reference,
    vendi_score,
)
from divplugin.errors import ConfigError


@pytest.mark.parametrize("n, d", [(5, 3), (12, 40), (60, 8), (30, 30)])
@pytest.mark.parametrize("q", [1.0, 0.5, 2.0, math.inf])
def test_vendi_dual_form_matches_the_defining_formula(n, d, q):
    rng = np.random.default_rng(n * 100 + d)
    x = rng.normal(size=(n, d)) + rng.normal(size=d)  # correlated rows: a score strictly between 1 and n
    assert abs(vendi_score(x, q) - vendi_reference(x, q)) < 1e-6
    assert 1.0 <= vendi_score(x, q) <= n + 1e-9


def test_vendi_counts_distinct_directions():
    assert abs(vendi_score(np.ones((7, 4))) - 1.0) < 1e-9  # all alike: one
    assert abs(vendi_score(np.eye(6)) - 6.0) < 1e-9  # orthogonal: n
    # two clusters of equal size, orthogonal to each other: two
    x = np.vstack([np.tile([1.0, 0.0], (5, 1)), np.tile([0.0, 1.0], (5, 1))])
    assert abs(vendi_score(x) - 2.0) < 1e-9
    with pytest.raises(ValueError):
        vendi_score(np.zeros((0, 3)))


def test_lexical_scores_by_hand():
    # "a b a b": 1-grams 2/4, 2-grams 2/3 (ab, ba, ab), 3-grams 2/2, 4-grams 1/1
    assert abs(ngram_diversity(["a b", "a b"]) - (0.5 + 2 / 3 + 1 + 1)) < 1e-12
    assert ngram_diversity(["a b c d"]) == 4.0
    same, varied = (
        ["abc " * 50] * 20,
        [" ".join(np.random.default_rng(i).choice(list("abcdefgh"), 50)) for i in range(20)],
    )
    assert compression_ratio(same) > compression_ratio(varied) > 1.0
    assert compression_ratio([]) == 0.0


def test_mean_cosine_distance_matches_pairs():
    v = char_ngram_embeddings(["abc", "abd", "xyz", "abc"])
    sims = v @ v.T
    n = len(v)
    expect = 1 - (sims.sum() - n) / (n * (n - 1))
    assert abs(mean_cosine_distance(v) - expect) < 1e-12


def test_scores_rise_with_distinct_instructions_and_split_by_group():
    rng = np.random.default_rng(0)
    rules = [
        "".join(rng.choice(list("abcdefgh"), 3)) + " -> " + "".join(rng.choice(list("abcdefgh"), 2)) for _ in range(400)
    ]
    few = [rules[i % 10] for i in range(400)]
    many = list(rules)
    a, b = score_texts(few, embedder="chars", sample=400), score_texts(many, embedder="chars", sample=400)
    assert a.overall.distinct == 10 and b.overall.distinct == len(set(rules)) > 300
    assert b.overall.vendi > a.overall.vendi and b.overall.ngram_diversity > a.overall.ngram_diversity
    assert b.overall.compression_ratio < a.overall.compression_ratio
    mixed = score_texts(few + many, ["few"] * 400 + ["many"] * 400, embedder="chars", sample=300, seed=3)
    assert sum(g.rows for g in mixed.groups.values()) == 300 == mixed.sample
    assert (
        score_texts(few + many, ["few"] * 400 + ["many"] * 400, embedder="chars", sample=300, seed=3).to_json()
        == mixed.to_json()
    )
    with pytest.raises(ConfigError, match="no rows"):
        score_texts([])


def cli(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "divplugin", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_on_a_generated_folder_a_jsonl_file_and_a_mixture(tmp_path):
    gen = cli(
        "generate",
        "--preset",
        "cpu-small",
        "--num-rules",
        "30",
        "--num-examples",
        "600",
        "--test-examples",
        "50",
        "--seen-test-examples",
        "50",
        "--out",
        tmp_path / "g",
    )
    assert gen.returncode == 0, gen.stderr
    r = cli("diversity", tmp_path / "g", "--embedder", "chars", "--json", tmp_path / "g.json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "g.json").read_text())
    assert out["kind"] == "generated folder (train)" and out["overall"]["distinct"] == 30 and out["rows"] == 600
    assert out["overall"]["vendi"] > 1 and "markov_rewrite" in out["groups"]

    r = cli(
        "diversity",
        tmp_path / "g" / "train.jsonl",
        "--fields",
        "instruction,input",
        "--embedder",
        "none",
        "--sample",
        "100",
        "--json",
        tmp_path / "j.json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "j.json").read_text())
    assert out["kind"] == "local data" and out["sample"] == 100 and out["overall"]["vendi"] is None

    spec = tmp_path / "mix.yaml"
    spec.write_text(
        json.dumps(
            {
                "name": "m",
                "decontaminate": None,
                "report": {"embeddings": False},
                "sources": [
                    {
                        "name": "few",
                        "generator": {"preset": "cpu-small", "settings": {"num_examples": 300, "num_rules": 5}},
                        "adapter": "divplugin",
                        "count": 200,
                    },
                    {
                        "name": "many",
                        "generator": {"preset": "cpu-small", "settings": {"num_examples": 300, "num_rules": 200}},
                        "adapter": "divplugin",
                        "count": 200,
                    },
                ],
            }
        )
    )
    mixed = cli("mix", spec, "--out", tmp_path / "m")
    assert mixed.returncode == 0, mixed.stderr
    assert "n-gram diversity" in (tmp_path / "m" / "report.md").read_text()
    r = cli("diversity", tmp_path / "m", "--embedder", "chars", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "m.json").read_text())
    assert out["kind"] == "mixture folder (train)" and out["by"] == "metadata.source"
    assert out["groups"]["many"]["vendi"] > out["groups"]["few"]["vendi"]
    assert out["groups"]["many"]["distinct"] > out["groups"]["few"]["distinct"] == 5
    assert "few" in r.stdout and "many" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["{t}/missing"], "does not exist"),
        (["{t}/g", "--fields", "instrution"], "has no field 'instrution'"),
        (["{t}/g", "--by", "metadata.nope"], "no field 'metadata.nope' to group by"),
        (["{t}/g", "--split", "validation"], "no validation.jsonl"),
        (["{t}/g", "--embedder", "bert"], "--embedder must be one of"),
    ],
)
def test_cli_names_what_is_wrong(tmp_path, args, message):
    gen = cli(
        "generate",
        "--preset",
        "cpu-small",
        "--num-rules",
        "10",
        "--num-examples",
        "100",
        "--test-examples",
        "10",
        "--seen-test-examples",
        "10",
        "--out",
        tmp_path / "g",
    )
    assert gen.returncode == 0, gen.stderr
    r = cli("diversity", *[a.replace("{t}", str(tmp_path)) for a in args])
    assert r.returncode == 2 and message in r.stderr + r.stdout
