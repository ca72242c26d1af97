"""Every registered generator: gold answers, determinism, exact counts, disjoint splits."""

import json
from collections import Counter

import pytest

from divplugin.data.writer import encoded_chunks
from divplugin.errors import ConfigError
from divplugin.generators import SPLITS, create, generator_names
from divplugin.generators.base import CHUNK_SIZE
from divplugin.generators.families import family_string
from divplugin.markov import MarkovAlgorithm, parse_rule, parse_rules

SMALL = {
    "markov_rewrite": dict(
        num_rules=30,
        num_examples=2500,
        test_rules=20,
        test_examples=600,
        seen_test_examples=200,
        input_len=20,
        pattern_len=(2, 4),
        noop_fraction=0.25,
        occurrences=[1, 2],
    ),
    "markov_program": dict(
        num_programs=25, num_examples=1500, test_programs=10, test_examples=300, seen_test_examples=100
    ),
}


def test_registry_lists_both():
    assert {"markov_rewrite", "markov_program"} <= set(generator_names())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gold_answers_score_one_and_rederive(name):
    gen = create(name, seed=3, **SMALL[name])
    for split in SPLITS:
        rows = list(gen.iter_split(split))
        assert len(rows) == gen.split_size(split)
        for row in rows:
            assert gen.score_answer(row["output"], row) == 1.0
            assert gen.score_answer(row["output"] + "x", row) == 0.0
            assert gen.score_answer(None, row) == 0.0
            md = row["metadata"]
            assert md["split"] == split and md["source"] == name
            rules = parse_rules(row["instruction"])
            if name == "markov_rewrite":
                res = MarkovAlgorithm(rules).run(row["input"], max_steps=1)
                assert res.output == row["output"]
                assert res.steps == md["steps"] == (0 if md["noop"] else 1)
            else:
                res = MarkovAlgorithm(rules).run(row["input"], max_steps=gen.config.steps[1])
                assert res.output == row["output"]
                assert (res.steps, res.status.value) == (md["steps"], md["status"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_bytes_for_any_worker_count(name):
    def blob(workers, seed=5):
        gen = create(name, seed=seed, **SMALL[name])
        return b"".join(b for split in SPLITS for b, _ in encoded_chunks(gen, split, "instruction", workers))

    one = blob(1)
    assert one == blob(2) == blob(3)
    assert one != blob(1, seed=6)


def test_random_access_matches_iteration():
    gen = create("markov_rewrite", seed=2, **SMALL["markov_rewrite"])
    rows = list(gen.iter_split("train"))
    for i in (0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, len(rows) - 1):
        assert gen[i] == rows[i]
    with pytest.raises(IndexError):
        gen.item(len(rows))


def test_rewrite_exact_counts_noop_share_and_occurrences(small_rewrite):
    gen = create("markov_rewrite", **small_rewrite)
    for split in SPLITS:
        rows = list(gen.iter_split(split))
        n = gen.split_size(split)
        assert len(rows) == n
        noops = [r for r in rows if r["metadata"]["noop"]]
        assert len(noops) == int(n * small_rewrite["noop_fraction"] + 0.5)
        for r in rows:
            lhs = parse_rule(r["instruction"]).lhs
            occ = sum(r["input"].startswith(lhs, i) for i in range(len(r["input"])))
            assert occ == r["metadata"]["occurrences"]  # the filler made no extra copies
            assert (occ == 0) == r["metadata"]["noop"]
            assert (r["output"] == r["input"]) == r["metadata"]["noop"]
            assert len(r["input"]) == small_rewrite["input_len"]
        assert {r["metadata"]["occurrences"] for r in rows if not r["metadata"]["noop"]} == {1, 2, 3}
    train = list(gen.iter_split("train"))
    per_rule = Counter(r["metadata"]["rule_id"] for r in train)
    assert len(per_rule) == small_rewrite["num_rules"]
    assert set(per_rule.values()) == {small_rewrite["num_examples"] // small_rewrite["num_rules"]}


def test_rewrite_splits_disjoint_by_construction(small_rewrite):
    gen = create("markov_rewrite", **small_rewrite)
    ids = {s: {r["metadata"]["rule_id"] for r in gen.iter_split(s)} for s in SPLITS}
    texts = {s: {r["instruction"] for r in gen.iter_split(s)} for s in SPLITS}
    assert not ids["train"] & ids["test"] and not texts["train"] & texts["test"]
    assert ids["test_seen"] <= ids["train"]
    assert len(ids["test"]) == small_rewrite["test_rules"]
    # the partition is a property of the rule, not of the run: other seeds agree
    other = create("markov_rewrite", **{**small_rewrite, "seed": 99})
    other_train = {i.text for i in other.instructions("train")}
    other_test = {i.text for i in other.instructions("test")}
    assert not other_train & texts["test"] and not other_test & texts["train"]
    for inst in gen.instructions("train"):
        assert gen.holdout_side(inst.text) == "train"


def test_rewrite_long_tail_allocation_is_exact():
    gen = create(
        "markov_rewrite",
        num_rules=200,
        num_examples=20_000,
        test_rules=10,
        test_examples=100,
        seen_test_examples=0,
        input_len=12,
        pattern_len=3,
        allocation="power",
        alpha=0.1,
    )
    counts = Counter(r["metadata"]["rule_id"] for r in gen.iter_split("train"))
    plan = gen.plan("train")
    assert sum(counts.values()) == 20_000
    assert [counts[i.id] for i in plan.instructions] == plan.counts.tolist()
    assert max(counts.values()) > 20 * min(counts.values())


def _is_family(s, family, k):
    unit = -(-len(s) // k)
    if family == "repeated":
        return all(s[i] == s[(i // k) * k] for i in range(len(s)))
    if family == "periodic":
        return all(s[i] == s[i % unit] for i in range(len(s)))
    if family == "mirror":
        u = s[:unit]
        expect = "".join(u if j % 2 == 0 else u[::-1] for j in range(k))[: len(s)]
        return s == expect
    return True


@pytest.mark.parametrize("family", ["repeated", "periodic", "mirror"])
def test_families_train_on_large_k_test_on_small_k(family):
    gen = create(
        "markov_rewrite",
        families=[family],
        k_range=(3, 6),
        test_k_range=(1, 2),
        num_rules=50,
        num_examples=500,
        test_rules=40,
        test_examples=200,
        seen_test_examples=0,
        input_len=120,
        pattern_len=24,
        alphabet="abcdefgh",
    )
    for split in ("train", "test"):
        for inst in gen.instructions(split):
            x, y, _ = inst.payload
            assert inst.family == family
            assert (3 <= inst.k <= 6) if split == "train" else (1 <= inst.k <= 2)
            assert _is_family(x, family, inst.k) and _is_family(y, family, inst.k)
            assert len(x) == 24
    ks = Counter(r["metadata"]["k"] for r in gen.iter_split("train"))
    assert set(ks) <= {3, 4, 5, 6} and len(ks) > 1


def test_family_strings_match_paper_examples():
    import random

    class Fixed(random.Random):
        def choices(self, population, k):
            return list("abc"[:k]) if k <= 3 else list("abc" * k)[:k]

    assert family_string(Fixed(), "abc", 9, "repeated", 3) == "aaabbbccc"
    assert family_string(Fixed(), "abc", 6, "periodic", 2) == "abcabc"
    assert family_string(Fixed(), "abc", 9, "mirror", 3) == "abccbaabc"


def test_mixed_families_and_unconstrained_test_rules():
    gen = create(
        "markov_rewrite",
        families=["repeated", "periodic", "mirror"],
        test_families=["unconstrained"],
        k_range=(3, 4),
        num_rules=60,
        num_examples=600,
        test_rules=20,
        test_examples=100,
        seen_test_examples=0,
        input_len=60,
        pattern_len=12,
    )
    fams = Counter(i.family for i in gen.instructions("train"))
    assert set(fams) == {"repeated", "periodic", "mirror"}
    assert {i.family for i in gen.instructions("test")} == {"unconstrained"}


def test_program_generator_halts_within_step_range():
    gen = create("markov_program", seed=1, steps=(2, 10), **{k: v for k, v in SMALL["markov_program"].items()})
    for r in gen.iter_split("train"):
        assert 2 <= r["metadata"]["steps"] <= 10
        assert r["metadata"]["status"] in ("halted", "terminated")
        assert 2 <= r["metadata"]["num_rules"] <= 4


def test_program_markers_never_in_inputs():
    gen = create(
        "markov_program",
        markers="XY",
        alphabet="ab",
        num_programs=15,
        num_examples=300,
        test_programs=5,
        test_examples=50,
        seen_test_examples=0,
        steps=(1, 20),
    )
    rows = list(gen.iter_split("train"))
    assert all(set(r["input"]) <= set("ab") for r in rows)
    assert any(set("XY") & set(r["instruction"]) for r in rows)


def test_to_dataset_has_every_split():
    gen = create("markov_rewrite", seed=1, **SMALL["markov_rewrite"])
    dd = gen.to_dataset_dict()
    assert set(dd) == set(SPLITS)
    assert dd["test"].num_rows == 600
    assert dd["train"][0] == gen[0]
    meta = json.loads(json.dumps(dd["train"][5]["metadata"]))  # metadata survives JSON as it is
    assert meta == gen[5]["metadata"] and meta["split"] == "train" and meta["index"] == 5


def test_filler_avoiding_never_contains_pattern():
    import random

    from divplugin.generators.markov_rewrite import _filler_avoiding

    rng = random.Random(0)
    for x in ["a", "aa", "aba", "abab", "cab", "bbb"]:
        for _ in range(200):
            s = _filler_avoiding(rng, "abc", x, 30)
            assert len(s) == 30 and x not in s


def test_single_symbol_patterns_on_tiny_alphabets_still_exact():
    gen = create(
        "markov_rewrite",
        alphabet="abc",
        pattern_len=1,
        replacement_len=(0, 2),
        input_len=40,
        num_rules=2,
        num_examples=400,
        test_rules=1,
        test_examples=50,
        seen_test_examples=0,
        noop_fraction=0.25,
        occurrences=[1, 2],
    )
    for r in gen.iter_split("train"):
        x = parse_rule(r["instruction"]).lhs
        assert r["input"].count(x) == r["metadata"]["occurrences"]


def test_inexact_occurrences_allow_and_count_extra_copies():
    import random

    import numpy as np

    from divplugin.generators.base import SymbolStream
    from divplugin.generators.markov_rewrite import _make_input

    stream, rng = SymbolStream(np.random.default_rng(0), "ab", 4096), random.Random(0)
    # "ab" cannot overlap itself: extra copies can only come from the filler
    counts = [_make_input(stream, rng, "ab", 30, 1, False, False).count("ab") for _ in range(50)]
    assert max(counts) > 1
    exact = [_make_input(stream, rng, "ab", 30, 1, True, False).count("ab") for _ in range(50)]
    assert set(exact) == {1}
    gen = create(
        "markov_rewrite",
        alphabet="ab",
        pattern_len=2,
        replacement_len=2,
        input_len=30,
        num_rules=1,
        num_examples=300,
        test_rules=1,
        test_examples=10,
        seen_test_examples=0,
        exact_occurrences=False,
    )
    for r in gen.iter_split("train"):
        x = parse_rule(r["instruction"]).lhs
        assert r["metadata"]["occurrences"] == sum(r["input"].startswith(x, i) for i in range(len(r["input"])))


def test_test_occurrences_change_only_the_held_out_inputs():
    base = dict(
        alphabet="abcdefgh",
        input_len=16,
        pattern_len=(2, 3),
        replacement_len=(1, 3),
        num_rules=30,
        num_examples=600,
        test_rules=20,
        test_examples=400,
        seen_test_examples=100,
        seed=3,
    )
    one = create("markov_rewrite", **base)
    mixed = create("markov_rewrite", **base, test_occurrences=[1, 2, 3, 4])
    assert list(one.iter_split("train")) == list(mixed.iter_split("train"))
    assert list(one.iter_split("test_seen")) == list(mixed.iter_split("test_seen"))
    test = list(mixed.iter_split("test"))
    assert {r["metadata"]["occurrences"] for r in test} == {1, 2, 3, 4}
    for r in test:
        assert r["input"].count(parse_rule(r["instruction"]).lhs) == r["metadata"]["occurrences"]
    assert {r["metadata"]["occurrences"] for r in one.iter_split("test")} == {1}
    with pytest.raises(ConfigError, match="test_occurrences"):
        create("markov_rewrite", **{**base, "test_occurrences": [1, 9]})


@pytest.mark.parametrize("cipher, plain, encrypted", [("shift:3", "abch", "defc"), ("hgfedcba", "abch", "hgfa")])
def test_cipher_encrypts_every_answer_and_changes_nothing_else(cipher, plain, encrypted):
    """The 'replace, then encrypt' twist: the same rules and inputs, every split's answer (no-op
    answers too) is the rewritten string through the cipher; without it, the data's identity
    is what it was before the setting existed."""
    from divplugin.data.cache import data_key

    base = dict(
        alphabet="abcdefgh",
        input_len=12,
        pattern_len=(2, 3),
        replacement_len=(1, 3),
        num_rules=20,
        num_examples=200,
        test_rules=10,
        test_examples=100,
        seen_test_examples=50,
        noop_fraction=0.4,
        seed=1,
    )
    clear, secret = create("markov_rewrite", **base), create("markov_rewrite", **base, cipher=cipher)
    assert plain.translate(secret.config.cipher_table()) == encrypted
    for split in SPLITS:
        rows, enc = list(clear.iter_split(split)), list(secret.iter_split(split))
        assert [(r["instruction"], r["input"], r["metadata"]) for r in rows] == [
            (r["instruction"], r["input"], r["metadata"]) for r in enc
        ]
        assert [r["output"].translate(secret.config.cipher_table()) for r in rows] == [r["output"] for r in enc]
        noops = [r for r in enc if r["metadata"]["noop"]]
        assert noops and all(r["output"] != r["input"] for r in noops)
        assert all(secret.score_answer(r["output"], r) == 1.0 for r in enc)
    assert "cipher" not in clear.config.to_dict() and "cipher" in secret.config.to_dict()
    assert data_key("generated", "markov_rewrite", clear.config) != data_key(
        "generated", "markov_rewrite", secret.config
    )


@pytest.mark.parametrize(
    "cipher, named",
    [
        ("shift:8", "leaves every symbol"),
        ("shift:two", "whole number"),
        ("abcdefg", "every symbol of the alphabet"),
        ("abcdefgh", "its own order"),
    ],
)
def test_a_bad_cipher_is_named(cipher, named):
    with pytest.raises(ConfigError, match=f"cipher: .*{named}"):
        create(
            "markov_rewrite",
            alphabet="abcdefgh",
            input_len=12,
            pattern_len=(2, 3),
            num_rules=10,
            num_examples=100,
            test_rules=10,
            cipher=cipher,
        )
