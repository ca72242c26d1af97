"""Figures in the docs, checked against the committed results they come from.

A figure that comes from a run names its source right after it, in an HTML comment that a
rendered page does not show: a Python expression over the helpers below, each reading a
``docs/results/<name>/results.json``::

    unseen-rule exact match 0.568<!--= r("phase-transition-cpu-6-layers", "num_rules=400", "unseen") -->
    spans 0.47-0.78<!--= rng("phase-transition-cpu-seeds", "num_rules=400", "unseen") -->
    took 79<!--= wall("phase-transition-cpu-6-layers") --> min

The helpers: ``r(name, point, metric)`` (the mean over the runs whose id holds every
``+``-part of ``point``: "num_rules=400" is every seed of it), ``lo``, ``hi``, ``rng`` (lo,
hi) and ``vals`` (the list) alike; ``wall(name)`` (minutes), ``threshold(name)``, ``j(name,
"dotted.path")`` for any results.json (``name`` may be ``folder/file.json``), ``span(list)``,
``pass1(name, bench, mode, split)``, and Python's arithmetic. Metrics are named by the end of
their task name ("unseen" is ``divplugin_markov_unseen/exact_match``), or ``train_s``,
``eval_s`` and ``steps_s``. A paragraph with three-decimal figures that are not results
carries ``<!-- not from a run -->``.

``check`` evaluates every source, writes its value the way the text writes the figure (its
decimals, thousands separators, "lo-hi" for a range) and reports each figure that differs, and
each figure with three decimals, in a paragraph that links a results page, that names no
source. ``fix`` rewrites the figures from their sources. ``suggest FILE`` adds a source to each
such figure that one value of the linked pages matches, and lists the rest.

    python docs/figures.py check
    python docs/figures.py fix
    python docs/figures.py suggest docs/findings.md
"""

from __future__ import annotations

import functools
import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
# The documents whose figures are checked.
DOCUMENTS = (
    "README.md",
    "docs/findings.md",
    "docs/experiments.md",
    "docs/mixtures.md",
    "docs/code-evaluation.md",
    "docs/generators.md",
    "docs/cluster.md",
    "recipes/README.md",
    "divplugin/axolotl/README.md",
    "eval_tasks/README.md",
)

NUMBER = r"\d[\d,]*(?:\.\d+)?"
# a figure (a number or a range "lo-hi"), then up to a few characters of unit or emphasis
FIGURE_BEFORE_SOURCE = re.compile(
    rf"(?P<fig>(?P<lo>{NUMBER})(?:(?P<sep>\s?[-–]\s?)(?P<hi>{NUMBER}))?)"
    rf"(?P<unit>[^\d<>|\n(\[]{{0,8}}?)$"
)
SOURCE = re.compile(r"<!--=\s*(?P<expr>.*?)\s*-->", re.S)
# figures that must name a source where a paragraph links a results page
THREE_DECIMALS = re.compile(r"(?<![\w.,])\d\.\d{3}(?![\d])")
# a paragraph names results by a link to them or by the spec's name in backticks
LINKED_RESULTS = re.compile(r"results/(?P<name>[\w.-]+)/(?:README\.md|results\.\w+)|`(?P<spec>[\w.-]+)`")
NOT_A_RESULT = "<!-- not from a run -->"
SPECIAL = {"train_s": "train_seconds", "eval_s": "eval_seconds", "steps_s": "steps_per_second"}


class SourceError(ValueError):
    """A source that names no value."""


@functools.cache
def load(name: str) -> dict[str, Any]:
    """``docs/results/<name>/results.json``, or ``docs/results/<name>`` when it names a JSON file."""
    path = RESULTS / name if name.endswith(".json") else RESULTS / name / "results.json"
    if not path.is_file():
        raise SourceError(f"no results file {path.relative_to(ROOT)}")
    return json.loads(path.read_text())


def _runs(name: str, point: str) -> list[dict[str, Any]]:
    """The finished runs of experiment ``name`` whose id has every ``+``-part of ``point``
    ("num_rules=400" matches every seed of it; "" matches every run)."""
    want = [p for p in point.split("+") if p]
    runs = [
        p
        for p in load(name).get("points", [])
        if p.get("status") == "done" and all(w in p["id"].split("+") for w in want)
    ]
    if not runs:
        raise SourceError(f"{name}: no finished run matches {point!r}")
    return runs


