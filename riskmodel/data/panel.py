"""The labelled panel: validation on entry, industry codes, and builders from pandas.

A panel is an :class:`xarray.Dataset` with dims ``date`` (datetime64[ns], strictly
increasing) and ``stock`` (unique, non-empty str ids):

=============================  ======================  =========================================
variable                       dims                    meaning
=============================  ======================  =========================================
``returns``                    (date, stock)           simple daily return, NaN = no return
``market_cap``                 (date, stock)           optional, >= 0
``industry``                   (stock) or (date,       optional: str labels ("" = missing) or
                               stock)                  int32 codes (-1 = missing) with
                                                       ``attrs["labels"]``
any other numeric variable     (date, stock)           a raw characteristic (a style, a signal)
=============================  ======================  =========================================

Style characteristics are named in ``attrs["styles"]``. Variables whose dims are not a
subset of ``(date, stock)`` (e.g. the simulator's ``true_*`` truth on a ``factor`` axis)
are carried along untouched except for the ±inf check.

Everything here works on ndarrays inside and labels at the edge: validation reads each
variable once, and the builders place values with integer codes instead of joins, so
nothing is aligned silently.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    InvalidParameterError,
    MissingVariableError,
    NonFiniteError,
    PanelError,
    SingularDateWarning,
    VariableTypeError,
)

__all__ = [
    "validate_panel",
    "industry_codes",
    "panel_from_long",
    "panel_from_wide",
    "style_names",
    "date_window",
]

#: variables that must be (date, stock) numeric when present
_CORE_NUMERIC = ("returns", "market_cap")
#: how many offending labels an error message lists before "..."
_MAX_LISTED = 10


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------
def _fmt_date(value: Any) -> str:
    """ISO day (or full timestamp when it has a time part) for messages."""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return "NaT"
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def _fmt_list(items: Sequence[Any], fmt=str) -> str:
    shown = ", ".join(fmt(x) for x in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown}, ... ({more} more)" if more > 0 else shown


def _is_label_dtype(dtype: np.dtype) -> bool:
    """True for numpy unicode/bytes, object, and numpy's variable-width StringDType."""
    return dtype.kind in ("U", "S", "O", "T")


def _is_numeric_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in ("f", "i", "u", "b")


def _as_str_ids(values: Any, what: str) -> np.ndarray:
    """Ids as a numpy unicode array; None/NaN/"" are rejected by the caller's empty check."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    obj = arr.astype(object)
    missing = pd.isna(obj)
    out = np.where(missing, "", obj).astype(str)
    return out


def style_names(panel: xr.Dataset, styles: Iterable[str] | None = None) -> tuple[str, ...]:
    """Style names given explicitly or read from ``panel.attrs["styles"]``.

    ``attrs["styles"]`` may be a list/tuple of str, a single str, or a JSON-encoded list
    (as some netCDF readers return).
    """
    if styles is None:
        styles = panel.attrs.get("styles", ())
    if isinstance(styles, str):
        text = styles.strip()
        if text.startswith("["):
            styles = json.loads(text)
        else:
            styles = [text] if text else []
    elif isinstance(styles, np.ndarray):
        styles = styles.tolist()
    return tuple(str(s) for s in styles)


def _first_true(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True of an ndarray (C order)."""
    flat = int(np.argmax(mask.ravel()))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _cell_label(da: xr.DataArray, index: tuple[int, ...]) -> str:
    """'stock X, date Y[, other Z]' for an index into ``da`` (only the dims it has)."""
    parts: dict[str, str] = {}
    for dim, i in zip(da.dims, index):
        if dim == "date":
            parts[dim] = f"date {_fmt_date(da['date'].values[i])}"
        elif dim in da.coords:
            parts[dim] = f"{dim} {da[dim].values[i]!s}"
        else:
            parts[dim] = f"{dim} #{i}"
    order = [d for d in ("stock", "date") if d in parts] + [d for d in parts if d not in ("stock", "date")]
    return ", ".join(parts[d] for d in order)


