"""Appending dates to a fitted model's arrays without copying its whole history each time.

:meth:`FittedFactorModel.update` returns a new model one (or k) dates longer while the old
one stays valid. Copying every ``(date, …)`` array into a longer one costs seconds at
5,000 stocks × 2,520 dates, for a few kilobytes of new rows. Here each array of an updated
model is a view ``buffer[:n]`` of a buffer with room for more dates: the next update writes
its rows into ``buffer[n:n + k]`` and returns the view ``buffer[:n + k]``, so the history is
copied once (at the first update of a fitted or loaded model, or when the buffer is full)
and then never again.

The rows past ``n`` belong to whichever model claimed them first: a buffer records how many
rows are in use, and an array is grown in place only when it is a view of all of them (the
longest model cut from that buffer). Updating an older model again (a branch) or a model
whose stock axis grows (new listings) copies, so no model ever sees its arrays change.
The state's trailing windows (residuals, returns, caps) slide through such a buffer the
same way (``grow_rows(old, new, keep)``: the last ``keep`` rows), copied once every 1/16 of
a window. :func:`append_rows` assembles the updated model's Dataset once, from the grown
arrays, the new state's variables and the old model's indexes.
"""

from __future__ import annotations

import weakref
from typing import Mapping

import numpy as np
import xarray as xr

from riskmodel.models.update_state import STATE_COORDS, STATE_PREFIX as P, fill_for, strip_state

__all__ = ["append_rows", "grow_rows", "pad_stocks"]

#: id(buffer) -> [weak reference to the buffer, rows in use]
_IN_USE: dict[int, list] = {}


def _spare(n: int, k: int) -> int:
    """Rows of room left after ``n + k`` rows: about 1/16 of them, at least 16."""
    return max(16, (n + k) // 16)


def _register(buffer: np.ndarray, used: int) -> None:
    key = id(buffer)
    _IN_USE[key] = [weakref.ref(buffer), used]
    weakref.finalize(buffer, _IN_USE.pop, key, None)


def _growable(old: np.ndarray, k: int, dtype: np.dtype) -> tuple[np.ndarray, int] | None:
    """The buffer ``old`` is the in-use view of (its last claimed rows), and the row ``old``
    starts at, when ``k`` more rows fit in it."""
    buffer = old.base
    if buffer is None or not isinstance(buffer, np.ndarray) or old.dtype != dtype or old.ndim == 0:
        return None
    entry = _IN_USE.get(id(buffer))
    if entry is None or entry[0]() is not buffer:
        return None
    if buffer.shape[1:] != old.shape[1:] or not old.flags.c_contiguous or not buffer.flags.c_contiguous:
        return None
    offset_bytes = old.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
    row_bytes = buffer.strides[0] if buffer.ndim and buffer.strides[0] else 1
    start, rest = divmod(offset_bytes, row_bytes)
    if rest or start < 0 or start + old.shape[0] != entry[1] or entry[1] + k > buffer.shape[0]:
        return None
    return buffer, start


def grow_rows(old: np.ndarray, new: np.ndarray, keep: int | None = None) -> np.ndarray:
    """``np.concatenate([old, new])`` (same values and dtype), its last ``keep`` rows when
    given (a sliding window), written in place when ``old`` is the in-use view of a buffer
    with room; else copied into a new buffer with room."""
    n, k = old.shape[0], new.shape[0]
    keep = n + k if keep is None else min(keep, n + k)
    dtype = np.result_type(old, new)
    found = _growable(old, k, dtype)
    if found is None:
        carried = keep - k  # rows of ``old`` the result still holds
        spare = _spare(keep, 0)  # a window slides through its buffer: copied once every ``spare`` dates
        buffer = np.empty((keep + spare, *old.shape[1:]), dtype=dtype)
        if carried > 0:
            buffer[:carried] = old[n - carried:]
        _register(buffer, max(carried, 0))
        start, end = 0, max(carried, 0)
    else:
        buffer, start = found
        end = start + n
    if keep < k:
        new = new[k - keep:]
    buffer[end:end + new.shape[0]] = new
    end += new.shape[0]
    _IN_USE[id(buffer)][1] = end
    return buffer[end - keep:end]


def pad_stocks(ds: xr.Dataset, stocks: np.ndarray) -> xr.Dataset:
    """``ds`` on the stock axis ``stocks`` (a superset), new stocks absent (see :func:`fill_for`)."""
    if ds.sizes.get("stock", 0) == len(stocks) and np.array_equal(ds["stock"].to_numpy(), stocks):
        return ds
    fills = {name: fill_for(ds[name].dtype) for name in ds.data_vars if "stock" in ds[name].dims}
    out = ds.reindex(stock=stocks, fill_value=fills)
    for name in fills:  # reindex keeps dtypes given a fill of the same kind
        out[name] = out[name].astype(ds[name].dtype)
    return out


def append_rows(base: xr.Dataset, rows: Mapping[str, xr.Variable], state: Mapping[str, xr.Variable]) -> xr.Dataset:
    """``base`` (its old state dropped) with the variables ``rows`` appended along ``date``
    (stock axis grown) and the state's variables attached; the arrays grown in place when
    they have room (:mod:`riskmodel.models.update_append`)."""
    base = strip_state(base) if any(str(n).startswith(P) for n in base.variables) else base
    stocks = rows["stock"].values
    if base.sizes["stock"] != len(stocks):  # new listings: every array copied onto the longer axis
        base = pad_stocks(base, stocks)
    coord_names = [n for n in base.coords if n != "date"]
    data: dict[str, xr.Variable] = {}
    for name, var in base.data_vars.items():
        var = var.variable
        if "date" in var.dims:
            new = rows[name].transpose(*var.dims).values
            if var.dims[0] == "date":
                values = grow_rows(var.values, new)
            else:  # pragma: no cover - every model array has date first
                values = np.concatenate([var.values, new], axis=var.dims.index("date"))
            var = xr.Variable(var.dims, values, attrs=dict(var.attrs))
        data[name] = var
    data = {**{n: v for n, v in data.items() if "date" in v.dims}, **{n: v for n, v in data.items() if "date" not in v.dims}}
    data.update({n: v for n, v in state.items() if n not in STATE_COORDS})
    dates = np.concatenate([base["date"].values, rows["date"].values.astype(base["date"].dtype)])
    window = state[f"{P}window"]
    fresh = xr.Coordinates({"date": dates, f"{P}window": window.values})
    coords = xr.Coordinates({**{n: base.variables[n] for n in coord_names}, **fresh.variables},
                            indexes={**{n: base.xindexes[n] for n in coord_names}, **fresh.xindexes})
    return xr.Dataset(data, coords=coords, attrs=dict(base.attrs))
