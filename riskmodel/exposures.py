"""Cleaning, neutralisation and the structured exposures of the risk model.

Three cross-sectional operations, each applied independently to every date (row t uses
only data of day t, so truncating a panel after day t leaves every output dated <= t
bit-identical):

* :func:`clean` — USE4 standardisation with tiered winsorising (METHODS §1): a
  cap-weighted mean, an equal-weighted standard deviation, data errors beyond
  ``data_error`` sigma set to NaN, outliers clipped at ``winsor`` sigma, re-standardised.
* :func:`neutralise` — the weighted least-squares residual of a characteristic on
  controls, industry dummies and a constant (centring is the constant-control case).
  Industries are removed by weighted within-industry demeaning (Frisch–Waugh–Lovell), the
  remaining controls by a batched QR followed by a small batched SVD of ``R`` (rank
  revealing), never by the normal equations.
* :func:`build_exposures` — the risk model's exposures as a structured
  :class:`Exposures` (market intercept, integer industry codes, a dense style block),
  with missing style exposures imputed from industry + size (USE4 data replacement).

Cleaning and the style block of :func:`build_exposures` run in numba kernels
(:mod:`riskmodel.kernels.clean`, parallel over dates, one pass per date with per-date
scratch, no full-size temporaries); ``clean`` and ``build_exposures`` share the row
routine, so they agree bit for bit. :func:`neutralise` is vectorised over dates:
``np.bincount`` with a ``date * P + code`` offset for per-industry sums and batched
``np.linalg.qr`` / ``np.linalg.svd`` on stacks of small matrices; its Python loops run
only over controls and over chunks of dates that bound memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from riskmodel.errors import (
    AlignmentError,
    DataQualityWarning,
    DimensionError,
    ImputationWarning,
    InvalidParameterError,
    MissingVariableError,
    NonFiniteError,
    RiskModelWarning,
    SingularDateWarning,
    VariableTypeError,
)

__all__ = ["clean", "neutralise", "build_exposures", "Exposures"]

_EPS = np.finfo(np.float64).eps
#: data-error bound (sigmas) used by build_exposures (clean's default)
_DATA_ERROR = 10.0
#: standardisations (and data-error rounds) used by build_exposures (clean's default)
_MAX_PASSES = 5
#: float64 cells per chunk of dates in the batched least squares (~64 MB)
_CHUNK_CELLS = 8_000_000


# ----------------------------------------------------------------------------------------
# labelled edge helpers
# ----------------------------------------------------------------------------------------


def _fmt_date(d: Any) -> str:
    try:
        return str(np.datetime_as_string(np.datetime64(d, "ns"), unit="D"))
    except (TypeError, ValueError):
        return str(d)


def _name(da: xr.DataArray, default: str) -> str:
    return str(da.name) if da.name is not None else default


def _as_date_stock(da: Any, name: str) -> xr.DataArray:
    """Check that ``da`` is a DataArray with dims exactly {date, stock}; return it (date, stock)."""
    if not isinstance(da, xr.DataArray):
        raise VariableTypeError(
            f"{name}: expected an xarray DataArray (date, stock), got {type(da).__name__}; "
            "wrap it with xr.DataArray(values, dims=('date', 'stock'), coords=...)."
        )
    if set(da.dims) != {"date", "stock"}:
        raise DimensionError(
            f"{name}: dims {tuple(da.dims)} but (date, stock) is needed; rename or "
            "transpose the variable to dims ('date', 'stock')."
        )
    return da.transpose("date", "stock")


def _float_values(da: xr.DataArray, name: str, *, inf_checked: bool = False) -> np.ndarray:
    """``da`` as a C-contiguous float64 array; ±inf is an error naming the stock and date
    unless ``inf_checked`` (the panel was validated, which already rejects it)."""
    if da.dtype.kind not in "fiub":
        raise VariableTypeError(
            f"{name}: dtype {da.dtype} is not numeric; convert it to float (NaN = missing)."
        )
    x = np.ascontiguousarray(da.values, dtype=np.float64)
    if not inf_checked and np.isinf(x).any():
        t, n = np.argwhere(np.isinf(x))[0]
        raise NonFiniteError(
            f"{name}: infinite value for stock {str(da['stock'].values[n])!r} on "
            f"{_fmt_date(da['date'].values[t])}; replace it by NaN (missing) or a finite value."
        )
    return x


def _check_aligned(ref: xr.DataArray, other: xr.DataArray, ref_name: str, name: str, dims: Sequence[str]) -> None:
    """Exact alignment on ``dims``: raise AlignmentError listing missing and extra ids."""
    for dim in dims:
        if dim not in other.dims:
            continue
        a = ref[dim].values
        b = other[dim].values
        if a.shape == b.shape and np.array_equal(a, b):
            continue
        sa, sb = set(a.tolist()), set(b.tolist())
        missing = sorted(map(str, sa - sb))[:5]
        extra = sorted(map(str, sb - sa))[:5]
        if not missing and not extra:
            raise AlignmentError(
                f"{name}: same {dim} ids as {ref_name} but in a different order; reindex it "
                f"with {name}.reindex({dim}={ref_name}.{dim})."
            )
        raise AlignmentError(
            f"{name}: {dim} ids differ from {ref_name} (missing {missing}, extra {extra}); "
            f"align the inputs with reindex({dim}=...) before the call (no silent alignment)."
        )


def _wrap(values: np.ndarray, like: xr.DataArray, name: str | None, attrs: dict[str, Any]) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("date", "stock"),
        coords={"date": like["date"].values, "stock": like["stock"].values},
        name=name,
        attrs=attrs,
    )


def _date_chunks(n_dates: int, cells_per_date: int) -> list[slice]:
    size = max(1, _CHUNK_CELLS // max(1, cells_per_date))
    return [slice(s, min(s + size, n_dates)) for s in range(0, n_dates, size)]


# ----------------------------------------------------------------------------------------
# industry codes
# ----------------------------------------------------------------------------------------


def _codes_from_values(values: np.ndarray, labels_attr: Any, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes (int32, -1 missing) and labels from str labels or integer codes."""
    kind = values.dtype.kind
    if kind in "iu":
        v = values.astype(np.int64)
        if labels_attr is not None:
            labels = tuple(str(s) for s in np.atleast_1d(labels_attr))
            if v.size and v.max(initial=-1) >= len(labels):
                raise InvalidParameterError(
                    f"{name}: code {int(v.max())} is beyond its {len(labels)} labels "
                    "(attribute 'labels'); fix the codes or the labels."
                )
            return np.where(v >= 0, v, -1).astype(np.int32), labels
        present = v >= 0
        uniq = np.unique(v[present])
        codes = np.full(v.shape, -1, dtype=np.int32)
        codes[present] = np.searchsorted(uniq, v[present]).astype(np.int32)
        return codes, tuple(str(u) for u in uniq)
    if kind == "f":
        missing = ~np.isfinite(values)
        if np.any(values[~missing] != np.round(values[~missing])):
            raise VariableTypeError(
                f"{name}: float industry values that are not whole codes; give str labels or "
                "integer codes (-1 or NaN = missing)."
            )
        filled = np.where(missing, -1, values).astype(np.int64)
        return _codes_from_values(filled, labels_attr, name)
    # strings (numpy unicode, StringDType or object)
    obj = np.asarray(values, dtype=object)
    flat = obj.ravel()
    missing = np.array(
        [v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v == "") for v in flat],
        dtype=bool,
    ) if flat.size else np.zeros(0, dtype=bool)
    strs = np.array([str(v) for v in flat], dtype=str) if flat.size else np.zeros(0, dtype=str)
    uniq = np.unique(strs[~missing])
    codes = np.full(flat.shape, -1, dtype=np.int32)
    codes[~missing] = np.searchsorted(uniq, strs[~missing]).astype(np.int32)
    return codes.reshape(obj.shape), tuple(str(u) for u in uniq)