def _values(da: xr.DataArray) -> np.ndarray:
    """Materialise a (possibly dask-backed) variable as an ndarray."""
    return np.asarray(da.values)


# ----------------------------------------------------------------------------------------
# coordinate checks
# ----------------------------------------------------------------------------------------
def _normalise_dates(panel: xr.Dataset) -> np.ndarray:
    if "date" not in panel.coords:
        raise DimensionError(
            "the panel has no 'date' coordinate; give the date dimension datetime64 labels "
            "(ds.assign_coords(date=...))"
        )
    raw = np.asarray(panel["date"].values)
    if raw.dtype.kind != "M":
        raise VariableTypeError(
            f"coordinate 'date' must be datetime64, got dtype {raw.dtype} (first value "
            f"{raw[0]!r}); convert it with pd.to_datetime" if raw.size else
            f"coordinate 'date' must be datetime64, got dtype {raw.dtype}"
        )
    dates = raw.astype("datetime64[ns]")
    nat = np.isnat(dates)
    if nat.any():
        pos = np.flatnonzero(nat)
        raise DateOrderError(
            f"coordinate 'date' holds NaT at positions {_fmt_list(pos.tolist())}; "
            "drop those rows before building the panel"
        )
    if dates.size > 1:
        step = np.diff(dates.view("i8"))
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            uniq, counts = np.unique(dates, return_counts=True)
            dup = uniq[counts > 1]
            if dup.size:
                raise DuplicateLabelError(
                    f"coordinate 'date' holds duplicate dates: {_fmt_list(dup, _fmt_date)}; "
                    "keep one row per trading day"
                )
            i = int(bad[0])
            raise DateOrderError(
                f"coordinate 'date' is not sorted: {_fmt_date(dates[i])} (position {i}) is "
                f"followed by the earlier {_fmt_date(dates[i + 1])} (position {i + 1}); "
                f"{bad.size} such pair(s). Sort with ds.sortby('date')"
            )
    return dates


def _normalise_stocks(panel: xr.Dataset) -> np.ndarray:
    if "stock" not in panel.coords:
        raise DimensionError(
            "the panel has no 'stock' coordinate; give the stock dimension str ids "
            "(ds.assign_coords(stock=...))"
        )
    stocks = _as_str_ids(panel["stock"].values, "stock")
    empty = np.flatnonzero(np.char.str_len(stocks) == 0) if stocks.size else np.array([], int)
    if empty.size:
        raise DuplicateLabelError(
            f"coordinate 'stock' holds empty/missing ids at positions {_fmt_list(empty.tolist())}; "
            "every stock needs a non-empty id"
        )
    uniq, counts = np.unique(stocks, return_counts=True)
    dup = uniq[counts > 1]
    if dup.size:
        raise DuplicateLabelError(
            f"coordinate 'stock' holds duplicate ids: {_fmt_list(dup.tolist())}; "
            "each stock must appear once (merge or rename the duplicates)"
        )
    return stocks


# ----------------------------------------------------------------------------------------
# variable checks
# ----------------------------------------------------------------------------------------
def _check_panel_dims(name: Hashable, da: xr.DataArray, allowed: tuple[tuple[str, ...], ...]) -> None:
    if set(da.dims) not in [set(a) for a in allowed]:
        want = " or ".join(str(a) for a in allowed)
        raise DimensionError(
            f"variable {name!r} has dims {da.dims}, expected {want}; rename or transpose "
            "its dimensions (e.g. da.rename({'ticker': 'stock'}))"
        )


