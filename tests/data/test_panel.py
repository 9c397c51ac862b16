"""Panel validation, industry codes and the pandas builders.

The catalogue at the top feeds one malformed panel per case to ``validate_panel`` and
checks the named error class and that the message names the variable / stock / date.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    MissingVariableError,
    NonFiniteError,
    PanelError,
    SingularDateWarning,
    VariableTypeError,
)
from riskmodel.data.panel import industry_codes, panel_from_long, panel_from_wide, validate_panel

STOCKS = ["AAA", "BBB", "CCC", "DDD"]


def _panel(n_days: int = 5, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-03-01", periods=n_days)
    ds = xr.Dataset(
        {
            "returns": (("date", "stock"), rng.normal(0, 0.02, (n_days, len(STOCKS)))),
            "market_cap": (("date", "stock"), rng.uniform(1e8, 1e10, (n_days, len(STOCKS)))),
            "value": (("date", "stock"), rng.normal(size=(n_days, len(STOCKS)))),
            "industry": (("stock",), np.array(["Banks", "Energy", "Banks", "Utilities"])),
        },
        coords={"date": dates, "stock": STOCKS},
        attrs={"styles": ["value"]},
    )
    return ds


def _with(ds: xr.Dataset, var: str, i_date: int, i_stock: int, value: float) -> xr.Dataset:
    ds = ds.copy(deep=True)
    ds[var].values[i_date, i_stock] = value
    return ds


def _dup_stock(ds):
    return ds.assign_coords(stock=["AAA", "BBB", "AAA", "DDD"])


def _dup_date(ds):
    d = ds["date"].values.copy()
    d[3] = d[2]
    return ds.assign_coords(date=d)


def _unsorted_date(ds):
    d = ds["date"].values.copy()
    d[[1, 2]] = d[[2, 1]]
    return ds.assign_coords(date=d)


def _str_date(ds):
    return ds.assign_coords(date=[str(x)[:10] for x in ds["date"].values])


def _non_numeric(ds):
    ds = ds.copy()
    ds["rating"] = (("date", "stock"), np.full((ds.sizes["date"], ds.sizes["stock"]), "AA"))
    return ds


def _wrong_dims(ds):
    return ds.rename({"stock": "ticker"})


def _style_wrong_dims(ds):
    ds = ds.copy()
    ds["value"] = ("stock", np.ones(ds.sizes["stock"]))
    return ds


def _missing_style(ds):
    ds = ds.copy()
    ds.attrs["styles"] = ["value", "momentum"]
    return ds


def _empty_stock(ds):
    return ds.assign_coords(stock=["AAA", "", "CCC", "DDD"])


def _int_industry_no_labels(ds):
    ds = ds.copy()
    ds["industry"] = ("stock", np.array([0, 1, 0, 2], dtype=np.int32))
    return ds


CATALOGUE = [
    # (case id, make bad panel, error class, regex that must appear in the message)
    ("not a dataset", lambda ds: ds["returns"], DimensionError, "xarray.Dataset"),
    ("wrong dims", _wrong_dims, DimensionError, r"missing \['stock'\]"),
    ("style wrong dims", _style_wrong_dims, DimensionError, r"'value' has dims \('stock',\)"),
    ("duplicate stock", _dup_stock, DuplicateLabelError, "duplicate ids: AAA"),
    ("empty stock", _empty_stock, DuplicateLabelError, "empty/missing ids at positions 1"),
    ("duplicate date", _dup_date, DuplicateLabelError, "duplicate dates: 2021-03-03"),
    ("unsorted date", _unsorted_date, DateOrderError, "2021-03-03 .position 1. is followed by the earlier 2021-03-02"),
    ("str date", _str_date, VariableTypeError, "'date' must be datetime64"),
    ("inf", lambda ds: _with(ds, "value", 3, 2, np.inf), NonFiniteError, "'value' holds 1 infinite.*stock CCC, date 2021-03-04"),
    ("-inf returns", lambda ds: _with(ds, "returns", 1, 0, -np.inf), NonFiniteError, "'returns'.*stock AAA, date 2021-03-02"),
    ("non-numeric", _non_numeric, VariableTypeError, "'rating'.*numeric"),
    ("missing style", _missing_style, MissingVariableError, "'momentum' .style."),
    ("return <= -1", lambda ds: _with(ds, "returns", 4, 3, -1.2), PanelError, "date 2021-03-05, stock DDD|stock DDD.*2021-03-05"),
    ("negative cap", lambda ds: _with(ds, "market_cap", 2, 1, -5.0), PanelError, "'market_cap'.*stock BBB.*2021-03-03|2021-03-03.*stock BBB"),
    ("int industry without labels", _int_industry_no_labels, VariableTypeError, "'industry'.*attrs\\['labels'\\]"),
]


@pytest.mark.parametrize("case, make, error, match", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_malformed_panel_catalogue(case, make, error, match):
    good = _panel()
    validate_panel(good)  # the base passes
    with pytest.raises(error, match=match):
        validate_panel(make(good))


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        validate_panel(_dup_stock(_panel()))


def test_missing_required_variable():
    ds = _panel().drop_vars("returns")
    with pytest.raises(MissingVariableError, match="'returns' .required."):
        validate_panel(ds)
    validate_panel(ds, require=())  # allowed when nothing is required


def test_inf_count_and_first_cell():
    ds = _with(_with(_panel(), "value", 4, 3, -np.inf), "value", 1, 1, np.inf)
    with pytest.raises(NonFiniteError, match="2 infinite.*first is inf at stock BBB, date 2021-03-02"):
        validate_panel(ds)


def test_all_nan_date_warns_and_names_dates():
    ds = _panel()
    ds["returns"].values[[1, 3]] = np.nan
    with pytest.warns(SingularDateWarning, match="2 date.*2021-03-02, 2021-03-04"):
        out = validate_panel(ds)
    assert out.sizes == ds.sizes


def test_no_warning_on_clean_panel():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_panel(_panel())


def test_normalises_coords_and_transposes():
    ds = _panel()
    ds = ds.assign_coords(
        stock=np.array(STOCKS, dtype=object), date=ds["date"].values.astype("datetime64[s]")
    ).transpose("stock", "date")
    out = validate_panel(ds)
    assert out["stock"].dtype.kind == "U"
    assert out["date"].dtype == np.dtype("datetime64[ns]")
    assert out["returns"].dims == ("date", "stock")
    np.testing.assert_array_equal(out["returns"].values, ds["returns"].values.T)


def test_normal_coords_are_kept_and_the_input_is_not_returned():
    """Labels already datetime64[ns] and str are used as they are (no reassignment), and the
    result is still a new Dataset: editing it leaves the caller's panel alone."""
    ds = _panel()
    ds = ds.assign_coords(date=ds["date"].values.astype("datetime64[ns]"))
    assert ds["date"].dtype == np.dtype("datetime64[ns]") and ds["stock"].dtype.kind == "U"
    out = validate_panel(ds)
    assert out is not ds
    np.testing.assert_array_equal(out["stock"].values, ds["stock"].values)
    np.testing.assert_array_equal(out["date"].values, ds["date"].values)
    out.attrs["edited"] = True
    out["returns"] = out["returns"] * 2
    assert "edited" not in ds.attrs
    np.testing.assert_array_equal(ds["returns"].values, _panel()["returns"].values)


