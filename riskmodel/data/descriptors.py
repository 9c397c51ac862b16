"""Raw style characteristics (descriptors) computed from price history.

Every descriptor is causal: its value on day t uses data dated ``<= t`` only, so
truncating the panel after day t leaves every value dated ``<= t`` unchanged. A value
needs a minimum number of observations in its window, else it is NaN (the exposure
stage imputes or leaves the stock out, METHODS §1). All functions take and return
DataArrays ``(date, stock)`` and are vectorised over stocks (pandas rolling windows).

These are *raw* characteristics: :func:`riskmodel.clean` winsorises, centres and
standardises them each day before they become exposures.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import as_date_stock
from riskmodel.errors import (
    AlignmentError,
    DataQualityWarning,
    DimensionError,
    InvalidParameterError,
    MissingVariableError,
    SingularDateWarning,
    warns_at_caller,
)
from riskmodel.data.panel import style_names, validate_panel

__all__ = [
    "size",
    "momentum",
    "reversal",
    "volatility",
    "liquidity",
    "beta",
    "market_return",
    "add_descriptors",
    "DESCRIPTORS",
    "HISTORY_NEEDED",
    "SHORT_HISTORY",
    "LOW_CONFIDENCE",
    "low_confidence_cells",
]


# ----------------------------------------------------------------------------------------
# helpers: labels at the edge
# ----------------------------------------------------------------------------------------
def _matrix(da: xr.DataArray, name: str) -> np.ndarray:
    """(T, N) float64 values of a (date, stock) DataArray (checked by the labelled edge)."""
    return np.asarray(as_date_stock(da, name).values, dtype=np.float64)


def _wrap(values: np.ndarray, like: xr.DataArray, name: str, definition: str) -> xr.DataArray:
    like = like.transpose("date", "stock")
    if not values.flags.writeable:  # pandas may hand back read-only views
        values = values.copy()
    return xr.DataArray(
        values,
        dims=("date", "stock"),
        coords={"date": like["date"].values, "stock": like["stock"].values},
        name=name,
        attrs={"descriptor": definition},
    )


def _check_window(window: int, min_obs: int, *, span: int | None = None, name: str = "window") -> None:
    span = window if span is None else span
    if int(window) != window or window < 1:
        raise InvalidParameterError(f"{name} must be a positive integer, got {window!r}")
    if int(min_obs) != min_obs or not 1 <= min_obs <= span:
        raise InvalidParameterError(f"min_obs must be an integer in 1..{span}, got {min_obs!r}")


def _default_min_obs(window: int) -> int:
    """Two thirds of the window, rounded up (14 of 21)."""
    return max(1, -(-2 * window // 3))


def _rolling_sum(x: np.ndarray, window: int, min_obs: int) -> np.ndarray:
    """Trailing sum over ``window`` rows ending at t, NaN-skipping; NaN if < min_obs values."""
    return pd.DataFrame(x).rolling(window, min_periods=min_obs).sum().to_numpy()


def _exact(a: xr.DataArray, b: xr.DataArray, names: tuple[str, str]) -> None:
    """Same dates and stocks, in the same order; otherwise an AlignmentError with ids."""
    for dim in ("date", "stock"):
        if dim not in b.dims:
            continue
        ia, ib = a[dim].values, b[dim].values
        if ia.shape == ib.shape and np.array_equal(ia, ib):
            continue
        missing = np.setdiff1d(ia, ib)
        extra = np.setdiff1d(ib, ia)
        fmt = (lambda v: str(v)[:10]) if dim == "date" else str
        raise AlignmentError(
            f"{names[1]} does not have the same {dim} ids as {names[0]}: missing "
            f"{[fmt(v) for v in missing[:10]]}, extra {[fmt(v) for v in extra[:10]]}"
            + ("" if missing.size or extra.size else " (same ids, different order: reindex it)")
        )


def _log1p_returns(r: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log1p(r)
    out[~np.isfinite(out)] = np.nan  # r <= -1 would be -inf/NaN: validate_panel rejects it
    return out


# ----------------------------------------------------------------------------------------
# descriptors
# ----------------------------------------------------------------------------------------
def size(market_cap: xr.DataArray) -> xr.DataArray:
    """Size: natural log of market capitalisation.

    Parameters
    ----------
    market_cap : DataArray (date, stock)
        Market cap (any currency unit); NaN, 0 and negative give NaN.

    Returns
    -------
    DataArray (date, stock)
        ``ln(cap)``.
    """
    cap = _matrix(market_cap, "market_cap")
    out = np.full(cap.shape, np.nan)
    ok = cap > 0
    out[ok] = np.log(cap[ok])
    return _wrap(out, market_cap, "size", "ln(market_cap)")


def momentum(returns: xr.DataArray, window: int = 252, skip: int = 21, min_obs: int = 200) -> xr.DataArray:
    """Medium-term momentum: log return from ``t − window`` to ``t − skip``.

    Parameters
    ----------
    returns : DataArray (date, stock)
        Simple daily returns.
    window : int
        Look-back in trading days (default 252, one year).
    skip : int
        Most recent days left out (default 21, one month: short-term reversal).
    min_obs : int
        Minimum non-missing returns among the ``window − skip`` used (default 200).

    Returns
    -------
    DataArray (date, stock)
        ``Σ_{s = t−window+1}^{t−skip} ln(1 + r_s)`` = ``ln(P_{t−skip} / P_{t−window})``
        when no day is missing; NaN with fewer than ``min_obs`` returns.
    """
    if int(skip) != skip or not 0 <= skip < window:
        raise InvalidParameterError(f"skip must be an integer in 0..window-1 ({window - 1}), got {skip!r}")
    _check_window(window, min_obs, span=window - skip)
    lr = _log1p_returns(_matrix(returns, "returns"))
    lagged = np.full_like(lr, np.nan)
    if skip < lr.shape[0]:
        lagged[skip:] = lr[: lr.shape[0] - skip]
    out = _rolling_sum(lagged, window - skip, min_obs)
    return _wrap(out, returns, "momentum", f"sum of ln(1+r) over t-{window - 1}..t-{skip}, >= {min_obs} obs")


def reversal(returns: xr.DataArray, window: int = 21, min_obs: int | None = None) -> xr.DataArray:
    """Short-term return (the reversal characteristic): log return over the last ``window`` days.

    Parameters
    ----------
    returns : DataArray (date, stock)
        Simple daily returns.
    window : int
        Days ``t − window + 1 .. t`` (default 21).
    min_obs : int, optional
        Minimum non-missing returns (default ⌈2·window/3⌉ = 14).

    Returns
    -------
    DataArray (date, stock)
        ``Σ_{s=t−window+1}^{t} ln(1 + r_s)``; positive for recent winners (the
        reversal factor usually carries a negative premium on it).
    """
    min_obs = _default_min_obs(window) if min_obs is None else min_obs
    _check_window(window, min_obs)
    lr = _log1p_returns(_matrix(returns, "returns"))
    out = _rolling_sum(lr, window, min_obs)
    return _wrap(out, returns, "reversal", f"sum of ln(1+r) over t-{window - 1}..t, >= {min_obs} obs")


def volatility(returns: xr.DataArray, window: int = 63, min_obs: int = 42) -> xr.DataArray:
    """Total return volatility: sample standard deviation of daily returns.

    Parameters
    ----------
    returns : DataArray (date, stock)
        Simple daily returns.
    window : int
        Days ``t − window + 1 .. t`` (default 63, a quarter).
    min_obs : int
        Minimum non-missing returns (default 42).

    Returns
    -------
    DataArray (date, stock)
        Daily standard deviation (ddof = 1) of the non-missing returns in the window.
    """
    _check_window(window, min_obs)
    if min_obs < 2:
        raise InvalidParameterError(f"min_obs must be >= 2 for a standard deviation, got {min_obs}")
    r = _matrix(returns, "returns")
    out = pd.DataFrame(r).rolling(window, min_periods=min_obs).std(ddof=1).to_numpy()
    return _wrap(out, returns, "volatility", f"std (ddof=1) of r over t-{window - 1}..t, >= {min_obs} obs")


def liquidity(
    dollar_volume: xr.DataArray, cap: xr.DataArray, window: int = 21, min_obs: int | None = None
) -> xr.DataArray:
    """Liquidity: log of the mean daily turnover (dollar volume / market cap).

    Parameters
    ----------
    dollar_volume : DataArray (date, stock)
        Value traded each day.
    cap : DataArray (date, stock)
        Market cap in the same currency unit; same dates and stocks as ``dollar_volume``.
    window : int
        Days ``t − window + 1 .. t`` (default 21).
    min_obs : int, optional
        Minimum days with a turnover (default ⌈2·window/3⌉).

    Returns
    -------
    DataArray (date, stock)
        ``ln(mean_s dollar_volume_s / cap_s)``; NaN when the mean turnover is 0 or
        there are fewer than ``min_obs`` days.

    Raises
    ------
    AlignmentError
        The two inputs do not have the same dates and stocks (ids named).
    """
    min_obs = _default_min_obs(window) if min_obs is None else min_obs
    _check_window(window, min_obs)
    dv = _matrix(dollar_volume, "dollar_volume")
    c = _matrix(cap, "cap")
    _exact(dollar_volume.transpose("date", "stock"), cap.transpose("date", "stock"), ("dollar_volume", "cap"))
    with np.errstate(invalid="ignore", divide="ignore"):
        turnover = np.where(c > 0, dv / c, np.nan)
    mean = pd.DataFrame(turnover).rolling(window, min_periods=min_obs).mean().to_numpy()
    out = np.full(mean.shape, np.nan)
    ok = mean > 0
    out[ok] = np.log(mean[ok])
    return _wrap(out, dollar_volume, "liquidity", f"ln(mean dollar_volume/cap over t-{window - 1}..t), >= {min_obs} obs")


def _market_vector(market: xr.DataArray | pd.Series | np.ndarray, returns: xr.DataArray) -> np.ndarray:
    if isinstance(market, pd.Series):
        market = xr.DataArray(market.to_numpy(dtype=float), dims="date",
                              coords={"date": pd.DatetimeIndex(market.index).as_unit("ns").to_numpy()})
    if isinstance(market, xr.DataArray):
        if market.dims != ("date",):
            raise DimensionError(f"market must have the single dim 'date', got {market.dims}")
        if "date" in market.coords:
            _exact(returns, market, ("returns", "market"))
        values = np.asarray(market.values, dtype=np.float64)
    else:
        values = np.asarray(market, dtype=np.float64)
    if values.shape != (returns.sizes["date"],):
        raise DimensionError(f"market must have one value per date ({returns.sizes['date']}), got shape {values.shape}")
    return values


def beta(
    returns: xr.DataArray,
    market: xr.DataArray | pd.Series | np.ndarray,
    window: int = 252,
    min_obs: int = 126,
) -> xr.DataArray:
    """Market beta: rolling OLS slope of each stock's returns on a market series.

    Parameters
    ----------
    returns : DataArray (date, stock)
        Simple daily returns.
    market : DataArray (date,), pandas Series or ndarray (T,)
        Market return series on exactly the dates of ``returns``.
    window : int
        Days ``t − window + 1 .. t`` (default 252).
    min_obs : int
        Minimum days on which both the stock and the market have a return (default 126).

    Returns
    -------
    DataArray (date, stock)
        ``β = (n Σxy − Σx Σy) / (n Σx² − (Σx)²)`` over the pairwise-complete days of the
        window (x = market, y = stock), with an intercept; NaN with fewer than
        ``min_obs`` days or a constant market.

    Raises
    ------
    AlignmentError
        ``market`` does not have the dates of ``returns``.
    """
    _check_window(window, min_obs)
    if min_obs < 2:
        raise InvalidParameterError(f"min_obs must be >= 2 for a slope, got {min_obs}")
    y = _matrix(returns, "returns")
    x_vec = _market_vector(market, returns.transpose("date", "stock"))
    both = np.isfinite(y) & np.isfinite(x_vec)[:, None]
    x = np.where(both, x_vec[:, None], np.nan)
    y = np.where(both, y, np.nan)
    n = _rolling_sum(both.astype(np.float64), window, 1)
    sx = _rolling_sum(x, window, 1)
    sy = _rolling_sum(y, window, 1)
    sxy = _rolling_sum(x * y, window, 1)
    sxx = _rolling_sum(x * x, window, 1)
    den = n * sxx - sx * sx
    out = np.full(y.shape, np.nan)
    ok = (n >= min_obs) & (den > 1e-12 * n * sxx)
    out[ok] = (n[ok] * sxy[ok] - sx[ok] * sy[ok]) / den[ok]
    return _wrap(out, returns, "beta", f"OLS slope on the market over t-{window - 1}..t, >= {min_obs} obs")


def market_return(returns: xr.DataArray, market_cap: xr.DataArray | None = None) -> xr.DataArray:
    """Cap-weighted market return with the previous day's caps (equal-weighted without caps).

    Parameters
    ----------
    returns : DataArray (date, stock)
    market_cap : DataArray (date, stock), optional

    Returns
    -------
    DataArray (date,)
        ``Σ_n cap_{t−1,n} r_{t,n} / Σ_n cap_{t−1,n}`` over stocks with both; NaN when
        no stock has both (e.g. the first date).
    """
    r = _matrix(returns, "returns")
    if market_cap is None:
        w = np.where(np.isfinite(r), 1.0, 0.0)
    else:
        _exact(returns.transpose("date", "stock"), market_cap.transpose("date", "stock"), ("returns", "market_cap"))
        cap = _matrix(market_cap, "market_cap")
        prev = np.full(cap.shape, np.nan)
        prev[1:] = cap[:-1]
        w = np.where(np.isfinite(r) & np.isfinite(prev) & (prev > 0), prev, 0.0)
    total = w.sum(axis=1)
    num = np.where(w > 0, w * np.nan_to_num(r), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(total > 0, num / np.where(total > 0, total, 1.0), np.nan)
    da = returns.transpose("date", "stock")
    return xr.DataArray(m, dims="date", coords={"date": da["date"].values}, name="market")


# ----------------------------------------------------------------------------------------
# panel-level
# ----------------------------------------------------------------------------------------
#: descriptor name -> (needed panel variables, builder(panel, market))
DESCRIPTORS: dict[str, tuple[tuple[str, ...], Callable[[xr.Dataset, xr.DataArray | None], xr.DataArray]]] = {
    "size": (("market_cap",), lambda p, m: size(p["market_cap"])),
    "momentum": (("returns",), lambda p, m: momentum(p["returns"])),
    "reversal": (("returns",), lambda p, m: reversal(p["returns"])),
    "volatility": (("returns",), lambda p, m: volatility(p["returns"])),
    "liquidity": (("dollar_volume", "market_cap"), lambda p, m: liquidity(p["dollar_volume"], p["market_cap"])),
    "beta": (("returns",), lambda p, m: beta(p["returns"], m)),
}

#: descriptor name -> (window in days, fewest days of history for a first value) with the
#: default settings of each function (momentum: skip 21 + 200 returns; beta: 126 returns)
HISTORY_NEEDED: dict[str, tuple[int, int]] = {
    "size": (1, 1),
    "momentum": (252, 21 + 200),
    "reversal": (21, 14),
    "volatility": (63, 42),
    "liquidity": (21, 14),
    "beta": (252, 126),
}


#: The short start of each descriptor (``add_descriptors(..., short_history=True)``):
#: descriptor -> (fewest returns in the window for a value, fewest days of history for a
#: first value). Momentum is usable from about half a year (21 skipped + 105 returns = 126
#: days), beta from a quarter (63), volatility from a month (21); size, reversal and
#: liquidity have short windows already and start as by default. A value computed from
#: fewer returns than the default minimum is *low-confidence* (noisier) and is flagged.
SHORT_HISTORY: dict[str, tuple[int, int]] = {
    "momentum": (105, 21 + 105),
    "volatility": (21, 21),
    "beta": (63, 63),
}

#: The default minimum of returns in the window of the descriptors that have a short start.
FULL_MIN_OBS: dict[str, int] = {"momentum": 200, "volatility": 42, "beta": 126}

#: Panel variable flagging the (date, stock) cells where some descriptor was computed on its
#: short start (fewer returns than its default minimum).
LOW_CONFIDENCE = "descriptor_low_confidence"


def _short_builders(market: xr.DataArray | pd.Series | None) -> dict[str, Callable[[xr.Dataset], xr.DataArray]]:
    """The descriptors with a short start, built with their short minimum of returns."""
    return {
        "momentum": lambda p: momentum(p["returns"], min_obs=SHORT_HISTORY["momentum"][0]),
        "volatility": lambda p: volatility(p["returns"], min_obs=SHORT_HISTORY["volatility"][0]),
        "beta": lambda p: beta(p["returns"], market, min_obs=SHORT_HISTORY["beta"][0]),
    }


def _observation_count(name: str, returns: np.ndarray) -> np.ndarray:
    """Returns in each cell's window of descriptor ``name`` (its default window and skip)."""
    finite = np.isfinite(returns).astype(np.float64)
    window, _ = HISTORY_NEEDED[name]
    if name == "momentum":
        skip = 21
        lagged = np.zeros_like(finite)
        lagged[skip:] = finite[: finite.shape[0] - skip]
        return _rolling_sum(lagged, window - skip, 1)
    return _rolling_sum(finite, window, 1)


