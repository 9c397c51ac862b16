"""Alpha test and attribution: HAC against statsmodels, size and power on AR(1) noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr

import riskmodel as rm
from riskmodel.research.alpha import AlphaTest, Attribution, hac_covariance, newey_west_lags


def _world(seed: int, n: int = 2520, alpha: float = 0.0, phi: float = 0.0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2010-01-01", periods=n)
    f = pd.DataFrame(rng.normal(0, 0.01, (n, 3)), idx, columns=["mkt", "smb", "hml"])
    e = np.empty(n)
    eps = rng.normal(0, 0.005, n)
    e[0] = eps[0]
    for t in range(1, n):
        e[t] = phi * e[t - 1] + eps[t]
    g = pd.Series(alpha + f.to_numpy() @ np.array([0.3, -0.2, 0.1]) + e, idx, name="g")
    return g, f


@pytest.mark.parametrize("lags", [0, 3, 8, 21])
def test_hac_equals_statsmodels(lags):
    g, f = _world(0, n=800, phi=0.3)
    res = rm.alpha_test(g, {"FF3": f}, lags=lags)
    sm_fit = sm.OLS(g.to_numpy(), sm.add_constant(f.to_numpy())).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    row = res.table.loc["FF3"]
    np.testing.assert_allclose(row["t_alpha"], sm_fit.tvalues[0], rtol=1e-10)
    np.testing.assert_allclose([row["t[mkt]"], row["t[smb]"], row["t[hml]"]], sm_fit.tvalues[1:], rtol=1e-10)
    np.testing.assert_allclose(row["r2"], sm_fit.rsquared, rtol=1e-10)


def test_lag_zero_is_white():
    g, f = _world(1, n=400)
    x = sm.add_constant(f.to_numpy())
    fit = sm.OLS(g.to_numpy(), x).fit()
    white = fit.get_robustcov_results(cov_type="HC0").cov_params()
    np.testing.assert_allclose(hac_covariance(x, fit.resid, 0), white, rtol=1e-10)


def test_lag_rule():
    assert newey_west_lags(2520) == 8
    g, f = _world(2, n=2520)
    assert rm.alpha_test(g, {"FF3": f}).table.loc["FF3", "lags"] == 8


def _rejection_rates(n_reps: int, phi: float = 0.3, n: int = 2520, prewhite: bool = False):
    """Share of 5% rejections of alpha = 0 (HAC and plain OLS t) on AR(1) errors, vectorised."""
    rng = np.random.default_rng(123)
    eps = rng.normal(size=(n_reps, n))
    e = np.empty_like(eps)
    e[:, 0] = eps[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        e[:, t] = phi * e[:, t - 1] + eps[:, t]
    hac_t, ols_t = [], []
    idx = pd.bdate_range("2000-01-03", periods=n)
    for r in range(n_reps):
        x = pd.Series(rng.normal(size=n), idx, name="f")
        y = pd.Series(0.5 * x.to_numpy() + e[r], idx)
        res = rm.alpha_test(y, {"one": x}, prewhite=prewhite)
        hac_t.append(res.table.loc["one", "t_alpha"])
        fit = res.fits["one"]
        s2 = fit.resid @ fit.resid / (fit.n_obs - 2)
        xv = np.column_stack([np.ones(n), x.to_numpy()])
        ols_t.append(fit.coef[0] / np.sqrt(s2 * np.linalg.inv(xv.T @ xv)[0, 0]))
    return np.mean(np.abs(hac_t) > 1.96), np.mean(np.abs(ols_t) > 1.96)


HAC_QUICK_REPS, HAC_QUICK_BAND = 1000, (0.035, 0.085)


def test_hac_size_on_ar1_quick():
    hac, ols = _rejection_rates(HAC_QUICK_REPS)
    # 1,000 reps (fixed seed): binomial sd of a 7% rate is 0.8%; HAC measured 6.8% here, ~6.6% at 2,000 reps
    lo, hi = HAC_QUICK_BAND
    assert lo <= hac <= hi
    assert ols > 0.12


def test_hac_quick_band_excludes_a_doubled_rejection_rate():
    """A doubled size (10% at a nominal 5%) lies more than 1.5 binomial sd above the band."""
    lo, hi = HAC_QUICK_BAND
    doubled = 2 * 0.05
    assert doubled - hi > 1.5 * np.sqrt(doubled * (1 - doubled) / HAC_QUICK_REPS)
    assert lo < 0.05 < hi


def test_prewhitening_keeps_the_size_and_recolours_exactly():
    hac, _ = _rejection_rates(300, prewhite=True)
    assert 0.02 <= hac <= 0.09
    # on scores without autocorrelation, prewhitening changes little
    g, f = _world(11, n=2000)
    plain = rm.alpha_test(g, {"FF3": f}).table.loc["FF3", "se_alpha"]
    white = rm.alpha_test(g, {"FF3": f}, prewhite=True).table.loc["FF3", "se_alpha"]
    assert abs(white / plain - 1) < 0.05


@pytest.mark.slow
def test_hac_size_on_ar1_full():
    hac, ols = _rejection_rates(2000)
    assert 0.035 <= hac <= 0.08
    assert 0.12 <= ols <= 0.20


@pytest.mark.parametrize("prewhite", [False, True])
def test_injected_alpha_recovered(prewhite):
    """METHODS §8: a 5%/yr alpha lies within 2 s.e. (1,000 seeds: 94.6% plain, 95.2% prewhitened)."""
    hits = 0
    n_seeds = 60
    true_alpha = 0.05 / 252
    for seed in range(n_seeds):
        g, f = _world(seed, alpha=true_alpha, phi=0.3)
        row = rm.alpha_test(g, {"FF3": f}, prewhite=prewhite).table.loc["FF3"]
        hits += abs(row["alpha"] - true_alpha) <= 2 * row["se_alpha"]
        np.testing.assert_allclose(row["alpha_annual"], row["alpha"] * 252)
    assert hits / n_seeds >= 0.90  # 60 seeds: sd of the share is 2.8%


@pytest.mark.slow
def test_injected_alpha_recovered_many_seeds():
    true_alpha = 0.05 / 252
    hits = 0
    for seed in range(1000):
        g, f = _world(seed, alpha=true_alpha, phi=0.3)
        row = rm.alpha_test(g, {"FF3": f}, prewhite=True).table.loc["FF3"]
        hits += abs(row["alpha"] - true_alpha) <= 2 * row["se_alpha"]
    assert hits / 1000 >= 0.95


def test_several_lists_side_by_side_and_xarray():
    g, f = _world(3, n=600, alpha=1e-4)
    fa = xr.DataArray(f.to_numpy(), coords={"date": f.index, "factor": list(f.columns)}, dims=("date", "factor"))
    res = rm.alpha_test(
        xr.DataArray(g.to_numpy(), coords={"date": g.index}, dims="date"),
        {"CAPM": f[["mkt"]], "FF3": fa},
    )
    assert list(res.table.index) == ["CAPM", "FF3"]
    assert res.table.loc["FF3", "r2"] > res.table.loc["CAPM", "r2"]
    assert np.isnan(res.table.loc["CAPM", "beta[smb]"])
    assert "alpha_annual" in res.summary()


def test_dates_matched_by_label_not_position():
    g, f = _world(4, n=500)
    shifted = f.iloc[100:]
    res = rm.alpha_test(g, {"FF3": shifted})
    assert res.table.loc["FF3", "n_obs"] == 400
    direct = rm.alpha_test(g.iloc[100:], {"FF3": shifted})
    np.testing.assert_allclose(res.table.to_numpy(float), direct.table.to_numpy(float))


def test_bad_input():
    g, f = _world(5, n=300)
    later = f.copy()
    later.index = later.index + pd.Timedelta(days=3650)
    with pytest.raises(rm.AlignmentError, match="share no date"):
        rm.alpha_test(g, {"FF3": later})
    with pytest.raises(rm.InsufficientDataError, match="too few"):
        rm.alpha_test(g.iloc[:10], {"FF3": f}, lags=8)
    const = f.assign(c=1.0)
    with pytest.raises(rm.InsufficientDataError, match="collinear"):
        rm.alpha_test(g, {"bad": const})
    with pytest.raises(rm.InvalidParameterError):
        rm.alpha_test(g, {})


def test_daily_neutral_book_can_carry_time_averaged_size():
    """The seeds' 'daily neutrality is not cumulative neutrality', in a constructed world.

    Each day the book is exactly neutral to size (weights ⟂ size exposure). But the book
    holds the stocks whose *next-day* size loading is high: when size pays, the book pays.
    """
    rng = np.random.default_rng(7)
    n_days, n_stocks = 1000, 300
    idx = pd.bdate_range("2015-01-01", periods=n_days)
    size = rng.normal(size=(n_days, n_stocks))
    f_size = rng.normal(0, 0.01, n_days)
    beta_true = 0.5 + rng.normal(0, 0.2, n_stocks)  # realised size sensitivity (not the exposure)
    rets = f_size[:, None] * beta_true[None, :] + rng.normal(0, 0.02, (n_days, n_stocks))
    signal = beta_true[None, :] + rng.normal(0, 0.5, (n_days, n_stocks))
    # neutralise the signal to size (and a constant) on each day, exactly
    w = np.empty_like(signal)
    for t in range(n_days):
        c = np.column_stack([np.ones(n_stocks), size[t]])
        w[t] = signal[t] - c @ np.linalg.lstsq(c, signal[t], rcond=None)[0]
    w /= np.abs(w).sum(axis=1, keepdims=True)
    assert np.max(np.abs((w * size).sum(axis=1))) < 1e-12  # neutral every day
    pnl = pd.Series((w * rets).sum(axis=1), idx)
    att = rm.attribution(pnl, pd.DataFrame({"size": f_size}, idx))
    assert att.t_stats["size"] > 3  # ...yet carries time-averaged size exposure
    np.testing.assert_allclose(att.explained + att.unexplained, pnl, atol=1e-15)


def test_alpha_test_summary_and_save_load_round_trip(tmp_path):
    g, f = _world(8, n=400, alpha=2e-4)
    res = rm.alpha_test(g, {"CAPM": f[["mkt"]], "FF3": f.iloc[50:]}, lags=4)
    text = res.summary()
    assert text.startswith("AlphaTest: one return series on 2 factor list(s) ['CAPM', 'FF3']")
    row = res.table.loc["FF3"]
    assert f"{row['alpha_annual']:.4g}" in text and f"{row['t_alpha']:.4g}" in text and repr(res) == text
    ds = res.to_dataset()
    assert ds.attrs["riskmodel_kind"] == "alpha_test"
    back = rm.load(rm.save(res, tmp_path / "alpha.nc"))
    assert isinstance(back, AlphaTest)
    pd.testing.assert_frame_equal(back.table, res.table, check_exact=True)
    assert list(back.fits) == ["CAPM", "FF3"]
    for name, fit in res.fits.items():
        other = back.fits[name]
        assert other.names == fit.names and (other.r2, other.n_obs, other.lags) == (fit.r2, fit.n_obs, fit.lags)
        for arr in ("coef", "cov", "resid", "fitted"):
            assert np.array_equal(getattr(other, arr), getattr(fit, arr)), (name, arr)
        pd.testing.assert_index_equal(other.index, fit.index, check_exact=True, check_freq=False)
        np.testing.assert_array_equal(other.se, fit.se)
    assert back.summary() == text


def test_attribution_summary_and_save_load_round_trip(tmp_path):
    g, f = _world(9, n=300, alpha=1e-4)
    att = rm.attribution(g, f, start="2010-03-01", lags=3)
    text = att.summary()
    n = len(att.explained)
    assert text.startswith(f"Attribution: {n} dates (2010-03-01..{att.explained.index[-1]:%Y-%m-%d}) on 3 factor(s)")
    assert f"alpha (daily) {att.alpha:.3g}, R² {att.r2:.3f}" in text
    assert all(f"{v:.4g}" in text for v in att.exposures) and repr(att) == text
    ds = att.to_dataset()
    assert ds.attrs["riskmodel_kind"] == "attribution"
    back = rm.load(rm.save(att, tmp_path / "attribution.nc"))
    assert isinstance(back, Attribution)
    assert (back.alpha, back.r2) == (att.alpha, att.r2)
    for name in ("exposures", "t_stats", "explained", "unexplained"):
        pd.testing.assert_series_equal(getattr(back, name), getattr(att, name), check_exact=True, check_freq=False)
    assert back.summary() == text


# --- issue 17: the faulty date or factor is named ---------------------------------------------


def _capm(n: int = 300, seed: int = 4):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2015-01-05", periods=n)
    factors = pd.DataFrame({"market": rng.normal(0, 0.01, n), "size": rng.normal(0, 0.005, n)}, index=idx)
    g = pd.Series(0.5 * factors["market"].to_numpy() + rng.normal(0, 0.005, n), idx)
    return g, factors


def test_duplicate_dates_are_named():
    g, factors = _capm()
    twice = pd.concat([factors, factors.iloc[[4]]])
    with pytest.raises(rm.AlignmentError, match=r"'capm' has duplicate dates \(2015-01-09\)"):
        rm.alpha_test(g, {"capm": twice})
    with pytest.raises(rm.AlignmentError, match=r"returns have duplicate dates \(2015-01-09\)"):
        rm.alpha_test(pd.concat([g, g.iloc[[4]]]), {"capm": factors})


def test_an_infinite_factor_is_named_with_its_date():
    g, factors = _capm()
    factors.iloc[4, 0] = np.inf
    with pytest.raises(rm.NonFiniteError, match=r"factor 'market' has an infinite value on 2015-01-09"):
        rm.alpha_test(g, {"capm": factors})


def test_an_empty_factor_is_named():
    g, factors = _capm()
    with pytest.raises(rm.InsufficientDataError, match=r"'capm': factor 'size' has no value"):
        rm.alpha_test(g, {"capm": factors.assign(size=np.nan)})
    with pytest.raises(rm.InsufficientDataError, match=r"'capm' has no rows"):
        rm.alpha_test(g, {"capm": factors.iloc[:0]})


def test_a_factor_with_some_nan_is_still_fitted_on_the_common_dates():
    g, factors = _capm()
    factors.iloc[:10, 1] = np.nan
    assert rm.alpha_test(g, {"capm": factors}).table.loc["capm", "n_obs"] == 290
