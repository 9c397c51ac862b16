"""Numba kernel of the structural specific-risk model (METHODS section 4):
:func:`structural_kernel` -- per date (in parallel over dates): the v-weighted regression
of ``ln sigma_TS`` on market + industries + styles by within-industry demeaning, and the
structural volatility ``E0 exp(X b)`` (or its blend with ``sigma_TS``) of every name with
complete styles.

Re-exported by :mod:`riskmodel.kernels.specific`; the plain numpy twins live in
``tests/kernels/twins/specific.py`` (the kernel registry).
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodel.kernels._chunks import parallel_chunks

__all__ = ["MIN_INDUSTRY_NAMES", "structural_kernel"]

#: An industry needs this many names in a date's structural sample to get its own
#: intercept; thinner industries are pooled into one group for the fit.
MIN_INDUSTRY_NAMES = 5


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
    complete = np.empty(N, np.bool_)
    tier = np.empty(N, np.int8)
    usable = np.empty(N, np.bool_)
    use_tier = _sample_tier(t, ts_var, h, gamma, xt, weights, cap, min_obs, min_names, complete, tier, usable,
                            out_complete)
    if use_tier < 0:
        out_e0[t] = np.nan
        out_nfit[t] = 0
        for n in range(N):
            out_sig[t, n] = _blend_one(gamma[t, n], ts_var[t, n], np.nan, blend)
        return
    in_fit = np.zeros(N, np.bool_)
    idx = np.empty(N, np.int64)  # sample names in stock order
    wv = np.empty(N)  # their weights v
    ls = np.empty(N)  # their ln sigma_TS
    gcount = np.zeros(G, np.int64)
    nfit = _gather_sample(t, ts_var, industry, has_industry, P, weights, cap, use_tier, tier, usable, in_fit, idx,
                          wv, ls, gcount)
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
    _group_block(xt, idx, wv, ls, grp, nfit, dt, gs, sv, sy, sx)
    b = _demeaned_slopes(dt, gs, wv, nfit, sy, sx)
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
    xfit = np.empty(N)  # exp(a + x b) of every name (NaN without complete styles)
    acc = _predict_and_smear(t, ts_var, xt, complete, in_fit, grp, P, icpt, a0, b, ls, duan, xfit)
    e0 = acc / nfit if duan else scale
    out_e0[t] = e0
    out_nfit[t] = nfit
    for n in range(N):
        out_sig[t, n] = _blend_one(gamma[t, n], ts_var[t, n], e0 * xfit[n], blend)


@numba.njit(cache=True, error_model="numpy")
def _sample_tier(t, ts_var, h, gamma, xt, weights, cap, min_obs, min_names, complete, tier, usable,
                 out_complete):  # pragma: no cover - compiled
    """Completeness, reliability tier and usability of every name of date ``t`` (into
    ``complete``, ``out_complete[t]``, ``tier``, ``usable``; one branch-free pass) and the
    sample tier: the most reliable tier with ``min_names`` usable ESTU names, 3 for the
    last-resort cap-weighted sample, -1 when not even that has enough names."""
    N, K = xt.shape
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
    return use_tier


@numba.njit(cache=True, error_model="numpy")
def _gather_sample(t, ts_var, industry, has_industry, P, weights, cap, use_tier, tier, usable, in_fit, idx, wv, ls,
                   gcount):  # pragma: no cover - compiled
    """The fit sample of date ``t`` in stock order: ``in_fit``, the names ``idx``, their
    weights ``wv`` (v, or ``sqrt(cap)`` for the last-resort tier 3) and ``ln sigma_TS``
    (``ls``), and the sample names per industry (``gcount``). Returns the sample size."""
    N = usable.shape[0]
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
    return nfit


@numba.njit(cache=True, error_model="numpy")
def _group_block(xt, idx, wv, ls, grp, nfit, dt, gs, sv, sy, sx):  # pragma: no cover - compiled
    """The transposed sample block ``dt (K + 1, nfit)`` (styles, then ``ln sigma_TS``), the
    sample's groups ``gs`` and the v-weighted group sums ``sv`` and means ``sy``, ``sx``."""
    K = sx.shape[1]
    G = sv.shape[0]
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


@numba.njit(cache=True, error_model="numpy")
def _demeaned_slopes(dt, gs, wv, nfit, sy, sx):  # pragma: no cover - compiled
    """Style slopes ``b (K,)``: ``dt`` demeaned within groups in place, then the K x K normal
    equations ``A[k, j] = sum v dt[k] dt[j]``, ``c[k] = sum v dt[k] dt[K]`` solved by least
    squares."""
    K = sx.shape[1]
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
    return b


@numba.njit(cache=True, error_model="numpy")
def _predict_and_smear(t, ts_var, xt, complete, in_fit, grp, P, icpt, a0, b, ls, duan,
                       xfit):  # pragma: no cover - compiled
    """``exp(a + x b)`` of every name into ``xfit`` (NaN without complete styles; ``a`` the
    name's industry intercept, or ``a_0`` outside a fitted industry) and, with ``duan``, the
    Duan smearing sum ``sum exp(e)`` over the sample (returned; 0 otherwise).

    A sample name of a fitted industry is predicted with its own intercept, so
    ``exp(e) = exp(ln sigma_TS - a_g - x b) = sigma_TS / exp(a_g + x b)``: one exp a name.
    """
    N, K = xt.shape
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
    return acc


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