def test_public_name_is_the_module_function():
    assert rm.validate_panel is validate_panel


def test_extra_dims_variables_are_kept():
    ds = _panel()
    ds["true_factor_returns"] = (("date", "factor"), np.zeros((ds.sizes["date"], 2)))
    ds = ds.assign_coords(factor=["market", "value"])
    out = validate_panel(ds)
    assert "true_factor_returns" in out
    ds["true_factor_returns"].values[0, 1] = np.inf
    with pytest.raises(NonFiniteError, match="'true_factor_returns'.*date 2021-03-01, factor value"):
        validate_panel(ds)


# ----------------------------------------------------------------------------------------
# industry codes
# ----------------------------------------------------------------------------------------
def test_industry_codes_static_str_broadcast_sorted():
    ds = _panel()
    ds["industry"] = ("stock", np.array(["Utilities", "Banks", "", "Energy"]))
    codes, labels = industry_codes(ds)
    assert labels == ("Banks", "Energy", "Utilities")
    assert codes.shape == (5, 4) and codes.dtype == np.int32 and codes.flags.c_contiguous
    np.testing.assert_array_equal(codes, np.tile([2, 0, -1, 1], (5, 1)))


def test_industry_codes_int_with_unsorted_labels_and_time_varying():
    ds = _panel(n_days=3)
    raw = np.array([[0, 1, 2, -1], [1, 1, 2, 0], [2, -1, 0, 0]], dtype=np.int32)
    ds["industry"] = (("date", "stock"), raw, {"labels": ["Zinc", "Banks", "Media"]})
    codes, labels = industry_codes(ds)
    assert labels == ("Banks", "Media", "Zinc")
    decoded = np.where(codes >= 0, np.array(labels + ("",))[codes], "")
    original = np.where(raw >= 0, np.array(["Zinc", "Banks", "Media", ""])[raw], "")
    np.testing.assert_array_equal(decoded, original)


