"""Numba kernels of the specific-risk model (METHODS section 4).

Four kernels, each writing into preallocated outputs:

* :func:`specific_ts_kernel` -- per block of 8 stocks (in parallel over blocks), over all
  dates: windowed, NaN-aware EWMA Newey-West variance of the specific returns, the count of
  valid returns in the window and the robust blending statistic ``Z``, all for every date.
* :func:`structural_kernel` -- per date (in parallel over dates): the v-weighted regression
  of ``ln sigma_TS`` on market + industries + styles by within-industry demeaning, and the
  structural volatility ``E0 exp(X b)`` (or its blend with ``sigma_TS``) of every name with
  complete styles.
* :func:`shrink_kernel` -- per date (in parallel over dates): Bayesian shrinkage of the
  volatilities toward their cap-weighted size-group means.
* :func:`vra_terms_kernel` -- per date (in parallel over dates): the two sums of the
  specific volatility regime adjustment, ``sum_n cap_n (u_n,t / sigma_n,t-1)^2`` and
  ``sum_n cap_n`` over the ESTU of the day before.

The plain numpy twins live in ``tests/test_kernels_specific.py``. Callers validate and lay
arrays out C-contiguously; kernels do no checking.

Only the small helpers of the inner loops are inlined into their kernel (numba IR
inlining, ``inline="always"``). The large ones are ordinary compiled functions with the
numpy error model, the one the parallel kernels that call them use (a zero division gives
inf or NaN; it does not raise): inlining them cost 11 s of the first run's compilation and
gained no measurable speed.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from riskmodel.kernels._chunks import parallel_chunks

__all__ = ["specific_ts_kernel", "structural_kernel", "shrink_kernel", "vra_terms_kernel"]

#: An industry needs this many names in a date's structural sample to get its own
#: intercept; thinner industries are pooled into one group for the fit.
MIN_INDUSTRY_NAMES = 5

#: The running moments of the window are recomputed exactly (about the midpoint of its
#: quartiles) every this many days.
_REFRESH = 32

#: Digit width (bits) of the radix sorts (a stock's residuals, a date's ESTU caps).
_RADIX_BITS = 11
_RADIX_SIZE = 1 << _RADIX_BITS


@numba.njit(cache=True, inline="always", error_model="numpy")
def _linear_quantile(sorted_vals, n, p):  # pragma: no cover - compiled
    """``np.quantile(sorted_vals[:n], p)`` (linear interpolation) of a sorted buffer."""
    pos = p * (n - 1)
    lo = int(np.floor(pos))
    if lo >= n - 1:
        return sorted_vals[n - 1]
    frac = pos - lo
    return sorted_vals[lo] + frac * (sorted_vals[lo + 1] - sorted_vals[lo])


@numba.njit(cache=True, error_model="numpy")
def _ewma_nw_block(xp, a, window, L, ovar, oh):  # pragma: no cover - compiled
    """Windowed EWMA Newey-West variance and valid count of a block of stocks.

    ``xp`` is ``(window + T, nb)``: ``window`` rows of NaN followed by the block's returns,
    so every lagged or leaving index is in range and the padding is simply "absent". The
    loop runs over dates outside and stocks inside, with branch-free masked updates that
    vectorise across the block; per (stock, date) the arithmetic is that of the scalar
    recursion (see :func:`specific_ts_kernel`). Writes ``ovar`` and ``oh`` ``(T, nb)``.
    """
    T, nb = ovar.shape
    num = np.zeros((L + 1, nb))
    den = np.zeros((L + 1, nb))
    npair = np.zeros((L + 1, nb), np.int64)
    cnt = np.zeros(nb, np.int64)
    c0s = np.empty(nb)
    acc = np.empty(nb)
    drop = np.empty(L + 1)
    coef = np.empty(L + 1)
    for l in range(L + 1):
        drop[l] = a ** (window - l)
        coef[l] = 2.0 * (1.0 - l / (L + 1.0))
    W = window
    for t in range(T):
        r = t + W  # row of date t in xp
        for l in range(L + 1):
            dl = drop[l]
            for j in range(nb):
                x_new = xp[r, j]
                y = xp[r - l, j]
                ok_in = (x_new == x_new) & (y == y)
                p_in = x_new * y if ok_in else 0.0
                m_in = 1.0 if ok_in else 0.0
                y1 = xp[r - W + l, j]
                y2 = xp[r - W, j]
                ok_out = (y1 == y1) & (y2 == y2)
                p_out = y1 * y2 if ok_out else 0.0
                m_out = 1.0 if ok_out else 0.0
                npr = npair[l, j] + np.int64(ok_in) - np.int64(ok_out)
                npair[l, j] = npr
                nu = a * num[l, j] + p_in - dl * p_out
                de = a * den[l, j] + m_in - dl * m_out
                num[l, j] = nu if npr != 0 else 0.0  # no pair left: clear the residue
                den[l, j] = de if npr != 0 else 0.0
        for j in range(nb):  # the Newey-West sum, lag by lag across the block (vectorised)
            x_new = xp[r, j]
            x_old = xp[r - W, j]
            c = cnt[j] + np.int64(x_new == x_new) - np.int64(x_old == x_old)
            cnt[j] = c
            oh[t, j] = c
            c0 = num[0, j] / den[0, j]
            c0s[j] = c0
            acc[j] = c0
        for l in range(1, L + 1):
            cl = coef[l]
            for j in range(nb):
                term = cl * num[l, j] / den[l, j]
                acc[j] += term if npair[l, j] > 0 else 0.0
        for j in range(nb):
            v = acc[j]
            floor = c0s[j] / (L + 1.0)
            v = v if v > floor else floor
            ovar[t, j] = v if cnt[j] > 0 else np.nan


@numba.njit(cache=True, inline="always", error_model="numpy")
def _next_set(bits, r):  # pragma: no cover - compiled
    """Smallest set bit of ``bits`` above ``r`` (one must exist)."""
    w = r >> 6
    m = bits[w] & ~((np.uint64(2) << np.uint64(r & 63)) - np.uint64(1))
    while m == 0:
        w += 1
        m = bits[w]
    return (w << 6) + int(trailing_zeros(m))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _prev_set(bits, r):  # pragma: no cover - compiled
    """Largest set bit of ``bits`` below ``r`` (one must exist)."""
    w = r >> 6
    m = bits[w] & ((np.uint64(1) << np.uint64(r & 63)) - np.uint64(1))
    while m == 0:
        w -= 1
        m = bits[w]
    return (w << 6) + 63 - int(leading_zeros(m))


@numba.njit(cache=True, error_model="numpy")
def _radix_passes(keys, idx, tkeys, tidx, n, hist, carry):  # pragma: no cover - compiled
    """Stable LSD radix passes (11-bit digits) over ``keys[:n]`` given their digit counts.

    ``hist (passes, 2048)`` holds, for each pass, the count of every digit value (it is
    overwritten); ``tkeys`` is scratch of the same length, and with ``carry`` the payload
    ``idx`` moves with its key (through ``tidx``). A pass whose digit is shared by every key
    is skipped. Returns True when the sorted keys (and payload) ended in ``tkeys`` (``tidx``).
    """
    mask = np.uint64(_RADIX_SIZE - 1)
    src_k, src_i, dst_k, dst_i = keys, idx, tkeys, tidx
    swapped = False
    for p in range(hist.shape[0]):
        if n == 0:
            break
        sh = np.uint64(p * _RADIX_BITS)
        if hist[p, (src_k[0] >> sh) & mask] == n:
            continue  # one digit value: the pass would not move anything
        acc = 0
        for d in range(_RADIX_SIZE):
            c = hist[p, d]
            hist[p, d] = acc
            acc += c
        for i in range(n):
            kv = src_k[i]
            d = (kv >> sh) & mask
            pos = hist[p, d]
            dst_k[pos] = kv
            if carry:
                dst_i[pos] = src_i[i]
            hist[p, d] = pos + 1
        src_k, src_i, dst_k, dst_i = dst_k, dst_i, src_k, src_i
        swapped = not swapped
    return swapped


@numba.njit(cache=True, error_model="numpy")
def _rank_values(x, vals, rank, keys, idx, tkeys, tidx, hist):  # pragma: no cover - compiled
    """Ranks of the finite values of ``x`` (ties broken by position) and the sorted values.

    Writes ``vals[:nf]`` (ascending) and ``rank[t]`` (``-1`` where ``x[t]`` is NaN). The
    order is a stable LSD radix sort (11-bit digits) of the IEEE bits mapped to unsigned
    integers ordered like the values (sign bit flipped for positives, all bits for
    negatives), several times faster than a comparison sort; ``keys, idx, tkeys, tidx``
    (T,) and ``hist`` (6, 2048) are scratch.
    """
    T = x.shape[0]
    bitsx = x.view(np.uint64)
    sign = np.uint64(1) << np.uint64(63)
    mask = np.uint64(_RADIX_SIZE - 1)
    n_pass = 6
    for p in range(n_pass):
        for d in range(_RADIX_SIZE):
            hist[p, d] = 0
    nf = 0
    for t in range(T):
        v = x[t]
        if v == v:
            kv = bitsx[t]
            kv = ~kv if kv & sign else kv | sign
            keys[nf] = kv
            idx[nf] = t
            for p in range(n_pass):
                hist[p, (kv >> np.uint64(p * _RADIX_BITS)) & mask] += 1
            nf += 1
        else:
            rank[t] = -1
    src_i = tidx if _radix_passes(keys, idx, tkeys, tidx, nf, hist, True) else idx
    for r in range(nf):
        t = src_i[r]
        vals[r] = x[t]
        rank[t] = r


@numba.njit(cache=True, error_model="numpy")
def _robust_stock(x, window, min_obs, full_obs, blend, vals, rank, bits, cur_r, cur_i,
                  sort_scratch, hist, oz, og):  # pragma: no cover - compiled
    """One stock's rolling window order statistics, robust ``Z`` and gamma for all dates.

    The window is a bitmap over the ranks of the stock's values; two cursors (rank and
    position in the window) track the lower points of the quartiles and move by a step or
    two per day instead of shifting a sorted buffer; the ranks of the minimum and maximum
    are kept too. The values met and their order are those of a sorted window buffer.
    """
    T = x.shape[0]
    _rank_values(x, vals, rank, sort_scratch[0], sort_scratch[1].view(np.int64),
                 sort_scratch[2], sort_scratch[3].view(np.int64), hist)
    for w in range(bits.shape[0]):
        bits[w] = np.uint64(0)
    nb = 0
    r_min = 0  # ranks of the window's extremes
    r_max = 0
    shift = 0.0  # running moments are of x - shift (the window median at the last refresh)
    s1 = 0.0
    s2 = 0.0
    for t in range(T):
        r_new = rank[t]
        r_old = -1
        if t - window >= 0:
            r_old = rank[t - window]
        if r_old >= 0:  # the leaving value
            bits[r_old >> 6] &= ~(np.uint64(1) << np.uint64(r_old & 63))
            nb -= 1
            if nb > 0:
                if r_old == r_min:
                    r_min = _next_set(bits, r_old)
                if r_old == r_max:
                    r_max = _prev_set(bits, r_old)
            for c in range(2):
                rc = cur_r[c]
                if r_old < rc:
                    cur_i[c] -= 1
                elif r_old == rc and nb > 0:
                    if cur_i[c] < nb:
                        cur_r[c] = _next_set(bits, rc)
                    else:
                        cur_r[c] = _prev_set(bits, rc)
                        cur_i[c] -= 1
        if r_new >= 0:  # the entering value
            bits[r_new >> 6] |= np.uint64(1) << np.uint64(r_new & 63)
            nb += 1
            if nb == 1:
                r_min = r_new
                r_max = r_new
                for c in range(2):
                    cur_r[c] = r_new
                    cur_i[c] = 0
            else:
                r_min = min(r_min, r_new)
                r_max = max(r_max, r_new)
                for c in range(2):
                    if r_new < cur_r[c]:
                        cur_i[c] += 1
        if r_old >= 0 and r_new >= 0:  # running moments, as a sorted buffer would update them
            dn = vals[r_new] - shift
            do = vals[r_old] - shift
            s1 += dn - do
            s2 += dn * dn - do * do
        elif r_old >= 0:
            do = vals[r_old] - shift
            s1 -= do
            s2 -= do * do
        elif r_new >= 0:
            dn = vals[r_new] - shift
            s1 += dn
            s2 += dn * dn
        if nb > 0:  # cursors to the quartile points
            k25 = int(np.floor(0.25 * (nb - 1)))
            k75 = int(np.floor(0.75 * (nb - 1)))
            for c in range(2):
                target = k25 if c == 0 else k75
                while cur_i[c] < target:
                    cur_r[c] = _next_set(bits, cur_r[c])
                    cur_i[c] += 1
                while cur_i[c] > target:
                    cur_r[c] = _prev_set(bits, cur_r[c])
                    cur_i[c] -= 1
        if t % _REFRESH == _REFRESH - 1 and nb > 0:
            # exact sums over the window (in date order), about the quartiles' midpoint
            shift = 0.5 * (vals[cur_r[0]] + vals[cur_r[1]])
            s1 = 0.0
            s2 = 0.0
            for s in range(max(0, t - window + 1), t + 1):
                v = x[s]
                if v == v:
                    d = v - shift
                    s1 += d
                    s2 += d * d
        ramp = (nb - min_obs) / (full_obs - min_obs)
        ramp = 0.0 if ramp < 0.0 else (1.0 if ramp > 1.0 else ramp)
        if not blend:
            og[t] = 1.0 if nb >= min_obs else 0.0
        if nb < 2:
            oz[t] = np.nan
            if blend:
                og[t] = 0.0
            continue
        q25 = _cursor_quantile(bits, vals, cur_r[0], nb, 0.25)
        q75 = _cursor_quantile(bits, vals, cur_r[1], nb, 0.75)
        sig_tilde = (q75 - q25) / 1.35
        if not sig_tilde > 0.0:
            oz[t] = np.inf
            if blend:
                og[t] = 0.0
            continue
        c = 10.0 * sig_tilde
        c1 = s1
        c2 = s2
        r = r_max
        k = nb - 1
        while k >= 0 and vals[r] > c:  # replace x by c, in shifted coordinates
            dx = vals[r] - shift
            dc = c - shift
            c1 += dc - dx
            c2 += dc * dc - dx * dx
            k -= 1
            if k >= 0:
                r = _prev_set(bits, r)
        r = r_min
        k = 0
        while k < nb and vals[r] < -c:
            dx = vals[r] - shift
            dc = -c - shift
            c1 += dc - dx
            c2 += dc * dc - dx * dx
            k += 1
            if k < nb:
                r = _next_set(bits, r)
        var_eq = (c2 - c1 * c1 / nb) / (nb - 1)
        if var_eq < 0.0:
            var_eq = 0.0
        zt = abs(np.sqrt(var_eq) / sig_tilde - 1.0)
        oz[t] = zt
        if blend:
            # min(1, exp(1 - Z)) is 1 for Z <= 1, and a zero ramp needs no exp
            robust = np.exp(1.0 - zt) if (zt > 1.0 and ramp > 0.0) else 1.0
            og[t] = ramp * (robust if robust < 1.0 else 1.0)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _cursor_quantile(bits, vals, r_lo, n, p):  # pragma: no cover - compiled
    """:func:`_linear_quantile` of the window, given the rank ``r_lo`` at ``floor(p (n - 1))``."""
    pos = p * (n - 1)
    lo = int(np.floor(pos))
    lo_val = vals[r_lo]
    if lo >= n - 1:
        return lo_val
    frac = pos - lo
    hi_val = vals[_next_set(bits, r_lo)]
    return lo_val + frac * (hi_val - lo_val)


def specific_ts_kernel(u, half_life, window, lags, min_obs, full_obs, blend,
                       out_var, out_h, out_z, out_gamma) -> None:
    """Windowed EWMA Newey-West variance, valid count, robust ``Z`` and gamma for every date.

    Parameters
    ----------
    u : ndarray (T, N) float64
        Specific returns, NaN when absent.
    half_life : float
        EWMA half-life; the weight of age ``s`` (0 = newest) is ``2**(-s/half_life)``.
    window : int
        Window length ``W``: row t uses rows ``t-W+1 .. t``.
    lags : int
        Newey-West lags ``L`` (``L < W``).
    min_obs, full_obs : int
        History ramp of gamma.
    blend : bool
        False: ``gamma = 1[h >= min_obs]``.
    out_var : ndarray (T, N) float64
        Written: ``C_0 + 2 sum_l (1 - l/(L+1)) C_l`` floored at ``C_0/(L+1)``, with
        ``C_l = sum_s w_s u_{t-s} u_{t-s-l} / sum_s w_s`` over the pairs inside the window
        whose both members are present (weights renormalised over present pairs;
        ``C_l = 0`` when no pair). NaN when the window holds no return.
    out_h : ndarray (T, N) int32
        Written: number of valid returns in the window.
    out_z : ndarray (T, N) float64
        Written: ``|sigma_eq / sigma_tilde - 1|`` with ``sigma_tilde = IQR/1.35`` and
        ``sigma_eq`` the standard deviation (ddof=1) of the window clipped to
        ``+-10 sigma_tilde``; ``inf`` when ``sigma_tilde = 0``, NaN when ``h < 2``.
        Pass an array with no rows, ``(0, N)``, when only gamma is wanted.
    out_gamma : ndarray (T, N) float64
        Written: ``clip((h - min_obs)/(full_obs - min_obs), 0, 1) * min(1, exp(1 - Z))``
        (0 when Z is NaN or inf).

    Notes
    -----
    Stocks are processed in blocks of 8 adjacent columns (in parallel over blocks), so that
    reads and writes use whole cache lines. Within a block, two passes:

    * the EWMA sums run over dates outside and the block's stocks inside (branch-free
      masked updates, vectorised across the stocks) with the exact windowed recursion
      ``S_t = a S_{t-1} + p_t - a^(W-l) p_{t-W+l}`` (``a = 2^(-1/H)``); rounding errors decay
      by ``a`` per day, and a lag's sums are reset to 0 whenever its window holds no pair;
    * per stock, the values are ranked once (radix sort) and the window is a bitmap over
      the ranks, with cursors at the quartile points (and the ranks of the extremes) that move
      a step or two per day (no O(W) shift), so the quartiles are O(1) and the clipped
      moments are running sums (about a shift, the quartiles' midpoint at the last
      refresh) corrected for the few values beyond the clip bound; they are recomputed
      exactly every 32 days.
    """
    parallel_chunks(_specific_ts_kernel_chunk, (u.shape[1] + 7) // 8, u, half_life, window, lags, min_obs,
                    full_obs, blend, out_var, out_h, out_z, out_gamma)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _specific_ts_kernel_chunk(lo, hi, u, half_life, window, lags, min_obs, full_obs, blend, out_var, out_h,
                              out_z, out_gamma):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`specific_ts_kernel`."""
    T, N = u.shape
    a = 2.0 ** (-1.0 / half_life)
    keep_z = out_z.shape[0] > 0
    B = 8
    for blk in range(lo, hi):
        n0 = blk * B
        nn = min(B, N - n0)
        xp = np.empty((window + T, nn))
        for t in range(window):
            for j in range(nn):
                xp[t, j] = np.nan
        for t in range(T):
            for j in range(nn):
                xp[window + t, j] = u[t, n0 + j]
        vb = np.empty((T, nn))
        hb = np.empty((T, nn), np.int32)
        _ewma_nw_block(xp, a, window, lags, vb, hb)
        zb = np.empty((T if keep_z else 0, nn))
        gb = np.empty((T, nn))
        xs = np.empty(T)
        zs = np.empty(T)
        gs = np.empty(T)
        vals = np.empty(T)
        rank = np.empty(T, np.int64)
        bits = np.empty((T + 63) >> 6, np.uint64)
        cur_r = np.zeros(2, np.int64)
        cur_i = np.zeros(2, np.int64)
        sort_scratch = np.empty((4, T), np.uint64)
        hist = np.empty((6, _RADIX_SIZE), np.int64)
        for j in range(nn):
            for t in range(T):
                xs[t] = xp[window + t, j]
            _robust_stock(xs, window, min_obs, full_obs, blend, vals, rank, bits,
                          cur_r, cur_i, sort_scratch, hist, zs, gs)
            for t in range(T):
                gb[t, j] = gs[t]
            if keep_z:
                for t in range(T):
                    zb[t, j] = zs[t]
        for t in range(T):
            for j in range(nn):
                out_var[t, n0 + j] = vb[t, j]
                out_h[t, n0 + j] = hb[t, j]
                out_gamma[t, n0 + j] = gb[t, j]
        if keep_z:
            for t in range(T):
                for j in range(nn):
                    out_z[t, n0 + j] = zb[t, j]


