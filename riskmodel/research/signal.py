"""Signals: turning a raw alternative-data panel into a characteristic, and into a factor.

This module holds the vectorised building blocks of the card-spending story
(``g = year-over-year growth of trailing card spending``):

* :func:`trailing_sum` -- trailing ``window``-day total of a daily flow, robust to gaps;
* :func:`yoy_log_growth` -- ``ln S_t - ln S_{t-lag}`` of that trailing total.

Both take and return a DataArray ``(date, stock)``; inside they work on ndarrays
laid out ``(date, stock)`` with cumulative sums over the date axis (no loop over dates).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from riskmodel._labels import as_date_stock
from riskmodel.data.flows import trailing_sum_array, yoy_log_growth_array
from riskmodel.errors import InvalidParameterError

__all__ = ["trailing_sum", "yoy_log_growth"]


# --------------------------------------------------------------------------- helpers
def _as_date_stock(x: xr.DataArray, func: str) -> xr.DataArray:
    """Check that ``x`` is a numeric DataArray with dims {date, stock}; return it (date, stock)."""
    what = f"{func}: variable {x.name!r}" if isinstance(x, xr.DataArray) and x.name is not None else func
    return as_date_stock(x, what)


def _resolve_min_periods(window: int, min_periods: int | None, func: str) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise InvalidParameterError(f"{func}: window must be an integer >= 1, got {window!r}.")
    if min_periods is None:
        return max(1, math.ceil(0.75 * window))
    if (
        isinstance(min_periods, bool)
        or not isinstance(min_periods, (int, np.integer))
        or not 1 <= min_periods <= window
    ):
        raise InvalidParameterError(
            f"{func}: min_periods must be an integer in [1, window={window}], got {min_periods!r}."
        )
    return int(min_periods)


def _wrap(values: np.ndarray, like: xr.DataArray, name: str, attrs: dict) -> xr.DataArray:
    return xr.DataArray(values, coords=like.coords, dims=like.dims, name=name, attrs=attrs)


# --------------------------------------------------------------------------- public
def trailing_sum(
    x: xr.DataArray, window: int = 90, min_periods: int | None = None
) -> xr.DataArray:
    """Trailing ``window``-day total of a daily flow (e.g. card spending), robust to gaps.

    Parameters
    ----------
    x : DataArray (date, stock)
        Daily flow; NaN = not observed that day (a data gap, not a zero).
    window : int, default 90
        Number of rows (trading days) in the trailing window, ending at and including row t.
    min_periods : int, optional
        Minimum number of observed days in the window; fewer gives NaN.
        Default ``ceil(0.75 * window)`` (68 for 90).

    Returns
    -------
    DataArray (date, stock)
        ``S_t = window * mean{x_s : s in (t-window, t], x_s observed}``, i.e. the sum when the
        window is complete and the mean scaled to the full window when some days are missing.
        At the start of the panel the window is shortened (as pandas ``rolling``).

    Raises
    ------
    DimensionError
        ``x`` does not have exactly the dims ``date`` and ``stock``.
    VariableTypeError
        ``x`` is not a numeric DataArray.
    InvalidParameterError
        ``window`` < 1 or ``min_periods`` outside ``[1, window]``.

    Notes
    -----
    A missing day is treated as a missing observation (its spending is unknown), so a gap
    does not read as a fall in spending. Computed by cumulative sums over the date axis:
    O(T N), no loop over dates. Equal to
    ``df.rolling(window, min_periods=min_periods).mean() * window`` in pandas.

    See Also
    --------
    yoy_log_growth : year-over-year log growth of this trailing total.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> x = xr.DataArray(np.ones((5, 1)), dims=("date", "stock"),
    ...                  coords={"date": pd.bdate_range("2020-01-01", periods=5), "stock": ["A"]})
    >>> trailing_sum(x, window=3, min_periods=2).values.ravel().tolist()
    [nan, 3.0, 3.0, 3.0, 3.0]
    """
    x = _as_date_stock(x, "trailing_sum")
    mp = _resolve_min_periods(window, min_periods, "trailing_sum")
    out = trailing_sum_array(x.values, int(window), mp)
    return _wrap(out, x, f"{x.name or 'x'}_trailing_{window}",
                 {"window": int(window), "min_periods": mp})


def yoy_log_growth(
    x: xr.DataArray, window: int = 90, lag: int = 252, min_periods: int | None = None
) -> xr.DataArray:
    """Year-over-year log growth of the trailing ``window``-day total of a daily flow.

    Parameters
    ----------
    x : DataArray (date, stock)
        Daily flow (e.g. card spending), positive; NaN = not observed. To take the growth
        of a series that is already a trailing total, pass ``window=1``.
    window : int, default 90
        Trailing window of :func:`trailing_sum`.
    lag : int, default 252
        Rows between the two windows compared (one trading year).
    min_periods : int, optional
        Passed to :func:`trailing_sum` (default ``ceil(0.75 * window)``).

    Returns
    -------
    DataArray (date, stock)
        ``g_t = ln S_t - ln S_{t-lag}``. NaN for the first ``lag + min_periods - 1`` rows (the
        first value compares shortened windows; full windows from row ``lag + window - 1``), where either total is NaN, and where either
        total is not positive (the log is undefined).

    Raises
    ------
    DimensionError, VariableTypeError, InvalidParameterError
        As :func:`trailing_sum`; also ``lag`` < 1.

    See Also
    --------
    trailing_sum

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = np.arange(10.0)[:, None]
    >>> x = xr.DataArray(np.exp(0.1 * t), dims=("date", "stock"),
    ...                  coords={"date": pd.bdate_range("2020-01-01", periods=10), "stock": ["A"]})
    >>> float(np.round(yoy_log_growth(x, window=1, lag=4).values[-1, 0], 12))
    0.4
    """
    x = _as_date_stock(x, "yoy_log_growth")
    mp = _resolve_min_periods(window, min_periods, "yoy_log_growth")
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 1:
        raise InvalidParameterError(f"yoy_log_growth: lag must be an integer >= 1, got {lag!r}.")
    out = yoy_log_growth_array(x.values, int(window), int(lag), mp)
    return _wrap(out, x, f"{x.name or 'x'}_yoy_log_growth",
                 {"window": int(window), "lag": int(lag), "min_periods": mp})
