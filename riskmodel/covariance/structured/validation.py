"""Checks and conversions of the operator's inputs: ids, numbers, dates, and the three
arrays ``B``, ``Σ_f``, ``d`` (shapes, labels, finiteness, ``d > 0``, symmetry and PSD of ``Σ_f``).

Every error names the stocks or factors at fault and says what to do.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    DuplicateLabelError,
    InvalidParameterError,
    NonFiniteError,
    VariableTypeError,
)

__all__ = [
    "SYMMETRY_RTOL",
    "PSD_RTOL",
    "some_ids",
    "as_ids",
    "check_unique",
    "as_float",
    "readonly",
    "date_label",
    "labelled_to_arrays",
    "validate_arrays",
]

#: Relative asymmetry of ``factor_cov`` tolerated (then symmetrised).
SYMMETRY_RTOL = 1e-8
#: Eigenvalues of ``factor_cov`` above ``-PSD_RTOL · λ_max`` count as zero (PSD, rank deficient).
PSD_RTOL = 1e-10
#: How many ids an error message lists before "and k more".
_SHOW = 5


# ---------------------------------------------------------------------------------------
# ids, numbers and dates
# ---------------------------------------------------------------------------------------


def some_ids(ids: Sequence[Any] | np.ndarray, k: int = _SHOW) -> str:
    """``'a', 'b', 'c' and 4 more (7 in all)``: the first few ids of a list, for messages."""
    ids = list(np.asarray(ids, dtype=object).ravel())
    shown = ", ".join(repr(str(i)) for i in ids[:k])
    if len(ids) > k:
        return f"{shown} and {len(ids) - k} more ({len(ids)} in all)"
    return shown


def as_ids(labels: Any) -> np.ndarray:
    """Labels as a numpy unicode array (pandas 3 StringDtype, objects and ints alike)."""
    arr = np.asarray(pd.Index(labels).astype(str), dtype=str)
    return arr.reshape(-1)


def check_unique(ids: np.ndarray, what: str, variable: str) -> None:
    """Raise :class:`DuplicateLabelError` naming the repeated ``what`` ids of ``variable``."""
    index = pd.Index(ids)
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise DuplicateLabelError(
            f"{variable}: duplicate {what} ids {some_ids(dup)}; each {what} must appear once "
            f"(aggregate or drop the duplicates first)."
        )


def as_float(values: Any, variable: str) -> np.ndarray:
    """``values`` as float64; a :class:`VariableTypeError` for a non-numeric dtype."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise VariableTypeError(
            f"{variable} must be numeric, got dtype {arr.dtype}; convert it to float64 first."
        )
    return np.asarray(arr, dtype=np.float64)


def readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous float64 copy (never flags the caller's own array)."""
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    arr.setflags(write=False)
    return arr


def date_label(date: Any) -> np.datetime64 | None:
    """A date-like as ``datetime64[ns]`` (None stays None); an InvalidParameterError otherwise."""
    if date is None:
        return None
    try:
        return pd.Timestamp(date).to_datetime64().astype("datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"date={date!r} is not a date: {exc}") from None


# ---------------------------------------------------------------------------------------
# the three inputs
# ---------------------------------------------------------------------------------------


def labelled_to_arrays(
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
    stocks = as_ids(exposures["stock"].values)
    factors = as_ids(exposures["factor"].values)
    check_unique(stocks, "stock", "exposures")
    check_unique(factors, "factor", "exposures")
    b = as_float(exposures.values, "exposures")
    order = _reorder(stocks, specific_var["stock"].values, "specific_var", "stock", "exposures")
    d = as_float(specific_var.values, "specific_var")[order]
    rows = _reorder(factors, factor_cov["factor"].values, "factor_cov", "factor", "exposures")
    cols = _reorder(factors, factor_cov["factor_"].values, "factor_cov", "factor_", "exposures")
    f = as_float(factor_cov.transpose("factor", "factor_").values, "factor_cov")[np.ix_(rows, cols)]
    return b, f, d, stocks, factors


def _expect_dims(da: xr.DataArray, name: str, dims: tuple[str, ...]) -> None:
    if set(da.dims) != set(dims) or len(da.dims) != len(dims):
        hint = " (select one date first: .sel(date=...))" if "date" in da.dims else ""
        raise DimensionError(f"{name} must have dims {dims}, got {da.dims}{hint}.")


def _reorder(want: np.ndarray, have_labels: Any, variable: str, dim: str, reference: str) -> np.ndarray:
    """Positions of ``want`` in ``have``; an AlignmentError naming missing and extra ids."""
    have = as_ids(have_labels)
    check_unique(have, dim.rstrip("_"), variable)
    if have.shape == want.shape and np.array_equal(have, want):
        return np.arange(want.shape[0])
    pos = pd.Index(have).get_indexer(want)
    extra = np.setdiff1d(have, want)
    if (pos < 0).any() or extra.size:
        parts = []
        if (pos < 0).any():
            parts.append(f"missing {some_ids(want[pos < 0])}")
        if extra.size:
            parts.append(f"extra {some_ids(extra)}")
        raise AlignmentError(
            f"{variable} '{dim}' ids do not match {reference}: {'; '.join(parts)}. Keep only "
            f"{dim.rstrip('_')}s with complete data in all three inputs."
        )
    return pos


def validate_arrays(
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
    check_unique(stocks, "stock", "exposures")
    check_unique(factors, "factor", "exposures")

    bad = ~np.isfinite(b)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise NonFiniteError(
            f"exposures hold NaN/inf for stock(s) {some_ids(np.unique(stocks[rows]))} on factor(s) "
            f"{some_ids(np.unique(factors[cols]))}; keep only stocks with complete data."
        )
    bad = ~np.isfinite(d)
    if bad.any():
        raise NonFiniteError(
            f"specific_var is NaN/inf for stock(s) {some_ids(stocks[bad])}; keep only stocks with a "
            "specific-risk forecast."
        )
    if (d <= 0).any():
        raise InvalidParameterError(
            f"specific_var must be > 0; stock(s) {some_ids(stocks[d <= 0])} have "
            f"{some_ids(d[d <= 0])}; a zero specific variance makes Σ singular: floor it or drop the stock."
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