def structural_kernel(
    ts_var, h, gamma, styles, industry, has_industry, n_industries, weights, cap, min_obs,
    min_names, duan, scale, blend, out_sig, out_e0, out_nfit, out_complete,
) -> None:
    """Per-date structural regression of ``ln sigma_TS`` and structural (or blended) volatility.

    Parameters
    ----------
    ts_var : ndarray (T, N) float64
        ``sigma_TS^2``; a name is a usable regression target where ``0 < ts_var < inf``,
        with ``ln sigma_TS = 0.5 ln ts_var``.
    h : ndarray (T, N) int32
        Valid returns in the time-series window.
    gamma : ndarray (T, N) float64
        Blending weight of the time-series estimate.
    styles : ndarray (T, N, K) float64
        Style exposures; a name needs all K finite to be fitted or predicted.
    industry : ndarray (T, N) int32
        Industry codes (``-1`` missing); ignored when ``has_industry`` is False.
    has_industry : bool
    n_industries : int
        Number of industry codes ``P`` (codes outside ``0..P-1`` count as missing).
    weights : ndarray (T, N) float64
        Regression weights v (NaN/0 = outside the estimation universe, not fitted).
    cap : ndarray (T, N) float64
        Market caps; ``sqrt(cap)`` (where ``0 < cap < inf``) weights the last-resort sample
        of every name with a cap, used when no ESTU tier reaches ``min_names`` (e.g. before
        any name qualifies for the ESTU).
    min_obs : int
        History threshold of the second reliability tier.
    min_names : int
        Minimum number of names for a fit; dates with fewer usable names stay NaN.
    duan : bool
        ``E0`` = Duan smearing ``mean(exp(e))`` over the fit sample, else ``scale``.
    scale : float
        Fixed ``E0`` when ``duan`` is False.
    blend : bool
        True: write the blended volatility ``gamma sigma_TS + (1 - gamma) sigma_STR``
        (``sigma_TS`` where gamma >= 1, ``sigma_STR`` where gamma <= 0, so a NaN in the
        other term does not leak); False: write ``sigma_STR``.
    out_sig : ndarray (T, N) float64
        Written: ``sigma_STR = E0 exp(a_g + x b)`` for names with complete styles, else NaN
        (blended as above when ``blend``).
    out_e0 : ndarray (T,) float64
        Written: ``E0`` of the date (NaN without fit).
    out_nfit : ndarray (T,) int64
        Written: names in the fit sample.
    out_complete : ndarray (T, N) bool
        Written: the name has all K styles finite.

    Notes
    -----
    Reliability tier of a name's ``sigma_TS``: 0 (gamma >= 1), 1 (h >= min_obs), 2 (h >= 1),
    3 (none). The fit uses the most reliable tier ``k`` such that at least ``min_names``
    usable ESTU names have a tier ``<= k``; failing that, every name of tier ``<= 2`` with a
    positive fallback weight. Industries with at least ``MIN_INDUSTRY_NAMES`` sample names
    get their own intercept ``a_p``; the sample names of thinner industries or without an
    industry share one pooled intercept. Styles and target are v-weighted demeaned within
    these groups (equivalent to market + industry dummies, whose span is the same), ``b``
    solves the K x K normal equations by least squares. Names outside a fitted industry are
    predicted with the market intercept ``a_0 = sum v (y - x b) / sum v`` over the sample.

    Per date, the sample's styles and target are gathered once into a transposed
    ``(K + 1, n)`` block (while the group sums run, in stock order), demeaned in place, and
    the normal equations are vectorised weighted dot products of its rows (``reassoc``: the
    sums differ from a sequential rank-one update by rounding only).
    """
    parallel_chunks(_structural_dates, styles.shape[0], ts_var, h, gamma, styles, industry, has_industry,
                    n_industries, weights, cap, min_obs, min_names, duan, scale, blend, out_sig, out_e0,
                    out_nfit, out_complete)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _structural_dates(
    lo, hi, ts_var, h, gamma, styles, industry, has_industry, n_industries, weights, cap, min_obs,
    min_names, duan, scale, blend, out_sig, out_e0, out_nfit, out_complete,
):  # pragma: no cover - compiled
    """Dates ``lo .. hi - 1`` of :func:`structural_kernel`."""
    for t in range(lo, hi):
        _structural_date(t, ts_var, h, gamma, styles, industry, has_industry, n_industries, weights, cap,
                         min_obs, min_names, duan, scale, blend, out_sig, out_e0, out_nfit, out_complete)


