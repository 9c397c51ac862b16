"""Time-series factor model: kernel vs numpy twin, statsmodels OLS/WLS, known truth, protocol."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import AlignmentError, InsufficientDataError, InvalidParameterError
from riskmodel.models.timeseries import FittedTimeSeriesModel, refit_schedule, ts_loadings
from tests.kernels.twins.timeseries import ts_loadings_twin as _kernel_twin

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(eigen_sims=0)  # the eigenfactor Monte Carlo is tested in test_factor_cov.py


# ---------------------------------------------------------------------------------------
# numpy twin of riskmodel.kernels.timeseries.ts_loadings_kernel: a per-stock lstsq loop
# ---------------------------------------------------------------------------------------


def ts_loadings_twin(returns, x, *, window=None, half_life=None, min_obs=60, schedule):
    """The kernel registry's per-stock lstsq twin, with the model's settings (a half-life
    instead of a decay, no window = all history) and its outputs by name."""
    T = returns.shape[0]
    decay = 1.0 if half_life is None else 0.5 ** (1.0 / half_life)
    out = _kernel_twin(returns, x, T + 1 if window is None else window, decay, min_obs, np.asarray(schedule))
    out["residuals"] = out.pop("resid")
    return out


def _world(seed=0, T=260, N=30, k=3, missing=0.03):
    """Returns with known intercepts and loadings on k Gaussian factors, NaNs, a late listing."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal((T, k))
    B = rng.normal(1.0, 0.5, (N, k))
    a = 0.0005 * rng.standard_normal(N)
    vol = 0.01 * np.exp(0.3 * rng.standard_normal(N))
    r = a + x @ B.T + vol * rng.standard_normal((T, N))
    r[rng.random((T, N)) < missing] = np.nan
    r[: T // 2, 0] = np.nan  # a listing half way
    return r, x, B, a, vol


@pytest.mark.parametrize(
    "settings",
    [dict(), dict(window=60), dict(half_life=40.0), dict(window=80, half_life=30.0)],
    ids=["expanding", "rolling", "ewma", "rolling-ewma"],
)
def test_kernel_matches_numpy_twin(settings):
    r, x, *_ = _world(seed=1)
    x[17] = np.nan  # a date without factor returns: skipped for every stock
    schedule = refit_schedule(r.shape[0], 7)
    got = ts_loadings(r, x, min_obs=40, schedule=schedule, **settings)
    want = ts_loadings_twin(r, x, min_obs=40, schedule=schedule, **settings)
    for name in ("loadings", "intercept", "resid_var", "residuals"):
        np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(want[name]), err_msg=name)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(got["n_obs"], want["n_obs"])
    assert np.isfinite(got["loadings"][-1]).all()


def test_min_obs_rule_and_carry_forward():
    r, x, *_ = _world(seed=2)
    schedule = refit_schedule(r.shape[0], 10)
    got = ts_loadings(r, x, min_obs=50, schedule=schedule)
    enough = got["n_obs"] >= 50
    assert np.isfinite(got["loadings"]).all(axis=2)[enough].all()
    assert np.isnan(got["loadings"]).all(axis=2)[~enough].all()
    # stock 0 lists at T/2: no loadings before 50 valid days after its listing
    first = schedule[np.argmax(enough[:, 0])]
    assert np.isfinite(r[:first + 1, 0]).sum() >= 50 > np.isfinite(r[: schedule[np.argmax(enough[:, 0]) - 1] + 1, 0]).sum()


# ---------------------------------------------------------------------------------------
# statsmodels OLS / WLS, on real and simulated data
# ---------------------------------------------------------------------------------------


