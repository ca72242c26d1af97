"""lm-eval glue for the code tasks: documents, prompts, and execution in one parallel pass.

Each task has a mode (``divplugin.codeeval.prompts``): ``completion`` tasks show the raw
prompt, ``*_instruct`` tasks the prompt that EvalPlus 0.3.1 shows a model with a chat
template, rendered here with the model's own template (found from the model's arguments,
which lm-eval passes on as metadata). The task's filter runs every generation of the task
at once in the sandbox (lm-eval calls it only for tasks marked ``unsafe_code``, i.e. after
``--confirm_run_unsafe_code``) and turns each document's responses into pass/fail statuses;
``process_results`` then reports pass@k.

``--metadata`` keys: ``data`` (a local HumanEval+/MBPP+ release file or folder),
``workers``, ``results_dir`` (per-sample results, resumable; default: the divplugin cache),
``mode`` (``completion``, ``instruct`` or ``auto``: EvalPlus's rule, instruct when the
tokenizer has a chat template; overrides every code task's own mode).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from divplugin.codeeval.passk import pass_at_k
from divplugin.core.host import usable_cores
from divplugin.errors import ConfigError, did_you_mean

TASK_MODES = ("completion", "instruct", "auto")
KEYS = ("data", "workers", "results_dir", "mode")
# Model arguments that name where a tokenizer is, most specific first (hf: tokenizer, peft,
# pretrained; vllm: tokenizer, lora_local_path, pretrained; API back-ends: tokenizer, model).
TOKENIZER_KEYS = ("tokenizer", "peft", "lora_local_path", "pretrained", "model")

# lm-eval hands --metadata to the task's `custom_dataset` (load_code) but not to its filter
# (execute_all): the documents carry what the filter needs to know, as columns.
RUN_COLUMNS = ("data", "workers", "results_dir")


@lru_cache(maxsize=8)
def _problems(benchmark: str, data: str | None):
    from divplugin.codeeval import load_problems

    return load_problems(benchmark, data)


def _is_tokenizer_folder(path: str) -> bool:
    p = Path(path)
    return not p.is_dir() or (p / "tokenizer_config.json").is_file()


def tokenizer_source(metadata: dict) -> str | None:
    """Where the model's tokenizer is, from the model's arguments in lm-eval's metadata; an
    adapter folder counts only when it holds a tokenizer (axolotl saves one beside it)."""
    for key in TOKENIZER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            if key in ("peft", "lora_local_path") and not _is_tokenizer_folder(value):
                continue
            return value
    return None


@lru_cache(maxsize=4)
def load_tokenizer(source: str, trust_remote_code: bool = False, revision: str | None = None):
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ConfigError(
            "instruct mode renders prompts with the model's tokenizer: pip install transformers "
            "(or 'divplugin[axolotl]')",
            "mode",
        ) from None
    kwargs = {"trust_remote_code": trust_remote_code, **({"revision": revision} if revision else {})}
    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"could not load the tokenizer of {source!r} to render instruct prompts: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
            "tokenizer",
        ) from None


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def resolve_mode(mode: str, metadata: dict):
    """(mode, tokenizer or None): ``auto`` becomes instruct when the model's tokenizer has
    a chat template, as EvalPlus decides."""
    from divplugin.codeeval.prompts import has_chat_template

    if mode not in TASK_MODES:
        raise ConfigError(
            f"unknown mode {mode!r}{did_you_mean(mode, TASK_MODES)} Choose from: {', '.join(TASK_MODES)}", "mode"
        )
    if mode == "completion":
        return mode, None
    source = tokenizer_source(metadata)
    if source is None:
        raise ConfigError(
            "instruct mode renders the prompt with the model's chat template, but no model or "
            "tokenizer was named: give --model_args pretrained=MODEL (or tokenizer=DIR)",
            "mode",
        )
    tok = load_tokenizer(source, _truthy(metadata.get("trust_remote_code", False)), metadata.get("revision"))
    if mode == "auto":
        return ("instruct" if has_chat_template(tok) else "completion"), tok
    return mode, tok


def check_keys(metadata: dict) -> None:
    """A metadata key that is close to one of the code tasks' keys is taken for a typo."""
    for key in metadata:
        if key not in KEYS:
            hint = did_you_mean(key, KEYS, cutoff=0.75)
            if hint:
                raise ConfigError(f"unknown metadata key of the divplugin code tasks{hint}", key)