def low_confidence_cells(panel: xr.Dataset, names: Iterable[str]) -> xr.DataArray:
    """(date, stock) bool: some descriptor of ``names`` has a value computed from fewer
    returns than its default minimum (:data:`FULL_MIN_OBS`), i.e. on its short start."""
    returns = _matrix(panel["returns"], "returns")
    low = np.zeros(returns.shape, dtype=bool)
    for name in names:
        if name in FULL_MIN_OBS and name in panel:
            count = _observation_count(name, returns)
            low |= np.isfinite(_matrix(panel[name], name)) & (np.nan_to_num(count) < FULL_MIN_OBS[name])
    like = panel["returns"].transpose("date", "stock")
    return xr.DataArray(low, dims=("date", "stock"), coords={"date": like["date"].values, "stock": like["stock"].values},
                        name=LOW_CONFIDENCE,
                        attrs={"definition": "some descriptor computed from fewer returns than its default minimum "
                               f"({FULL_MIN_OBS}): the short start of add_descriptors(short_history=True)"})


def _warn_short_history(name: str, values: xr.DataArray) -> None:
    """DataQualityWarning when a descriptor's window is longer than the panel's history or
    the descriptor came out 100 % NaN (the days needed and the days there are named)."""
    n_dates = values.sizes["date"]
    window, needed = HISTORY_NEEDED.get(name, (1, 1))
    all_nan = not bool(np.isfinite(values.values).any())
    if not all_nan and window <= n_dates:
        return
    outcome = "it is NaN on every date" if all_nan else f"it is NaN before day {needed} of {n_dates}"
    warnings.warn(
        f"descriptor {name!r} uses a {window}-day window and needs at least {needed} days of history; "
        f"the panel has {n_dates} days, so {outcome}. Load a longer history (and cut it afterwards "
        "with --start / date_window) or drop the descriptor",
        DataQualityWarning,
        stacklevel=3,
    )


