"""Exact and near-duplicate detection (MinHash LSH) and benchmark decontamination (word n-gram
overlap, as lm-eval's and open-instruct's decontamination do)."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from divplugin.errors import ConfigError

WORD = re.compile(r"\w+")


def text_of(rec: dict[str, str]) -> str:
    return "\n".join((rec["instruction"], rec["input"], rec["output"]))


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def exact_key(rec: dict[str, str]) -> bytes:
    """A digest of the row's text with case and whitespace normalised."""
    return hashlib.blake2b(" ".join(text_of(rec).lower().split()).encode(), digest_size=16).digest()


def ngrams(ws: list[str], n: int) -> Iterable[str]:
    if len(ws) < n:
        return (" ".join(ws),) if ws else ()
    return (" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1))


class Decontaminator:
    """Finds rows that share a word n-gram with a benchmark problem (prompt or reference
    solution); ``hit`` returns the benchmark task id or None."""

    def __init__(self, benchmarks: list[str], n: int = 13, data: str | None = None):
        from divplugin.codeeval import load_problems
        from divplugin.errors import DivpluginError

        self.n = n
        self.index: dict[str, str] = {}
        for bench in benchmarks:
            try:
                problems = load_problems(bench, data)
            except DivpluginError as exc:
                raise ConfigError(f"cannot load benchmark {bench!r} for decontamination: {exc}", "decontaminate") from None
            for p in problems:
                for text in (p.prompt, p.canonical_solution):
                    for g in ngrams(words(text), n):
                        self.index.setdefault(g, p.task_id)

    def hit(self, rec: dict[str, str]) -> str | None:
        ws = words(text_of(rec))
        if len(ws) < self.n:
            return self.index.get(" ".join(ws)) if ws else None
        index = self.index
        for i in range(len(ws) - self.n + 1):
            found = index.get(" ".join(ws[i:i + self.n]))
            if found:
                return found
        return None


class NearDuplicates:
    """MinHash LSH over word shingles; ``seen(rec)`` says whether a near-duplicate was added
    before (returning its key) and otherwise adds the row."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle: int = 5):
        try:
            from datasketch import MinHash, MinHashLSH
        except ImportError:
            raise ConfigError("near-duplicate removal needs datasketch (pip install 'divplugin[mix]'), "
                              "or set dedup.near: false", "dedup") from None
        self._MinHash = MinHash
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.num_perm = num_perm
        self.shingle = shingle
        self.count = 0

    def _minhash(self, rec: dict[str, str]):
        ws = words(text_of(rec))
        grams = {g.encode() for g in ngrams(ws, self.shingle)} or {b""}
        m = self._MinHash(num_perm=self.num_perm)
        m.update_batch(list(grams))
        return m

    def seen(self, rec: dict[str, str], key: str) -> str | None:
        m = self._minhash(rec)
        hits = self.lsh.query(m)
        if hits:
            return min(hits)
        self.lsh.insert(key, m)
        self.count += 1
        return None
