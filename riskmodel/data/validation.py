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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import xarray as xr

from riskmodel._labels import fmt_date, is_label_dtype, str_ids
from riskmodel.errors import (
    DataQualityWarning,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    MissingVariableError,
    NonFiniteError,
    PanelError,
    SingularDateWarning,
    VariableTypeError,
    warns_at_caller,
)

__all__ = ["validate_panel", "style_names"]

#: variables that must be (date, stock) numeric when present
_CORE_NUMERIC = ("returns", "market_cap")
#: how many offending labels an error message lists before "..."
_MAX_LISTED = 10

# plausibility limits (issue 17: never accept a mis-scaled input in silence)
#: dates later than today by more than this many days are refused
FUTURE_MARGIN_DAYS = 7
#: a daily simple return above this (+10,000 % in a day) is refused as a unit or data error
MAX_DAILY_RETURN = 100.0
#: a daily simple return above this (+100 %) is warned about (it can be real)
WARN_DAILY_RETURN = 1.0
#: the median over dates of the cross-sectional spread of returns (1.4826 x MAD) above
#: which returns are taken for percent: decimal daily returns spread about 0.01 (0.0099 on
#: the S&P 500 2007-2016, 0.059 on its worst day, 2008-10-13); percent ones about 1
MAX_RETURN_SPREAD = 0.2
#: when market_cap moves with the returns (same sign on at least this share of the
#: stock-days), returns are mis-scaled if median |d ln cap| / median |r| is below
#: MIN_CAP_RETURN_RATIO (1.0 on the S&P 500 2007-2016, >= 0.68 on simulated panels)
CAP_TRACKS_RETURNS = 0.7
MIN_CAP_RETURN_RATIO = 0.25
#: a day-on-day market_cap change by more than this factor beyond the day's return is a jump
CAP_JUMP_FACTOR = 10.0
#: fewest returns on a date for its cross-sectional spread; fewest stock-days for the cap test
_MIN_SPREAD_STOCKS = 5
_MIN_CAP_CELLS = 30
#: dates per block when a check reads a variable piece by piece (dask-backed panels)
_BLOCK_DATES = 512
#: from this many (date, stock) cells on, the plausibility checks run as parallel numba
#: kernels (riskmodel.kernels.panel_checks); below it as numpy (no compile for a small panel)
_KERNEL_MIN_CELLS = 2**20


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
    _check_not_future(dates)
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


def _check_not_future(dates: np.ndarray) -> None:
    """A PanelError naming the first date later than today + FUTURE_MARGIN_DAYS."""
    today = np.datetime64("today", "D")
    late = np.flatnonzero(dates > today + np.timedelta64(FUTURE_MARGIN_DAYS, "D"))
    if late.size:
        i = int(late[0])
        raise PanelError(
            f"coordinate 'date' holds {late.size} date(s) in the future (after today, {today}, by "
            f"more than {FUTURE_MARGIN_DAYS} days): the first is {fmt_date(dates[i])} (position {i}). "
            "Fix or drop those rows"
        )


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
# plausibility: scale of returns, market caps, empty characteristics
# ----------------------------------------------------------------------------------------
def _date_blocks(da: xr.DataArray, overlap: int = 0):
    """(first row of the block, float64 (dates, stock) values) in blocks of dates, so that
    a dask-backed variable is read piece by piece; ``overlap`` earlier rows are prepended."""
    n = da.sizes["date"]
    for start in range(0, n, _BLOCK_DATES):
        lo = max(0, start - overlap)
        block = np.asarray(da.isel(date=slice(lo, start + _BLOCK_DATES)).values, dtype=np.float64)
        yield lo, block


