"""Property tests (issue 17): random malformed input to the long-CSV panel reader and to
``validate_panel`` gives either a valid panel or a named riskmodel error, never another
exception.

The readers under test are the ones ``riskmodel panel`` uses for a long CSV:
``riskmodel.cli.main._panel_from_csv`` reads the file (``pd.read_csv`` behind
``_read_csv``) and hands the frame to :func:`riskmodel.panel_from_long`, which ends in
:func:`riskmodel.validate_panel`. A "valid panel" is one that ``validate_panel`` accepts
again unchanged.

Properties that fail today are strict xfails (see :data:`KNOWN_GAPS`) with the falsifying
example hypothesis found; a fix flips them to XPASS, which fails until the entry is removed.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import riskmodel as rm
from riskmodel.errors import PanelError

#: property -> what is wrong today (strict xfail).
KNOWN_GAPS: dict[str, str] = {
}

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no "explain" (slow, writes .hypothesis/)
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _xfail_if_gap(name: str):
    return pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name]) if name in KNOWN_GAPS else (lambda f: f)


def _settings(name: str) -> settings:
    """:data:`SETTINGS`; a known gap's search stops at its first failure (no shrinking: the
    falsifying example is already in the reason)."""
    return settings(SETTINGS, phases=(Phase.explicit, Phase.generate)) if name in KNOWN_GAPS else SETTINGS


def _valid_or_named(build):
    """Call ``build()``: a PanelError (any named riskmodel error) or a panel that
    ``validate_panel`` accepts again; any other exception propagates (the property fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            panel = build()
        except PanelError:
            return None
        again = rm.validate_panel(panel, require=())
    assert isinstance(panel, xr.Dataset)
    assert set(again.dims) >= {"date", "stock"}
    assert again["stock"].dtype.kind == "U" and again["date"].dtype.kind == "M"
    return panel


# ---------------------------------------------------------------------------------------
# the long frame / long CSV
# ---------------------------------------------------------------------------------------
GOOD_DATES = ["2015-01-02", "2015-01-05", "2015-01-06", "2015-01-07", "2015-01-08"]
BAD_DATES = ["20150108", "2015/01/09", "2015-02-30", "notadate", "13/01/2015", "01/13/2015", "", "2099-12-31", "0", "1e9", "2015-13-01"]
STOCK_IDS = ["A", "B", "C", "0001", "1", "", " ", "é", "A,B", "nan", "None"]
NUMBER_CELLS = [0.01, -0.02, 0.0, -1.0, -5.0, 1e308, float("inf"), float("-inf"), float("nan"), 5.0, 100.0]
TEXT_CELLS = ["abc", "", "1,5", "0.01%", "NaN", "inf", "-", "1e-3"]

_number = st.sampled_from(NUMBER_CELLS) | st.floats(allow_nan=True, allow_infinity=True)
_cell = _number | st.sampled_from(TEXT_CELLS) | st.none() | st.integers(-3, 3)
_stock = st.sampled_from(STOCK_IDS) | st.integers(0, 5) | st.none() | st.text(max_size=3)


@st.composite
def long_frames(draw, dates):
    """A long frame of 0..12 rows: date, stock, returns, market_cap, maybe a style and an industry."""
    n = draw(st.integers(0, 12))
    columns = {
        "date": draw(st.lists(dates, min_size=n, max_size=n)),
        "stock": draw(st.lists(_stock, min_size=n, max_size=n)),
        "returns": draw(st.lists(_cell, min_size=n, max_size=n)),
    }
    if draw(st.booleans()):
        columns["market_cap"] = draw(st.lists(_cell, min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["value"] = draw(st.lists(_cell, min_size=n, max_size=n))
    static = []
    if draw(st.booleans()):
        columns["industry"] = draw(st.lists(st.sampled_from(["IND1", "IND2", "", None, 3]), min_size=n, max_size=n))
        static = ["industry"]
    drop = draw(st.sampled_from([None, None, None, "date", "stock", "returns"]))
    if drop:
        columns.pop(drop)
    return pd.DataFrame(columns), static


_good_date = st.sampled_from(GOOD_DATES) | st.none()
_any_date = st.sampled_from(GOOD_DATES + BAD_DATES) | st.none() | st.text(max_size=10) | st.integers(-5, 10**6)


def _from_frame(frame, static):
    return rm.panel_from_long(frame, static=static)


@_xfail_if_gap("panel_from_long-well-formed-dates")
@_settings("panel_from_long-well-formed-dates")
@given(long_frames(_good_date))
def test_panel_from_long_well_formed_dates(drawn):
    frame, static = drawn
    _valid_or_named(lambda: _from_frame(frame, static))


@_xfail_if_gap("panel_from_long-any-dates")
@_settings("panel_from_long-any-dates")
@given(long_frames(_any_date))
def test_panel_from_long_any_dates(drawn):
    frame, static = drawn
    _valid_or_named(lambda: _from_frame(frame, static))


def _read_long_csv(text: str):
    """What ``riskmodel panel FILE.csv`` does with the text (without writing the output)."""
    import argparse
    from pathlib import Path
    import tempfile

    from riskmodel.cli.main import _panel_from_csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "panel.csv"
        path.write_text(text, encoding="utf-8")
        args = argparse.Namespace(source=str(path), date_column=None, stock_column=None, static=None)
        return _panel_from_csv(args)


_csv_field = (st.sampled_from(GOOD_DATES + BAD_DATES + STOCK_IDS + TEXT_CELLS + ["0.01", "-1", "1e308", "inf"])
              | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6))


@st.composite
def csv_texts(draw, first_cells=_csv_field):
    """A CSV text: a header (usually date,stock,returns) and 0..8 ragged rows, any separator;
    the first cell of each row drawn from ``first_cells``."""
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    header = draw(st.sampled_from([["date", "stock", "returns"], ["date", "stock", "returns", "market_cap"],
                                   ["date", "stock"], ["stock", "date", "returns"], ["\ufeffdate", "stock", "returns"],
                                   ["date", "date", "returns"]]))
    rows = draw(st.lists(st.tuples(first_cells, st.lists(_csv_field, min_size=0, max_size=4)), max_size=8))
    rows = [[first, *rest] for first, rest in rows]
    quote = draw(st.booleans())
    fmt = (lambda v: '"' + v.replace('"', '""') + '"') if quote else (lambda v: v)
    lines = [sep.join(header)] + [sep.join(fmt(v) for v in row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@_xfail_if_gap("long-csv-text")
@_settings("long-csv-text")
@given(csv_texts())
def test_long_csv_text(text):
    _valid_or_named(lambda: _read_long_csv(text))


@_xfail_if_gap("long-csv-text-well-formed-dates")
@_settings("long-csv-text-well-formed-dates")
@given(csv_texts(first_cells=st.sampled_from(GOOD_DATES)))
def test_long_csv_text_well_formed_dates(text):
    """Rows whose first cell is an ISO date (the date column, unless the header says otherwise)."""
    _valid_or_named(lambda: _read_long_csv(text))


# ---------------------------------------------------------------------------------------
# validate_panel on random Datasets
# ---------------------------------------------------------------------------------------
def _date_coord(draw, n):
    kind = draw(st.sampled_from(["sorted", "unsorted", "duplicate", "nat", "str", "int", "float", "object"]))
    base = pd.date_range("2015-01-02", periods=max(n, 1), freq="B")[:n].to_numpy()
    if kind == "sorted" or n < 2:
        return base if kind in ("sorted", "unsorted", "duplicate", "nat") else _odd_dates(kind, base)
    if kind == "unsorted":
        return base[::-1]
    if kind == "duplicate":
        out = base.copy()
        out[-1] = out[0]
        return out
    if kind == "nat":
        out = base.copy()
        out[draw(st.integers(0, n - 1))] = np.datetime64("NaT")
        return out
    return _odd_dates(kind, base)


def _odd_dates(kind, base):
    if kind == "str":
        return np.asarray([str(pd.Timestamp(d).date()) for d in base])
    if kind == "int":
        return np.arange(base.size)
    if kind == "float":
        return np.arange(base.size) + 0.5
    return np.asarray([pd.Timestamp(d) for d in base] if base.size else [], dtype=object)


def _stock_coord(draw, n):
    kind = draw(st.sampled_from(["str", "str", "int", "duplicate", "empty", "object-none", "float-nan", "bytes"]))
    ids = np.asarray([f"S{i:03d}" for i in range(n)])
    if kind == "int":
        return np.arange(n)
    if kind == "duplicate" and n >= 2:
        ids[-1] = ids[0]
    if kind == "empty" and n >= 1:
        ids[0] = ""
    if kind == "object-none" and n >= 1:
        out = ids.astype(object)
        out[0] = None
        return out
    if kind == "float-nan":
        out = np.arange(n, dtype=float)
        if n:
            out[0] = np.nan
        return out
    if kind == "bytes":
        return ids.astype("S")
    return ids


def _values(draw, shape):
    kind = draw(st.sampled_from(["float", "float", "float-bad", "int", "bool", "str", "object", "float32", "complex"]))
    size = int(np.prod(shape)) if shape else 1
    if kind == "float-bad":
        cells = draw(st.lists(st.sampled_from(NUMBER_CELLS), min_size=size, max_size=size))
        return np.asarray(cells, dtype=float).reshape(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    base = rng.normal(0, 0.02, shape)
    if kind == "int":
        return (base * 100).astype(np.int64)
    if kind == "bool":
        return base > 0
    if kind == "str":
        return base.astype(str)
    if kind == "object":
        out = base.astype(object)
        if size:
            out.flat[0] = draw(st.sampled_from(["abc", None, 1, float("nan")]))
        return out
    if kind == "float32":
        return base.astype(np.float32)
    if kind == "complex":
        return base.astype(complex)
    return base


@st.composite
def datasets(draw):
    """A Dataset with at most one structural fault (dims, date or stock coordinate) and
    variables of random dtype and values (inf, <= -1, NaN, text, codes without labels)."""
    n_dates, n_stocks = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    fault = draw(st.sampled_from(["none"] * 6 + ["dims", "date", "stock", "no-date-coord", "no-stock-coord"]))
    dims = ("date", "stock")
    if fault == "dims":
        dims = draw(st.sampled_from([("stock", "date"), ("date",), ("stock",), ("time", "stock"),
                                     ("date", "stock", "extra")]))
    sizes = {"date": n_dates, "stock": n_stocks, "time": n_dates, "extra": 2}
    data_vars = {}
    names = (["returns"] if draw(st.integers(0, 4)) else []) + draw(
        st.lists(st.sampled_from(["market_cap", "value", "industry", "other"]), max_size=3, unique=True))
    for name in names:
        var_dims = draw(st.sampled_from([dims] * 4 + [("stock",), ("date",)]))
        var_dims = tuple(d for d in var_dims if d in sizes)
        shape = tuple(sizes[d] for d in var_dims)
        size = int(np.prod(shape)) if shape else 1
        if name == "industry" and draw(st.booleans()):
            labels = draw(st.lists(st.sampled_from(["A", "B", "", "C"]), min_size=size, max_size=size))
            values, attrs = np.asarray(labels).reshape(shape), {}
        elif name == "industry" and draw(st.booleans()):
            values = np.asarray(draw(st.lists(st.integers(-2, 3), min_size=size, max_size=size))).reshape(shape)
            attrs = {"labels": draw(st.sampled_from([["A", "B"], '["A"]', "A", 3]))} if draw(st.booleans()) else {}
        else:
            values, attrs = _values(draw, shape), {}
        data_vars[name] = xr.Variable(var_dims, values, attrs)
    coords = {}
    if "date" in dims and fault != "no-date-coord":
        dates = pd.date_range("2015-01-02", periods=n_dates, freq="B").to_numpy()
        coords["date"] = ("date", _date_coord(draw, n_dates) if fault == "date" else dates)
    if fault != "no-stock-coord":
        ids = np.asarray([f"S{i:03d}" for i in range(n_stocks)])
        coords["stock"] = ("stock", _stock_coord(draw, n_stocks) if fault == "stock" else ids)
    try:
        ds = xr.Dataset(data_vars, coords=coords)
    except (ValueError, TypeError):  # xarray itself refuses the combination: nothing to test
        ds = xr.Dataset(data_vars)
    attrs = draw(st.sampled_from([{}, {}, {"styles": ["value"]}, {"styles": "value"}, {"styles": ["nope"]},
                                  {"styles": []}, {"label_variables": ["value"]}, {"label_variables": "other"}]))
    ds.attrs.update(attrs)
    require = draw(st.sampled_from([("returns",), (), (), ("returns", "market_cap")]))
    return ds, require


@_xfail_if_gap("validate_panel-random-datasets")
@_settings("validate_panel-random-datasets")
@given(datasets())
def test_validate_panel_random_datasets(drawn):
    ds, require = drawn
    _valid_or_named(lambda: rm.validate_panel(ds, require=require))


@_xfail_if_gap("validate_panel-not-a-dataset")
@_settings("validate_panel-not-a-dataset")
@given(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.just(pd.DataFrame({"date": [1]})),
                 st.just(xr.DataArray(np.zeros((2, 2)), dims=("date", "stock"))), st.just({"returns": [1.0]})))
def test_validate_panel_not_a_dataset(obj):
    with pytest.raises(PanelError):
        rm.validate_panel(obj)


def test_valid_or_named_accepts_a_good_frame():
    """The property's helper: a well-formed long frame gives a valid panel."""
    frame = pd.DataFrame({"date": ["2015-01-02", "2015-01-02", "2015-01-05"], "stock": ["A", "0001", "A"],
                          "returns": [0.01, -0.02, 0.0]})
    panel = _valid_or_named(lambda: _from_frame(frame, []))
    assert panel is not None and list(panel["stock"].values) == ["0001", "A"]
    text = io.StringIO()
    frame.to_csv(text, index=False)
    assert _valid_or_named(lambda: _read_long_csv(text.getvalue())) is not None
