"""Numba kernels of the time-series and statistical factor models.

* :func:`ts_loadings_kernel` -- per block of 8 adjacent stocks (in parallel over blocks),
  one pass over all dates: running weighted cross-products of each stock's regression of
  its returns on ``[1, f_t]`` (expanding, rolling or EWMA), the loadings, intercept and
  residual variance on the schedule dates, and the out-of-sample residuals of every day.
  The factor-only cross-product ``Σ w x̃ x̃ᵀ`` is common to all stocks (computed by the
  caller on the schedule dates); each stock keeps only a correction for the days on
  which *it* has no return, so a day costs O(k) per stock and a missing day O(k²).
* :func:`cross_section_ols_kernel` -- per date (in parallel over dates): the cross-sectional
  OLS of the day's returns on loadings fixed on an earlier date, ``f_t = (BᵀB)⁻¹Bᵀr_t``
  over the stocks with a return, from the full Gram ``BᵀB`` minus the rows of the stocks
  without one (O(N k) per date), and the residuals ``r_t − B f_t``.
* :func:`standardise_kernel` -- per date of a window (in parallel over dates): the matrix of
  standardised returns, missing cells and stocks left out set to 0, in one pass (the
  window moments are running sums kept by the caller).

The plain numpy twins live in ``tests/kernels/twins/timeseries.py`` (the kernel registry).
Callers validate and lay arrays out C-contiguously; kernels do no checking.
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels.linalg import cholesky_lower, cholesky_solve

__all__ = [
    "ts_loadings_kernel",
    "cross_section_ols_kernel",
    "standardise_kernel",
]

#: Stocks per block: 8 float64 = one cache line of a (date, stock) row.
_BLOCK = 8

#: A Cholesky pivot below this (on the unit-diagonal, Jacobi-scaled matrix) = singular.
_PIVOT_TOL = 1e-10


@numba.njit(cache=True, inline="always", error_model="numpy")
def _scaled_cholesky_solve(a, rhs, scale, out):  # pragma: no cover - compiled
    """Solve ``a x = rhs`` (SPD ``p×p``) by Cholesky of the Jacobi-scaled matrix.

    ``a`` is overwritten by the factor; ``scale`` is workspace. Returns False (and leaves
    ``out`` unspecified) when ``a`` is not numerically positive definite.
    """
    p = a.shape[0]
    for i in range(p):
        if not a[i, i] > 0.0:
            return False
        scale[i] = 1.0 / np.sqrt(a[i, i])
    for i in range(p):
        for j in range(i + 1):
            a[i, j] *= scale[i] * scale[j]
    if not cholesky_lower(a, p, _PIVOT_TOL):  # unit diagonal: the pivot tolerance is absolute
        return False
    for i in range(p):  # L Lᵀ y = D rhs
        out[i] = rhs[i] * scale[i]
    cholesky_solve(a, p, out)
    for i in range(p):
        out[i] *= scale[i]
    return True


@numba.njit(cache=True, error_model="numpy")
def _ts_block(
    r, x, fvalid, decay, window, min_obs, rows_sched, common, blk, loadings, intercept, resid_var, n_obs, resid
):  # pragma: no cover - compiled
    """One block of ``_BLOCK`` adjacent stocks of :func:`ts_loadings_kernel`."""
    T, N = r.shape
    k = x.shape[1]
    p = k + 1
    S = rows_sched.shape[0]
    w_leave = decay**window
    n0 = blk * _BLOCK
    nb = min(_BLOCK, N - n0)
    xty = np.zeros((nb, p))
    yy = np.zeros(nb)
    sw2 = np.zeros(nb)
    cnt = np.zeros(nb, np.int64)
    corr = np.zeros((nb, p, p))
    ctime = np.zeros(nb, np.int64)
    cur = np.full((nb, p), np.nan)
    xt = np.empty(p)
    xs = np.empty(p)
    a = np.empty((p, p))
    scale = np.empty(p)
    beta = np.empty(p)
    si = 0
    for t in range(T):
        ok_t = fvalid[t]
        xt[0] = 1.0
        for j in range(k):
            xt[j + 1] = x[t, j]
        # out-of-sample residual with the loadings known at t - 1
        for b in range(nb):
            y = r[t, n0 + b]
            if ok_t and np.isfinite(y) and np.isfinite(cur[b, 0]):
                e = y
                for j in range(p):
                    e -= cur[b, j] * xt[j]
                resid[t, n0 + b] = e
            else:
                resid[t, n0 + b] = np.nan
        # decay the stock's own sums by one day
        if decay != 1.0:
            d2 = decay * decay
            for b in range(nb):
                for j in range(p):
                    xty[b, j] *= decay
                yy[b] *= decay
                sw2[b] *= d2
        # the day leaving a rolling window
        s = t - window
        if s >= 0 and fvalid[s]:
            xs[0] = 1.0
            for j in range(k):
                xs[j + 1] = x[s, j]
            for b in range(nb):
                y = r[s, n0 + b]
                if np.isfinite(y):
                    for j in range(p):
                        xty[b, j] -= w_leave * y * xs[j]
                    yy[b] -= w_leave * y * y
                    sw2[b] -= w_leave * w_leave
                    cnt[b] -= 1
                else:
                    f = decay ** (t - ctime[b])
                    for i in range(p):
                        for j in range(i + 1):
                            corr[b, i, j] = f * corr[b, i, j] - w_leave * xs[i] * xs[j]
                    ctime[b] = t
        # the day entering
        if ok_t:
            for b in range(nb):
                y = r[t, n0 + b]
                if np.isfinite(y):
                    for j in range(p):
                        xty[b, j] += y * xt[j]
                    yy[b] += y * y
                    sw2[b] += 1.0
                    cnt[b] += 1
                else:
                    f = decay ** (t - ctime[b])
                    for i in range(p):
                        for j in range(i + 1):
                            corr[b, i, j] = f * corr[b, i, j] + xt[i] * xt[j]
                    ctime[b] = t
        # schedule row: solve and store
        if si < S and rows_sched[si] == t:
            for b in range(nb):
                n = n0 + b
                n_obs[si, n] = cnt[b]
                solved = False
                if cnt[b] >= min_obs and cnt[b] > p:
                    f = decay ** (t - ctime[b])
                    for i in range(p):
                        for j in range(i + 1):
                            a[i, j] = common[si, i, j] - f * corr[b, i, j]
                    sw = a[0, 0]
                    solved = _scaled_cholesky_solve(a, xty[b], scale, beta)
                if solved:
                    ssr = yy[b]
                    for j in range(p):
                        ssr -= beta[j] * xty[b, j]
                    dof = sw - p * sw2[b] / sw
                    intercept[si, n] = beta[0]
                    for j in range(k):
                        loadings[si, n, j] = beta[j + 1]
                    resid_var[si, n] = max(ssr, 0.0) / dof if dof > 0 else np.nan
                    for j in range(p):
                        cur[b, j] = beta[j]
                else:
                    intercept[si, n] = np.nan
                    resid_var[si, n] = np.nan
                    for j in range(k):
                        loadings[si, n, j] = np.nan
                    for j in range(p):
                        cur[b, j] = np.nan
            si += 1


def ts_loadings_kernel(
    r, x, fvalid, decay, window, min_obs, rows_sched, common, loadings, intercept, resid_var, n_obs, resid
) -> None:
    """Per-stock time-series regressions ``r_nt = a_n + b_nᵀ f_t + e_nt`` for every date.

    Parameters
    ----------
    r : (T, N) float64
        Stock returns, NaN = no return (that day is skipped for that stock).
    x : (T, k) float64
        Factor returns (rows with ``fvalid[t]`` False are ignored; may hold NaN there).
    fvalid : (T,) bool
        Dates with every factor return present.
    decay : float
        EWMA decay ``λ = 2^(−1/H)`` (1.0: equal weights); day ``s`` has weight ``λ^(t−s)`` at ``t``.
    window : int
        Days in the window (``T + 1``: all history).
    min_obs : int
        Valid days needed in the window for loadings (else NaN).
    rows_sched : (S,) int64
        Increasing schedule rows at which loadings are solved and stored.
    common : (S, p, p) float64
        ``Σ_s w_{t−s} x̃_s x̃_sᵀ`` over the valid factor dates of each schedule row's window,
        ``x̃ = [1, x]``, ``p = k + 1``.
    loadings : (S, N, k) out
    intercept, resid_var : (S, N) out
        Intercept ``a`` and weighted residual variance
        ``Σ w e² / (Σ w − p Σ w² / Σ w)`` (``SSR/(n − p)`` for equal weights).
    n_obs : (S, N) int64 out
        Valid days in the window.
    resid : (T, N) out
        ``r_t − a − bᵀ f_t`` with the loadings of the last schedule row ``≤ t − 1``.
    """
    parallel_chunks(_ts_loadings_kernel_chunk, (r.shape[1] + _BLOCK - 1) // _BLOCK, r, x, fvalid, decay,
                    window, min_obs, rows_sched, common, loadings, intercept, resid_var, n_obs, resid)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ts_loadings_kernel_chunk(lo, hi, r, x, fvalid, decay, window, min_obs, rows_sched, common, loadings,
                              intercept, resid_var, n_obs, resid):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`ts_loadings_kernel`."""
    for blk in range(lo, hi):
        _ts_block(r, x, fvalid, decay, window, min_obs, rows_sched, common, blk, loadings, intercept, resid_var, n_obs, resid)