def _statsmodels_check(r, x, t, n, *, window=None, half_life=None, got, pos):
    sm = pytest.importorskip("statsmodels.api")
    rows = np.arange(0 if window is None else max(0, t - window + 1), t + 1)
    y = r[rows, n]
    ok = np.isfinite(y) & np.isfinite(x[rows]).all(axis=1)
    X = sm.add_constant(x[rows[ok]], has_constant="add")
    if half_life is None:
        res = sm.OLS(y[ok], X).fit()
        expected_var = res.mse_resid
    else:
        w = 0.5 ** ((t - rows[ok]) / half_life)
        res = sm.WLS(y[ok], X, weights=w).fit()
        e = res.resid
        expected_var = (w * e**2).sum() / (w.sum() - X.shape[1] * (w**2).sum() / w.sum())
    scale = np.abs(res.params[1:]).max()
    np.testing.assert_allclose(got["loadings"][pos, n], res.params[1:], rtol=0, atol=1e-10 * max(scale, 1.0))
    np.testing.assert_allclose(got["intercept"][pos, n], res.params[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["resid_var"][pos, n], expected_var, rtol=1e-8)


@pytest.mark.parametrize("settings", [dict(), dict(half_life=63.0), dict(window=120)], ids=["ols", "wls-ewma", "rolling"])
def test_loadings_equal_statsmodels_real_data(shared_data_dir, settings):
    from riskmodel.data.datasets import load_ff_factors, load_us_equities

    panel = load_us_equities(shared_data_dir, start="2008-01-01", end="2009-03-31")
    ff = load_ff_factors(shared_data_dir)[["mkt_rf", "smb", "hml", "rmw", "cma", "mom"]]
    rng = np.random.default_rng(0)
    stocks = np.sort(rng.choice(panel.sizes["stock"], 36, replace=False))
    panel = panel.isel(stock=stocks)
    ts = rm.TimeSeriesFactorModel(min_obs=60, refit_every=25, **settings, **FAST).fit(panel, ff)
    r = ts.returns.to_numpy()
    x = ts.factor_returns.to_numpy()
    got = {name: ts.dataset[name].to_numpy() for name in ("loadings", "intercept", "resid_var")}
    rows = ts._refit_rows()
    checked = 0
    for pos in (3, 6, len(rows) - 1):
        for n in range(r.shape[1]):
            if np.isfinite(got["loadings"][pos, n]).all():
                _statsmodels_check(r, x, rows[pos], n, got=got, pos=pos, **settings)
                checked += 1
    assert checked >= 60


@pytest.mark.parametrize("settings", [dict(), dict(half_life=40.0)], ids=["ols", "wls-ewma"])
def test_loadings_equal_statsmodels_simulated(settings):
    r, x, *_ = _world(seed=3, T=300, N=12, k=4)
    schedule = refit_schedule(300, 50)
    got = ts_loadings(r, x, min_obs=60, schedule=schedule, **settings)
    for pos in range(2, len(schedule)):
        for n in range(12):
            if np.isfinite(got["loadings"][pos, n]).all():
                _statsmodels_check(r, x, schedule[pos], n, got=got, pos=pos, **settings)


def test_known_loadings_recovered_within_standard_errors():
    T, N, k = 1000, 400, 3
    r, x, B, a, vol = _world(seed=7, T=T, N=N, k=k, missing=0.0)
    got = ts_loadings(r, x, min_obs=60, schedule=np.array([T - 1]))
    X = np.column_stack([np.ones(T), x])
    cov_unit = np.linalg.inv(X.T @ X)[1:, 1:]
    keep = np.arange(1, N)  # stock 0 has half the history
    se = np.sqrt(got["resid_var"][0, keep, None] * np.diag(cov_unit)[None, :])
    z = (got["loadings"][0, keep] - B[keep]) / se
    assert abs(z.mean()) < 0.1
    assert abs(z.std() - 1.0) < 0.06
    # residual variances recover the specific variances
    assert np.median(got["resid_var"][0, keep] / vol[keep] ** 2) == pytest.approx(1.0, abs=0.02)


# ---------------------------------------------------------------------------------------
# the model: alignment, timing, protocol
# ---------------------------------------------------------------------------------------


def _sim_panel(seed=0, n_stocks=150, n_days=420):
    panel = rm.simulate(n_stocks=n_stocks, n_days=n_days, seed=seed)
    f = panel["true_factor_returns"].rename(true_factor="factor")
    return panel, f


@pytest.fixture(scope="module")
def sim_fit():
    panel, f = _sim_panel()
    return panel, f, rm.TimeSeriesFactorModel(min_obs=60, half_life=126.0, **FAST).fit(panel, f)


def test_dataframe_and_dataarray_give_the_same_fit(sim_fit):
    panel, f, ts = sim_fit
    other = rm.TimeSeriesFactorModel(min_obs=60, half_life=126.0, **FAST).fit(panel, f.to_pandas())
    xr.testing.assert_identical(ts.dataset, other.dataset)
    assert ts.factors == [str(v) for v in f["factor"].to_numpy()]


def test_factor_returns_on_part_of_the_dates_use_the_overlap(sim_fit):
    panel, f, _ = sim_fit
    part = f.isel(date=slice(50, None)).to_pandas()
    longer = pd.concat([part, pd.DataFrame(0.0, index=pd.bdate_range("2030-01-01", periods=3), columns=part.columns)])
    ts = rm.TimeSeriesFactorModel(min_obs=60, **FAST).fit(panel, longer)
    assert ts.dates.equals(pd.DatetimeIndex(panel["date"].to_numpy()[50:]))
    np.testing.assert_array_equal(ts.returns.to_numpy(), panel["returns"].to_numpy()[50:])


def test_alignment_errors_name_dates(sim_fit):
    panel, f, _ = sim_fit
    frame = f.to_pandas()
    shifted = frame.set_axis(frame.index + pd.Timedelta(days=20000), axis=0)
    with pytest.raises(AlignmentError, match="share no date"):
        rm.TimeSeriesFactorModel(**FAST).fit(panel, shifted)
    gap = frame.drop(frame.index[100])
    with pytest.raises(AlignmentError, match=str(frame.index[100].date())):
        rm.TimeSeriesFactorModel(**FAST).fit(panel, gap)
    extra = pd.concat([frame, pd.DataFrame(0.0, index=[frame.index[100] + pd.Timedelta(hours=12)], columns=frame.columns)]).sort_index()
    with pytest.raises(AlignmentError, match="not in the panel"):
        rm.TimeSeriesFactorModel(**FAST).fit(panel, extra)


def test_parameter_errors():
    with pytest.raises(InvalidParameterError, match="half_life"):
        rm.TimeSeriesFactorModel(half_life=-1)
    with pytest.raises(InvalidParameterError, match="window"):
        rm.TimeSeriesFactorModel(window=1)
    with pytest.raises(InvalidParameterError, match="unknown setting"):
        rm.TimeSeriesFactorModel(halflife=3)
    panel, f = _sim_panel(n_days=100)
    with pytest.raises(InsufficientDataError, match="min_obs"):
        rm.TimeSeriesFactorModel(min_obs=10, **FAST).fit(panel, f)  # 14 factors + intercept


def test_nan_factor_date_is_skipped(sim_fit):
    panel, f, _ = sim_fit
    g = f.copy()
    g[200] = np.nan
    ts = rm.TimeSeriesFactorModel(min_obs=60, **FAST).fit(panel, g)
    assert np.isnan(ts.residuals.isel(date=200)).all()
    assert np.isfinite(ts.residuals.isel(date=201)).any()


def test_no_look_ahead(sim_fit):
    panel, f, _ = sim_fit
    full = rm.TimeSeriesFactorModel(min_obs=60, window=200, **FAST).fit(panel, f)
    cut = 300
    part = rm.TimeSeriesFactorModel(min_obs=60, window=200, **FAST).fit(panel.isel(date=slice(0, cut + 1)), f)
    np.testing.assert_array_equal(part.residuals.to_numpy(), full.residuals.to_numpy()[: cut + 1])
    common = part.refit_dates[:-1]  # the truncated fit's last refit is its own last date
    np.testing.assert_array_equal(part.loadings.sel(refit=common).to_numpy(), full.loadings.sel(refit=common).to_numpy())
    np.testing.assert_array_equal(part.factor_cov.to_numpy(), full.factor_cov.to_numpy()[: cut + 1])
    np.testing.assert_array_equal(part.specific_var.to_numpy(), full.specific_var.to_numpy()[: cut + 1])


def test_covariance_dense_reference_and_exposures_as_of_date(sim_fit):
    _, _, ts = sim_fit
    date = ts.dates[333]
    cov = ts.covariance(date)
    pos = int(np.searchsorted(ts._refit_rows(), 333, side="right")) - 1
    assert ts.refit_dates[pos] <= date < ts.refit_dates[pos + 1]
    B = ts.loadings.isel(refit=pos).to_pandas().loc[cov.stocks].to_numpy()
    np.testing.assert_array_equal(cov.exposures.to_numpy(), B)
    F = ts.factor_cov.sel(date=date).to_numpy()
    d = ts.specific_var.sel(date=date).to_pandas().loc[cov.stocks].to_numpy()
    w = np.random.default_rng(0).standard_normal(len(cov.stocks))
    dense = B @ F @ B.T + np.diag(d)
    np.testing.assert_allclose(np.asarray(cov.matvec(w)), dense @ w, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(float(cov.variance(w)), w @ dense @ w, rtol=1e-12)
    # the covariance holds exactly the stocks of forecast_mask that day
    assert set(cov.stocks) == set(ts.stocks[ts.forecast_mask()[333]])


def test_portfolio_factor_exposures_match_dense(sim_fit):
    _, _, ts = sim_fit
    rng = np.random.default_rng(1)
    weights = rng.random((4, len(ts.stocks)))
    valid = ts.forecast_mask()
    got = ts.portfolio_factor_exposures(weights, valid, chunk=7)
    rows = np.array([0, 100, 250, len(ts.dates) - 1])
    some = ts.portfolio_factor_exposures(weights, valid, rows, chunk=3)
    for i, t in enumerate(rows):
        B = np.nan_to_num(ts.exposure_matrix(ts.dates[t]).to_numpy())
        np.testing.assert_allclose(got[t], (weights * valid[t]) @ B, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(some[i], got[t])


def random_portfolio_bias(fit, n=40, start=200, seed=0):
    """Bias of random long-only portfolios from the protocol members, dates aligned by row."""
    rng = np.random.default_rng(seed)
    returns = fit.returns.to_numpy()
    n_stocks = returns.shape[1]
    weights = np.zeros((n, n_stocks))
    for j in range(n):
        names = rng.choice(n_stocks, n_stocks // 2, replace=False)
        weights[j, names] = rng.uniform(0.5, 1.5, names.size)
    weights /= weights.sum(axis=1, keepdims=True)
    counted = np.zeros(returns.shape, dtype=bool)  # forecast at t - 1 and a return at t
    counted[1:] = fit.forecast_mask()[:-1] & np.isfinite(returns[1:])
    valid_prev = np.zeros_like(counted)
    valid_prev[:-1] = counted[1:]
    x = fit.portfolio_factor_exposures(weights, valid_prev)  # (T, P, k), row t = forecast at t
    F = fit.factor_cov.to_numpy()
    d = np.nan_to_num(fit.specific_var.to_numpy())
    t = np.arange(start, returns.shape[0])
    var = np.einsum("tpi,tij,tpj->tp", x[t - 1], F[t - 1], x[t - 1]) + (counted[t] * d[t - 1]) @ (weights**2).T
    realised = (counted[t] * np.nan_to_num(returns[t])) @ weights.T
    return np.std(realised / np.sqrt(var), axis=0, ddof=1)


def test_full_factor_set_is_calibrated(sim_fit):
    _, _, ts = sim_fit
    bias = random_portfolio_bias(ts)
    assert 0.9 < bias.mean() < 1.2  # all true factors given: calibrated up to loading noise


def test_bias_statistics_and_audit_run(sim_fit):
    _, _, ts = sim_fit
    table = rm.bias_statistics(ts, ["pure_factors", "random"]).by_family()
    assert 0.85 < table.loc["pure_factors", "median_bias"] < 1.2
    assert table.loc["random", "n"] == 100
    audit = rm.audit_residuals(ts)
    assert isinstance(audit, rm.ResidualAudit)
    # the audit reads this model's residuals: its stocks and dates are the model's
    assert set(audit.stocks) <= set(ts.stocks) and audit.n_stocks + audit.n_excluded == len(ts.stocks)
    assert set(pd.DatetimeIndex(audit.dates)) <= set(ts.dates)
    # every true factor is in the model: at most one component above the null, nothing mis-forecast out of sample
    assert audit.n_significant <= 1 and audit.flagged == []


def test_bias_statistics_random_portfolios_calibrated(sim_fit):
    _, _, ts = sim_fit
    table = rm.bias_statistics(ts, ["random"]).by_family()
    assert 0.9 < table.loc["random", "mean_bias"] < 1.2


def test_persistence_round_trip(sim_fit, tmp_path):
    _, _, ts = sim_fit
    again = FittedTimeSeriesModel.from_dataset(ts.to_dataset())
    xr.testing.assert_identical(again.dataset, ts.dataset)
    path = rm.save(ts, tmp_path / "ts.nc")
    loaded = rm.load(path)
    assert type(loaded) is FittedTimeSeriesModel
    np.testing.assert_array_equal(loaded.loadings.to_numpy(), ts.loadings.to_numpy())
    w = np.full(len(ts.covariance().stocks), 1.0 / len(ts.covariance().stocks))
    assert float(loaded.covariance().variance(w)) == float(ts.covariance().variance(w))
    assert loaded.summary() == ts.summary()


def test_result_api_round_trip_and_summary(sim_fit, tmp_path):
    panel, _, ts = sim_fit
    assert ts.kind == "fitted_timeseries_model"
    back = rm.load(rm.save(ts, tmp_path / "m.nc"))
    assert type(back) is FittedTimeSeriesModel
    for name in ("factor_returns", "residuals", "loadings", "intercept", "factor_cov", "specific_var"):
        np.testing.assert_array_equal(back.dataset[name].to_numpy(), ts.dataset[name].to_numpy())
    text = ts.summary()
    assert "fitted_timeseries_model" in text.splitlines()[0]
    assert f"{panel.sizes['stock']} stocks" in text and f"{len(ts.dates)} dates" in text
    r, u = ts.returns.to_numpy(), ts.residuals.to_numpy()
    both = np.isfinite(r) & np.isfinite(u)
    ss_r, ss_u = np.where(both, r**2, 0).sum(axis=1), np.where(both, u**2, 0).sum(axis=1)
    ok = ss_r > 0
    assert ts.mean_r2() == pytest.approx(np.mean(1 - ss_u[ok] / ss_r[ok]), rel=1e-12)
    assert 0.0 < ts.mean_r2() < 1.0  # out of sample, the given factors still explain returns
    assert f"mean R² {ts.mean_r2():.3f}" in text
    assert repr(ts) == text and back.summary() == text


def test_benchmark_toy_size(tmp_path):
    out = tmp_path / "ts.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_timeseries.py"), "--toy", "--output", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(out.read_text())
    assert result["timeseries"]["max_abs_diff_vs_lstsq"] < 1e-9
    assert {"timeseries", "statistical"} <= set(result)


def test_fit_of_a_non_panel_is_a_dimension_error_naming_the_type():
    """Issue 17: the DimensionError validate_panel raises, not a plain PanelError."""
    factors = pd.DataFrame({"mkt": [0.01, 0.02]}, index=pd.bdate_range("2020-01-01", periods=2))
    for given, name in [(None, "NoneType"), (factors, "DataFrame")]:
        with pytest.raises(rm.DimensionError, match=rf"TimeSeriesFactorModel.fit.*got {name}"):
            rm.TimeSeriesFactorModel(progress=False).fit(given, factors)
