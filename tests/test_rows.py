"""distinct_rows: the packed-bytes pattern grouping used by the operator and the eigen adjustment."""

from __future__ import annotations

import numpy as np

from riskmodel._rows import distinct_rows


def test_distinct_rows_matches_numpy_unique():
    rng = np.random.default_rng(5)
    for shape in [(0, 3), (1, 1), (7, 0), (200, 3), (500, 17), (300, 70)]:
        member = rng.random(shape) < 0.3
        if shape[0] > 10:
            member[: shape[0] // 2] = member[0]  # many repeats
        first, codes = distinct_rows(member)
        if shape[0] == 0:
            assert first.size == 0 and codes.size == 0
            continue
        np.testing.assert_array_equal(member[first][codes], member)
        assert first.size == len({row.tobytes() for row in member})
        np.testing.assert_array_equal(codes[first], np.arange(first.size))  # first is the first of its pattern
        assert all(codes[:f].tolist().count(codes[f]) == 0 for f in first)
