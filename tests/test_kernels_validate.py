"""count_flagged against its numpy twin (predicate, sum, argmax)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.validate import (
    CHUNK,
    FLAG_AT_MOST,
    FLAG_BELOW,
    FLAG_INFINITE,
    count_flagged,
)


def _run(x, kind, bound):
    n_chunks = -(-x.size // CHUNK)
    counts = np.empty(n_chunks, np.int64)
    first = np.empty(n_chunks, np.int64)
    count_flagged(x, kind, bound, counts, first)
    hit = first[first >= 0]
    return int(counts.sum()), (int(hit[0]) if hit.size else -1)


@pytest.mark.parametrize("kind, bound, twin", [
    (FLAG_INFINITE, 0.0, np.isinf),
    (FLAG_AT_MOST, -1.0, lambda v: v <= -1.0),
    (FLAG_BELOW, 0.0, lambda v: v < 0.0),
])
@pytest.mark.parametrize("n", [1, CHUNK - 1, CHUNK, 3 * CHUNK + 17])
def test_count_flagged_matches_numpy_twin(kind, bound, twin, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 0.5
    x[rng.random(n) < 0.1] = np.nan  # never flagged
    x[rng.integers(0, n, 3)] = np.inf
    x[rng.integers(0, n, 2)] = -np.inf
    x[rng.integers(0, n, 2)] = -1.0  # on the bound
    with np.errstate(invalid="ignore"):
        flags = twin(x)
    expect_first = int(np.argmax(flags)) if flags.any() else -1
    assert _run(x, kind, bound) == (int(flags.sum()), expect_first)


def test_count_flagged_clean_array():
    x = np.linspace(-0.5, 0.5, 2 * CHUNK + 5)
    assert _run(x, FLAG_INFINITE, 0.0) == (0, -1)
    assert _run(x, FLAG_AT_MOST, -1.0) == (0, -1)
