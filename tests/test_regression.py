"""Cross-sectional WLS factor returns and mimicking portfolios: METHODS §2 Accept list."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskmodel.errors import (
    DimensionError,
    InvalidParameterError,
    NonFiniteError,
    PanelError,
    SingularDateWarning,
    ThinIndustryWarning,
    VariableTypeError,
)
from riskmodel.exposures import Exposures
from riskmodel.regression import WLSResult, _restriction_matrix, factor_returns, mimicking_portfolios

N_STOCKS, N_IND, N_STYLES = 500, 12, 7  # m = 20


def restriction(c, n_styles):
    """Dense R (m, m-1) written out: reference = largest c (all industries active)."""
    n_ind = c.size
    m = 1 + n_ind + n_styles
    ref = int(np.argmax(c))
    keep = [j for j in range(m) if j != 1 + ref]
    r_mat = np.eye(m)[:, keep]
    r_mat[1 + ref, :] = 0.0
    for j, col in enumerate(keep):
        if 1 <= col <= n_ind:
            r_mat[1 + ref, j] = -c[col - 1] / c[ref]
    return r_mat


def make_world(seed, n_dates=40, *, noise=0.01, inverse_variance=False, lag=1):
    """A world in the constrained parameterisation with known truth.

    Fixed uneven industries (all ≥ 20 members), lognormal caps, cap-centred styles,
    ``f_t = R_t g_t`` so that ``Σ_p c_p f_p = 0`` holds for the true factor returns,
    ``r_t = X_{t−lag} f_t + ε_t`` with ``ε ~ N(0, σ²)``. ``inverse_variance``: weights
    ``v = 1/σ²`` (V = D⁻¹), else √cap.
    """
    rng = np.random.default_rng(seed)
    T, N, P, K = n_dates, N_STOCKS, N_IND, N_STYLES
    sizes = 20 + rng.multinomial(N - 20 * P, rng.dirichlet(np.ones(P)))
    codes = np.repeat(np.arange(P, dtype=np.int32), sizes)
    rng.shuffle(codes)
    industry = np.tile(codes, (T, 1))
    cap = np.exp(rng.normal(8.0, 1.2, size=(T, N)))
    h = cap / cap.sum(axis=1, keepdims=True)
    styles = rng.normal(size=(T, N, K))
    styles -= np.einsum("tn,tnk->tk", h, styles)[:, None, :]  # cap-centred
    sigma = noise * np.exp(rng.normal(0, 0.3, size=N))
    weights = 1.0 / sigma**2 * np.ones((T, 1)) if inverse_variance else np.sqrt(cap)
    f_true = np.full((T, 1 + P + K), np.nan)
    returns = np.full((T, N), np.nan)
    for t in range(lag, T):
        s = t - lag
        c = np.bincount(industry[s], weights=cap[s], minlength=P) / cap[s].sum()
        r_mat = restriction(c, K)
        f_true[t] = r_mat @ rng.normal(0, 0.01, size=r_mat.shape[1])
        x = dense(industry[s], styles[s], P)
        returns[t] = x @ f_true[t] + sigma * rng.normal(size=N)
    ex = Exposures(
        dates=np.datetime64("2020-01-01", "ns") + np.arange(T) * np.timedelta64(1, "D"),
        stocks=np.array([f"S{n:04d}" for n in range(N)]),
        style_names=tuple(f"style{k}" for k in range(K)),
        industry_labels=tuple(f"ind{p}" for p in range(P)),
        styles=np.ascontiguousarray(styles),
        industry=industry,
        weights=weights,
        cap=cap,
        imputed=np.zeros((T, N, K), bool),
    )
    return ex, returns, f_true, sigma


def dense(codes, x, n_ind):
    """Dense design [1, dummies, styles] of one date."""
    out = np.zeros((codes.size, 1 + n_ind + x.shape[1]))
    out[:, 0] = 1.0
    out[np.arange(codes.size), 1 + codes] = 1.0
    out[:, 1 + n_ind :] = x
    return out


def with_arrays(ex, **changes):
    """A copy of an Exposures with some arrays replaced."""
    fields = {f: getattr(ex, f) for f in ex.__dataclass_fields__}
    fields.update(changes)
    return Exposures(**fields)


@pytest.fixture(scope="module")
def world():
    return make_world(seed=0)


@pytest.fixture(scope="module")
def fit(world):
    ex, returns, _, _ = world
    return factor_returns(returns, ex, return_clip=None)


def test_result_contract(world, fit):
    ex, returns, _, _ = world
    T, N = returns.shape
    m = 1 + N_IND + N_STYLES
    assert isinstance(fit, WLSResult)
    assert fit.factor_names == tuple(ex.factor_names)
    assert fit.factor_returns.shape == (T, m) and fit.se.shape == (T, m)
    assert fit.residuals.shape == (T, N) and fit.r2.shape == (T,)
    assert fit.n_obs.dtype == np.int64 and fit.n_clipped.dtype == np.int64
    assert np.isnan(fit.factor_returns[0]).all() and np.isnan(fit.residuals[0]).all()
    assert np.isfinite(fit.factor_returns[1:]).all()
    assert (fit.n_obs[1:] == N).all() and (fit.n_clipped == 0).all()
    assert "40 dates" in repr(fit)


@pytest.mark.parametrize("t", [1, 17, 39])
def test_factor_return_is_mimicking_portfolio_return(world, fit, t):
    ex, returns, _, _ = world
    omega = mimicking_portfolios(ex, t, returns_row=returns[t])
    f = fit.factor_returns[t]
    assert np.linalg.norm(omega @ returns[t] - f) <= 1e-12 * np.linalg.norm(f)


def test_mimicking_portfolio_structure(world):
    ex, returns, _, _ = world
    t, s = 9, 8
    x = dense(ex.industry[s], ex.styles[s], N_IND)
    c = np.bincount(ex.industry[s], weights=ex.cap[s], minlength=N_IND) / ex.cap[s].sum()
    r_mat = restriction(c, N_STYLES)
    np.testing.assert_allclose(_restriction_matrix(c, np.ones(N_IND, bool), N_STYLES), r_mat, rtol=0, atol=0)
    omega = mimicking_portfolios(ex, ex.dates[t])  # by date label
    np.testing.assert_allclose(omega @ x @ r_mat, r_mat, rtol=0, atol=1e-10)
    sums = omega.sum(axis=1)
    np.testing.assert_allclose(sums[0], 1.0, atol=1e-10)  # country row: net long 1
    np.testing.assert_allclose(sums[1:], 0.0, atol=1e-10)  # industries and styles: dollar neutral
    # style rows: unit own exposure, none to other styles
    np.testing.assert_allclose(omega[1 + N_IND :] @ ex.styles[s], np.eye(N_STYLES), atol=1e-10)


def test_constraint_and_orthogonality(world, fit):
    ex, returns, _, _ = world
    for t in range(1, returns.shape[0]):
        s = t - 1
        f = fit.factor_returns[t]
        c = np.bincount(ex.industry[s], weights=ex.cap[s], minlength=N_IND) / ex.cap[s].sum()
        assert abs(c @ f[1 : 1 + N_IND]) <= 1e-12
        x = dense(ex.industry[s], ex.styles[s], N_IND)
        v = ex.weights[s]
        score = x.T @ (v * fit.residuals[t])
        assert np.abs(score).max() <= 1e-10 * np.linalg.norm(x) * np.linalg.norm(v * returns[t])


def test_restriction_equals_kkt(world, fit):
    ex, returns, _, _ = world
    m = 1 + N_IND + N_STYLES
    for t in (1, 20, 39):
        s = t - 1
        x = dense(ex.industry[s], ex.styles[s], N_IND)
        v = ex.weights[s]
        c = np.zeros(m)
        c[1 : 1 + N_IND] = np.bincount(ex.industry[s], weights=ex.cap[s], minlength=N_IND) / ex.cap[s].sum()
        kkt = np.block([[x.T @ (v[:, None] * x), c[:, None]], [c[None, :], np.zeros((1, 1))]])
        sol = np.linalg.solve(kkt, np.concatenate([x.T @ (v * returns[t]), [0.0]]))
        f = fit.factor_returns[t]
        assert np.linalg.norm(sol[:m] - f) <= 1e-10 * np.linalg.norm(f)


def test_cap_weighted_identity(world, fit):
    ex, returns, _, _ = world
    for t in range(1, returns.shape[0]):
        h = ex.cap[t - 1] / ex.cap[t - 1].sum()
        lhs = h @ returns[t]
        rhs = fit.factor_returns[t, 0] + h @ fit.residuals[t]
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_noise_free_returns_recover_truth():
    ex, returns, f_true, _ = make_world(seed=1, n_dates=20, noise=0.0, inverse_variance=False)
    res = factor_returns(returns, ex, return_clip=None)
    np.testing.assert_allclose(res.factor_returns[1:], f_true[1:], rtol=0, atol=1e-10 * np.abs(f_true[1:]).max())
    np.testing.assert_allclose(res.r2[1:], 1.0, atol=1e-10)
    # clipping does not move an exact fit (residuals are 0)
    clipped = factor_returns(returns, ex, return_clip=5.0)
    np.testing.assert_allclose(clipped.factor_returns[1:], f_true[1:], atol=1e-10 * np.abs(f_true[1:]).max())


def test_z_scores_under_true_covariance():
    ex, returns, f_true, sigma = make_world(seed=2, n_dates=201, noise=0.02, inverse_variance=True)
    res = factor_returns(returns, ex, return_clip=None)
    z, ratio = [], []
    for t in range(1, returns.shape[0]):
        s = t - 1
        x = dense(ex.industry[s], ex.styles[s], N_IND)
        c = np.bincount(ex.industry[s], weights=ex.cap[s], minlength=N_IND) / ex.cap[s].sum()
        r_mat = restriction(c, N_STYLES)
        xr_ = x @ r_mat
        cov = r_mat @ np.linalg.inv(xr_.T @ (xr_ / sigma[:, None] ** 2)) @ r_mat.T
        sd = np.sqrt(np.diag(cov))
        z.append((res.factor_returns[t] - f_true[t]) / sd)
        ratio.append(res.se[t] / sd)
    z = np.concatenate(z)
    assert abs(z.mean()) <= 0.05, z.mean()
    assert abs(z.std() - 1.0) <= 0.05, z.std()
    # the reported se estimate the true sd (s² ≈ 1 with V = D⁻¹)
    assert abs(np.mean(np.concatenate(ratio) ** 2) - 1.0) <= 0.05


def test_absent_stocks_leave_the_regression_but_keep_residuals(world):
    ex, returns, _, _ = world
    rng = np.random.default_rng(3)
    r = returns.copy()
    r[rng.random(r.shape) < 0.1] = np.nan
    weights = ex.weights.copy()
    no_weight = rng.random(weights.shape) < 0.05
    weights[no_weight] = np.nan
    ex2 = with_arrays(ex, weights=weights)
    res = factor_returns(r, ex2, return_clip=None)
    t = 12
    out = np.isnan(r[t]) | np.isnan(weights[t - 1])
    assert res.n_obs[t] == (~out).sum()
    np.testing.assert_array_equal(np.isnan(res.residuals[t]), np.isnan(r[t]))
    # same factor returns as a regression on the kept stocks only
    keep = ~out
    sub = with_arrays(
        ex,
        stocks=ex.stocks[keep],
        styles=np.ascontiguousarray(ex.styles[:, keep]),
        industry=ex.industry[:, keep],
        weights=ex.weights[:, keep],
        cap=ex.cap[:, keep],
        imputed=ex.imputed[:, keep],
    )
    res_sub = factor_returns(r[:, keep], sub, return_clip=None)
    np.testing.assert_allclose(res.factor_returns[t], res_sub.factor_returns[t], rtol=1e-12, atol=1e-15)
    # a stock with a return but no weight still gets r − X f
    n = np.flatnonzero(np.isnan(weights[t - 1]) & np.isfinite(r[t]))[0]
    x = dense(ex.industry[t - 1], ex.styles[t - 1], N_IND)
    np.testing.assert_allclose(res.residuals[t, n], r[t, n] - x[n] @ res.factor_returns[t], rtol=1e-12)
    omega = mimicking_portfolios(ex2, t, returns_row=r[t])
    assert (omega[:, out] == 0).all()
    f = res.factor_returns[t]
    assert np.linalg.norm(omega @ np.nan_to_num(r[t]) - f) <= 1e-12 * np.linalg.norm(f)


def test_thin_industry_is_nan_that_day_with_warning(world):
    ex, returns, _, _ = world
    r = returns.copy()
    members = np.flatnonzero(ex.industry[0] == 3)
    r[15, members[3:]] = np.nan  # 3 members left on return day 15
    with pytest.warns(ThinIndustryWarning, match=r"ind3 on 2020-01-16.*rm\.pool_thin_industries\(panel\)"):
        res = factor_returns(r, ex, return_clip=None, min_industry_size=5)
    assert np.isnan(res.factor_returns[15, 1 + 3]) and np.isnan(res.se[15, 1 + 3])
    others = np.delete(np.arange(1 + N_IND + N_STYLES), 1 + 3)
    assert np.isfinite(res.factor_returns[15, others]).all()
    assert np.isfinite(res.factor_returns[14]).all() and np.isfinite(res.factor_returns[16]).all()
    assert np.isfinite(res.residuals[15, members[:3]]).all()  # members stay in
    assert res.n_obs[15] == N_STOCKS - (members.size - 3)
    # the constraint now runs over the active industries; the portfolio identity still holds
    omega = mimicking_portfolios(ex, 15, returns_row=r[15])
    assert np.isnan(omega[1 + 3]).all()
    keep = np.isfinite(omega[:, 0])
    f = res.factor_returns[15, keep]
    assert np.linalg.norm(omega[keep] @ np.nan_to_num(r[15]) - f) <= 1e-12 * np.linalg.norm(f)


def test_all_nan_day_and_singular_day_warn_by_date(world):
    ex, returns, _, _ = world
    r = returns.copy()
    r[5] = np.nan
    styles = ex.styles.copy()
    styles[19, :, 2] = styles[19, :, 4]  # duplicate style columns at exposure row 19 -> return row 20
    ex2 = with_arrays(ex, styles=styles)
    with pytest.warns(SingularDateWarning, match=r"2 date\(s\).*2020-01-06, 2020-01-21") as record:
        res = factor_returns(r, ex2, return_clip=5.0)
    message = str(record[0].message)
    assert "1 without any return" in message and "1 with fewer usable stocks than factors or collinear" in message
    assert "no stock has every style" not in message
    for t in (5, 20):
        assert np.isnan(res.factor_returns[t]).all() and np.isnan(res.residuals[t]).all()
        assert np.isnan(res.r2[t]) and np.isnan(res.se[t]).all()
    assert np.isfinite(res.factor_returns[[4, 6, 19, 21]]).all()
    with pytest.warns(SingularDateWarning, match="2020-01-21"):
        omega = mimicking_portfolios(ex2, 20)
    assert np.isnan(omega).all()


def test_singular_warning_names_the_style_missing_for_every_stock(world):
    ex, returns, _, _ = world
    styles = ex.styles.copy()
    styles[:10, :, 1] = np.nan  # a style with a look-back: no exposure on the first 10 rows
    styles[3, :5, 0] = np.nan
    names = tuple(f"s{k}" for k in range(styles.shape[2]))
    ex2 = with_arrays(ex, styles=styles, style_names=names)
    with pytest.warns(SingularDateWarning, match=r"^10 date\(s\)") as record:
        res = factor_returns(returns, ex2, return_clip=5.0)
    message = str(record[0].message)
    assert "10 where no stock has every style exposure; missing for every stock: s1 on 10 (" in message, message
    assert "without any return" not in message and "collinear" not in message
    assert np.isnan(res.factor_returns[1:11]).all() and np.isfinite(res.factor_returns[11:]).all()


@pytest.mark.parametrize("lag", [1, 2])
def test_lag_uses_exposures_lag_rows_earlier(world, lag):
    ex, returns, _, _ = world
    res = factor_returns(returns, ex, lag=lag, return_clip=5.0)

    def shift(a):
        out = np.empty_like(a)
        out[lag:] = a[:-lag]
        out[:lag] = a[:lag]
        return np.ascontiguousarray(out)

    shifted = with_arrays(
        ex,
        styles=shift(ex.styles),
        industry=shift(ex.industry),
        weights=shift(ex.weights),
        cap=shift(ex.cap),
    )
    with warnings.catch_warnings():  # returns rows < lag are empty: singular under lag=0
        warnings.simplefilter("ignore", SingularDateWarning)
        res0 = factor_returns(returns, shifted, lag=0, return_clip=5.0)
    assert np.isnan(res.factor_returns[:lag]).all()
    for name in ("factor_returns", "residuals", "r2", "se", "n_obs", "n_clipped"):
        np.testing.assert_array_equal(getattr(res, name)[lag:], getattr(res0, name)[lag:])


def test_no_look_ahead(world):
    ex, returns, _, _ = world
    full = factor_returns(returns, ex)
    cut = 25
    fields = {f: getattr(ex, f) for f in ex.__dataclass_fields__}
    trunc = Exposures(
        **{
            **fields,
            "dates": ex.dates[:cut],
            "styles": np.ascontiguousarray(ex.styles[:cut]),
            "industry": ex.industry[:cut],
            "weights": ex.weights[:cut],
            "cap": ex.cap[:cut],
            "imputed": ex.imputed[:cut],
        }
    )
    part = factor_returns(returns[:cut], trunc)
    for name in ("factor_returns", "residuals", "r2", "se", "n_obs", "n_clipped"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:cut])


def test_clipping_changes_the_fit_only(world):
    ex, returns, _, _ = world
    r = returns.copy()
    t, n = 30, 77
    r[t, n] = 2.0  # a 200% jump
    clipped = factor_returns(r, ex, return_clip=5.0)
    raw = factor_returns(r, ex, return_clip=None)
    assert clipped.n_clipped[t] >= 1
    assert not np.allclose(clipped.factor_returns[t], raw.factor_returns[t], rtol=1e-6)
    x = dense(ex.industry[t - 1], ex.styles[t - 1], N_IND)
    np.testing.assert_allclose(clipped.residuals[t], r[t] - x @ clipped.factor_returns[t], rtol=1e-12, atol=1e-15)
    assert clipped.residuals[t, n] > 1.5  # the jump reaches the specific return
    # the clipped fit is the portfolio of the clipped returns
    rc = r[t].copy()
    med = np.median(rc)
    half = 5.0 * 1.4826 * np.median(np.abs(rc - med))
    rc = np.clip(rc, med - half, med + half)
    omega = mimicking_portfolios(ex, t, returns_row=r[t], return_clip=5.0)
    f = clipped.factor_returns[t]
    assert np.linalg.norm(omega @ rc - f) <= 1e-12 * np.linalg.norm(f)


def test_without_industries():
    ex, returns, _, _ = make_world(seed=4, n_dates=10)
    no_ind = with_arrays(ex, industry=None, industry_labels=())
    res = factor_returns(returns, no_ind, return_clip=None)
    assert res.factor_names == ("market", *ex.style_names)
    x = np.column_stack([np.ones(N_STOCKS), ex.styles[4]])
    v = np.sqrt(ex.weights[4])
    ref, *_ = np.linalg.lstsq(x * v[:, None], returns[5] * v, rcond=None)
    np.testing.assert_allclose(res.factor_returns[5], ref, rtol=1e-10)
    omega = mimicking_portfolios(no_ind, 5)
    np.testing.assert_allclose(omega @ returns[5], res.factor_returns[5], rtol=1e-12)


def test_bad_inputs_are_named(world):
    ex, returns, _, _ = world
    with pytest.raises(DimensionError, match="returns has shape"):
        factor_returns(returns[:, :-1], ex)
    r = returns.copy()
    r[7, 3] = np.inf
    with pytest.raises(NonFiniteError, match="returns: 1 infinite value.*stock 'S0003' on 2020-01-08"):
        factor_returns(r, ex)
    bare = SimpleNamespace(styles=ex.styles, industry=ex.industry, weights=ex.weights, cap=ex.cap)
    with pytest.raises(NonFiniteError, match="returns: .*date row 7, stock row 3"):  # no labels: rows
        factor_returns(r, bare)
    with pytest.raises(VariableTypeError, match="returns must be numeric"):
        factor_returns(returns.astype(str), ex)
    with pytest.raises(InvalidParameterError, match="lag"):
        factor_returns(returns, ex, lag=-1)
    with pytest.raises(InvalidParameterError, match="return_clip"):
        factor_returns(returns, ex, return_clip=0.0)
    with pytest.raises(InvalidParameterError, match="min_industry_size"):
        factor_returns(returns, ex, min_industry_size=0)
    with pytest.raises(InvalidParameterError, match="min_industry_size"):
        factor_returns(returns, ex, min_industry_size="five")
    codes = ex.industry.copy()
    codes[2, 9] = N_IND
    with pytest.raises(PanelError, match=r"industry code 12 at date 2020-01-03, stock S0009"):
        factor_returns(returns, with_arrays(ex, industry=codes))
    with pytest.raises(InvalidParameterError, match="t ≥ lag"):
        mimicking_portfolios(ex, 0)
    with pytest.raises(InvalidParameterError, match="not among the exposure dates"):
        mimicking_portfolios(ex, np.datetime64("1999-01-01"))
    with pytest.raises(DimensionError, match="returns_row has length"):
        mimicking_portfolios(ex, 3, returns_row=returns[3, :-2])


def test_plain_namespace_inputs_work(world):
    """Exposures-like objects without labels get generated names."""
    from types import SimpleNamespace

    ex, returns, _, _ = world
    plain = SimpleNamespace(styles=ex.styles, industry=ex.industry, weights=ex.weights, cap=ex.cap)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = factor_returns(returns, plain)
    assert res.factor_names[:2] == ("market", "industry_0") and res.factor_names[-1] == "style_6"
    np.testing.assert_array_equal(res.factor_returns, factor_returns(returns, ex).factor_returns)


def test_simulated_panel_pipeline():
    """On ``rm.simulate`` through ``build_exposures``: f = Ω r and the truth is tracked."""
    import riskmodel as rm

    panel = rm.simulate(n_stocks=300, n_days=120, seed=0)
    ex = rm.build_exposures(panel, panel.attrs["styles"], industry="industry", cap="market_cap")
    r = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy())
    res = factor_returns(r, ex, return_clip=None)
    assert res.factor_names == tuple(ex.factor_names)
    t = 60
    omega = mimicking_portfolios(ex, ex.dates[t], returns_row=r[t])
    f = res.factor_returns[t]
    assert np.isfinite(f).all()
    assert np.linalg.norm(omega @ np.nan_to_num(r[t]) - f) <= 1e-12 * np.linalg.norm(f)
    truth = panel["true_factor_returns"]
    for name in ("market", *panel.attrs["styles"]):
        est = res.factor_returns[1:, res.factor_names.index(name)]
        true = truth.sel(true_factor=name).to_numpy()[1:]
        assert np.corrcoef(est, true)[0, 1] > 0.8, name


def test_table_counts_significant_days(world, fit):
    table = fit.table()
    assert list(table.index) == list(fit.factor_names)
    t = np.abs(fit.factor_returns / fit.se)[1:]
    np.testing.assert_array_equal(table["n_dates"], np.full(len(fit.factor_names), 39))
    np.testing.assert_allclose(table["share_abs_t_gt_2"], (t > 2).mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(table["vol"], np.std(fit.factor_returns[1:], axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(table["mean_abs_t"], t.mean(axis=0), rtol=1e-12)


def test_summary_names_the_headline_numbers(world, fit):
    text = fit.summary()
    ok = np.isfinite(fit.r2)
    assert text.startswith(f"WLSResult: 40 dates (2020-01-01..2020-02-09) × {len(fit.factor_names)} factors, 500 stocks")
    assert f"{int(ok.sum())} dates estimated" in text and f"mean R² {fit.r2[ok].mean():.3f}" in text
    assert "share_abs_t_gt_2" in text and all(name in text for name in fit.factor_names)
    assert repr(fit) == text


@pytest.mark.parametrize("labelled", [True, False])
def test_save_load_round_trip(world, tmp_path, labelled):
    import riskmodel as rm

    ex, returns, _, _ = world
    source = ex if labelled else SimpleNamespace(styles=ex.styles, industry=ex.industry,
                                                 weights=ex.weights, cap=ex.cap)
    res = factor_returns(returns, source, return_clip=3.0)
    ds = res.to_dataset()
    assert ds.attrs["riskmodel_kind"] == "wls_result"
    assert ("date" in ds.coords) == labelled and list(ds["factor"].values) == list(res.factor_names)
    back = rm.load(rm.save(res, tmp_path / "wls.nc"))
    assert isinstance(back, WLSResult) and back.factor_names == res.factor_names
    for name in ("factor_returns", "residuals", "r2", "se", "n_obs", "n_clipped"):
        a, b = getattr(res, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    if labelled:
        assert np.array_equal(back.dates, ex.dates) and np.array_equal(back.stocks, ex.stocks)
    else:
        assert back.dates is None and back.stocks is None
    pd.testing.assert_frame_equal(back.table(), res.table())
    assert back.summary() == res.summary()
    with pytest.raises(rm.ModelFileError, match="riskmodel_kind"):
        WLSResult.from_dataset(ds.assign_attrs(riskmodel_kind="alpha_test"))


def test_empty_industry_is_nan_without_thin_warning(world):
    ex, returns, _, _ = world
    r = returns.copy()
    r[22, ex.industry[21] == 5] = np.nan  # no member of ind5 has a return on day 22
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = factor_returns(r, ex, return_clip=None)
    assert np.isnan(res.factor_returns[22, 1 + 5])
    assert np.isfinite(np.delete(res.factor_returns[22], 1 + 5)).all()
    c = np.bincount(ex.industry[21], weights=np.where(np.isfinite(r[22]), ex.cap[21], 0.0), minlength=N_IND)
    assert abs(np.delete(c, 5) @ np.delete(res.factor_returns[22, 1 : 1 + N_IND], 5)) <= 1e-12 * c.sum()


@pytest.mark.realdata
def test_accept_identities_on_real_data(shared_data_dir):
    """METHODS §2 identities on half a year of the real S&P 500 panel (GICS industries)."""
    import riskmodel as rm

    panel = rm.load_us_equities(shared_data_dir, start="2008-07-01", end="2008-12-31")
    panel["size"] = np.log(panel["market_cap"])
    panel["liquidity"] = np.log(panel["dollar_volume"].where(panel["dollar_volume"] > 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imputation / thin-industry notices are expected here
        ex = rm.build_exposures(panel, ["size", "liquidity"], industry="industry", cap="market_cap")
        r = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy())
        res = factor_returns(r, ex, return_clip=None)
    n_ind = len(ex.industry_labels)
    for t in (20, 60, 100):  # autumn 2008
        s = t - 1
        f = res.factor_returns[t]
        active = np.isfinite(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ThinIndustryWarning)
            omega = mimicking_portfolios(ex, t, returns_row=r[t])
        assert np.linalg.norm(omega[active] @ np.nan_to_num(r[t]) - f[active]) <= 1e-12 * np.linalg.norm(f[active])
        fit_ = np.isfinite(r[t]) & np.isfinite(ex.weights[s]) & (ex.weights[s] > 0)
        fit_ &= np.isfinite(ex.styles[s]).all(axis=1) & (ex.industry[s] >= 0)
        codes = ex.industry[s, fit_]
        cap = np.where(np.isfinite(ex.cap[s, fit_]), ex.cap[s, fit_], 0.0)
        c = np.bincount(codes, weights=cap, minlength=n_ind) / cap.sum()
        ind_active = active[1 : 1 + n_ind]
        assert abs(c[ind_active] @ f[1 : 1 + n_ind][ind_active]) <= 1e-12
        x = dense(np.where(ind_active[codes], codes, 0), ex.styles[s, fit_], n_ind)
        x[~ind_active[codes], 1 : 1 + n_ind] = 0.0  # members of dropped industries: market + styles
        r_mat = _restriction_matrix(c, ind_active, ex.styles.shape[2])
        np.testing.assert_allclose(omega[np.ix_(active, fit_)] @ x @ r_mat, r_mat[active], atol=1e-10)
        v = ex.weights[s, fit_]
        score = (x @ r_mat).T @ (v * res.residuals[t, fit_])
        assert np.abs(score).max() <= 1e-10 * np.linalg.norm(x) * np.linalg.norm(v * r[t, fit_])
