"""Twins of :mod:`riskmodel.kernels.wls`: the daily constrained WLS, its sample rules and
the Cholesky factor with its rank rule."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from riskmodel.kernels import wls as k
from tests.kernels.twins import KernelTwin

MAD_TO_SIGMA = 1.4826


def wls_twin(returns, styles, industry, weights, cap, *, lag, clip, min_size):
    """Readable per-date reference of ``kernels.wls.wls_factor_returns``.

    Per date: the sample rules written out in numpy, robust clipping with ``np.median``, a
    dense design with industry dummies (dropped industries left out), the restriction
    ``R`` built from scratch and ``np.linalg.lstsq`` on ``V^{1/2} X R``.
    """
    n_dates, n_stocks, n_styles = styles.shape
    n_ind = 0 if industry is None else int(industry.max()) + 1
    m = 1 + n_ind + n_styles
    f = np.full((n_dates, m), np.nan)
    se = np.full((n_dates, m), np.nan)
    u = np.full((n_dates, n_stocks), np.nan)
    r2 = np.full(n_dates, np.nan)
    n_obs = np.zeros(n_dates, np.int64)
    n_clipped = np.zeros(n_dates, np.int64)
    for t in range(lag, n_dates):
        s = t - lag
        r, x, v, h = returns[t], styles[s], weights[s], cap[s]
        res = np.isfinite(r) & np.isfinite(x).all(axis=1)
        codes = np.zeros(n_stocks, np.int64) if industry is None else industry[s].astype(np.int64)
        if industry is not None:
            res &= codes >= 0
        fit = res & np.isfinite(v) & (v > 0)
        n_obs[t] = fit.sum()
        if n_obs[t] == 0:
            continue
        active = np.zeros(n_ind, bool)
        c = np.zeros(n_ind)
        h_fit = np.where(np.isfinite(h) & (h > 0), h, 0.0)[fit]
        for p in range(n_ind):
            members = fit & (codes == p)
            vp = v[members]
            active[p] = members.sum() >= min_size and vp.sum() ** 2 / (vp**2).sum() >= min_size
            if active[p]:
                c[p] = h_fit[codes[fit] == p].sum() / h_fit.sum()
        rf = r[fit].copy()
        if not np.isnan(clip):
            med = np.median(rf)
            mad = np.median(np.abs(rf - med))
            if mad > 0:
                lo, hi = med - clip * MAD_TO_SIGMA * mad, med + clip * MAD_TO_SIGMA * mad
                n_clipped[t] = ((rf < lo) | (rf > hi)).sum()
                rf = np.clip(rf, lo, hi)
        # dense X: market, industry dummies (active only), styles
        x_all = np.zeros((n_stocks, m))
        x_all[:, 0] = 1.0
        for p in np.flatnonzero(active):
            x_all[codes == p, 1 + p] = 1.0
        x_all[:, 1 + n_ind :] = np.where(res[:, None], x, 0.0)
        # restriction
        cols = [0]
        ref = int(np.flatnonzero(active)[np.argmax(c[active])]) if active.any() else -1
        others = [p for p in range(n_ind) if active[p] and p != ref]
        cols += [1 + p for p in others] + list(range(1 + n_ind, m))
        r_mat = np.zeros((m, len(cols)))
        for j, col in enumerate(cols):
            r_mat[col, j] = 1.0
        for j, p in enumerate(others):
            r_mat[1 + ref, 1 + j] = -c[p] / c[ref]
        sqrt_v = np.sqrt(v[fit])
        a = (x_all[fit] @ r_mat) * sqrt_v[:, None]
        if np.linalg.matrix_rank(a) < a.shape[1]:
            n_obs[t] = fit.sum()
            continue
        g, *_ = np.linalg.lstsq(a, rf * sqrt_v, rcond=None)
        ft = r_mat @ g
        u[t, res] = r[res] - x_all[res] @ ft
        e = rf - x_all[fit] @ ft
        vf = v[fit]
        r_bar = (vf * rf).sum() / vf.sum()
        r2[t] = 1 - (vf * e**2).sum() / (vf * (rf - r_bar) ** 2).sum()
        q = a.shape[1]
        s2 = (vf * e**2).sum() / (fit.sum() - q)
        a_pinv = np.linalg.pinv(a)
        cov = s2 * r_mat @ (a_pinv @ a_pinv.T) @ r_mat.T
        se[t] = np.sqrt(np.diag(cov))
        ft[1 : 1 + n_ind][~active] = np.nan
        se[t, 1 : 1 + n_ind][~active] = np.nan
        f[t] = ft
    return SimpleNamespace(factor_returns=f, residuals=u, r2=r2, se=se, n_obs=n_obs, n_clipped=n_clipped)


def messy_world(seed, n_dates=12, n_stocks=300, n_styles=4, n_ind=6, industries=True):
    """Random exposures with holes: NaN returns/weights/styles, −1 codes, a thin industry
    (``seed``: an int or a ``numpy.random.Generator``)."""
    rng = np.random.default_rng(seed)
    cap = np.exp(rng.normal(8, 1.5, size=(n_dates, n_stocks)))
    weights = np.sqrt(cap)
    styles = rng.normal(size=(n_dates, n_stocks, n_styles))
    industry = rng.integers(0, n_ind, size=(n_dates, n_stocks)).astype(np.int32)
    industry[industry == n_ind - 1] = 0
    industry[:, :3] = n_ind - 1  # last industry: 3 members -> thin
    returns = 0.02 * rng.standard_t(4, size=(n_dates, n_stocks))
    returns[rng.random(returns.shape) < 0.05] = np.nan
    weights[rng.random(weights.shape) < 0.05] = np.nan
    weights[rng.random(weights.shape) < 0.02] = 0.0
    styles[rng.random(styles.shape) < 0.01] = np.nan
    industry[rng.random(industry.shape) < 0.02] = -1
    cap[rng.random(cap.shape) < 0.01] = np.nan
    returns[5, 10] = 1.5  # an outlier to clip
    return SimpleNamespace(
        returns=returns,
        styles=styles,
        industry=industry if industries else None,
        weights=weights,
        cap=cap,
    )


def run_kernel(w, *, lag, clip, min_size):
    n_dates, n_stocks, n_styles = w.styles.shape
    n_ind = 0 if w.industry is None else int(w.industry.max()) + 1
    m = 1 + n_ind + n_styles
    out = SimpleNamespace(
        factor_returns=np.empty((n_dates, m)),
        residuals=np.empty((n_dates, n_stocks)),
        r2=np.empty(n_dates),
        se=np.empty((n_dates, m)),
        n_obs=np.empty(n_dates, np.int64),
        n_clipped=np.empty(n_dates, np.int64),
        date_status=np.empty(n_dates, np.int8),
        ind_status=np.empty((n_dates, n_ind), np.int8),
    )
    industry = np.zeros((1, 1), np.int32) if w.industry is None else w.industry
    k.wls_factor_returns(
        w.returns, w.styles, industry, w.weights, w.cap, n_ind, lag, clip, float(min_size),
        out.factor_returns, out.residuals, out.r2, out.se, out.n_obs, out.n_clipped,
        out.date_status, out.ind_status,
    )  # fmt: skip
    return out


def day_sample_twin(r, w, x, ind, cap, n_ind, min_size):
    """Sample rules of one date written out in numpy: ``(fit, res, ind_status, c, n_fit)``."""
    res = np.isfinite(r) & np.isfinite(x).all(axis=1)
    codes = ind.astype(np.int64) if n_ind > 0 else np.zeros(r.shape, np.int64)
    if n_ind > 0:
        res &= (codes >= 0) & (codes < n_ind)
    fit = res & np.isfinite(w) & (w > 0)
    h = np.where(np.isfinite(cap) & (cap > 0), cap, 0.0)
    status = np.full(n_ind, k.IND_EMPTY, np.int8)
    c = np.zeros(n_ind)
    for p in range(n_ind):
        members = fit & (codes == p)
        vp = w[members]
        if not members.any():
            continue
        thin = members.sum() < min_size or vp.sum() ** 2 < min_size * (vp**2).sum()
        status[p] = k.IND_THIN if thin else k.IND_ACTIVE
        if not thin and h[fit].sum() > 0:
            c[p] = h[members].sum() / h[fit].sum()
    return fit, res, status, c, int(fit.sum())


def _wls_inputs(rng, **dims):
    return dict(world=messy_world(rng, **dims), lag=1, clip=5.0, min_size=5.0)


def _wls_run(inp):
    return vars(run_kernel(inp["world"], lag=inp["lag"], clip=inp["clip"], min_size=inp["min_size"]))


def _wls_twin(inp):
    w = inp["world"]
    return vars(wls_twin(w.returns, w.styles, w.industry, w.weights, w.cap, lag=inp["lag"], clip=inp["clip"],
                         min_size=inp["min_size"]))


def _day_sample_run(inp):
    w = inp["world"]
    T, N = w.returns.shape
    P = int(w.industry.max()) + 1
    out = dict(fit=np.empty((T, N), bool), res=np.empty((T, N), bool), ind_status=np.empty((T, P), np.int8),
               c=np.empty((T, P)), n_fit=np.empty(T, np.int64))
    for t in range(T):
        out["n_fit"][t] = k.day_sample(w.returns[t], w.weights[t], w.styles[t], w.industry[t], w.cap[t], P,
                                       inp["min_size"], out["fit"][t], out["res"][t], out["ind_status"][t],
                                       out["c"][t])
    return out


def _day_sample_twin(inp):
    w = inp["world"]
    P = int(w.industry.max()) + 1
    rows = [day_sample_twin(w.returns[t], w.weights[t], w.styles[t], w.industry[t], w.cap[t], P, inp["min_size"])
            for t in range(w.returns.shape[0])]
    names = ("fit", "res", "ind_status", "c", "n_fit")
    return {name: np.array([row[i] for row in rows]) for i, name in enumerate(names)}


def _cholesky_inputs(rng, n, q):
    """``n`` Gram matrices ``q x q``; the first is rank deficient (one column a difference)."""
    a = rng.normal(size=(n, 3 * q, q))
    a[0, :, q - 1] = a[0, :, 0] - a[0, :, 1]
    return dict(gram=a.transpose(0, 2, 1) @ a)


def _cholesky_run(inp):
    gram = inp["gram"]
    q = gram.shape[1]
    lower = np.full(gram.shape, np.nan)
    for i in range(gram.shape[0]):
        work = gram[i].copy()
        if k.cholesky_lower(work, q, k.PIVOT_RTOL):
            lower[i] = np.tril(work)
    return dict(lower=lower)


def _cholesky_twin(inp):
    gram = inp["gram"]
    full = np.linalg.matrix_rank(gram) == gram.shape[1]
    lower = np.full(gram.shape, np.nan)
    lower[full] = np.linalg.cholesky(gram[full])
    return dict(lower=lower)


ENTRIES = [
    KernelTwin(
        "wls.wls_factor_returns", k.wls_factor_returns, _wls_run, _wls_twin, _wls_inputs,
        sizes={"test": dict(n_dates=12, n_stocks=300, n_styles=4, n_ind=6),
               "quick": dict(n_dates=20, n_stocks=1000, n_styles=5, n_ind=15),
               "full": dict(n_dates=63, n_stocks=5000, n_styles=10, n_ind=60)},
        rtol=1e-10, atol=1e-10,
    ),
    KernelTwin(
        "wls.day_sample", k.day_sample, _day_sample_run, _day_sample_twin, _wls_inputs,
        sizes={"test": dict(n_dates=6, n_stocks=300, n_styles=4, n_ind=6),
               "quick": dict(n_dates=20, n_stocks=1000, n_styles=5, n_ind=15),
               "full": dict(n_dates=252, n_stocks=5000, n_styles=10, n_ind=60)},
    ),
    KernelTwin(
        "wls.cholesky_lower", k.cholesky_lower, _cholesky_run, _cholesky_twin, _cholesky_inputs,
        sizes={"test": dict(n=10, q=8), "quick": dict(n=300, q=30), "full": dict(n=2520, q=71)},
        rtol=1e-10, atol=1e-12,
    ),
]
