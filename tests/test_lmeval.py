"""The lm-eval tasks, run with the real lm_eval: oracle runs score 1.0, a tiny model runs end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")


def _eval(args, cwd, timeout=600):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "divplugin", "eval", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc


def _results(out_dir: Path) -> dict:
    files = sorted(out_dir.rglob("results_*.json"))
    assert files, f"no results under {out_dir}"
    return json.loads(files[-1].read_text())["results"]


def test_tasks_dir_ships_every_task():
    from divplugin.lmeval.run import tasks_dir

    names = {p.stem for p in tasks_dir().rglob("divplugin_*.yaml")}
    for b in ("humaneval", "humaneval_plus", "mbpp", "mbpp_plus"):
        assert {f"divplugin_{b}", f"divplugin_{b}_sampled"} <= names
    assert {
        "divplugin_markov",
        "divplugin_markov_unseen",
        "divplugin_markov_seen",
        "divplugin_markov_noop",
        "divplugin_markov_hasop",
        "divplugin_markov_programs",
        "divplugin_markov_family_mirror",
    } <= names


def test_oracle_scores_one_on_markov_tasks_from_a_generated_folder(tmp_path):
    data = tmp_path / "data"
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "generate",
            "markov_rewrite",
            "--preset",
            "cpu-small",
            "--num-examples",
            "3000",
            "--test-examples",
            "60",
            "--seen-test-examples",
            "40",
            "--noop-fraction",
            "0.25",
            "--out",
            str(data),
        ],
        capture_output=True,
        text=True,
    )
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "out"
    proc = _eval(
        [
            "--model",
            "divplugin-oracle",
            "--tasks",
            "divplugin_markov_unseen,divplugin_markov_seen,divplugin_markov_noop,divplugin_markov_hasop",
            "--metadata",
            json.dumps({"data": str(data)}),
            "--output_path",
            str(out),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(out)
    for task in ("unseen", "seen", "noop", "hasop"):
        assert res[f"divplugin_markov_{task}"]["exact_match,none"] == 1.0
    assert "divplugin summary" in proc.stdout
    rows = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    noops = sum(r["metadata"]["noop"] for r in rows)
    assert noops and noops < len(rows)


@pytest.mark.slow
def test_oracle_scores_one_on_code_tasks(tmp_path, benchmarks_dir):
    out = tmp_path / "out"
    proc = _eval(
        [
            "--model",
            "divplugin-oracle",
            "--tasks",
            "divplugin_humaneval,divplugin_humaneval_plus,divplugin_mbpp_plus",
            "--limit",
            "8",
            "--confirm_run_unsafe_code",
            "--output_path",
            str(out),
            "--log_samples",
            "--metadata",
            json.dumps({"data": str(benchmarks_dir), "results_dir": str(tmp_path / "res")}),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(out)
    for task in ("divplugin_humaneval", "divplugin_humaneval_plus", "divplugin_mbpp_plus"):
        assert res[task]["pass@1,execute"] == 1.0
    for task in ("divplugin_humaneval_plus", "divplugin_mbpp_plus"):  # EvalPlus's base score beside the plus one
        assert res[task]["base_pass@1,execute"] == 1.0
    assert "base_pass@1,execute" not in res["divplugin_humaneval"]
    per_sample = (tmp_path / "res" / "mbpp_plus.jsonl").read_text().splitlines()
    assert len(per_sample) == 8 and all(json.loads(x)["status"] == "pass" for x in per_sample)


def test_code_tasks_refuse_to_run_code_without_confirmation(tmp_path, benchmarks_dir):
    proc = _eval(["--model", "divplugin-oracle", "--tasks", "divplugin_humaneval", "--limit", "2"], tmp_path)
    assert proc.returncode != 0
    assert "confirm_run_unsafe_code" in proc.stderr + proc.stdout


def test_bad_metadata_is_named(tmp_path):
    proc = _eval(
        [
            "--model",
            "divplugin-oracle",
            "--tasks",
            "divplugin_markov_unseen",
            "--metadata",
            json.dumps({"size": 10, "num_rulez": 5}),
        ],
        tmp_path,
    )
    assert proc.returncode != 0
    assert "num_rulez" in proc.stderr


@pytest.mark.slow
def test_tiny_model_end_to_end(tmp_path):
    from divplugin.models import build_tiny_llama

    model = build_tiny_llama(tmp_path / "tiny", layers=1, hidden=32, heads=2)
    out = tmp_path / "out"
    proc = _eval(
        [
            "--model",
            "hf",
            "--model_args",
            f"pretrained={model},dtype=float32",
            "--device",
            "cpu",
            "--tasks",
            "divplugin_markov_unseen,divplugin_markov_programs",
            "--limit",
            "4",
            "--gen_kwargs",
            "max_gen_toks=8",
            "--metadata",
            json.dumps({"size": 20}),
            "--output_path",
            str(out),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = _results(out)
    for task in ("divplugin_markov_unseen", "divplugin_markov_programs"):
        assert 0.0 <= res[task]["exact_match,none"] <= 1.0
        assert 0.0 <= res[task]["similarity,none"] < 1.0  # an untrained model does not know the answers


@pytest.mark.slow
def test_plain_lm_eval_finds_the_tasks_with_include_path(tmp_path):
    from divplugin.lmeval.run import tasks_dir

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lm_eval",
            "validate",
            "--tasks",
            "divplugin_markov_unseen,divplugin_humaneval_plus",
            "--include_path",
            str(tasks_dir()),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_markov_documents_come_from_the_named_folders(tmp_path):
    from divplugin.lmeval.markov import load_markov

    folders = {}
    for name, args in (
        ("rewrite", ["markov_rewrite", "--preset", "cpu-small", "--num-examples", "3000"]),
        ("programs", ["markov_program", "--preset", "programs-small", "--num-examples", "3000"]),
    ):
        folders[name] = tmp_path / name
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "divplugin",
                "generate",
                *args,
                "--test-examples",
                "30",
                "--seen-test-examples",
                "10",
                "--out",
                str(folders[name]),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    answers = {
        n: [json.loads(x)["output"] for x in (f / "test.jsonl").read_text().splitlines()] for n, f in folders.items()
    }
    unseen = load_markov("unseen", data=str(folders["rewrite"]), programs_data=str(folders["programs"]))["test"]
    assert unseen["answer"] == answers["rewrite"]
    programs = load_markov("programs", programs_data=str(folders["programs"]))["test"]
    assert programs["answer"] == answers["programs"]


def test_programs_metadata_sets_the_program_task_apart_from_the_rewrite_tasks():
    """One --metadata for a run that scores rewrite rules and programs: the rewrite tasks read
    the top-level settings, divplugin_markov_programs its own mapping."""
    from divplugin.errors import ConfigError
    from divplugin.generators import create
    from divplugin.generators.settings import resolve_generator
    from divplugin.lmeval.markov import load_markov

    metadata = {
        "preset": "cpu-small",
        "input_len": 16,
        "num_rules": 50,
        "size": 20,
        "programs": {"preset": "programs-small", "input_len": [4, 6], "num_programs": 30, "size": 20},
    }
    rules = load_markov("unseen", **metadata)["test"]
    assert {len(p.rsplit("\n", 2)[-2]) for p in rules["prompt"]} == {16}
    programs = load_markov("programs", **metadata)["test"]
    name, config = resolve_generator(
        "markov_program",
        "programs-small",
        [("test", {"input_len": [4, 6], "num_programs": 30, "test_examples": 20, "seen_test_examples": 20})],
    )
    expected = [r["output"] for r in create(name, config).iter_split("test")]
    assert programs["answer"] == expected and set(programs["family"]) == {"program"}
    with pytest.raises(ConfigError, match="programs"):
        load_markov("programs", programs="programs-small")


@pytest.mark.slow
def test_data_parallel_evaluation_gives_the_answers_of_one_process(tmp_path):
    """lm-eval's data-parallel hf run (accelerate launch, 2 CPU ranks over gloo) answers every
    document as one process does."""
    from divplugin.models import build_tiny_llama

    model = build_tiny_llama(tmp_path / "tiny", layers=1, hidden=32, heads=2)
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "generate",
            "--preset",
            "cpu-small",
            "--num-rules",
            "20",
            "--num-examples",
            "200",
            "--test-examples",
            "24",
            "--seen-test-examples",
            "24",
            "--out",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
    )
    assert gen.returncode == 0, gen.stderr
    common = [
        "eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},dtype=float32",
        "--device",
        "cpu",
        "--tasks",
        "divplugin_markov_unseen,divplugin_markov_seen",
        "--batch_size",
        "4",
        "--gen_kwargs",
        "max_gen_toks=8",
        "--log_samples",
        "--metadata",
        json.dumps({"data": str(tmp_path / "data")}),
    ]
    # accelerate's launcher as a module: an environment may have the package without its script
    runs = {
        "one": [sys.executable, "-m", "divplugin"],
        "two": [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "-m",
            "divplugin",
        ],
    }
    answers = {}
    for name, prefix in runs.items():
        proc = subprocess.run(
            [*prefix, *common, "--output_path", str(tmp_path / name)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = {}
        for f in (tmp_path / name).rglob("samples_*.jsonl"):
            task = f.name.removeprefix("samples_").rsplit("_", 1)[0]
            for line in f.read_text().splitlines():
                r = json.loads(line)
                got[(task, r["doc_id"])] = r["filtered_resps"]
        answers[name] = got
    assert len(answers["one"]) == 48 and answers["one"] == answers["two"]


def test_task_configs_carry_nothing_tied_to_one_back_end():
    """Generation settings every lm-eval back-end (hf, vllm, APIs) reads: stop strings, greedy or
    sampled, a token budget; no batch sizes, devices or chat templates in a task."""
    import yaml

    from divplugin.lmeval.run import tasks_dir

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    allowed = {"until", "do_sample", "max_gen_toks", "temperature", "top_p"}
    for path in tasks_dir().rglob("*"):
        if not path.is_file() or not (path.suffix == ".yaml" or path.name.endswith("_yaml")):
            continue
        cfg = yaml.load(path.read_text(), Loader=Loader) or {}
        assert not {"batch_size", "device", "apply_chat_template", "model_args"} & set(cfg), path
        kwargs = cfg.get("generation_kwargs") or {}
        assert set(kwargs) <= allowed, (path, kwargs)
        if "until" in kwargs:
            assert isinstance(kwargs["until"], list) and all(isinstance(u, str) and u for u in kwargs["until"])


def test_lm_eval_patching_is_undone_even_on_errors():
    import lm_eval
    import lm_eval.tasks

    from divplugin.lmeval.run import patched_lm_eval

    before = (sys.argv, lm_eval.tasks.TaskManager, lm_eval.simple_evaluate)
    with pytest.raises(RuntimeError):
        with patched_lm_eval(["--tasks", "divplugin_markov"], True, {}):
            assert sys.argv[:3] == ["lm_eval", "run", "--tasks"]
            assert lm_eval.tasks.TaskManager is not before[1] and lm_eval.simple_evaluate is not before[2]
            raise RuntimeError("boom")
    assert (sys.argv, lm_eval.tasks.TaskManager, lm_eval.simple_evaluate) == before
