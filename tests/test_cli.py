"""The divplugin command line, run as a user runs it."""

import json
import os
import subprocess
import sys

import pytest


def cli_subprocess(*args, cwd=None):
    """The command as a user runs it (``python -m divplugin``), in a process of its own."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "divplugin", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_generate_from_yaml_with_flag_overrides(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "generator: markov_rewrite\nseed: 4\nnum_rules: 20\nnum_examples: 2000\ntest_rules: 10\n"
        "test_examples: 200\nseen_test_examples: 100\ninput_len: 16\npattern_len: [2, 3]\nalphabet: '0123456789'\n"
    )
    r = cli_subprocess(
        "generate",
        "--config",
        cfg,
        "--out",
        tmp_path / "out",
        "--noop-fraction",
        "0.2",
        "--set",
        "occurrences=1,2",
        "--workers",
        "2",
        "--format",
        "jsonl,parquet",
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["config"]["noop_fraction"] == 0.2 and m["config"]["occurrences"] == [1, 2]
    assert m["config"]["alphabet"] == "0123456789" and m["seed"] == 4
    assert m["splits"]["train"]["examples"] == 2000
    assert "train" in r.stdout and "2,000" in r.stdout and "no-op" in r.stdout
    r2 = cli_subprocess("inspect", tmp_path / "out")
    assert r2.returncode == 0 and "2,000" in r2.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "markov_rewrite", "--out", "{o}", "--num-rulez", "3"], "did you mean --num-rules"),
        (["generate", "markov_rewrite", "--out", "{o}", "--alpha", "0"], "alpha: must be in"),
        (["generate", "markov_rewrite", "--out", "{o}", "--noop-fraction", "2"], "noop_fraction"),
        (["generate", "nope", "--out", "{o}"], "unknown generator 'nope'"),
        (["generate", "--out", "{o}"], "name a generator"),
        (["generate", "markov_rewrite", "--config", "missing.yaml", "--out", "{o}"], "does not exist"),
        (["generate", "markov_rewrite", "--out", "{o}", "--format", "csv"], "formats"),
        (["generate", "markov_rewrite", "--out", "{o}", "--input-len"], "expects a value"),
    ],
)
def test_generate_errors_exit_2_and_name_the_problem(tmp_path, args, message, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli(*[a.replace("{o}", str(tmp_path / "o")) for a in args])
    assert r.exit_code == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert not (tmp_path / "o").exists()


def test_generate_conflicting_generator_and_bad_yaml(tmp_path, cli):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("generator: markov_program\n")
    r = cli("generate", "markov_rewrite", "-c", cfg, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "markov_program" in r.stderr
    cfg.write_text("- just\n- a list\n")
    r = cli("generate", "markov_rewrite", "-c", cfg, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "mapping" in r.stderr
    cfg.write_text("num_rules: [unclosed\n")
    r = cli("generate", "markov_rewrite", "-c", cfg, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "not valid YAML" in r.stderr


def test_generate_refuses_existing_output(tmp_path, cli):
    (tmp_path / "o").mkdir()
    r = cli(
        "generate",
        "markov_program",
        "-o",
        tmp_path / "o",
        "--num-examples",
        "100",
        "--num-programs",
        "5",
        "--test-programs",
        "2",
        "--test-examples",
        "10",
        "--seen-test-examples",
        "0",
    )
    assert r.exit_code == 2 and "--overwrite" in r.stderr


def test_generators_listing_and_settings(cli):
    r = cli("generators")
    assert r.exit_code == 0 and "markov_rewrite" in r.stdout and "markov_program" in r.stdout
    r = cli("generators", "markov_rewrite")
    assert r.exit_code == 0 and "noop_fraction" in r.stdout and "occurrences" in r.stdout


def test_markov_run(tmp_path, cli):
    rules = tmp_path / "r.txt"
    rules.write_text("# swap\nba -> ab\n")
    r = cli("markov", "run", rules, "bbaa", "--trace")
    assert r.exit_code == 0 and "bbaa => aabb" in r.stdout and "halted, 4 steps" in r.stdout
    rules.write_text("ba => ab\n")
    r = cli("markov", "run", rules, "x")
    assert r.exit_code == 2 and "line 1" in r.stderr


def test_one_value_for_a_list_setting_is_a_list_of_one():
    from divplugin.generators.markov_rewrite import MarkovRewriteConfig
    from divplugin.generators.settings import parse_overrides

    got = parse_overrides(
        ["--families", "mirror", "--test-families=unconstrained", "--k-range", "3", "--alphabet", "ab,c"],
        MarkovRewriteConfig,
        "markov_rewrite",
    )
    assert got == {"families": ["mirror"], "test_families": ["unconstrained"], "k_range": 3, "alphabet": "ab,c"}
    assert parse_overrides(["--families", "repeated,mirror"], MarkovRewriteConfig, "m") == {
        "families": ["repeated", "mirror"]
    }


def test_generate_from_preset_with_overrides(tmp_path, cli):
    r = cli(
        "generate",
        "--preset",
        "cpu-small",
        "-o",
        tmp_path / "o",
        "--num-rules",
        "20",
        "--num-examples",
        "400",
        "--test-examples",
        "40",
        "--seen-test-examples",
        "0",
    )
    assert r.exit_code == 0, r.stderr
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["config"]["alphabet"] == "abcdefgh" and m["config"]["num_rules"] == 20
    assert list(m["splits"]) == ["train", "test"]
    r = cli("generate", "markov_program", "--preset", "cpu-small", "-o", tmp_path / "p")
    assert r.exit_code == 2 and "is for generator 'markov_rewrite'" in r.stderr
    r = cli("presets")
    assert r.exit_code == 0 and "paper-main" in r.stdout
    r = cli("presets", "paper-families")
    assert r.exit_code == 0 and "test_k_range" in r.stdout


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--hidden", "30", "--heads", "4"], "--hidden"),
        (["--arch", "gpt3"], "--arch"),
        (["--layers", "0"], "--layers"),
    ],
)
def test_model_tiny_bad_flags_are_named(flags, named, tmp_path, cli):
    r = cli("model", "tiny", tmp_path / "m", *flags)
    assert r.exit_code == 2 and named in r.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_model_tiny_builds_a_loadable_model(arch, tmp_path, cli):
    pytest.importorskip("transformers")
    r = cli("model", "tiny", tmp_path / "m", "--arch", arch, "--layers", "1", "--hidden", "32", "--heads", "2")
    assert r.exit_code == 0, r.stderr
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert model.config.model_type == arch
    ids = tok("ab -> c\nxaby\n")["input_ids"]
    assert len(ids) == len("ab -> c\nxaby\n") and tok.decode(ids) == "ab -> c\nxaby\n"
    again = cli("model", "tiny", tmp_path / "m")
    assert again.exit_code == 2 and "--overwrite" in again.stderr
