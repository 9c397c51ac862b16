"""Plausibility checks of a panel (issue 17: never accept a mis-scaled input in silence).

``validate_panel``: dates in the future, returns above the stated limit, in percent (from
the cross-sectional spread, or from market caps that move far less than the returns),
above +100 % (warned), zero market caps (warned), cap jumps without a return (warned),
characteristics with no value (warned). ``panel_from_long``: dates that do not parse
and text in a numeric column, named with their row, stock and date. ``add_descriptors``:
a history too short for a descriptor (warned). Simulated panels and the real S&P 500
panel raise none of them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.data import validation
from riskmodel.data.descriptors import HISTORY_NEEDED, add_descriptors
from riskmodel.data.panel import panel_from_long, panel_from_wide, validate_panel
from riskmodel.errors import (
    DataQualityWarning,
    DateOrderError,
    PanelError,
    VariableTypeError,
)

STOCKS = [f"S{i:02d}" for i in range(12)]


def _panel(n_days: int = 40, seed: int = 0, scale: float = 1.0) -> xr.Dataset:
    """Decimal returns (cross-sectional sd 0.02) and caps that follow them."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.02, (n_days, len(STOCKS)))
    returns[0] = np.nan  # the first day has no return, as from prices
    caps = 1e9 * np.exp(np.cumsum(np.log1p(np.nan_to_num(returns)), axis=0)) * rng.uniform(1, 5, len(STOCKS))
    return xr.Dataset(
        {
            "returns": (("date", "stock"), returns * scale),
            "market_cap": (("date", "stock"), caps),
            "value": (("date", "stock"), rng.normal(size=(n_days, len(STOCKS)))),
        },
        coords={"date": pd.bdate_range("2015-01-02", periods=n_days), "stock": STOCKS},
        attrs={"styles": ["value"]},
    )


def _set(ds: xr.Dataset, var: str, i_date: int, i_stock: int, value: float) -> xr.Dataset:
    ds = ds.copy(deep=True)
    ds[var].values[i_date, i_stock] = value
    return ds


def _quality_warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]


def test_clean_panel_passes_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_panel(_panel())


# ---------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------
def test_future_date_is_refused_and_named():
    ds = _panel().assign_coords(date=pd.bdate_range("2099-12-01", periods=40))
    with pytest.raises(PanelError, match="2099-12-01.*position 0"):
        validate_panel(ds)


def test_dates_up_to_the_margin_are_accepted():
    today = pd.Timestamp(np.datetime64("today", "D"))
    last = today + pd.Timedelta(days=validation.FUTURE_MARGIN_DAYS)
    ds = _panel().assign_coords(date=pd.date_range(end=last, periods=40))
    validate_panel(ds)
    later = ds.assign_coords(date=pd.date_range(end=last + pd.Timedelta(days=1), periods=40))
    with pytest.raises(PanelError, match="in the future"):
        validate_panel(later)


# ---------------------------------------------------------------------------------------
# returns
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e308, 101.0])
def test_return_above_the_limit_is_refused(value):
    ds = _set(_panel(), "returns", 5, 3, value)
    with pytest.raises(PanelError, match=r"'returns'.*above 100 .*stock S03, date 2015-01-09"):
        validate_panel(ds)


def test_return_above_100_percent_warns_with_stock_and_date():
    ds = _set(_panel(), "returns", 5, 3, 5.0)
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1
    assert "'returns'" in messages[0] and "stock S03, date 2015-01-09" in messages[0] and "+500%" in messages[0]
    assert not _quality_warnings(lambda: validate_panel(_set(_panel(), "returns", 5, 3, 1.0)))  # exactly +100 %


def test_percent_returns_are_refused_from_the_spread():
    ds = _panel(scale=100.0)  # sd 2: percent
    ds["returns"] = ds["returns"].clip(min=-0.99)  # no value <= -1 gives the scale away
    with pytest.raises(PanelError, match=r"'returns' looks like percent.*median over 39 dates"):
        validate_panel(ds.drop_vars("market_cap"))


def test_percent_returns_of_a_low_volatility_universe_are_refused_from_the_caps():
    ds = _panel(scale=5.0)  # spread 0.1: below the spread limit, but caps move 5x less
    spread, _ = validation._return_spread(ds["returns"])
    assert spread < validation.MAX_RETURN_SPREAD
    with pytest.raises(PanelError, match=r"'returns' looks mis-scaled \(percent\?\).*5\.\d times less"):
        validate_panel(ds)
    validate_panel(ds.drop_vars("market_cap"))  # without caps the spread alone decides


