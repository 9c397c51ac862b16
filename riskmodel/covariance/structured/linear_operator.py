"""A :class:`scipy.sparse.linalg.LinearOperator` view of a structured covariance.

ndarrays go through scipy's own machinery, read in the operator's stock order. Labelled
inputs (DataArrays, pandas Series and DataFrames) are aligned on ``stock`` by id exactly as
:meth:`StructuredCovariance.matvec <riskmodel.covariance.structured.StructuredCovariance.matvec>`
does — a stock the operator does not know is an :class:`~riskmodel.errors.AlignmentError`
naming it, an operator stock the input does not mention counts as 0 — and come back
labelled; scipy alone would drop the labels and read the values by position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse.linalg import LinearOperator

if TYPE_CHECKING:
    from riskmodel.covariance.structured.operator import StructuredCovariance

__all__ = ["StructuredLinearOperator"]

#: Inputs aligned by stock id rather than read by position.
_LABELLED = (xr.DataArray, pd.Series, pd.DataFrame)


class StructuredLinearOperator(LinearOperator):
    """:class:`scipy.sparse.linalg.LinearOperator` view of a :class:`StructuredCovariance`.

    Parameters
    ----------
    cov : StructuredCovariance

    Notes
    -----
    Symmetric: the adjoint and the transpose are the operator itself. ndarrays are read in
    the order of ``cov.stocks``. A DataArray (with a ``stock`` dim), Series or DataFrame
    given to ``op @ x``, ``op(x)``, ``op.dot``, ``op.matvec``, ``op.matmat``, ``op.rmatvec``
    or ``op.rmatmat`` is aligned on ``stock`` like :meth:`StructuredCovariance.matvec` and
    the result is labelled like it. (Composite operators that scipy builds, such as
    ``2 * op`` or ``op + I``, convert their input to an ndarray before this view sees it.)
    """

    def __init__(self, cov: "StructuredCovariance") -> None:
        self.cov = cov
        super().__init__(dtype=np.dtype(np.float64), shape=cov.shape)

    # -- labelled inputs: aligned by stock -----------------------------------------------

    def dot(self, x: Any) -> Any:
        """``Σ x``; labelled ``x`` is aligned on ``stock`` (see the class notes)."""
        if isinstance(x, _LABELLED):
            return self.cov.matvec(x)
        return super().dot(x)

    def matvec(self, x: Any) -> Any:
        """``Σ x`` for one vector; labelled ``x`` is aligned on ``stock``."""
        if isinstance(x, _LABELLED):
            return self.cov.matvec(x)
        return super().matvec(x)

    def matmat(self, X: Any) -> Any:
        """``Σ X`` for columns ``X (N, k)``; labelled ``X`` is aligned on ``stock``."""
        if isinstance(X, _LABELLED):
            return self.cov.matvec(X)
        return super().matmat(X)

    def rmatvec(self, x: Any) -> Any:
        """``Σᴴ x = Σ x`` (symmetric); labelled ``x`` is aligned on ``stock``."""
        if isinstance(x, _LABELLED):
            return self.cov.matvec(x)
        return super().rmatvec(x)

    def rmatmat(self, X: Any) -> Any:
        """``Σᴴ X = Σ X`` (symmetric); labelled ``X`` is aligned on ``stock``."""
        if isinstance(X, _LABELLED):
            return self.cov.matvec(X)
        return super().rmatmat(X)

    def _rdot(self, x: Any) -> Any:
        # ``x @ op``: rows in, rows out, as ``x @ cov``
        if isinstance(x, _LABELLED):
            return self.cov.__rmatmul__(x)
        return super()._rdot(x)

    # -- ndarrays ------------------------------------------------------------------------

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        return self.cov._sigma_rows(x)[0]

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return self.cov._sigma_rows(X.T).T

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._matmat(X)

    def _adjoint(self) -> "StructuredLinearOperator":
        return self

    def _transpose(self) -> "StructuredLinearOperator":
        return self
