"""Numba kernels of the specific-risk model (METHODS section 4).

Four kernels, each writing into preallocated outputs:

* :func:`~riskmodel.kernels.specific_ts.specific_ts_kernel` (in
  :mod:`~riskmodel.kernels.specific_ts`) -- per block of 8 stocks, over all dates: windowed,
  NaN-aware EWMA Newey-West variance, valid count and the robust blending statistic ``Z``.
* :func:`~riskmodel.kernels.structural.structural_kernel` (in
  :mod:`~riskmodel.kernels.structural`) -- per date: the v-weighted regression of
  ``ln sigma_TS`` on market + industries + styles and the structural (or blended) volatility.
* :func:`shrink_kernel` -- per date (in parallel over dates): Bayesian shrinkage of the
  volatilities toward their cap-weighted size-group means.
* :func:`vra_terms_kernel` -- per date (in parallel over dates): the two sums of the
  specific volatility regime adjustment, ``sum_n cap_n (u_n,t / sigma_n,t-1)^2`` and
  ``sum_n cap_n`` over the ESTU of the day before.

All four are importable from here. The plain numpy twins live in
``tests/kernels/twins/specific.py`` (the kernel registry). Callers
validate and lay arrays out C-contiguously; kernels do no checking.

Only the small helpers of the inner loops are inlined into their kernel (numba IR
inlining, ``inline="always"``). The large ones are ordinary compiled functions with the
numpy error model, the one the parallel kernels that call them use (a zero division gives
inf or NaN; it does not raise): inlining them cost 11 s of the first run's compilation and
gained no measurable speed.
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels._radix import _radix_sort_positive
from riskmodel.kernels.specific_ts import specific_ts_kernel
from riskmodel.kernels.structural import MIN_INDUSTRY_NAMES, structural_kernel

__all__ = ["MIN_INDUSTRY_NAMES", "specific_ts_kernel", "structural_kernel", "shrink_kernel", "vra_terms_kernel"]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _linear_quantile(sorted_vals, n, p):  # pragma: no cover - compiled
    """``np.quantile(sorted_vals[:n], p)`` (linear interpolation) of a sorted buffer."""
    pos = p * (n - 1)
    lo = int(np.floor(pos))
    if lo >= n - 1:
        return sorted_vals[n - 1]
    frac = pos - lo
    return sorted_vals[lo] + frac * (sorted_vals[lo + 1] - sorted_vals[lo])


def shrink_kernel(sig, cap, estu, n_groups, q, out_sig, out_group) -> None:
    """Bayesian shrinkage of volatilities toward cap-weighted size-group means.

    Parameters
    ----------
    sig : ndarray (T, N) float64
        Blended volatilities (NaN where absent).
    cap : ndarray (T, N) float64
        Market caps.
    estu : ndarray (T, N) bool
        Estimation universe (with finite positive cap).
    n_groups : int
        Number of size groups G.
    q : float
        Shrinkage intensity.
    out_sig : ndarray (T, N) float64
        Written: ``nu sigma_bar + (1 - nu) sigma`` where the group statistics exist,
        else ``sig`` unchanged. May be ``sig`` itself (shrinkage in place).
    out_group : ndarray (T, N) int8
        Written: size group ``0..G-1`` (``-1`` when the cap is missing or no ESTU).

    Notes
    -----
    Breakpoints are the ``k/G`` quantiles (linear interpolation) of the ESTU caps; a name
    with a finite cap falls in group ``#{k : b_k <= cap}``. ``sigma_bar(s)`` is the
    cap-weighted mean and ``Delta(s) = sqrt(mean (sigma - sigma_bar)^2)`` over the ESTU
    names of group s with finite sigma; ``nu = q|sigma - sigma_bar| / (Delta +
    q|sigma - sigma_bar|)`` (0 when the denominator is 0). The ESTU caps of each date are
    sorted by a radix sort of their bits (:func:`_radix_sort_positive`, branch-free, about
    4x faster than a comparison sort on real caps), or by ``np.sort`` when a cap is <= 0.
    """
    parallel_chunks(_shrink_kernel_chunk, sig.shape[0], sig, cap, estu, n_groups, q, out_sig, out_group)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shrink_kernel_chunk(lo, hi, sig, cap, estu, n_groups, q, out_sig, out_group):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`shrink_kernel`."""
    T, N = sig.shape
    G = n_groups
    for t in range(lo, hi):
        ne = 0
        for n in range(N):
            if estu[t, n]:
                ne += 1
        if ne == 0:
            for n in range(N):
                out_sig[t, n] = sig[t, n]
                out_group[t, n] = -1
            continue
        caps = np.empty(ne)
        i = 0
        positive = True
        for n in range(N):
            if estu[t, n]:
                x = cap[t, n]
                caps[i] = x
                positive &= x > 0.0 and x < np.inf
                i += 1
        if positive:
            _radix_sort_positive(caps)
        else:
            caps.sort()
        bp = np.empty(G - 1)
        for k in range(1, G):
            bp[k - 1] = _linear_quantile(caps, ne, k / G)
        _shrink_date(sig, cap, estu, t, G, q, bp, out_sig, out_group)


