"""The structured covariance operator ``Σ = B Σ_f Bᵀ + D`` of one date, never N×N.

:class:`StructuredCovariance` holds the exposures ``B (N×m)``, the factor covariance
``F = Σ_f (m×m)`` and the specific variances ``d (N)`` of one forecast date. Everything a
risk manager asks of a covariance matrix — the variance of a book or of a thousand books,
its split into factor and specific risk, Euler contributions per factor and per stock,
``Σx``, ``Σ⁻¹x``, ``log|Σ|``, betas, samples of returns — costs O(N m) per portfolio and
O(N m²) once, through ``F = L Lᵀ`` and ``B̃ = B L`` (METHODS §9):

* ``σ²(w) = ‖B̃ᵀ w‖² + Σ_n d_n w_n²`` (batched: one GEMM ``W B̃`` for P portfolios);
* ``Σ x = B (F (Bᵀ x)) + d ∘ x``;
* ``Σ⁻¹ x = D⁻¹x − D⁻¹ B̃ M⁻¹ B̃ᵀ D⁻¹ x`` with ``M = I + B̃ᵀ D⁻¹ B̃`` (Woodbury; M is SPD
  with eigenvalues ≥ 1, so its Cholesky is stable and F is never inverted);
* ``log|Σ| = Σ log d_n + 2 Σ log diag chol(M)`` (matrix determinant lemma).

When most columns of ``B`` are indicators — the market column of ones and one-hot
industries, as in every model :class:`~riskmodel.FactorRiskModel` fits — products with ``B``
go through :mod:`riskmodel.covariance.exposure_groups`: a lookup by group code plus the few
dense (style) columns, one fused numba pass per pair of portfolios. Same numbers, summed in
another order; ~1 + k_styles instead of m multiply-adds per stock.

Weights come in as ndarrays, pandas objects or DataArrays; labelled ones are aligned on
``stock`` by id. A weight on a stock the operator does not know is an
:class:`~riskmodel.errors.AlignmentError`; a stock of the operator that the weights do not
mention holds zero weight (the book is a sub-portfolio of the operator's universe, it is
not dropped from anything). Only :meth:`StructuredCovariance.to_dense` forms N×N.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Hashable, Sequence, Union

import numpy as np
import pandas as pd
import scipy.linalg
import xarray as xr
from scipy.sparse.linalg import LinearOperator
from xarray.indexes import PandasIndex

from riskmodel._blas import blas_threads
from riskmodel.covariance.exposure_groups import GroupedExposures, group_exposures
from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    DuplicateLabelError,
    InvalidParameterError,
    MissingVariableError,
    NonFiniteError,
    VariableTypeError,
)

__all__ = ["StructuredCovariance", "RiskDecomposition", "StructuredLinearOperator"]

WeightsLike = Union[np.ndarray, pd.Series, pd.DataFrame, xr.DataArray, Sequence[float]]

#: ``to_dense`` refuses more stocks than this unless ``force=True``.
DENSE_LIMIT = 5_000
#: Relative asymmetry of ``factor_cov`` tolerated (then symmetrised).
SYMMETRY_RTOL = 1e-8
#: Eigenvalues of ``factor_cov`` above ``-PSD_RTOL · λ_max`` count as zero (PSD, rank deficient).
PSD_RTOL = 1e-10
#: How many ids an error message lists before "and k more".
_SHOW = 5
#: Rows per block in blocked elementwise passes over (P, N) arrays (a block of each operand
#: stays in cache while every elementwise step runs on it).
_ROW_BLOCK = 32
#: A blocked pass over fewer (P × N) cells than this runs on the calling thread alone.
_THREAD_MIN_CELLS = 1 << 20
#: Most threads a blocked elementwise pass uses (never more than BLAS is allowed).
_MAX_PASS_THREADS = 8
#: Fewest rows for which a product pass builds the grouped split of ``B`` (decompositions
#: always do).
_GROUPED_MIN_ROWS = 4


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------


def _some(ids: Sequence[Any] | np.ndarray, k: int = _SHOW) -> str:
    """``'a', 'b', 'c' and 4 more (7 in all)``: the first few ids of a list, for messages."""
    ids = list(np.asarray(ids, dtype=object).ravel())
    shown = ", ".join(repr(str(i)) for i in ids[:k])
    if len(ids) > k:
        return f"{shown} and {len(ids) - k} more ({len(ids)} in all)"
    return shown


def _as_ids(labels: Any) -> np.ndarray:
    """Labels as a numpy unicode array (pandas 3 StringDtype, objects and ints alike)."""
    arr = np.asarray(pd.Index(labels).astype(str), dtype=str)
    return arr.reshape(-1)


def _check_unique(ids: np.ndarray, what: str, variable: str) -> None:
    index = pd.Index(ids)
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise DuplicateLabelError(
            f"{variable}: duplicate {what} ids {_some(dup)}; each {what} must appear once "
            f"(aggregate or drop the duplicates first)."
        )


def _as_float(values: Any, variable: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise VariableTypeError(
            f"{variable} must be numeric, got dtype {arr.dtype}; convert it to float64 first."
        )
    return np.asarray(arr, dtype=np.float64)


def _readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous float64 copy (never flags the caller's own array)."""
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    arr.setflags(write=False)
    return arr


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` broadcasting ``den`` over trailing axes; 0 where ``den == 0``."""
    den = np.asarray(den)
    den_b = den.reshape(den.shape + (1,) * (np.ndim(num) - den.ndim))
    out = np.zeros(np.broadcast_shapes(np.shape(num), den_b.shape))
    np.divide(num, den_b, out=out, where=den_b != 0)
    return out


def _weighted_sq(w: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``Σ_n d_n w_pn²`` per row, in cache-sized row blocks without a (P, N) temporary."""
    w = np.ascontiguousarray(w)
    out = np.empty(w.shape[0])

    def block(lo: int, hi: int, tmp: np.ndarray) -> None:
        dw = tmp[: hi - lo]
        np.multiply(w[lo:hi], d, out=dw)
        np.vecdot(dw, w[lo:hi], out=out[lo:hi])

    _run_row_blocks(block, w.shape, _pass_threads(w.size))
    return out


def _inv_sqrt(var: np.ndarray) -> np.ndarray:
    """``1 / √var``, 0 where ``var == 0`` (a zero portfolio has no contributions)."""
    vol = np.sqrt(var)
    out = np.zeros_like(vol)
    np.divide(1.0, vol, out=out, where=vol != 0)
    return out


def _pass_threads(cells: int) -> int:
    """Threads for a blocked elementwise pass over ``cells`` values: as many as BLAS may use
    (so ``threadpool_limits(1)`` keeps everything on one core), 1 for small passes."""
    if cells < _THREAD_MIN_CELLS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(blas_threads(), cores, _MAX_PASS_THREADS))


def _run_row_blocks(fn: Callable[[int, int, np.ndarray], None], shape: tuple[int, int], n_threads: int) -> None:
    """``fn(lo, hi, tmp)`` on every block of ``_ROW_BLOCK`` rows of a ``(rows, cols)`` pass.

    ``tmp`` is a ``(_ROW_BLOCK, cols)`` scratch block owned by the running thread. numpy
    releases the GIL inside its loops, so with ``n_threads > 1`` the blocks run in parallel:
    the calling thread and ``n_threads - 1`` helpers take the next block from a shared
    counter, so a thread that the OS holds back (busy machine) delays nothing but its
    own block.
    """
    n_rows, n_cols = shape
    starts = range(0, n_rows, _ROW_BLOCK)
    n_threads = max(1, min(n_threads, len(starts)))

    def worker(counter: Any) -> None:
        tmp = np.empty((min(_ROW_BLOCK, n_rows), n_cols))
        for i in counter:  # next() on a shared iterator is atomic under the GIL
            if i >= len(starts):
                return
            fn(starts[i], min(starts[i] + _ROW_BLOCK, n_rows), tmp)

    counter = itertools.count()
    if n_threads == 1:
        worker(counter)
        return
    with ThreadPoolExecutor(max_workers=n_threads - 1) as pool:
        futures = [pool.submit(worker, counter) for _ in range(n_threads - 1)]
        worker(counter)
        for future in futures:
            future.result()


def _date_label(date: Any) -> np.datetime64 | None:
    if date is None:
        return None
    try:
        return pd.Timestamp(date).to_datetime64().astype("datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"date={date!r} is not a date: {exc}") from None


# ---------------------------------------------------------------------------------------
# aligned weights
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Aligned:
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
        return self.values.shape[0]


# ---------------------------------------------------------------------------------------
# the operator
# ---------------------------------------------------------------------------------------


class StructuredCovariance:
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
        b, f, d, stocks, factors = _labelled_to_arrays(exposures, factor_cov, specific_var)
        if date is None and "date" in exposures.coords and exposures["date"].ndim == 0:
            date = exposures["date"].values
        self._setup(*_validate_arrays(b, f, d, stocks, factors), date=date)

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
        B = _as_float(B, "exposures")
        F = _as_float(F, "factor_cov")
        d = _as_float(d, "specific_var")
        if B.ndim != 2:
            raise DimensionError(f"exposures B must be 2-D (stock, factor), got shape {B.shape}.")
        n, m = B.shape
        stocks_arr = np.char.add("s", np.arange(n).astype(str)) if stocks is None else _as_ids(stocks)
        factors_arr = np.char.add("f", np.arange(m).astype(str)) if factors is None else _as_ids(factors)
        obj = cls.__new__(cls)
        obj._setup(*_validate_arrays(B, F, d, stocks_arr, factors_arr), date=date)
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
            ds = ds.isel(date=-1) if date is None else ds.sel(date=_date_label(date))
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
        self._B = _readonly(b)
        self._F = _readonly(f)
        self._d = _readonly(d)
        self._L = _readonly(L)
        self._Bt = _readonly(b @ L)
        self._stocks = stocks
        self._factors = factors
        self._stocks.setflags(write=False)
        self._factors.setflags(write=False)
        self._date = _date_label(date)

    # -- properties ---------------------------------------------------------------------

    @property
    def exposures(self) -> xr.DataArray:
        """DataArray (stock, factor): the exposures ``B`` (read-only)."""
        return self._da(self._B, ("stock", "factor"), "exposures")

    @property
    def factor_cov(self) -> xr.DataArray:
        """DataArray (factor, factor_): the factor covariance ``Σ_f`` (symmetrised, read-only)."""
        return self._da(self._F, ("factor", "factor_"), "factor_cov")

    @property
    def specific_var(self) -> xr.DataArray:
        """DataArray (stock,): the specific variances ``d`` (read-only)."""
        return self._da(self._d, ("stock",), "specific_var")

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

    def __repr__(self) -> str:
        date = "" if self._date is None else f", date={str(self._date)[:10]}"
        return f"<StructuredCovariance N={self.n_stocks:,} stocks, m={self.n_factors} factors{date}>"

    # -- labels --------------------------------------------------------------------------

    @cached_property
    def _label_coords(self) -> dict[str, xr.Coordinates]:
        """Coordinates (with their pandas index) built once: labelling an output is then cheap."""
        return {
            "stock": xr.Coordinates({"stock": self._stocks}),
            "factor": xr.Coordinates({"factor": self._factors}),
            "factor_": xr.Coordinates({"factor_": self._factors}),
        }

    def _da(
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
            cached = self._label_coords.get(dim)
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

    # -- cached factorisations -----------------------------------------------------------

    @cached_property
    def _stock_index(self) -> pd.Index:
        return pd.Index(self._stocks)

    @cached_property
    def _B_T(self) -> np.ndarray:
        """``Bᵀ`` (m, N) C-contiguous: both GEMMs of a batch decomposition read it row-wise."""
        return _readonly(self._B.T)

    @cached_property
    def _inv_d(self) -> np.ndarray:
        return _readonly(1.0 / self._d)

    @cached_property
    def _sqrt_d(self) -> np.ndarray:
        return _readonly(np.sqrt(self._d))

    @cached_property
    def _chol_m(self) -> np.ndarray:
        """Lower Cholesky factor of ``M = I + B̃ᵀ D⁻¹ B̃`` (m×m, eigenvalues ≥ 1)."""
        scaled = self._Bt * self._inv_d[:, None]
        m_mat = self._Bt.T @ scaled
        m_mat[np.diag_indices_from(m_mat)] += 1.0
        m_mat = 0.5 * (m_mat + m_mat.T)
        return _readonly(np.linalg.cholesky(m_mat))

    # -- alignment -----------------------------------------------------------------------

    def _align(
        self, obj: Any, variable: str = "weights", *, matrix_layout: bool = False, check_finite: bool = True
    ) -> _Aligned:
        """Weights (or vectors) on the operator's stocks as ``(P, N)`` rows, plus labels.

        ``matrix_layout`` reads a 2-D ndarray as ``(N, k)`` columns (matvec / solve)
        instead of ``(P, N)`` rows (portfolios). ``check_finite=False`` leaves the NaN/inf
        check to the caller (:meth:`_check_aligned`), which can do it on a cheaper product.
        """
        if isinstance(obj, xr.DataArray):
            return self._align_xarray(obj, variable, check_finite)
        if isinstance(obj, pd.Series):
            values = _as_float(obj.to_numpy(), variable)[None, :]
            return self._scatter(values, _as_ids(obj.index), variable, kind="pandas", batched=False,
                                 check_finite=check_finite)
        if isinstance(obj, pd.DataFrame):
            return self._align_frame(obj, variable, check_finite)
        if isinstance(obj, (xr.Dataset, dict)):
            raise VariableTypeError(
                f"{variable} must be an ndarray, a pandas Series/DataFrame or a DataArray, got {type(obj).__name__}."
            )
        return self._align_ndarray(_as_float(obj, variable), variable, matrix_layout, check_finite)

    def _check_aligned(self, a: _Aligned, variable: str = "weights") -> None:
        """The NaN/inf check skipped by ``_align(check_finite=False)``, on the aligned rows
        (stocks the weights did not mention are 0 there, so the stocks named are the same)."""
        self._check_finite(a.values, variable, self._stocks, a.batch_labels)

    def _align_ndarray(self, arr: np.ndarray, variable: str, matrix_layout: bool, check_finite: bool = True) -> _Aligned:
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
        return _Aligned(values, batched, "ndarray", stock_last=stock_last)

    def _align_frame(self, df: pd.DataFrame, variable: str, check_finite: bool = True) -> _Aligned:
        cols, rows = _as_ids(df.columns), _as_ids(df.index)
        if df.columns.name == "stock":
            stock_last = True
        elif df.index.name == "stock":
            stock_last = False
        else:
            known = self._stock_index
            stock_last = bool(known.get_indexer(cols).min(initial=0) >= 0) or not bool(
                known.get_indexer(rows).min(initial=0) >= 0
            )
        values = _as_float(df.to_numpy(), variable)
        if stock_last:
            name = df.index.name if df.index.name is not None else "portfolio"
            return self._scatter(values, cols, variable, kind="pandas", batched=True, batch_dim=str(name),
                                 batch_labels=df.index.to_numpy(), stock_last=True, check_finite=check_finite)
        name = df.columns.name if df.columns.name is not None else "portfolio"
        return self._scatter(values.T, rows, variable, kind="pandas", batched=True, batch_dim=str(name),
                             batch_labels=df.columns.to_numpy(), stock_last=False, check_finite=check_finite)

    def _align_xarray(self, da: xr.DataArray, variable: str, check_finite: bool = True) -> _Aligned:
        if "stock" not in da.dims:
            raise DimensionError(f"{variable} must have a 'stock' dim, got dims {da.dims}.")
        others = [dim for dim in da.dims if dim != "stock"]
        if len(others) > 1:
            raise DimensionError(
                f"{variable} has dims {da.dims}; expected ('stock',) or ('portfolio', 'stock') "
                "(one batch dim at most: stack the others first)."
            )
        ids = _as_ids(da["stock"].values)
        if not others:
            values = _as_float(da.values, variable)[None, :]
            return self._scatter(values, ids, variable, kind="xarray", batched=False, check_finite=check_finite)
        dim = others[0]
        stock_last = da.dims[-1] == "stock"
        values = _as_float(da.transpose(dim, "stock").values, variable)
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
    ) -> _Aligned:
        """Place labelled values ``(P, k)`` on ids onto the operator's stocks ``(P, N)``."""
        if check_finite:
            self._check_finite(values, variable, ids, batch_labels)
        if ids.shape[0] == self.n_stocks and np.array_equal(ids, self._stocks):
            full = values
        else:
            _check_unique(ids, "stock", variable)
            pos = self._stock_index.get_indexer(ids)
            unknown = ids[pos < 0]
            if unknown.size:
                raise AlignmentError(
                    f"{variable} holds stocks the covariance does not know: {_some(unknown)}. "
                    "A weight on a stock without a risk forecast cannot be priced; drop these "
                    "stocks (or give them a forecast) before asking for risk."
                )
            full = np.zeros((values.shape[0], self.n_stocks))
            full[:, pos] = values
        return _Aligned(full, batched, kind, batch_dim, batch_labels, stock_last)

    @staticmethod
    def _check_finite(values: np.ndarray, variable: str, ids: np.ndarray, batch_labels: Any) -> None:
        if np.isfinite(values).all():
            return
        rows, cols = np.nonzero(~np.isfinite(values))
        where = f"stock(s) {_some(np.unique(ids[cols]))}"
        if values.shape[0] > 1:
            labels = np.arange(values.shape[0]) if batch_labels is None else np.asarray(batch_labels)
            where += f" in portfolio(s) {_some(np.unique(labels[rows]))}"
        raise NonFiniteError(
            f"{variable} holds NaN/inf at {where}; a missing weight is not zero: set it to 0 "
            "explicitly, or drop the stock from the weights."
        )

    # -- output labelling ----------------------------------------------------------------

    @staticmethod
    def _wrap_scalar(values: np.ndarray, a: _Aligned, name: str) -> Any:
        """One number per portfolio, labelled like the weights came in."""
        if not a.batched:
            return float(values[0])
        if a.kind == "ndarray":
            return values
        if a.kind == "pandas":
            return pd.Series(values, index=pd.Index(a.batch_labels, name=a.batch_dim), name=name)
        coords = {} if a.batch_labels is None else {a.batch_dim: a.batch_labels}
        return xr.DataArray(values, dims=(a.batch_dim,), coords=coords, name=name)

    def _wrap_stock(self, values: np.ndarray, a: _Aligned, name: str) -> Any:
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
            return self._da(values[0], ("stock",), name)
        out = self._da(values, (a.batch_dim, "stock"), name, {a.batch_dim: a.batch_labels})
        return out if a.stock_last else out.transpose("stock", a.batch_dim)

    # -- ndarray kernels (rows = portfolios) ---------------------------------------------

    @cached_property
    def _groups(self) -> GroupedExposures | None:
        """``B`` split into columns looked up by group (market, industries) and dense ones
        (styles), for the grouped kernel; None when plain GEMMs with ``B`` are as fast."""
        return group_exposures(self._B)

    def _grouped(self, rows: int) -> GroupedExposures | None:
        """The grouped split for a pass over ``rows`` portfolios: once built, always; a few
        rows (a solve's refinement step, one variance) do not build it (a few ms, once)."""
        if rows >= _GROUPED_MIN_ROWS or "_groups" in self.__dict__:
            return self._groups
        return None

    def _variance_rows(self, w: np.ndarray) -> np.ndarray:
        groups = self._grouped(w.shape[0])
        if groups is not None:
            _, _, factor_var, specific_var = groups.moments(w, self._F, self._d, threads=_pass_threads(w.size))
            return factor_var + specific_var
        y = w @ self._Bt
        return np.einsum("pk,pk->p", y, y) + _weighted_sq(w, self._d)

    def _sigma_rows(self, x: np.ndarray) -> np.ndarray:
        groups = self._grouped(x.shape[0])
        if groups is not None:
            return groups.apply(x, self._F, self._d, threads=_pass_threads(x.size))
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
            return groups.exposures(w, threads=_pass_threads(w.size))
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
            _, _, _, specific_var, mcr, cr = self._groups.decompose(w, self._F, self._d, threads=_pass_threads(w.size))
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
            inv = _inv_sqrt(factor_var[lo:hi] + spec)  # 1/σ, 0 for a zero portfolio
            sw += dw  # Σ w = B F x + d ∘ w
            sw *= inv[:, None]  # MCR
            np.multiply(wb, sw, out=cr[lo:hi])  # CR = w ∘ MCR

        _run_row_blocks(block, (n_rows, n), _pass_threads(w.size))
        return specific_var, mcr, cr

    def _woodbury_rows(self, x: np.ndarray) -> np.ndarray:
        y = x * self._inv_d
        t = y @ self._Bt
        s = scipy.linalg.cho_solve((self._chol_m, True), t.T, check_finite=False).T
        out = s @ self._Bt.T
        out *= self._inv_d
        np.subtract(y, out, out=out)
        return out

    # -- risk ----------------------------------------------------------------------------

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
        """Volatility ``√(wᵀ Σ w)`` of one portfolio or a batch (same units as ``√d``).

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
            Weights, aligned as in :meth:`variance`.

        Returns
        -------
        float or ndarray (portfolio,) / Series / DataArray (portfolio,)

        Raises
        ------
        AlignmentError, NonFiniteError, DimensionError
            As in :meth:`variance`.
        """
        a = self._align(w)
        return self._wrap_scalar(np.sqrt(self._variance_rows(a.values)), a, "volatility")

    def factor_exposures(self, w: WeightsLike) -> xr.DataArray:
        """Factor exposures ``x = Bᵀ w`` of one portfolio or a batch.

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
            Weights, aligned as in :meth:`variance`.

        Returns
        -------
        DataArray (factor,) or (portfolio, factor)
        """
        a = self._align(w)
        x = self._exposure_rows(np.ascontiguousarray(a.values))
        if not a.batched:
            return self._da(x[0], ("factor",), "factor_exposures")
        return self._da(x, (a.batch_dim, "factor"), "factor_exposures", {a.batch_dim: a.batch_labels})

    def decompose(self, w: WeightsLike, *, per_stock: bool = True) -> "RiskDecomposition":
        """Split the risk of one portfolio or a batch into factor and specific parts.

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
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
        a = self._align(w, check_finite=False)
        W = np.ascontiguousarray(a.values)
        if self._groups is not None:  # one fused pass: exposures, moments and per-stock parts
            threads = _pass_threads(W.size)
            if per_stock:
                x, fx, factor_var, specific_var, mcr, cr = self._groups.decompose(W, self._F, self._d, threads=threads)
                per = (mcr, cr)
            else:
                (x, fx, factor_var, specific_var), per = self._groups.moments(W, self._F, self._d, threads=threads), None
            if not np.isfinite(x).all():
                self._check_aligned(a)  # names the stocks and portfolios at fault
            return RiskDecomposition(
                weights=W, x=x, fx=fx, factor_var=factor_var, specific_var=specific_var,
                cov=self, aligned=a, per_stock=per,
            )
        with np.errstate(invalid="ignore", over="ignore"):  # bad weights are reported just below
            x = self._exposure_rows(W)
        if not np.isfinite(x).all():
            self._check_aligned(a)  # names the stocks and portfolios at fault
        fx = x @ self._F
        factor_var = np.vecdot(x, fx)
        if per_stock:
            specific_var, mcr, cr = self._per_stock_rows(W, fx, factor_var)
            per = (mcr, cr)
        else:
            specific_var, per = _weighted_sq(W, self._d), None
        return RiskDecomposition(
            weights=W, x=x, fx=fx, factor_var=factor_var, specific_var=specific_var,
            cov=self, aligned=a, per_stock=per,
        )

    def beta(self, w: WeightsLike, benchmark: WeightsLike) -> Any:
        """Beta of portfolio(s) to a benchmark: ``wᵀ Σ b / bᵀ Σ b``.

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
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
        """Active risk (tracking-error volatility) ``σ(w − b)``.

        Parameters
        ----------
        w : ndarray (stock,) or (portfolio, stock), Series, DataFrame or DataArray (stock[, portfolio])
            Portfolio weights, aligned as in :meth:`variance`.
        benchmark : ndarray (stock,), Series or DataArray (stock,)
            One benchmark portfolio.

        Returns
        -------
        float or one value per portfolio labelled like ``w``
        """
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
            a = _Aligned(np.ones((1, self.n_stocks)), False, "xarray")
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
        out = self._da(r, ("sample", "stock"), "returns", {"sample": np.arange(int(n))})
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
        ids = _as_ids(stocks)
        _check_unique(ids, "stock", "subset")
        pos = self._stock_index.get_indexer(ids)
        if (pos < 0).any():
            raise AlignmentError(f"subset: unknown stocks {_some(ids[pos < 0])}; pick ids from `.stocks`.")
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
        ds.attrs["riskmodel_object"] = "StructuredCovariance"
        return ds


# ---------------------------------------------------------------------------------------
# scipy view
# ---------------------------------------------------------------------------------------


class StructuredLinearOperator(LinearOperator):
    """:class:`scipy.sparse.linalg.LinearOperator` view of a :class:`StructuredCovariance`.

    Parameters
    ----------
    cov : StructuredCovariance

    Notes
    -----
    Symmetric: the adjoint is the operator itself. Vectors are ndarrays in the order of
    ``cov.stocks``.
    """

    def __init__(self, cov: StructuredCovariance) -> None:
        self.cov = cov
        super().__init__(dtype=np.dtype(np.float64), shape=cov.shape)

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


# ---------------------------------------------------------------------------------------
# decomposition value object
# ---------------------------------------------------------------------------------------


class RiskDecomposition:
    """The risk of one portfolio or a batch, split into factor and specific parts.

    Made by :meth:`StructuredCovariance.decompose`; not built directly. Scalars are floats
    for one portfolio and DataArrays (portfolio,) for a batch; per-factor and per-stock
    parts are DataArrays with a ``factor`` / ``stock`` dim. Per-stock contributions come
    computed from ``decompose`` (or, with ``per_stock=False``, on first access: one more
    ``(P, m) @ (m, N)`` GEMM and blocked pass).

    Attributes
    ----------
    total_vol, factor_vol, specific_vol : float or DataArray (portfolio,)
        ``σ``, ``√(xᵀFx)``, ``√(Σ d w²)``; ``σ² = factor² + specific²``.
    factor_share : float or DataArray (portfolio,)
        ``xᵀFx / σ²`` (NaN for a zero portfolio).
    factor_exposures : DataArray (factor,) or (portfolio, factor)
        ``x = Bᵀ w``.
    factor_contributions : DataArray (factor,) or (portfolio, factor)
        Euler ``x_k (F x)_k / σ``; with ``specific_contribution`` they add up to ``σ``.
    specific_contribution : float or DataArray (portfolio,)
        ``Σ d w² / σ``.
    marginal_contributions : DataArray (stock,) or (portfolio, stock)
        ``MCR = Σ w / σ = ∂σ/∂w``.
    component_contributions : DataArray (stock,) or (portfolio, stock)
        ``w ∘ MCR``; adds up to ``σ``.

    Notes
    -----
    A zero portfolio has ``σ = 0`` and all contributions 0.
    """

    def __init__(
        self,
        *,
        weights: np.ndarray,
        x: np.ndarray,
        fx: np.ndarray,
        factor_var: np.ndarray,
        specific_var: np.ndarray,
        cov: StructuredCovariance,
        aligned: _Aligned,
        per_stock: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._w = weights
        self._x = x
        self._fx = fx
        self._factor_var = factor_var
        self._specific_var = specific_var
        self._total_var = factor_var + specific_var
        self._vol = np.sqrt(self._total_var)
        self._cov = cov
        self._a = aligned
        if per_stock is not None:
            self.__dict__["_per_stock"] = per_stock  # fills the cached property
        self._templates: dict[tuple[str, ...], xr.DataArray] = {}

    # -- labelling helpers ---------------------------------------------------------------

    @property
    def batched(self) -> bool:
        """True when the decomposition holds several portfolios."""
        return self._a.batched

    @property
    def n_portfolios(self) -> int:
        """Number of portfolios P (1 for a single one)."""
        return self._a.n_portfolios

    @cached_property
    def _portfolio_labels(self) -> np.ndarray:
        labels = self._a.batch_labels
        return np.arange(self.n_portfolios) if labels is None else np.asarray(labels)

    @cached_property
    def _batch_coords(self) -> xr.Coordinates:
        """The portfolio coordinate (with its index), built once for every labelled output."""
        return xr.Coordinates({self._a.batch_dim: self._portfolio_labels})

    def _scalar(self, values: np.ndarray, name: str) -> Any:
        if not self.batched:
            return float(values[0])
        return self._labelled(values, (self._a.batch_dim,), name)

    def _per(self, values: np.ndarray, dim: str, name: str) -> xr.DataArray:
        if not self.batched:
            return self._cov._da(values[0], (dim,), name)
        return self._labelled(values, (self._a.batch_dim, dim), name)

    def _labelled(self, values: np.ndarray, dims: tuple[str, ...], name: str) -> xr.DataArray:
        """``values`` labelled on ``dims`` by a shallow copy of a per-dims template: every
        output of the decomposition shares its coordinates and indexes (building them per
        output deep-copied the stock index each time)."""
        template = self._templates.get(dims)
        if template is None:
            shape = tuple(values.shape)
            extra = self._batch_coords
            template = self._cov._da(np.broadcast_to(np.float64(0.0), shape), dims, "template", extra)
            self._templates[dims] = template
        out = template.copy(deep=False, data=values)
        out.name = name
        return out

    # -- arrays --------------------------------------------------------------------------

    @cached_property
    def _factor_contrib(self) -> np.ndarray:
        return _safe_div(self._x * self._fx, self._vol)

    @cached_property
    def _per_stock(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P, N)`` marginal ``Σ w / σ`` and component ``w ∘ MCR`` contributions (when
        ``decompose(per_stock=False)`` left them for later)."""
        _, mcr, cr = self._cov._per_stock_rows(self._w, self._fx, self._factor_var)
        return mcr, cr

    @property
    def _mcr(self) -> np.ndarray:
        return self._per_stock[0]

    @property
    def _cr(self) -> np.ndarray:
        return self._per_stock[1]

    # -- public --------------------------------------------------------------------------

    @property
    def variance(self) -> Any:
        """``σ²``: float or DataArray (portfolio,)."""
        return self._scalar(self._total_var, "variance")

    @property
    def total_vol(self) -> Any:
        """``σ``: float or DataArray (portfolio,)."""
        return self._scalar(self._vol, "total_vol")

    @property
    def factor_vol(self) -> Any:
        """``√(xᵀ F x)``: float or DataArray (portfolio,)."""
        return self._scalar(np.sqrt(np.maximum(self._factor_var, 0.0)), "factor_vol")

    @property
    def specific_vol(self) -> Any:
        """``√(Σ d w²)``: float or DataArray (portfolio,)."""
        return self._scalar(np.sqrt(self._specific_var), "specific_vol")

    @property
    def factor_share(self) -> Any:
        """Factor share of variance ``xᵀFx / σ²``: float or DataArray (portfolio,)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self._factor_var / self._total_var
        return self._scalar(share, "factor_share")

    @property
    def factor_exposures(self) -> xr.DataArray:
        """``Bᵀ w``: DataArray (factor,) or (portfolio, factor)."""
        return self._per(self._x, "factor", "factor_exposures")

    @property
    def factor_contributions(self) -> xr.DataArray:
        """Euler contributions ``x_k (F x)_k / σ``: DataArray (factor,) or (portfolio, factor)."""
        return self._per(self._factor_contrib, "factor", "factor_contributions")

    @property
    def specific_contribution(self) -> Any:
        """``Σ d w² / σ``: float or DataArray (portfolio,)."""
        return self._scalar(_safe_div(self._specific_var, self._vol), "specific_contribution")

    @property
    def marginal_contributions(self) -> xr.DataArray:
        """``MCR = Σ w / σ``: DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._mcr, "stock", "marginal_contributions")

    @property
    def component_contributions(self) -> xr.DataArray:
        """``w ∘ MCR`` (adds up to σ): DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._cr, "stock", "component_contributions")

    @property
    def weights(self) -> xr.DataArray:
        """The aligned weights: DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._w, "stock", "weights")

    def to_dataset(self) -> xr.Dataset:
        """Every part as one Dataset (dims ``[portfolio,] factor, stock``).

        Returns
        -------
        Dataset
        """
        ds = xr.Dataset(
            {
                "total_vol": self._as_da(self.total_vol, "total_vol"),
                "factor_vol": self._as_da(self.factor_vol, "factor_vol"),
                "specific_vol": self._as_da(self.specific_vol, "specific_vol"),
                "factor_share": self._as_da(self.factor_share, "factor_share"),
                "specific_contribution": self._as_da(self.specific_contribution, "specific_contribution"),
                "factor_exposures": self.factor_exposures,
                "factor_contributions": self.factor_contributions,
                "weights": self.weights,
                "marginal_contributions": self.marginal_contributions,
                "component_contributions": self.component_contributions,
            }
        )
        if self._cov.date is not None:
            ds = ds.assign_coords(date=self._cov.date)
        return ds

    @staticmethod
    def _as_da(value: Any, name: str) -> xr.DataArray:
        return value if isinstance(value, xr.DataArray) else xr.DataArray(value, name=name)

    def _row(self, portfolio: Any) -> int:
        if not self.batched:
            return 0
        if portfolio is None:
            raise InvalidParameterError(
                f"this decomposition holds {self.n_portfolios} portfolios; pass portfolio=<label>."
            )
        hits = np.nonzero(self._portfolio_labels == portfolio)[0]
        if hits.size == 0:
            raise AlignmentError(
                f"portfolio {portfolio!r} not in this decomposition; labels are {_some(self._portfolio_labels)}."
            )
        return int(hits[0])

    def top_factors(self, n: int = 5, portfolio: Any = None) -> pd.DataFrame:
        """The n factors contributing most (by the absolute Euler contribution) to one portfolio's risk.

        Parameters
        ----------
        n : int
            How many factors.
        portfolio : label, optional
            Which portfolio of a batch (required for a batch).

        Returns
        -------
        DataFrame
            Index ``factor``; columns ``exposure``, ``contribution`` (to σ), ``share``
            (contribution / σ).
        """
        i = self._row(portfolio)
        contrib = self._factor_contrib[i]
        order = np.argsort(-np.abs(contrib), kind="stable")[: max(int(n), 0)]
        sigma = self._vol[i]
        share = contrib[order] / sigma if sigma > 0 else np.zeros(order.size)
        return pd.DataFrame(
            {"exposure": self._x[i, order], "contribution": contrib[order], "share": share},
            index=pd.Index(self._cov.factors[order], name="factor"),
        )

    def top_stocks(self, n: int = 10, portfolio: Any = None) -> pd.DataFrame:
        """The n stocks contributing most (by the absolute component contribution) to one portfolio's risk.

        Parameters
        ----------
        n : int
            How many stocks.
        portfolio : label, optional
            Which portfolio of a batch (required for a batch).

        Returns
        -------
        DataFrame
            Index ``stock``; columns ``weight``, ``marginal`` (MCR), ``contribution`` (w·MCR),
            ``share`` (contribution / σ).
        """
        i = self._row(portfolio)
        cr = self._cr[i]
        order = np.argsort(-np.abs(cr), kind="stable")[: max(int(n), 0)]
        sigma = self._vol[i]
        share = cr[order] / sigma if sigma > 0 else np.zeros(order.size)
        return pd.DataFrame(
            {"weight": self._w[i, order], "marginal": self._mcr[i, order], "contribution": cr[order], "share": share},
            index=pd.Index(self._cov.stocks[order], name="stock"),
        )

    def summary(self, n: int = 5) -> str:
        """A text table: totals and, for one portfolio, the top factors and stocks.

        Parameters
        ----------
        n : int
            Rows of the top-factor / top-stock tables (one portfolio) or of portfolios shown
            (a batch shows the first ``max(n, 10)``).

        Returns
        -------
        str
        """
        totals = pd.DataFrame(
            {
                "total_vol": self._vol,
                "factor_vol": np.sqrt(np.maximum(self._factor_var, 0.0)),
                "specific_vol": np.sqrt(self._specific_var),
                "factor_share": np.divide(self._factor_var, self._total_var,
                                          out=np.full_like(self._total_var, np.nan), where=self._total_var > 0),
            },
            index=pd.Index(self._portfolio_labels, name=self._a.batch_dim),
        )
        date = "" if self._cov.date is None else f" on {str(self._cov.date)[:10]}"
        head = (f"RiskDecomposition{date}: {self.n_portfolios} portfolio(s), {self._cov.n_stocks:,} stocks, "
                f"{self._cov.n_factors} factors")
        if self.batched:
            k = max(n, 10)
            more = "" if self.n_portfolios <= k else f"\n... {self.n_portfolios - k} more portfolios"
            return f"{head}\n{totals.head(k).to_string(float_format=lambda v: f'{v:.6g}')}{more}"
        row = totals.iloc[0]
        lines = [
            head,
            f"  total vol     {row['total_vol']:.6g}",
            f"  factor vol    {row['factor_vol']:.6g}   (share of variance {row['factor_share']:.1%})",
            f"  specific vol  {row['specific_vol']:.6g}",
            "",
            "Top factors (Euler contributions to total vol):",
            self.top_factors(n).to_string(float_format=lambda v: f"{v:.4g}"),
            "",
            "Top stocks (component contributions):",
            self.top_stocks(n).to_string(float_format=lambda v: f"{v:.4g}"),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def _labelled_to_arrays(
    exposures: xr.DataArray, factor_cov: xr.DataArray, specific_var: xr.DataArray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check dims and labels of the three inputs; return arrays aligned on exposures' ids."""
    for name, obj in (("exposures", exposures), ("factor_cov", factor_cov), ("specific_var", specific_var)):
        if not isinstance(obj, xr.DataArray):
            raise VariableTypeError(
                f"{name} must be an xarray DataArray, got {type(obj).__name__}; "
                "use StructuredCovariance.from_arrays for ndarrays."
            )
    _expect_dims(exposures, "exposures", ("stock", "factor"))
    _expect_dims(factor_cov, "factor_cov", ("factor", "factor_"))
    _expect_dims(specific_var, "specific_var", ("stock",))
    exposures = exposures.transpose("stock", "factor")
    stocks = _as_ids(exposures["stock"].values)
    factors = _as_ids(exposures["factor"].values)
    _check_unique(stocks, "stock", "exposures")
    _check_unique(factors, "factor", "exposures")
    b = _as_float(exposures.values, "exposures")
    order = _reorder(stocks, specific_var["stock"].values, "specific_var", "stock", "exposures")
    d = _as_float(specific_var.values, "specific_var")[order]
    rows = _reorder(factors, factor_cov["factor"].values, "factor_cov", "factor", "exposures")
    cols = _reorder(factors, factor_cov["factor_"].values, "factor_cov", "factor_", "exposures")
    f = _as_float(factor_cov.transpose("factor", "factor_").values, "factor_cov")[np.ix_(rows, cols)]
    return b, f, d, stocks, factors


def _expect_dims(da: xr.DataArray, name: str, dims: tuple[str, ...]) -> None:
    if set(da.dims) != set(dims) or len(da.dims) != len(dims):
        hint = " (select one date first: .sel(date=...))" if "date" in da.dims else ""
        raise DimensionError(f"{name} must have dims {dims}, got {da.dims}{hint}.")


def _reorder(want: np.ndarray, have_labels: Any, variable: str, dim: str, reference: str) -> np.ndarray:
    """Positions of ``want`` in ``have``; an AlignmentError naming missing and extra ids."""
    have = _as_ids(have_labels)
    _check_unique(have, dim.rstrip("_"), variable)
    if have.shape == want.shape and np.array_equal(have, want):
        return np.arange(want.shape[0])
    pos = pd.Index(have).get_indexer(want)
    extra = np.setdiff1d(have, want)
    if (pos < 0).any() or extra.size:
        parts = []
        if (pos < 0).any():
            parts.append(f"missing {_some(want[pos < 0])}")
        if extra.size:
            parts.append(f"extra {_some(extra)}")
        raise AlignmentError(
            f"{variable} '{dim}' ids do not match {reference}: {'; '.join(parts)}. Keep only "
            f"{dim.rstrip('_')}s with complete data in all three inputs."
        )
    return pos


def _validate_arrays(
    b: np.ndarray, f: np.ndarray, d: np.ndarray, stocks: np.ndarray, factors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shapes, finiteness, d > 0, symmetry and PSD of F; returns (B, F, d, L, stocks, factors)."""
    if b.ndim != 2:
        raise DimensionError(f"exposures must be 2-D (stock, factor), got shape {b.shape}.")
    n, m = b.shape
    if n < 1 or m < 1:
        raise DimensionError(f"exposures has shape {b.shape}; need at least one stock and one factor.")
    if f.shape != (m, m):
        raise DimensionError(f"factor_cov has shape {f.shape}, expected ({m}, {m}) for {m} factors.")
    if d.shape != (n,):
        raise DimensionError(f"specific_var has shape {d.shape}, expected ({n},) for {n} stocks.")
    if stocks.shape != (n,):
        raise DimensionError(f"stocks has {stocks.shape[0]} ids, expected {n} (rows of exposures).")
    if factors.shape != (m,):
        raise DimensionError(f"factors has {factors.shape[0]} names, expected {m} (columns of exposures).")
    _check_unique(stocks, "stock", "exposures")
    _check_unique(factors, "factor", "exposures")

    bad = ~np.isfinite(b)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise NonFiniteError(
            f"exposures hold NaN/inf for stock(s) {_some(np.unique(stocks[rows]))} on factor(s) "
            f"{_some(np.unique(factors[cols]))}; keep only stocks with complete data."
        )
    bad = ~np.isfinite(d)
    if bad.any():
        raise NonFiniteError(
            f"specific_var is NaN/inf for stock(s) {_some(stocks[bad])}; keep only stocks with a "
            "specific-risk forecast."
        )
    if (d <= 0).any():
        raise InvalidParameterError(
            f"specific_var must be > 0; stock(s) {_some(stocks[d <= 0])} have "
            f"{_some(d[d <= 0])}; a zero specific variance makes Σ singular: floor it or drop the stock."
        )
    bad = ~np.isfinite(f)
    if bad.any():
        rows, cols = np.nonzero(bad)
        pairs = [f"({factors[i]}, {factors[j]})" for i, j in zip(rows[:_SHOW], cols[:_SHOW])]
        raise NonFiniteError(f"factor_cov holds NaN/inf at {', '.join(pairs)} ({rows.size} cells).")

    f = _symmetrise(f, factors)
    return b, f, d, _psd_root(f, factors), stocks, factors


def _symmetrise(f: np.ndarray, factors: np.ndarray) -> np.ndarray:
    scale = float(np.abs(f).max())
    asym = np.abs(f - f.T)
    worst = float(asym.max())
    if worst > SYMMETRY_RTOL * scale:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise InvalidParameterError(
            f"factor_cov is not symmetric: cell ({factors[i]}, {factors[j]}) = {f[i, j]:.6g} but "
            f"({factors[j]}, {factors[i]}) = {f[j, i]:.6g} (relative gap {worst / scale:.2e} > "
            f"{SYMMETRY_RTOL:g}); check the factor order of both axes."
        )
    return 0.5 * (f + f.T)


def _psd_root(f: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``L`` with ``L Lᵀ = F``: Cholesky, or ``V √λ`` for a singular PSD ``F``."""
    try:
        return np.linalg.cholesky(f)
    except np.linalg.LinAlgError:
        pass
    lam, vec = np.linalg.eigh(f)
    top = max(float(lam[-1]), 0.0)
    if lam[0] < -PSD_RTOL * top or top == 0.0 and lam[0] < 0:
        k = int(np.argmax(np.abs(vec[:, 0])))
        raise InvalidParameterError(
            f"factor_cov is not positive semi-definite: Cholesky failed and its smallest "
            f"eigenvalue is {lam[0]:.6g} (largest {top:.6g}; eigenvector mostly on factor "
            f"{factors[k]!r}); repair it (e.g. clip negative eigenvalues) before building the model."
        )
    return vec * np.sqrt(np.clip(lam, 0.0, None))
