"""Numba kernel of the specific-risk time series (METHODS section 4):
:func:`specific_ts_kernel` -- per block of 8 stocks (in parallel over blocks), over all
dates: windowed, NaN-aware EWMA Newey-West variance of the specific returns, the count of
valid returns in the window and the robust blending statistic ``Z``, all for every date.

Re-exported by :mod:`riskmodel.kernels.specific`; the plain numpy twins live in
``tests/kernels/twins/specific.py`` (the kernel registry).
Only the small helpers of the inner loops are inlined (``inline="always"``); see
:mod:`riskmodel.kernels.specific` for why the large ones are not.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels._radix import _RADIX_BITS, _RADIX_SIZE, _radix_passes

__all__ = ["specific_ts_kernel"]

#: The running moments of the window are recomputed exactly (about the midpoint of its
#: quartiles) every this many days.
_REFRESH = 32


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