@numba.njit(cache=True, error_model="numpy")
def _shrink_date(sig, cap, estu, t, G, q, bp, out_sig, out_group):  # pragma: no cover
    """Groups, group statistics and shrunk volatilities of date ``t`` (see :func:`shrink_kernel`)."""
    N = sig.shape[1]
    sw = np.zeros(G)
    sws = np.zeros(G)
    for n in range(N):
        x = cap[t, n]
        if np.isfinite(x):
            g = 0
            for k in range(G - 1):  # #{k : b_k <= cap}, branch-free
                g += bp[k] <= x
            out_group[t, n] = g
            if estu[t, n] and np.isfinite(sig[t, n]):
                sw[g] += x
                sws[g] += x * sig[t, n]
        else:
            out_group[t, n] = -1
    mean = np.full(G, np.nan)
    for g in range(G):
        if sw[g] > 0.0:
            mean[g] = sws[g] / sw[g]
    ss = np.zeros(G)
    cnt = np.zeros(G)
    for n in range(N):
        g = out_group[t, n]
        if g >= 0 and estu[t, n] and np.isfinite(sig[t, n]):
            d = sig[t, n] - mean[g]
            ss[g] += d * d
            cnt[g] += 1.0
    delta = np.full(G, np.nan)
    for g in range(G):
        if cnt[g] > 0.0:
            delta[g] = np.sqrt(ss[g] / cnt[g])
    for n in range(N):
        s = sig[t, n]
        g = out_group[t, n]
        if g >= 0 and np.isfinite(s) and np.isfinite(mean[g]):
            d = abs(s - mean[g])
            den = delta[g] + q * d
            nu = q * d / den if den > 0.0 else 0.0
            out_sig[t, n] = nu * mean[g] + (1.0 - nu) * s
        else:
            out_sig[t, n] = s


def vra_terms_kernel(u, sig_prev, cap_prev, estu_prev, out_num, out_wsum) -> None:
    """Cap-weighted sums of squared standardised residuals, per row (specific VRA).

    ``out_num[r] = sum_n cap_prev[r, n] (u[r, n] / sig_prev[r, n])^2`` and
    ``out_wsum[r] = sum_n cap_prev[r, n]`` over the names with ``estu_prev[r, n]`` whose
    squared ratio is finite. One pass, in parallel over rows.

    Parameters
    ----------
    u : ndarray (R, N) float64
        Specific returns of dates ``t``.
    sig_prev, cap_prev : ndarray (R, N) float64
        Forecast specific volatilities and caps of dates ``t - 1``.
    estu_prev : ndarray (R, N) bool
        Estimation universe of dates ``t - 1``.
    out_num, out_wsum : ndarray (R,) float64
        Written.
    """
    parallel_chunks(_vra_terms_kernel_chunk, u.shape[0], u, sig_prev, cap_prev, estu_prev, out_num, out_wsum)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vra_terms_kernel_chunk(lo, hi, u, sig_prev, cap_prev, estu_prev, out_num, out_wsum):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`vra_terms_kernel`."""
    R, N = u.shape
    for r in range(lo, hi):
        num = 0.0
        wsum = 0.0
        for n in range(N):
            if estu_prev[r, n]:
                z = u[r, n] / sig_prev[r, n]
                z2 = z * z
                if np.isfinite(z2):
                    w = cap_prev[r, n]
                    num += w * z2
                    wsum += w
        out_num[r] = num
        out_wsum[r] = wsum