def _locate(da: xr.DataArray, predicate) -> tuple[int, tuple[int, ...] | None, np.ndarray | None]:
    """Count of cells where ``predicate(values)`` holds, and the first one (C order).

    Dask-backed variables are counted lazily and materialised only when a cell is found.
    """
    if da.chunks is not None:
        n_bad = int(predicate(da.data).sum().compute())
        if n_bad == 0:
            return 0, None, None
    vals = _values(da)
    with np.errstate(invalid="ignore"):
        bad = predicate(vals)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return 0, None, None
    return n_bad, _first_true(bad), vals


def _check_finite(name: Hashable, da: xr.DataArray) -> None:
    if da.dtype.kind not in ("f", "c"):
        return
    n_inf, idx, vals = _locate(da, np.isinf)
    if n_inf:
        raise NonFiniteError(
            f"variable {name!r} holds {n_inf} infinite value(s); the first is "
            f"{vals[idx]} at {_cell_label(da, idx)}. Use NaN for missing values and fix or "
            "drop the infinite ones"
        )


def _check_numeric(name: Hashable, da: xr.DataArray, role: str) -> None:
    if not _is_numeric_dtype(da.dtype):
        raise VariableTypeError(
            f"{role} {name!r} must be numeric, got dtype {da.dtype}; convert it "
            "(pd.to_numeric) or store labels as an (stock) variable"
        )


def _check_returns(da: xr.DataArray) -> None:
    n_bad, idx, vals = _locate(da, lambda v: v <= -1.0)
    if n_bad:
        raise PanelError(
            f"variable 'returns' holds {n_bad} value(s) <= -1 (a price at or below zero); the "
            f"first is {vals[idx]} at {_cell_label(da, idx)}. Returns must be simple returns "
            "(not percent, not log); fix the price or set the return to NaN"
        )


def _check_market_cap(da: xr.DataArray) -> None:
    n_bad, idx, vals = _locate(da, lambda v: v < 0)
    if n_bad:
        raise PanelError(
            f"variable 'market_cap' holds {n_bad} negative value(s); the first is {vals[idx]} "
            f"at {_cell_label(da, idx)}. Set unknown caps to NaN"
        )


def _check_industry(name: str, da: xr.DataArray) -> None:
    _check_panel_dims(name, da, (("stock",), ("date", "stock")))
    if _is_label_dtype(da.dtype):
        return
    if da.dtype.kind in ("i", "u"):
        labels = da.attrs.get("labels")
        if isinstance(labels, str):
            labels = json.loads(labels) if labels.strip().startswith("[") else None
        if labels is None:
            raise VariableTypeError(
                f"variable {name!r} holds integer codes but has no attrs['labels']; set "
                f"panel[{name!r}].attrs['labels'] = [...] (one str per code)"
            )
        codes = _values(da)
        bad = (codes < -1) | (codes >= len(labels))
        if bad.any():
            idx = _first_true(bad)
            raise PanelError(
                f"variable {name!r} holds code {codes[idx]} at {_cell_label(da, idx)}, outside "
                f"-1..{len(labels) - 1} (the {len(labels)} labels in attrs['labels']); "
                "use -1 for a missing industry"
            )
        return
    raise VariableTypeError(
        f"variable {name!r} must hold str labels or int codes with attrs['labels'], got "
        f"dtype {da.dtype}"
    )


def _warn_empty_dates(returns: xr.DataArray) -> None:
    if returns.sizes["stock"] == 0 or returns.dtype.kind != "f":
        return
    empty = np.isnan(returns.data).all(axis=1)  # lazy for dask: a (date,) vector
    empty = np.asarray(empty.compute() if hasattr(empty, "compute") else empty)
    # leading empty dates are the normal start of returns computed from prices
    leading = np.cumprod(empty).astype(bool)
    empty &= ~leading
    if empty.any():
        dates = returns["date"].values[empty]
        warnings.warn(
            f"{int(empty.sum())} date(s) have no return for any stock: "
            f"{_fmt_list(dates, _fmt_date)}; their regressions will be NaN",
            SingularDateWarning,
            stacklevel=3,
        )


