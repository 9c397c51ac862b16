"""Constants and small helpers shared by the exposure modules (cleaning, neutralisation,
the structured exposures)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from riskmodel._labels import fmt_date
from riskmodel.errors import InvalidParameterError

EPS = np.finfo(np.float64).eps
#: data-error bound (sigmas) used by build_exposures (clean's default)
DATA_ERROR = 10.0
#: standardisations (and data-error rounds) used by build_exposures (clean's default)
MAX_PASSES = 5
#: float64 cells per chunk of dates in the batched least squares (~64 MB)
CHUNK_CELLS = 8_000_000


def name_of(da: xr.DataArray, default: str) -> str:
    """The DataArray's name for messages, or ``default`` when it has none."""
    return str(da.name) if da.name is not None else default


def wrap(values: np.ndarray, like: xr.DataArray, name: Any, attrs: dict[str, Any]) -> xr.DataArray:
    """``values`` (date, stock) as a DataArray with ``like``'s coordinates."""
    return xr.DataArray(
        values,
        dims=("date", "stock"),
        coords={"date": like["date"].values, "stock": like["stock"].values},
        name=name,
        attrs=attrs,
    )


def date_chunks(n_dates: int, cells_per_date: int) -> list[slice]:
    """Slices of dates holding about :data:`CHUNK_CELLS` float64 cells each."""
    size = max(1, CHUNK_CELLS // max(1, cells_per_date))
    return [slice(s, min(s + size, n_dates)) for s in range(0, n_dates, size)]


def reject_negative(values: np.ndarray, like: xr.DataArray, name: str, what: str, rule: str,
                    *, show_value: bool = False) -> None:
    """Raise :class:`InvalidParameterError` at the first negative cell of ``values`` (date,
    stock): ``"<name>: negative <what> [<value>] for stock 'X' on <date>; <rule>."``."""
    negative = values < 0
    if not negative.any():
        return
    t, n = np.argwhere(negative)[0]
    value = f" {float(values[t, n])!r}" if show_value else ""
    raise InvalidParameterError(
        f"{name}: negative {what}{value} for stock {str(like['stock'].values[n])!r} on "
        f"{fmt_date(like['date'].values[t])}; {rule}."
    )