def _industry_array(industry: xr.DataArray, like: xr.DataArray, name: str = "industry") -> tuple[np.ndarray, tuple[str, ...]]:
    """Industry of ``like``'s cells as (T, N) int32 codes (-1 missing) and the labels.

    Accepts a DataArray (stock) or (date, stock) of str labels or integer codes. Labels
    and integer codes carrying a ``labels`` attribute go through
    :func:`riskmodel.data.panel.industry_codes` (sorted labels, as everywhere in the library);
    bare integer codes (no ``labels``) and whole-number floats (NaN = missing) are mapped to
    their sorted distinct values, labelled by ``str(code)``.
    """
    if not isinstance(industry, xr.DataArray):
        raise VariableTypeError(
            f"{name}: expected a DataArray (stock) or (date, stock), got {type(industry).__name__}."
        )
    T = like.sizes["date"]
    if set(industry.dims) == {"stock"}:
        _check_aligned(like, industry, "the characteristic", name, ("stock",))
    elif set(industry.dims) == {"date", "stock"}:
        industry = industry.transpose("date", "stock")
        _check_aligned(like, industry, "the characteristic", name, ("date", "stock"))
    else:
        raise DimensionError(
            f"{name}: dims {tuple(industry.dims)}; an industry must have dims (stock) or (date, stock)."
        )
    kind = industry.dtype.kind
    use_panel = kind in "USOT" or (kind in "iu" and industry.attrs.get("labels") is not None)
    industry_codes = None
    if use_panel:
        try:
            from riskmodel.data.panel import industry_codes  # type: ignore[attr-defined]
        except ImportError:  # pragma: no cover - panel.py is part of the package
            industry_codes = None
    if industry_codes is not None:
        codes, labels = industry_codes(industry.rename(name), name)
    else:
        codes, labels = _codes_from_values(np.asarray(industry.values), industry.attrs.get("labels"), name)
    codes = np.asarray(codes, dtype=np.int32)
    if codes.ndim == 1 or codes.shape[0] != T:
        codes = np.broadcast_to(codes.reshape(-1, codes.shape[-1])[-1], (T, codes.shape[-1]))
    return np.ascontiguousarray(codes, dtype=np.int32), tuple(labels)