def _metric(name: str, runs: list[dict[str, Any]], metric: str) -> str:
    """The full metric name ``metric`` stands for: itself, or the one exact-match metric of a
    task whose name ends with it ("unseen" -> "divplugin_markov_unseen/exact_match")."""
    if metric in SPECIAL:
        return SPECIAL[metric]
    names = sorted({m for r in runs for m in r.get("metrics", {})})
    if metric in names:
        return metric
    task, _, kind = metric.partition("/")
    found = [
        m
        for m in names
        if ("_" + m.split("/")[0]).endswith("_" + task) and m.partition("/")[2] == (kind or "exact_match")
    ]
    if len(found) != 1:
        raise SourceError(f"{name}: metric {metric!r} names {len(found)} of {names}")
    return found[0]


def values(name: str, point: str, metric: str) -> list[float]:
    """``metric`` in every finished run of ``name`` that matches ``point``."""
    runs = _runs(name, point)
    full = _metric(name, runs, metric)
    out = [r[full] if full in r else r.get("metrics", {}).get(full) for r in runs]
    if any(v is None for v in out):
        raise SourceError(f"{name}: {full} missing in a run matching {point!r}")
    return [float(v) for v in out]


def r(name: str, point: str, metric: str) -> float:
    """The mean of ``metric`` over the runs of ``point`` (one run: its value)."""
    return statistics.fmean(values(name, point, metric))


def lo(name: str, point: str, metric: str) -> float:
    return min(values(name, point, metric))


def hi(name: str, point: str, metric: str) -> float:
    return max(values(name, point, metric))


def rng(name: str, point: str, metric: str) -> tuple[float, float]:
    """(min, max) of ``metric`` over the runs of ``point``."""
    vs = values(name, point, metric)
    return min(vs), max(vs)


def wall(name: str) -> float:
    """The recorded wall time of a whole run, in minutes."""
    data = load(name)
    seconds = data.get("wall_seconds", data.get("wall_s"))
    if not seconds:
        raise SourceError(f"{name}: no wall time recorded")
    return float(seconds) / 60


def threshold(name: str, line: int = 0) -> float:
    """The estimated x at which the spec's metric reaches its level."""
    est = load(name)["thresholds"][line]["estimate"]
    if est is None:
        raise SourceError(f"{name}: the threshold is never reached")
    return float(est)


def j(name: str, path: str, *keys: str) -> Any:
    """The value at dotted ``path`` in a results.json (list items by index, or by
    ``key=value`` for the item whose ``key`` is ``value``; ``*``: every item, as a list).
    With more arguments, each is one key as it is (for keys that hold a dot)."""
    parts = [path, *keys] if keys else path.split(".")
    return _walk(name, load(name), parts, ".".join(parts))


def _walk(name: str, node: Any, parts: list[str], path: str) -> Any:
    for i, part in enumerate(parts):
        key, eq, want = part.partition("=")
        if part == "*" and isinstance(node, (list, dict)):
            items = node if isinstance(node, list) else list(node.values())
            return [_walk(name, item, parts[i + 1 :], path) for item in items]
        if isinstance(node, list) and eq:
            hits = [item for item in node if isinstance(item, dict) and str(item.get(key)) == want]
            if len(hits) != 1:
                raise SourceError(f"{name}: {path}: {len(hits)} items with {part}")
            node = hits[0]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise SourceError(f"{name}: no {part!r} in {path!r}")
    return node


def span(xs: list[float]) -> tuple[float, float]:
    """(min, max) of ``xs``, for a range."""
    return min(xs), max(xs)


def pass1(name: str, bench: str, mode: str, split: str) -> float:
    """pass@1 in per cent, as bench_code_instruct.py records it (split: base or plus)."""
    return 100 * float(j(name, f"benchmarks.{bench}.pass@1.{mode}.{split}"))


def mean(*xs: float) -> float:
    return statistics.fmean(xs)


