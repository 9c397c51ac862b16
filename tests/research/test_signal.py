"""trailing_sum / yoy_log_growth against a pandas rolling reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import DimensionError, InvalidParameterError, VariableTypeError


def _panel(seed: int = 0, T: int = 400, N: int = 7, gap: float = 0.1) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    x = np.exp(rng.normal(size=(T, N)) * 0.3 + 5.0)
    x[rng.random((T, N)) < gap] = np.nan
    x[:, 0] = np.nan  # a stock that is never observed
    x[150:260, 1] = np.nan  # a long outage
    return xr.DataArray(
        x,
        dims=("date", "stock"),
        coords={"date": pd.bdate_range("2020-01-01", periods=T), "stock": [f"S{i}" for i in range(N)]},
        name="spend",
    )


def _ref_trailing(x: xr.DataArray, window: int, min_periods: int) -> np.ndarray:
    df = x.to_pandas()
    return (df.rolling(window, min_periods=min_periods).mean() * window).to_numpy()


@pytest.mark.parametrize("window,min_periods", [(90, 68), (20, 20), (5, 1), (1, 1)])
def test_trailing_sum_matches_pandas(window: int, min_periods: int) -> None:
    x = _panel()
    got = rm.trailing_sum(x, window=window, min_periods=min_periods)
    ref = _ref_trailing(x, window, min_periods)
    assert got.dims == ("date", "stock")
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(ref))
    np.testing.assert_allclose(got.values, ref, rtol=1e-10, equal_nan=True)
    assert np.isnan(got.values[:, 0]).all()
    # a window with fewer than min_periods observations is NaN, e.g. inside the long outage
    if window == 90:
        assert np.isnan(got.values[259, 1])


def test_trailing_sum_default_min_periods_and_transposed_input() -> None:
    x = _panel(seed=1)
    got = rm.trailing_sum(x.transpose("stock", "date"))
    ref = _ref_trailing(x, 90, 68)
    assert got.dims == ("date", "stock")
    assert got.attrs["min_periods"] == 68
    np.testing.assert_allclose(got.values, ref, rtol=1e-10, equal_nan=True)


def test_yoy_log_growth_matches_pandas() -> None:
    x = _panel(seed=2, T=500)
    x[:, 3] = -x[:, 3]  # non-positive totals: the log is undefined -> NaN
    got = rm.yoy_log_growth(x, window=60, lag=252, min_periods=45)
    s = pd.DataFrame(_ref_trailing(x, 60, 45))
    logs = np.log(s.where(s > 0))
    ref = (logs - logs.shift(252)).to_numpy()
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(ref))
    np.testing.assert_allclose(got.values, ref, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert np.isnan(got.values[:252]).all()
    assert np.isnan(got.values[:, 3]).all()
    assert np.isfinite(got.values[300:, 2]).mean() > 0.9


def test_yoy_log_growth_recovers_constant_growth() -> None:
    T = 700
    rate = 0.15 / 252
    x = xr.DataArray(
        np.exp(rate * np.arange(T))[:, None] * np.array([[1.0, 20.0]]),
        dims=("date", "stock"),
        coords={"date": pd.bdate_range("2019-01-01", periods=T), "stock": ["A", "B"]},
    )
    g = rm.yoy_log_growth(x)
    first = 252 + 90 - 1
    assert np.isnan(g.values[: 252]).all()
    np.testing.assert_allclose(g.values[first:], 0.15, rtol=0, atol=1e-10)


def test_errors() -> None:
    x = _panel()
    with pytest.raises(InvalidParameterError, match="window"):
        rm.trailing_sum(x, window=0)
    with pytest.raises(InvalidParameterError, match="min_periods"):
        rm.trailing_sum(x, window=10, min_periods=11)
    with pytest.raises(InvalidParameterError, match="lag"):
        rm.yoy_log_growth(x, lag=0)
    with pytest.raises(DimensionError, match="spend"):
        rm.trailing_sum(x.rename(stock="ticker"))
    with pytest.raises(VariableTypeError, match="DataArray"):
        rm.trailing_sum(x.values)
    with pytest.raises(VariableTypeError, match="dtype"):
        rm.trailing_sum(x.astype(str))
