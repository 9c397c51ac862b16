"""Small dense linear algebra shared by the kernels: an in-place Cholesky with a rank rule
and the two triangular solves with its factor.

* :func:`cholesky_lower` -- lower Cholesky factor of the leading ``q×q`` block, in place,
  failing on a pivot that is not above ``rtol`` times its original diagonal entry. Used by
  the daily WLS (:mod:`riskmodel.kernels.wls`, and ``riskmodel.regression`` for the
  mimicking portfolios) and by the time-series regressions
  (:mod:`riskmodel.kernels.timeseries`, on a Jacobi-scaled matrix).
* :func:`cholesky_solve` -- ``L Lᵀ y = b`` in place by forward and backward substitution,
  for the same two callers.

The numpy twin of :func:`cholesky_lower` is in ``tests/kernels/twins/wls.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cholesky_lower", "cholesky_solve"]

# let LLVM reorder sums (vectorised dot products); NaN/inf semantics are kept
_REASSOC = {"reassoc", "contract"}


@njit(cache=True, fastmath=_REASSOC, error_model="numpy")
def cholesky_lower(a, q, rtol):  # pragma: no cover - compiled
    """In-place lower Cholesky factor of the leading ``q×q`` block of ``a``.

    Only the lower triangle is read. Returns False (and leaves ``a`` partly overwritten)
    when a pivot is not above ``rtol`` times its original diagonal entry (or that entry is
    not positive), i.e. the matrix is (numerically) rank deficient.
    """
    for j in range(q):
        d = a[j, j]
        scale = d
        for k in range(j):
            d -= a[j, k] * a[j, k]
        if not (d > rtol * scale) or not (scale > 0.0):
            return False
        d = np.sqrt(d)
        a[j, j] = d
        for i in range(j + 1, q):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@njit(cache=True, inline="always", error_model="numpy")
def cholesky_solve(low, q, x):  # pragma: no cover - compiled
    """Solve ``L Lᵀ y = x`` in place (``x`` holds ``b`` on entry, ``y`` on return), ``L``
    the lower triangle of ``low[:q, :q]`` (as :func:`cholesky_lower` leaves it): forward
    substitution ``L z = b``, then backward ``Lᵀ y = z``, each a sequential sum."""
    for i in range(q):
        s = x[i]
        for k in range(i):
            s -= low[i, k] * x[k]
        x[i] = s / low[i, i]
    for i in range(q - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, q):
            s -= low[k, i] * x[k]
        x[i] = s / low[i, i]
