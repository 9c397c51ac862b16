"""The construction backtest: one call, several estimators, a labelled result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.construction.backtest import ConstructionBacktest, construction_backtest
from riskmodel.construction.estimators import EqualWeight, SklearnShrinkage
from riskmodel.errors import InvalidParameterError, ModelFileError

import cvxpy  # noqa: E402,F401 - in the test extra: a missing solver fails, not skips


@pytest.fixture(scope="module")
def setup():
    panel = rm.simulate(n_stocks=60, n_days=260, seed=1, n_industries=4)
    fit = rm.FactorRiskModel(progress=False, eigen_sims=0, vol_half_life=21, corr_half_life=42,
                             specific_half_life=21).fit(panel)
    est = {"model": fit, "LW": SklearnShrinkage("ledoit_wolf", 60), "1/N": EqualWeight(60)}
    bt = construction_backtest(panel["returns"], est, window=60, rebalance=40, start=panel["date"].values[150])
    return panel, fit, bt


def test_backtest_reports_every_estimator_and_portfolio(setup):
    panel, fit, bt = setup
    table = bt.table()
    assert set(table.index.get_level_values("estimator")) == {"model", "LW", "1/N"}
    assert set(table.index.get_level_values("portfolio")) == {"gmv", "gmv_long_only", "alpha"}
    assert np.isfinite(table["realised vol"]).all() and np.isfinite(table["predicted vol"]).all()
    # 1/N: weights 1/N whatever the portfolio type (gmv) and no turnover within a fixed universe
    assert table.loc[("gmv", "1/N"), "gross"] == pytest.approx(1.0)
    # long-only gross is 1, unconstrained gross >= 1
    assert np.allclose(table.xs("gmv_long_only")["gross"], 1.0)
    assert (table.xs("gmv")["gross"] >= 1 - 1e-9).all()
    assert "ConstructionBacktest" in bt.summary() and "realised vol" in repr(bt)


def test_backtest_realised_returns_are_the_held_weights(setup):
    panel, fit, bt = setup
    ds = bt.dataset
    t0 = pd.Timestamp(ds["rebalance"].values[0])
    cov = fit.covariance(t0)
    dates = pd.DatetimeIndex(panel["date"].values)
    row = dates.get_loc(t0)
    window = panel["returns"].isel(date=slice(row - 59, row + 1))
    complete = np.isfinite(window.to_numpy()).all(axis=0)
    ids = [s for s in np.asarray(panel["stock"].values).astype(str)[complete] if s in set(np.asarray(cov.stocks).astype(str))]
    w = np.asarray(cov.subset(ids).min_variance_weights())
    next_day = np.nan_to_num(panel["returns"].sel(stock=ids).isel(date=row + 1).to_numpy())
    assert float(ds["realised"].sel(estimator="model", portfolio="gmv").isel(date=0)) == pytest.approx(next_day @ w, rel=1e-10)
    assert float(ds["predicted"].sel(estimator="model", portfolio="gmv").isel(date=0)) == pytest.approx(float(cov.subset(ids).volatility(w)), rel=1e-10)


def test_backtest_round_trips_and_subperiods(setup, tmp_path):
    panel, fit, bt = setup
    again = ConstructionBacktest.from_dataset(bt.to_dataset())
    pd.testing.assert_frame_equal(again.table(), bt.table())
    path = rm.save(bt, tmp_path / "bt.nc")
    loaded = rm.load(path)
    assert type(loaded) is ConstructionBacktest
    pd.testing.assert_frame_equal(loaded.table(), bt.table())
    half = pd.Timestamp(bt.dataset["date"].values[len(bt.dataset["date"]) // 2])
    first = bt.table(None, half)
    assert not first["realised vol"].equals(bt.table()["realised vol"])
    with pytest.raises(ModelFileError):
        ConstructionBacktest.from_dataset(xr.Dataset(attrs={"riskmodel_kind": "other"}))


def test_backtest_rejects_bad_arguments(setup):
    panel, fit, _ = setup
    with pytest.raises(InvalidParameterError):
        construction_backtest(panel["returns"], {})
    with pytest.raises(InvalidParameterError):
        construction_backtest(panel["returns"], {"m": fit}, portfolios=["max_sharpe"])


def test_figure(setup, tmp_path):
    import matplotlib  # noqa: F401 - a core dependency
    from riskmodel.report.construction_figures import plot_construction_backtest

    fig = plot_construction_backtest(setup[2], window=40, path=str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert len(fig.axes) == 2