def reference_answer(problem, mode: str) -> str:
    """What a perfect model would answer in `mode` (the oracle's answer)."""
    if mode == "completion" and problem.family == "humaneval":
        return problem.canonical_solution
    return problem.reference_code


def load_code(benchmark: str, task_mode: str = "completion", data: str | None = None, **metadata):
    """`custom_dataset` of the divplugin code tasks: {"test": datasets.Dataset}."""
    import datasets

    from divplugin.codeeval.prompts import model_prompt

    check_keys(metadata)
    mode, tok = resolve_mode(str(metadata.get("mode") or task_mode), metadata)
    data = data or os.environ.get("DIVPLUGIN_BENCHMARKS") or None
    problems = _problems(benchmark, data)
    run = {"data": data, **{k: metadata.get(k) for k in ("workers", "results_dir")}}
    logging.getLogger(__name__).info("divplugin code: %s in %s mode", benchmark, mode)
    return {
        "test": datasets.Dataset.from_dict(
            {
                "task_id": [p.task_id for p in problems],
                "benchmark": [benchmark] * len(problems),
                "mode": [mode] * len(problems),
                "prompt": [model_prompt(p, mode, tok) for p in problems],
                "entry_point": [p.entry_point for p in problems],
                "canonical_solution": [reference_answer(p, mode) for p in problems],
                **{k: ["" if run[k] is None else str(run[k])] * len(problems) for k in RUN_COLUMNS},
            }
        )
    }


def load_code_instruct(benchmark: str, data: str | None = None, **metadata):
    """`custom_dataset` of the instruct code tasks."""
    return load_code(benchmark, "instruct", data, **metadata)


def _results_path(benchmark: str, mode: str, state: dict) -> Path:
    from divplugin.core.paths import cache_dir

    folder = Path(state.get("results_dir") or (cache_dir() / "code_results"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (f"{benchmark}.jsonl" if mode == "completion" else f"{benchmark}_{mode}.jsonl")


def execute_all(resps, docs):
    """Custom filter: every response of every document -> its status (pass/fail/timeout)."""
    from divplugin.codeeval.evaluate import evaluate
    from divplugin.execution import Executor

    docs = list(docs)
    if not docs:
        return resps
    benchmark, mode = docs[0]["benchmark"], docs[0]["mode"]
    state = {k: docs[0].get(k) or None for k in RUN_COLUMNS}
    problems = _problems(benchmark, state.get("data"))
    by_id = {p.task_id: p for p in problems}
    samples = [{"task_id": d["task_id"], "completion": r} for d, rs in zip(docs, resps) for r in rs]
    asked = [by_id[d["task_id"]] for d in docs]
    workers = int(state.get("workers") or usable_cores())
    with Executor(workers=workers, allow_code_execution=True) as ex:
        report = evaluate(benchmark, asked, samples, ex, mode=mode, results_path=_results_path(benchmark, mode, state))
    verdicts = iter({"status": rec["status"], "base": rec["base"]} for rec in report.records)
    return [[next(verdicts) for _ in rs] for rs in resps]


def process_results(doc: dict, results: list) -> dict:
    """pass@k of the document's samples; on the plus benchmarks also ``base_pass@k``, the
    base tests alone (EvalPlus's "HumanEval" and "MBPP" beside "HumanEval+" and "MBPP+")."""
    verdicts = results[0] if results and isinstance(results[0], list) else results
    n = len(verdicts)
    counts = {"": sum(v["status"] == "pass" for v in verdicts)}
    if doc["benchmark"].endswith("_plus"):
        counts["base_"] = sum(v["base"] == "pass" for v in verdicts)
    scores = {}
    for prefix, c in counts.items():
        for k in (1, 10, 100):
            if n >= k:
                scores[f"{prefix}pass@{k}"] = pass_at_k(n, c, k)
    return scores
