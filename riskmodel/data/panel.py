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
nothing is aligned silently. :func:`validate_panel` and :func:`style_names` live in
:mod:`riskmodel.data.validation`, :func:`panel_from_long` and :func:`panel_from_wide` in
:mod:`riskmodel.data.panel_builders`; all are re-exported here, with
:func:`industry_codes` and :func:`date_window`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import codes_from_values, is_label_dtype
from riskmodel.data.panel_builders import panel_from_long, panel_from_wide
from riskmodel.data.validation import _check_industry, _values, style_names, validate_panel
from riskmodel.errors import DuplicateLabelError, InvalidParameterError, MissingVariableError

__all__ = [
    "validate_panel",
    "industry_codes",
    "panel_from_long",
    "panel_from_wide",
    "style_names",
    "date_window",
]


# ----------------------------------------------------------------------------------------
# public: industry codes
# ----------------------------------------------------------------------------------------
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
    if is_label_dtype(vals.dtype):
        codes, labels = codes_from_values(vals, None, name)
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
# public: date window
# ----------------------------------------------------------------------------------------
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
