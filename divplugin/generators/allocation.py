"""Exact allocation of an example budget across instructions.

The paper fixes the total budget N and varies how it is spread over I rules: uniformly
(S = N / I each) or long-tailed, with per-rule weights drawn from the power
distribution with PMF ``alpha * x**(alpha - 1)`` (``numpy.random.power``; smaller alpha is
more peaked). A Zipf law (weight of rank r proportional to ``r**-s``) is offered too.
Counts are integers that sum to N exactly (largest-remainder rounding, ties broken at
random by the given generator).
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("uniform", "power", "zipf")


def largest_remainder(total: int, weights: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Integers proportional to ``weights`` that sum to ``total`` exactly: each gets the floor
    of its quota, and the largest remainders one more. Ties go at random (by ``rng``), or to
    the earlier item when ``rng`` is None."""
    weights = np.asarray(weights, dtype=np.float64)
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if len(weights) == 0:
        if total:
            raise ValueError("cannot allocate a positive total over no items")
        return np.zeros(0, dtype=np.int64)
    wsum = weights.sum()
    if not np.isfinite(wsum) or wsum <= 0 or (weights < 0).any():
        raise ValueError("weights must be finite, non-negative and not all zero")
    quotas = weights / wsum * total
    counts = np.floor(quotas).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        remainders = quotas - counts
        tiebreak = rng.random(len(weights)) if rng is not None else np.arange(len(weights))
        order = np.lexsort((tiebreak, -remainders))
        counts[order[:short]] += 1
    return counts


def instruction_weights(
    n: int, scheme: str, rng: np.random.Generator, alpha: float = 1.0, zipf_exponent: float = 1.0
) -> np.ndarray:
    """Relative example weights of ``n`` instructions under ``scheme``."""
    if scheme == "uniform":
        return np.ones(n)
    if scheme == "power":
        w = rng.power(alpha, n)
        return np.maximum(w, np.finfo(np.float64).tiny)
    if scheme == "zipf":
        return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** zipf_exponent
    raise ValueError(f"unknown allocation scheme {scheme!r}; expected one of {SCHEMES}")


def example_counts(
    total: int,
    n: int,
    scheme: str,
    rng: np.random.Generator,
    alpha: float = 1.0,
    zipf_exponent: float = 1.0,
    minimum: int = 0,
) -> np.ndarray:
    """Exact per-instruction example counts: ``minimum`` each, the rest by ``scheme``."""
    if n * minimum > total:
        raise ValueError(f"{n} instructions x minimum {minimum} exceeds the budget {total}")
    weights = instruction_weights(n, scheme, rng, alpha, zipf_exponent)
    return minimum + largest_remainder(total - n * minimum, weights, rng)
