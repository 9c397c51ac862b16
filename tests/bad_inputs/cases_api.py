"""Catalogue cases through the Python API: wrong types, wrong objects, labelled inputs that
must be aligned, panels that fit to nothing, settings out of range, file misuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from _bad_inputs_harness import Case
from riskmodel.errors import (
    AlignmentError,
    DataQualityWarning,
    DimensionError,
    InsufficientDataError,
    InvalidParameterError,
    ModelFileError,
    PanelError,
)


def _api(case_id, make, expect, exc=None, names=(), check=None, outputs=()):
    """``make(tmp, env)`` returns the zero-argument call."""
    return Case(case_id, make, expect, tuple(names), exc=exc, check=check, outputs=tuple(outputs))


def _rm():
    import riskmodel as rm

    return rm


def _fit_call(panel_of, **settings):
    return lambda tmp, env: (lambda: _rm().FactorRiskModel(progress=False, **settings).fit(panel_of(env)))


def _edit(fn):
    return lambda env: fn(env.panel.copy(deep=True))


def _set_all(name, value):
    def edit(panel):
        panel[name][:] = value
        return panel

    return edit


# ---------------------------------------------------------------------------------------
# labelled inputs to the covariance
# ---------------------------------------------------------------------------------------
def _reversed_weights(env):
    cov = env.fit.covariance()
    stocks = np.asarray(cov.stocks)
    w = xr.DataArray(np.linspace(1.0, 2.0, stocks.size) / stocks.size, coords={"stock": stocks}, dims="stock")
    return cov, w, w.isel(stock=slice(None, None, -1))


def _operator_reversed(tmp, env):
    def call():
        cov, w, reversed_w = _reversed_weights(env)
        return cov, w, cov.as_linear_operator() @ reversed_w

    return call


def _check_aligned(tmp, env, result):
    """The operator applied to a reversed DataArray gives Σw in the operator's stock order
    (aligned on labels, as ``cov.matvec`` does) -- or it refuses (the case then fails as an
    error, which also counts as a fix if the case is rewritten to ``error``)."""
    cov, w, got = result
    want = np.asarray(cov.matvec(w))
    got = np.asarray(getattr(got, "values", got))
    if isinstance(result[2], xr.DataArray):
        got = np.asarray(result[2].sel(stock=np.asarray(cov.stocks)).values)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _matvec_reversed(tmp, env):
    def call():
        cov, w, reversed_w = _reversed_weights(env)
        return cov, w, cov.matvec(reversed_w)

    return call


def _check_matvec(tmp, env, result):
    cov, w, got = result
    np.testing.assert_allclose(got.sel(stock=np.asarray(cov.stocks)).values, np.asarray(cov.matvec(w)), rtol=1e-12)


def _decompose_unknown(tmp, env):
    def call():
        cov = env.fit.covariance()
        return cov.decompose(pd.Series([0.5, 0.5], index=[str(cov.stocks[0]), "ZZZZ"]))

    return call


def _covariance_at(date):
    return lambda tmp, env: (lambda: env.fit.covariance(date))


COVARIANCE = [
    _api("api-operator-matmul-reversed-dataarray", _operator_reversed, "ok", check=_check_aligned),
    _api("api-matvec-reversed-dataarray", _matvec_reversed, "ok", check=_check_matvec),
    _api("api-decompose-unknown-stock", _decompose_unknown, "error", AlignmentError, ["ZZZZ"]),
    _api("api-covariance-date-not-a-date", _covariance_at("notadate"), "error", PanelError, ["notadate"]),
    _api("api-covariance-date-2099", _covariance_at("2099-12-31"), "error", PanelError, ["2099-12-31"]),
    _api("api-covariance-non-trading-day", _covariance_at("2015-03-07"), "error", PanelError, ["2015-03-07"]),
]


# ---------------------------------------------------------------------------------------
# entry points given the wrong thing
# ---------------------------------------------------------------------------------------
def _call(fn):
    return lambda tmp, env: (lambda: fn(env))


WRONG_OBJECTS = [
    _api("api-fit-none", _call(lambda env: _rm().FactorRiskModel(progress=False).fit(None)), "error", DimensionError,
         ["Dataset", "NoneType"]),
    _api("api-fit-dataframe", _call(lambda env: _rm().FactorRiskModel(progress=False).fit(env.long)), "error",
         DimensionError, ["Dataset", "DataFrame", "panel_from_long"]),
    _api("api-fit-dataarray", _call(lambda env: _rm().FactorRiskModel(progress=False).fit(env.panel["returns"])),
         "error", DimensionError, ["Dataset", "DataArray"]),
    _api("api-statistical-fit-none", _call(lambda env: _rm().StatisticalFactorModel(progress=False).fit(None)), "error",
         DimensionError, ["Dataset"]),
    _api("api-timeseries-fit-none-factors", _call(lambda env: _rm().TimeSeriesFactorModel(progress=False).fit(
        env.panel, None)), "error", PanelError, ["factor_returns"]),
    _api("api-bias-statistics-of-panel", _call(lambda env: _rm().bias_statistics(env.panel)), "error", PanelError,
         ["fitted", "Dataset"]),
    _api("api-audit-residuals-of-panel", _call(lambda env: _rm().audit_residuals(env.panel)), "error", PanelError,
         ["Dataset"]),
    _api("api-audit-residuals-of-none", _call(lambda env: _rm().audit_residuals(None)), "error", PanelError,
         ["NoneType"]),
    _api("api-factor-from-signal-name", _call(lambda env: _rm().factor_from_signal("value", env.panel)), "error",
         PanelError, ["signal", "str"]),
    _api("api-validate-panel-of-dataframe", _call(lambda env: _rm().validate_panel(env.long)), "error", DimensionError,
         ["DataFrame"]),
    _api("api-styles-as-a-string", _call(lambda env: _rm().FactorRiskModel(styles="size")), "error",
         InvalidParameterError, ["styles", "'size'"]),
    _api("api-styles-unknown", _call(lambda env: _rm().FactorRiskModel(styles=["karma"], progress=False).fit(env.panel)),
         "error", PanelError, ["karma"]),
    _api("api-half-life-negative", _call(lambda env: _rm().FactorRiskModel(vol_half_life=-3)), "error",
         InvalidParameterError, ["vol_half_life", "-3"]),
    Case("api-statistical-n-factors-5000", _call(lambda env: _rm().StatisticalFactorModel(
        n_factors=5000, window=60, min_obs=30, progress=False).fit(env.panel)), "error", ("n_factors", "5000"),
         exc=InvalidParameterError, memory_cap=True),
    _api("api-simulate-zero-stocks", _call(lambda env: _rm().simulate(n_stocks=0, n_days=60)), "error",
         InvalidParameterError, ["n_stocks"]),
    _api("api-save-unsavable", lambda tmp, env: (lambda: _rm().save(object(), tmp / "x.nc")), "error",
         InvalidParameterError, ["object"]),
    _api("api-save-onto-directory", lambda tmp, env: ((tmp / "d.nc" / "sub").mkdir(parents=True),
                                                     lambda: _rm().save(env.panel, tmp / "d.nc"))[1], "error",
         ModelFileError, ["d.nc"]),
    _api("api-load-unknown-suffix", lambda tmp, env: (lambda: _rm().load(tmp / "x.txt")), "error",
         InvalidParameterError, ["x.txt"]),
    _api("api-load-missing", lambda tmp, env: (lambda: _rm().load(tmp / "x.nc")), "error", ModelFileError, ["x.nc"]),
]


# ---------------------------------------------------------------------------------------
# panels that fit to a useless model, and plausibility
# ---------------------------------------------------------------------------------------
def _long_with(env, column, row, value):
    frame = env.long.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


def _percent_panel(panel):
    r = panel["returns"]
    panel["returns"] = r / float(np.nanmax(np.abs(r.values))) * 0.95
    return panel


def _zero_cap_panel(panel):
    panel["market_cap"].loc[{"stock": "S0007"}] = 0.0
    return panel


USELESS = [
    _api("api-fit-constant-style", _fit_call(_edit(_set_all("value", 1.5))), "error", InsufficientDataError, ["value"]),
    _api("api-fit-all-nan-style", _fit_call(_edit(_set_all("value", np.nan))), "error", InsufficientDataError,
         ["value"]),
    _api("api-fit-single-stock", _fit_call(_edit(lambda p: p.isel(stock=[0]))), "error", InsufficientDataError,
         ["stock"]),
    _api("api-fit-single-day", _fit_call(_edit(lambda p: p.isel(date=[5]))), "error", InsufficientDataError, ["date"]),
    _api("api-fit-30-days", _fit_call(_edit(lambda p: p.isel(date=slice(0, 30)))), "error", InsufficientDataError,
         ["30"]),
    _api("api-fit-1e308-return", _fit_call(_edit(lambda p: (p["returns"].__setitem__((5, 10), 1e308), p)[1])),
         "error", PanelError, ["returns", "S0010"]),
    _api("api-validate-percent-returns", _call(lambda env: _rm().validate_panel(_percent_panel(
        env.panel.copy(deep=True)))), "error", PanelError, ["returns", "percent"]),
    _api("api-validate-zero-market-cap", _call(lambda env: _rm().validate_panel(_zero_cap_panel(
        env.panel.copy(deep=True)))), "warning", DataQualityWarning, ["market_cap", "S0007"]),
    _api("api-validate-future-date", _call(lambda env: _rm().validate_panel(env.panel.assign_coords(
        date=pd.date_range("2099-01-01", periods=env.panel.sizes["date"], freq="B")))), "error", PanelError,
         ["2099"]),
    _api("api-panel-from-long-abc", _call(lambda env: _rm().panel_from_long(_long_with(env, "returns", 130, "abc"),
                                                                           static=["industry"])), "error", PanelError,
         ["'abc'", "returns", "S0010", "2015-01-06"]),
    _api("api-panel-from-long-impossible-date", _call(lambda env: _rm().panel_from_long(
        _long_with(env, "date", 130, "2015-02-30"), static=["industry"])), "error", PanelError, ["2015-02-30"]),
    _api("api-panel-from-long-padded-ids", _call(lambda env: _rm().panel_from_long(
        env.long.assign(stock=env.long["stock"].str.slice(1)), static=["industry"])), "ok",
         check=lambda tmp, env, p: np.testing.assert_array_equal(p["stock"].values[:2], ["0000", "0001"])),
    _api("api-panel-from-long-integer-ids", _call(lambda env: _rm().panel_from_long(
        env.long.assign(stock=env.long["stock"].str.slice(1).astype(int)), static=["industry"])), "ok",
         check=lambda tmp, env, p: np.testing.assert_array_equal(p["stock"].values[:2], ["0", "1"])),
]


CASES = COVARIANCE + WRONG_OBJECTS + USELESS
