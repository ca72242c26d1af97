"""Exact budgets: ratios rounded so counts sum to the total, seeded sampling, token budgets."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from divplugin.errors import ConfigError


def split_total(total: int, ratios: list[float]) -> list[int]:
    """Integer counts proportional to ``ratios`` that sum to ``total`` exactly (largest
    remainder; ties to the earlier source)."""
    weights = np.asarray(ratios, dtype=float)
    if weights.sum() <= 0:
        raise ConfigError("ratios must not all be zero", "ratios")
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    short = total - int(counts.sum())
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return counts.tolist()


def draw(n_available: int, want: int, rng: np.random.Generator, upsample: bool, source: str) -> np.ndarray:
    """Indices of ``want`` rows from ``n_available``, seeded; repeats only when ``upsample``."""
    if want <= n_available:
        return rng.permutation(n_available)[:want]
    if not upsample:
        raise ConfigError(f"asks for {want:,} examples but has {n_available:,} after cleaning; lower the budget "
                          "or set upsample: true", f"source {source!r}")
    if n_available == 0:
        raise ConfigError("has no examples left after cleaning; nothing to upsample", f"source {source!r}")
    reps = math.ceil(want / n_available)
    return np.concatenate([rng.permutation(n_available) for _ in range(reps)])[:want]


def draw_tokens(lengths: list[int], budget: int, rng: np.random.Generator, upsample: bool, source: str) -> np.ndarray:
    """Rows in a seeded order until their tokens reach ``budget`` (the last row that would
    pass it is left out)."""
    n = len(lengths)
    if n == 0:
        raise ConfigError("has no examples left after cleaning", f"source {source!r}")
    picked, used = [], 0
    while True:
        for i in rng.permutation(n):
            if used + lengths[i] > budget:
                return np.asarray(picked, dtype=int)
            picked.append(int(i))
            used += lengths[i]
        if not upsample:
            raise ConfigError(f"asks for {budget:,} tokens but holds {used:,}; lower the budget or set upsample: true",
                              f"source {source!r}")


def token_counter(tokenizer: str | None) -> Callable[[list[str]], list[int]]:
    """Token lengths of texts with the named tokenizer, or whitespace words when None."""
    if not tokenizer:
        return lambda texts: [len(t.split()) for t in texts]
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    except Exception as exc:
        raise ConfigError(f"cannot load {tokenizer!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                          "give a local tokenizer folder when offline", "tokenizer") from None
    return lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
