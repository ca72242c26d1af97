"""Property tests: for random valid configs, counts are exact, gold answers re-derive and
held-out instructions never leak into training."""

from collections import Counter

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from divplugin.errors import ConfigError
from divplugin.generators import SPLITS, create
from divplugin.markov import MarkovAlgorithm, parse_rules


@st.composite
def rewrite_configs(draw):
    alphabet = "abcdefghijklmnop"[: draw(st.integers(3, 16))]
    plo = draw(st.integers(1, 4))
    phi = draw(st.integers(plo, plo + 2))
    occ = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    input_len = draw(st.integers(max(occ) * phi + 2, max(occ) * phi + 20))
    num_rules = draw(st.integers(1, 30))
    return dict(
        seed=draw(st.integers(0, 2**31)),
        alphabet=alphabet,
        pattern_len=(plo, phi),
        replacement_len=(draw(st.integers(0, 2)), draw(st.integers(2, 5))),
        input_len=input_len,
        num_rules=num_rules,
        num_examples=draw(st.integers(num_rules, 400)),
        test_rules=draw(st.integers(1, 20)),
        test_examples=draw(st.integers(0, 150)),
        seen_test_examples=draw(st.integers(0, 100)),
        noop_fraction=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        occurrences=occ,
        allocation=draw(st.sampled_from(["uniform", "power", "zipf"])),
        alpha=draw(st.sampled_from([2.0, 0.2, 0.03])),
        families=draw(st.sampled_from([["unconstrained"], ["repeated"], ["periodic", "mirror"]])),
        k_range=(2, 3),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rewrite_configs())
def test_rewrite_invariants(cfg):
    try:
        gen = create("markov_rewrite", **cfg)
    except ConfigError as exc:  # only the capacity check may refuse a drawn config
        assert "allow only about" in str(exc)
        event("refused by the capacity check")
        return
    event("generated")
    train_ids = {i.id for i in gen.instructions("train")}
    test_ids = {i.id for i in gen.instructions("test")}
    assert not train_ids & test_ids
    for split in SPLITS:
        rows = list(gen.iter_split(split))
        assert len(rows) == gen.split_size(split)
        assert sum(r["metadata"]["noop"] for r in rows) == int(len(rows) * cfg["noop_fraction"] + 0.5)
        ids = Counter(r["metadata"]["rule_id"] for r in rows)
        assert set(ids) <= (test_ids if split == "test" else train_ids)
        for r in rows:
            rule = parse_rules(r["instruction"])
            assert MarkovAlgorithm(rule).run(r["input"], max_steps=1).output == r["output"]
            assert len(r["input"]) == cfg["input_len"]
            occ = sum(r["input"].startswith(rule[0].lhs, i) for i in range(len(r["input"])))
            assert occ == r["metadata"]["occurrences"]
            assert occ in ([0] if r["metadata"]["noop"] else cfg["occurrences"])
    train_counts = Counter(r["metadata"]["rule_id"] for r in gen.iter_split("train"))
    assert sum(train_counts.values()) == cfg["num_examples"]
    assert len(train_counts) == cfg["num_rules"]  # min_examples_per_instruction=1: every rule is trained


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31), st.integers(1, 3), st.integers(2, 4), st.text("abc", min_size=1, max_size=3))
def test_program_invariants(seed, rlo, rhi, alphabet):
    alphabet = "".join(dict.fromkeys(alphabet))
    try:
        gen = create(
            "markov_program",
            seed=seed,
            alphabet=alphabet,
            rules_per_program=(rlo, max(rlo, rhi)),
            num_programs=5,
            num_examples=60,
            test_programs=3,
            test_examples=20,
            seen_test_examples=10,
            steps=(0, 12),
            input_len=(1, 6),
        )
        rows = {s: list(gen.iter_split(s)) for s in SPLITS}
    except Exception as exc:  # tiny alphabets may not hold enough distinct programs
        assert "distinct" in str(exc) or "qualifying" in str(exc), exc
        event("too few programs")
        return
    event("generated")
    for split, rs in rows.items():
        assert len(rs) == gen.split_size(split)
        for r in rs:
            res = MarkovAlgorithm(parse_rules(r["instruction"])).run(r["input"], max_steps=12)
            assert (res.output, res.steps) == (r["output"], r["metadata"]["steps"])
    assert not {r["metadata"]["rule_id"] for r in rows["train"]} & {r["metadata"]["rule_id"] for r in rows["test"]}
