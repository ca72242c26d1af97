"""Scoring one candidate the way EvalPlus does.

Expected outputs come from running the canonical solution (in the sandbox) on each input;
each input gets a limit of max(1 s, 4 x the canonical solution's time), both in CPU seconds
of the sandboxed process from the arguments' arrival to the answer's departure, so a verdict
does not change with the machine's load (EvalPlus uses the same factors on wall time). Outputs are
compared for equality, with EvalPlus's float tolerance (``atol``, at least 1e-6 once a float
output is seen) and its special oracles for problems with several right answers.
The comparison runs here, in the trusted process, on values decoded from the sandbox's
wire format; the candidate never sees the expected outputs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from divplugin.codeeval.problems import Problem, problems_hash
from divplugin.core.paths import cache_dir
from divplugin.execution import ExecResult, Executor, Limits
from divplugin.execution.values import decode_obj, encode_obj

MIN_TIME_LIMIT = 1.0
EXPECTED_VERSION = 2  # of the cached expected outputs: 2 = seconds are the sandbox's CPU time
TIME_LIMIT_FACTOR = 4.0

# MBPP+ problems whose output is only checked to be (not) None, and those compared as sets.
MBPP_NOT_NONE = {"check_str", "text_match_three", "text_starta_endb"}
MBPP_SET_EQUAL = {
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
}


@dataclass
class Expected:
    outputs: list
    seconds: list

    def time_limits(self) -> list[float]:
        return [max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * t) for t in self.seconds]


def _poly(xs, x):
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _surface_area(base_edge, height):
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance(a, b):
    sa, sb = str(a), str(b)
    n = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(n), sb.zfill(n)))


def _is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype in (np.float64, np.float32)
    return False


def _output_matches(problem: Problem, inp, out, exp, atol: float) -> tuple[bool, float]:
    """Whether `out` is right for `inp`; also returns the tolerance for the next input
    (EvalPlus keeps 1e-6 once it has seen a float output)."""
    ep = problem.entry_point
    try:
        exact = out == exp
        if isinstance(exact, np.ndarray):
            exact = bool(exact.all()) if exact.size else True
        exact = bool(exact)
    except Exception:  # noqa: BLE001 - odd outputs compare unequal
        exact = False
    if problem.family == "mbpp":
        if ep == "are_equivalent":
            exact = True
        elif ep == "sum_div":
            exact = exact or out == 0
        elif ep == "surface_Area":
            exact = exact or _safe(lambda: abs(out - _surface_area(*inp)) <= atol)
        elif ep == "digit_distance_nums":
            exact = exact or _safe(lambda: out == _digit_distance(*inp))
        elif ep in MBPP_SET_EQUAL:
            exact = _safe(lambda: set(out) == set(exp))
        elif ep in MBPP_NOT_NONE:
            exact = (out == exp) if isinstance(out, bool) else (exp == (out is not None))
    if problem.family == "humaneval" and ep == "find_zero":
        return _safe(lambda: abs(_poly(inp[0], out)) <= atol), atol
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if exact or atol == 0:
        return exact, atol
    ok = _safe(
        lambda: (
            type(out) is type(exp)
            and (not isinstance(exp, (list, tuple)) or len(out) == len(exp))
            and bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
        )
    )
    return ok, atol


def _safe(fn) -> bool:
    try:
        return bool(fn())
    except Exception:  # noqa: BLE001
        return False


def judge_io(problem: Problem, inputs: list, expected: list, result: ExecResult) -> tuple[str, list[bool]]:
    """(status, per-input pass list) of an io-mode run; status is pass, fail or timeout."""
    if result.status == "timeout":
        return "timeout", []
    if result.status != "completed":
        return "fail", []
    details, atol = [], problem.atol
    for inp, exp, call in zip(inputs, expected, result.calls):
        if call[0] == "timeout":
            details.append(False)
            return "timeout", details
        if call[0] != "ok":
            details.append(False)
            return "fail", details
        ok, atol = _output_matches(problem, inp, call[1], exp, atol)
        details.append(ok)
    if len(details) != len(inputs) or not all(details):
        return "fail", details
    return "pass", details


REFERENCE_CPU_S = 600.0  # a canonical solution's CPU seconds per input (a ceiling: it is trusted)


def expected_outputs(
    problems: list[Problem], executor: Executor, *, cache: bool = True, progress=None
) -> dict[str, dict[str, Expected]]:
    """{task_id: {"base": Expected, "plus": Expected}} from the canonical solutions; cached on
    disk by a hash of the problems (like EvalPlus's ground-truth cache)."""
    path = cache_dir() / f"expected-v{EXPECTED_VERSION}" / f"{problems_hash(problems)}.json"
    if cache and path.is_file():
        cached = json.loads(path.read_text())
        return {
            tid: {k: Expected(decode_obj(v["outputs"]), v["seconds"]) for k, v in d.items()}
            for tid, d in cached.items()
        }
    # the reference is trusted: generous limits, so that a huge output on a busy machine is
    # measured rather than cut off (Mbpp/255's plus input 85, 1.66 million tuples of 77, spends
    # about a minute of CPU sending its output back; more when another process shares the core)
    limits = Limits(wall_factor=10.0)
    jobs = {}
    for p in problems:
        for kind, inputs in (("base", p.base_input), ("plus", p.plus_input)):
            if inputs:
                jobs[(p.task_id, kind)] = executor.submit(
                    "run_io", p.reference_code, p.entry_point, inputs, [REFERENCE_CPU_S] * len(inputs), limits=limits
                )
    out: dict[str, dict[str, Expected]] = {p.task_id: {} for p in problems}
    raw: dict[str, dict] = {p.task_id: {} for p in problems}
    by_id = {p.task_id: p for p in problems}
    for (tid, kind), fut in jobs.items():
        res = fut.result()
        n = len(by_id[tid].base_input if kind == "base" else by_id[tid].plus_input)
        ok = res.status == "completed" and len(res.calls) == n and all(c[0] == "ok" for c in res.calls)
        if not ok:
            at = next((i for i, c in enumerate(res.calls) if c[0] != "ok"), len(res.calls))
            bad = res.calls[at] if at < len(res.calls) else None
            if bad and bad[0] == "timeout":
                why = f"input {at} of {n} ran past its {REFERENCE_CPU_S:g} CPU seconds"
            elif bad:
                why = f"input {at} of {n} raised {bad[1]}"
            else:
                why = f"{res.status} after {len(res.calls)} of {n} inputs" + (f": {res.error}" if res.error else "")
            raise RuntimeError(f"{tid}: the canonical solution failed on its {kind} inputs: {why}")
        outputs = [c[1] for c in res.calls]
        if by_id[tid].family == "mbpp" and by_id[tid].entry_point in MBPP_NOT_NONE:
            outputs = [o is not None for o in outputs]
        seconds = [c[2] for c in res.calls]
        out[tid][kind] = Expected(outputs, seconds)
        raw[tid][kind] = {"outputs": encode_obj(outputs, max_items=1 << 62), "seconds": seconds}
        if progress:
            progress()
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, path)
    return out
