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
"""

from __future__ import annotations

import weakref

import numpy as np
import xarray as xr

__all__ = ["append_along_date", "grow_rows"]

#: id(buffer) -> [weak reference to the buffer, rows in use]
_IN_USE: dict[int, list] = {}


def _spare(n: int, k: int) -> int:
    """Rows of room left after ``n + k`` rows: about 1/16 of the history, at least 16."""
    return max(16, (n + k) // 16)


def _register(buffer: np.ndarray, used: int) -> None:
    key = id(buffer)
    _IN_USE[key] = [weakref.ref(buffer), used]
    weakref.finalize(buffer, _IN_USE.pop, key, None)


def _growable(old: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray | None:
    """The buffer ``old`` is the in-use view of, when ``k`` more rows fit in it."""
    buffer = old.base
    if buffer is None or not isinstance(buffer, np.ndarray) or old.dtype != dtype:
        return None
    entry = _IN_USE.get(id(buffer))
    if entry is None or entry[0]() is not buffer or entry[1] != old.shape[0]:
        return None
    if buffer.shape[1:] != old.shape[1:] or buffer.shape[0] < old.shape[0] + k:
        return None
    if old.__array_interface__["data"][0] != buffer.__array_interface__["data"][0] or not old.flags.c_contiguous:
        return None
    return buffer


def grow_rows(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``np.concatenate([old, new])`` (same values and dtype), written in place when ``old``
    is the in-use view of a buffer with room; else copied into a new buffer with room."""
    n, k = old.shape[0], new.shape[0]
    dtype = np.result_type(old, new)
    buffer = _growable(old, k, dtype)
    if buffer is None:
        buffer = np.empty((n + k + _spare(n, k), *old.shape[1:]), dtype=dtype)
        buffer[:n] = old
        _register(buffer, n)
    buffer[n:n + k] = new
    _IN_USE[id(buffer)][1] = n + k
    return buffer[:n + k]


def append_along_date(base: xr.Dataset, rows: xr.Dataset, names: list[str]) -> xr.Dataset:
    """``base`` (same stock axis as ``rows``) with ``rows``' variables ``names`` appended
    along ``date``: the values of ``xr.concat``, the arrays grown by :func:`grow_rows`."""
    out = base.drop_dims("date")
    dates = np.concatenate([base["date"].to_numpy(), rows["date"].to_numpy().astype(base["date"].dtype)])
    out = out.assign_coords(date=dates)
    for name in names:
        old = base[name].variable
        new = rows[name].transpose(*old.dims).to_numpy()
        if old.dims[0] == "date":
            data = grow_rows(old.to_numpy(), new)
        else:
            data = np.concatenate([old.to_numpy(), new], axis=old.dims.index("date"))
        out[name] = xr.Variable(old.dims, data, attrs=dict(old.attrs))
    return out
