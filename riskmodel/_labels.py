"""The labelled edge: one implementation of each check and conversion between the
user's labelled ``(date, stock)`` inputs and the ndarrays the stages compute on.

Every public function that takes labelled data goes through these helpers, so that a
bad input gets the same clear error everywhere: the variable, the stock and the date at
fault, and what to do. The helpers import only numpy, pandas, xarray and
:mod:`riskmodel.errors` (they sit on the ground floor of the package).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    InvalidParameterError,
    NonFiniteError,
    VariableTypeError,
)

__all__ = [
    "fmt_date",
    "str_ids",
    "is_label_dtype",
    "as_date_stock",
    "float_values",
    "first_infinite",
    "reject_infinite",
    "check_aligned",
    "codes_from_values",
]


def fmt_date(value: Any) -> str:
    """A date for messages: the ISO day, or the full timestamp when it has a time part;
    anything that is not a date is shown as it is."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    if ts is pd.NaT:
        return "NaT"
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()


def is_label_dtype(dtype: np.dtype) -> bool:
    """True for numpy unicode/bytes, object, and numpy's variable-width StringDType."""
    return dtype.kind in ("U", "S", "O", "T")


def str_ids(values: Any) -> np.ndarray:
    """Labels (stock ids, industry labels) as a numpy unicode array, exactly as written.

    Bytes are decoded as UTF-8; ``None`` and NaN become ``""`` (the callers treat an empty
    label as missing). Numbers become their ``str``.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    obj = arr.astype(object)
    return np.where(pd.isna(obj), "", obj).astype(str)


def as_date_stock(x: Any, name: str, *, numeric: bool = True) -> xr.DataArray:
    """Check that ``x`` is a DataArray with dims exactly ``{date, stock}``; return it
    transposed to ``(date, stock)``.

    Parameters
    ----------
    x : Any
        The user's input.
    name : str
        How the error messages name it (e.g. ``"neutralise: signal"``).
    numeric : bool
        Also require a real numeric (or boolean) dtype.
    """
    if not isinstance(x, xr.DataArray):
        raise VariableTypeError(
            f"{name}: expected an xarray DataArray (date, stock), got {type(x).__name__}; "
            "wrap it with xr.DataArray(values, dims=('date', 'stock'), coords=...)."
        )
    if set(x.dims) != {"date", "stock"}:
        raise DimensionError(
            f"{name}: dims {tuple(x.dims)} but (date, stock) is needed; rename or "
            "transpose the variable to dims ('date', 'stock')."
        )
    if numeric and x.dtype.kind not in "fiub":
        raise VariableTypeError(
            f"{name}: dtype {x.dtype} is not numeric; convert it to float (NaN = missing)."
        )
    return x.transpose("date", "stock")


def first_infinite(values: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """``(count, index of the first)`` of the ±inf cells of ``values``, or None."""
    bad = np.isinf(values)
    if not bad.any():
        return None
    return int(bad.sum()), tuple(int(i) for i in np.argwhere(bad)[0])


def reject_infinite(
    values: np.ndarray,
    name: str,
    labels: Sequence[tuple[str, Any]] = (),
    *,
    hint: str = "use NaN for a missing value",
) -> None:
    """Raise :class:`NonFiniteError` when ``values`` holds ±inf, naming where.

    Parameters
    ----------
    values : ndarray
        The array to check (any number of dimensions).
    name : str
        The variable's name in the message.
    labels : sequence of (axis name, labels or None)
        One pair per leading axis of ``values``: the message reads ``stock 'X' on
        2015-01-02`` for the axes named ``stock`` and ``date`` (dates formatted by
        :func:`fmt_date`), ``<axis> <label>`` for the others, and the row number where
        the labels are None.
    hint : str
        What to do, the message's last clause.
    """
    found = first_infinite(values)
    if found is None:
        return
    count, index = found
    where = []
    for (axis, axis_labels), i in zip(labels, index):
        if axis_labels is None:
            where.append(f"{axis} row {i}")
        elif axis == "date":
            where.append(f"on {fmt_date(np.asarray(axis_labels)[i])}")
        else:
            where.append(f"{axis} {str(np.asarray(axis_labels)[i])!r}")
    places = [w for w in where if not w.startswith("on ")]
    day = [w for w in where if w.startswith("on ")]
    at = " ".join([", ".join(places), *day]).strip() or f"index {index}"
    raise NonFiniteError(
        f"{name}: {count} infinite value(s), the first ({values[index]}) for {at}; {hint}."
    )


def float_values(da: xr.DataArray, name: str, *, inf_checked: bool = False) -> np.ndarray:
    """A ``(date, stock)`` DataArray's values as a C-contiguous float64 array.

    ±inf is a :class:`NonFiniteError` naming the stock and date, unless ``inf_checked``
    (the input was validated already, e.g. a validated panel).
    """
    if da.dtype.kind not in "fiub":
        raise VariableTypeError(
            f"{name}: dtype {da.dtype} is not numeric; convert it to float (NaN = missing)."
        )
    x = np.ascontiguousarray(da.values, dtype=np.float64)
    if not inf_checked:
        reject_infinite(
            x, name, [(dim, da[dim].values if dim in da.coords else None) for dim in da.dims],
            hint="replace it by NaN (missing) or a finite value",
        )
    return x


def check_aligned(
    ref: xr.DataArray, other: xr.DataArray, ref_name: str, name: str, dims: Sequence[str]
) -> None:
    """Exact alignment of ``other`` on ``ref`` along ``dims`` (no silent reindexing).

    Raises :class:`AlignmentError` listing up to five missing and extra ids, or saying
    that the ids are the same in another order. A dim that ``other`` lacks is skipped.
    """
    for dim in dims:
        if dim not in other.dims:
            continue
        index = ref.xindexes.get(dim)
        if index is not None and index is other.xindexes.get(dim):
            continue  # one index object (variables of one Dataset): the same ids, no copy read
        a = ref[dim].values
        b = other[dim].values
        if a.shape == b.shape and np.array_equal(a, b):
            continue
        sa, sb = set(a.tolist()), set(b.tolist())
        missing = sorted(map(str, sa - sb))[:5]
        extra = sorted(map(str, sb - sa))[:5]
        if not missing and not extra:
            raise AlignmentError(
                f"{name}: same {dim} ids as {ref_name} but in a different order; reindex it "
                f"with {name}.reindex({dim}={ref_name}.{dim})."
            )
        raise AlignmentError(
            f"{name}: {dim} ids differ from {ref_name} (missing {missing}, extra {extra}); "
            f"align the inputs with reindex({dim}=...) before the call (no silent alignment)."
        )


def codes_from_values(values: np.ndarray, labels_attr: Any, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Industry membership as int32 codes (``-1`` = missing) and their labels.

    Parameters
    ----------
    values : ndarray
        str labels (``""``, None or NaN = missing), integer codes (negative = missing),
        or whole-number floats (NaN = missing).
    labels_attr : Any
        The variable's ``labels`` attribute for integer codes (the on-disk form), or None:
        then the distinct codes, sorted, are the labels.
    name : str
        The variable's name for messages.

    Returns
    -------
    codes : ndarray of int32, the shape of ``values``
    labels : tuple of str, sorted for str input; ``labels[codes]`` is each cell's label.
    """
    kind = values.dtype.kind
    if kind == "f":
        missing = ~np.isfinite(values)
        if np.any(values[~missing] != np.round(values[~missing])):
            raise VariableTypeError(
                f"{name}: float industry values that are not whole codes; give str labels or "
                "integer codes (-1 or NaN = missing)."
            )
        values = np.where(missing, -1, values).astype(np.int64)
        kind = "i"
    if kind in "iu":
        v = values.astype(np.int64)
        if labels_attr is not None:
            labels = tuple(str(s) for s in np.atleast_1d(labels_attr))
            if v.size and v.max(initial=-1) >= len(labels):
                raise InvalidParameterError(
                    f"{name}: code {int(v.max())} is beyond its {len(labels)} labels "
                    "(attribute 'labels'); fix the codes or the labels."
                )
            return np.where(v >= 0, v, -1).astype(np.int32), labels
        present = v >= 0
        uniq = np.unique(v[present])
        codes = np.full(v.shape, -1, dtype=np.int32)
        codes[present] = np.searchsorted(uniq, v[present]).astype(np.int32)
        return codes, tuple(str(u) for u in uniq)
    as_str = str_ids(values)
    uniq, inverse = np.unique(as_str, return_inverse=True)
    inverse = inverse.reshape(as_str.shape)
    keep = np.char.str_len(uniq) > 0
    offset = int((~keep).sum())  # "" sorts first when present: drop it and shift the codes
    codes = (inverse - offset).astype(np.int32)
    codes[as_str == ""] = -1
    return codes, tuple(str(x) for x in uniq[keep])