def test_caps_that_do_not_follow_returns_do_not_judge_the_scale():
    ds = _panel(scale=5.0)
    ds["market_cap"].values[:] = np.random.default_rng(1).uniform(1e8, 1e10, ds["market_cap"].shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor any jump warning: such caps jump by construction
        validate_panel(ds)


def test_percent_returns_of_a_few_stocks_are_refused_from_the_pooled_spread():
    ds = _panel(scale=100.0).isel(stock=slice(0, 2)).drop_vars("market_cap")
    ds["returns"] = ds["returns"].clip(min=-0.99)
    with pytest.raises(PanelError, match="percent.*pooled"):
        validate_panel(ds)


def test_return_of_minus_one_still_names_stock_and_date():
    with pytest.raises(PanelError, match="<= -1.*stock S02, date 2015-01-08"):
        validate_panel(_set(_panel(), "returns", 4, 2, -1.0))


# ---------------------------------------------------------------------------------------
# market caps and characteristics
# ---------------------------------------------------------------------------------------
def test_zero_market_cap_warns_naming_the_stocks():
    ds = _panel()
    ds["market_cap"].loc[{"stock": ["S04", "S07"]}] = 0.0
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1
    assert "'market_cap'" in messages[0] and "S04, S07" in messages[0] and "2 stock(s)" in messages[0]


def test_negative_market_cap_is_refused():
    with pytest.raises(PanelError, match="'market_cap'.*negative.*stock S01, date 2015-01-07"):
        validate_panel(_set(_panel(), "market_cap", 3, 1, -5.0))


def test_market_cap_jump_without_a_return_warns():
    ds = _panel()
    ds["market_cap"].values[20:, 6] *= 1000.0  # units changed from millions to thousands
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1
    assert "'market_cap' jumps" in messages[0] and "stock S06, date 2015-01-30" in messages[0]


def test_market_cap_jump_with_its_return_is_fine():
    ds = _panel()
    ds["returns"].values[20, 6] = 14.0  # +1,400 %: warned as a return, not as a cap jump
    ds["market_cap"].values[20:, 6] *= 15.0
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1 and "'returns'" in messages[0]


def test_characteristic_without_any_value_warns_naming_it():
    ds = _panel()
    ds["value"] = ds["value"] * np.nan
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1 and "'value'" in messages[0] and "no finite value" in messages[0]


def test_dask_backed_panel_gets_the_same_checks():
    pytest.importorskip("dask")
    ds = _set(_panel(n_days=1100), "returns", 1050, 3, 5.0).chunk({"date": 300})
    messages = _quality_warnings(lambda: validate_panel(ds))
    assert len(messages) == 1 and "stock S03" in messages[0]
    with pytest.raises(PanelError, match="percent"):
        validate_panel(_panel(n_days=1100, scale=100.0).clip(min=-0.99).chunk({"date": 300}))


# ---------------------------------------------------------------------------------------
# no false alarm
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"n_stocks": 60, "n_days": 120, "seed": 3, "n_industries": 4},
        {"n_stocks": 200, "n_days": 300, "seed": 0},
        {"n_stocks": 200, "n_days": 300, "seed": 1, "specific_vol_median": 0.05},
        {"n_stocks": 200, "n_days": 300, "seed": 2, "regimes": [(50, 5.0)], "regime_specific": True},
        {"n_stocks": 200, "n_days": 260, "seed": 6, "n_industries": 4, "market_vol": 1e-9, "industry_vol": 1e-9,
         "style_vol": 1e-9},
    ],
)
def test_simulated_panels_raise_no_alarm(settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = rm.simulate(**settings)
    assert not _quality_warnings(lambda: validate_panel(panel))


@pytest.mark.realdata
def test_real_panel_raises_no_false_alarm(shared_data_dir):
    """The S&P 500 2007-2016 panel and its 2008-09 crisis pass with a margin; the one
    warning is its single day above +100 % (HIG, 2008-12-05, +102 %)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = rm.load_us_equities(shared_data_dir)
    for start, end in (("2007-01-01", "2016-12-31"), ("2008-01-01", "2009-12-31"), ("2008-10-01", "2008-12-31")):
        part = panel.sel(date=slice(start, end))
        messages = _quality_warnings(lambda part=part: validate_panel(part))
        assert len(messages) == 1 and "stock HIG, date 2008-12-05" in messages[0], messages
        spread, _ = validation._return_spread(part["returns"])
        assert spread < validation.MAX_RETURN_SPREAD / 5
        agree, ratio, _ = validation._cap_return_scale(part["returns"], part["market_cap"])
        assert agree > validation.CAP_TRACKS_RETURNS and ratio > 3 * validation.MIN_CAP_RETURN_RATIO


# ---------------------------------------------------------------------------------------
# panel_from_long: dates and numbers written as text
# ---------------------------------------------------------------------------------------
def _long(dates, returns=(0.01, 0.02, 0.03, 0.04), stocks=("0001", "0002", "0001", "0002")) -> pd.DataFrame:
    return pd.DataFrame({"date": list(dates), "stock": list(stocks), "returns": list(returns)})


@pytest.mark.parametrize(
    "dates, row, text",
    [
        (["2015-01-02", "2015-01-02", "2015-02-30", "2015-02-30"], 2, "2015-02-30"),
        (["2015-01-02", "2015-01-02", "notadate", "notadate"], 2, "notadate"),
        (["02/01/2015", "02/01/2015", "13/01/2015", "13/01/2015"], 2, "13/01/2015"),  # dd/mm after mm/dd
        (["2015-01-02", "2015-01-02", "01/05/2015", "01/05/2015"], 2, "01/05/2015"),  # two formats
        (["1", "1", "0", "0"], 0, "1"),
    ],
)
def test_unreadable_date_is_named_with_its_row(dates, row, text):
    with pytest.raises(DateOrderError, match=rf"column 'date' row {row}: '{text}' is not a date"):
        panel_from_long(_long(dates))


def test_ambiguous_day_month_dates_are_refused():
    with pytest.raises(DateOrderError, match="dd/mm and as mm/dd"):
        panel_from_long(_long(["01/02/2015", "01/02/2015", "02/02/2015", "02/02/2015"]))


def test_one_non_iso_format_for_the_whole_column_is_read():
    out = panel_from_long(_long(["01/13/2015", "01/13/2015", "01/14/2015", "01/14/2015"]))
    assert [str(d)[:10] for d in out["date"].values] == ["2015-01-13", "2015-01-14"]


def test_dates_as_datetimes_integers_and_time_zones():
    ref = panel_from_long(_long(["2015-01-02", "2015-01-02", "2015-01-05", "2015-01-05"]))
    for dates in (pd.to_datetime(["2015-01-02"] * 2 + ["2015-01-05"] * 2), [20150102, 20150102, 20150105, 20150105],
                  ["2015-01-02T00:00:00+00:00"] * 2 + ["2015-01-05T00:00:00+00:00"] * 2):
        out = panel_from_long(_long(dates))
        np.testing.assert_array_equal(out["date"].values, ref["date"].values)


def test_missing_date_still_names_its_row():
    with pytest.raises(DateOrderError, match="missing date at row 1"):
        panel_from_long(_long(["2015-01-02", None, "2015-01-05", "2015-01-05"]))


def test_text_in_a_numeric_column_names_cell_stock_and_date():
    frame = _long(["2015-01-02", "2015-01-02", "2015-01-05", "2015-01-05"], returns=["0.01", "0.02", "abc", "0.04"])
    with pytest.raises(VariableTypeError, match=r"column 'returns': 'abc' at stock 0001, date 2015-01-05 \(row 2\)"):
        panel_from_long(frame)


def test_numbers_written_as_text_are_read_and_ids_kept_as_written():
    frame = _long(["2015-01-02", "2015-01-02", "2015-01-05", "2015-01-05"], returns=["0.01", "0.02", None, "0.04"])
    out = panel_from_long(frame)
    assert out["returns"].dtype == np.float64
    np.testing.assert_array_equal(out["returns"].values, [[0.01, 0.02], [np.nan, 0.04]])
    assert out["stock"].values.tolist() == ["0001", "0002"]


def test_a_label_column_is_left_to_the_label_rules():
    frame = _long(["2015-01-02", "2015-01-02", "2015-01-05", "2015-01-05"]).assign(industry=["a", "b", "a", "b"])
    out = panel_from_long(frame, static=["industry"])
    assert out["industry"].values.tolist() == ["a", "b"]


def test_text_in_a_wide_frame_names_cell_stock_and_date():
    frame = pd.DataFrame({"A": ["0.01", "0.02"], "B": ["0.03", "x"]}, index=pd.to_datetime(["2015-01-02", "2015-01-05"]))
    with pytest.raises(VariableTypeError, match="column 'returns': 'x' at stock B, date 2015-01-05"):
        panel_from_wide({"returns": frame})


# ---------------------------------------------------------------------------------------
# descriptors on a short history
# ---------------------------------------------------------------------------------------
def test_momentum_on_a_short_history_warns_with_days_needed_and_there():
    panel = _panel(n_days=120)
    messages = _quality_warnings(lambda: add_descriptors(panel, ["momentum", "reversal"]))
    window, needed = HISTORY_NEEDED["momentum"]
    assert len(messages) == 1
    assert "'momentum'" in messages[0] and f"{window}-day" in messages[0] and f"at least {needed}" in messages[0]
    assert "has 120 days" in messages[0] and "NaN on every date" in messages[0]


def test_descriptor_with_enough_history_is_silent():
    assert not _quality_warnings(lambda: add_descriptors(_panel(n_days=300), ["momentum", "volatility", "size"]))


def test_warnings_point_at_the_users_call():
    import inspect

    ds = _set(_panel(), "returns", 5, 3, 5.0)
    frame = ds[["returns"]].to_dataframe().reset_index()
    for fn, args in ((validate_panel, (ds,)), (panel_from_long, (frame,)), (add_descriptors, (ds, ["size"]))):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            fn(*args)
        quality = [w for w in seen if issubclass(w.category, DataQualityWarning)]
        assert quality and all(w.filename == __file__ and w.lineno == line for w in quality), fn.__name__
