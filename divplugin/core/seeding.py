"""Seeds derived from a base seed and a path of names, stable across processes and runs.

Every random stream in divplugin comes from ``derive_seed(seed, *path)``: the rule
sampler of a split, the example plan, each fixed-size chunk of examples. Work can
therefore be split across any number of workers and still give byte-identical data.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *path: object) -> int:
    """A 64-bit seed for the stream named by ``path`` under ``seed``."""
    text = "\x1f".join([str(int(seed)), *map(str, path)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def py_rng(seed: int, *path: object) -> random.Random:
    return random.Random(derive_seed(seed, *path))


def np_rng(seed: int, *path: object) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *path)))


def stable_hash(text: str, salt: str = "") -> int:
    """A 64-bit hash of ``text`` (independent of PYTHONHASHSEED)."""
    h = hashlib.blake2b((salt + "\x1e" + text if salt else text).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")
