"""Exact example budgets across instructions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from divplugin.generators.allocation import example_counts, largest_remainder


@given(st.integers(0, 10_000), st.lists(st.floats(0.0, 100.0), min_size=1, max_size=50).filter(lambda w: sum(w) > 0))
def test_largest_remainder_is_exact_and_close(total, weights):
    counts = largest_remainder(total, np.array(weights), np.random.default_rng(0))
    assert counts.sum() == total
    quotas = np.array(weights) / sum(weights) * total
    assert (np.abs(counts - quotas) < 1 + 1e-9).all()
    assert (counts >= 0).all()


@pytest.mark.parametrize("scheme", ["uniform", "power", "zipf"])
@pytest.mark.parametrize("total, n, minimum", [(1_000_000, 1000, 1), (10_007, 100, 0), (500, 500, 1), (50, 100, 0)])
def test_example_counts_sum_exactly(scheme, total, n, minimum):
    counts = example_counts(total, n, scheme, np.random.default_rng(3), alpha=0.1, zipf_exponent=1.2, minimum=minimum)
    assert counts.sum() == total and len(counts) == n
    assert counts.min() >= minimum


def test_uniform_is_flat_and_power_is_peaked():
    rng = np.random.default_rng(0)
    flat = example_counts(1_000_000, 1000, "uniform", rng)
    assert set(flat.tolist()) == {1000}
    shares = {}
    for alpha in (2.0, 0.2, 0.03):
        c = np.sort(example_counts(1_000_000, 1000, "power", np.random.default_rng(1), alpha=alpha))[::-1]
        shares[alpha] = c[:10].sum() / c.sum()  # share of the 10 largest instructions
    # smaller alpha concentrates the budget on fewer instructions (paper Fig. 7)
    assert shares[2.0] < shares[0.2] < shares[0.03]
    assert shares[2.0] < 0.03 and shares[0.03] > 0.2


def test_budget_too_small_for_minimum():
    with pytest.raises(ValueError, match="exceeds the budget"):
        example_counts(10, 20, "uniform", np.random.default_rng(0), minimum=1)
