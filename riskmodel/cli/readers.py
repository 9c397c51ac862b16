"""The command line's input files: riskmodel files of an expected kind, and the CSV files a
user writes by hand (weights, factor returns, labels, a long panel).

Every problem is a :class:`~riskmodel.errors.PanelError` whose one line names the file and,
where it applies, the row, the column, the stock or the date — never a pandas traceback.
Ids are read as text exactly as written (``0042`` stays ``0042``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.errors import DataQualityWarning, PanelError

#: A portfolio whose weights add up to about this is probably in percent.
PERCENT_SUM = 100.0
#: Weights larger than this (in absolute value) are probably not fractions of a book.
LARGE_WEIGHT = 1e6


def read_input(path: str, expected: str) -> Any:
    """A riskmodel file of the ``expected`` kind: ``"panel"`` or ``"fitted model"``.

    Raises
    ------
    PanelError
        The file is missing or holds something else (naming the file and what it holds).
    """
    import xarray as xr

    import riskmodel as rm

    if not Path(path).exists():
        raise PanelError(f"{path}: no such file or directory")
    obj = rm.load(path)
    if expected == "panel":
        if not isinstance(obj, xr.Dataset) or "returns" not in obj.data_vars and not {"date", "stock"} <= set(obj.dims):
            raise PanelError(f"{path}: {_what(obj)}, not a panel (write one with `riskmodel panel` or `riskmodel simulate`)")
        return obj
    if not hasattr(obj, "covariance"):
        kind = obj.attrs.get("riskmodel_kind") if isinstance(obj, xr.Dataset) else None
        unknown = f" of riskmodel_kind {kind!r}, which this version does not know," if kind else ""
        raise PanelError(f"{path}: {_what(obj)}{unknown} not a fitted model (write one with `riskmodel fit`)")
    return obj


def _what(obj: Any) -> str:
    import xarray as xr

    if isinstance(obj, xr.Dataset):
        return "a panel" if "returns" in obj.data_vars else "a dataset"
    return f"a {type(obj).__name__}"


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when the two paths name one existing file or folder."""
    try:
        return Path(a).exists() and Path(b).exists() and Path(a).samefile(b)
    except OSError:
        return False