@warns_at_caller
def add_descriptors(
    panel: xr.Dataset,
    names: Iterable[str] = ("size", "momentum", "reversal", "volatility", "liquidity", "beta"),
    *,
    market: xr.DataArray | pd.Series | None = None,
    short_history: bool = False,
) -> xr.Dataset:
    """Add raw style characteristics to a panel and list them in ``attrs["styles"]``.

    Parameters
    ----------
    panel : xr.Dataset (date, stock)
        Needs ``returns``; ``market_cap`` for size, liquidity and the default market;
        ``dollar_volume`` for liquidity.
    names : iterable of str
        Descriptors to add, among ``size, momentum, reversal, volatility, liquidity,
        beta`` (default settings of each function).
    market : DataArray (date,) or Series, optional
        Market return for ``beta``. Default: :func:`market_return` of the panel
        (cap-weighted with the previous day's caps; equal-weighted without caps).
    short_history : bool, default False
        Start the long-window descriptors early, on fewer returns (:data:`SHORT_HISTORY`):
        momentum from 126 days of history instead of 221, beta from 63 instead of 126,
        volatility from 21 instead of 42. The values computed on fewer returns than the
        default minimum are flagged in the (date, stock) bool variable
        ``descriptor_low_confidence``, and ``attrs["short_history"]`` (JSON) gives, per
        descriptor, the days it needs (``min_history``, ``full_history``) and the last date
        on which most of the stocks with a value are flagged (``low_confidence_until``). ``False``: the defaults
        of each function (nothing changes).

    Returns
    -------
    xr.Dataset (date, stock)
        A new panel with one variable per descriptor (an existing variable of the same
        name is replaced) and ``attrs["styles"]`` = previous styles + ``names``.

    Raises
    ------
    InvalidParameterError
        An unknown descriptor name.
    MissingVariableError
        A variable a descriptor needs is absent.

    Warns
    -----
    DataQualityWarning
        A descriptor whose window is longer than the panel's history, or that is NaN on
        every date (the days it needs and the days there are are named).

    Examples
    --------
    >>> import riskmodel as rm  # doctest: +SKIP
    >>> panel = add_descriptors(rm.load_us_equities())  # doctest: +SKIP
    >>> panel.attrs["styles"]  # doctest: +SKIP
    ['size', 'momentum', 'reversal', 'volatility', 'liquidity', 'beta']
    """
    names = [str(n) for n in names]
    unknown = [n for n in names if n not in DESCRIPTORS]
    if unknown:
        raise InvalidParameterError(f"unknown descriptor(s) {unknown}; choose among {list(DESCRIPTORS)}")
    needed = sorted({v for n in names for v in DESCRIPTORS[n][0]})
    absent = [v for v in needed if v not in panel.data_vars]
    if absent:
        users = [n for n in names if set(DESCRIPTORS[n][0]) & set(absent)]
        raise MissingVariableError(
            f"descriptor(s) {users} need panel variable(s) {absent}; add them or drop those descriptors"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularDateWarning)  # empty dates only matter to fits
        panel = validate_panel(panel, styles=(), require=needed)
    if "beta" in names and market is None:
        market = market_return(panel["returns"], panel["market_cap"] if "market_cap" in panel else None)
    short = _short_builders(market) if short_history else {}
    new = {n: short[n](panel) if n in short else DESCRIPTORS[n][1](panel, market) for n in names}
    for n, values in new.items():
        if n in short:
            values.attrs["min_history"] = SHORT_HISTORY[n][1]
        else:
            _warn_short_history(n, values)
    out = panel.assign(new)
    out.attrs = dict(panel.attrs)
    out.attrs["styles"] = list(dict.fromkeys([*style_names(panel), *names]))
    if short:
        out = _flag_short_start(out, [n for n in names if n in short])
    return out


def _flag_short_start(panel: xr.Dataset, names: list[str]) -> xr.Dataset:
    """Add the low-confidence flag and the per-descriptor summary ``attrs["short_history"]``."""
    import json

    flag = low_confidence_cells(panel, names)
    panel[LOW_CONFIDENCE] = flag
    dates = panel["date"].values
    summary = {}
    for name in names:  # the panel's warm-up: dates on which most of the stocks with a value are flagged
        flagged = low_confidence_cells(panel, [name]).values.sum(axis=1)
        one = flagged > 0.5 * np.isfinite(panel[name].values).sum(axis=1)
        last = str(pd.Timestamp(dates[np.flatnonzero(one)[-1]]).date()) if one.any() else None
        summary[name] = {"min_history": SHORT_HISTORY[name][1], "full_history": HISTORY_NEEDED[name][1],
                         "low_confidence_until": last}
    panel.attrs["short_history"] = json.dumps(summary)
    return panel