# ----------------------------------------------------------------------------------------
# public: validation
# ----------------------------------------------------------------------------------------
def validate_panel(
    panel: xr.Dataset,
    *,
    styles: Iterable[str] | None = None,
    require: Iterable[str] = ("returns",),
) -> xr.Dataset:
    """Check a panel and return it with normalised coordinates.

    Parameters
    ----------
    panel : xr.Dataset (date, stock)
        The panel (see the module docstring for its variables).
    styles : iterable of str, optional
        Style characteristics that must be present as numeric (date, stock) variables.
        Default: ``panel.attrs["styles"]`` (empty when absent).
    require : iterable of str
        Variables that must be present (default ``("returns",)``; ``()`` for none).

    Returns
    -------
    xr.Dataset (date, stock)
        The same data with ``stock`` as numpy str ids, ``date`` as datetime64[ns], and
        every variable transposed so that ``date`` comes before ``stock``.

    Raises
    ------
    DimensionError
        Not a Dataset, no ``date``/``stock`` dimension or coordinate, or a known variable
        (returns, market_cap, a style, a required one, industry) with other dims.
    VariableTypeError
        ``date`` not datetime64; a non-numeric (date, stock) characteristic; an integer
        ``industry`` without ``attrs["labels"]``.
    DuplicateLabelError
        Duplicate dates, duplicate or empty stock ids (all named).
    DateOrderError
        Unsorted dates (the first offending pair is named) or NaT dates.
    MissingVariableError
        A required variable or a style is missing.
    NonFiniteError
        ±inf in a numeric variable (variable, stock, date of the first one and the count).
    PanelError
        ``returns <= -1`` or ``market_cap < 0`` (stock and date named); industry codes out
        of range.

    Warns
    -----
    SingularDateWarning
        For dates after the first return on which no stock has a return (leading empty
        dates, as from prices, are expected and not warned about). Such dates are
        allowed; their fits are NaN.

    Notes
    -----
    A (date, stock) variable of str labels is accepted only for ``industry`` and names
    listed in ``attrs["label_variables"]``; (stock) str variables (sector names…) are
    always accepted. Variables whose dims are not a subset of (date, stock) are only
    checked for ±inf. Dask-backed variables are checked lazily where possible.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"returns": (("date", "stock"), np.zeros((2, 2)))},
    ...     coords={"date": pd.date_range("2020-01-01", periods=2), "stock": ["A", "B"]},
    ... )
    >>> validate_panel(ds)["stock"].dtype.kind
    'U'
    """
    if not isinstance(panel, xr.Dataset):
        raise DimensionError(
            f"a panel must be an xarray.Dataset with dims (date, stock), got {type(panel).__name__}; "
            "build one with panel_from_long or panel_from_wide"
        )
    missing_dims = [d for d in ("date", "stock") if d not in panel.dims]
    if missing_dims:
        raise DimensionError(
            f"the panel has dims {tuple(panel.dims)}, missing {missing_dims}; rename its "
            "dimensions to 'date' and 'stock' (ds.rename({...}))"
        )
    dates = _normalise_dates(panel)
    stocks = _normalise_stocks(panel)
    panel = panel.assign_coords(date=dates, stock=stocks)

    required = tuple(require)
    style_list = style_names(panel, styles)
    needed = list(dict.fromkeys([*required, *style_list]))
    absent = [v for v in needed if v not in panel.data_vars]
    if absent:
        kinds = ", ".join(
            f"{v!r} ({'style' if v in style_list and v not in required else 'required'})" for v in absent
        )
        raise MissingVariableError(
            f"the panel lacks variable(s) {kinds}; it has {sorted(map(str, panel.data_vars))}. "
            "Add them or drop them from styles/require"
        )

    label_vars = set(style_names(panel, panel.attrs.get("label_variables", ())))
    label_vars.add("industry")
    panel_dims = {"date", "stock"}
    for name, da in panel.data_vars.items():
        dims = set(da.dims)
        if name == "industry" or (name in label_vars and dims & panel_dims):
            if name == "industry":
                _check_industry(str(name), da)
            continue
        is_known = name in _CORE_NUMERIC or name in needed
        if is_known:
            _check_panel_dims(name, da, (("date", "stock"),))
            role = "style characteristic" if name in style_list else "variable"
            _check_numeric(name, da, role)
        elif dims == panel_dims and not _is_numeric_dtype(da.dtype):
            raise VariableTypeError(
                f"characteristic {name!r} (date, stock) must be numeric, got dtype {da.dtype}; "
                "convert it, store labels as a (stock) variable, or list it in "
                "attrs['label_variables']"
            )
        _check_finite(name, da)

    if "returns" in panel.data_vars:
        _check_returns(panel["returns"])
    if "market_cap" in panel.data_vars:
        _check_market_cap(panel["market_cap"])
    panel = panel.transpose("date", "stock", ...)
    if "returns" in panel.data_vars:
        _warn_empty_dates(panel["returns"])
    return panel


