"""Panels from pandas: :func:`panel_from_long` (one row per (date, stock)) and
:func:`panel_from_wide` (one date x stock frame per variable), re-exported by
:mod:`riskmodel.data.panel`.

Values are placed with integer codes instead of joins, so nothing is aligned silently;
the result goes through :func:`~riskmodel.data.validation.validate_panel`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import fmt_date, str_ids
from riskmodel.data.validation import _MAX_LISTED, _duplicated, _fmt_list, validate_panel
from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    MissingVariableError,
    PanelError,
)

__all__ = ["panel_from_long", "panel_from_wide"]


def _column_to_array(values: pd.Series | np.ndarray) -> tuple[np.ndarray, Any]:
    """A column as (ndarray, fill value): floats (NaN), bool/int -> float64 (NaN), str ('')."""
    s = pd.Series(values)
    if s.dtype == object:
        s = s.infer_objects()
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan), np.nan
    obj = s.to_numpy(dtype=object, na_value=None)
    missing = pd.isna(obj)
    return np.where(missing, "", obj).astype(str), ""


def _duplicate_pairs(date_codes: np.ndarray, stock_codes: np.ndarray, n_stocks: int) -> np.ndarray:
    return _duplicated(date_codes.astype(np.int64) * n_stocks + stock_codes)


def panel_from_long(
    df: pd.DataFrame,
    *,
    date: str = "date",
    stock: str = "stock",
    fields: Sequence[str] | None = None,
    static: Sequence[str] | None = None,
) -> xr.Dataset:
    """Build a panel from a long frame with one row per (date, stock).

    Parameters
    ----------
    df : pandas.DataFrame
        Long data; columns ``date``, ``stock`` and the fields.
    date, stock : str
        Names of the date and stock-id columns.
    fields : sequence of str, optional
        Columns that become (date, stock) variables. Default: every column that is not
        the date, the stock or a static column.
    static : sequence of str, optional
        Columns constant per stock that become (stock) variables (e.g. ``"industry"``).

    Returns
    -------
    xr.Dataset (date, stock)
        Dates sorted, stocks sorted; cells absent from ``df`` are NaN (float fields) or
        ``""`` (str fields). Numeric and bool fields become float64. Validated with
        :func:`validate_panel` (``require=()``).

    Raises
    ------
    MissingVariableError
        A named column is absent.
    DuplicateLabelError
        Two rows share a (date, stock) pair (the pairs are named).
    PanelError
        A static column varies within a stock (the stock is named); anything
        :func:`validate_panel` rejects.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"date": ["2020-01-02", "2020-01-02", "2020-01-03"],
    ...                    "stock": ["A", "B", "A"], "returns": [0.01, 0.02, -0.01]})
    >>> panel_from_long(df)["returns"].shape
    (2, 2)
    """
    static = list(static or [])
    if fields is None:
        fields = [c for c in df.columns if c not in (date, stock) and c not in static]
    fields = list(fields)
    absent = [c for c in [date, stock, *fields, *static] if c not in df.columns]
    if absent:
        raise MissingVariableError(
            f"the long frame lacks column(s) {absent}; it has {list(map(str, df.columns))}"
        )
    date_values = pd.to_datetime(df[date]).to_numpy(dtype="datetime64[ns]")
    if np.isnat(date_values).any():
        row = int(np.flatnonzero(np.isnat(date_values))[0])
        raise DateOrderError(f"column {date!r} holds a missing date at row {row}; drop such rows")
    stock_values = str_ids(df[stock].to_numpy(dtype=object))
    empty = np.char.str_len(stock_values) == 0
    if empty.any():
        raise DuplicateLabelError(
            f"column {stock!r} holds empty/missing stock ids at rows "
            f"{_fmt_list(np.flatnonzero(empty).tolist())}"
        )
    dates, date_codes = np.unique(date_values, return_inverse=True)
    stocks, stock_codes = np.unique(stock_values, return_inverse=True)
    n_dates, n_stocks = dates.size, stocks.size

    dup = _duplicate_pairs(date_codes, stock_codes, n_stocks)
    if dup.size:
        pairs = [f"({fmt_date(dates[k // n_stocks])}, {stocks[k % n_stocks]})" for k in dup[:_MAX_LISTED]]
        more = f" and {dup.size - _MAX_LISTED} more" if dup.size > _MAX_LISTED else ""
        raise DuplicateLabelError(
            f"the long frame has {dup.size} duplicated (date, stock) pair(s): "
            f"{', '.join(pairs)}{more}; keep one row per pair"
        )

    data_vars: dict[str, Any] = {}
    for name in fields:
        col, fill = _column_to_array(df[name])
        out = np.full((n_dates, n_stocks), fill, dtype=col.dtype if fill == "" else np.float64)
        out[date_codes, stock_codes] = col
        data_vars[name] = (("date", "stock"), out)
    for name in static:
        col, fill = _column_to_array(df[name])
        per_stock = pd.DataFrame({"s": stock_codes, "v": col}).drop_duplicates()
        counts = np.bincount(per_stock["s"].to_numpy(), minlength=n_stocks)
        if (counts > 1).any():
            bad = stocks[counts > 1]
            raise PanelError(
                f"static column {name!r} varies within stock(s) {_fmt_list(bad.tolist())}; "
                "pass it in fields= to keep it per date"
            )
        out = np.full(n_stocks, fill, dtype=col.dtype if fill == "" else np.float64)
        out[per_stock["s"].to_numpy()] = per_stock["v"].to_numpy()
        data_vars[name] = (("stock",), out)
    ds = xr.Dataset(data_vars, coords={"date": dates, "stock": stocks})
    return validate_panel(ds, require=())


def _index_ids(index: pd.Index, what: str, var: str, *, is_date: bool) -> np.ndarray:
    if is_date:
        values = pd.to_datetime(index).to_numpy(dtype="datetime64[ns]")
    else:
        values = str_ids(index.to_numpy(dtype=object))
    dup = _duplicated(values)
    if dup.size:
        fmt = fmt_date if is_date else str
        raise DuplicateLabelError(f"frame {var!r} holds duplicate {what} labels: {_fmt_list(dup, fmt)}")
    return values


def _alignment_message(var: str, what: str, ref: np.ndarray, got: np.ndarray, *, is_date: bool) -> str | None:
    missing = np.setdiff1d(ref, got)
    extra = np.setdiff1d(got, ref)
    if not missing.size and not extra.size:
        return None
    fmt = fmt_date if is_date else str
    parts = [f"{var!r} does not have the same {what} ids as the reference"]
    if missing.size:
        parts.append(f"missing {missing.size}: {_fmt_list(missing, fmt)}")
    if extra.size:
        parts.append(f"extra {extra.size}: {_fmt_list(extra, fmt)}")
    return "; ".join(parts) + ". Reindex it explicitly (no inner join is done)"


def panel_from_wide(
    frames: Mapping[str, pd.DataFrame],
    static: Mapping[str, pd.Series] | None = None,
) -> xr.Dataset:
    """Build a panel from wide frames (index = date, columns = stock), exactly aligned.

    Parameters
    ----------
    frames : mapping of str -> pandas.DataFrame
        One frame per (date, stock) variable. All must have the same dates and the same
        stocks (in any order); the first frame sets the stock order, dates are sorted.
    static : mapping of str -> pandas.Series, optional
        (stock) variables indexed by stock id, with exactly the stocks of the frames.

    Returns
    -------
    xr.Dataset (date, stock)
        Validated with :func:`validate_panel` (``require=()``).

    Raises
    ------
    AlignmentError
        A frame or series does not have the same dates/stocks as the first frame; the
        message lists the missing and the extra ids. Nothing is joined silently.
    DuplicateLabelError
        Duplicate dates or stock ids within a frame.
    MissingVariableError
        ``frames`` is empty.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.date_range("2020-01-01", periods=3)
    >>> r = pd.DataFrame(0.0, index=idx, columns=["A", "B"])
    >>> panel_from_wide({"returns": r})["returns"].dims
    ('date', 'stock')
    """
    if not frames:
        raise MissingVariableError("panel_from_wide needs at least one frame (e.g. {'returns': df})")
    names = list(frames)
    ref_name = names[0]
    ref = frames[ref_name]
    ref_dates = _index_ids(ref.index, "date", ref_name, is_date=True)
    ref_stocks = _index_ids(ref.columns, "stock", ref_name, is_date=False)
    dates = np.sort(ref_dates)

    data_vars: dict[str, Any] = {}
    for name in names:
        frame = frames[name]
        if not isinstance(frame, pd.DataFrame):
            raise DimensionError(f"frame {name!r} must be a pandas DataFrame (date x stock), got {type(frame).__name__}")
        f_dates = _index_ids(frame.index, "date", name, is_date=True)
        f_stocks = _index_ids(frame.columns, "stock", name, is_date=False)
        for what, r_ids, g_ids, is_date in (("date", dates, f_dates, True), ("stock", ref_stocks, f_stocks, False)):
            msg = _alignment_message(name, what, r_ids, g_ids, is_date=is_date)
            if msg:
                raise AlignmentError(msg + f" (reference: frame {ref_name!r})")
        row = np.argsort(f_dates, kind="stable")  # same set -> sorted equals `dates`
        col_pos = pd.Index(f_stocks).get_indexer(ref_stocks)
        block = frame.to_numpy()[row][:, col_pos]
        arr, fill = _column_to_array(block.ravel())
        data_vars[name] = (("date", "stock"), arr.reshape(block.shape))
    for name, series in (static or {}).items():
        s_ids = _index_ids(series.index, "stock", name, is_date=False)
        msg = _alignment_message(name, "stock", ref_stocks, s_ids, is_date=False)
        if msg:
            raise AlignmentError(msg + f" (reference: frame {ref_name!r})")
        pos = pd.Index(s_ids).get_indexer(ref_stocks)
        arr, _ = _column_to_array(series.to_numpy()[pos])
        data_vars[name] = (("stock",), arr)
    ds = xr.Dataset(data_vars, coords={"date": dates, "stock": ref_stocks})
    return validate_panel(ds, require=())