def _curve(name: str, point: str, split: str) -> list[tuple[int, float]]:
    """(step, exact match) of one run's training curve on ``split`` (unseen: test; seen: test_seen)."""
    runs = _runs(name, point)
    if len(runs) != 1:
        raise SourceError(f"{name}: {point!r} matches {len(runs)} runs; a curve is one run's")
    want = {"unseen": "test", "seen": "test_seen"}.get(split, split)
    curve = [(int(c["step"]), float(c["exact_match"])) for c in runs[0].get("curve", []) if c["split"] == want]
    if not curve:
        raise SourceError(f"{name}: {point!r} has no {want} curve")
    return curve


def first_step(name: str, point: str, split: str, at_least: float) -> int:
    """The first step of ``point``'s training curve at which ``split`` reaches ``at_least``."""
    for step, value in _curve(name, point, split):
        if value >= at_least:
            return step
    raise SourceError(f"{name}: {point!r} never reaches {at_least} on {split}")


def at_step(name: str, point: str, split: str, step: int) -> float:
    """``split``'s exact match at ``step`` of ``point``'s training curve."""
    for s, value in _curve(name, point, split):
        if s == step:
            return value
    raise SourceError(f"{name}: {point!r} has no {split} score at step {step}")


def curve_max(name: str, point: str, split: str) -> float:
    """The highest ``split`` exact match over ``point``'s training curve."""
    return max(v for _, v in _curve(name, point, split))


HELPERS = {
    "r": r,
    "lo": lo,
    "hi": hi,
    "rng": rng,
    "vals": values,
    "wall": wall,
    "threshold": threshold,
    "j": j,
    "span": span,
    "pass1": pass1,
    "mean": mean,
    "first_step": first_step,
    "at_step": at_step,
    "curve_max": curve_max,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sorted": sorted,
}


def evaluate(expr: str) -> Any:
    return eval(compile(expr, "<figure source>", "eval"), {"__builtins__": {}, **HELPERS})  # noqa: S307


def render(value: Any, like: str) -> str:
    """``value`` written as the figure ``like`` is: as many decimals, thousands separators
    where it has them, and a (lo, hi) pair as a range with its separator."""
    m = re.fullmatch(rf"(?P<lo>{NUMBER})(?:(?P<sep>\s?[-–]\s?)(?P<hi>{NUMBER}))?", like)
    if m is None:
        raise SourceError(f"{like!r} is not a figure")
    if m["hi"] is not None:
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise SourceError(f"the range {like!r} needs a (lo, hi) source, got {value!r}")
        return render(value[0], m["lo"]) + m["sep"] + render(value[1], m["hi"])
    if isinstance(value, (tuple, list)):
        raise SourceError(f"a range source for the single figure {like!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SourceError(f"the source gives {value!r}, not a number")
    decimals = len(like.split(".")[1]) if "." in like else 0
    return f"{value:,.{decimals}f}" if "," in like else f"{value:.{decimals}f}"


@dataclass
class Figure:
    path: str
    line: int
    text: str  # the figure as written
    expr: str
    start: int  # where the figure starts in the document
    end: int


def _code_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"```.*?```", text, re.S)]


def figures(path: str, text: str) -> tuple[list[Figure], list[str]]:
    """The sourced figures of a document, and the sources with no figure before them."""
    out, bad = [], []
    for m in SOURCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[max(0, m.start() - 60) : m.start()]
        f = FIGURE_BEFORE_SOURCE.search(before)
        if f is None:
            bad.append(f"{path}:{line}: no figure right before the source <!--= {m['expr']} -->")
            continue
        start = m.start() - len(before) + f.start("fig")
        out.append(Figure(path, line, f["fig"], m["expr"], start, start + len(f["fig"])))
    return out, bad


def paragraphs(text: str):
    """(first line, paragraph text, offset) of each paragraph outside code blocks; each table
    row and each bullet is a paragraph of its own."""
    spans = _code_spans(text)
    pos = 0
    for block in re.split(r"(\n\s*\n)", text):
        start = pos
        pos += len(block)
        if not block.strip() or any(a <= start < b for a, b in spans):
            continue
        offset = start
        for part in re.split(r"\n(?=\||- |\* |\d+\. )", block):
            yield text.count("\n", 0, offset) + 1, part, offset
            offset += len(part) + 1


