"""A :class:`scipy.sparse.linalg.LinearOperator` view of a structured covariance.

ndarrays go through scipy's own machinery, read in the operator's stock order. Labelled
inputs (DataArrays, pandas Series and DataFrames) are aligned on ``stock`` by id exactly as
:meth:`StructuredCovariance.matvec <riskmodel.covariance.structured.StructuredCovariance.matvec>`
does — a stock the operator does not know is an :class:`~riskmodel.errors.AlignmentError`
naming it, an operator stock the input does not mention counts as 0 — and come back
labelled; scipy alone would drop the labels and read the values by position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse.linalg import LinearOperator

if TYPE_CHECKING:
    from riskmodel.covariance.structured.operator import StructuredCovariance

__all__ = ["StructuredLinearOperator"]

#: Inputs aligned by stock id rather than read by position.
_LABELLED = (xr.DataArray, pd.Series, pd.DataFrame)


def _aligning(name: str, what: str) -> Callable[..., Any]:
    """The method ``name`` of :class:`~scipy.sparse.linalg.LinearOperator`, except that a
    labelled input goes to :meth:`StructuredCovariance.matvec` (aligned on ``stock``, labelled
    output): Σ is symmetric, so every product from the left or the right is ``Σ x``."""
    scipy_method = getattr(LinearOperator, name)

    def method(self: "StructuredLinearOperator", x: Any) -> Any:
        if isinstance(x, _LABELLED):
            return self.cov.matvec(x)
        return scipy_method(self, x)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"{what}; a labelled input is aligned on ``stock`` (see the class notes)."
    return method


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

    dot = _aligning("dot", "``Σ x``")
    matvec = _aligning("matvec", "``Σ x`` for one vector")
    matmat = _aligning("matmat", "``Σ X`` for columns ``X (N, k)``")
    rmatvec = _aligning("rmatvec", "``Σᴴ x = Σ x`` (symmetric)")
    rmatmat = _aligning("rmatmat", "``Σᴴ X = Σ X`` (symmetric)")

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