def _panel_industry(panel: xr.Dataset, name: str, like: xr.DataArray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Industry codes of a panel variable (see :func:`_industry_array`)."""
    return _industry_array(panel[name], like, name)


# ----------------------------------------------------------------------------------------
# clean: ndarray core
# ----------------------------------------------------------------------------------------


def _clean_array(
    x: np.ndarray,
    h: np.ndarray | None,
    estu: np.ndarray | None,
    winsor: float,
    data_error: float,
    max_passes: int,
    *,
    final_clip: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clean every date of ``x`` (T, N) with the numba kernel (one pass per date).

    ``h`` caps (None: equal weights), ``estu`` bool mask (None: everyone). Returns the
    clipped ``z``, the last standardisation before the final clip (the same array as ``z``
    when ``final_clip``), the data-error mask, the rows without setters and the rows
    clipped after the last pass.
    """
    from riskmodel.kernels.clean import clean_kernel

    T, N = x.shape
    x = np.ascontiguousarray(x, dtype=np.float64)
    h_arr = np.ascontiguousarray(h, dtype=np.float64) if h is not None else np.ones((1, 1))
    e_arr = np.ascontiguousarray(estu, dtype=bool) if estu is not None else np.ones((1, 1), bool)
    z = np.empty((T, N))
    errors = np.empty((T, N), dtype=bool)
    n_err = np.empty(T, np.int64)
    first = np.empty(T, np.int64)
    no_setter = np.empty(T, dtype=bool)
    unconverged = np.empty(T, dtype=bool)
    clean_kernel(x, h_arr, h is not None, e_arr, estu is not None, float(winsor), float(data_error),
                 int(max_passes), bool(final_clip), z, errors, n_err, first, no_setter, unconverged)
    if final_clip:
        return z, z, errors, no_setter, unconverged
    return np.clip(z, -winsor, winsor), z, errors, no_setter, unconverged


def _warn_clean(
    name: str,
    n_err: np.ndarray,
    first: np.ndarray,
    no_setter: np.ndarray,
    raw_of: Callable[[int, int], float],
    like: xr.DataArray,
    data_error: float,
    stacklevel: int,
) -> None:
    """The warnings of :func:`clean` from per-date counts (first data error in date order)."""
    total = int(n_err.sum())
    if total:
        t = int(np.flatnonzero(n_err)[0])
        n = int(first[t])
        warnings.warn(
            f"clean({name}): {total} value(s) beyond {data_error:g} standard deviations treated as "
            f"data errors and set to NaN; first: stock {str(like['stock'].values[n])!r} on "
            f"{_fmt_date(like['date'].values[t])} (raw value {raw_of(t, n)!r}). Check the raw data or "
            "raise data_error.",
            DataQualityWarning,
            stacklevel=stacklevel + 1,
        )
    if no_setter.any():
        t = int(np.flatnonzero(no_setter)[0])
        warnings.warn(
            f"clean({name}): {int(no_setter.sum())} date(s) have values but no stock that may set "
            f"the mean (needs a positive cap and estu membership); first {_fmt_date(like['date'].values[t])}. "
            "Their output is NaN.",
            SingularDateWarning,
            stacklevel=stacklevel + 1,
        )


def clean(
    x: xr.DataArray,
    *,
    cap: xr.DataArray | None = None,
    winsor: float = 3.0,
    data_error: float = 10.0,
    max_passes: int = 5,
    estu: xr.DataArray | None = None,
) -> xr.DataArray:
    """Winsorise, centre and standardise a characteristic, date by date (USE4).

    Parameters
    ----------
    x : DataArray (date, stock)
        Raw characteristic; NaN = missing (kept NaN, never filled).
    cap : DataArray (date, stock), optional
        Market caps. When given, the mean is cap-weighted and only stocks with a finite
        positive cap set the mean and the standard deviation; otherwise both are equal-weighted.
    winsor : float, default 3.0
        Clip bound in standard deviations (tier 2).
    data_error : float, default 10.0
        Values beyond this many standard deviations are data errors: set to NaN and reported
        (tier 1). Must be > ``winsor``.
    max_passes : int, default 5
        Maximum number of standardisations (and of data-error rounds).
    estu : DataArray (date, stock) of bool, optional
        Estimation universe: only its members set the mean and standard deviation; the other
        present stocks are standardised with the same numbers.

    Returns
    -------
    DataArray (date, stock)
        ``z``, NaN exactly where ``x`` is NaN, where a data error was removed, or on a date
        whose setters are all missing. ``attrs``: ``n_data_errors``, ``n_unconverged``
        (dates still clipping after ``max_passes``), ``winsor``, ``data_error``.

    Raises
    ------
    DimensionError, VariableTypeError, AlignmentError, InvalidParameterError

    Warns
    -----
    DataQualityWarning
        When data errors were set to NaN (count and the first stock/date).
    SingularDateWarning
        When a date has present stocks but none that may set the mean (e.g. no cap).

    Notes
    -----
    For each date, over the setters S (present, in ``estu``, with a cap when ``cap`` is given):

    .. math:: z_n = (x_n - \\sum_{S} h_m x_m) / \\sigma_{eq}, \\quad
              \\sigma_{eq}^2 = \\frac{1}{|S|}\\sum_{S} (x_m - \\bar x)^2,

    with ``h`` the normalised caps (or ``1/|S|``); the population (ddof = 0) standard
    deviation, which reproduces the seeds' worked example. Tier 1: ``|z| > data_error`` ->
    NaN, standardise again (repeated while new data errors appear). Tier 2: ``|z| > winsor``
    -> clipped to ``±winsor`` and re-standardised, up to ``max_passes`` standardisations;
    dates that still clip after the last pass are clipped once more (``attrs['n_unconverged']``
    counts them). Clipping shrinks the standard deviation, so re-standardised clipped values
    land slightly beyond ``winsor`` again: the passes converge to the winsorised fixed point
    only in the limit, and on a date with outliers the final clip moves a few values by a
    small amount. Before that final clip every date satisfies ``|Σ h z| <= 1e-12`` and
    ``|σ_eq(z) - 1| <= 1e-12`` over its setters; a date that never clips satisfies them
    exactly in the output. A date with no spread (every setter has the same value, within
    ``1e-14`` of its magnitude) has ``z = 0`` for every present stock: a characteristic
    that does not vary cannot explain anything. A date with one setter gives 0.

    Every date is processed on its own: no value of another date enters ``z`` at ``t``.

    References
    ----------
    Menchero, Orr, Wang, *USE4 Methodology Notes*, MSCI (2011), §2.

    See Also
    --------
    neutralise : the residual on controls, applied after cleaning.

    Examples
    --------
    The seeds' five firms (raw year-over-year growth), one date:

    >>> import numpy as np, xarray as xr
    >>> g = xr.DataArray([[0.15, 0.06, 0.01, -0.04, -0.22]], dims=("date", "stock"),
    ...                  coords={"date": np.array(["2024-01-02"], dtype="datetime64[ns]"),
    ...                          "stock": ["AMZN", "SBUX", "NKE", "TGT", "GPS"]})
    >>> np.round(clean(g).values, 2)
    array([[ 1.28,  0.55,  0.15, -0.26, -1.72]])
    """
    name = _name(x, "x") if isinstance(x, xr.DataArray) else "x"
    x = _as_date_stock(x, name)
    if not (np.isfinite(winsor) and winsor > 0):
        raise InvalidParameterError(f"clean: winsor={winsor!r} must be a positive number of standard deviations.")
    if not (data_error > winsor):
        raise InvalidParameterError(
            f"clean: data_error={data_error!r} must exceed winsor={winsor!r} (data errors are the outer tier)."
        )
    if int(max_passes) != max_passes or max_passes < 1:
        raise InvalidParameterError(f"clean: max_passes={max_passes!r} must be an integer >= 1.")
    xv = _float_values(x, name)
    T, N = xv.shape
    if cap is not None:
        cap = _as_date_stock(cap, "cap")
        _check_aligned(x, cap, name, "cap", ("date", "stock"))
        hv = _float_values(cap, "cap")
        if (hv < 0).any():
            t, n = np.argwhere(hv < 0)[0]
            raise InvalidParameterError(
                f"cap: negative market cap for stock {str(x['stock'].values[n])!r} on "
                f"{_fmt_date(x['date'].values[t])}; caps must be >= 0 (NaN = missing)."
            )
    else:
        hv = np.ones((1, 1))  # equal weights (ignored by the kernel)
    if estu is not None:
        estu = _as_date_stock(estu, "estu")
        _check_aligned(x, estu, name, "estu", ("date", "stock"))
        if estu.dtype.kind != "b":
            raise VariableTypeError(f"estu: dtype {estu.dtype}; give a boolean mask (date, stock).")
        ev = np.ascontiguousarray(estu.values)
    else:
        ev = np.ones((1, 1), dtype=bool)  # everyone (ignored by the kernel)

    from riskmodel.kernels.clean import clean_kernel

    z = np.empty((T, N))
    errors = np.empty((T, N), dtype=bool)
    n_err_t = np.empty(T, np.int64)
    first = np.empty(T, np.int64)
    no_setter = np.empty(T, dtype=bool)
    unconverged = np.empty(T, dtype=bool)
    clean_kernel(xv, hv, cap is not None, ev, estu is not None, float(winsor), float(data_error),
                 int(max_passes), True, z, errors, n_err_t, first, no_setter, unconverged)
    n_err = int(n_err_t.sum())
    _warn_clean(name, n_err_t, first, no_setter, lambda t, n: float(xv[t, n]), x, float(data_error),
                stacklevel=2)
    attrs = {
        "n_data_errors": n_err,
        "n_unconverged": int(unconverged.sum()),
        "winsor": float(winsor),
        "data_error": float(data_error),
    }
    return _wrap(z, x, x.name, attrs)


# ----------------------------------------------------------------------------------------
# neutralise: ndarray core
# ----------------------------------------------------------------------------------------


def _group_demean(values: np.ndarray, w: np.ndarray, flat_idx: np.ndarray, valid: np.ndarray, n_groups: int) -> np.ndarray:
    """Weighted within-group demeaning of (T, N) ``values`` over ``valid`` cells.

    ``flat_idx`` is ``date * P + code`` for each cell; groups with zero total weight give
    NaN. Two passes (the second removes the rounding of the first).
    """
    idx = flat_idx[valid]
    wv = w[valid]
    sw = np.bincount(idx, weights=wv, minlength=n_groups)
    out = np.full(values.shape, np.nan)
    v = values[valid]
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(2):
            m = np.bincount(idx, weights=wv * v, minlength=n_groups) / sw
            v = v - m[idx]
    out[valid] = v
    return out


def _neutralise_array(
    g: np.ndarray,
    C: np.ndarray,
    codes: np.ndarray,
    w: np.ndarray,
    n_codes: int,
    rcond: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residual of ``g`` (T, N) on controls ``C`` (T, N, K) + industry dummies (+ constant).

    ``codes`` (T, N) int (-1 = missing; all 0 for "constant only"), ``w`` (T, N) weights
    (>= 0). Returns the residual (NaN where not computable), the mask of cells that had
    ``g`` but could not be neutralised, and the per-date numerical rank of the controls.
    """
    T, N, K = C.shape
    valid = np.isfinite(g) & np.isfinite(w) & (codes >= 0)
    if K:
        valid &= np.isfinite(C).all(axis=2)
    # weights normalised to mean 1 over the valid cells of each date (scale invariance)
    wv = np.where(valid, w, 0.0)
    nv = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        wmean = wv.sum(axis=1) / nv
    wv = wv / np.where(wmean > 0, wmean, 1.0)[:, None]
    flat_idx = np.arange(T)[:, None] * n_codes + np.where(codes >= 0, codes, 0)
    gt = _group_demean(g, wv, flat_idx, valid, T * n_codes)
    fit = valid & np.isfinite(gt)  # a group with no weight cannot be demeaned
    rank = np.zeros(T, dtype=np.int64)
    if K == 0:
        resid = np.where(fit, gt, np.nan)
    else:
        Ct = np.empty((T, N, K))
        raw_norm = np.empty((T, K))
        sq = np.sqrt(wv)
        for k in range(K):
            ck = C[:, :, k]
            Ct[:, :, k] = _group_demean(ck, wv, flat_idx, valid, T * n_codes)
            raw_norm[:, k] = np.sqrt((np.where(fit, sq * ck, 0.0) ** 2).sum(axis=1))
        raw_norm = np.where(raw_norm > 0, raw_norm, 1.0)
        Ct = np.where(fit[:, :, None], Ct, 0.0)
        # columns scaled to unit *raw* weighted norm: a control that demeaning reduces to
        # rounding noise (a constant, an industry dummy) falls below rcond and is dropped
        A = (sq[:, :, None] * Ct) / raw_norm[:, None, :]
        b = np.where(fit, sq * gt, 0.0)
        if N < K:  # zero rows change no least-squares problem and keep the QR "tall"
            A = np.concatenate([A, np.zeros((T, K - N, K))], axis=1)
            b = np.concatenate([b, np.zeros((T, K - N))], axis=1)
        Q, R = np.linalg.qr(A)  # (T, N, K), (T, K, K)
        U, s, Vt = np.linalg.svd(R)  # R = U diag(s) Vt, so A = (QU) diag(s) Vt
        keep = s > rcond
        rank = keep.sum(axis=1)
        qb = np.matmul(np.swapaxes(Q, 1, 2), b[:, :, None])[:, :, 0]  # Qᵀ b  (T, K)
        c = np.matmul(np.swapaxes(U, 1, 2), qb[:, :, None])[:, :, 0]  # Uᵀ Qᵀ b
        c = np.where(keep, c, 0.0)
        proj = np.matmul(Q, np.matmul(U, c[:, :, None]))[:, :, 0]  # projection of b on range(A)
        r_w = (b - proj)[:, :N]
        with np.errstate(invalid="ignore", divide="ignore"):
            beta_scaled = np.matmul(np.swapaxes(Vt, 1, 2), np.where(keep, c / np.where(keep, s, 1.0), 0.0)[:, :, None])
            beta = beta_scaled[:, :, 0] / raw_norm
            fitted = np.matmul(Ct, beta[:, :, None])[:, :, 0]
            resid = np.where(sq > 0, r_w / np.where(sq > 0, sq, 1.0), gt - fitted)
        resid = np.where(fit, resid, np.nan)
    # a date whose characteristic has no spread has nothing to neutralise: exact zeros
    with np.errstate(invalid="ignore"):
        hi = np.where(fit, g, -np.inf).max(axis=1)
        lo = np.where(fit, g, np.inf).min(axis=1)
    flat = fit.any(axis=1) & (hi == lo)
    resid = np.where(flat[:, None] & fit, 0.0, resid)
    excluded = np.isfinite(g) & ~fit
    return resid, excluded, rank


def _controls_list(controls: Any) -> list[tuple[str, xr.DataArray]]:
    if controls is None:
        return []
    if isinstance(controls, xr.Dataset):
        return [(str(k), controls[k]) for k in controls.data_vars]
    if isinstance(controls, xr.DataArray):
        return [(_name(controls, "control0"), controls)]
    if isinstance(controls, Mapping):
        return [(str(k), v) for k, v in controls.items()]
    if isinstance(controls, (list, tuple)):
        out = []
        for i, c in enumerate(controls):
            if not isinstance(c, xr.DataArray):
                raise VariableTypeError(
                    f"controls[{i}]: expected a DataArray (date, stock), got {type(c).__name__}; "
                    "pass DataArrays (e.g. panel['size']), not variable names."
                )
            out.append((_name(c, f"control{i}"), c))
        return out
    raise VariableTypeError(
        f"controls: expected a list or dict of DataArrays (date, stock) or a Dataset, got {type(controls).__name__}."
    )


def neutralise(
    g: xr.DataArray,
    controls: Sequence[xr.DataArray] | Mapping[str, xr.DataArray] | xr.Dataset | None = None,
    *,
    industry: xr.DataArray | None = None,
    weights: xr.DataArray | None = None,
    rcond: float | None = None,
) -> xr.DataArray:
    """Residual of a characteristic on controls, industry dummies and a constant, per date.

    Parameters
    ----------
    g : DataArray (date, stock)
        The (cleaned) characteristic.
    controls : list or dict of DataArray (date, stock), or Dataset, optional
        What the result must be neutral to (size, value, ...). ``None`` or empty: only the
        constant (and industries), i.e. weighted centring.
    industry : DataArray (stock) or (date, stock), optional
        Industry labels (str) or integer codes (-1 / NaN = missing; an integer array may
        carry a ``labels`` attribute). Adds one dummy per industry.
    weights : DataArray (date, stock), optional
        Regression weights ``v`` (e.g. √cap), >= 0; default all 1. A stock with weight 0
        does not enter the fit but still gets its residual ``g - Cβ̂``.
    rcond : float, optional
        Relative cutoff of the rank-revealing step; default ``eps * max(N, K)`` (numpy's
        ``lstsq`` rule) on controls scaled to unit weighted norm.

    Returns
    -------
    DataArray (date, stock)
        ``g⊥``. NaN where ``g``, any control, the industry or the weight is missing, or where
        the stock's industry has zero total weight that day; ``attrs['n_excluded']`` counts the
        stocks that had ``g`` but no residual, ``attrs['n_rank_deficient']`` the dates where the
        rank-revealing step dropped a direction, ``attrs['controls']`` the control names.

    Raises
    ------
    DimensionError, VariableTypeError, AlignmentError, InvalidParameterError

    Warns
    -----
    RiskModelWarning
        When stocks with a value of ``g`` were left NaN (count, the first stock/date, and why).

    Notes
    -----
    With ``V = diag(v)`` and ``X = [1 or industry dummies, C]`` on each date,

    .. math:: g_\\perp = g - X\\hat\\beta, \\quad
              \\hat\\beta = \\arg\\min_\\beta \\| V^{1/2}(g - X\\beta) \\|,

    so that ``Xᵀ V g⊥ = 0``: the portfolio ``v ∘ g⊥`` has no exposure to any control, to any
    industry, and (dummies sum to the constant) is dollar neutral under ``V``. Centring is
    the case with no control. The constant is always in ``X``: explicit without industries,
    spanned by the dummies with them.

    Industries enter by Frisch–Waugh–Lovell: ``g`` and every control are demeaned within
    industry with weights ``v`` (``np.bincount`` over ``date * P + code``), so no dummy
    matrix is formed; the demeaned controls ``C̃`` are solved by a batched QR
    ``V^{1/2} C̃ = QR`` (never the normal equations, which square the condition number)
    followed by a batched SVD of the small ``R``: singular values below ``rcond`` are
    dropped (a constant control, a control equal to an industry dummy, collinear controls,
    fewer stocks than parameters), giving the minimum-norm least-squares solution — the
    residual is unique whatever the rank. ``‖CᵀV g⊥‖_∞ <= 1e-10 ‖C‖_F ‖V g‖`` holds at
    ``cond(C) ≈ 1e8``. A date on which ``g`` has no spread gives exact zeros.

    See Also
    --------
    clean : standardise before neutralising.

    Examples
    --------
    Centring is the constant-control case:

    >>> import numpy as np, xarray as xr
    >>> g = xr.DataArray([[1.0, 2.0, 6.0]], dims=("date", "stock"),
    ...                  coords={"date": np.array(["2024-01-02"], dtype="datetime64[ns]"),
    ...                          "stock": ["a", "b", "c"]})
    >>> neutralise(g).values
    array([[-2., -1.,  3.]])
    """
    name = _name(g, "g") if isinstance(g, xr.DataArray) else "g"
    g = _as_date_stock(g, name)
    gv = _float_values(g, name)
    T, N = gv.shape
    ctrl = _controls_list(controls)
    K = len(ctrl)
    ctrl_arrays = []  # one (T, N) array per control; stacked one chunk of dates at a time
    for cname, c in ctrl:
        c = _as_date_stock(c, f"control {cname!r}")
        _check_aligned(g, c, name, f"control {cname!r}", ("date", "stock"))
        ctrl_arrays.append(_float_values(c, f"control {cname!r}"))
    if industry is not None:
        codes, labels = _industry_array(industry, g, _name(industry, "industry"))
        n_codes = max(len(labels), 1)
    else:
        codes, labels, n_codes = np.zeros((T, N), dtype=np.int32), (), 1
    if weights is not None:
        wname = _name(weights, "weights")
        weights = _as_date_stock(weights, wname)
        _check_aligned(g, weights, name, wname, ("date", "stock"))
        wv = _float_values(weights, wname)
        if (wv < 0).any():
            t, n = np.argwhere(wv < 0)[0]
            raise InvalidParameterError(
                f"{wname}: negative regression weight {float(wv[t, n])!r} for stock {str(g['stock'].values[n])!r} "
                f"on {_fmt_date(g['date'].values[t])}; weights must be >= 0 (NaN = missing)."
            )
    else:
        wv = np.ones((T, N))
    if rcond is None:
        rcond = _EPS * max(N, K)
    elif not (0 <= rcond < 1):
        raise InvalidParameterError(f"neutralise: rcond={rcond!r} must be in [0, 1).")

    out = np.empty((T, N))
    excluded = np.zeros((T, N), dtype=bool)
    rank = np.zeros(T, dtype=np.int64)
    for sl in _date_chunks(T, N * (4 * K + 8)):
        C = np.stack([c[sl] for c in ctrl_arrays], axis=2) if K else np.empty((sl.stop - sl.start, N, 0))
        out[sl], excluded[sl], rank[sl] = _neutralise_array(gv[sl], C, codes[sl], wv[sl], n_codes, float(rcond))

    n_excl = int(excluded.sum())
    if n_excl:
        t, n = np.argwhere(excluded)[0]
        why = []
        bad_ctrl = [ctrl[k][0] for k in range(K) if not np.isfinite(ctrl_arrays[k][t, n])]
        if bad_ctrl:
            why.append("control " + ", ".join(map(repr, bad_ctrl)))
        if codes[t, n] < 0:
            why.append("industry")
        if not np.isfinite(wv[t, n]):
            why.append("weight")
        reason = " and ".join(why) if why else "its industry has zero total weight"
        warnings.warn(
            f"neutralise({name}): {n_excl} stock-date(s) with a value but missing inputs are NaN in the "
            f"result; first: stock {str(g['stock'].values[n])!r} on {_fmt_date(g['date'].values[t])} "
            f"(missing: {reason}). Fill or impute the controls to keep them.",
            RiskModelWarning,
            stacklevel=2,
        )
    has_fit = np.isfinite(out).any(axis=1)
    attrs = {
        "n_excluded": n_excl,
        "n_rank_deficient": int(((rank < K) & has_fit).sum()) if K else 0,
        "controls": [c for c, _ in ctrl],
        "industries": list(labels),
    }
    return _wrap(out, g, g.name, attrs)


# ----------------------------------------------------------------------------------------
# structured exposures
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Exposures:
    """Structured exposures of a fundamental factor model (arrays, unlagged).

    Row t is known at the close of day t; the regression of day t uses row ``t - lag``.
    The factors are ``["market", *industry_labels, *style_names]``: a market intercept
    (exposure 1), one dummy per industry (from ``industry`` codes) and the dense style block.

    Attributes
    ----------
    dates : ndarray (T,) datetime64[ns]
    stocks : ndarray (N,) str
    style_names : tuple of str, K names
    industry_labels : tuple of str, P labels (empty without industries)
    styles : ndarray (T, N, K) float64, C-contiguous
        Cleaned (winsorised, cap-centred, standardised) styles; NaN = unknown.
    industry : ndarray (T, N) int32 or None
        Industry code at the close of t, -1 = missing.
    weights : ndarray (T, N) float64
        Regression weight (√cap); NaN / 0 = not in the estimation universe.
    cap : ndarray (T, N) float64
        Market cap (cap weights for the constraint, centring, shrinkage).
    imputed : ndarray (T, N, K) bool
        Cells imputed by :func:`build_exposures` (METHODS §1).
    """

    dates: np.ndarray
    stocks: np.ndarray
    style_names: tuple[str, ...]
    industry_labels: tuple[str, ...]
    styles: np.ndarray
    industry: np.ndarray | None
    weights: np.ndarray
    cap: np.ndarray
    imputed: np.ndarray

    def __post_init__(self) -> None:
        T, N, K = len(self.dates), len(self.stocks), len(self.style_names)
        checks = {
            "styles": (self.styles, (T, N, K)),
            "weights": (self.weights, (T, N)),
            "cap": (self.cap, (T, N)),
            "imputed": (self.imputed, (T, N, K)),
        }
        if self.industry is not None:
            checks["industry"] = (self.industry, (T, N))
        for field_name, (arr, shape) in checks.items():
            if np.shape(arr) != shape:
                raise DimensionError(
                    f"Exposures.{field_name}: shape {np.shape(arr)} but (T, N{', K' if len(shape) == 3 else ''}) = "
                    f"{shape} from dates/stocks/style_names; build it with build_exposures."
                )
        if self.industry is None and self.industry_labels:
            raise DimensionError("Exposures: industry_labels given but industry is None.")

    # --- sizes and names --------------------------------------------------------------
    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_stocks(self) -> int:
        return len(self.stocks)

    @property
    def n_styles(self) -> int:
        return len(self.style_names)

    @property
    def n_industries(self) -> int:
        return len(self.industry_labels) if self.industry is not None else 0

    @property
    def n_factors(self) -> int:
        return 1 + self.n_industries + self.n_styles

    @property
    def factor_names(self) -> list[str]:
        """``["market", *industry_labels, *style_names]`` (industries only when present)."""
        inds = list(self.industry_labels) if self.industry is not None else []
        return ["market", *inds, *self.style_names]

    def _row(self, t: Any) -> int:
        if isinstance(t, (int, np.integer)):
            i = int(t)
            if not -self.n_dates <= i < self.n_dates:
                raise InvalidParameterError(f"Exposures.dense: date index {i} is outside 0..{self.n_dates - 1}.")
            return i % self.n_dates
        d = np.datetime64(t, "ns")
        hit = np.flatnonzero(self.dates == d)
        if hit.size == 0:
            raise InvalidParameterError(
                f"Exposures.dense: date {_fmt_date(d)} is not among the {self.n_dates} dates "
                f"({_fmt_date(self.dates[0])} .. {_fmt_date(self.dates[-1])})."
            )
        return int(hit[0])

    def dense(self, t: Any) -> np.ndarray:
        """Dense exposure matrix ``B`` (N, m) of one date: ``[1, industry dummies, styles]``.

        Parameters
        ----------
        t : int or datetime-like
            Row position or date label.

        Returns
        -------
        ndarray (N, m)
            Columns in ``factor_names`` order. A stock with a missing industry has NaN in
            the whole industry block; NaN styles stay NaN.
        """
        i = self._row(t)
        N = self.n_stocks
        cols = [np.ones((N, 1))]
        if self.industry is not None:
            P = self.n_industries
            code = self.industry[i]
            dummies = np.zeros((N, P))
            ok = code >= 0
            dummies[np.flatnonzero(ok), code[ok]] = 1.0
            dummies[~ok] = np.nan
            cols.append(dummies)
        cols.append(self.styles[i])
        return np.concatenate(cols, axis=1)

    def to_dataset(self) -> xr.Dataset:
        """Labelled view: ``styles (date, stock, style)``, ``industry``, ``weights``, ``cap``, ``imputed``."""
        coords = {"date": self.dates, "stock": self.stocks, "style": list(self.style_names)}
        data: dict[str, Any] = {
            "styles": (("date", "stock", "style"), self.styles),
            "weights": (("date", "stock"), self.weights),
            "cap": (("date", "stock"), self.cap),
            "imputed": (("date", "stock", "style"), self.imputed),
        }
        if self.industry is not None:
            data["industry"] = (("date", "stock"), self.industry, {"labels": list(self.industry_labels)})
        return xr.Dataset(data, coords=coords)

    def __repr__(self) -> str:
        return (
            f"Exposures({self.n_dates} dates x {self.n_stocks} stocks; factors: market, "
            f"{self.n_industries} industries, styles {list(self.style_names)}; "
            f"{int(self.imputed.sum())} imputed cells)"
        )


def _styles_block(
    raw: list[np.ndarray],
    cap: np.ndarray | None,
    codes: np.ndarray | None,
    n_codes: int,
    present: np.ndarray,
    impute: bool,
    winsor: float,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The cleaned (and imputed) (T, N, K) style block, the imputed mask and diagnostics.

    One numba pass over dates (:func:`riskmodel.kernels.clean.exposures_kernel`): each
    style is cleaned as :func:`clean` does with ``cap`` weights (bit for bit), then a
    present stock with a missing style gets ``z̄_p + b (size - s̄_p)`` from the per-date
    √cap-weighted regression on industry dummies + size (the cleaned log cap) over the
    names that have it (Frisch–Waugh–Lovell), when its industry has a donor and its size
    is known. Diagnostics: per date, data errors, first stock with one and no-setter flags
    (column 0 the log cap, then one per style), imputed and left-NaN targets per style.
    """
    from numba.typed import List

    from riskmodel.kernels.clean import exposures_kernel

    T, N = present.shape
    K = len(raw)
    xs = List()
    for x in raw:
        xs.append(np.ascontiguousarray(x, dtype=np.float64))
    Z = np.empty((T, N, K))
    imputed = np.empty((T, N, K), dtype=bool)
    n_err = np.empty((T, K + 1), np.int64)
    first = np.empty((T, K + 1), np.int64)
    no_setter = np.empty((T, K + 1), dtype=bool)
    n_done = np.empty((T, K), np.int64)
    n_left = np.empty((T, K), np.int64)
    if K:
        exposures_kernel(
            xs,
            cap if cap is not None else np.ones((1, 1)),
            cap is not None,
            codes if codes is not None else np.zeros((1, 1), np.int32),
            codes is not None,
            int(n_codes),
            np.ascontiguousarray(present),
            bool(impute),
            float(winsor),
            _DATA_ERROR,
            _MAX_PASSES,
            Z, imputed, n_err, first, no_setter, n_done, n_left,
        )
    else:
        n_err[:] = 0
        no_setter[:] = False
    return Z, imputed, (n_err, first, no_setter, n_done, n_left)


def _validate_panel(panel: xr.Dataset, styles: Sequence[str], required: Sequence[str]) -> xr.Dataset:
    """``riskmodel.data.panel.validate_panel`` (normalised coordinates), or a type check without it."""
    try:
        from riskmodel.data.panel import validate_panel  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - panel.py is part of the package
        return panel
    return validate_panel(panel, styles=list(styles), require=list(required))


def build_exposures(
    panel: xr.Dataset,
    styles: Sequence[str],
    *,
    industry: str | None = "industry",
    cap: str | None = "market_cap",
    winsor: float = 3.0,
    impute: bool = True,
    min_history: int = 0,
) -> Exposures:
    """Clean the styles of a panel and assemble the structured :class:`Exposures`.

    Parameters
    ----------
    panel : Dataset (date, stock)
        Must hold ``returns``, the style variables and, when named, ``cap`` and ``industry``.
    styles : sequence of str
        Names of raw style characteristics (date, stock) in ``panel``.
    industry : str or None, default "industry"
        Industry variable (stock) or (date, stock); None: no industry factors.
    cap : str or None, default "market_cap"
        Market cap variable: cap-weighted centring and regression weights √cap. None: equal
        weights everywhere (weights 1 where a return or a style is present).
    winsor : float, default 3.0
        Winsor bound passed to :func:`clean`.
    impute : bool, default True
        Impute missing style exposures (METHODS §1 data replacement).
    min_history : int, default 0
        A stock is imputed on day t only if it has at least this many non-missing returns
        up to and including t.

    Returns
    -------
    Exposures

    Raises
    ------
    MissingVariableError
        A style, ``cap``, ``industry`` or ``returns`` is not in the panel.
    PanelError
        Any validation failure of the panel.

    Warns
    -----
    ImputationWarning
        With the number of imputed cells per style (and of cells that could not be imputed).

    Notes
    -----
    Each style is cleaned with :func:`clean` (``cap`` weights). A stock *present* on day t
    (a return or a cap that day, and ``min_history`` returns so far) whose style is missing
    gets a prediction from a per-date weighted (√cap) regression of the cleaned style on
    industry dummies and size — the cleaned log cap — over the names that have it, solved by
    Frisch–Waugh–Lovell (weighted industry demeaning, then one slope); the cell is flagged
    in ``imputed``. A present stock whose industry has no donor that day or whose cap is
    missing stays NaN (counted in the warning). Imputed cells are predictions on the cleaned
    scale; the clean invariants hold over the names with data. Without ``cap`` the size
    regressor is absent and the prediction is the industry mean.

    See Also
    --------
    clean, riskmodel.regression.factor_returns

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> T, N = 3, 8
    >>> panel = xr.Dataset(
    ...     {"returns": (("date", "stock"), rng.normal(0, 0.01, (T, N))),
    ...      "market_cap": (("date", "stock"), np.exp(rng.normal(8, 1, (T, N)))),
    ...      "value": (("date", "stock"), rng.normal(size=(T, N))),
    ...      "industry": ("stock", np.array(["banks", "tech"] * 4))},
    ...     coords={"date": pd.date_range("2024-01-02", periods=T), "stock": list("abcdefgh")})
    >>> e = build_exposures(panel, ["value"])
    >>> e.factor_names
    ['market', 'banks', 'tech', 'value']
    >>> e.dense(0).shape  # (N, m) for one date: [1, industry dummies, styles]
    (8, 4)
    """
    if not isinstance(panel, xr.Dataset):
        raise VariableTypeError(
            f"build_exposures: panel must be an xarray Dataset (date, stock), got {type(panel).__name__}."
        )
    if not isinstance(styles, (list, tuple)) or not all(isinstance(s, str) for s in styles):
        raise VariableTypeError(f"build_exposures: styles must be a list of variable names, got {styles!r}.")
    if len(set(styles)) != len(styles):
        raise InvalidParameterError(f"build_exposures: styles {list(styles)} contain a duplicate name.")
    if int(min_history) != min_history or min_history < 0:
        raise InvalidParameterError(f"build_exposures: min_history={min_history!r} must be an integer >= 0.")
    available = sorted(map(str, panel.data_vars))
    needed = [("returns", "returns")] + [(s, "style") for s in styles]
    if cap is not None:
        needed.append((cap, "cap"))
    if industry is not None:
        needed.append((industry, "industry"))
    for var, role in needed:
        if var not in panel.data_vars:
            raise MissingVariableError(
                f"build_exposures: {role} variable {var!r} is not in the panel (variables: {available}); "
                f"add it or pass {'styles' if role == 'style' else role}=... with an existing name."
            )
    panel = _validate_panel(panel, styles, [v for v, _ in needed if v not in styles])
    ret = _as_date_stock(panel["returns"], "returns")
    rv = _float_values(ret, "returns", inf_checked=True)  # validate_panel rejected ±inf
    T, N = rv.shape
    if cap is not None:
        cap_da = _as_date_stock(panel[cap], cap)
        _check_aligned(ret, cap_da, "returns", cap, ("date", "stock"))
        cv = _float_values(cap_da, cap, inf_checked=True)
        if cap != "market_cap" and (cv < 0).any():  # validate_panel checks market_cap itself
            t, n = np.argwhere(cv < 0)[0]
            raise InvalidParameterError(
                f"{cap}: negative market cap for stock {str(ret['stock'].values[n])!r} on "
                f"{_fmt_date(ret['date'].values[t])}; caps must be >= 0 (NaN = missing)."
            )
        weights = np.sqrt(cv)
        weights[cv == 0] = np.nan
    else:
        cap_da = None
        cv = np.full((T, N), np.nan)
        weights = None
    if industry is not None:
        codes, labels = _panel_industry(panel, industry, ret)
        n_codes = max(len(labels), 1)
    else:
        codes, labels, n_codes = None, (), 1

    raw = []
    for s in styles:
        da = _as_date_stock(panel[s], s)
        _check_aligned(ret, da, "returns", s, ("date", "stock"))
        raw.append((s, da, _float_values(da, s, inf_checked=True)))
    present = np.isfinite(rv)
    present |= np.isfinite(cv)
    if min_history > 0:
        present &= np.cumsum(np.isfinite(rv), axis=0, dtype=np.int32) >= min_history
    Z, imputed, diag = _styles_block([v for _, _, v in raw], cv if cap_da is not None else None,
                                     codes, n_codes, present, impute, float(winsor))
    n_err, first, no_setter, n_done, n_left = diag
    if impute and cap_da is not None:
        _warn_clean("log_cap", n_err[:, 0], first[:, 0], no_setter[:, 0],
                    lambda t, n: float(np.log(cv[t, n])), ret, _DATA_ERROR, stacklevel=2)
    for k, (s, da, xv) in enumerate(raw):
        _warn_clean(s, n_err[:, k + 1], first[:, k + 1], no_setter[:, k + 1],
                    lambda t, n, xv=xv: float(xv[t, n]), da, _DATA_ERROR, stacklevel=2)
    notes = []
    if impute:
        done_k = n_done.sum(axis=0)
        left_k = n_left.sum(axis=0)
        notes = [f"{s}: {int(done_k[k])} imputed, {int(left_k[k])} left NaN"
                 for k, s in enumerate(styles) if done_k[k] + left_k[k] > 0]
    if notes and n_done.any():
        warnings.warn(
            f"build_exposures: {int(n_done.sum())} missing style exposure(s) imputed from industry + size "
            f"and flagged in Exposures.imputed ({'; '.join(notes)}). Pass impute=False to leave them NaN.",
            ImputationWarning,
            stacklevel=2,
        )
    if weights is None:
        weights = np.where(present, 1.0, np.nan)
    return Exposures(
        dates=np.asarray(ret["date"].values).astype("datetime64[ns]"),
        stocks=np.asarray(ret["stock"].values).astype(str),
        style_names=tuple(styles),
        industry_labels=tuple(labels) if codes is not None else (),
        styles=np.ascontiguousarray(Z),
        industry=np.ascontiguousarray(codes, dtype=np.int32) if codes is not None else None,
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        cap=np.ascontiguousarray(cv, dtype=np.float64),
        imputed=imputed,
    )
