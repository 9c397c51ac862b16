"""Panels from pandas: :func:`panel_from_long` (one row per (date, stock)) and
:func:`panel_from_wide` (one date x stock frame per variable), re-exported by
:mod:`riskmodel.data.panel`.

Values are placed with integer codes instead of joins, so nothing is aligned silently;
the result goes through :func:`~riskmodel.data.validation.validate_panel`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from pandas.tseries.api import guess_datetime_format

from riskmodel._labels import fmt_date, str_ids
from riskmodel.data.validation import _MAX_LISTED, _duplicated, _fmt_list, validate_panel
from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    MissingVariableError,
    PanelError,
    VariableTypeError,
    warns_at_caller,
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


# ----------------------------------------------------------------------------------------
# dates written as text
# ----------------------------------------------------------------------------------------
def _parse_with(texts: np.ndarray, fmt: str) -> np.ndarray:
    """datetime64[ns] of each text under ``fmt`` (``"ISO8601"`` or a strftime format);
    NaT where a text does not parse (impossible dates, out of range, other formats)."""
    out = np.full(texts.size, np.datetime64("NaT"), dtype="datetime64[ns]")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(pd.Series(texts, dtype=object), format=fmt, errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.to_numpy(dtype="datetime64[ns]")
    except (ValueError, TypeError, OverflowError):  # mixed time zones, out of bounds: one by one
        for i, text in enumerate(texts):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    one = pd.to_datetime(text, format=fmt)
                if one.tzinfo is not None:
                    one = one.tz_convert("UTC").tz_localize(None)
                out[i] = np.datetime64(one.as_unit("ns").asm8)
            except (ValueError, TypeError, OverflowError):
                pass
        return out


def _swapped_day_month(fmt: str) -> str | None:
    if "%d" in fmt and "%m" in fmt:
        return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return None


def _parse_date_texts(texts: np.ndarray, column: str) -> np.ndarray:
    """Parse distinct date texts: ISO 8601 first, else one format for the whole column.

    Returns datetime64[ns] with NaT for the texts that did not parse. Raises
    DateOrderError when the only format that reads them is ambiguous (dd/mm or mm/dd).
    """
    parsed = _parse_with(texts, "ISO8601")
    if not np.isnat(parsed).all():
        return parsed  # ISO 8601 for some: every other text is a mixed format
    fmt = guess_datetime_format(str(texts[0])) if texts.size else None
    if fmt is None:
        return parsed
    parsed = _parse_with(texts, fmt)
    swapped = _swapped_day_month(fmt)
    if swapped and not np.isnat(parsed).any():
        other = _parse_with(texts, swapped)
        if not np.isnat(other).any() and not np.array_equal(other, parsed):
            raise DateOrderError(
                f"column {column!r}: the dates (e.g. {str(texts[0])!r}) read both as dd/mm and as "
                "mm/dd; write them as YYYY-MM-DD"
            )
    return parsed


def _parse_dates(values: pd.Series, column: str) -> np.ndarray:
    """A long frame's date column as datetime64[ns]; the first missing or unreadable
    row is named (a :class:`DateOrderError`, never a pandas exception)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        dates = values.to_numpy(dtype="datetime64[ns]")
        missing = np.isnat(dates)
    else:  # text (or numbers, or Python dates): each distinct cell parsed once
        codes, uniq = pd.factorize(values.to_numpy(dtype=object))  # missing cells -> -1
        texts = np.char.strip(np.asarray([str(u) for u in uniq], dtype=str)) if len(uniq) else np.array([], str)
        blank = np.append(texts == "", True)  # code -1 reads the appended True
        missing = blank[codes]
        parsed = np.full(texts.size + 1, np.datetime64("NaT"), dtype="datetime64[ns]")
        readable = ~blank[:-1]
        if readable.any():
            parsed[:-1][readable] = _parse_date_texts(texts[readable], column)
        dates = parsed[codes]
        bad = np.isnat(dates) & ~missing
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DateOrderError(
                f"column {column!r} row {row}: {str(texts[codes[row]])!r} is not a date (an impossible "
                "date, or formats mixed in one column); write dates as YYYY-MM-DD"
            )
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DateOrderError(f"column {column!r} holds a missing date at row {row}; drop such rows")
    return dates


# ----------------------------------------------------------------------------------------
# numbers written as text
# ----------------------------------------------------------------------------------------
def _number_cells(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float value, is present, reads as a number) of each cell of an object column."""
    obj = np.asarray(values, dtype=object)
    present = ~np.asarray(pd.isna(obj), dtype=bool)
    texts = np.where(present, obj, "").astype(str)
    present &= np.char.strip(texts) != ""
    numbers = pd.to_numeric(pd.Series(np.where(present, obj, np.nan)), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    said_nan = np.char.lower(np.char.strip(texts)) == "nan"
    return numbers, present, ~np.isnan(numbers) | said_nan | ~present


def _numbers_from_text(name: str, values: pd.Series | np.ndarray, where: Callable[[int], str]) -> np.ndarray | None:
    """A mostly numeric text column as float64, or None for a numeric or a label column.

    A column is mostly numeric when at least half of its non-empty cells read as numbers;
    its first cell that does not is a :class:`VariableTypeError` naming the column, the
    cell and ``where(i)`` (its stock and date). A column of labels (fewer numbers) is
    left to the label rules of :func:`validate_panel`.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    obj = series.to_numpy(dtype=object)
    inferred = pd.Series(obj).infer_objects().dtype
    if pd.api.types.is_numeric_dtype(inferred) or pd.api.types.is_bool_dtype(inferred):
        return None  # Python numbers in an object column: _column_to_array reads them
    numbers, present, is_number = _number_cells(obj)
    n_present = int(present.sum())
    n_numbers = int((is_number & present).sum())
    if n_present == 0 or n_numbers * 2 < n_present:
        return None
    if n_numbers < n_present:
        i = int(np.flatnonzero(~is_number)[0])
        raise VariableTypeError(
            f"column {name!r}: {str(obj[i])!r} at {where(i)} is not a number; fix the cell or "
            "leave it empty for a missing value"
        )
    return numbers


def _duplicate_pairs(date_codes: np.ndarray, stock_codes: np.ndarray, n_stocks: int) -> np.ndarray:
    return _duplicated(date_codes.astype(np.int64) * n_stocks + stock_codes)


@warns_at_caller
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
    DateOrderError
        A missing date, or a date text that does not parse (the row and the text are
        named). Dates are read as ISO 8601 (YYYY-MM-DD); a column in one other format
        throughout (e.g. 01/13/2015) is read too, unless it reads both as dd/mm and mm/dd.
    VariableTypeError
        A text cell in a mostly numeric field (the column, the text, its stock and date
        are named). A field of numbers written as text is read as numbers.
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
    date_values = _parse_dates(df[date], date)
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
        numbers = None if name == "industry" else _numbers_from_text(
            str(name), df[name], lambda i: f"stock {stock_values[i]}, date {fmt_date(date_values[i])} (row {i})"
        )
        col, fill = _column_to_array(df[name] if numbers is None else numbers)
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


@warns_at_caller
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
        flat, width = block.ravel(), block.shape[1]
        numbers = _numbers_from_text(
            str(name), flat, lambda i, width=width: f"stock {ref_stocks[i % width]}, date {fmt_date(dates[i // width])}"
        )
        arr, fill = _column_to_array(flat if numbers is None else numbers)
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
