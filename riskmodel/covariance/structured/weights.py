"""Weights and vectors on the operator's stocks: alignment in, labelling out.

Weights come in as ndarrays, pandas objects or DataArrays. An ndarray is read in the
operator's stock order (its length is checked); labelled weights are aligned on ``stock``
by id. A weight on a stock the operator does not know is an
:class:`~riskmodel.errors.AlignmentError` naming the stock; a stock of the operator that
the weights do not mention holds zero weight (the book is a sub-portfolio of the operator's
universe); NaN/inf weights are a :class:`~riskmodel.errors.NonFiniteError` naming the
stocks and portfolios. Results go back out labelled like the weights came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.covariance.structured.labels import AxisLabels
from riskmodel.covariance.structured.validation import as_float, as_ids, check_unique, some_ids
from riskmodel.errors import AlignmentError, DimensionError, NonFiniteError, VariableTypeError

__all__ = ["WeightsLike", "Aligned", "WeightAlignment"]

WeightsLike = Union[np.ndarray, pd.Series, pd.DataFrame, xr.DataArray, Sequence[float]]


@dataclass(frozen=True)
class Aligned:
    """Weights aligned on the operator's stocks, as rows ``(P, N)``, and how to label outputs.

    ``kind`` is ``"ndarray"``, ``"pandas"`` or ``"xarray"``; ``batched`` is False for one
    portfolio (outputs are scalars / (stock,)). ``stock_last`` tells whether the input
    held stocks on its last axis (rows = portfolios) or on its first (columns).
    """

    values: np.ndarray
    batched: bool
    kind: str
    batch_dim: str = "portfolio"
    batch_labels: np.ndarray | None = None
    stock_last: bool = True

    @property
    def n_portfolios(self) -> int:
        """P, the number of portfolios (rows of ``values``)."""
        return self.values.shape[0]


class WeightAlignment:
    """Alignment of weights on the operator's stocks and labelling of the results (a mixin
    of :class:`~riskmodel.covariance.structured.StructuredCovariance`).

    It uses the operator's ``_stocks`` (ids in order), ``n_stocks`` and ``_labels`` (its
    :class:`~riskmodel.covariance.structured.labels.AxisLabels`).
    """

    _stocks: np.ndarray
    _labels: AxisLabels
    n_stocks: int

    def _align(
        self, obj: Any, variable: str = "weights", *, matrix_layout: bool = False, check_finite: bool = True
    ) -> Aligned:
        """Weights (or vectors) on the operator's stocks as ``(P, N)`` rows, plus labels.

        ``matrix_layout`` reads a 2-D ndarray as ``(N, k)`` columns (matvec / solve)
        instead of ``(P, N)`` rows (portfolios). ``check_finite=False`` leaves the NaN/inf
        check to the caller (:meth:`_check_aligned`), which can do it on a cheaper product.
        """
        if isinstance(obj, xr.DataArray):
            return self._align_xarray(obj, variable, check_finite)
        if isinstance(obj, pd.Series):
            values = as_float(obj.to_numpy(), variable)[None, :]
            return self._scatter(values, as_ids(obj.index), variable, kind="pandas", batched=False,
                                 check_finite=check_finite)
        if isinstance(obj, pd.DataFrame):
            return self._align_frame(obj, variable, check_finite)
        if isinstance(obj, (xr.Dataset, dict)):
            raise VariableTypeError(
                f"{variable} must be an ndarray, a pandas Series/DataFrame or a DataArray, got {type(obj).__name__}."
            )
        return self._align_ndarray(as_float(obj, variable), variable, matrix_layout, check_finite)

    def _check_aligned(self, a: Aligned, variable: str = "weights") -> None:
        """The NaN/inf check skipped by ``_align(check_finite=False)``, on the aligned rows
        (stocks the weights did not mention are 0 there, so the stocks named are the same)."""
        self._check_finite(a.values, variable, self._stocks, a.batch_labels)

    def _align_ndarray(self, arr: np.ndarray, variable: str, matrix_layout: bool, check_finite: bool = True) -> Aligned:
        n = self.n_stocks
        if arr.ndim == 1:
            if arr.shape[0] != n:
                raise DimensionError(
                    f"{variable} has length {arr.shape[0]}, expected {n} (one value per stock of the "
                    "operator, in the order of `.stocks`); pass a labelled Series/DataArray to align by id."
                )
            values, batched, stock_last = arr[None, :], False, True
        elif arr.ndim == 2:
            axis = 0 if matrix_layout else 1
            if arr.shape[axis] != n:
                want = f"({n}, k)" if matrix_layout else f"(P, {n})"
                raise DimensionError(
                    f"{variable} has shape {arr.shape}, expected {want}: {n} stocks on axis {axis} "
                    "in the order of `.stocks`."
                )
            values = arr.T if matrix_layout else arr
            batched, stock_last = True, not matrix_layout
        else:
            raise DimensionError(f"{variable} must be 1-D (stock,) or 2-D, got shape {arr.shape}.")
        if check_finite:
            self._check_finite(values, variable, self._stocks, None)
        return Aligned(values, batched, "ndarray", stock_last=stock_last)

    def _align_frame(self, df: pd.DataFrame, variable: str, check_finite: bool = True) -> Aligned:
        cols, rows = as_ids(df.columns), as_ids(df.index)
        if df.columns.name == "stock":
            stock_last = True
        elif df.index.name == "stock":
            stock_last = False
        else:
            known = self._labels.stock_index
            stock_last = bool(known.get_indexer(cols).min(initial=0) >= 0) or not bool(
                known.get_indexer(rows).min(initial=0) >= 0
            )
        values = as_float(df.to_numpy(), variable)
        if stock_last:
            name = df.index.name if df.index.name is not None else "portfolio"
            return self._scatter(values, cols, variable, kind="pandas", batched=True, batch_dim=str(name),
                                 batch_labels=df.index.to_numpy(), stock_last=True, check_finite=check_finite)
        name = df.columns.name if df.columns.name is not None else "portfolio"
        return self._scatter(values.T, rows, variable, kind="pandas", batched=True, batch_dim=str(name),
                             batch_labels=df.columns.to_numpy(), stock_last=False, check_finite=check_finite)

    def _align_xarray(self, da: xr.DataArray, variable: str, check_finite: bool = True) -> Aligned:
        if "stock" not in da.dims:
            raise DimensionError(f"{variable} must have a 'stock' dim, got dims {da.dims}.")
        others = [dim for dim in da.dims if dim != "stock"]
        if len(others) > 1:
            raise DimensionError(
                f"{variable} has dims {da.dims}; expected ('stock',) or ('portfolio', 'stock') "
                "(one batch dim at most: stack the others first)."
            )
        ids = as_ids(da["stock"].values)
        if not others:
            values = as_float(da.values, variable)[None, :]
            return self._scatter(values, ids, variable, kind="xarray", batched=False, check_finite=check_finite)
        dim = others[0]
        stock_last = da.dims[-1] == "stock"
        values = as_float(da.transpose(dim, "stock").values, variable)
        labels = da[dim].values if dim in da.coords else None
        return self._scatter(values, ids, variable, kind="xarray", batched=True, batch_dim=str(dim),
                             batch_labels=labels, stock_last=stock_last, check_finite=check_finite)

    def _scatter(
        self,
        values: np.ndarray,
        ids: np.ndarray,
        variable: str,
        *,
        kind: str,
        batched: bool,
        batch_dim: str = "portfolio",
        batch_labels: np.ndarray | None = None,
        stock_last: bool = True,
        check_finite: bool = True,
    ) -> Aligned:
        """Place labelled values ``(P, k)`` on ids onto the operator's stocks ``(P, N)``."""
        if check_finite:
            self._check_finite(values, variable, ids, batch_labels)
        if ids.shape[0] == self.n_stocks and np.array_equal(ids, self._stocks):
            full = values
        else:
            check_unique(ids, "stock", variable)
            pos = self._labels.stock_index.get_indexer(ids)
            unknown = ids[pos < 0]
            if unknown.size:
                raise AlignmentError(
                    f"{variable} holds stocks the covariance does not know: {some_ids(unknown)}. "
                    "A weight on a stock without a risk forecast cannot be priced; drop these "
                    "stocks (or give them a forecast) before asking for risk."
                )
            full = np.zeros((values.shape[0], self.n_stocks))
            full[:, pos] = values
        return Aligned(full, batched, kind, batch_dim, batch_labels, stock_last)

    @staticmethod
    def _check_finite(values: np.ndarray, variable: str, ids: np.ndarray, batch_labels: Any) -> None:
        if np.isfinite(values).all():
            return
        rows, cols = np.nonzero(~np.isfinite(values))
        where = f"stock(s) {some_ids(np.unique(ids[cols]))}"
        if values.shape[0] > 1:
            labels = np.arange(values.shape[0]) if batch_labels is None else np.asarray(batch_labels)
            where += f" in portfolio(s) {some_ids(np.unique(labels[rows]))}"
        raise NonFiniteError(
            f"{variable} holds NaN/inf at {where}; a missing weight is not zero: set it to 0 "
            "explicitly, or drop the stock from the weights."
        )

    # -- output labelling ----------------------------------------------------------------

    @staticmethod
    def _wrap_scalar(values: np.ndarray, a: Aligned, name: str) -> Any:
        """One number per portfolio, labelled like the weights came in."""
        if not a.batched:
            return float(values[0])
        if a.kind == "ndarray":
            return values
        if a.kind == "pandas":
            return pd.Series(values, index=pd.Index(a.batch_labels, name=a.batch_dim), name=name)
        coords = {} if a.batch_labels is None else {a.batch_dim: a.batch_labels}
        return xr.DataArray(values, dims=(a.batch_dim,), coords=coords, name=name)

    def _wrap_stock(self, values: np.ndarray, a: Aligned, name: str) -> Any:
        """A ``(P, N)`` result on the operator's stocks, labelled like the input."""
        if a.kind == "ndarray":
            if not a.batched:
                return values[0]
            return values if a.stock_last else values.T
        stock_index = pd.Index(self._stocks, name="stock")
        if a.kind == "pandas":
            if not a.batched:
                return pd.Series(values[0], index=stock_index, name=name)
            frame = pd.DataFrame(values, index=pd.Index(a.batch_labels, name=a.batch_dim), columns=stock_index)
            return frame if a.stock_last else frame.T
        if not a.batched:
            return self._labels.da(values[0], ("stock",), name)
        out = self._labels.da(values, (a.batch_dim, "stock"), name, {a.batch_dim: a.batch_labels})
        return out if a.stock_last else out.transpose("stock", a.batch_dim)
