"""The structured covariance operator ``Σ = B Σ_f Bᵀ + D`` of one date, never N×N.

:class:`StructuredCovariance` holds the exposures ``B (N×m)``, the factor covariance
``F = Σ_f (m×m)`` and the specific variances ``d (N)`` of one forecast date: its
construction and validation, labels, ``Σx``, ``Σ⁻¹x``, ``log|Σ|``, samples of returns,
the dense matrix for small N, and its Dataset form. The portfolio-risk methods come from
:mod:`~riskmodel.covariance.structured.risk`, the alignment of weights from
:mod:`~riskmodel.covariance.structured.weights`, the products on rows from
:mod:`~riskmodel.covariance.structured.products`.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np
import xarray as xr

from riskmodel._results import Result
from riskmodel.covariance.structured.labels import AxisLabels
from riskmodel.covariance.structured.linear_operator import StructuredLinearOperator
from riskmodel.covariance.structured.products import RowProducts
from riskmodel.covariance.structured.risk import PortfolioRisk
from riskmodel.covariance.structured.validation import (
    as_float,
    as_ids,
    check_unique,
    date_label,
    labelled_to_arrays,
    readonly,
    some_ids,
    validate_arrays,
)
from riskmodel.covariance.structured.weights import WeightAlignment, WeightsLike
from riskmodel.errors import AlignmentError, DimensionError, InvalidParameterError, MissingVariableError

__all__ = ["StructuredCovariance", "DENSE_LIMIT"]

#: ``to_dense`` refuses more stocks than this unless ``force=True``.
DENSE_LIMIT = 5_000


class StructuredCovariance(PortfolioRisk, WeightAlignment, RowProducts, Result):
    """Covariance ``Σ = B Σ_f Bᵀ + D`` of N stocks on m factors, one date, never N×N.

    Parameters
    ----------
    exposures : DataArray (stock, factor)
        Factor exposures ``B``. Only stocks with complete data: every value finite.
    factor_cov : DataArray (factor, factor_)
        Factor covariance ``Σ_f``; both axes hold the factor names of ``exposures`` (any
        order, they are aligned by name). Symmetric (asymmetry up to 1e-8 relative is
        symmetrised) and positive semi-definite.
    specific_var : DataArray (stock,)
        Specific variances ``d``, finite and > 0, for the stocks of ``exposures`` (any
        order, aligned by id).
    date : date-like, optional
        The date the forecast was made at (a label only). Defaults to a scalar ``date``
        coordinate of ``exposures`` when there is one.

    Raises
    ------
    VariableTypeError
        An input is not a DataArray (use :meth:`from_arrays` for ndarrays) or not numeric.
    DimensionError
        Wrong dims or shapes.
    DuplicateLabelError
        Repeated stock or factor ids.
    AlignmentError
        ``specific_var`` and ``exposures`` hold different stocks, or ``factor_cov`` and
        ``exposures`` different factors (the message names the missing and extra ids).
    NonFiniteError
        NaN or inf in an input (the message names the stocks / factors).
    InvalidParameterError
        A specific variance ≤ 0, ``factor_cov`` asymmetric beyond 1e-8 relative, or not
        positive semi-definite (the message gives the smallest eigenvalue).

    See Also
    --------
    StructuredCovariance.from_arrays : the same from ndarrays.
    RiskDecomposition : what :meth:`decompose` returns.

    Notes
    -----
    With ``F = L Lᵀ`` (Cholesky; for a singular PSD ``F`` the symmetric square root
    ``V diag(√λ)``), ``B̃ = B L`` and ``M = I + B̃ᵀ D⁻¹ B̃`` (METHODS §9):

    * ``σ²(w) = ‖B̃ᵀ w‖² + Σ d w²`` and ``Σ w = B (F Bᵀ w) + d ∘ w``;
    * ``Σ⁻¹ x = D⁻¹ x − D⁻¹ B̃ M⁻¹ B̃ᵀ D⁻¹ x`` (Woodbury), ``log|Σ| = Σ log d + 2 Σ log diag chol M``.

    Inputs are validated once; ``L`` and ``B̃`` are built at construction (O(N m²)), the
    Cholesky of ``M`` on the first :meth:`solve` / :meth:`logdet`. Memory is O(N m).

    Weights on stocks missing from the operator raise :class:`AlignmentError`; stocks of
    the operator missing from labelled weights hold zero weight.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> cov = StructuredCovariance.from_arrays(
    ...     rng.normal(size=(4, 2)), np.diag([0.04, 0.01]), np.full(4, 0.02),
    ...     stocks=["A", "B", "C", "D"], factors=["market", "size"])
    >>> cov.shape
    (4, 4)
    >>> w = np.full(4, 0.25)
    >>> bool(np.isclose(cov.variance(w), w @ cov.to_dense() @ w))
    True
    """

    #: ``attrs["riskmodel_kind"]`` of :meth:`to_dataset` (``rm.load`` rebuilds the operator).
    kind = "StructuredCovariance"

    # numpy defers ``ndarray @ cov`` to ``cov.__rmatmul__``
    __array_ufunc__ = None

    def __init__(
        self,
        exposures: xr.DataArray,
        factor_cov: xr.DataArray,
        specific_var: xr.DataArray,
        *,
        date: Any = None,
    ) -> None:
        b, f, d, stocks, factors = labelled_to_arrays(exposures, factor_cov, specific_var)
        if date is None and "date" in exposures.coords and exposures["date"].ndim == 0:
            date = exposures["date"].values
        self._setup(*validate_arrays(b, f, d, stocks, factors), date=date)

    @classmethod
    def from_arrays(
        cls,
        B: np.ndarray,
        F: np.ndarray,
        d: np.ndarray,
        stocks: Sequence[Hashable] | None = None,
        factors: Sequence[Hashable] | None = None,
        *,
        date: Any = None,
    ) -> "StructuredCovariance":
        """Build the operator from ndarrays.

        Parameters
        ----------
        B : ndarray (N, m)
            Exposures.
        F : ndarray (m, m)
            Factor covariance, symmetric PSD.
        d : ndarray (N,)
            Specific variances, > 0.
        stocks : sequence of str, optional
            Stock ids (default ``"s0" … "s{N-1}"``).
        factors : sequence of str, optional
            Factor names (default ``"f0" … "f{m-1}"``).
        date : date-like, optional
            Forecast date label.

        Returns
        -------
        StructuredCovariance

        Raises
        ------
        DimensionError, DuplicateLabelError, NonFiniteError, InvalidParameterError
            As for the constructor.
        """
        B = as_float(B, "exposures")
        F = as_float(F, "factor_cov")
        d = as_float(d, "specific_var")
        if B.ndim != 2:
            raise DimensionError(f"exposures B must be 2-D (stock, factor), got shape {B.shape}.")
        n, m = B.shape
        stocks_arr = np.char.add("s", np.arange(n).astype(str)) if stocks is None else as_ids(stocks)
        factors_arr = np.char.add("f", np.arange(m).astype(str)) if factors is None else as_ids(factors)
        obj = cls.__new__(cls)
        obj._setup(*validate_arrays(B, F, d, stocks_arr, factors_arr), date=date)
        return obj

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, *, date: Any = None) -> "StructuredCovariance":
        """Rebuild an operator from :meth:`to_dataset` output (or a fitted model's forecast).

        Parameters
        ----------
        ds : Dataset
            With ``exposures (stock, factor)``, ``factor_cov (factor, factor_)`` and
            ``specific_var (stock)``; optionally a ``date`` dim (then ``date`` selects one,
            default the last) or a scalar ``date`` coordinate.
        date : date-like, optional
            Which date to take when ``ds`` has a ``date`` dim.

        Returns
        -------
        StructuredCovariance

        Raises
        ------
        MissingVariableError
            A variable is missing.
        """
        missing = [v for v in ("exposures", "factor_cov", "specific_var") if v not in ds.data_vars]
        if missing:
            raise MissingVariableError(
                f"dataset has no variable(s) {missing}; a StructuredCovariance needs "
                "'exposures' (stock, factor), 'factor_cov' (factor, factor_) and 'specific_var' (stock)."
            )
        ds = ds[["exposures", "factor_cov", "specific_var"]]
        if "date" in ds.dims:
            ds = ds.isel(date=-1) if date is None else ds.sel(date=date_label(date))
        if date is None and "date" in ds.coords and ds["date"].ndim == 0:
            date = ds["date"].values
        return cls(ds["exposures"], ds["factor_cov"], ds["specific_var"], date=date)

    def _setup(
        self,
        b: np.ndarray,
        f: np.ndarray,
        d: np.ndarray,
        L: np.ndarray,
        stocks: np.ndarray,
        factors: np.ndarray,
        *,
        date: Any,
    ) -> None:
        self._B = readonly(b)
        self._F = readonly(f)
        self._d = readonly(d)
        self._L = readonly(L)
        self._Bt = readonly(b @ L)
        self._labels = AxisLabels(stocks, factors)
        self._stocks = self._labels.stocks
        self._factors = self._labels.factors
        self._date = date_label(date)

    # -- properties ---------------------------------------------------------------------

    @property
    def exposures(self) -> xr.DataArray:
        """DataArray (stock, factor): the exposures ``B`` (read-only)."""
        return self._labels.da(self._B, ("stock", "factor"), "exposures")

    @property
    def factor_cov(self) -> xr.DataArray:
        """DataArray (factor, factor_): the factor covariance ``Σ_f`` (symmetrised, read-only)."""
        return self._labels.da(self._F, ("factor", "factor_"), "factor_cov")

    @property
    def specific_var(self) -> xr.DataArray:
        """DataArray (stock,): the specific variances ``d`` (read-only)."""
        return self._labels.da(self._d, ("stock",), "specific_var")

    @property
    def stocks(self) -> np.ndarray:
        """ndarray (N,) str: stock ids in the operator's order."""
        return self._stocks

    @property
    def factors(self) -> np.ndarray:
        """ndarray (m,) str: factor names."""
        return self._factors

    @property
    def n_stocks(self) -> int:
        """N, the number of stocks."""
        return self._B.shape[0]

    @property
    def n_factors(self) -> int:
        """m, the number of factors."""
        return self._B.shape[1]

    @property
    def date(self) -> np.datetime64 | None:
        """The forecast date label (``datetime64[ns]``) or None."""
        return self._date

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, N)``, the shape of Σ."""
        return (self.n_stocks, self.n_stocks)

    @property
    def dtype(self) -> np.dtype:
        """float64."""
        return np.dtype(np.float64)

    # -- the result API ------------------------------------------------------------------

    def summary(self) -> str:
        """A few readable lines: date, size and headline risk numbers.

        Returns
        -------
        str
            The volatility of the equal-weight book and its factor share of variance, the
            median and mean stock volatility ``√Σ_nn`` (with the average factor share), the
            median specific volatility ``√d`` and the largest factor volatilities, all in
            the units of the inputs (``√d``).
        """
        n, m = self.n_stocks, self.n_factors
        date = "" if self._date is None else f" on {str(self._date)[:10]}"
        book = np.full(n, 1.0 / n)
        book_factor = float(np.sum((book @ self._Bt) ** 2))
        book_var = book_factor + float(np.sum(self._d * book * book))
        stock_factor = np.einsum("nk,nk->n", self._Bt, self._Bt)
        stock_vol = np.sqrt(stock_factor + self._d)
        factor_vol = np.sqrt(np.clip(np.diag(self._F), 0.0, None))
        top = np.argsort(-factor_vol, kind="stable")[:3]
        largest = ", ".join(f"{self._factors[k]} {factor_vol[k]:.4g}" for k in top)
        return "\n".join([
            f"StructuredCovariance{date}: {n:,} stocks, {m} factors",
            f"  equal-weight book vol  {np.sqrt(book_var):.4g}  (factor share of variance {book_factor / book_var:.1%})",
            f"  stock vol              median {np.median(stock_vol):.4g}, mean {stock_vol.mean():.4g}  "
            f"(factor share of variance {np.mean(stock_factor / stock_vol**2):.1%} on average)",
            f"  specific vol           median {np.median(np.sqrt(self._d)):.4g}",
            f"  largest factor vols    {largest}" + (f"  ({len(top)} of {m})" if m > len(top) else ""),
        ])

    def matvec(self, x: WeightsLike) -> Any:
        """``Σ x`` without forming Σ.

        Parameters
        ----------
        x : ndarray (stock,) or (stock, k), Series, DataFrame or DataArray with a ``stock`` dim
            Vectors. A 2-D ndarray is read as columns ``(N, k)`` (matrix convention);
            labelled input is aligned on ``stock`` (missing stocks count as 0).

        Returns
        -------
        Same layout and labels as ``x``, over the operator's stocks.

        Notes
        -----
        ``Σ x = B̃ (B̃ᵀ x) + d ∘ x``: O(N m k).
        """
        a = self._align(x, "x", matrix_layout=True)
        return self._wrap_stock(self._sigma_rows(a.values), a, "sigma_x")

    def __matmul__(self, x: WeightsLike) -> Any:
        return self.matvec(x)

    def __rmatmul__(self, x: WeightsLike) -> Any:
        # ``w @ Σ`` = ``(Σ wᵀ)ᵀ`` since Σ is symmetric: rows in, rows out
        a = self._align(x, "x", matrix_layout=False)
        return self._wrap_stock(self._sigma_rows(a.values), a, "x_sigma")

    def solve(self, x: WeightsLike, *, refine: int = 1) -> Any:
        """``Σ⁻¹ x`` by the Woodbury identity (O(N m) per vector after an O(N m²) set-up).

        Parameters
        ----------
        x : ndarray (stock,) or (stock, k), Series, DataFrame or DataArray with a ``stock`` dim
            Right-hand sides, laid out as in :meth:`matvec`.
        refine : int
            Steps of iterative refinement ``x̂ += Σ⁻¹(x − Σ x̂)`` (each one more matvec and
            Woodbury solve, O(N m)). Woodbury's error grows like ``eps · max(Σ)/min(d)`` when
            some specific variances are tiny next to factor variances; one step brings the
            backward error back to rounding level. 0: plain Woodbury.

        Returns
        -------
        Same layout and labels as ``x``.

        Notes
        -----
        ``Σ⁻¹ x = D⁻¹x − D⁻¹ B̃ M⁻¹ B̃ᵀ D⁻¹ x``, ``M = I + B̃ᵀ D⁻¹ B̃`` (SPD, eigenvalues ≥ 1)
        factored once by Cholesky and cached. ``F`` is never inverted, so a singular PSD
        factor covariance is fine.
        """
        if int(refine) != refine or refine < 0:
            raise InvalidParameterError(f"solve: refine={refine!r} must be a non-negative integer.")
        a = self._align(x, "x", matrix_layout=True)
        return self._wrap_stock(self._solve_rows(a.values, int(refine)), a, "sigma_inv_x")

    def logdet(self) -> float:
        """``log |Σ|`` by the matrix determinant lemma.

        Returns
        -------
        float
            ``Σ_n log d_n + 2 Σ_k log chol(M)_kk``.
        """
        return float(np.log(self._d).sum() + 2.0 * np.log(np.diag(self._chol_m)).sum())

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> xr.DataArray:
        """Draw Gaussian returns ``r ~ N(0, Σ)``.

        Parameters
        ----------
        n : int
            Number of draws (≥ 1).
        seed : int, Generator or None
            Passed to :func:`numpy.random.default_rng`.

        Returns
        -------
        DataArray (sample, stock)

        Notes
        -----
        ``r = B̃ ε₁ + √d ∘ ε₂`` with ``ε₁ ~ N(0, I_m)``, ``ε₂ ~ N(0, I_N)``: O(n N m).
        """
        if int(n) != n or n < 1:
            raise InvalidParameterError(f"sample: n={n!r} must be a positive integer.")
        rng = np.random.default_rng(seed)
        eps_f = rng.standard_normal((int(n), self.n_factors))
        eps_s = rng.standard_normal((int(n), self.n_stocks))
        r = eps_f @ self._Bt.T
        r += eps_s * self._sqrt_d
        out = self._labels.da(r, ("sample", "stock"), "returns", {"sample": np.arange(int(n))})
        return out if self._date is None else out.assign_coords(date=self._date)

    def as_linear_operator(self) -> "StructuredLinearOperator":
        """A :class:`scipy.sparse.linalg.LinearOperator` view of Σ (symmetric).

        Returns
        -------
        StructuredLinearOperator
            ``matvec``, ``matmat``, ``rmatvec`` and ``.H`` / ``.T`` (itself) work on
            ndarrays in the operator's stock order; usable with ``scipy.sparse.linalg``
            solvers and eigensolvers.
        """
        return StructuredLinearOperator(self)

    def to_dense(self, force: bool = False) -> np.ndarray:
        """The dense N×N matrix Σ — for small N and tests only.

        Parameters
        ----------
        force : bool
            Allow N > 5,000.

        Returns
        -------
        ndarray (stock, stock)

        Raises
        ------
        InvalidParameterError
            N > 5,000 and not ``force`` (the message gives the memory it would take).
        """
        n = self.n_stocks
        if n > DENSE_LIMIT and not force:
            gb = n * n * 8 / 1e9
            raise InvalidParameterError(
                f"to_dense would form a {n:,} × {n:,} float64 matrix ({gb:,.2f} GB) for N = {n:,} "
                f"> {DENSE_LIMIT:,} stocks; use the operator's methods (variance, matvec, solve, "
                "as_linear_operator) or pass force=True."
            )
        dense = self._Bt @ self._Bt.T
        dense[np.diag_indices_from(dense)] += self._d
        return dense

    def subset(self, stocks: Sequence[Hashable]) -> "StructuredCovariance":
        """The covariance of some stocks (in the order given).

        Parameters
        ----------
        stocks : sequence of str
            Stock ids, all known to the operator, no duplicates.

        Returns
        -------
        StructuredCovariance
            Same factors, factor covariance and date.

        Raises
        ------
        AlignmentError
            An id the operator does not know.
        """
        ids = as_ids(stocks)
        check_unique(ids, "stock", "subset")
        pos = self._labels.stock_index.get_indexer(ids)
        if (pos < 0).any():
            raise AlignmentError(f"subset: unknown stocks {some_ids(ids[pos < 0])}; pick ids from `.stocks`.")
        obj = type(self).__new__(type(self))
        obj._setup(self._B[pos], self._F, self._d[pos], self._L, ids, self._factors.copy(), date=self._date)
        return obj

    def to_dataset(self) -> xr.Dataset:
        """The operator as a Dataset (``exposures``, ``factor_cov``, ``specific_var``).

        Returns
        -------
        Dataset
            With a scalar ``date`` coordinate when the date is known; round-trips through
            :meth:`from_dataset`.
        """
        ds = xr.Dataset({"exposures": self.exposures, "factor_cov": self.factor_cov, "specific_var": self.specific_var})
        if self._date is not None:
            ds = ds.assign_coords(date=self._date)
        ds.attrs["riskmodel_kind"] = self.kind
        return ds