@numba.njit(cache=True, error_model="numpy")
def _structural_date(
    t, ts_var, h, gamma, styles, industry, has_industry, n_industries, weights, cap, min_obs,
    min_names, duan, scale, blend, out_sig, out_e0, out_nfit, out_complete,
):  # pragma: no cover - compiled
    """Date ``t`` of :func:`structural_kernel` (a function of its own: the parallel loop
    compiles much faster around a call than around this body)."""
    T, N, K = styles.shape
    P = n_industries if has_industry else 0
    G = P + 1
    xt = styles[t]
    # ---- completeness, tiers and the sample tier (one branch-free pass) -------------
    complete = np.empty(N, np.bool_)
    tier = np.empty(N, np.int8)
    usable = np.empty(N, np.bool_)
    c0 = 0  # usable ESTU names of tier <= 0, 1, 2; usable tier <= 2 names with a cap
    c1 = 0
    c2 = 0
    cf = 0
    for n in range(N):
        ok = _row_finite(xt[n], K)
        complete[n] = ok
        out_complete[t, n] = ok
        hn = h[t, n]
        tr = 3
        tr = 2 if hn >= 1 else tr
        tr = 1 if hn >= min_obs else tr
        tr = 0 if gamma[t, n] >= 1.0 else tr
        tier[n] = tr
        s2 = ts_var[t, n]
        us = ok & (s2 > 0.0) & (s2 < np.inf)
        usable[n] = us
        v = weights[t, n]
        ve = us & (v > 0.0) & (v < np.inf)
        c0 += 1 if ve & (tr == 0) else 0
        c1 += 1 if ve & (tr <= 1) else 0
        c2 += 1 if ve & (tr <= 2) else 0
        cp = cap[t, n]
        cf += 1 if us & (tr <= 2) & (cp > 0.0) & (cp < np.inf) else 0
    use_tier = -1
    if cf >= min_names:
        use_tier = 3
    if c2 >= min_names:
        use_tier = 2
    if c1 >= min_names:
        use_tier = 1
    if c0 >= min_names:
        use_tier = 0
    if use_tier < 0:
        out_e0[t] = np.nan
        out_nfit[t] = 0
        for n in range(N):
            out_sig[t, n] = _blend_one(gamma[t, n], ts_var[t, n], np.nan, blend)
        return
    # ---- the sample (stock order) and its industry counts ----------------------------
    in_fit = np.zeros(N, np.bool_)
    idx = np.empty(N, np.int64)  # sample names in stock order
    wv = np.empty(N)  # their weights v
    ls = np.empty(N)  # their ln sigma_TS
    gcount = np.zeros(G, np.int64)
    nfit = 0
    for n in range(N):
        if not usable[n]:
            continue
        if use_tier < 3:
            v = weights[t, n]
            ok_tier = tier[n] <= use_tier
        else:
            cp = cap[t, n]
            v = np.sqrt(cp) if cp > 0.0 else np.nan
            ok_tier = tier[n] <= 2
        if ok_tier and v > 0.0 and np.isfinite(v):
            in_fit[n] = True
            idx[nfit] = n
            wv[nfit] = v
            ls[nfit] = np.log(ts_var[t, n]) * 0.5
            nfit += 1
            if has_industry:
                p = industry[t, n]
                if p >= 0 and p < P:
                    gcount[p] += 1
    # ---- groups: industries with enough sample names, else the pooled group P -------
    grp = np.full(N, P, np.int64)
    if has_industry:
        for n in range(N):
            p = industry[t, n]
            if p >= 0 and p < P and gcount[p] >= MIN_INDUSTRY_NAMES:
                grp[n] = p
    # ---- weighted group means and the transposed sample block (one pass) ----------
    # Row k < K of dt: style k of the sample names (stock order), row K their
    # ln sigma_TS; gs their groups. Group sums run in stock order.
    dt = np.empty((K + 1, nfit))
    gs = np.empty(nfit, np.int64)
    sv = np.zeros(G)
    sy = np.zeros(G)
    sx = np.zeros((G, K))
    for i in range(nfit):
        n = idx[i]
        v = wv[i]
        g = grp[n]
        gs[i] = g
        sv[g] += v
        sy[g] += v * ls[i]
        dt[K, i] = ls[i]
        xr = xt[n]
        sr = sx[g]
        for k in range(K):
            x = xr[k]
            sr[k] += v * x
            dt[k, i] = x
    for g in range(G):
        if sv[g] > 0.0:
            sy[g] /= sv[g]
            for k in range(K):
                sx[g, k] /= sv[g]
    # ---- within-group demeaning and the normal equations ---------------------------
    # A[k, j] = sum v dt[k] dt[j] (j <= k), c[k] = sum v dt[k] dt[K].
    _sub_group_means(dt[K], gs, sy)
    for k in range(K):
        _sub_group_means(dt[k], gs, sx[:, k])
    A = np.empty((K, K))
    c = np.empty((K, 1))
    vs = wv[:nfit]
    for k in range(K):
        for j0 in range(0, k + 2, 4):  # columns j0..j0+3 of [0..k, K] (K pads)
            jj0 = j0 if j0 <= k else K
            j1 = j0 + 1 if j0 + 1 <= k else K
            j2 = j0 + 2 if j0 + 2 <= k else K
            j3 = j0 + 3 if j0 + 3 <= k else K
            s0, s1, s2, s3 = _weighted_dots4(vs, dt[k], dt[jj0], dt[j1], dt[j2], dt[j3])
            _put_cross(A, c, k, jj0, s0)
            _put_cross(A, c, k, j1, s1)
            _put_cross(A, c, k, j2, s2)
            _put_cross(A, c, k, j3, s3)
    for k in range(K):
        for j in range(k + 1, K):
            A[k, j] = A[j, k]
    b = np.zeros(K)
    if K > 0:
        sol = np.linalg.lstsq(A, c, 1e-12)[0]
        for k in range(K):
            b[k] = sol[k, 0]
    # ---- intercepts --------------------------------------------------------------
    icpt = np.zeros(G)
    for g in range(G):
        s = sy[g]
        for k in range(K):
            s -= sx[g, k] * b[k]
        icpt[g] = s
    a0_num = 0.0
    a0_den = 0.0
    for g in range(G):
        a0_num += sv[g] * icpt[g]
        a0_den += sv[g]
    a0 = a0_num / a0_den
    # ---- prediction exp(a + x b) and smearing ------------------------------------
    # A sample name of a fitted industry is predicted with its own intercept, so
    # exp(e) = exp(ln sigma_TS - a_g - x b) = sigma_TS / exp(a_g + x b): one exp a name.
    xfit = np.empty(N)  # exp(a + x b) of every name (NaN without complete styles)
    acc = 0.0
    i = 0
    for n in range(N):
        ex = np.nan
        g = grp[n]
        if complete[n]:
            fit = icpt[g] if g < P else a0
            xr = xt[n]
            for k in range(K):
                fit += xr[k] * b[k]
            ex = np.exp(fit)
        xfit[n] = ex
        if in_fit[n]:
            if duan:
                if g < P:
                    acc += np.sqrt(ts_var[t, n]) / ex
                else:  # pooled names: the pooled intercept, not a_0
                    e = ls[i] - icpt[P]
                    xr = xt[n]
                    for k in range(K):
                        e -= xr[k] * b[k]
                    acc += np.exp(e)
            i += 1
    e0 = acc / nfit if duan else scale
    out_e0[t] = e0
    out_nfit[t] = nfit
    for n in range(N):
        out_sig[t, n] = _blend_one(gamma[t, n], ts_var[t, n], e0 * xfit[n], blend)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _row_finite(xr, K):  # pragma: no cover - compiled
    """All ``K`` values of the row finite (a branch-free and-reduction that vectorises)."""
    ok = True
    for k in range(K):
        ok &= np.isfinite(xr[k])
    return ok


