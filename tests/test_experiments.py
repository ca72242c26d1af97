"""The experiment driver: specs, and real sweeps (axolotl + lm-eval on CPU, tiny settings)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from divplugin.errors import ConfigError
from divplugin.experiments import load_spec, spec_names
from divplugin.experiments.spec import resolve_base, set_dotted, validate_spec
from divplugin.experiments.status import STATES


def _spec_data(**changes):
    """The main job's spec as one mapping (its ``base:`` filled in), with ``changes``."""
    path = Path(__file__).resolve().parents[1] / "divplugin" / "experiments" / "specs" / "phase-transition-cpu.yaml"
    data = resolve_base(yaml.safe_load(path.read_text()), str(path))
    data.pop("base")
    data.update(changes)
    return data


def test_builtin_specs_load():
    assert {"phase-transition-cpu", "phase-transition-paper", "long-tail", "families", "code-mixture"} <= set(
        spec_names()
    )
    summaries = set()
    for name in spec_names():
        spec = load_spec(name)
        assert spec.points() and spec.quick_variant().points()
        assert all(spec.plot.x in p.values for p in spec.points())
        assert spec.summary and spec.summary not in summaries, f"{name}: give it a summary of its own"
        summaries.add(spec.summary)


def test_a_pretrained_spec_trains_every_point_on_the_packaged_model(tmp_path, monkeypatch):
    """`pretrained:` names a packaged model: it becomes every point's base_model, from the
    machine's model cache; the cache's path is not part of the point's hash (another machine
    keeps its cache elsewhere), the model's name is."""
    from divplugin.experiments import runner

    data = _spec_data(pretrained="smollm2-135m-instruct")
    data.pop("base_model")
    spec = validate_spec(data, "t")
    p = spec.points()[0]
    monkeypatch.setenv("DIVPLUGIN_CACHE", str(tmp_path / "cache-a"))
    cfg = runner.point_config(spec, p, tmp_path / "out", {})
    assert cfg["base_model"] == str(tmp_path / "cache-a" / "models" / "smollm2-135m-instruct")
    h = runner.point_hash(spec, p, tmp_path / "out", {})
    monkeypatch.setenv("DIVPLUGIN_CACHE", str(tmp_path / "cache-b"))
    assert runner.point_hash(spec, p, tmp_path / "out", {}) == h
    other = validate_spec({**data, "pretrained": None, "train": {**data["train"], "base_model": "some/model"}}, "t")
    assert runner.point_hash(other, p, tmp_path / "out", {}) != h
    with pytest.raises(ConfigError, match=r"pretrained: unknown model 'smollm3'.*smollm2-135m-instruct"):
        validate_spec({**data, "pretrained": "smollm3"}, "t")
    with pytest.raises(ConfigError, match="give one base model, not both"):
        validate_spec(_spec_data(pretrained="smollm2-135m-instruct"), "t")
    with pytest.raises(ConfigError, match="train.base_model: set by the experiment driver"):
        validate_spec({**data, "train": {**data["train"], "base_model": "x"}}, "t")


def test_points_are_the_product_of_the_sweep():
    spec = validate_spec(
        _spec_data(seeds=None, sweep={"divplugin_settings.num_rules": [20, 200], "learning_rate": [0.1, 0.2, 0.3]}), "t"
    )
    pts = spec.points()
    assert len(pts) == 6 and pts[0].values == {"divplugin_settings.num_rules": 20, "learning_rate": 0.1}
    assert all(p.seed is None for p in pts)


def test_seeds_replicate_points_and_set_data_init_and_order(tmp_path):
    from divplugin.experiments.runner import point_config, point_id

    spec = validate_spec(_spec_data(seeds=[0, 1, 2], extra_points=[{"divplugin_settings.num_rules": 50}]), "t")
    pts = spec.points()
    assert len(pts) == 4 * 3 + 1
    assert [p.seed for p in pts[:3]] == [0, 1, 2] and pts[-1].seed == 0
    assert pts[-1].values == {"divplugin_settings.num_rules": 50}
    ids = [point_id(p) for p in pts]
    assert len(set(ids)) == len(ids) and ids[1] == "num_rules=20+seed=1"
    cfg = point_config(spec, pts[1], tmp_path, {})
    assert cfg["seed"] == 1 and cfg["divplugin_settings"]["seed"] == 1  # data order and generated data
    assert cfg["base_model"].endswith("base-model-seed1")  # initialisation
    assert cfg["divplugin_settings"]["num_rules"] == 20
    # --set still wins over the replicate's seed
    assert point_config(spec, pts[1], tmp_path, {"seed": 7})["seed"] == 7


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"seeds": [1, 1]}, "seeds"),
        ({"seeds": []}, "seeds"),
        ({"extra_points": [{"learning_rate": 0.1}]}, "extra_points"),
        ({"extra_points": [{"divplugin_settings.num_rules": 20}]}, "already a point"),
        ({"seeds": [0, 1], "sweep": {"seed": [1, 2]}, "plot": {"x": "seed", "metrics": ["a/b"]}}, "seed_keys"),
    ],
)
def test_bad_replicates_are_named(changes, named):
    with pytest.raises(ConfigError, match=named):
        validate_spec(_spec_data(**changes), "t")


def _result(values, seed, y, seen=1.0, status="done"):
    from divplugin.experiments.runner import PointResult, point_id
    from divplugin.experiments.spec import Point

    return PointResult(
        id=point_id(Point(values=values, seed=seed)),
        values=values,
        status=status,
        seed=seed,
        metrics={
            "divplugin_markov_unseen/exact_match": y,
            "divplugin_markov_seen/exact_match": seen,
            "divplugin_markov_noop/exact_match": 1.0,
            "divplugin_markov_unseen/similarity": 0.9,
        },
    )


def test_report_aggregates_replicates_and_estimates_the_threshold(tmp_path):
    from divplugin.experiments.report import check_expectations, group, threshold, thresholds, write_all

    spec = validate_spec(
        _spec_data(
            seeds=[0, 1],
            expect={
                "metric": "divplugin_markov_unseen/exact_match",
                "first_at_most": 0.05,
                "monotone": True,
                "threshold": 0.5,
                "seen_metric": "divplugin_markov_seen/exact_match",
                "seen_at_least": 0.95,
            },
        ),
        "t",
    )
    k = "divplugin_settings.num_rules"
    results = [
        _result({k: 20}, 0, 0.0),
        _result({k: 20}, 1, 0.02),
        _result({k: 100}, 0, 0.2),
        _result({k: 100}, 1, 0.4),
        _result({k: 400}, 0, 0.7, seen=0.9),
        _result({k: 400}, 1, 0.9),
        _result({k: 2000}, 0, 0.0, status="failed"),
    ]
    groups = group(results)
    assert [len(g.runs) for g in groups] == [2, 2, 2, 1]
    st = groups[1].stat("divplugin_markov_unseen/exact_match")
    assert st.n == 2 and abs(st.mean - 0.3) < 1e-12 and st.lo == 0.2 and st.hi == 0.4 and abs(st.std - 0.1414213) < 1e-6
    assert groups[3].stat("divplugin_markov_unseen/exact_match") is None
    # 0.5 lies 1/3 of the way from 0.3 (at 100) to 0.8 (at 400), on a log axis
    est = thresholds(spec, results)[0]
    assert abs(est["estimate"] - 100 * 4 ** (0.2 / 0.5)) < 1e-9 and est["below"] == 100 and est["reached"] == 400
    assert threshold([(1, 0.6), (2, 0.9)], 0.5) == 1.0 and threshold([(1, 0.1)], 0.5) is None
    assert threshold([(0, 0.0), (10, 1.0)], 0.5, log=False) == 5.0
    checks = dict(check_expectations(spec, results))
    assert any("at every point" in t and not ok for t, ok in checks.items())  # 2,000 rules has no finished run
    seen = [(t, ok) for t, ok in checks.items() if t.startswith("divplugin_markov_seen")]
    assert seen and not seen[0][1] and "num_rules=400 0.900" in seen[0][0]
    files = write_all(spec, results, tmp_path, 60.0)
    page = files["page"].read_text()
    assert "0.300 ± 0.141 (0.200-0.400, n=2)" in page and "Every run" in page and "threshold" in page
    # 2,000 rules, seed 1 has not run: the page says so and holds its verdicts back
    assert "7 of 8 runs finished; 1 pending" in page and "checked when every run has finished" in page
    assert "NOT met" not in page and "| num_rules=2000+seed=1 | 1 | pending |" in page
    # the table: what the spec plots, then every other task's metric of that kind; the CSV has all
    header = next(line for line in page.splitlines() if line.startswith("| point |"))
    assert [c.strip() for c in header.split("|")[3:-3]] == [
        "markov_unseen/exact_match",
        "markov_seen/exact_match",
        "markov_noop/exact_match",
    ]
    data = json.loads(files["json"].read_text())
    assert data["summary"][1]["metrics"]["divplugin_markov_unseen/exact_match"]["n"] == 2
    assert data["expectations"] == [] and [p["status"] for p in data["points"]].count("pending") == 1
    rows = files["csv"].read_text().splitlines()
    assert rows[0].split(",")[:4] == ["point", k, "seed", "status"] and len(rows) == 9
    files = write_all(spec, [*results, _result({k: 2000}, 1, 0.95)], tmp_path, 60.0)  # all in: verdicts given
    assert "Partial" not in files["page"].read_text() and "NOT met" in files["page"].read_text()


