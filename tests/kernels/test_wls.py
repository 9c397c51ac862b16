"""The WLS kernel against its plain numpy twin (dense dummies, ``np.linalg.lstsq`` per date)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from riskmodel.kernels import wls as k
from riskmodel.regression import factor_returns

MAD_TO_SIGMA = 1.4826


def numpy_twin(returns, styles, industry, weights, cap, *, lag, clip, min_size):
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
    """Random exposures with holes: NaN returns/weights/styles, −1 codes, a thin industry."""
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


def assert_same(got, ref, rtol=1e-10):
    for name in ("factor_returns", "residuals", "r2", "se"):
        a, b = getattr(got, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"NaN pattern of {name}")
        scale = np.nanmax(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)
    lag_rows = ~np.isnan(ref.r2)
    np.testing.assert_array_equal(got.n_obs[lag_rows], ref.n_obs[lag_rows])
    np.testing.assert_array_equal(got.n_clipped[lag_rows], ref.n_clipped[lag_rows])


@pytest.mark.parametrize("lag", [0, 1, 2])
@pytest.mark.parametrize("clip", [np.nan, 3.0])
def test_kernel_matches_numpy_twin(lag, clip):
    w = messy_world(seed=1)
    got = run_kernel(w, lag=lag, clip=clip, min_size=5)
    ref = numpy_twin(w.returns, w.styles, w.industry, w.weights, w.cap, lag=lag, clip=clip, min_size=5)
    assert_same(got, ref)
    assert (got.date_status[:lag] == k.DATE_BEFORE_LAG).all()
    assert (got.date_status[lag:] == k.DATE_OK).all()
    # the 3-member industry is thin every date, the others active
    assert (got.ind_status[lag:, -1] == k.IND_THIN).all()
    assert (got.ind_status[lag:, :-1] == k.IND_ACTIVE).all()
    if not np.isnan(clip):
        assert got.n_clipped[5] >= 1


def test_kernel_matches_twin_without_industries():
    w = messy_world(seed=2, industries=False)
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    ref = numpy_twin(w.returns, w.styles, None, w.weights, w.cap, lag=1, clip=5.0, min_size=5)
    assert_same(got, ref)
    assert got.factor_returns.shape[1] == 1 + 4


def test_kernel_effective_count_rule_drops_concentrated_industry():
    # 10 members but one dominates the weights: (Σv)²/Σv² ≈ 1.2 < 5 -> thin
    w = messy_world(seed=3)
    w.industry[:] = np.maximum(w.industry[0], 0)  # fixed membership over time
    members = np.flatnonzero(w.industry[0] == 1)
    w.industry[:, members[10:]] = 2
    w.weights[:, members[:10]] = 1.0
    w.weights[:, members[0]] = 1e4
    w.returns[:, members[:10]] = 0.01
    got = run_kernel(w, lag=1, clip=np.nan, min_size=5)
    ref = numpy_twin(w.returns, w.styles, w.industry, w.weights, w.cap, lag=1, clip=np.nan, min_size=5)
    assert_same(got, ref)
    assert (got.ind_status[1:, 1] == k.IND_THIN).all()
    assert np.isnan(got.factor_returns[1:, 2]).all()


def test_kernel_singular_and_empty_dates():
    w = messy_world(seed=4)
    w.styles[3, :, 1] = w.styles[3, :, 0]  # duplicate style at exposure row 3 -> return row 4
    w.returns[7] = np.nan  # no returns at all
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    assert got.date_status[4] == k.DATE_SINGULAR and got.date_status[7] == k.DATE_SINGULAR
    for t in (4, 7):
        assert np.isnan(got.factor_returns[t]).all() and np.isnan(got.residuals[t]).all()
        assert np.isnan(got.se[t]).all() and np.isnan(got.r2[t])
    assert got.n_obs[7] == 0
    ok = np.setdiff1d(np.arange(1, 12), [4, 7])
    assert (got.date_status[ok] == k.DATE_OK).all()


def test_cholesky_lower_matches_numpy_and_flags_rank_deficiency():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(30, 8))
    gram = a.T @ a
    work = gram.copy()
    assert k.cholesky_lower(work, 8, k.PIVOT_RTOL)
    np.testing.assert_allclose(np.tril(work), np.linalg.cholesky(gram), rtol=1e-12, atol=1e-12)
    a[:, 3] = a[:, 1] - a[:, 2]
    work = (a.T @ a).copy()
    assert not k.cholesky_lower(work, 8, k.PIVOT_RTOL)


def test_public_wrapper_equals_kernel():
    w = messy_world(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = factor_returns(w.returns, w, lag=1, return_clip=5.0, min_industry_size=5)
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    for name in ("factor_returns", "residuals", "r2", "se", "n_obs", "n_clipped"):
        np.testing.assert_array_equal(getattr(res, name), getattr(got, name))


@pytest.mark.parametrize("n", [1, 2, 7, 512, 513, 5000, 5001])
def test_median_matches_numpy(n):
    rng = np.random.default_rng(n)
    cases = [
        rng.standard_t(3, size=n),
        np.round(rng.normal(size=n), 1),  # many ties
        np.where(rng.random(n) < 0.6, 0.0, rng.normal(size=n)),  # mostly zero returns
        np.sort(rng.normal(size=n)),  # sorted: the sample brackets still hold
        rng.exponential(size=n),  # skewed (as |r - median| is)
    ]
    for values in cases:
        a = values.copy()
        got = k.median_bracketed(a, n, np.empty(n))
        assert got == np.median(values)
        np.testing.assert_array_equal(np.sort(a), np.sort(values))  # a permutation of the input