def _linked(para: str) -> list[str]:
    names = [m["name"] or m["spec"] for m in LINKED_RESULTS.finditer(para)]
    return [n for n in dict.fromkeys(names) if (RESULTS / n / "results.json").is_file()]


def unsourced(path: str, text: str) -> list[tuple[int, int, str, list[str]]]:
    """(line, offset, figure, linked results) of each three-decimal figure that names no
    source, in a paragraph that links a results page (a table's rows: the paragraphs just
    before and after the table)."""
    paras = list(paragraphs(text))
    links = [_linked(para) for _, para, _ in paras]
    for i, (_, para, _) in enumerate(paras):
        if para.startswith("|") and not links[i]:
            before = next((links[k] for k in range(i - 1, -1, -1) if not paras[k][1].startswith("|")), [])
            after = next((links[k] for k in range(i + 1, len(paras)) if not paras[k][1].startswith("|")), [])
            links[i] = list(dict.fromkeys(before + after))
    out = []
    for (line, para, offset), linked in zip(paras, links):
        if not linked or NOT_A_RESULT in para:
            continue
        for m in THREE_DECIMALS.finditer(para):
            after = para[m.end() : m.end() + 24]
            if re.match(rf"(?:\s?[-–]\s?{NUMBER})?[^\d<>|\n(\[]{{0,8}}?<!--=", after):
                continue
            out.append((line + para.count("\n", 0, m.start()), offset + m.start(), m.group(), linked))
    return out


def check(docs: tuple[str, ...] = DOCUMENTS, root: Path = ROOT) -> list[str]:
    """Every problem with the figures of ``docs`` (paths under ``root``): a figure its source
    does not give, a source that fails, a figure with no source."""
    problems = []
    for doc in docs:
        text = (root / doc).read_text()
        found, bad = figures(doc, text)
        problems += bad
        for f in found:
            try:
                want = render(evaluate(f.expr), f.text)
            except Exception as exc:  # a broken source is reported like a wrong figure
                problems.append(f"{doc}:{f.line}: {f.text!r}: source {f.expr!r} fails: {exc}")
                continue
            if want != f.text:
                problems.append(f"{doc}:{f.line}: {f.text!r} where its source gives {want!r} ({f.expr})")
        for line, _, fig, linked in unsourced(doc, text):
            problems.append(f"{doc}:{line}: {fig} names no source (the paragraph links {', '.join(linked)})")
    return problems


def fix(docs: tuple[str, ...] = DOCUMENTS, root: Path = ROOT) -> int:
    """Rewrite every sourced figure from its source; returns how many changed."""
    changed = 0
    for doc in docs:
        path = root / doc
        text = path.read_text()
        found, _ = figures(doc, text)
        before = changed
        for f in reversed(found):
            try:
                want = render(evaluate(f.expr), f.text)
            except Exception:  # a broken source: check names it; fix leaves the figure
                continue
            if want != f.text:
                text = text[: f.start] + want + text[f.end :]
                changed += 1
        if changed > before:
            path.write_text(text)
    return changed


