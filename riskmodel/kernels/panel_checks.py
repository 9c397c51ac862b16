"""Numba kernels of the panel checks (``riskmodel.data.validation``, ``check_fundamental_data``).

The plausibility checks read every return and market cap once before a fit; done with
numpy they were single-threaded per-date loops (``np.nanmedian`` row by row) and full-size
boolean temporaries, about a third of a full fit's serial time. Each kernel here is one pass
over a block of dates, parallel over dates, with per-date scratch only:

* :func:`robust_spread_kernel` -- per date, ``1.4826 x`` the median absolute deviation from
  the median of the returns that are finite and at most ``limit`` in magnitude, and their
  count (``np.nanmedian`` twice, as ``validation._robust_spread``);
* :func:`cap_return_kernel` -- per date, the stock-days where the change of ln market cap
  and the return are both finite and non-zero (``|return| <= limit``): how many, on how
  many the signs agree, and their absolute values packed at the front of each row;
* :func:`cap_jump_kernel` -- per date, the stock-days where the cap moves by more than
  ``exp(limit)`` beyond the day's return, and the first such stock;
* :func:`row_extremes_kernel` -- per date, the largest and smallest finite value.

Medians are selected in place by the regression kernels' exact median
(:mod:`riskmodel.kernels.wls`: Hoare's selection, which compiles in a fraction of the time
of numba's ``np.median``; the mean of the two middle values for an even count, as numpy's); logarithms are numba's (libm), which can differ from numpy's vectorised ones in
the last bit. Callers lay arrays out C-contiguously; kernels do no checking.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels.wls import (
    _median_inplace,  # the exact median by selection, shared with the regression's clip
)

__all__ = ["cap_jump_kernel", "cap_return_kernel", "robust_spread_kernel", "row_extremes_kernel"]


def robust_spread_kernel(values, limit, out_spread, out_count) -> None:
    """Per row of ``values`` (T, N): the robust spread of its finite values with ``|v| <= limit``.

    Writes ``out_spread[t] = 1.4826 * median(|v - median(v)|)`` (NaN with no value) and
    ``out_count[t]`` (int64), the number of values used.
    """
    parallel_chunks(_robust_spread_chunk, values.shape[0], values, limit, out_spread, out_count)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _robust_spread_chunk(lo, hi, values, limit, out_spread, out_count):  # pragma: no cover - compiled
    n = values.shape[1]
    buf = np.empty(n)
    for t in range(lo, hi):
        k = 0
        for j in range(n):
            v = values[t, j]
            if math.isfinite(v) and abs(v) <= limit:
                buf[k] = v
                k += 1
        out_count[t] = k
        if k == 0:
            out_spread[t] = np.nan
            continue
        centre = _median_inplace(buf, k)
        for j in range(k):
            buf[j] = abs(buf[j] - centre)
        out_spread[t] = 1.4826 * _median_inplace(buf, k)


def cap_return_kernel(caps, returns, limit, out_abs_dcap, out_abs_ret, out_count, out_agree) -> None:
    """Per date ``t`` of ``returns`` (T, N), with ``caps`` (T + 1, N) the caps of ``t - 1`` and ``t``.

    ``y = ln(caps[t + 1] / caps[t])`` and ``r = returns[t]`` are used where both are finite
    and non-zero and ``|r| <= limit``; writes their count ``out_count[t]``, the count with
    ``sign(y) == sign(r)`` ``out_agree[t]``, and ``|y|``, ``|r|`` in stock order into the first
    ``out_count[t]`` entries of row ``t`` of ``out_abs_dcap`` and ``out_abs_ret`` (T, N).
    """
    parallel_chunks(_cap_return_chunk, returns.shape[0], caps, returns, limit, out_abs_dcap, out_abs_ret,
                    out_count, out_agree)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cap_return_chunk(lo, hi, caps, returns, limit, out_abs_dcap, out_abs_ret, out_count,
                      out_agree):  # pragma: no cover - compiled
    n = returns.shape[1]
    for t in range(lo, hi):
        k = 0
        agree = 0
        for j in range(n):
            r = returns[t, j]
            y = np.log(caps[t + 1, j] / caps[t, j])
            if math.isfinite(y) and math.isfinite(r) and y != 0 and r != 0 and abs(r) <= limit:
                out_abs_dcap[t, k] = abs(y)
                out_abs_ret[t, k] = abs(r)
                if (y > 0) == (r > 0):
                    agree += 1
                k += 1
        out_count[t] = k
        out_agree[t] = agree


def cap_jump_kernel(caps, returns, limit, out_count, out_first) -> None:
    """Per date ``t`` of ``returns`` (T, N), with ``caps`` (T + 1, N) the caps of ``t - 1`` and ``t``.

    A jump: both caps positive and ``|ln(caps[t + 1] / caps[t]) - ln(1 + r)| > limit``, with
    ``r`` the return where it is finite and above -1, else 0. Writes the number of jumps
    ``out_count[t]`` and the first stock with one ``out_first[t]`` (-1 when none).
    """
    parallel_chunks(_cap_jump_chunk, returns.shape[0], caps, returns, limit, out_count, out_first)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cap_jump_chunk(lo, hi, caps, returns, limit, out_count, out_first):  # pragma: no cover - compiled
    n = returns.shape[1]
    for t in range(lo, hi):
        count = 0
        first = -1
        for j in range(n):
            before = caps[t, j]
            after = caps[t + 1, j]
            if not (before > 0 and after > 0):
                continue
            r = returns[t, j]
            moved = np.log1p(r) if (math.isfinite(r) and r > -1) else 0.0
            if abs(np.log(after / before) - moved) > limit:
                count += 1
                if first < 0:
                    first = j
        out_count[t] = count
        out_first[t] = first


def row_extremes_kernel(values, out_max, out_min) -> None:
    """Per row of ``values`` (T, N): the largest and smallest finite value (-inf and inf when none)."""
    parallel_chunks(_row_extremes_chunk, values.shape[0], values, out_max, out_min)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row_extremes_chunk(lo, hi, values, out_max, out_min):  # pragma: no cover - compiled
    n = values.shape[1]
    for t in range(lo, hi):
        high = -np.inf
        low = np.inf
        for j in range(n):
            v = values[t, j]
            if math.isfinite(v):
                high = max(high, v)
                low = min(low, v)
        out_max[t] = high
        out_min[t] = low