# ----------------------------------------------------------------------------------------
# public: industry codes
# ----------------------------------------------------------------------------------------
def _label_codes(labels: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Sorted unique labels and int32 codes (-1 for ""/None/NaN)."""
    obj = labels.astype(object) if labels.dtype.kind != "U" else labels
    missing = pd.isna(obj) if labels.dtype.kind != "U" else np.zeros(labels.shape, bool)
    as_str = np.where(missing, "", obj).astype(str)
    missing |= np.char.str_len(as_str) == 0
    uniq, inverse = np.unique(as_str, return_inverse=True)
    inverse = inverse.reshape(as_str.shape)
    keep = np.char.str_len(uniq) > 0
    # drop "" (sorted first when present) and shift codes
    offset = int((~keep).sum())
    codes = (inverse - offset).astype(np.int32)
    codes[missing] = -1
    return codes, tuple(str(x) for x in uniq[keep])


def industry_codes(
    panel: xr.Dataset | xr.DataArray, name: str = "industry"
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Industry membership as an int32 (date, stock) code array and its sorted labels.

    Parameters
    ----------
    panel : xr.Dataset (date, stock) or xr.DataArray (stock) / (date, stock)
        A panel holding ``panel[name]``, or the industry variable itself.
    name : str
        Name of the industry variable (default ``"industry"``).

    Returns
    -------
    codes : ndarray (T, N) int32
        Code of each stock's industry on each date, ``-1`` when missing; a (stock)
        variable is broadcast over dates. C-contiguous.
    labels : tuple of str
        The industry labels in sorted order; ``labels[codes[t, n]]`` is the label.

    Raises
    ------
    MissingVariableError
        ``name`` is not in the panel.
    DimensionError, VariableTypeError, PanelError
        As :func:`validate_panel` for the industry variable.

    Examples
    --------
    >>> import xarray as xr, pandas as pd
    >>> ind = xr.DataArray(["b", "a", ""], dims="stock", coords={"stock": ["X", "Y", "Z"]})
    >>> codes, labels = industry_codes(ind)
    >>> labels, codes.tolist()
    (('a', 'b'), [[1, 0, -1]])
    """
    if isinstance(panel, xr.Dataset):
        if name not in panel.data_vars:
            raise MissingVariableError(
                f"the panel has no industry variable {name!r}; it has "
                f"{sorted(map(str, panel.data_vars))}. Pass industry=None for a model without "
                "industry factors"
            )
        da = panel[name]
        n_dates = panel.sizes.get("date", 1)
    else:
        da = panel
        name = str(da.name) if da.name is not None else name
        n_dates = da.sizes.get("date", 1)
    _check_industry(name, da)
    da = da.transpose(*[d for d in ("date", "stock") if d in da.dims])
    vals = _values(da)
    if _is_label_dtype(vals.dtype):
        codes, labels = _label_codes(vals)
    else:
        raw_labels = da.attrs["labels"]
        if isinstance(raw_labels, str):
            raw_labels = json.loads(raw_labels)
        raw = np.asarray([str(x) for x in raw_labels])
        order = np.argsort(raw, kind="stable")
        labels_sorted = raw[order]
        if np.unique(labels_sorted).size != labels_sorted.size:
            raise DuplicateLabelError(
                f"attrs['labels'] of {name!r} holds duplicate labels; each code needs its own label"
            )
        rank = np.empty(raw.size + 1, dtype=np.int32)
        rank[order] = np.arange(raw.size, dtype=np.int32)
        rank[-1] = -1  # code -1 -> -1
        codes = rank[vals.astype(np.int64)]
        labels = tuple(str(x) for x in labels_sorted)
    if codes.ndim == 1:
        codes = np.broadcast_to(codes, (n_dates, codes.size))
    return np.ascontiguousarray(codes, dtype=np.int32), labels


# ----------------------------------------------------------------------------------------
# public: builders
# ----------------------------------------------------------------------------------------
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
    key = date_codes.astype(np.int64) * n_stocks + stock_codes
    uniq, counts = np.unique(key, return_counts=True)
    return uniq[counts > 1]


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
    stock_values = _as_str_ids(df[stock].to_numpy(dtype=object), stock)
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
        pairs = [f"({_fmt_date(dates[k // n_stocks])}, {stocks[k % n_stocks]})" for k in dup[:_MAX_LISTED]]
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
        values = _as_str_ids(index.to_numpy(dtype=object), what)
    uniq, counts = np.unique(values, return_counts=True)
    dup = uniq[counts > 1]
    if dup.size:
        fmt = _fmt_date if is_date else str
        raise DuplicateLabelError(f"frame {var!r} holds duplicate {what} labels: {_fmt_list(dup, fmt)}")
    return values


def _alignment_message(var: str, what: str, ref: np.ndarray, got: np.ndarray, *, is_date: bool) -> str | None:
    missing = np.setdiff1d(ref, got)
    extra = np.setdiff1d(got, ref)
    if not missing.size and not extra.size:
        return None
    fmt = _fmt_date if is_date else str
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


def date_window(
    panel: xr.Dataset,
    start: Any = None,
    end: Any = None,
    *,
    names: tuple[str, str] = ("start", "end"),
    min_dates: int = 1,
) -> xr.Dataset:
    """The dates of ``panel`` in ``[start, end]`` (inclusive; ``None`` leaves a side open).

    Parameters
    ----------
    panel : xr.Dataset
        Has a sorted ``date`` coordinate.
    start, end : date-like, optional
        Bounds of the window.
    names : (str, str)
        How the bounds are named in error messages (``"--start"`` for a command line).
    min_dates : int
        Fewest dates the window must keep.

    Returns
    -------
    xr.Dataset
        ``panel`` itself when both bounds are None, else its selection.

    Raises
    ------
    InvalidParameterError
        A bound is not a date, ``start`` is after ``end``, or fewer than ``min_dates`` dates
        are left (the panel's span is named).
    """
    if start is None and end is None:
        return panel
    bounds = []
    for name, value in zip(names, (start, end)):
        try:
            bounds.append(None if value is None else pd.Timestamp(value))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"{name} {value!r}: not a date ({exc})") from None
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:
        raise InvalidParameterError(f"{names[0]} {lo.date()} is after {names[1]} {hi.date()}")
    out = panel.sel(date=slice(lo, hi))
    if out.sizes["date"] < min_dates:
        given = " ".join(f"{name} {value}" for name, value in zip(names, (start, end)) if value is not None)
        first, last = (pd.Timestamp(panel["date"].values[i]).date() for i in (0, -1))
        raise InvalidParameterError(
            f"{given} keeps {out.sizes['date']} date(s) of {first} .. {last}; at least {min_dates} needed"
        )
    return out