def candidates(name: str) -> list[tuple[str, float]]:
    """(source, value) of every run's metric and every replicated group's mean, min and max."""
    data = load(name)
    out = []
    runs = [p for p in data.get("points", []) if p.get("status") == "done"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in runs:
        groups.setdefault("+".join(x for x in p["id"].split("+") if not x.startswith("seed=")), []).append(p)
    for label, members in groups.items():
        for metric in sorted({m for p in members for m in p.get("metrics", {}) if not m.endswith("/similarity")}):
            short = _short(name, members, metric)
            vs = [p["metrics"][metric] for p in members if metric in p.get("metrics", {})]
            if len(members) == 1:
                out.append((f'r("{name}", "{members[0]["id"]}", "{short}")', vs[0]))
            else:
                out.append((f'r("{name}", "{label}", "{short}")', statistics.fmean(vs)))
                out.append((f'lo("{name}", "{label}", "{short}")', min(vs)))
                out.append((f'hi("{name}", "{label}", "{short}")', max(vs)))
                for p in members:
                    if metric in p.get("metrics", {}):
                        out.append((f'r("{name}", "{p["id"]}", "{short}")', p["metrics"][metric]))
    return out


def _short(name: str, runs: list[dict[str, Any]], metric: str) -> str:
    """The shortest name ``_metric`` reads as ``metric`` ("unseen" for
    "divplugin_markov_unseen/exact_match")."""
    task, _, kind = metric.partition("/")
    parts = task.split("_")
    for i in range(len(parts) - 1, -1, -1):
        short = "_".join(parts[i:]) + ("" if kind == "exact_match" else "/" + kind)
        try:
            if _metric(name, runs, short) == metric:
                return short
        except SourceError:
            pass
    return metric


ALIASES = {
    "unseen": ("unseen",),
    "seen": ("seen",),
    "noop": ("no-op",),
    "hasop": ("has-op",),
    "domain": ("in domain",),
    "programs": ("programs",),
    "unconstrained": ("unconstrained", "out of domain"),
}


def _hint(before: str, after: str, expr: str) -> tuple[float, ...]:
    """How well a source fits the words around the figure (higher is better): the metric named
    last before it, then min / max / mean from a range around it."""
    words = before.lower()
    metric = re.findall(r'"([^"]+)"\)$', expr)
    name = metric[0] if metric else ""
    aliases = ALIASES.get(name, (name.split("/")[0],))
    at = max((m.start() for a in aliases for m in re.finditer(rf"(?<![\w-]){re.escape(a)}", words)), default=-1)
    kind = expr.split("(")[0]
    if re.match(r"\s?-\s?\d", after):
        shape = 1 if kind == "lo" else 0
    elif re.search(r"\d\s?-\s?$", before):
        shape = 1 if kind == "hi" else 0
    else:
        shape = 1 if kind == "r" else 0
    return (at, shape)


def suggest(doc: str, root: Path = ROOT) -> tuple[int, list[str]]:
    """Add a source to each unsourced three-decimal figure of ``doc`` that one value of the
    results its paragraph links matches (the words before it break ties); returns how many were
    added and the figures left."""
    path = root / doc
    text = path.read_text()
    left = []
    edits = []
    for line, offset, fig, linked in unsourced(doc, text):
        before = text[max(0, offset - 80) : offset]
        after = text[offset + len(fig) : offset + len(fig) + 8]
        para_before = text[:offset]

        def named_at(n: str, para_before: str = para_before) -> int:
            return max(para_before.rfind(f"results/{n}/"), para_before.rfind(f"`{n}`"))

        near = [n for n in linked if named_at(n) >= max(0, len(para_before) - 1500)]
        nearest = max(near, key=named_at) if near else None
        found = [(e, v) for n in linked for e, v in candidates(n) if f"{v:.3f}" == fig]
        if nearest and any(f'"{nearest}"' in e for e, _ in found):
            found = [(e, v) for e, v in found if f'"{nearest}"' in e]
        if not found:
            left.append(f"{doc}:{line}: {fig}: no value of {', '.join(linked)}")
            continue
        best = max(_hint(before, after, e) for e, _ in found)
        top = list(dict.fromkeys(e for e, _ in found if _hint(before, after, e) == best))
        if len(top) > 1:
            left.append(f"{doc}:{line}: {fig}: {len(top)} sources: {'; '.join(top[:4])}")
            continue
        end = offset + len(fig)
        unit = re.match(r"\*\*", text[end : end + 2])
        edits.append((end + (2 if unit else 0), f"<!--= {top[0]} -->"))
    for at, source in sorted(edits, reverse=True):
        text = text[:at] + source + text[at:]
    path.write_text(text)
    return len(edits), left


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "fix", "suggest"):
        print(__doc__)
        return 2
    if argv[0] == "check":
        problems = check()
        print("\n".join(problems) or "every sourced figure matches its results")
        return 1 if problems else 0
    if argv[0] == "fix":
        print(f"{fix()} figures rewritten from their sources")
        return 0
    for doc in argv[1:] or DOCUMENTS:
        added, left = suggest(doc)
        print(f"{doc}: {added} sources added, {len(left)} figures left")
        print("\n".join(left))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