def test_derived_means_are_tabled_plotted_and_checked(tmp_path):
    """plot.means: a metric averaged per run from others, before replicates are pooled; a
    run missing a part gets none; the runs' own metrics are left as measured."""
    from divplugin.experiments.report import check_expectations, with_means, write_all

    parts = ["divplugin_markov_unseen/exact_match", "divplugin_markov_noop/exact_match"]
    plot = {**_spec_data()["plot"], "metrics": ["both/exact_match"], "means": {"both/exact_match": parts}}
    spec = validate_spec(
        _spec_data(seeds=[0, 1], plot=plot, expect={"metric": "both/exact_match", "monotone": True}), "t"
    )
    k = "divplugin_settings.num_rules"
    results = [
        _result({k: n}, s, y)
        for n, ys in ((20, (0.0, 0.2)), (100, (0.4, 0.6)), (400, (0.8, 1.0)), (2000, (1.0, 1.0)))
        for s, y in zip((0, 1), ys)
    ]
    del results[-1].metrics["divplugin_markov_noop/exact_match"]
    derived = with_means(spec, results)
    assert [r.metrics.get("both/exact_match") for r in derived[:2]] == [0.5, 0.6] and "both/exact_match" not in derived[
        -1
    ].metrics
    assert "both/exact_match" not in results[0].metrics
    assert all(ok for _, ok in check_expectations(spec, derived))
    files = write_all(spec, results, tmp_path, 1.0)
    header = next(line for line in files["page"].read_text().splitlines() if line.startswith("| point |"))
    assert header.split("|")[3].strip() == "both/exact_match"
    assert "| num_rules=100 | 2/2 | 0.750 ± 0.071 (0.700-0.800, n=2) |" in files["page"].read_text()
    assert files["plot"].stat().st_size > 1000 and "both/exact_match" in files["csv"].read_text().splitlines()[0]
    for means, named in (
        ({"both": parts}, "task/metric"),
        ({"b/x": parts[:1]}, "two or more"),
        ({"b/x": [parts[0], parts[0]]}, "two or more"),
    ):
        with pytest.raises(ConfigError, match=named):
            validate_spec(_spec_data(plot={**plot, "means": means}), "t")


def test_only_selects_points_and_names_a_bad_pattern():
    from divplugin.experiments import select, slot_env

    spec = validate_spec(_spec_data(seeds=[0, 1]), "t")
    assert len(select(spec, ["num_rules=20+*"])) == 2 and len(select(spec, None)) == 8
    with pytest.raises(ConfigError, match="num_rules=20[+]seed=0"):
        select(spec, ["rules=7"])
    assert slot_env(1, 2, ["0", "1", "2", "3"], None)["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert slot_env(0, 2, None, 3)["OMP_NUM_THREADS"] == slot_env(0, 2, None, 3)["AXOLOTL_DATASET_NUM_PROC"] == "3"
    assert "OMP_NUM_THREADS" not in slot_env(0, 1, None, None)


def test_points_left_fewer_than_slots_share_the_free_cores(tmp_path, monkeypatch):
    """A resumed sweep with one point left under --parallel 2 trains it on every free core, not
    on half of them (thread count does not change the weights), and not on cores other work
    keeps busy; GPU shares stay as asked."""
    import divplugin.experiments.sweep as ex

    spec = validate_spec(_spec_data(), "t")
    last = spec.points()[-1]
    envs = []
    monkeypatch.setattr(ex, "finished", lambda s, p, o, ov: None if p == last else _result(p.values, p.seed, 0.5))
    monkeypatch.setattr(ex, "build_base_model", lambda *a: None)
    monkeypatch.setattr(
        ex,
        "run_point",
        lambda s, p, o, ov, step, phase, env, processes: (
            (p == last and envs.append(env)) or _result(p.values, p.seed, 0.5)
        ),
    )
    monkeypatch.setattr(ex, "usable_cores", lambda: 8)  # an 8-core machine
    monkeypatch.setattr(ex, "free_cores", lambda: 8)
    results, _ = ex.run_experiment(spec, tmp_path / "out", parallel=2)
    assert len(results) == 4 and envs == [
        {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "AXOLOTL_DATASET_NUM_PROC": "8"}
    ]
    envs.clear()
    monkeypatch.setattr(ex, "free_cores", lambda: 3)  # other work keeps 5 of the 8 busy
    ex.run_experiment(spec, tmp_path / "out-busy", parallel=2)
    assert envs == [{"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "AXOLOTL_DATASET_NUM_PROC": "3"}]
    envs.clear()
    ex.run_experiment(spec, tmp_path / "out2", parallel=2, devices=["0", "1"])
    assert len(envs) == 1 and envs[0]["CUDA_VISIBLE_DEVICES"] in ("0", "1") and envs[0]["OMP_NUM_THREADS"] == "4"
    envs.clear()
    ex.run_experiment(spec, tmp_path / "out3", parallel=2, threads=1)
    assert envs[0]["OMP_NUM_THREADS"] == "1"


def test_busy_cores_counts_other_work(tmp_path):
    """The driver sees a core another process keeps busy (a spinning neighbour), and leaves it."""
    from divplugin.core.host import busy_cores, free_cores, usable_cores

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert busy_cores(1.0) >= 0.6
        assert free_cores(1.0) <= max(1, usable_cores() - 1)
    finally:
        spin.kill()
        spin.wait()


def test_short_labels_drop_dotted_paths_and_the_plugin_prefix():
    from divplugin.experiments.report import short_label

    assert (
        short_label({"divplugin_mixture_row": "oss20k", "divplugin_settings.num_rules": 400})
        == "mixture_row=oss20k,num_rules=400"
    )
    assert short_label({"a.b": 1, "c": 2}, " ") == "b=1 c=2"


def test_set_dotted_copies():
    cfg = {"a": {"b": 1}, "c": 2}
    new = set_dotted(cfg, "a.d.e", 5)
    assert new == {"a": {"b": 1, "d": {"e": 5}}, "c": 2} and cfg == {"a": {"b": 1}, "c": 2}


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"sweep": {}}, "sweep"),
        ({"sweep": {"divplugin_settings.num_rules": []}}, "num_rules"),
        ({"sweep": {"divplugin_settings.num_rules": [20, 20]}}, "repeated"),
        ({"plot": {"x": "nope", "metrics": ["divplugin_markov_unseen/exact_match"]}}, "plot.x"),
        ({"plot": {"x": "divplugin_settings.num_rules", "metrics": ["exact_match"]}}, "task/metric"),
        ({"eval": {"tasks": []}}, "eval.tasks"),
        (
            {
                "plot": {
                    "x": "divplugin_settings.num_rules",
                    "metrics": ["divplugin_markov_unseen/exact_match"],
                    "bands": {"paper's threshold": [1000, 300]},
                }
            },
            "band \"paper's threshold\": 'from' must be below 'to'",
        ),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_specs_are_named(changes, named):
    with pytest.raises(ConfigError, match=named):
        validate_spec(_spec_data(**changes), "t")


def test_spec_must_not_set_driver_paths():
    data = _spec_data()
    data["train"] = {**data["train"], "output_dir": "x"}
    with pytest.raises(ConfigError, match="train.output_dir"):
        validate_spec(data, "t")


def test_unknown_spec_names_are_suggested(tmp_path):
    with pytest.raises(ConfigError, match="phase-transition-cpu"):
        load_spec("phase-transition-cp")
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)


