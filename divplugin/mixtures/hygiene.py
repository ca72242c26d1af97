"""Exact and near-duplicate detection (MinHash LSH, rensa) and benchmark decontamination (word
n-gram overlap, as lm-eval's and open-instruct's decontamination do, and exact substrings of
docstrings and solutions, as bigcode's does)."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable, NamedTuple

import numpy as np

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
    solution), or that contain a whole prompt or solution shorter than n words (at least
    ``min_words`` of them), word for word: the exact-substring check of bigcode's
    decontamination, at the word level, for what n-grams cannot see. ``hit`` returns the
    benchmark task id or None."""

    def __init__(self, benchmarks: list[str], n: int = 13, data: str | None = None, min_words: int | None = 6,
                 problems: list | None = None):
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
                    raise ConfigError(f"cannot load benchmark {bench!r} for decontamination: {exc}", "decontaminate") from None
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
            found = index.get(" ".join(ws[i:i + self.n]))
            if found:
                return found
        if self.heads:
            heads, short = self.heads, self.short
            for i, w in enumerate(ws):
                for length in heads.get(w, ()):
                    found = short[length].get(" ".join(ws[i:i + length]))
                    if found:
                        return found
        return None


class RowRef(NamedTuple):
    """A row of a mixture: its source's position in the spec and its index in that source."""

    source: int
    index: int


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.99) -> int:
    """The number of LSH bands b (a divisor of ``num_perm``; r = num_perm / b rows each): the
    fewest for which a pair at exactly ``threshold`` Jaccard becomes a candidate with
    probability 1 - (1 - t^r)^b >= ``recall``. Candidates are verified by their exact Jaccard
    similarity, so extra candidates cost time, never precision."""
    for b in (d for d in range(1, num_perm + 1) if num_perm % d == 0):
        r = num_perm // b
        if 1.0 - (1.0 - threshold**r) ** b >= recall:
            return b
    return num_perm


_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\x01")
_ASCII_WORDS = bytes(c if c in _WORD_BYTES else 32 for c in range(256))  # non-word bytes -> space


def shingle_hashes(texts: list[str], shingle: int) -> list[np.ndarray]:
    """Each text's word ``shingle``-grams (words as ``words`` finds them) as 64-bit hashes, in
    text order (a repeated n-gram repeats).

    All texts are split in one pass and their words hashed together (rensa, in Rust); an
    n-gram's hash mixes its words' hashes, so no n-gram string is ever built."""
    import rensa

    if not texts:
        return []
    sep = "\x01"  # never inside a word: \w does not match it
    joined = sep.join(t.replace(sep, " ") for t in texts).lower()
    if joined.isascii():  # the common case, in C: \w is [A-Za-z0-9_] here, words split at anything else
        toks = joined.encode("ascii").translate(_ASCII_WORDS).replace(b"\x01", b" \x01 ").split()
    else:
        toks = re.findall(r"\w+|\x01", joined)
    hashed = np.asarray(rensa.RMinHash.hash_token_sets([toks])[0], dtype=np.uint64)  # str and bytes hash alike
    is_sep = hashed == np.uint64(rensa.RMinHash.hash_token_sets([[sep]])[0][0])
    row = np.cumsum(is_sep)
    wh, wrow = hashed[~is_sep], row[~is_sep]
    lens = np.bincount(wrow, minlength=len(texts))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    grams = wh.copy()
    for k in range(1, shingle):  # gram at i mixes the hashes of words i .. i + shingle - 1
        nxt = np.zeros_like(wh)
        nxt[:-k] = wh[k:]
        grams = grams * mult ^ nxt
    pos = np.arange(len(wh)) - starts[wrow]
    keep = pos < (lens - shingle + 1)[wrow]
    # a row with fewer words than the shingle is one gram of all its words (as ``ngrams`` does)
    for r in np.flatnonzero((lens > 0) & (lens < shingle)):
        i = int(starts[r])
        g = 0
        for h in wh[i:i + int(lens[r])].tolist():
            g = (g * int(mult) ^ h) & 0xFFFFFFFFFFFFFFFF
        grams[i] = g
        keep[i] = True
    grams, grow = grams[keep], wrow[keep]
    bounds = np.searchsorted(grow, np.arange(len(texts) + 1))
    return [grams[a:b] if b > a else EMPTY for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


EMPTY = np.zeros(1, dtype=np.uint64)  # the shingle set of a text without words


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of the sets of two hash arrays."""
    a, b = np.unique(a), np.unique(b)
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class NearDuplicates:
    """MinHash LSH over word shingles (rensa), verified exactly: ``sketch(texts)`` computes the
    shingle sets and MinHash sketches of many rows at once; ``seen(sketch, ref)`` returns the
    first row added before whose shingles have Jaccard similarity >= the threshold with this
    row's (among its LSH candidates), or adds the row and returns None."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle: int = 5, seed: int = 0):
        try:
            import rensa
        except ImportError:
            raise ConfigError("near-duplicate removal needs rensa (pip install 'divplugin[mix]'), "
                              "or set dedup.near: false", "dedup") from None
        self._rensa = rensa
        self.threshold, self.num_perm, self.shingle, self.seed = threshold, num_perm, shingle, seed
        self.bands = lsh_bands(threshold, num_perm)
        self.lsh = rensa.RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=self.bands)
        self.refs: list[RowRef] = []
        self.sets: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return len(self.refs)

    def sketch(self, texts: list[str]) -> list[tuple[np.ndarray, Any]]:
        """(shingle hashes, MinHash) of each text."""
        sets = shingle_hashes(texts, self.shingle)
        flat = np.concatenate(sets).view("V8").tolist() if sets else []  # 8-byte tokens for rensa
        bounds = np.cumsum([0] + [len(h) for h in sets]).tolist()
        tokens = [flat[a:b] for a, b in zip(bounds, bounds[1:])]
        return list(zip(sets, self._rensa.RMinHash.from_token_sets(tokens, self.num_perm, self.seed)))

    def seen(self, sketch: tuple[np.ndarray, Any], ref: RowRef) -> RowRef | None:
        shingles, minhash = sketch
        for key in sorted(self.lsh.query(minhash)):
            if jaccard(shingles, self.sets[key]) >= self.threshold:
                return self.refs[key]
        self.lsh.insert(len(self.refs), minhash)
        self.refs.append(ref)
        self.sets.append(shingles)
        return None
