"""Duplicates among rows: an exact key (case and whitespace normalised) and near duplicates by
MinHash LSH over word shingles (rensa), verified by exact Jaccard similarity. ``divplugin
select``'s ``dedup`` and ``divplugin mix``'s hygiene share them."""

from __future__ import annotations

import hashlib
import re
from typing import Any, NamedTuple

import numpy as np

from divplugin.errors import ConfigError


def text_key(text: str) -> bytes:
    """A digest of ``text`` with case and whitespace normalised: equal keys, exact duplicates."""
    return hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=16).digest()


class RowRef(NamedTuple):
    """A row: its source's position (in a mixture's spec; 0 for one dataset) and its index there."""

    source: int
    row: int


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
        for h in wh[i : i + int(lens[r])].tolist():
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
            raise ConfigError(
                "near-duplicate removal needs rensa (pip install 'divplugin[mix]'), or set dedup.near: false", "dedup"
            ) from None
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
