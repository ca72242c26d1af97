"""lm-eval glue for the code tasks: documents, prompts, and execution in one parallel pass.

The task's filter runs every generation of the task at once in the sandbox (lm-eval calls
it only for tasks marked ``unsafe_code``, i.e. after ``--confirm_run_unsafe_code``) and turns
each document's responses into pass/fail statuses; ``process_results`` then reports pass@k.
``--metadata`` keys: ``data`` (a local HumanEval+/MBPP+ release file or folder),
``workers``, ``results_dir`` (per-sample results, resumable; default: the divplugin cache).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from divplugin.codeeval.passk import pass_at_k

# benchmark -> the --metadata its documents were loaded with (data, workers, results_dir).
# lm-eval hands --metadata to the task's `custom_dataset` (load_code) but not to its filter
# (execute_all), which runs later in the same process; this is how the filter learns where
# the benchmark's data is and how to run it. One lm-eval run per process sets it once per task.
_STATE: dict = {}


@lru_cache(maxsize=8)
def _problems(benchmark: str, data: str | None):
    from divplugin.codeeval import load_problems

    return load_problems(benchmark, data)


def mbpp_prompt(problem) -> str:
    text = problem.prompt.strip().strip("'\"").strip()
    first = next((ln.strip() for ln in problem.assertion.splitlines() if ln.strip().startswith("assert")), "")
    return f'"""\n{text}\n{first}\n"""\n'


def load_code(benchmark: str, data: str | None = None, **metadata):
    """`custom_dataset` of the divplugin code tasks: {"test": datasets.Dataset}."""
    import datasets

    data = data or os.environ.get("DIVPLUGIN_BENCHMARKS") or None
    problems = _problems(benchmark, data)
    _STATE[benchmark] = {"data": data, **{k: metadata[k] for k in ("workers", "results_dir") if k in metadata}}
    prompts = [p.prompt if p.family == "humaneval" else mbpp_prompt(p) for p in problems]
    return {"test": datasets.Dataset.from_dict({
        "task_id": [p.task_id for p in problems], "benchmark": [benchmark] * len(problems),
        "prompt": prompts, "entry_point": [p.entry_point for p in problems],
        "canonical_solution": [p.reference_code for p in problems]})}


def _results_path(benchmark: str, state: dict) -> Path:
    from divplugin.paths import cache_dir

    folder = Path(state.get("results_dir") or (cache_dir() / "code_results"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{benchmark}.jsonl"


def execute_all(resps, docs):
    """Custom filter: every response of every document -> its status (pass/fail/timeout)."""
    from divplugin.codeeval.evaluate import evaluate
    from divplugin.execution import Executor

    docs = list(docs)
    if not docs:
        return resps
    benchmark = docs[0]["benchmark"]
    state = _STATE.get(benchmark, {})
    problems = _problems(benchmark, state.get("data"))
    by_id = {p.task_id: p for p in problems}
    samples = [{"task_id": d["task_id"], "completion": r} for d, rs in zip(docs, resps) for r in rs]
    asked = [by_id[d["task_id"]] for d in docs]
    workers = int(state.get("workers") or os.cpu_count() or 1)
    with Executor(workers=workers, allow_code_execution=True) as ex:
        report = evaluate(benchmark, asked, samples, ex, results_path=_results_path(benchmark, state))
    statuses = iter(rec["status"] for rec in report.records)
    return [[next(statuses) for _ in rs] for rs in resps]


def process_results(doc: dict, results: list) -> dict:
    statuses = results[0] if results and isinstance(results[0], list) else results
    n, c = len(statuses), sum(s == "pass" for s in statuses)
    scores = {"pass@1": pass_at_k(n, c, 1)}
    for k in (10, 100):
        if n >= k:
            scores[f"pass@{k}"] = pass_at_k(n, c, k)
    return scores