def _robust_spread(values: np.ndarray, axis: int | None) -> np.ndarray:
    """1.4826 x the median absolute deviation from the median (NaN-skipping)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        centre = np.nanmedian(values, axis=axis, keepdims=True)
        return 1.4826 * np.nanmedian(np.abs(values - centre), axis=axis)


def _return_spread(returns: xr.DataArray) -> tuple[float, int]:
    """Median over dates of the cross-sectional spread of returns and the dates it uses
    (dates with at least _MIN_SPREAD_STOCKS returns); with none, the spread of every
    return pooled (0 dates)."""
    spreads = []
    for _, block in _date_blocks(returns):
        if returns.size >= _KERNEL_MIN_CELLS:
            from riskmodel.kernels.panel_checks import robust_spread_kernel

            spread, count = np.empty(block.shape[0]), np.empty(block.shape[0], np.int64)
            robust_spread_kernel(np.ascontiguousarray(block), MAX_DAILY_RETURN, spread, count)
            spreads += [spread[count >= _MIN_SPREAD_STOCKS]] if (count >= _MIN_SPREAD_STOCKS).any() else []
            continue
        block = np.where(np.abs(block) <= MAX_DAILY_RETURN, block, np.nan)  # refused anyway
        enough = np.isfinite(block).sum(axis=1) >= _MIN_SPREAD_STOCKS
        if enough.any():
            spreads.append(_robust_spread(block[enough], axis=1))
    if spreads:
        per_date = np.concatenate(spreads)
        return float(np.median(per_date)), int(per_date.size)
    values = np.asarray(returns.values, dtype=np.float64).ravel()
    values = values[np.abs(values) <= MAX_DAILY_RETURN]
    if values.size < 2 * _MIN_SPREAD_STOCKS:
        return float("nan"), 0
    return float(_robust_spread(values, axis=None)), 0


def _cap_return_scale(returns: xr.DataArray, market_cap: xr.DataArray) -> tuple[float, float, int]:
    """(share of stock-days where d ln market_cap and the return have the same sign,
    median |d ln market_cap| / median |return|, stock-days used)."""
    d_cap, ret, n_agree, filled, kernel = [], [], 0, 0, returns.size >= _KERNEL_MIN_CELLS
    if kernel:  # one pair of block buffers; the used values packed straight into flat arrays
        from riskmodel.kernels.panel_checks import cap_return_kernel

        flat_y, flat_r, buffers = np.empty(returns.size), np.empty(returns.size), np.empty((2, 0, 0))
    for lo, caps in _date_blocks(market_cap.transpose("date", "stock"), overlap=1):
        rows = slice(lo + 1, lo + caps.shape[0])
        r = np.asarray(returns.isel(date=rows).values, dtype=np.float64)
        if kernel:
            buffers = buffers if buffers.shape[1] >= len(r) else np.empty((2, *r.shape))
            y, abs_r, count, agree = buffers[0, : len(r)], buffers[1, : len(r)], np.empty(len(r), np.int64), np.empty(len(r), np.int64)
            cap_return_kernel(np.ascontiguousarray(caps), np.ascontiguousarray(r), MAX_DAILY_RETURN, y, abs_r, count, agree)
            n_agree += int(agree.sum())  # |y|, |r| are packed at the front of each row
            for t, c in enumerate(count.tolist()):
                flat_y[filled : filled + c], flat_r[filled : filled + c] = y[t, :c], abs_r[t, :c]
                filled += c
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(caps[1:] / caps[:-1])
        ok = np.isfinite(y) & np.isfinite(r) & (y != 0) & (r != 0) & (np.abs(r) <= MAX_DAILY_RETURN)
        n_agree += int(np.count_nonzero(np.sign(y[ok]) == np.sign(r[ok])))
        d_cap.append(y[ok])
        ret.append(r[ok])
    y, r = (flat_y[:filled], flat_r[:filled]) if kernel else (np.concatenate(v) if v else np.empty(0) for v in (d_cap, ret))
    if y.size < _MIN_CAP_CELLS:
        return float("nan"), float("nan"), int(y.size)
    with ThreadPoolExecutor(2) as pool:  # the two partitions release the GIL: one per core
        median_dcap, median_ret = pool.map(_median_of_abs, (y, r))
    return n_agree / y.size, median_dcap / median_ret, int(y.size)


def _median_of_abs(x: np.ndarray) -> float:
    """``np.median(np.abs(x))`` of a 1-d array it may overwrite (partitioned in place)."""
    np.abs(x, out=x)
    half = x.size // 2
    if x.size % 2:
        x.partition(half)
        return float(x[half])
    x.partition([half - 1, half])
    return float((x[half - 1] + x[half]) / 2)


def _check_return_scale(returns: xr.DataArray, market_cap: xr.DataArray | None) -> bool:
    """PanelError when returns look like percent (or otherwise mis-scaled). Returns whether
    market_cap moves with the returns (then a cap jump without a return means something)."""
    spread, n_dates = _return_spread(returns)
    if spread > MAX_RETURN_SPREAD:
        over = f"the median over {n_dates} dates of" if n_dates else "the pooled"
        raise PanelError(
            f"variable 'returns' looks like percent, not simple decimal returns: {over} the "
            f"cross-sectional spread (1.4826 x MAD) is {spread:.3g}, above {MAX_RETURN_SPREAD} "
            "(decimal daily returns spread about 0.01-0.05). Give simple returns (0.01 = 1 %): "
            "divide percent by 100"
        )
    if market_cap is None or market_cap.dtype.kind != "f":
        return False
    agree, ratio, n_cells = _cap_return_scale(returns, market_cap)
    if agree >= CAP_TRACKS_RETURNS and ratio < MIN_CAP_RETURN_RATIO:
        raise PanelError(
            f"variable 'returns' looks mis-scaled (percent?): market_cap moves with the returns "
            f"(same sign on {agree:.0%} of {n_cells} stock-days) but about {1 / ratio:.1f} times less "
            f"(median |change of ln market_cap| / median |return| = {ratio:.3g}, below "
            f"{MIN_CAP_RETURN_RATIO}). Give simple returns (0.01 = 1 %): divide percent by 100"
        )
    return agree >= CAP_TRACKS_RETURNS


def _check_return_limits(da: xr.DataArray) -> None:
    """PanelError for a return above MAX_DAILY_RETURN; DataQualityWarning above
    WARN_DAILY_RETURN (stock and date of the first named)."""
    n_bad, idx, vals = _locate(da, lambda v: v > MAX_DAILY_RETURN)
    if n_bad:
        raise PanelError(
            f"variable 'returns' holds {n_bad} value(s) above {MAX_DAILY_RETURN:g} (+10,000 % in a "
            f"day); the first is {vals[idx]:.6g} at {_cell_label(da, idx)}. Returns must be simple "
            "decimal returns (0.01 = 1 %); fix the value or set it to NaN"
        )
    n_high, idx, vals = _locate(da, lambda v: v > WARN_DAILY_RETURN)
    if n_high:
        warnings.warn(
            f"variable 'returns' holds {n_high} daily return(s) above +{WARN_DAILY_RETURN:.0%}; the "
            f"first is {vals[idx]:.4g} (+{vals[idx]:.0%}) at {_cell_label(da, idx)}. Check it "
            "(an unadjusted split, a unit error?); it is kept",
            DataQualityWarning,
            stacklevel=4,
        )


def _warn_zero_caps(da: xr.DataArray) -> None:
    n_zero, idx, _ = _locate(da, lambda v: v == 0)
    if not n_zero:
        return
    zero_any = np.zeros(da.sizes["stock"], dtype=bool)
    for _, block in _date_blocks(da):
        zero_any |= (block == 0).any(axis=0)
    stocks = da["stock"].values[zero_any]
    warnings.warn(
        f"variable 'market_cap' is 0 on {n_zero} stock-day(s) of {stocks.size} stock(s): "
        f"{_fmt_list(stocks.tolist())} (the first at {_cell_label(da, idx)}). A zero cap weighs "
        "nothing and has no size; set unknown caps to NaN",
        DataQualityWarning,
        stacklevel=4,
    )


def _warn_cap_jumps(market_cap: xr.DataArray, returns: xr.DataArray) -> None:
    """DataQualityWarning for a day-on-day cap change by more than CAP_JUMP_FACTOR beyond
    the day's return (a missing return counts as 0). Only meaningful when caps move with
    the returns (caps drawn afresh each day jump by construction)."""
    limit = np.log(CAP_JUMP_FACTOR)
    n_jumps, first = 0, None
    for lo, caps in _date_blocks(market_cap, overlap=1):
        rows = slice(lo + 1, lo + caps.shape[0])
        r = np.asarray(returns.isel(date=rows).values, dtype=np.float64)
        if returns.size >= _KERNEL_MIN_CELLS:
            from riskmodel.kernels.panel_checks import cap_jump_kernel

            count, first_stock = np.empty(len(r), np.int64), np.empty(len(r), np.int64)
            cap_jump_kernel(np.ascontiguousarray(caps), np.ascontiguousarray(r), limit, count, first_stock)
            jump = np.zeros(r.shape, bool)  # only the first jumping stock of each date: enough to count and name
            jump[count > 0, first_stock[count > 0]] = True
            n_jumps += int(count.sum()) - int(jump.sum())
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                moved = np.log1p(np.where(np.isfinite(r) & (r > -1), r, 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                jump = np.abs(np.log(caps[1:] / caps[:-1]) - moved) > limit
            jump &= (caps[1:] > 0) & (caps[:-1] > 0)
        if jump.any():
            n_jumps += int(jump.sum())
            if first is None:
                t, n = _first_true(jump)
                first = (lo + 1 + t, n, caps[t, n], caps[t + 1, n])
    if n_jumps:
        t, n, before, after = first
        warnings.warn(
            f"variable 'market_cap' jumps by more than a factor {CAP_JUMP_FACTOR:g} beyond the day's "
            f"return on {n_jumps} stock-day(s); the first at {_cell_label(market_cap, (t, n))}: "
            f"{before:.4g} -> {after:.4g}. Check the units and the share counts",
            DataQualityWarning,
            stacklevel=4,
        )


def _warn_empty_characteristics(panel: xr.Dataset, names: Iterable[Hashable]) -> None:
    """DataQualityWarning naming the numeric (date, stock) variables with no finite value."""
    empty = []
    for name in names:
        da = panel[name]
        if da.dtype.kind != "f" or set(da.dims) != {"date", "stock"} or da.size == 0:
            continue
        if hasattr(da.data, "compute"):
            finite = bool(np.isfinite(da.data).any().compute())
        else:  # block by block, stopping at the first block with a value (no full-size mask)
            finite = any(np.isfinite(da.data[lo : lo + _BLOCK_DATES]).any() for lo in range(0, len(da), _BLOCK_DATES))
        if not finite:
            empty.append(str(name))
    if empty:
        warnings.warn(
            f"variable(s) {_fmt_list(empty, repr)} hold no finite value (all NaN); a style made of "
            "one cannot be fitted",
            DataQualityWarning,
            stacklevel=4,
        )


def _check_plausible(panel: xr.Dataset) -> None:
    """The plausibility checks of validate_panel on a panel transposed to (date, stock)."""
    returns = panel["returns"] if "returns" in panel.data_vars and panel["returns"].dtype.kind == "f" else None
    caps = panel["market_cap"] if "market_cap" in panel.data_vars and panel["market_cap"].dtype.kind == "f" else None
    caps_track_returns = False
    if returns is not None:
        caps_track_returns = _check_return_scale(returns, caps)
        _check_return_limits(returns)
    if "returns" in panel.data_vars:
        _check_returns(panel["returns"])
    if "market_cap" in panel.data_vars:
        _check_market_cap(panel["market_cap"])
    if caps is not None:
        _warn_zero_caps(caps)
        if caps_track_returns:
            _warn_cap_jumps(caps, returns)
    _warn_empty_characteristics(panel, panel.data_vars)


# ----------------------------------------------------------------------------------------
# public: validation
# ----------------------------------------------------------------------------------------
@warns_at_caller
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
        ``returns <= -1``, a return above :data:`MAX_DAILY_RETURN` (100, i.e. +10,000 % in a
        day) or ``market_cap < 0`` (stock and date named); returns that look like percent
        (the median over dates of their cross-sectional spread, 1.4826 x MAD, above
        :data:`MAX_RETURN_SPREAD`; or market caps that move with the returns but less than
        :data:`MIN_CAP_RETURN_RATIO` times as much); a date later than today by more than
        :data:`FUTURE_MARGIN_DAYS` days (the first named); industry codes out of range.

    Warns
    -----
    SingularDateWarning
        For dates after the first return on which no stock has a return (leading empty
        dates, as from prices, are expected and not warned about). Such dates are
        allowed; their fits are NaN.
    DataQualityWarning
        A daily return above +100 % (kept; stock and date named); a market cap of 0 (the
        stocks named); a market cap that changes by more than :data:`CAP_JUMP_FACTOR`
        beyond the day's return, when caps otherwise move with the returns (stock and date
        named); a numeric (date, stock) variable with no finite value (named).

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
    if panel["date"].dtype != dates.dtype or panel["stock"].dtype != stocks.dtype:
        panel = panel.assign_coords(date=dates, stock=stocks)  # (same dtypes: the same labels already)

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

    panel = panel.transpose("date", "stock", ...)
    _check_plausible(panel)
    if "returns" in panel.data_vars:
        _warn_empty_dates(panel["returns"])
    return panel