def test_cli_lists_and_rejects(tmp_path, monkeypatch, cli):
    """In-process: ``experiment list`` (and ``experiment`` alone) list the specs, a mistyped
    spec and a bad --set are named, and the old mode flags point to their commands."""
    monkeypatch.chdir(tmp_path)
    for args in (["experiment", "list"], ["experiment"]):
        listed = cli(*args)
        assert listed.exit_code == 0 and all(name in listed.output for name in spec_names())
        words = " ".join(listed.output.replace("│", " ").split())
        assert "share of Alpaca in a 20K budget" in words  # one-line summaries, whole
    for args in (["experiment", "phase-transition-cp"], ["experiment", "run", "phase-transition-cp"]):
        bad = cli(*args)
        assert bad.exit_code == 2 and "did you mean 'phase-transition-cpu'" in bad.output
    bad_set = cli("experiment", "phase-transition-cpu", "--set", "max_steps")
    assert bad_set.exit_code == 2 and "KEY=VALUE" in bad_set.output
    for flag, command in (("--report", "report"), ("--plan", "plan")):
        moved = cli("experiment", "phase-transition-cpu", flag)
        assert moved.exit_code == 2 and f"divplugin experiment {command} " in moved.output
    assert not any(tmp_path.iterdir())  # nothing written


# -- real sweeps --------------------------------------------------------------------
def _needs_stack():
    pytest.importorskip("axolotl", reason="needs the [axolotl] extra")
    pytest.importorskip("lm_eval", reason="needs the [eval] extra")


TINY = {"arch": "llama", "layers": 1, "hidden": 32, "heads": 2, "max_len": 128}
SMALL = {"num_examples": 400, "test_rules": 10, "test_examples": 30, "seen_test_examples": 30, "seed": 0}


def _cli(*args, cwd, drop_env=()):
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "divplugin", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=1200,
    )


