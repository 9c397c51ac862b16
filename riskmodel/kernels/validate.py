"""Numba kernel of the panel checks: count the offending cells of a large array in one pass.

:func:`count_flagged` replaces ``predicate(values).sum()`` + ``argmax`` (a full boolean
temporary and two passes) with one parallel, allocation-free pass over fixed-size chunks.
Its plain numpy twin lives in ``tests/test_kernels_validate.py``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["FLAG_INFINITE", "FLAG_AT_MOST", "FLAG_BELOW", "CHUNK", "count_flagged"]

#: ``x == ±inf``.
FLAG_INFINITE = 0
#: ``x <= bound``.
FLAG_AT_MOST = 1
#: ``x < bound``.
FLAG_BELOW = 2
#: Elements per chunk.
CHUNK = 1 << 16


@numba.njit(cache=True, parallel=True)
def count_flagged(x: np.ndarray, kind: int, bound: float, counts: np.ndarray,
                  first: np.ndarray) -> None:  # pragma: no cover - compiled
    """Per chunk of ``CHUNK`` elements of ``x`` (1-D), the flagged cells and the first one.

    Parameters
    ----------
    x : ndarray (n,) float64
        Values (NaN is never flagged).
    kind : int
        ``FLAG_INFINITE``, ``FLAG_AT_MOST`` or ``FLAG_BELOW``.
    bound : float
        The bound of ``FLAG_AT_MOST`` / ``FLAG_BELOW``.
    counts : ndarray (ceil(n / CHUNK),) int64
        Written: flagged cells per chunk.
    first : ndarray (ceil(n / CHUNK),) int64
        Written: flat index of the chunk's first flagged cell, -1 if none.
    """
    n = x.shape[0]
    for c in numba.prange(counts.shape[0]):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        k = 0
        if kind == FLAG_INFINITE:
            for i in range(lo, hi):
                k += np.isinf(x[i])
        elif kind == FLAG_AT_MOST:
            for i in range(lo, hi):
                k += x[i] <= bound
        else:
            for i in range(lo, hi):
                k += x[i] < bound
        counts[c] = k
        first[c] = -1
        if k:
            for i in range(lo, hi):
                v = x[i]
                hit = np.isinf(v) if kind == FLAG_INFINITE else (v <= bound if kind == FLAG_AT_MOST else v < bound)
                if hit:
                    first[c] = i
                    break
