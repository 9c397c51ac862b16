"""factor_from_signal: the seeds' formula, neutrality, the spend story, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.research.factor_from_signal import SignalFactor


@pytest.fixture(scope="module")
def spend_world():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        return rm.simulate(n_stocks=400, n_days=900, seed=3, spend=True)


@pytest.fixture(scope="module")
def growth(spend_world):
    return rm.yoy_log_growth(spend_world["spend"], window=90)


def test_single_factor_return_is_the_seeds_formula(spend_world, growth):
    sig = rm.factor_from_signal(growth, spend_world, controls=["size"], industry="industry")
    g = sig.exposure.shift(date=1).to_numpy()
    r = spend_world["returns"].to_numpy()
    for t in np.flatnonzero(np.isfinite(sig.returns.to_numpy()))[::50]:
        held = np.isfinite(g[t])
        expected = np.nansum(g[t, held] * np.nan_to_num(r[t, held])) / np.sum(g[t, held] ** 2)
        np.testing.assert_allclose(sig.returns.to_numpy()[t], expected, rtol=1e-12)
    # the factor return is the return of the factor portfolio
    pnl = (sig.weights * spend_world["returns"].fillna(0.0)).sum("stock")
    ok = np.isfinite(sig.returns)
    np.testing.assert_allclose(pnl[ok], sig.returns[ok], rtol=1e-12, atol=1e-15)


def test_book_is_neutral_every_day(spend_world, growth):
    for weights in [None, "sqrt_cap"]:
        sig = rm.factor_from_signal(growth, spend_world, controls=["size", "value"], industry="industry", weights=weights)
        exposures = sig.control_exposures.to_numpy()
        assert exposures.shape[1] == 2 + len(np.unique(spend_world["industry"].to_numpy()))
        gross = np.abs(sig.weights).sum("stock").to_numpy()[:, None]
        assert np.nanmax(np.abs(exposures) / np.where(gross > 0, gross, 1.0)) < 1e-10


def test_model_mode_matches_its_mimicking_portfolio(spend_world, growth):
    small = spend_world.isel(date=slice(400, 460))
    sig = rm.factor_from_signal(growth.isel(date=slice(400, 460)), small, controls=["size"], industry="industry", mode="model")
    pnl = (sig.weights * small["returns"].fillna(0.0)).sum("stock")
    ok = np.isfinite(sig.returns)
    assert ok.sum() > 50
    np.testing.assert_allclose(pnl[ok], sig.returns[ok], rtol=1e-10, atol=1e-14)
    assert np.nanmax(np.abs(sig.control_exposures.to_numpy())) < 1e-10


def test_spend_story_size_explains_the_raw_alpha(spend_world, growth):
    fit = rm.FactorRiskModel(covariance=False, progress=False).fit(spend_world)
    lists = {"market": fit.factor_returns.sel(factor=["market"]), "market+size": fit.factor_returns.sel(factor=["market", "size"])}
    raw = rm.alpha_test(rm.factor_from_signal(growth, spend_world, controls=None, industry=None).returns, lists).table
    neutral = rm.alpha_test(rm.factor_from_signal(growth, spend_world, controls=["size"], industry="industry").returns, lists).table
    # the raw signal loads on size: adding size explains much of its variance and shrinks its alpha
    assert raw.loc["market+size", "r2"] > 0.2
    assert abs(raw.loc["market+size", "t[size]"]) > 5
    assert abs(raw.loc["market+size", "alpha"]) < abs(raw.loc["market", "alpha"])
    # the neutral signal is not explained by size, and keeps the true premium within 2 s.e.
    assert neutral.loc["market+size", "r2"] < 0.05
    premium = spend_world.attrs["spend_premium"] / 252
    assert abs(neutral.loc["market+size", "alpha"] - premium) < 2 * neutral.loc["market+size", "se_alpha"]


def test_no_spread_day_gives_zero(spend_world):
    flat = xr.full_like(spend_world["returns"], 0.05).where(spend_world["returns"].notnull() | True)
    sig = rm.factor_from_signal(flat, spend_world, controls=None, industry=None)
    assert np.nanmax(np.abs(sig.returns.to_numpy())) == 0.0
    assert np.nanmax(np.abs(sig.weights.to_numpy())) == 0.0


def test_turnover_and_deciles(spend_world, growth):
    sig = rm.factor_from_signal(growth, spend_world, controls=["size"], industry="industry")
    assert float(sig.turnover.max()) <= 1.0 + 1e-12
    assert sig.deciles.returns.dims == ("date",)
    assert "decile long-short" in sig.summary()


def test_bad_input(spend_world, growth):
    with pytest.raises(rm.AlignmentError, match=r"signal: stock ids differ from the panel \(missing \['S0050'"):
        rm.factor_from_signal(growth.isel(stock=slice(0, 50)), spend_world, controls=None, industry=None)
    with pytest.raises(rm.MissingVariableError, match="'quality'"):
        rm.factor_from_signal(growth, spend_world, controls=["quality"], industry=None)
    with pytest.raises(rm.InvalidParameterError, match="mode"):
        rm.factor_from_signal(growth, spend_world, mode="fancy")
    with pytest.raises(rm.DimensionError):
        rm.factor_from_signal(growth.isel(date=0), spend_world)


@pytest.mark.parametrize("controls", [["size"], None])
def test_save_load_round_trip_and_summary(spend_world, growth, tmp_path, controls):
    world = spend_world.isel(date=slice(300, 420))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)  # names without a size
        sig = rm.factor_from_signal(growth.isel(date=slice(300, 420)), world, controls=controls,
                                    industry="industry" if controls else None, n_quantiles=5, lag=2)
    text = sig.summary()
    r = sig.returns.to_series().dropna()
    assert text.startswith(f"SignalFactor (single): {r.size} daily returns, ann. mean {r.mean() * 252:.2%}")
    assert f"Sharpe {r.mean() / r.std() * np.sqrt(252):.2f}" in text and "mean turnover" in text
    assert repr(sig) == text
    ds = sig.to_dataset()
    assert ds.attrs["riskmodel_kind"] == "signal_factor" and ds.attrs["mode"] == "single"
    back = rm.load(rm.save(sig, tmp_path / "signal.nc"))
    assert isinstance(back, SignalFactor)
    assert (back.mode, back.n_quantiles, back.lag) == ("single", 5, 2)
    for name in ("exposure", "returns", "weights", "control_exposures", "r2", "stock_returns"):
        a, b = getattr(sig, name), getattr(back, name)
        assert a.name == b.name and a.dims == b.dims and a.dtype == b.dtype, name
        assert np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True), name
        for dim in a.dims:
            assert np.array_equal(a[dim].to_numpy(), b[dim].to_numpy()), (name, dim)
    assert back.exposure.attrs == sig.exposure.attrs  # neutralise's counts and control names
    assert back.summary() == text
    np.testing.assert_array_equal(back.deciles.returns.to_numpy(), sig.deciles.returns.to_numpy())


def test_a_signal_given_by_name_says_what_to_pass(spend_world):
    """Issue 17: a str is not a signal; the message says it got a str and to pass panel['value']."""
    with pytest.raises(rm.VariableTypeError, match=r"got the str 'value'.*panel\['value'\]"):
        rm.factor_from_signal("value", spend_world)