def _tiny_spec(tmp_path: Path, rules: list[int]) -> Path:
    data = _spec_data(
        name="tiny",
        base_model=TINY,
        sweep={"divplugin_settings.num_rules": rules},
        quick={},
        expect={"metric": "divplugin_markov_unseen/exact_match", "first_at_most": 1.0},
    )
    data["train"] = {
        **{k: v for k, v in data["train"].items() if k != "divplugin_eval"},  # its 500 rows: more than SMALL holds
        "divplugin_settings": SMALL,
        "max_steps": 3,
        "micro_batch_size": 8,
        "logging_steps": 1,
    }
    data["eval"] = {**data["eval"], "limit": 5, "batch_size": 8}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_points_record_their_training_curve_and_the_page_draws_it(tmp_path):
    """A spec whose training config asks for divplugin_eval: each point's record holds the scores
    logged while it trained (steps 2 and 3 of 3), results.json keeps them, and the page shows
    curves.png."""
    _needs_stack()
    spec = _tiny_spec(tmp_path, [20])
    data = yaml.safe_load(spec.read_text())
    data["train"]["divplugin_eval"] = {"every": 2, "examples": 5, "batch_size": 5, "max_new_tokens": 8}
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    r = _cli("experiment", spec, "--out", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    point = json.loads((out / "results.json").read_text())["points"][0]
    assert [(c["step"], c["split"], c["n"]) for c in point["curve"]] == [
        (2, "test", 5),
        (2, "test_seen", 5),
        (3, "test", 5),
        (3, "test_seen", 5),
    ]
    assert all(0.0 <= c["exact_match"] <= 1.0 for c in point["curve"])
    assert (out / "curves.png").stat().st_size > 0 and "![curves](curves.png)" in (out / "README.md").read_text()


@pytest.mark.slow
def test_sweep_resumes_and_goes_on_past_a_failing_point(tmp_path):
    _needs_stack()
    spec = _tiny_spec(tmp_path, [20, 10**9])  # 10^9 rules cannot exist: that point fails at config load
    out = tmp_path / "out"
    first = _cli("experiment", spec, "--out", out, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())["points"]
    assert [p["status"] for p in results] == ["done", "failed"]
    assert "num_rules" in results[1]["error"]
    assert 0.0 <= results[0]["metrics"]["divplugin_markov_unseen/exact_match"] <= 1.0
    assert "divplugin_markov_seen/exact_match" in results[0]["metrics"]
    page = (out / "README.md").read_text()
    assert "num_rules=1000000000" in page and "Failed points" in page and "results.png" in page
    assert (out / "results.png").stat().st_size > 1000
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and csv_rows[1].startswith("num_rules=20+seed=0,20,0,done,")
    assert (out / "points" / "num_rules=20+seed=0" / "model" / "divplugin_data" / "test.jsonl").is_file()
    # finished points leave no running marker; status reads them from the folder
    assert not list(out.rglob("running.json"))
    status = _cli("experiment", "status", spec, "--out", out, "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["counts"] == {**dict.fromkeys(STATES, 0), "done": 1, "failed": 1}

    log = out / "points" / "num_rules=20+seed=0" / "train.log"
    stamp = log.stat().st_mtime_ns
    wall = json.loads((out / "results.json").read_text())["wall_seconds"]
    again = _cli("experiment", spec, "--out", out, cwd=tmp_path)
    assert again.returncode == 1
    assert json.loads((out / "results.json").read_text())["wall_seconds"] > wall  # resumed: the commands add up
    assert log.stat().st_mtime_ns == stamp  # the finished point was not redone
    assert json.loads((out / "results.json").read_text())["points"][0] == results[0]
    assert (
        out / "points" / "num_rules=1000000000+seed=0" / "train.log"
    ).stat().st_mtime_ns > stamp  # the failed one was retried


# GPU specs whose flow (config keys, data kind, model kind, evaluation) is another's with other
# numbers run that one's first steps below, not their own.
GPU_VARIANT_SPECS = {"long-tail": "phase-transition-paper"}


def test_gpu_variant_specs_share_a_flow():
    for variant, flow in GPU_VARIANT_SPECS.items():
        assert _flow_keys(load_spec(variant)) == _flow_keys(load_spec(flow)), variant


@pytest.mark.slow
@pytest.mark.parametrize("name", ["phase-transition-paper", "families"])
def test_gpu_specs_run_their_first_steps_on_cpu(name, tmp_path):
    _needs_stack()
    from divplugin.experiments.runner import build_base_model, run_point

    spec = load_spec(name).quick_variant()
    spec = spec.model_copy(
        update={
            "base_model": spec.base_model.model_copy(update={"layers": 1, "hidden": 32, "heads": 2}),
            "eval": spec.eval.model_copy(
                update={"limit": 2, "batch_size": 2, "device": "cpu", "args": ["--gen_kwargs", "max_gen_toks=8"]}
            ),
        }
    )
    overrides = {
        "max_steps": 2,
        "micro_batch_size": 2,
        "bf16": False,
        "tf32": False,
        "optimizer": "adamw_torch",
        "divplugin_settings.num_examples": 2000,
        "divplugin_settings.test_examples": 20,
        "divplugin_settings.seen_test_examples": 20,
    }
    build_base_model(spec, tmp_path)
    result = run_point(spec, spec.points()[0], tmp_path, overrides)
    assert result.status == "done", result.error
    assert set(result.metrics) >= {f"{m}" for m in spec.plot.metrics}


@pytest.mark.slow
def test_code_mixture_spec_runs_its_first_steps_on_cpu(tmp_path, mixture_sources, benchmarks_dir, monkeypatch):
    """QLoRA on a local mixture with a tiny model, then the instruct code tasks (sandboxed) on 2 problems each,
    with the Alpaca format the adapter was trained in as its chat template."""
    _needs_stack()
    from divplugin.experiments.runner import run_point
    from divplugin.models import build_tiny_llama

    monkeypatch.setenv("DIVPLUGIN_BENCHMARKS", str(benchmarks_dir))
    paths, cache = mixture_sources
    spec = load_spec("code-mixture").quick_variant()
    spec = spec.model_copy(
        update={
            "eval": spec.eval.model_copy(
                update={
                    "limit": 2,
                    "batch_size": 2,
                    "device": "cpu",
                    "args": ["--confirm_run_unsafe_code", "--gen_kwargs", "max_gen_toks=8"],
                }
            )
        }
    )
    model = build_tiny_llama(tmp_path / "tiny", layers=1, hidden=32, heads=2, max_len=1024)
    overrides = {
        "base_model": str(model),
        "max_steps": 2,
        "micro_batch_size": 2,
        "bf16": False,
        "tf32": False,
        "flash_attention": False,
        "sample_packing": False,
        "pad_to_sequence_len": False,
        "optimizer": "adamw_torch",
        "gradient_checkpointing": False,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "divplugin_mixture_paths": {k: paths[k] for k in ("oss", "alpaca", "cot")},
        "divplugin_cache_dir": str(cache),
    }
    result = run_point(spec, spec.points()[0], tmp_path, overrides)
    assert result.status == "done", result.error
    trained = tmp_path / "points" / "divplugin_mixture_row=oss20k" / "model"
    assert (trained / "adapter_config.json").is_file()
    assert all(0.0 <= result.metrics[m] <= 1.0 for m in spec.plot.metrics)
    from transformers import AutoTokenizer

    from divplugin.axolotl.mixture import alpaca_chat_template

    assert AutoTokenizer.from_pretrained(trained).chat_template == alpaca_chat_template(bos=False)


def test_a_spec_starts_from_its_base(tmp_path):
    base = load_spec("phase-transition-cpu-6-layers")
    noop = load_spec("noop-cpu")
    assert noop.base == "phase-transition-cpu-6-layers" and noop.train["learning_rate"] == base.train["learning_rate"]
    assert noop.train["max_steps"] == 2000 != base.train["max_steps"]  # its own setting wins
    assert set(noop.sweep) == {"divplugin_settings.num_rules", "divplugin_settings.noop_fraction"}
    tail = load_spec("long-tail-cpu")
    assert tail.train["divplugin_settings"] == {**base.train["divplugin_settings"], "allocation": "power"}
    assert tail.expect == {} and tail.seeds == [0]
    # --quick merges its train settings into the spec's, key by key, as base: does
    quick = load_spec("occurrences-cpu").quick_variant()
    assert quick.train["divplugin_settings"] == {
        "num_examples": 4000,
        "input_len": 16,
        "test_occurrences": [1, 2, 3, 4],
    }
    # a file's base may be a file beside it; a cycle is named
    (tmp_path / "a.yaml").write_text("base: b\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a\nname: b\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_spec(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text(
        "base: phase-transition-cpu\nname: c\nsweep: {learning_rate: [0.001, 0.002]}\n"
        "plot: {x: learning_rate, metrics: [divplugin_markov_unseen/exact_match]}\n"
    )
    c = load_spec(tmp_path / "c.yaml")
    assert c.name == "c" and c.train["plugins"] == base.train["plugins"] and len(c.points()) == 2


def test_non_finite_sweep_values_need_a_place_on_the_axis():
    from divplugin.experiments.report import x_of

    spec = load_spec("long-tail-cpu")
    assert x_of(spec, {"divplugin_settings.alpha": float("inf")}) == 5.0
    assert x_of(spec, {"divplugin_settings.alpha": 0.2}) == 0.2
    data = spec.model_dump()
    data["plot"]["x_values"] = {}
    with pytest.raises(ConfigError, match="no number for"):
        validate_spec(data, "t")


# Each CPU spec that brings a mechanism of its own runs its whole --quick flow; a spec that only
# moves numbers of another (seeds, steps, budgets, alpha, rule counts, generator settings, the
# cipher) shares that one's flow and is checked below without training
# (test_every_cpu_spec_point_is_a_valid_axolotl_config); the lm-eval tasks it scores with each
# run in some quick flow.
CPU_SPECS = ["phase-transition-cpu-seeds", "dilution-cpu-programs", "select-long-tail-cpu", "pretrained-lora-cpu"]
# Config keys a variant may add to its flow's, and the test that trains with them on the same model.
KEYS_TRAINED_ELSEWHERE = {
    # bitsandbytes 4-bit on SmolLM2 through axolotl and the plugin
    "load_in_4bit": "test_code_instruct.py::test_pretrained_adapter_trains_and_is_scored_in_instruct_mode[qlora]",
}
_GENERATED = "phase-transition-cpu-seeds"
VARIANT_SPECS = {
    "phase-transition-cpu-6-layers": _GENERATED,
    "noop-cpu": _GENERATED,
    "noop-cpu-steps": _GENERATED,
    "long-tail-cpu": _GENERATED,
    "long-tail-cpu-seeds": _GENERATED,
    "occurrences-cpu": _GENERATED,
    "occurrences-cpu-seeds": _GENERATED,
    "families-cpu": _GENERATED,
    "families-cpu-steps": _GENERATED,
    "families-cpu-5k": _GENERATED,
    "dilution-cpu": "dilution-cpu-programs",
    "dilution-cpu-3k": "dilution-cpu-programs",
    "dilution-cpu-programs-seeds": "dilution-cpu-programs",
    "pretrained-qlora-cpu": "pretrained-lora-cpu",
    "pretrained-lora-cpu-letters": "pretrained-lora-cpu",
    "pretrained-lora-cpu-seeds": "pretrained-lora-cpu",
    "pretrained-lora-cpu-long-tail": "pretrained-lora-cpu",
    "pretrained-lora-cpu-cipher": "pretrained-lora-cpu",
    "pretrained-lora-cpu-cipher-steps": "pretrained-lora-cpu",
    # its balanced method's path through the plugin: test_select_by_a_field_balances_its_groups
    "select-long-tail-cpu-balanced": "select-long-tail-cpu",
}


def _flow_keys(spec) -> dict:
    """What decides which code a spec's points run: the config keys, the data's kind and
    generator, whether it selects a subset, its base model's kind, its evaluation."""
    from divplugin.axolotl.args import resolve
    from divplugin.experiments import runner

    kinds = set()
    for p in spec.points():
        cfg = runner.point_config(spec, p, Path("out"), {})
        sel = resolve(dict(cfg))
        # a generator by name; a mixture by its kind (its rows differ in sizes, not code)
        kinds.add((sel.kind, sel.name if sel.kind == "generated" else None, sel.subset is not None) if sel else None)
    return {
        "keys": frozenset(k for k in spec.train if not k.startswith("divplugin_settings")),
        "data": frozenset(kinds),
        "model": (spec.pretrained, spec.base_model is None),
        "eval": tuple(spec.eval.tasks),
        "seeded": bool(spec.seeds),
    }


def test_every_cpu_spec_has_its_quick_flow_or_shares_one():
    """A CPU spec is either run whole in CI or is a variant of one that is: the same config keys,
    data kind and model kind, so its flow is the other's with other numbers, and lm-eval tasks
    that some quick flow runs."""
    cpu = {n for n in spec_names() if load_spec(n).hardware == "cpu" and n != "phase-transition-cpu"}
    assert cpu == set(CPU_SPECS) | set(VARIANT_SPECS), "add the new spec to CPU_SPECS or VARIANT_SPECS"
    assert set(VARIANT_SPECS.values()) <= set(CPU_SPECS)
    for key, test in KEYS_TRAINED_ELSEWHERE.items():  # the test named is there and sets the key
        file, name = test.split("::")
        source = (Path(__file__).parent / file).read_text()
        assert f"def {name.split('[')[0]}(" in source and f'"{key}"' in source, test
    tasks_run = {t for name in CPU_SPECS for t in load_spec(name).eval.tasks}
    for variant, flow in VARIANT_SPECS.items():
        a, b = _flow_keys(load_spec(variant)), _flow_keys(load_spec(flow))
        if a["keys"] - b["keys"] <= set(KEYS_TRAINED_ELSEWHERE) and b["keys"] <= a["keys"]:
            a = {**a, "keys": b["keys"]}
        differs = {k for k in a if k != "eval" and a[k] != b[k] and not (k == "seeded" and a[k])}
        assert not differs, f"{variant} differs from {flow} in {differs}: give it its own quick flow (CPU_SPECS)"
        missing = set(a["eval"]) - tasks_run
        assert not missing, f"{variant} scores with {missing}, which no quick flow runs: give it its own (CPU_SPECS)"


@pytest.mark.slow
def test_every_cpu_spec_point_is_a_valid_axolotl_config(tmp_path):
    """Every point of every CPU spec, full size and --quick, is a config axolotl (with the
    plugin's arguments) accepts; the data keys of all of them resolve to a generator or mixture."""
    pytest.importorskip("axolotl", reason="needs the [axolotl] extra")
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    from divplugin.axolotl.args import resolve
    from divplugin.experiments import runner

    for name in spec_names():
        spec = load_spec(name)
        if spec.hardware != "cpu":
            continue
        for variant in (spec, spec.quick_variant()):
            points = variant.points()
            for i, p in enumerate(points):
                cfg = runner.point_config(variant, p, tmp_path / name, {})
                assert resolve(dict(cfg)) is not None, f"{name} {runner.point_id(p)}: no data asked for"
                if i == 0:  # axolotl's schema once per variant (the plugin's validator sees every point above)
                    cfg = DictDefault({**cfg, "base_model": str(tmp_path / "model")})
                    prepare_plugins(cfg)
                    validated = validate_config(cfg)
                    assert validated.max_steps == variant.train["max_steps"], name


@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_SPECS)
def test_cpu_spec_quick_flow(name, tmp_path):
    """Each CPU spec's --quick flow, as a user runs it: every point trains, evaluates and lands
    in the results page, two at a time."""
    _needs_stack()
    out = tmp_path / "out"
    # a pretrained model comes from the machine's model cache (converted once), not the session's,
    # and trains the quick flow's own few steps (a tiny model from scratch gets 20)
    pretrained = load_spec(name).pretrained is not None
    drop = ("DIVPLUGIN_CACHE",) if pretrained else ()
    steps = () if pretrained else ("--set", "max_steps=20")
    r = _cli("experiment", name, "--quick", "--parallel", "2", "--out", out, *steps, cwd=tmp_path, drop_env=drop)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    data = json.loads((out / "results.json").read_text())
    spec = load_spec(name).quick_variant()
    assert [p["status"] for p in data["points"]] == ["done"] * len(spec.points())
    for p in data["points"]:
        assert all(0.0 <= p["metrics"][m] <= 1.0 for m in spec.plot.metrics)
        # where it was made; a lone point gets every free core (the driver's rule)
        from divplugin.core.host import usable_cores

        threads = max(1, usable_cores() // min(2, len(data["points"])))
        assert 1 <= p["platform"]["threads"] <= threads and p["platform"]["cpu"] and p["platform"]["torch"]
    page = (out / "README.md").read_text()
    assert (out / "results.png").stat().st_size > 1000 and "| point | runs |" in page and "## Where it was made" in page


def test_the_platform_is_recorded_but_not_hashed(tmp_path):
    """A result says where it was made (CPU, kernels, threads, versions); the point's hash,
    which decides whether a result is current, ignores it."""
    from dataclasses import asdict

    from divplugin.experiments.platform import describe, differences
    from divplugin.experiments.runner import PointResult, finished, point_hash, point_id

    here = describe({"OMP_NUM_THREADS": "1"})
    assert {
        "cpu",
        "cpu_capability",
        "threads",
        "python",
        "torch",
        "transformers",
        "axolotl",
        "peft",
        "lm_eval",
        "datasets",
        "divplugin",
        "commit",
        "gpu",
    } <= set(here) and here["threads"] == 1
    spec = load_spec("phase-transition-cpu")
    point = spec.points()[0]
    digest = point_hash(spec, point, tmp_path, {})
    other = "AVX2" if here["cpu_capability"] != "AVX2" else "AVX512"
    elsewhere = {**here, "cpu": "Some Other CPU", "cpu_capability": other, "torch": "9.9"}
    done = tmp_path / "points" / point_id(point) / "result.json"
    done.parent.mkdir(parents=True)
    done.write_text(
        json.dumps(
            asdict(PointResult(point_id(point), point.values, "done", seed=point.seed, hash=digest, platform=elsewhere))
        )
    )
    old = finished(spec, point, tmp_path, {})
    assert old is not None and old.platform["cpu"] == "Some Other CPU"  # made elsewhere, still current
    assert set(differences(elsewhere, here)) == {"cpu", "cpu_capability", "torch"}


@pytest.mark.slow
def test_parallel_sweep_matches_sequential_and_resumes_after_sigterm(tmp_path):
    """--parallel 2 gives the results of a sequential run at the same thread count (training is
    deterministic by seed; whether the thread count moves the weights depends on the CPU, see
    benchmarks/bench_kernels.py); a SIGTERM ends the points in progress (their process groups
    too) and a re-run finishes the sweep."""
    import signal
    import time

    _needs_stack()
    spec = _tiny_spec(tmp_path, [20, 40])
    seq, par = tmp_path / "seq", tmp_path / "par"
    first = _cli("experiment", spec, "--out", seq, "--threads", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]

    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "divplugin",
            "experiment",
            str(spec),
            "--out",
            str(par),
            "--parallel",
            "2",
            "--threads",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    logs = [par / "points" / f"num_rules={n}+seed=0" / "train.log" for n in (20, 40)]
    while time.time() < deadline and not all(p.is_file() and p.stat().st_size > 0 for p in logs):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "finished points are kept" in out + err
    left = _processes_naming(str(par), wait=10.0)
    assert not left, f"processes of the stopped sweep still run: {left}"
    assert not any((p.parent / "result.json").exists() for p in logs)  # in progress: not recorded as failed
    status = _cli("experiment", "status", spec, "--out", par, "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["counts"]["lost"] == 2  # started, and their process is gone

    again = _cli("experiment", spec, "--out", par, "--parallel", "2", "--threads", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    a = {p["id"]: p["metrics"] for p in json.loads((seq / "results.json").read_text())["points"]}
    record = json.loads((par / "results.json").read_text())
    b = {p["id"]: p["metrics"] for p in record["points"]}
    assert a == b
    # the same thread count on both sides (it moves the weights on some CPUs), as recorded
    assert {p["platform"]["threads"] for p in record["points"]} == {1}
    assert {p["platform"]["threads"] for p in json.loads((seq / "results.json").read_text())["points"]} == {1}
    # the command that ran points is recorded with its settings, and each point its steps
    [cmd] = record["commands"]
    assert "--parallel 2" in cmd["command"] and (cmd["parallel"], cmd["threads"]) == (2, 1)
    assert {p["steps"] for p in record["points"]} == {_tiny_max_steps(spec)}
    page = (par / "README.md").read_text()
    assert "## How it was made" in page and cmd["command"] in page
    for n in (20, 40):
        pid = f"num_rules={n}+seed=0"
        assert (seq / "points" / pid / "model" / "model.safetensors").read_bytes() == (
            par / "points" / pid / "model" / "model.safetensors"
        ).read_bytes()

    # experiment verify: a user's check that a recorded point reproduces here (same machine: it must)
    check = _cli("experiment", "verify", spec, seq, "--only", "num_rules=40*", "--out", tmp_path / "v", cwd=tmp_path)
    assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
    assert "weights: equal" in check.stdout and "num_rules=40+seed=0: reproduced" in check.stdout
    assert "platform: the same as recorded" in check.stdout
    assert not (tmp_path / "v" / "points" / "num_rules=20+seed=0").exists()  # only the point asked for


def _processes_naming(text: str, wait: float) -> list[str]:
    """Processes whose command line holds ``text``, once none are left or ``wait`` seconds pass."""
    import time

    deadline = time.time() + wait
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if text in cmdline:
                    found.append(f"{proc.name}: {cmdline[:200]}")
        if not found or time.time() > deadline:
            return found
        time.sleep(0.2)


def _tiny_max_steps(spec: Path) -> int:
    return yaml.safe_load(spec.read_text())["train"]["max_steps"]


def _record(out: Path, spec, point, **changes) -> Path:
    from dataclasses import asdict

    from divplugin.experiments.runner import PointResult, point_hash, point_id

    r = PointResult(
        point_id(point),
        point.values,
        "done",
        seed=point.seed,
        hash=point_hash(spec, point, out, {}),
        metrics={"m": 0.5},
        weights="ab" * 32,
        platform={"cpu": "A", "threads": 1},
    )
    for k, v in changes.items():
        setattr(r, k, v)
    f = out / "points" / r.id / "result.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(asdict(r)))
    return f


def test_verify_compares_weights_metrics_and_platform_and_names_what_it_cannot_compare(tmp_path):
    """--verify's judgement (the rerun itself is checked in the slow sweep test) and its errors."""
    from divplugin.experiments.runner import PointResult, point_id
    from divplugin.experiments.verify import compare, recorded_results, verify

    spec = load_spec("phase-transition-cpu")
    first, second = spec.points()[:2]
    ref = tmp_path / "ref"
    _record(ref, spec, first)
    rec = recorded_results(ref)[point_id(first)]
    same = PointResult(
        rec.id, rec.values, "done", metrics={"m": 0.5}, weights=rec.weights, platform={"cpu": "A", "threads": 1}
    )
    assert compare(rec, same).ok and compare(rec, same).platform == {}
    moved = PointResult(
        rec.id, rec.values, "done", metrics={"m": 0.25}, weights="cd" * 32, platform={"cpu": "B", "threads": 1}
    )
    c = compare(rec, moved)
    assert not c.ok and c.weights == "differ" and c.metrics == {"m": (0.5, 0.25)} and c.platform == {"cpu": ("A", "B")}
    old = PointResult(rec.id, rec.values, "done", metrics={"m": 0.5})  # made before weights were recorded
    assert compare(old, moved).weights == "not recorded" and not compare(old, moved).ok

    with pytest.raises(ConfigError, match="no finished point .* matching num_rules=100"):
        verify(spec, ref, tmp_path / "o", only=["num_rules=100*"])
    _record(ref, spec, second, hash="0" * 16)
    with pytest.raises(ConfigError, match="config hash here is .* the record's 0000000000000000"):
        verify(spec, ref, tmp_path / "o", only=[point_id(second)])
    with pytest.raises(ConfigError, match="already holds point"):
        verify(spec, ref, ref)
    with pytest.raises(ConfigError, match="is not a results folder"):
        recorded_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no finished point"):
        recorded_results(tmp_path / "empty")


def test_a_page_made_with_set_records_it_and_verify_reruns_with_it(tmp_path, monkeypatch):
    """--set overrides are part of a result: results.json and the page record them, --verify
    and --report use the record's when none are given, and a point made with them is not
    taken for one made without them."""
    from divplugin.experiments import collect_report
    from divplugin.experiments import verify as verify_mod
    from divplugin.experiments.report import recorded_overrides
    from divplugin.experiments.runner import point_hash, point_id

    spec = load_spec("phase-transition-cpu")
    p = spec.points()[0]
    sets = {"max_steps": 2000}
    f = _record(tmp_path, spec, p, hash=point_hash(spec, p, tmp_path, sets))
    results, files = collect_report(spec, tmp_path, sets)
    assert [r.id for r in results] == [point_id(p)]
    assert json.loads(files["json"].read_text())["overrides"] == sets == recorded_overrides(tmp_path)
    assert "Made with `--set max_steps=2000` on top of the spec." in files["page"].read_text()
    assert [r.id for r in collect_report(spec, tmp_path)[0]] == [point_id(p)]  # none given: the recorded ones
    assert recorded_overrides(tmp_path) == sets
    assert collect_report(spec, tmp_path, {})[0] == []  # explicitly none: the point is another config
    collect_report(spec, tmp_path, sets)
    seen = {}

    def fake_run(spec_, out, overrides, *a, **k):
        seen["overrides"] = overrides
        raise RuntimeError("stop here")

    monkeypatch.setattr("divplugin.experiments.sweep.run_experiment", fake_run)
    with pytest.raises(RuntimeError, match="stop here"):
        verify_mod.verify(spec, tmp_path, tmp_path / "again")
    assert seen["overrides"] == sets and f.is_file()


def test_launchers_and_eval_back_ends_build_the_right_commands(tmp_path):
    from divplugin.experiments.runner import eval_command, point_config, train_command

    data = _spec_data()
    data["train"] = {**data["train"], "launcher": "accelerate", "launcher_args": ["--num_processes", 2, "--multi_gpu"]}
    spec = validate_spec(data, "t")
    point = spec.points()[0]
    cfg = point_config(spec, point, tmp_path, {})
    cmd = train_command(cfg, tmp_path / "train.yml")
    assert cmd[0].endswith("accelerate") and cmd[1:] == [
        "launch",
        "--num_processes",
        "2",
        "--multi_gpu",
        "-m",
        "axolotl.cli.train",
        str(tmp_path / "train.yml"),
    ]
    cfg["launcher"] = ["torchrun", "--nproc_per_node", "8", "-m", "axolotl.cli.train"]
    assert train_command(cfg, tmp_path / "t.yml") == [*cfg["launcher"], str(tmp_path / "t.yml")]
    assert train_command({}, tmp_path / "t.yml")[1:] == ["train", str(tmp_path / "t.yml"), "--launcher", "python"]

    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_config.json").write_text("{}")
    vllm = spec.eval.model_copy(
        update={
            "model": "vllm",
            "device": "cuda",
            "batch_size": "auto",
            "model_args": {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85},
        }
    )
    cmd = eval_command(spec.model_copy(update={"eval": vllm}), {"base_model": "org/base"}, model, tmp_path / "e")
    args = dict(zip(cmd[::1], cmd[1:]))
    assert args["--model"] == "vllm" and args["--batch_size"] == "auto" and "--device" not in cmd
    assert args["--model_args"] == (
        f"pretrained=org/base,lora_local_path={model},enable_lora=True,"
        "tensor_parallel_size=2,gpu_memory_utilization=0.85"
    )
    dp = spec.eval.model_copy(update={"launcher": ["accelerate", "launch", "--num_processes", "8"], "device": "cuda"})
    cmd = eval_command(spec.model_copy(update={"eval": dp}), {"base_model": "b"}, model, tmp_path / "e")
    assert (
        cmd[:6] == ["accelerate", "launch", "--num_processes", "8", "-m", "divplugin"]
        and f"peft={model}" in cmd[cmd.index("--model_args") + 1]
    )


@pytest.mark.parametrize(
    "train, eval_, named",
    [
        ({"launcher": "srun"}, {}, "train.launcher"),
        ({"launcher_args": ["--num_processes", "2"]}, {}, "launcher_args"),
        ({}, {"batch_size": "big"}, "batch_size"),
        ({}, {"model": "tgi"}, "eval.model"),
    ],
)
def test_bad_launchers_and_back_ends_are_named(train, eval_, named):
    data = _spec_data()
    data["train"] = {**data["train"], **train}
    data["eval"] = {**data["eval"], **eval_}
    with pytest.raises(ConfigError, match=named):
        validate_spec(data, "t")


@pytest.mark.slow
def test_two_rank_accelerate_launch_shares_one_dataset(tmp_path):
    """Training launched as `accelerate launch --multi_gpu --num_processes 2` (2 CPU ranks,
    gloo): both ranks load the plugin, which generates the data once under its lock, byte for
    byte what a single-rank run generates. axolotl 0.21 then stops multi-process CPU runs in
    prepare_optim_env (a CUDA peer-to-peer check); where it does not, the run must finish and
    save a model that evaluates."""
    _needs_stack()
    spec = _tiny_spec(tmp_path, [20])
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert _cli("experiment", spec, "--out", single, cwd=tmp_path).returncode == 0
    r = _cli(
        "experiment",
        spec,
        "--out",
        multi,
        "--set",
        "launcher=accelerate",
        "--set",
        "launcher_args=[--multi_gpu, --num_processes, 2]",
        cwd=tmp_path,
    )
    point = json.loads((multi / "results.json").read_text())["points"][0]
    log = (multi / "points" / point["id"] / "train.log").read_text()
    assert "Plugin loaded successfully: divplugin.axolotl.DivPlugin" in log
    assert "local_rank: 1" in log or '"world_size": 2' in log  # a second rank ran
    if point["status"] == "done":
        assert r.returncode == 0 and 0.0 <= point["metrics"]["divplugin_markov_unseen/exact_match"] <= 1.0
    else:
        assert "Found no NVIDIA driver" in point["error"] and "prepare_optim_env" in log
    folders = sorted(p.name for p in (multi / "data").iterdir() if p.is_dir())
    assert folders == sorted(p.name for p in (single / "data").iterdir() if p.is_dir()) and len(folders) == 1
    for f in ("train.jsonl", "test.jsonl", "test_seen.jsonl", "manifest.json"):
        assert (multi / "data" / folders[0] / f).read_bytes() == (single / "data" / folders[0] / f).read_bytes()


def test_plan_counts_tokens_and_flops(tmp_path):
    from divplugin.experiments.plan import plan, tiny_params

    pytest.importorskip("transformers")
    from divplugin.models import build_tiny_model

    for arch in ("llama", "gpt2"):
        path = build_tiny_model(tmp_path / arch, arch=arch, layers=2, hidden=64, heads=4, max_len=128)
        import json as _json

        cfg = _json.loads((path / "config.json").read_text())
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), "pt") as f:
            n = sum(f.get_tensor(k).numel() for k in f.keys())
        est = tiny_params(2, 64, vocab=cfg["vocab_size"], max_len=128, arch=arch)
        assert abs(est - n) / n < 0.05, (arch, est, n)

    spec = load_spec("phase-transition-cpu")
    rows, basis = plan(spec, "a100")
    r = rows[0]
    assert basis["peak_tflops"] == 312.0 and r.examples == 50_000
    assert r.epochs == round(spec.train["max_steps"] * 64 / 50_000, 2)
    assert 20 < r.tokens_per_example < 60  # rule, input and output of ~12 symbols each
    assert abs(r.flops - 6 * r.params * r.tokens) < 1e-6 * r.flops
    chosen = plan(load_spec("select-long-tail-cpu"), "a100")[0][0]
    assert chosen.examples == 50_000 and chosen.epochs == round(1500 * 64 / 50_000, 2)  # the chosen rows, not the pool
    code = plan(load_spec("code-mixture"), "h100")[0][0]
    assert (
        code.params == 6.7e9 and abs(code.flops - 4 * 6.7e9 * 20_000 * 3 * 450) < 1
    )  # QLoRA: no base weight gradients
    with pytest.raises(ConfigError, match="unknown accelerator"):
        plan(spec, "tpu")
    data = _spec_data(plan={"params": -1})
    with pytest.raises(ConfigError, match="plan.params"):
        validate_spec(data, "t")


def test_training_speed_comes_from_the_trainer_and_shows_on_the_page(tmp_path):
    """steps/s is the trainer's own figure (its last report in the log; loading and data
    preparation not counted); pages of results made before it was recorded keep their table."""
    from divplugin.experiments.report import write_all
    from divplugin.experiments.runner import steps_per_second

    log = tmp_path / "train.log"
    log.write_text(
        "{'loss': '0.5', 'train_steps_per_second': '0.1'}\r 50%|#####     | 1/2\n"
        "{'train_runtime': '1412', 'train_samples_per_second': '3.4', 'train_steps_per_second': '0.212'}\n"
    )
    assert steps_per_second(log) == 0.212
    assert steps_per_second(tmp_path / "none.log") is None
    log.write_text("no report\n")
    assert steps_per_second(log) is None
    spec = validate_spec(_spec_data(seeds=[0]), "t")
    k = "divplugin_settings.num_rules"
    old = [_result({k: n}, 0, 0.5) for n in (20, 100, 400, 2000)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    header = next(
        ln
        for ln in write_all(spec, old, tmp_path / "a", 1.0)["page"].read_text().splitlines()
        if ln.startswith("| point |")
    )
    assert "steps/s" not in header
    for r, rate in zip(old, (2.5, 2.6, None, 1.25)):
        r.steps_per_second = rate
    lines = write_all(spec, old, tmp_path / "b", 1.0)["page"].read_text().splitlines()
    assert next(ln for ln in lines if ln.startswith("| point |")).endswith("| train s | eval s | steps/s |")
    assert next(ln for ln in lines if ln.startswith("| num_rules=2000 ")).endswith(" 1.25 |")
    assert next(ln for ln in lines if ln.startswith("| num_rules=400 ")).replace(" ", "").endswith("||")  # none


def test_a_page_says_how_it_was_made_and_what_to_read_with_care(tmp_path):
    """The page's title names the overrides and kernel variables the runs were made under; "How
    it was made" gives the recorded commands, or the command the records imply for a folder made
    before they were kept; "Read with care" flags uncommitted code, steps other than the spec's,
    several kinds of CPU and a note added to a record. The steps a training log shows are kept."""
    from divplugin.experiments.report import write_all
    from divplugin.experiments.runner import steps_trained

    log = tmp_path / "train.log"
    log.write_text(
        "Map: 100%|####| 50/50 [00:01]\n 40%|####  | 40/100 [00:10<00:15]\r100%|######| 100/100 [00:25<00:00]\n"
        "Saving: 100%|####| 3/3 [00:00]\n"
    )
    assert steps_trained(log, 100) == 100 and steps_trained(log, 2000) is None
    spec = validate_spec(_spec_data(seeds=[0]), "t")
    k = "divplugin_settings.num_rules"
    runs = [_result({k: n}, 0, 0.5) for n in (20, 100, 400, 2000)]
    base = {"cpu": "AMD EPYC", "threads": 1, "ATEN_CPU_CAPABILITY": "default", "commit": "abc"}
    for r in runs:
        r.platform, r.steps = dict(base), 2000
    runs[1].platform["commit"] = "abc-dirty"
    runs[2].steps = 3000
    runs[3].note = "trained with an override that was not recorded"
    out = tmp_path / "page"
    out.mkdir()
    page = write_all(spec, runs, out, 60.0, {"max_steps": 2000})["page"].read_text()
    assert page.startswith("# phase-transition-cpu (`--set max_steps=2000`, `ATEN_CPU_CAPABILITY=default`)\n")
    care = page.split("**Read with care:**")[1].split("![results]")[0]
    assert "uncommitted changes (commit ending -dirty): num_rules=100+seed=0" in care
    assert "trained other than the spec's 2000 steps: num_rules=400+seed=0 (3000)" in care
    assert "num_rules=2000+seed=0: trained with an override that was not recorded" in care
    assert "kinds of CPU" not in care
    made = page.split("## How it was made")[1].split("## Where it was made")[0]
    assert "`ATEN_CPU_CAPABILITY=default divplugin experiment phase-transition-cpu --out " in made
    assert "--set max_steps=2000 --threads 1`: rebuilt from the records" in made
    # a command that ran points is recorded and shown; a second machine is flagged
    runs[0].platform["cpu"] = "Intel Xeon"
    invocation = {
        "command": "divplugin experiment phase-transition-cpu --parallel 2",
        "parallel": 2,
        "threads": 1,
        "only": [],
        "env": {"ATEN_CPU_CAPABILITY": "default"},
    }
    page = write_all(spec, runs, out, 60.0, {"max_steps": 2000}, invocation)["page"].read_text()
    assert json.loads((out / "results.json").read_text())["commands"] == [invocation]
    assert (
        "- `ATEN_CPU_CAPABILITY=default divplugin experiment phase-transition-cpu --parallel 2` (--parallel 2, "
        "1 thread(s) a point)" in page
    )
    assert "made on 2 kinds of CPU (AMD EPYC; Intel Xeon)" in page
    write_all(spec, runs, out, 60.0, {"max_steps": 2000})  # a report keeps the commands the folder records
    assert json.loads((out / "results.json").read_text())["commands"] == [invocation]


def test_report_collects_points_done_elsewhere(tmp_path):
    """--report: the points other jobs finished (same config) make the page; a point whose
    config changed since is left out, and so is a folder without points."""
    from dataclasses import asdict

    from divplugin.experiments import collect_report
    from divplugin.experiments.runner import PointResult, point_hash, point_id

    spec = validate_spec(_spec_data(seeds=[0, 1]), "t")
    pts = spec.points()
    with pytest.raises(ConfigError, match="holds no points"):
        collect_report(spec, tmp_path)
    for p, y in ((pts[0], 0.1), (pts[3], 0.4)):
        d = tmp_path / "points" / point_id(p)
        d.mkdir(parents=True)
        r = PointResult(
            point_id(p),
            p.values,
            "done",
            seed=p.seed,
            hash=point_hash(spec, p, tmp_path, {}),
            metrics={"divplugin_markov_unseen/exact_match": y, "divplugin_markov_seen/exact_match": 1.0},
        )
        (d / "result.json").write_text(json.dumps(asdict(r)))
    stale = tmp_path / "points" / point_id(pts[1])
    stale.mkdir()
    (stale / "result.json").write_text(
        json.dumps(asdict(PointResult(point_id(pts[1]), pts[1].values, "done", hash="old")))
    )
    results, files = collect_report(spec, tmp_path)
    assert [r.id for r in results] == [point_id(pts[0]), point_id(pts[3])]
    csv_rows = files["csv"].read_text().splitlines()
    assert "0.400" in files["page"].read_text() and len(csv_rows) == 1 + len(pts)
    assert sum(",pending," in row for row in csv_rows) == len(pts) - 2
    # the results folder can move: hashes see paths inside it relative to it
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    tmp_path.rename(moved)
    assert len(collect_report(spec, moved)[0]) == 2


def test_a_point_is_redone_when_its_data_or_base_model_change(tmp_path):
    """The hash a finished point is matched by covers what the config only names: the content
    of a mixture file (and of presets), and the tiny base model's shape, which is rebuilt."""
    from divplugin.experiments.runner import BASE_STAMP, base_model_dir, build_base_model, point_hash

    mixture = tmp_path / "mix.yaml"
    source = {
        "name": "rules",
        "adapter": "divplugin",
        "count": 200,
        "generator": {"preset": "cpu-small", "settings": {"num_rules": 50, "num_examples": 300}},
    }
    mixture.write_text(yaml.safe_dump({"name": "m", "total": 200, "sources": [source], "dedup": {"exact": False}}))
    train = {k: v for k, v in _spec_data()["train"].items() if k not in ("divplugin_preset", "divplugin_settings")}
    spec = validate_spec(
        _spec_data(
            train={**train, "divplugin_mixture": str(mixture)},
            seed_keys=["seed"],
            sweep={"learning_rate": [1e-3]},
            plot={"x": "learning_rate", "metrics": ["a/b"]},
        ),
        "t",
    )
    point = spec.points()[0]
    before = point_hash(spec, point, tmp_path, {})
    assert point_hash(spec, point, tmp_path, {}) == before
    source["generator"]["settings"]["num_rules"] = 60
    mixture.write_text(yaml.safe_dump({"name": "m", "total": 200, "sources": [source], "dedup": {"exact": False}}))
    edited = point_hash(spec, point, tmp_path, {})
    assert edited != before
    mixture.write_text("name: m\ntotal: -1\n")  # broken: the point is redone (and fails, recorded)
    assert point_hash(spec, point, tmp_path, {}) not in (before, edited)

    gen = validate_spec(_spec_data(), "t")
    deeper = gen.model_copy(
        update={"base_model": gen.base_model.model_copy(update={"layers": gen.base_model.layers + 1})}
    )
    p = gen.points()[0]
    assert point_hash(gen, p, tmp_path, {}) != point_hash(deeper, p, tmp_path, {})
    small = gen.model_copy(
        update={"base_model": gen.base_model.model_copy(update={"layers": 1, "hidden": 16, "heads": 2})}
    )
    folder = base_model_dir(tmp_path, 0)
    build_base_model(small, tmp_path, 0)
    built = (folder / BASE_STAMP).stat().st_mtime_ns
    build_base_model(small, tmp_path, 0)
    assert (folder / BASE_STAMP).stat().st_mtime_ns == built  # same settings: kept
    two = small.model_copy(update={"base_model": small.base_model.model_copy(update={"layers": 2})})
    build_base_model(two, tmp_path, 0)
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 2
    assert not list(tmp_path.glob(".*partial*"))
    # two jobs sharing the folder at once (cluster jobs): one builds, both end with the model
    import concurrent.futures as cf
    import multiprocessing as mp

    three = small.model_copy(update={"base_model": small.base_model.model_copy(update={"layers": 3})})
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        list(ex.map(build_base_model, [three, three], [tmp_path, tmp_path], [0, 0]))
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 3
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*old*"))


def test_an_output_folder_named_like_a_spec_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "phase-transition-cpu").mkdir()  # e.g. divplugin experiment ... --out phase-transition-cpu
    assert load_spec("phase-transition-cpu").name == "phase-transition-cpu"
    assert load_spec("phase-transition-cpu-seeds").base == "phase-transition-cpu-6-layers"
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a YAML file"):
        load_spec("mine")


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_committed_results_are_current_for_their_specs():
    """Every result under docs/results/<spec>/points/ is what the committed spec and code
    would resume from: its hash matches (training config, resolved data, base model, eval)."""
    from divplugin.experiments.report import recorded_overrides
    from divplugin.experiments.runner import finished, point_id

    folders = [d for d in sorted((DOCS / "results").iterdir()) if (d / "points").is_dir()]
    assert folders
    for folder in folders:
        # a folder is named for its spec, or for its spec made another way (the spec's name is in results.json)
        spec = load_spec(json.loads((folder / "results.json").read_text())["spec"]["name"])
        overrides = recorded_overrides(folder)
        ids = {point_id(p): p for p in spec.points()}
        done = sorted(f.parent.name for f in (folder / "points").glob("*/result.json"))
        assert done and set(done) <= set(ids), (
            f"{folder.name}: results for points the spec has not: {set(done) - set(ids)}"
        )
        stale = [i for i in done if finished(spec, ids[i], folder, overrides) is None]
        assert not stale, f"{folder.name}: results the committed spec would redo: {stale}"


def test_findings_quote_the_results_pages_they_link():
    """Each figure with three decimals in a row of docs/findings.md is on a results page the
    row links to (means and spreads as the page prints them)."""
    import re

    rows = [line for line in (DOCS / "findings.md").read_text().splitlines() if line.startswith("| **")]
    assert len(rows) >= 6
    for row in rows:
        claim, _, ours, verdict = [c.strip() for c in row.strip("|").split("|")]
        pages = set(re.findall(r"\(results/([\w-]+)/README\.md\)", ours))
        assert pages, f"{claim[:40]}: links no results page"
        text = " ".join((DOCS / "results" / p / "README.md").read_text() for p in pages)
        figures = set(re.findall(r"(?<![\d.])\d\.\d{3}(?!\d)", ours + " " + verdict))
        missing = sorted(f for f in figures if f not in text)
        assert not missing, f"{claim[:40]}: {missing} are on none of {sorted(pages)}"