def test_industry_codes_from_dataarray_and_object_none():
    da = xr.DataArray(np.array(["b", None, "a"], dtype=object), dims="stock", coords={"stock": ["X", "Y", "Z"]})
    codes, labels = industry_codes(da)
    assert labels == ("a", "b")
    assert codes.tolist() == [[1, -1, 0]]


def test_industry_codes_out_of_range_and_missing():
    ds = _panel()
    ds["industry"] = ("stock", np.array([0, 1, 5, -1], dtype=np.int32), {"labels": ["a", "b"]})
    with pytest.raises(PanelError, match="code 5 at stock CCC"):
        industry_codes(ds)
    with pytest.raises(MissingVariableError, match="'sector'"):
        industry_codes(ds, "sector")


# ----------------------------------------------------------------------------------------
# builders
# ----------------------------------------------------------------------------------------
def _long(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=6)
    rows = [(d, s) for d in dates for s in STOCKS]
    df = pd.DataFrame(rows, columns=["day", "ticker"])
    df["returns"] = rng.normal(0, 0.01, len(df))
    df["flag"] = rng.random(len(df)) > 0.5
    df["industry"] = df["ticker"].map({"AAA": "x", "BBB": "y", "CCC": "x", "DDD": "z"})
    # drop a few rows (missing cells) and shuffle
    df = df.drop(index=[1, 7, 22]).sample(frac=1.0, random_state=3)
    return df


def test_panel_from_long_matches_pivot():
    df = _long()
    ds = panel_from_long(df, date="day", stock="ticker", fields=["returns", "flag"], static=["industry"])
    ref = df.pivot(index="day", columns="ticker", values="returns").sort_index()
    np.testing.assert_array_equal(ds["returns"].values, ref.to_numpy())
    assert list(ds["stock"].values) == sorted(STOCKS)
    assert ds["flag"].dtype == np.float64
    assert np.isnan(ds["flag"].values).sum() == 3
    assert ds["industry"].dims == ("stock",)
    assert ds["industry"].values.tolist() == ["x", "y", "x", "z"]


def test_panel_from_long_duplicates_named():
    df = _long()
    df = pd.concat([df, df[(df["ticker"] == "CCC") & (df["day"] == "2022-01-05")]])
    with pytest.raises(DuplicateLabelError, match=r"1 duplicated.*\(2022-01-05, CCC\)"):
        panel_from_long(df, date="day", stock="ticker")


def test_panel_from_long_static_varies():
    df = _long()
    df.loc[df.index[df["ticker"] == "DDD"][0], "industry"] = "w"
    with pytest.raises(PanelError, match="'industry' varies within stock.*DDD"):
        panel_from_long(df, date="day", stock="ticker", static=["industry"])


def test_panel_from_long_missing_column():
    with pytest.raises(MissingVariableError, match="'date'"):
        panel_from_long(_long(), stock="ticker")


