"""Daily cross-sectional WLS with an industry sum-to-zero constraint (METHODS §2).

The factors are ``[market, industry_0 .. industry_{P-1}, style_0 .. style_{K-1}]``
(``m = 1 + P + K``). Exposures are structured: the market column is 1, industry membership
is an integer code per stock, and the styles are a dense ``(N, K)`` block. The Gram
``XᵀVX`` is therefore accumulated blockwise, in ``O(N·K²)`` per date: a ``(K+1)×(K+1)``
block for ``[1, styles]``, a diagonal of industry weight sums and a ``P×K`` border of
per-industry weighted style sums. No dense dummy matrix is ever formed.

The constraint ``Σ_p c_p f_p = 0`` (``c_p`` = cap weight of industry ``p`` among the day's
valid stocks) is imposed by restriction: with reference industry ``P`` (largest ``c``),
``f = R g`` where ``R`` is the identity with ``P``'s row set to ``−c_p/c_P``; the reduced
system ``RᵀXᵀVXR g = RᵀXᵀVr`` is solved by a hand-written Cholesky factorisation.
``R`` is never formed: ``RᵀGR`` is assembled from ``G`` and the row ``a = −c/c_P``.

All functions here are plain loops (no BLAS), so the parallel kernel needs no BLAS
thread control. :func:`day_sample` and :func:`~riskmodel.kernels.linalg.cholesky_lower` are also called from
``riskmodel.regression`` for the one-date dense factor-mimicking portfolios, so the
sample rules (validity, thin industries, constraint weights) and the rank rule live in one
place. The plain numpy twins live in ``tests/kernels/twins/wls.py`` (the kernel registry).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels.linalg import cholesky_lower, cholesky_solve

__all__ = [
    "DATE_OK",
    "DATE_BEFORE_LAG",
    "DATE_SINGULAR",
    "IND_ACTIVE",
    "IND_THIN",
    "IND_EMPTY",
    "PIVOT_RTOL",
    "day_sample",
    "cholesky_lower",
    "wls_factor_returns",
]

# per-date status codes
DATE_OK = 0
DATE_BEFORE_LAG = 1
DATE_SINGULAR = 2
# per-(date, industry) status codes
IND_ACTIVE = 0
IND_THIN = 1
IND_EMPTY = 2
# a Cholesky pivot below PIVOT_RTOL times its diagonal entry means rank deficiency
PIVOT_RTOL = 1e-12
_MAD_TO_SIGMA = 1.4826
# let LLVM reorder sums (vectorised dot products); NaN/inf semantics are kept
_REASSOC = {"reassoc", "contract"}


@njit(cache=True, error_model="numpy")
def day_sample(r, w, x, ind, cap, n_ind, min_size, fit, res, ind_status, c):
    """Estimation sample, industry status and constraint weights of one date.

    Parameters
    ----------
    r : float64 (N,)
        Returns of the date (only finiteness is used).
    w : float64 (N,)
        Regression weights (row ``t − lag``).
    x : float64 (N, K)
        Style exposures (row ``t − lag``).
    ind : int32 (N,)
        Industry codes (row ``t − lag``); not read when ``n_ind == 0``.
    cap : float64 (N,)
        Market caps (row ``t − lag``), for the constraint weights.
    n_ind : int
        Number of industries P (0: no industry factors).
    min_size : float
        A present industry with fewer fit members, or an effective count
        ``(Σv)²/Σv²`` below this, is thin (dropped for the day).
    fit, res : bool (N,)
        Out: ``res`` = finite return, finite styles and a valid code (gets a residual);
        ``fit`` = ``res`` and a finite weight > 0 (in the regression).
    ind_status : int8 (P,)
        Out: ``IND_ACTIVE``, ``IND_THIN`` or ``IND_EMPTY``.
    c : float64 (P,)
        Out: cap weight of each active industry among the fit stocks (0 when dropped).

    Returns
    -------
    int
        Number of fit stocks.
    """
    n_stocks, n_styles = x.shape
    count = np.zeros(n_ind, np.int64)
    sum_v = np.zeros(n_ind)
    sum_v2 = np.zeros(n_ind)
    for p in range(n_ind):
        c[p] = 0.0
    total_cap = 0.0
    n_fit = 0
    for n in range(n_stocks):
        ok = np.isfinite(r[n])
        if ok:
            for k in range(n_styles):
                if not np.isfinite(x[n, k]):
                    ok = False
                    break
        code = 0
        if ok and n_ind > 0:
            code = ind[n]
            if code < 0 or code >= n_ind:
                ok = False
        res[n] = ok
        vn = w[n]
        in_fit = ok and np.isfinite(vn) and vn > 0.0
        fit[n] = in_fit
        if in_fit:
            n_fit += 1
            cn = cap[n]
            if not (np.isfinite(cn) and cn > 0.0):
                cn = 0.0
            total_cap += cn
            if n_ind > 0:
                count[code] += 1
                sum_v[code] += vn
                sum_v2[code] += vn * vn
                c[code] += cn
    for p in range(n_ind):
        if count[p] == 0:
            ind_status[p] = IND_EMPTY
        elif count[p] < min_size or sum_v[p] * sum_v[p] < min_size * sum_v2[p]:
            ind_status[p] = IND_THIN
        else:
            ind_status[p] = IND_ACTIVE
        if ind_status[p] == IND_ACTIVE and total_cap > 0.0:
            c[p] = c[p] / total_cap
        else:
            c[p] = 0.0
    return n_fit


@njit(cache=True, error_model="numpy")
def _kth_smallest(a, n, k):
    """k-th smallest of ``a[:n]`` by Hoare quickselect, in place.

    On return ``a[:k] ≤ a[k] ≤ a[k+1:n]``. Hoare partitioning keeps runs of equal values
    (many zero returns) linear.
    """
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        x0, x1, x2 = a[lo], a[mid], a[hi]
        if x0 > x1:
            x0, x1 = x1, x0
        if x1 > x2:
            x1 = x2
            if x0 > x1:
                x1 = x0
        pivot = x1
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit(cache=True, error_model="numpy")
def _median_inplace(a, n):
    """Median of ``a[:n]`` (mean of the two middle values for even n); reorders ``a``."""
    upper = _kth_smallest(a, n, n // 2)
    if n % 2 == 1:
        return upper
    lower = a[0]
    for i in range(1, n // 2):
        if a[i] > lower:
            lower = a[i]
    return (lower + upper) / 2.0


@njit(cache=True, error_model="numpy")
def median_bracketed(a, n, tmp):
    """Exact median of ``a[:n]`` (``a`` may be reordered; ``tmp`` is scratch of length n).

    Floyd–Rivest style: two pivots from a sorted, evenly spaced sample bracket the middle
    order statistics; one branch-light pass counts the values below the bracket and
    compacts those inside it into ``tmp``; quickselect finishes on that small set. Falls
    back to quickselect on all of ``a`` when the bracket misses (or n is small).
    """
    if n < 512:
        return _median_inplace(a, n)
    n_sample = 256
    sample = np.empty(n_sample)
    for i in range(n_sample):
        sample[i] = a[(i * n) // n_sample]
    sample.sort()
    lo_p = sample[n_sample // 2 - 24]
    hi_p = sample[n_sample // 2 + 24]
    k_hi = n // 2
    k_lo = (n - 1) // 2
    below = 0
    m = 0
    for i in range(n):
        v = a[i]
        below += v < lo_p
        tmp[m] = v
        m += (v >= lo_p) & (v <= hi_p)
    if below > k_lo or below + m <= k_hi:
        return _median_inplace(a, n)
    upper = _kth_smallest(tmp, m, k_hi - below)
    if n % 2 == 1:
        return upper
    lower = tmp[0]
    for i in range(1, k_hi - below):
        if tmp[i] > lower:
            lower = tmp[i]
    return (lower + upper) / 2.0


@njit(cache=True, error_model="numpy")
def _clip_bounds(r, fit, n_fit, clip, buf):
    """``median ± clip·1.4826·MAD`` of the fit returns (no clipping when MAD = 0)."""
    j = 0
    for n in range(r.shape[0]):
        if fit[n]:
            buf[j] = r[n]
            j += 1
    tmp = np.empty(n_fit)
    med = median_bracketed(buf, n_fit, tmp)
    for i in range(n_fit):
        buf[i] = abs(buf[i] - med)
    mad = median_bracketed(buf, n_fit, tmp)
    if mad > 0.0:
        half = clip * _MAD_TO_SIGMA * mad
        return med - half, med + half
    return -np.inf, np.inf


@njit(cache=True, fastmath=_REASSOC, error_model="numpy")
def _gram_dots(zc, zr, n, a_blk, b_blk):
    """Upper triangle of ``zc[:, :n] zc[:, :n]ᵀ`` and ``zc[:, :n] zr[:n]`` (contiguous dots)."""
    kk = zc.shape[0]
    for k in range(kk):
        zk = zc[k]
        for l in range(k, kk):
            zl = zc[l]
            s = 0.0
            for i in range(n):
                s += zk[i] * zl[i]
            a_blk[k, l] = s
        s = 0.0
        for i in range(n):
            s += zk[i] * zr[i]
        b_blk[k] = s


@njit(cache=True, fastmath=_REASSOC, error_model="numpy")
def _lower_inverse(low, q, out):
    """``out = L⁻¹`` for the lower-triangular ``L = low[:q, :q]``, by row axpys."""
    for i in range(q):
        for j in range(q):
            out[i, j] = 0.0
        out[i, i] = 1.0
        for k in range(i):
            lik = low[i, k]
            for j in range(k + 1):
                out[i, j] -= lik * out[k, j]
        d = low[i, i]
        for j in range(i + 1):
            out[i, j] /= d


@njit(cache=True, error_model="numpy")
def _solve_day(r, x, ind, w, cap, n_ind, clip, min_size, f_row, u_row, se_row, ind_status):
    """One date: sample, clip, blockwise Gram, restricted Cholesky solve, outputs.

    Writes ``f_row`` (m,), ``u_row`` (N,), ``se_row`` (m,), ``ind_status`` (P,) and returns
    ``(r2, n_obs, n_clipped, date_status)``.
    """
    n_stocks, n_styles = x.shape
    m = 1 + n_ind + n_styles
    fit = np.empty(n_stocks, np.bool_)
    res = np.empty(n_stocks, np.bool_)
    c = np.empty(n_ind)
    n_fit = day_sample(r, w, x, ind, cap, n_ind, min_size, fit, res, ind_status, c)

    rc = np.empty(n_stocks)  # clipped returns of fit stocks (median buffer first)
    lo = -np.inf
    hi = np.inf
    if n_fit > 0 and not np.isnan(clip):
        lo, hi = _clip_bounds(r, fit, n_fit, clip, rc)

    # ---- blockwise Gram: [1, x] block by contiguous dots over a gathered √v-scaled
    # buffer, industry diagonal + border by scatter, right-hand sides
    kk = n_styles + 1
    zc = np.empty((kk, n_fit))  # √v [1, x] of the fit stocks, one row per column of X
    zr = np.empty(n_fit)  # √v r (clipped)
    ind_blk = np.zeros((n_ind, kk))  # [Σ_p v, Σ_p v x_k]
    b_ind = np.zeros(n_ind)
    n_clipped = _gather_fit(r, x, ind, w, n_ind, fit, ind_status, lo, hi, rc, zc, zr, ind_blk, b_ind)
    a_blk = np.zeros((kk, kk))
    b_blk = np.zeros(kk)
    _gram_dots(zc, zr, n_fit, a_blk, b_blk)

    # ---- restriction: reference industry = active industry of largest cap weight
    ref = -1
    for p in range(n_ind):
        if ind_status[p] == IND_ACTIVE and (ref < 0 or c[p] > c[ref]):
            ref = p
    singular = n_fit == 0 or (ref >= 0 and not c[ref] > 0.0)

    g_full = np.zeros((m, m))
    b_full = np.zeros(m)
    _full_gram(a_blk, b_blk, ind_blk, b_ind, g_full, b_full)
    full_of = np.empty(m, np.int64)
    a_row = np.zeros(m)  # reference row of R in reduced coordinates
    q = _reduced_columns(n_ind, n_styles, ind_status, c, ref, full_of, a_row)

    mat = np.zeros((q, q))
    rhs = np.zeros(q)
    g_vec = np.zeros(q)
    f_full = np.zeros(m)
    if not singular:
        _restricted_system(g_full, b_full, full_of, a_row, q, ref, mat, rhs)
        singular = not cholesky_lower(mat, q, PIVOT_RTOL)

    r2 = np.nan
    if singular:
        for j in range(m):
            f_row[j] = np.nan
            se_row[j] = np.nan
        for n in range(n_stocks):
            u_row[n] = np.nan
        return r2, n_fit, n_clipped, DATE_SINGULAR

    for i in range(q):  # L Lᵀ g = rhs
        g_vec[i] = rhs[i]
    cholesky_solve(mat, q, g_vec)
    for i in range(q):
        f_full[full_of[i]] = g_vec[i]
    if ref >= 0:
        s = 0.0
        for i in range(q):
            s += a_row[i] * g_vec[i]
        f_full[1 + ref] = s

    r_bar = b_blk[0] / a_blk[0, 0]
    sse, sst = _residuals(r, x, ind, w, n_ind, fit, res, rc, f_full, r_bar, u_row)
    if sst > 0.0:
        r2 = 1.0 - sse / sst
    s2 = sse / (n_fit - q) if n_fit > q else np.nan
    _standard_errors(mat, q, full_of, a_row, ref, s2, se_row)

    for j in range(m):
        f_row[j] = f_full[j]
    for p in range(n_ind):
        if ind_status[p] != IND_ACTIVE:
            f_row[1 + p] = np.nan
            se_row[1 + p] = np.nan
    return r2, n_fit, n_clipped, DATE_OK


@njit(cache=True, error_model="numpy")
def _gather_fit(r, x, ind, w, n_ind, fit, ind_status, lo, hi, rc, zc, zr, ind_blk, b_ind):
    """One pass over the fit stocks: returns clipped to ``[lo, hi]`` into ``rc``, the
    ``√v``-scaled ``[1, x]`` (``zc``, one row per column) and ``√v r`` (``zr``) in fit order,
    and the active industries' ``[Σ_p v, Σ_p v x_k]`` (``ind_blk``) and ``Σ_p v r``
    (``b_ind``) by scatter. Returns the number of clipped returns."""
    n_stocks, n_styles = x.shape
    n_clipped = 0
    j = 0
    for n in range(n_stocks):
        if not fit[n]:
            continue
        v = w[n]
        rn = r[n]
        if rn < lo:
            rn = lo
            n_clipped += 1
        elif rn > hi:
            rn = hi
            n_clipped += 1
        rc[n] = rn
        sv = np.sqrt(v)
        zc[0, j] = sv
        zr[j] = sv * rn
        for k in range(n_styles):
            zc[k + 1, j] = sv * x[n, k]
        if n_ind > 0:
            p = ind[n]
            if ind_status[p] == IND_ACTIVE:
                ind_blk[p, 0] += v
                b_ind[p] += v * rn
                for k in range(n_styles):
                    ind_blk[p, k + 1] += v * x[n, k]
        j += 1
    return n_clipped


@njit(cache=True, error_model="numpy")
def _full_gram(a_blk, b_blk, ind_blk, b_ind, g_full, b_full):
    """The full Gram ``G (m, m)`` (upper triangle, mirrored) and ``b (m,)`` from the
    ``[1, styles]`` block and the industry diagonal and border (``g_full``, ``b_full`` zeroed)."""
    n_ind = ind_blk.shape[0]
    n_styles = a_blk.shape[0] - 1
    m = g_full.shape[0]
    s0 = 1 + n_ind  # first style column
    g_full[0, 0] = a_blk[0, 0]
    b_full[0] = b_blk[0]
    for k in range(n_styles):
        g_full[0, s0 + k] = a_blk[0, k + 1]
        b_full[s0 + k] = b_blk[k + 1]
        for l in range(k, n_styles):
            g_full[s0 + k, s0 + l] = a_blk[k + 1, l + 1]
    for p in range(n_ind):
        g_full[0, 1 + p] = ind_blk[p, 0]
        g_full[1 + p, 1 + p] = ind_blk[p, 0]
        b_full[1 + p] = b_ind[p]
        for k in range(n_styles):
            g_full[1 + p, s0 + k] = ind_blk[p, k + 1]
    for i in range(m):
        for j in range(i):
            g_full[i, j] = g_full[j, i]


@njit(cache=True, error_model="numpy")
def _reduced_columns(n_ind, n_styles, ind_status, c, ref, full_of, a_row):
    """Reduced columns (market, active industries except the reference ``ref``, styles):
    their full positions into ``full_of`` and the reference row of ``R`` (``-c_p / c_ref``)
    into ``a_row`` (zeroed). Returns their number ``q``."""
    s0 = 1 + n_ind  # first style column
    q = 0
    full_of[q] = 0
    q += 1
    for p in range(n_ind):
        if ind_status[p] == IND_ACTIVE and p != ref:
            full_of[q] = 1 + p
            if ref >= 0 and c[ref] > 0.0:
                a_row[q] = -c[p] / c[ref]
            q += 1
    for k in range(n_styles):
        full_of[q] = s0 + k
        q += 1
    return q


@njit(cache=True, error_model="numpy")
def _restricted_system(g_full, b_full, full_of, a_row, q, ref, mat, rhs):
    """Lower triangle of ``RᵀGR`` into ``mat (q, q)`` and ``Rᵀb`` into ``rhs (q,)`` (both
    zeroed), from ``G``, ``b`` and the reference row ``a_row`` (``R`` is never formed)."""
    pr = 1 + ref
    for i in range(q):
        fi = full_of[i]
        rhs[i] = b_full[fi]
        for j in range(i + 1):
            mat[i, j] = g_full[fi, full_of[j]]
    if ref >= 0:
        gpp = g_full[pr, pr]
        for i in range(q):
            fi = full_of[i]
            rhs[i] += a_row[i] * b_full[pr]
            for j in range(i + 1):
                fj = full_of[j]
                mat[i, j] += (
                    a_row[j] * g_full[fi, pr] + a_row[i] * g_full[pr, fj] + a_row[i] * a_row[j] * gpp
                )


@njit(cache=True, error_model="numpy")
def _residuals(r, x, ind, w, n_ind, fit, res, rc, f_full, r_bar, u_row):
    """Residuals of the unclipped returns of every stock with exposures into ``u_row`` (NaN
    elsewhere) and the weighted sums of squares ``(sse, sst)`` of the fit stocks' clipped
    returns ``rc`` about the fit and about their weighted mean ``r_bar``."""
    n_stocks, n_styles = x.shape
    s0 = 1 + n_ind  # first style column
    sse = 0.0
    sst = 0.0
    for n in range(n_stocks):
        if not res[n]:
            u_row[n] = np.nan
            continue
        fitted = f_full[0]
        if n_ind > 0:
            fitted += f_full[1 + ind[n]]
        for k in range(n_styles):
            fitted += x[n, k] * f_full[s0 + k]
        u_row[n] = r[n] - fitted
        if fit[n]:
            e = rc[n] - fitted
            d = rc[n] - r_bar
            sse += w[n] * e * e
            sst += w[n] * d * d
    return sse, sst


@njit(cache=True, error_model="numpy")
def _standard_errors(mat, q, full_of, a_row, ref, s2, se_row):
    """``se_row = sqrt(s² diag(R M⁻¹ Rᵀ))`` with ``M = LLᵀ`` (``L`` in ``mat``), via ``L⁻¹``;
    NaN for the factors outside the reduced system other than the reference."""
    m = se_row.shape[0]
    linv = np.empty((q, q))
    _lower_inverse(mat, q, linv)
    dg = np.zeros(q)  # diag(M⁻¹) = column sums of squares of L⁻¹
    for k in range(q):
        for i in range(k + 1):
            dg[i] += linv[k, i] * linv[k, i]
    for j in range(m):
        se_row[j] = np.nan
    for i in range(q):
        se_row[full_of[i]] = np.sqrt(s2 * dg[i])
    if ref >= 0:
        tot = 0.0  # aᵀ M⁻¹ a = ‖L⁻¹ a‖²
        for i in range(q):
            s = 0.0
            for k in range(i + 1):
                s += linv[i, k] * a_row[k]
            tot += s * s
        se_row[1 + ref] = np.sqrt(s2 * tot)


def wls_factor_returns(returns, styles, industry, weights, cap, n_ind, lag, clip, min_size,
                       f, resid, r2, se, n_obs, n_clipped, date_status, ind_status) -> None:
    """Factor returns of every date, parallel over dates.

    Parameters
    ----------
    returns : float64 (T, N)
        Returns of day t in row t.
    styles : float64 (T, N, K) C-contiguous
        Style exposures at the close of day t (unlagged).
    industry : int32 (T, N), or (1, 1) when ``n_ind == 0``
        Industry codes (unlagged), −1 missing.
    weights, cap : float64 (T, N)
        Regression weights and market caps (unlagged).
    n_ind : int
        Number of industries P.
    lag : int
        Return row t uses exposure row ``t − lag``; rows ``t < lag`` are NaN.
    clip : float
        Robust clip in MAD-sigmas; NaN disables clipping.
    min_size : float
        Thin-industry threshold.
    f, se : float64 (T, m)
        Out: factor returns and standard errors.
    resid : float64 (T, N)
        Out: residuals from unclipped returns.
    r2 : float64 (T,)
        Out: weighted R².
    n_obs, n_clipped : int64 (T,)
        Out: fit stocks and clipped returns per date.
    date_status : int8 (T,)
        Out: ``DATE_OK``, ``DATE_BEFORE_LAG`` or ``DATE_SINGULAR``.
    ind_status : int8 (T, P)
        Out: per-industry status (``IND_EMPTY`` for rows ``t < lag``).
    """
    parallel_chunks(_wls_factor_returns_chunk, returns.shape[0], returns, styles, industry, weights, cap,
                    n_ind, lag, clip, min_size, f, resid, r2, se, n_obs, n_clipped, date_status, ind_status)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wls_factor_returns_chunk(lo, hi, returns, styles, industry, weights, cap, n_ind, lag, clip, min_size,
                              f, resid, r2, se, n_obs, n_clipped, date_status, ind_status):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`wls_factor_returns`."""
    m = f.shape[1]
    for t in range(lo, hi):
        if t < lag:
            for j in range(m):
                f[t, j] = np.nan
                se[t, j] = np.nan
            for n in range(returns.shape[1]):
                resid[t, n] = np.nan
            for p in range(n_ind):
                ind_status[t, p] = IND_EMPTY
            r2[t] = np.nan
            n_obs[t] = 0
            n_clipped[t] = 0
            date_status[t] = DATE_BEFORE_LAG
            continue
        s = t - lag
        ind_row = industry[s] if n_ind > 0 else industry[0]
        r2_t, nobs_t, nclip_t, status_t = _solve_day(
            returns[t],
            styles[s],
            ind_row,
            weights[s],
            cap[s],
            n_ind,
            clip,
            min_size,
            f[t],
            resid[t],
            se[t],
            ind_status[t],
        )
        r2[t] = r2_t
        n_obs[t] = nobs_t
        n_clipped[t] = nclip_t
        date_status[t] = status_t
