"""A mixture's hygiene: exact duplicates of its records, near duplicates (MinHash LSH, from
:mod:`divplugin.diversity.dedup`) and benchmark decontamination (word n-gram overlap, as
lm-eval's and open-instruct's decontamination do, and exact substrings of docstrings and
solutions, as bigcode's does)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from divplugin.diversity.dedup import text_key
from divplugin.errors import ConfigError

WORD = re.compile(r"\w+")


def text_of(rec: dict[str, str]) -> str:
    return "\n".join((rec["instruction"], rec["input"], rec["output"]))


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def exact_key(rec: dict[str, str]) -> bytes:
    """A digest of the row's text with case and whitespace normalised."""
    return text_key(text_of(rec))


def ngrams(ws: list[str], n: int) -> Iterable[str]:
    if len(ws) < n:
        return (" ".join(ws),) if ws else ()
    return (" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1))


class Decontaminator:
    """Finds rows that share a word n-gram with a benchmark problem (prompt or reference
    solution), or that contain a whole prompt or solution shorter than n words (at least
    ``min_words`` of them), word for word: the exact-substring check of bigcode's
    decontamination, at the word level, for what n-grams cannot see. ``hit`` returns the
    benchmark task id or None."""

    def __init__(
        self,
        benchmarks: list[str],
        n: int = 13,
        data: str | None = None,
        min_words: int | None = 6,
        problems: list | None = None,
    ):
        from divplugin.codeeval import load_problems
        from divplugin.errors import DivpluginError

        self.n = n
        self.index: dict[str, str] = {}
        self.short: dict[int, dict[str, str]] = {}  # length -> whole short text -> task id
        self.heads: dict[str, set[int]] = {}  # first word of a short text -> its lengths
        if problems is None:
            problems = []
            for bench in benchmarks:
                try:
                    problems += load_problems(bench, data)
                except DivpluginError as exc:
                    raise ConfigError(
                        f"cannot load benchmark {bench!r} for decontamination: {exc}", "decontaminate"
                    ) from None
        for p in problems:
            for text in (p.prompt, p.canonical_solution):
                ws = words(text)
                if len(ws) >= n:
                    for g in ngrams(ws, n):
                        self.index.setdefault(g, p.task_id)
                elif ws and min_words is not None and len(ws) >= min_words:
                    self.short.setdefault(len(ws), {}).setdefault(" ".join(ws), p.task_id)
                    self.heads.setdefault(ws[0], set()).add(len(ws))

    def hit(self, rec: dict[str, str]) -> str | None:
        ws = words(text_of(rec))
        index = self.index
        for i in range(len(ws) - self.n + 1):
            found = index.get(" ".join(ws[i : i + self.n]))
            if found:
                return found
        if self.heads:
            heads, short = self.heads, self.short
            for i, w in enumerate(ws):
                for length in heads.get(w, ()):
                    found = short[length].get(" ".join(ws[i : i + length]))
                    if found:
                        return found
        return None