def _wide(seed: int = 2):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2022-01-03", periods=5)
    r = pd.DataFrame(rng.normal(0, 0.01, (5, 4)), index=idx, columns=STOCKS)
    cap = pd.DataFrame(rng.uniform(1, 2, (5, 4)), index=idx, columns=STOCKS)
    return r, cap


def test_panel_from_wide_reorders_exactly():
    r, cap = _wide()
    cap_shuffled = cap.iloc[::-1, [2, 0, 3, 1]]
    ind = pd.Series(["a", "b", "a", "c"], index=STOCKS)[::-1]
    ds = panel_from_wide({"returns": r, "market_cap": cap_shuffled}, static={"industry": ind})
    np.testing.assert_array_equal(ds["returns"].values, r.to_numpy())
    np.testing.assert_array_equal(ds["market_cap"].values, cap.to_numpy())
    assert ds["industry"].values.tolist() == ["a", "b", "a", "c"]
    assert list(ds["stock"].values) == STOCKS


def test_panel_from_wide_mismatch_lists_missing_and_extra():
    r, cap = _wide()
    cap = cap.rename(columns={"BBB": "EEE"})
    with pytest.raises(AlignmentError, match="'market_cap'.*stock.*missing 1: BBB; extra 1: EEE"):
        panel_from_wide({"returns": r, "market_cap": cap})
    r2, cap2 = _wide()
    with pytest.raises(AlignmentError, match="date.*missing 1: 2022-01-07"):
        panel_from_wide({"returns": r2, "market_cap": cap2.drop(index=cap2.index[4])})
    with pytest.raises(AlignmentError, match="'industry'.*missing 1: DDD"):
        panel_from_wide({"returns": r2}, static={"industry": pd.Series(["a"] * 3, index=STOCKS[:3])})


def test_panel_from_wide_duplicate_stock_column():
    r, _ = _wide()
    r.columns = ["AAA", "BBB", "AAA", "DDD"]
    with pytest.raises(DuplicateLabelError, match="'returns' holds duplicate stock labels: AAA"):
        panel_from_wide({"returns": r})


def test_panel_from_wide_inf_caught():
    r, _ = _wide()
    r.iloc[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match="stock BBB, date 2022-01-05"):
        panel_from_wide({"returns": r})


def test_dask_backed_panel_stays_lazy_and_is_checked():
    ds = _panel(n_days=8).chunk({"date": 3})
    out = validate_panel(ds)
    assert out["returns"].chunks is not None  # not loaded into memory
    bad = ds.copy()
    bad["value"] = bad["value"].where(~((bad["date"] == bad["date"][5]) & (bad["stock"] == "DDD")), -np.inf)
    with pytest.raises(NonFiniteError, match="1 infinite.*stock DDD, date 2021-03-08"):
        validate_panel(bad)


def test_date_window_keeps_the_inclusive_window_and_names_its_bounds():
    import xarray as xr

    from riskmodel.errors import InvalidParameterError
    from riskmodel.data.panel import date_window

    dates = pd.bdate_range("2020-01-01", periods=10)
    panel = xr.Dataset({"returns": (("date", "stock"), np.zeros((10, 2)))},
                       coords={"date": dates, "stock": ["A", "B"]})
    assert date_window(panel) is panel
    cut = date_window(panel, "2020-01-03", dates[5])
    assert list(cut["date"].values) == list(dates[2:6].values)
    assert date_window(panel, end="2020-01-02").sizes["date"] == 2
    with pytest.raises(InvalidParameterError, match="start 2020-01-09 is after end 2020-01-02"):
        date_window(panel, "2020-01-09", "2020-01-02")
    with pytest.raises(InvalidParameterError, match="--start 'soon': not a date"):
        date_window(panel, "soon", names=("--start", "--end"))
    with pytest.raises(InvalidParameterError, match=r"--start 2020-01-14 keeps 1 date\(s\) of 2020-01-01 .. 2020-01-14; at least 2"):
        date_window(panel, "2020-01-14", names=("--start", "--end"), min_dates=2)