@numba.njit(cache=True, fastmath={"reassoc"}, error_model="numpy")
def _weighted_dots4(v, dk, d0, d1, d2, d3):  # pragma: no cover - compiled
    """``sum_i (v_i dk_i) dq_i`` for the four vectors ``dq``, in one pass.

    Loops run from 0 (a slice, not ``lo..hi``) so that numba's negative-index wraparound
    is provably absent and LLVM emits contiguous vector loads rather than gathers.

    ``reassoc`` lets the sums run in vector lanes (the order of the additions differs from
    a sequential sum by rounding only; the products are those of a rank-one update).
    """
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for i in range(v.shape[0]):
        w = v[i] * dk[i]
        a0 += w * d0[i]
        a1 += w * d1[i]
        a2 += w * d2[i]
        a3 += w * d3[i]
    return a0, a1, a2, a3


@numba.njit(cache=True, error_model="numpy")
def _sub_group_means(x, grp, mean):  # pragma: no cover - compiled
    """``x[i] -= mean[grp[i]]`` in place (a gather from the small ``mean``; vectorises)."""
    for i in range(x.shape[0]):
        x[i] -= mean[grp[i]]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _put_cross(A, c, k, j, s):  # pragma: no cover - compiled
    """Store ``s`` as ``A[k, j]`` (``j <= k``) or as ``c[k]`` (``j == K``)."""
    if j == A.shape[0]:
        c[k, 0] = s
    else:
        A[k, j] = s


