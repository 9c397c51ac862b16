"""Products with ``Σ = B Σ_f Bᵀ + D`` on rows of ndarrays (rows = portfolios or vectors).

The numeric core of :class:`~riskmodel.covariance.structured.StructuredCovariance`, on
aligned C-ordered ``(P, N)`` float64 rows, with ``F = L Lᵀ``, ``B̃ = B L`` and
``M = I + B̃ᵀ D⁻¹ B̃`` (METHODS §9):

* ``σ²(w) = ‖B̃ᵀ w‖² + Σ_n d_n w_n²`` (batched: one GEMM ``W B̃`` for P portfolios);
* ``Σ x = B (F (Bᵀ x)) + d ∘ x``;
* ``Σ⁻¹ x = D⁻¹x − D⁻¹ B̃ M⁻¹ B̃ᵀ D⁻¹ x`` (Woodbury; M is SPD with eigenvalues ≥ 1, so its
  Cholesky is stable and F is never inverted).

When most columns of ``B`` are indicators — the market column of ones and one-hot
industries — products with ``B`` go through :mod:`riskmodel.covariance.exposure_groups`: a
lookup by group code plus the few dense (style) columns, one fused numba pass per pair of
portfolios. Same numbers, summed in another order; ~1 + k_styles instead of m multiply-adds
per stock.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.linalg

from riskmodel._blas import blas_threads
from riskmodel.covariance.exposure_groups import GroupedExposures, group_exposures
import riskmodel.covariance.structured.passes as passes
from riskmodel.covariance.structured.validation import readonly

__all__ = ["RowProducts"]

#: Fewest rows for which a product pass builds the grouped split of ``B`` (decompositions
#: always do).
GROUPED_MIN_ROWS = 4


class RowProducts:
    """``Σ w``, ``wᵀ Σ w``, ``Bᵀ w``, ``Σ⁻¹ x`` and per-stock contributions on ndarray rows
    (a mixin of :class:`~riskmodel.covariance.structured.StructuredCovariance`).

    It uses the operator's read-only ``_B`` (N, m), ``_F`` (m, m), ``_d`` (N) and
    ``_Bt = B L`` (N, m); the factorisations built from them are cached on first use.
    """

    _B: np.ndarray
    _F: np.ndarray
    _d: np.ndarray
    _Bt: np.ndarray

    # -- cached factorisations -----------------------------------------------------------

    @cached_property
    def _B_T(self) -> np.ndarray:
        """``Bᵀ`` (m, N) C-contiguous: both GEMMs of a batch decomposition read it row-wise."""
        return readonly(self._B.T)

    @cached_property
    def _inv_d(self) -> np.ndarray:
        return readonly(1.0 / self._d)

    @cached_property
    def _sqrt_d(self) -> np.ndarray:
        return readonly(np.sqrt(self._d))

    @cached_property
    def _chol_m(self) -> np.ndarray:
        """Lower Cholesky factor of ``M = I + B̃ᵀ D⁻¹ B̃`` (m×m, eigenvalues ≥ 1)."""
        scaled = self._Bt * self._inv_d[:, None]
        m_mat = self._Bt.T @ scaled
        m_mat[np.diag_indices_from(m_mat)] += 1.0
        m_mat = 0.5 * (m_mat + m_mat.T)
        return readonly(np.linalg.cholesky(m_mat))

    # -- kernels on rows ------------------------------------------------------------------

    @cached_property
    def _groups(self) -> GroupedExposures | None:
        """``B`` split into columns looked up by group (market, industries) and dense ones
        (styles), for the grouped kernel; None when plain GEMMs with ``B`` are as fast."""
        return group_exposures(self._B)

    def _grouped(self, rows: int) -> GroupedExposures | None:
        """The grouped split for a pass over ``rows`` portfolios: once built, always; a few
        rows (a solve's refinement step, one variance) do not build it (a few ms, once)."""
        if rows >= GROUPED_MIN_ROWS or "_groups" in self.__dict__:
            return self._groups
        return None

    def _variance_rows(self, w: np.ndarray) -> np.ndarray:
        groups = self._grouped(w.shape[0])
        if groups is not None:
            _, _, factor_var, specific_var = groups.moments(w, self._F, self._d, threads=passes.pass_threads(w.size))
            return factor_var + specific_var
        y = w @ self._Bt
        return np.einsum("pk,pk->p", y, y) + passes.weighted_sq(w, self._d)

    def _sigma_rows(self, x: np.ndarray) -> np.ndarray:
        groups = self._grouped(x.shape[0])
        if groups is not None:
            return groups.apply(x, self._F, self._d, threads=passes.pass_threads(x.size))
        out = (x @ self._Bt) @ self._Bt.T
        out += x * self._d
        return out

    def _solve_rows(self, x: np.ndarray, refine: int = 1) -> np.ndarray:
        """``Σ⁻¹`` on rows: Woodbury, then ``refine`` steps of iterative refinement."""
        out = self._woodbury_rows(x)
        for _ in range(refine):
            out += self._woodbury_rows(x - self._sigma_rows(out))
        return out

    def _exposure_rows(self, w: np.ndarray) -> np.ndarray:
        """``x = W B`` (P, m) for C-ordered rows ``w``.

        On one BLAS thread ``(Bᵀ Wᵀ)ᵀ`` is the faster layout of this skinny GEMM (~15%,
        OpenBLAS 0.3.31); with several threads ``W B`` splits better (the other layout
        stalled on a busy machine), so that one is used then.
        """
        groups = self._grouped(w.shape[0])
        if groups is not None:
            return groups.exposures(w, threads=passes.pass_threads(w.size))
        if w.shape[0] > 1 and blas_threads() == 1:
            return (self._B_T @ w.T).T
        return w @ self._B

    def _per_stock_rows(
        self, w: np.ndarray, fx: np.ndarray, factor_var: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Specific variance, MCR and component contributions of C-ordered rows ``w`` (P, N).

        One GEMM ``(F x)ᵀ Bᵀ`` writes ``B F x`` into the MCR buffer; then one blocked pass
        (row blocks in cache, split over threads) per block: ``d ∘ w``, ``Σ d w²``,
        ``1/σ`` from ``xᵀFx + Σ d w²``, ``MCR = (B F x + d ∘ w) / σ`` in place and
        ``CR = w ∘ MCR``. No (P, N) temporary besides the two outputs.
        """
        if self._groups is not None:
            _, _, _, specific_var, mcr, cr = self._groups.decompose(w, self._F, self._d, threads=passes.pass_threads(w.size))
            return specific_var, mcr, cr
        n_rows, n = w.shape
        mcr = np.empty((n_rows, n))
        np.matmul(fx, self._B_T, out=mcr)
        cr = np.empty((n_rows, n))
        specific_var = np.empty(n_rows)
        d = self._d

        def block(lo: int, hi: int, tmp: np.ndarray) -> None:
            wb, dw, sw = w[lo:hi], tmp[: hi - lo], mcr[lo:hi]
            np.multiply(wb, d, out=dw)  # d ∘ w
            spec = np.vecdot(dw, wb, out=specific_var[lo:hi])  # Σ d w²
            inv = passes.inv_sqrt(factor_var[lo:hi] + spec)  # 1/σ, 0 for a zero portfolio
            sw += dw  # Σ w = B F x + d ∘ w
            sw *= inv[:, None]  # MCR
            np.multiply(wb, sw, out=cr[lo:hi])  # CR = w ∘ MCR

        passes.run_row_blocks(block, (n_rows, n), passes.pass_threads(w.size))
        return specific_var, mcr, cr

    def _woodbury_rows(self, x: np.ndarray) -> np.ndarray:
        y = x * self._inv_d
        t = y @ self._Bt
        s = scipy.linalg.cho_solve((self._chol_m, True), t.T, check_finite=False).T
        out = s @ self._Bt.T
        out *= self._inv_d
        np.subtract(y, out, out=out)
        return out
