"""Cleaning of a characteristic, date by date: USE4 standardisation with tiered
winsorising (METHODS §1).

A cap-weighted mean, an equal-weighted standard deviation, data errors beyond
``data_error`` sigma set to NaN, outliers clipped at ``winsor`` sigma, re-standardised.
The work runs in :func:`riskmodel.kernels.clean.clean_kernel` (parallel over dates, one
pass per date); :func:`~riskmodel.exposures.build_exposures` shares its row routine, so
the two agree bit for bit. Row t uses only data of day t.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple

import numpy as np
import xarray as xr

from riskmodel._labels import as_date_stock, check_aligned, float_values, fmt_date
from riskmodel.errors import DataQualityWarning, InvalidParameterError, SingularDateWarning, VariableTypeError
from riskmodel.exposures._shared import name_of, reject_negative, wrap
from riskmodel.kernels.clean import clean_kernel

__all__ = ["clean"]


class _KernelOutput(NamedTuple):
    """What :func:`riskmodel.kernels.clean.clean_kernel` writes, per cell and per date."""

    z: np.ndarray  # (T, N) cleaned values (clipped when final_clip)
    errors: np.ndarray  # (T, N) data errors set to NaN
    n_errors: np.ndarray  # (T,) data errors per date
    first_error: np.ndarray  # (T,) first stock with one (-1 if none)
    no_setter: np.ndarray  # (T,) dates with values but no setter
    unconverged: np.ndarray  # (T,) dates still clipping after the passes


def _run_clean_kernel(
    x: np.ndarray,
    h: np.ndarray | None,
    estu: np.ndarray | None,
    winsor: float,
    data_error: float,
    max_passes: int,
    final_clip: bool,
) -> _KernelOutput:
    """Clean every date of ``x`` (T, N) with the numba kernel (one pass per date).

    ``h`` caps (None: equal weights), ``estu`` bool mask (None: everyone). With
    ``final_clip`` the output is clipped at ``±winsor``; without, ``z`` is the last
    standardisation before that clip.
    """
    T, N = x.shape
    x = np.ascontiguousarray(x, dtype=np.float64)
    h_arr = np.ascontiguousarray(h, dtype=np.float64) if h is not None else np.ones((1, 1))
    e_arr = np.ascontiguousarray(estu, dtype=bool) if estu is not None else np.ones((1, 1), bool)
    out = _KernelOutput(
        z=np.empty((T, N)),
        errors=np.empty((T, N), dtype=bool),
        n_errors=np.empty(T, np.int64),
        first_error=np.empty(T, np.int64),
        no_setter=np.empty(T, dtype=bool),
        unconverged=np.empty(T, dtype=bool),
    )
    clean_kernel(x, h_arr, h is not None, e_arr, estu is not None, float(winsor), float(data_error),
                 int(max_passes), bool(final_clip), *out)
    return out


def warn_clean(
    name: str,
    n_err: np.ndarray,
    first: np.ndarray,
    no_setter: np.ndarray,
    raw_of: Callable[[int, int], float],
    like: xr.DataArray,
    data_error: float,
    stacklevel: int,
) -> None:
    """The warnings of :func:`clean` from per-date counts (first data error in date order)."""
    total = int(n_err.sum())
    if total:
        t = int(np.flatnonzero(n_err)[0])
        n = int(first[t])
        warnings.warn(
            f"clean({name}): {total} value(s) beyond {data_error:g} standard deviations treated as "
            f"data errors and set to NaN; first: stock {str(like['stock'].values[n])!r} on "
            f"{fmt_date(like['date'].values[t])} (raw value {raw_of(t, n)!r}). Check the raw data or "
            "raise data_error.",
            DataQualityWarning,
            stacklevel=stacklevel + 1,
        )
    if no_setter.any():
        t = int(np.flatnonzero(no_setter)[0])
        warnings.warn(
            f"clean({name}): {int(no_setter.sum())} date(s) have values but no stock that may set "
            f"the mean (needs a positive cap and estu membership); first {fmt_date(like['date'].values[t])}. "
            "Their output is NaN.",
            SingularDateWarning,
            stacklevel=stacklevel + 1,
        )


def _check_clean_settings(winsor: float, data_error: float, max_passes: int) -> None:
    if not (np.isfinite(winsor) and winsor > 0):
        raise InvalidParameterError(f"clean: winsor={winsor!r} must be a positive number of standard deviations.")
    if not (data_error > winsor):
        raise InvalidParameterError(
            f"clean: data_error={data_error!r} must exceed winsor={winsor!r} (data errors are the outer tier)."
        )
    if int(max_passes) != max_passes or max_passes < 1:
        raise InvalidParameterError(f"clean: max_passes={max_passes!r} must be an integer >= 1.")


def clean(
    x: xr.DataArray,
    *,
    cap: xr.DataArray | None = None,
    winsor: float = 3.0,
    data_error: float = 10.0,
    max_passes: int = 5,
    estu: xr.DataArray | None = None,
) -> xr.DataArray:
    """Winsorise, centre and standardise a characteristic, date by date (USE4).

    Parameters
    ----------
    x : DataArray (date, stock)
        Raw characteristic; NaN = missing (kept NaN, never filled).
    cap : DataArray (date, stock), optional
        Market caps. When given, the mean is cap-weighted and only stocks with a finite
        positive cap set the mean and the standard deviation; otherwise both are equal-weighted.
    winsor : float, default 3.0
        Clip bound in standard deviations (tier 2).
    data_error : float, default 10.0
        Values beyond this many standard deviations are data errors: set to NaN and reported
        (tier 1). Must be > ``winsor``.
    max_passes : int, default 5
        Maximum number of standardisations (and of data-error rounds).
    estu : DataArray (date, stock) of bool, optional
        Estimation universe: only its members set the mean and standard deviation; the other
        present stocks are standardised with the same numbers.

    Returns
    -------
    DataArray (date, stock)
        ``z``, NaN exactly where ``x`` is NaN, where a data error was removed, or on a date
        whose setters are all missing. ``attrs``: ``n_data_errors``, ``n_unconverged``
        (dates still clipping after ``max_passes``), ``winsor``, ``data_error``.

    Raises
    ------
    DimensionError, VariableTypeError, AlignmentError, InvalidParameterError

    Warns
    -----
    DataQualityWarning
        When data errors were set to NaN (count and the first stock/date).
    SingularDateWarning
        When a date has present stocks but none that may set the mean (e.g. no cap).

    Notes
    -----
    For each date, over the setters S (present, in ``estu``, with a cap when ``cap`` is given):

    .. math:: z_n = (x_n - \\sum_{S} h_m x_m) / \\sigma_{eq}, \\quad
              \\sigma_{eq}^2 = \\frac{1}{|S|}\\sum_{S} (x_m - \\bar x)^2,

    with ``h`` the normalised caps (or ``1/|S|``); the population (ddof = 0) standard
    deviation, which reproduces the seeds' worked example. Tier 1: ``|z| > data_error`` ->
    NaN, standardise again (repeated while new data errors appear). Tier 2: ``|z| > winsor``
    -> clipped to ``±winsor`` and re-standardised, up to ``max_passes`` standardisations;
    dates that still clip after the last pass are clipped once more (``attrs['n_unconverged']``
    counts them). Clipping shrinks the standard deviation, so re-standardised clipped values
    land slightly beyond ``winsor`` again: the passes converge to the winsorised fixed point
    only in the limit, and on a date with outliers the final clip moves a few values by a
    small amount. Before that final clip every date satisfies ``|Σ h z| <= 1e-12`` and
    ``|σ_eq(z) - 1| <= 1e-12`` over its setters; a date that never clips satisfies them
    exactly in the output. A date with no spread (every setter has the same value, within
    ``1e-14`` of its magnitude) has ``z = 0`` for every present stock: a characteristic
    that does not vary cannot explain anything. A date with one setter gives 0.

    Every date is processed on its own: no value of another date enters ``z`` at ``t``.

    References
    ----------
    Menchero, Orr, Wang, *USE4 Methodology Notes*, MSCI (2011), §2.

    See Also
    --------
    neutralise : the residual on controls, applied after cleaning.

    Examples
    --------
    The seeds' five firms (raw year-over-year growth), one date:

    >>> import numpy as np, xarray as xr
    >>> g = xr.DataArray([[0.15, 0.06, 0.01, -0.04, -0.22]], dims=("date", "stock"),
    ...                  coords={"date": np.array(["2024-01-02"], dtype="datetime64[ns]"),
    ...                          "stock": ["AMZN", "SBUX", "NKE", "TGT", "GPS"]})
    >>> np.round(clean(g).values, 2)
    array([[ 1.28,  0.55,  0.15, -0.26, -1.72]])
    """
    name = name_of(x, "x") if isinstance(x, xr.DataArray) else "x"
    x = as_date_stock(x, name, numeric=False)
    _check_clean_settings(winsor, data_error, max_passes)
    xv = float_values(x, name)
    hv = None  # equal weights
    if cap is not None:
        cap = as_date_stock(cap, "cap", numeric=False)
        check_aligned(x, cap, name, "cap", ("date", "stock"))
        hv = float_values(cap, "cap")
        reject_negative(hv, x, "cap", "market cap", "caps must be >= 0 (NaN = missing)")
    ev = None  # everyone
    if estu is not None:
        estu = as_date_stock(estu, "estu", numeric=False)
        check_aligned(x, estu, name, "estu", ("date", "stock"))
        if estu.dtype.kind != "b":
            raise VariableTypeError(f"estu: dtype {estu.dtype}; give a boolean mask (date, stock).")
        ev = estu.values

    out = _run_clean_kernel(xv, hv, ev, winsor, data_error, max_passes, True)
    warn_clean(name, out.n_errors, out.first_error, out.no_setter, lambda t, n: float(xv[t, n]), x,
               float(data_error), stacklevel=2)
    attrs = {
        "n_data_errors": int(out.n_errors.sum()),
        "n_unconverged": int(out.unconverged.sum()),
        "winsor": float(winsor),
        "data_error": float(data_error),
    }
    return wrap(out.z, x, x.name, attrs)
