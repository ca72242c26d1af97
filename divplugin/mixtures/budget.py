"""Exact budgets: ratios rounded so counts sum to the total, seeded sampling, token budgets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from divplugin.errors import ConfigError


def split_total(total: int, ratios: list[float]) -> list[int]:
    """Integer counts proportional to ``ratios`` that sum to ``total`` exactly (largest
    remainder, the generators' rounding; ties to the earlier source)."""
    from divplugin.generators.allocation import largest_remainder

    if float(np.sum(ratios)) <= 0:
        raise ConfigError("ratios must not all be zero", "ratios")
    return largest_remainder(total, np.asarray(ratios, dtype=float)).tolist()


def repeat_to_budget(costs: list[int], used: int, budget: int, rng: np.random.Generator, source: str) -> list[int]:
    """Upsampling: positions into ``costs`` (the rows kept so far, each with its cost: 1 or its
    tokens) in seeded passes over them, until the next one would take ``used`` past ``budget``."""
    if not costs or max(costs) <= 0:
        raise ConfigError("has nothing left to upsample after cleaning", f"source {source!r}")
    extra: list[int] = []
    while True:
        for j in rng.permutation(len(costs)):
            if used + costs[j] > budget:
                return extra
            extra.append(int(j))
            used += costs[j]


def token_counter(tokenizer: str | None) -> Callable[[list[str]], list[int]]:
    """Token lengths of texts with the named tokenizer, or whitespace words when None."""
    if not tokenizer:
        return lambda texts: [len(t.split()) for t in texts]
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    except Exception as exc:
        raise ConfigError(
            f"cannot load {tokenizer!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
            "give a local tokenizer folder when offline",
            "tokenizer",
        ) from None
    return lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
