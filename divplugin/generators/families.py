"""Constrained rule families of the paper's "semantic diversity" experiment (Only-IF, arXiv 2410.04717, §2.3.4).

Each family builds a string of a given length from a random unit and a strength k:

- ``repeated``: every symbol repeated k times (``aaabbbccc`` for k=3);
- ``periodic``: a unit repeated k times (``abcabc`` for k=2);
- ``mirror``: a unit alternating with its reverse, k pieces (``abccbaabc`` for k=3);
- ``unconstrained``: uniform random symbols (the same as any family at k=1).

When the length is not a multiple of k the last piece is cut short.
"""

from __future__ import annotations

import math
import random

FAMILIES = ("unconstrained", "repeated", "periodic", "mirror")


def family_string(rng: random.Random, alphabet: str, length: int, family: str, k: int) -> str:
    """A random string of ``length`` symbols from ``family`` with strength ``k``."""
    if family == "unconstrained" or k <= 1 or length == 0:
        return "".join(rng.choices(alphabet, k=length))
    unit_len = math.ceil(length / k)
    if family == "repeated":
        return "".join(c * k for c in rng.choices(alphabet, k=unit_len))[:length]
    unit = "".join(rng.choices(alphabet, k=unit_len))
    if family == "periodic":
        return (unit * k)[:length]
    if family == "mirror":
        pieces = [unit if i % 2 == 0 else unit[::-1] for i in range(k)]
        return "".join(pieces)[:length]
    raise ValueError(f"unknown rule family {family!r}; expected one of {FAMILIES}")


def distinct_strings(alphabet_size: int, length: int, family: str, k: int) -> int:
    """How many distinct strings ``family_string`` can return (an upper bound)."""
    if family == "unconstrained" or k <= 1:
        return alphabet_size**length
    return alphabet_size ** math.ceil(length / k)
