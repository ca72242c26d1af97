"""The experiment driver: specs, and real sweeps (axolotl + lm-eval on CPU, tiny settings)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from divplugin.errors import ConfigError
from divplugin.experiments import load_spec, spec_names
from divplugin.experiments.spec import set_dotted, validate_spec


def _spec_data(**changes):
    data = yaml.safe_load(Path(__file__).resolve().parents[1].joinpath(
        "divplugin", "experiments", "specs", "phase-transition-cpu.yaml").read_text())
    data.update(changes)
    return data


def test_builtin_specs_load():
    assert {"phase-transition-cpu", "phase-transition-paper", "long-tail", "families", "code-mixture"} <= set(spec_names())
    for name in spec_names():
        spec = load_spec(name)
        assert spec.points() and spec.quick_variant().points()
        assert all(spec.plot.x in p for p in spec.points())


def test_points_are_the_product_of_the_sweep():
    spec = validate_spec(_spec_data(sweep={"divplugin_settings.num_rules": [20, 200], "learning_rate": [0.1, 0.2, 0.3]}), "t")
    pts = spec.points()
    assert len(pts) == 6 and pts[0] == {"divplugin_settings.num_rules": 20, "learning_rate": 0.1}


def test_set_dotted_copies():
    cfg = {"a": {"b": 1}, "c": 2}
    new = set_dotted(cfg, "a.d.e", 5)
    assert new == {"a": {"b": 1, "d": {"e": 5}}, "c": 2} and cfg == {"a": {"b": 1}, "c": 2}


@pytest.mark.parametrize("changes, named", [
    ({"sweep": {}}, "sweep"),
    ({"sweep": {"divplugin_settings.num_rules": []}}, "num_rules"),
    ({"sweep": {"divplugin_settings.num_rules": [20, 20]}}, "repeated"),
    ({"plot": {"x": "nope", "metrics": ["divplugin_markov_unseen/exact_match"]}}, "plot.x"),
    ({"plot": {"x": "divplugin_settings.num_rules", "metrics": ["exact_match"]}}, "task/metric"),
    ({"eval": {"tasks": []}}, "eval.tasks"),
    ({"colour": "blue"}, "colour"),
])
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


def test_cli_lists_and_rejects(tmp_path):
    listed = _cli("experiment", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and all(name in listed.stdout for name in spec_names())
    bad = _cli("experiment", "phase-transition-cp", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'phase-transition-cpu'" in bad.stderr
    bad_set = _cli("experiment", "phase-transition-cpu", "--set", "max_steps", cwd=tmp_path)
    assert bad_set.returncode == 2 and "KEY=VALUE" in bad_set.stderr
    assert not any(tmp_path.iterdir())  # nothing written


# -- real sweeps --------------------------------------------------------------------
def _needs_stack():
    pytest.importorskip("axolotl", reason="needs the [axolotl] extra")
    pytest.importorskip("lm_eval", reason="needs the [eval] extra")


TINY = {"arch": "llama", "layers": 1, "hidden": 32, "heads": 2, "max_len": 128}
SMALL = {"num_examples": 400, "test_rules": 10, "test_examples": 30, "seen_test_examples": 30, "seed": 0}


def _cli(*args, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "divplugin", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=1200)


def _tiny_spec(tmp_path: Path, rules: list[int]) -> Path:
    data = _spec_data(name="tiny", base_model=TINY, sweep={"divplugin_settings.num_rules": rules},
                      quick={}, expect={"metric": "divplugin_markov_unseen/exact_match", "first_at_most": 1.0})
    data["train"] = {**data["train"], "divplugin_settings": SMALL, "max_steps": 3, "micro_batch_size": 8, "logging_steps": 1}
    data["eval"] = {**data["eval"], "limit": 5, "batch_size": 8}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


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
    assert len(csv_rows) == 3 and csv_rows[1].startswith("num_rules=20,20,done,")
    assert (out / "points" / "num_rules=20" / "model" / "divplugin_data" / "test.jsonl").is_file()

    log = out / "points" / "num_rules=20" / "train.log"
    stamp = log.stat().st_mtime_ns
    again = _cli("experiment", spec, "--out", out, cwd=tmp_path)
    assert again.returncode == 1
    assert log.stat().st_mtime_ns == stamp  # the finished point was not redone
    assert json.loads((out / "results.json").read_text())["points"][0] == results[0]
    assert (out / "points" / "num_rules=1000000000" / "train.log").stat().st_mtime_ns > stamp  # the failed one was retried


@pytest.mark.slow
@pytest.mark.parametrize("name", ["phase-transition-paper", "long-tail", "families"])
def test_gpu_specs_run_their_first_steps_on_cpu(name, tmp_path):
    _needs_stack()
    from divplugin.experiments.runner import build_base_model, run_point

    spec = load_spec(name).quick_variant()
    spec = spec.model_copy(update={
        "base_model": spec.base_model.model_copy(update={"layers": 1, "hidden": 32, "heads": 2}),
        "eval": spec.eval.model_copy(update={"limit": 2, "batch_size": 2, "device": "cpu",
                                              "args": ["--gen_kwargs", "max_gen_toks=8"]}),
    })
    overrides = {"max_steps": 2, "micro_batch_size": 2, "bf16": False, "tf32": False, "optimizer": "adamw_torch",
                 "divplugin_settings.num_examples": 2000, "divplugin_settings.test_examples": 20,
                 "divplugin_settings.seen_test_examples": 20}
    build_base_model(spec, tmp_path)
    result = run_point(spec, spec.points()[0], tmp_path, overrides)
    assert result.status == "done", result.error
    assert set(result.metrics) >= {f"{m}" for m in spec.plot.metrics}


@pytest.mark.slow
def test_code_mixture_spec_runs_its_first_steps_on_cpu(tmp_path, mixture_sources, benchmarks_dir, monkeypatch):
    """QLoRA on a local mixture with a tiny model, then the four code tasks (sandboxed) on 2 problems each."""
    _needs_stack()
    from divplugin.experiments.runner import run_point
    from divplugin.models import build_tiny_llama

    monkeypatch.setenv("DIVPLUGIN_BENCHMARKS", str(benchmarks_dir))
    paths, cache = mixture_sources
    spec = load_spec("code-mixture").quick_variant()
    spec = spec.model_copy(update={"eval": spec.eval.model_copy(update={
        "limit": 2, "batch_size": 2, "device": "cpu", "args": ["--confirm_run_unsafe_code", "--gen_kwargs", "max_gen_toks=8"]})})
    model = build_tiny_llama(tmp_path / "tiny", layers=1, hidden=32, heads=2, max_len=1024)
    overrides = {"base_model": str(model), "max_steps": 2, "micro_batch_size": 2, "bf16": False, "tf32": False,
                 "flash_attention": False, "sample_packing": False, "pad_to_sequence_len": False, "optimizer": "adamw_torch",
                 "gradient_checkpointing": False, "lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False,
                 "divplugin_mixture_paths": {k: paths[k] for k in ("oss", "alpaca", "cot")}, "divplugin_cache_dir": str(cache)}
    result = run_point(spec, spec.points()[0], tmp_path, overrides)
    assert result.status == "done", result.error
    assert (tmp_path / "points" / "divplugin_mixture_row=oss20k" / "model" / "adapter_config.json").is_file()
    assert all(0.0 <= result.metrics[m] <= 1.0 for m in spec.plot.metrics)