def read_csv(path: str | Path, what: str, *, ids: str | int | None = None, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` with every way a hand-written file goes wrong as one named line.

    ``ids`` names the column (or its position) read as text. A file with a header and no
    rows, a ';'- or tab-separated file, a file that is not UTF-8 and a row with more cells
    than the header are errors naming the file.
    """
    if not Path(path).exists():
        raise PanelError(f"{path}: no such {what}")
    dtype = kwargs.pop("dtype", None) if ids is None else {ids: str}
    try:
        with warnings.catch_warnings():  # a row longer than the header: an error, not cells dropped
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, index_col=False, dtype=dtype, encoding="utf-8-sig", **kwargs)
    except pd.errors.ParserWarning:
        raise PanelError(f"{path}: a row of the {what} has more cells than the header; fix the row or the header") from None
    except pd.errors.EmptyDataError:
        raise PanelError(f"{path}: the {what} is empty") from None
    except UnicodeDecodeError as exc:
        raise PanelError(f"{path}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except pd.errors.ParserError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise PanelError(f"{path}: not a readable CSV {what} ({reason})") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for sep, name in ((";", "';'"), ("\t", "tab")):
            if sep in header:
                raise PanelError(f"{path}: the {what} looks {name}-separated; riskmodel reads comma-separated CSV")
    if frame.shape[0] == 0:
        raise PanelError(f"{path}: the {what} has a header but no rows")
    return frame


def numeric(frame: pd.DataFrame, path: str | Path, row_name: str, what: str) -> pd.DataFrame:
    """The frame as finite numbers or NaN; a cell that is not a number, or is infinite, is
    named by its row and column; a column with no value at all is named too."""
    numbers = frame.apply(pd.to_numeric, errors="coerce")
    values = numbers.to_numpy(dtype=np.float64)
    bad = (np.isnan(values) & frame.notna().to_numpy()) | np.isinf(values)
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        row = _row_label(frame.index[i])
        problem = "is infinite" if np.isinf(values[i, j]) else "is not a number"
        raise PanelError(f"{path}: {what} {frame.iat[i, j]!r} of {row_name} {row} in column {frame.columns[j]!r} {problem}")
    empty = [str(c) for c, col in zip(frame.columns, values.T) if np.isnan(col).all()]
    if empty:
        raise PanelError(f"{path}: column {empty[0]!r} has no value")
    return numbers


def _row_label(row: Any) -> str:
    return str(row.date()) if isinstance(row, pd.Timestamp) else repr(row)


def read_factor_file(path: str) -> pd.DataFrame:
    """Factor returns: a first column of dates (YYYY-MM-DD), one column of returns per factor."""
    frame = read_csv(path, "factor file")
    if frame.shape[1] < 2:
        raise PanelError(f"{path}: expected a date column first and one column of returns per factor")
    text = frame.iloc[:, 0].astype(str).str.strip()
    dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise PanelError(f"{path}: {text.iloc[i]!r} in row {i + 2} of the first column is not a date "
                         "(write dates as YYYY-MM-DD)")
    frame = frame.iloc[:, 1:].set_axis(pd.DatetimeIndex(dates, name=str(frame.columns[0])), axis=0)
    if frame.index.has_duplicates:
        raise PanelError(f"{path}: date {frame.index[frame.index.duplicated()][0].date()} appears twice")
    return numeric(frame, path, "date", "return")


def read_weights(path: str) -> pd.DataFrame:
    """Weights: a ``stock`` column (ids as text) and one column of weights per portfolio.

    Warns (:class:`~riskmodel.errors.DataQualityWarning`) when a portfolio's weights add up
    to about 100 (percent?) or hold absurd magnitudes: the risk is then in those units.
    """
    frame = read_csv(path, "weights file", ids="stock")
    if "stock" not in frame.columns or frame.shape[1] < 2:
        raise PanelError(f"{path}: weights need a 'stock' column and one column of weights per portfolio")
    empty = frame["stock"].isna() | (frame["stock"].astype(str).str.strip() == "")
    if empty.any():
        raise PanelError(f"{path}: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2} has an empty stock id")
    frame = frame.set_index("stock")
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        raise PanelError(f"{path}: stock {frame.index[frame.index.duplicated()][0]!r} appears twice")
    weights = numeric(frame, path, "stock", "weight")
    _warn_weight_scale(weights, path)
    return weights


def _warn_weight_scale(weights: pd.DataFrame, path: str | Path) -> None:
    for name, column in weights.items():
        total, largest = float(np.nansum(column)), float(np.nanmax(np.abs(column.to_numpy())))
        if abs(total - PERCENT_SUM) < 0.05 * PERCENT_SUM:
            warnings.warn(f"{path}: the weights of portfolio {name!r} add up to {total:.4g}, about 100: if they are "
                          "percent, divide by 100 (risk is reported in the weights' units)", DataQualityWarning, stacklevel=2)
        elif largest > LARGE_WEIGHT:
            warnings.warn(f"{path}: portfolio {name!r} has weights as large as {largest:.3g}; risk is reported in the "
                          "weights' units (give fractions of the book for a volatility in %)", DataQualityWarning, stacklevel=2)


def read_labels(path: str):
    """Labels: two columns, stock (text) and label; a DataArray (stock) named ``label``."""
    import xarray as xr

    frame = read_csv(path, "labels file", ids=0)
    if frame.shape[1] < 2:
        raise PanelError(f"{path}: labels need two columns: stock, label")
    stocks = frame.iloc[:, 0]
    empty = stocks.isna() | (stocks.astype(str).str.strip() == "")
    if empty.any():
        raise PanelError(f"{path}: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2} has an empty stock id")
    stocks = stocks.astype(str)
    if stocks.duplicated().any():
        raise PanelError(f"{path}: stock {stocks[stocks.duplicated()].iloc[0]!r} appears twice")
    labels = frame.iloc[:, 1]
    missing = labels.isna() | (labels.astype(str).str.strip() == "")
    if missing.any():
        warnings.warn(f"{path}: {int(missing.sum())} stock(s) without a label, e.g. {stocks[missing].iloc[0]!r}; "
                      "they count as unlabelled", DataQualityWarning, stacklevel=2)
    values = np.where(missing.to_numpy(), "unlabelled", labels.astype(str).to_numpy())
    return xr.DataArray(values, coords={"stock": stocks.to_numpy()}, dims="stock", name="label")