def cross_section_ols_kernel(r, which, loadings, gram, min_stocks, f, resid) -> None:
    """Daily cross-sectional OLS ``f_t = (BᵀB)⁻¹ Bᵀ r_t`` on loadings fixed earlier.

    Parameters
    ----------
    r : (T, N) float64
        Returns, NaN = none.
    which : (T,) int64
        Row of ``loadings`` to use on date ``t`` (−1: none; outputs NaN).
    loadings : (S, N, k) float64
        A stock's row is all finite (usable) or NaN (not in the model).
    gram : (S, k, k) float64
        ``BᵀB`` over the stocks with finite loadings.
    min_stocks : int
        Fewer stocks with a return and loadings: NaN outputs.
    f : (T, k) out
    resid : (T, N) out
        ``r_t − B f_t`` for stocks with a return and loadings, NaN elsewhere.
    """
    parallel_chunks(_cross_section_ols_kernel_chunk, r.shape[0], r, which, loadings, gram, min_stocks, f,
                    resid)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cross_section_ols_kernel_chunk(lo, hi, r, which, loadings, gram, min_stocks, f, resid):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`cross_section_ols_kernel`."""
    T, N = r.shape
    k = loadings.shape[2]
    for t in range(lo, hi):
        s = which[t]
        for n in range(N):
            resid[t, n] = np.nan
        for j in range(k):
            f[t, j] = np.nan
        if s < 0:
            continue
        a = np.empty((k, k))
        for i in range(k):
            for j in range(i + 1):
                a[i, j] = gram[s, i, j]
        rhs = np.zeros(k)
        n_valid = 0
        for n in range(N):
            if not np.isfinite(loadings[s, n, 0]):
                continue
            y = r[t, n]
            if np.isfinite(y):
                n_valid += 1
                for j in range(k):
                    rhs[j] += loadings[s, n, j] * y
            else:
                for i in range(k):
                    bi = loadings[s, n, i]
                    for j in range(i + 1):
                        a[i, j] -= bi * loadings[s, n, j]
        if n_valid < min_stocks:
            continue
        scale = np.empty(k)
        sol = np.empty(k)
        if not _scaled_cholesky_solve(a, rhs, scale, sol):
            continue
        for j in range(k):
            f[t, j] = sol[j]
        for n in range(N):
            y = r[t, n]
            if np.isfinite(y) and np.isfinite(loadings[s, n, 0]):
                e = y
                for j in range(k):
                    e -= loadings[s, n, j] * sol[j]
                resid[t, n] = e


def standardise_kernel(r, t0, mean, inv_sd, out) -> None:
    """``out[i, n] = (r[t0 + i, n] − mean[n]) · inv_sd[n]``; 0 where the return is NaN or ``inv_sd[n] == 0``.

    One pass over the window rows (in parallel over rows), every stock's column written:
    a stock left out of the window has ``inv_sd = 0`` and an all-zero column.
    """
    parallel_chunks(_standardise_kernel_chunk, out.shape[0], r, t0, mean, inv_sd, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _standardise_kernel_chunk(lo, hi, r, t0, mean, inv_sd, out):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`standardise_kernel`."""
    W, N = out.shape
    for i in range(lo, hi):
        t = t0 + i
        for n in range(N):
            y = r[t, n]
            s = inv_sd[n]
            out[i, n] = (y - mean[n]) * s if (s > 0.0 and np.isfinite(y)) else 0.0
