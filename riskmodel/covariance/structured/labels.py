"""The stock and factor axes of an operator, and labelled outputs on them.

:class:`AxisLabels` holds the stock ids and factor names and builds their coordinates (with
their pandas indexes) once, so that labelling each output of the operator or of a risk
decomposition is cheap: the coordinates are shared, never rebuilt or deep-copied.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

__all__ = ["AxisLabels"]


class AxisLabels:
    """Stock ids and factor names (read-only str arrays) and DataArrays labelled on them.

    Parameters
    ----------
    stocks : ndarray (N,) str
        Stock ids, in the operator's order (flagged read-only).
    factors : ndarray (m,) str
        Factor names (flagged read-only); they label both ``factor`` and ``factor_``.
    """

    def __init__(self, stocks: np.ndarray, factors: np.ndarray) -> None:
        self.stocks = stocks
        self.factors = factors
        self.stocks.setflags(write=False)
        self.factors.setflags(write=False)

    @cached_property
    def stock_index(self) -> pd.Index:
        """The stock ids as a pandas Index (position lookups when aligning weights)."""
        return pd.Index(self.stocks)

    @cached_property
    def coords(self) -> dict[str, xr.Coordinates]:
        """Coordinates (with their pandas index) built once: labelling an output is then cheap."""
        return {
            "stock": xr.Coordinates({"stock": self.stocks}),
            "factor": xr.Coordinates({"factor": self.factors}),
            "factor_": xr.Coordinates({"factor_": self.factors}),
        }

    def da(
        self,
        values: np.ndarray,
        dims: tuple[str, ...],
        name: str,
        extra: dict[str, Any] | xr.Coordinates | None = None,
    ) -> xr.DataArray:
        """A DataArray on ``dims``; stock/factor coords from the cache, others from ``extra``
        (labels, or prebuilt Coordinates reused as they are)."""
        variables: dict[str, xr.Variable] = {}
        indexes: dict[str, Any] = {}
        for dim in dims:
            cached = self.coords.get(dim)
            if cached is None and isinstance(extra, xr.Coordinates) and dim in extra.xindexes:
                cached = extra
            if cached is not None:
                variables[dim] = cached.variables[dim]
                indexes[dim] = cached.xindexes[dim]
            elif isinstance(extra, dict) and extra.get(dim) is not None:
                labels = np.asarray(extra[dim])
                variables[dim] = xr.Variable(dim, labels)
                indexes[dim] = PandasIndex(pd.Index(labels), dim)
        coords = xr.Coordinates(variables, indexes=indexes)
        return xr.DataArray(values, dims=dims, coords=coords, name=name)
