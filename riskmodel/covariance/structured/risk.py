"""What a risk manager asks of a covariance about books: variance, volatility, factor
exposures, the factor/specific split, beta, active risk and minimum-variance weights.

Each costs O(N m) per portfolio through ``F = L Lᵀ`` and ``B̃ = B L`` (METHODS §9), for one
book or a batch of thousands (rows of one GEMM or one fused grouped pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from riskmodel.covariance.structured.decomposition import RiskDecomposition, decompose
from riskmodel.covariance.structured.weights import Aligned, WeightsLike
from riskmodel.errors import DimensionError, InvalidParameterError

__all__ = ["PortfolioRisk"]


class PortfolioRisk:
    """The portfolio-risk methods of :class:`~riskmodel.covariance.structured.StructuredCovariance`
    (a mixin: it runs on the operator's alignment, :class:`~riskmodel.covariance.structured.weights.WeightAlignment`,
    and its row products, :class:`~riskmodel.covariance.structured.products.RowProducts`).
    """

    def variance(self, w: WeightsLike) -> Any:
        """Variance ``wᵀ Σ w`` of one portfolio or a batch.

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
            Weights. Labelled weights are aligned on ``stock`` by id; operator stocks they do
            not mention hold zero weight.

        Returns
        -------
        float or ndarray (portfolio,) / Series / DataArray (portfolio,)
            A float for one portfolio; for a batch, one value per portfolio labelled like ``w``.

        Raises
        ------
        AlignmentError
            A weight on a stock the operator does not know (the ids are named).
        NonFiniteError
            NaN or inf weights (the stocks are named).
        DimensionError
            An ndarray of the wrong length (the expected length is given).

        Notes
        -----
        ``σ² = ‖B̃ᵀ w‖² + Σ_n d_n w_n²`` with ``B̃ = B L``: one ``(P, N) @ (N, m)`` GEMM.
        """
        a = self._align(w)
        return self._wrap_scalar(self._variance_rows(a.values), a, "variance")

    def volatility(self, w: WeightsLike) -> Any:
        """Volatility ``√(wᵀ Σ w)`` of one portfolio or a batch (same units as ``√d``): the
        square root of :meth:`variance`, with the same argument, output layout and errors."""
        a = self._align(w)
        return self._wrap_scalar(np.sqrt(self._variance_rows(a.values)), a, "volatility")

    def factor_exposures(self, w: WeightsLike) -> xr.DataArray:
        """Factor exposures ``x = Bᵀ w`` of one portfolio or a batch.

        Parameters
        ----------
        w : WeightsLike
            Weights, aligned as in :meth:`variance`.

        Returns
        -------
        DataArray (factor,) or (portfolio, factor)
        """
        a = self._align(w)
        x = self._exposure_rows(np.ascontiguousarray(a.values))
        if not a.batched:
            return self._labels.da(x[0], ("factor",), "factor_exposures")
        return self._labels.da(x, (a.batch_dim, "factor"), "factor_exposures", {a.batch_dim: a.batch_labels})

    def decompose(self, w: WeightsLike, *, per_stock: bool = True) -> RiskDecomposition:
        """Split the risk of one portfolio or a batch into factor and specific parts.

        Parameters
        ----------
        w : WeightsLike
            Weights, aligned as in :meth:`variance`.
        per_stock : bool
            Compute the per-stock marginal and component contributions now, in the same
            pass as the specific variance (the fastest way to get everything). False:
            totals and per-factor parts only; the per-stock parts are then computed on
            first access (saves two ``(portfolio, stock)`` arrays when they are not needed).

        Returns
        -------
        RiskDecomposition
            Totals, per-factor Euler contributions, factor exposures and (``per_stock``)
            per-stock marginal and component contributions.

        Raises
        ------
        AlignmentError, NonFiniteError, DimensionError
            As in :meth:`variance`.

        Notes
        -----
        With ``x = Bᵀ w``: factor variance ``xᵀ F x``, specific ``Σ d w²``; per-factor
        contribution ``x_k (F x)_k / σ`` and specific ``Σ d w² / σ`` add up to ``σ``;
        ``MCR = Σ w / σ = ∂σ/∂w`` and ``CR_n = w_n MCR_n`` add up to ``σ`` (Euler).

        When most columns of ``B`` are indicators (market, industries: see
        :mod:`riskmodel.covariance.exposure_groups`), one fused kernel pass per pair of
        portfolios does everything with ``1 + k_styles`` multiply-adds per stock instead of
        ``m``. Otherwise the cost is two ``(P, N) × (N, m)``-sized GEMMs (``x = Bᵀ w`` and
        ``B (F x)``) and one blocked elementwise pass. Either way non-finite weights are
        detected on ``x`` (a NaN/inf weight always makes its row of ``x`` non-finite), so
        the weights are not scanned separately.
        """
        return decompose(self, w, per_stock=per_stock)

    def beta(self, w: WeightsLike, benchmark: WeightsLike) -> Any:
        """Beta of portfolio(s) to a benchmark: ``wᵀ Σ b / bᵀ Σ b``.

        Parameters
        ----------
        w : WeightsLike
            Portfolio weights, aligned as in :meth:`variance`.
        benchmark : ndarray (stock,), Series or DataArray (stock,)
            One benchmark portfolio.

        Returns
        -------
        float or one value per portfolio labelled like ``w``

        Raises
        ------
        DimensionError
            ``benchmark`` holds several portfolios.
        InvalidParameterError
            The benchmark has zero variance.
        """
        a = self._align(w)
        b = self._benchmark(benchmark)
        sb = self._sigma_rows(b)[0]
        var_b = float(b[0] @ sb)
        if var_b <= 0:
            raise InvalidParameterError("benchmark has zero variance (all-zero weights?); beta is undefined.")
        return self._wrap_scalar(a.values @ sb / var_b, a, "beta")

    def active_risk(self, w: WeightsLike, benchmark: WeightsLike) -> Any:
        """Active risk (tracking-error volatility) ``σ(w − b)`` of portfolio(s) ``w`` against
        one benchmark ``b``; the arguments, what comes back and the errors are as in :meth:`beta`
        (but a zero-variance benchmark is fine here)."""
        a = self._align(w)
        b = self._benchmark(benchmark)
        return self._wrap_scalar(np.sqrt(self._variance_rows(a.values - b)), a, "active_risk")

    def _benchmark(self, benchmark: WeightsLike) -> np.ndarray:
        b = self._align(benchmark, "benchmark")
        if b.batched:
            raise DimensionError(
                f"benchmark must be one portfolio (stock,), got {b.n_portfolios} portfolios; "
                "loop over benchmarks or select one."
            )
        return b.values

    def min_variance_weights(self, alpha: WeightsLike | None = None, *, normalise: str = "auto") -> Any:
        """Weights ``w ∝ Σ⁻¹ α`` (or ``Σ⁻¹ 1``, the minimum-variance portfolio).

        The "optimised portfolios" family of bias tests (METHODS §6) uses ``α ~ N(0, I)``.

        Parameters
        ----------
        alpha : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray, optional
            Expected returns, aligned as in :meth:`variance` (missing stocks: zero alpha).
            None: ``α = 1`` on every stock (the global minimum-variance portfolio).
        normalise : {"auto", "sum", "gross", "volatility", "none"}
            Scale of each portfolio: weights summing to 1, gross exposure ``Σ|w| = 1``, unit
            volatility, or the raw ``Σ⁻¹ α``. "auto": "sum" without ``alpha``, "gross" with it
            (a long-short ``Σ⁻¹ α`` may sum to about zero).

        Returns
        -------
        DataArray (stock,) when ``alpha`` is None, else weights labelled like ``alpha``.

        Raises
        ------
        InvalidParameterError
            Unknown ``normalise``, or a portfolio whose sum (or gross, or volatility) is zero.
        """
        choices = ("auto", "sum", "gross", "volatility", "none")
        if normalise not in choices:
            raise InvalidParameterError(f"normalise={normalise!r}; choose one of {choices}.")
        if alpha is None:
            a = Aligned(np.ones((1, self.n_stocks)), False, "xarray")
            mode = "sum" if normalise == "auto" else normalise
        else:
            a = self._align(alpha, "alpha")
            mode = "gross" if normalise == "auto" else normalise
        w = self._solve_rows(a.values)
        if mode != "none":
            scale = {
                "sum": lambda: w.sum(axis=1),
                "gross": lambda: np.abs(w).sum(axis=1),
                "volatility": lambda: np.sqrt(self._variance_rows(w)),
            }[mode]()
            tiny = np.abs(scale) <= 1e-14 * np.abs(w).sum(axis=1)
            if tiny.any():
                raise InvalidParameterError(
                    f"min_variance_weights: the {mode} of Σ⁻¹α is zero for {int(tiny.sum())} portfolio(s); "
                    "use normalise='gross' or 'volatility'."
                )
            w = w / scale[:, None]
        return self._wrap_stock(w, a, "weights")

    # -- the matrix ----------------------------------------------------------------------