@numba.njit(cache=True, inline="always", error_model="numpy")
def _blend_one(g, s2, sig_str, blend):  # pragma: no cover - compiled
    """``g sqrt(s2) + (1 - g) sig_str`` using only the terms with weight (``sig_str`` if not blend)."""
    if not blend:
        return sig_str
    if g >= 1.0:
        return np.sqrt(s2)
    if g > 0.0:
        return g * np.sqrt(s2) + (1.0 - g) * sig_str
    return sig_str


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
def _radix_sort_positive(x):  # pragma: no cover - compiled
    """Sort ``x`` (finite, > 0) in place: LSD radix sort of the IEEE bits, 11 bits a pass.

    For positive finite doubles the bit patterns, read as unsigned integers, are ordered
    like the values, so the result equals ``np.sort(x)``; unlike a comparison sort it has no
    data-dependent branches. Passes whose digit is shared by every value are skipped.
    """
    n = x.shape[0]
    keys = x.view(np.uint64)
    tmp = np.empty(n, np.uint64)
    n_pass = 6
    mask = np.uint64(_RADIX_SIZE - 1)
    hist = np.zeros((n_pass, _RADIX_SIZE), np.int64)
    for i in range(n):
        kv = keys[i]
        for p in range(n_pass):
            hist[p, (kv >> np.uint64(p * _RADIX_BITS)) & mask] += 1
    no_payload = np.empty(1, np.int64)
    if _radix_passes(keys, no_payload, tmp, no_payload, n, hist, False):
        for i in range(n):
            keys[i] = tmp[i]


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
