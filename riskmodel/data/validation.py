"""Validation of a labelled panel on entry: :func:`validate_panel` (re-exported by
:mod:`riskmodel.data.panel`, which describes the panel's variables) and the checks it is
made of, shared with the builders (:mod:`riskmodel.data.panel_builders`) and
:func:`riskmodel.data.panel.industry_codes`.

Dates and ids for messages, label dtypes and str ids come from the labelled edge,
:mod:`riskmodel._labels`.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from riskmodel._labels import fmt_date, is_label_dtype, str_ids
from riskmodel.errors import (
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    MissingVariableError,
    NonFiniteError,
    PanelError,
    SingularDateWarning,
    VariableTypeError,
)

__all__ = ["validate_panel", "style_names"]

#: variables that must be (date, stock) numeric when present
_CORE_NUMERIC = ("returns", "market_cap")
#: how many offending labels an error message lists before "..."
_MAX_LISTED = 10


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------
def _fmt_list(items: Sequence[Any], fmt=str) -> str:
    shown = ", ".join(fmt(x) for x in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown}, ... ({more} more)" if more > 0 else shown


def _is_numeric_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in ("f", "i", "u", "b")


def _duplicated(values: np.ndarray) -> np.ndarray:
    """The values that occur more than once, sorted."""
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[counts > 1]


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
            parts[dim] = f"date {fmt_date(da['date'].values[i])}"
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
            dup = _duplicated(dates)
            if dup.size:
                raise DuplicateLabelError(
                    f"coordinate 'date' holds duplicate dates: {_fmt_list(dup, fmt_date)}; "
                    "keep one row per trading day"
                )
            i = int(bad[0])
            raise DateOrderError(
                f"coordinate 'date' is not sorted: {fmt_date(dates[i])} (position {i}) is "
                f"followed by the earlier {fmt_date(dates[i + 1])} (position {i + 1}); "
                f"{bad.size} such pair(s). Sort with ds.sortby('date')"
            )
    return dates


def _normalise_stocks(panel: xr.Dataset) -> np.ndarray:
    if "stock" not in panel.coords:
        raise DimensionError(
            "the panel has no 'stock' coordinate; give the stock dimension str ids "
            "(ds.assign_coords(stock=...))"
        )
    stocks = str_ids(panel["stock"].values)
    empty = np.flatnonzero(np.char.str_len(stocks) == 0) if stocks.size else np.array([], int)
    if empty.size:
        raise DuplicateLabelError(
            f"coordinate 'stock' holds empty/missing ids at positions {_fmt_list(empty.tolist())}; "
            "every stock needs a non-empty id"
        )
    dup = _duplicated(stocks)
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
    if is_label_dtype(da.dtype):
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
            f"{_fmt_list(dates, fmt_date)}; their regressions will be NaN",
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
