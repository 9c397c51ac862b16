"""Neutralisation of a characteristic, date by date: the weighted least-squares residual on
controls, industry dummies and a constant (centring is the constant-control case).

Industries are removed by weighted within-industry demeaning (Frisch–Waugh–Lovell), the
remaining controls by a batched QR followed by a small batched SVD of ``R`` (rank
revealing), never by the normal equations. Vectorised over dates: ``np.bincount`` with a
``date * P + code`` offset for per-industry sums and batched ``np.linalg.qr`` /
``np.linalg.svd`` on stacks of small matrices; the Python loops run only over controls and
over chunks of dates that bound memory.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from riskmodel._labels import as_date_stock, check_aligned, float_values, fmt_date
from riskmodel.errors import InvalidParameterError, RiskModelWarning, VariableTypeError
from riskmodel.exposures._shared import EPS, date_chunks, name_of, reject_negative, wrap
from riskmodel.exposures.industry import industry_array

__all__ = ["neutralise"]


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
        return [(name_of(controls, "control0"), controls)]
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
            out.append((name_of(c, f"control{i}"), c))
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
    name = name_of(g, "g") if isinstance(g, xr.DataArray) else "g"
    g = as_date_stock(g, name, numeric=False)
    gv = float_values(g, name)
    T, N = gv.shape
    ctrl = _controls_list(controls)
    K = len(ctrl)
    ctrl_arrays = [_aligned_values(g, name, c, f"control {cname!r}") for cname, c in ctrl]
    if industry is not None:
        codes, labels = industry_array(industry, g, name_of(industry, "industry"))
        n_codes = max(len(labels), 1)
    else:
        codes, labels, n_codes = np.zeros((T, N), dtype=np.int32), (), 1
    if weights is not None:
        wname = name_of(weights, "weights")
        wv = _aligned_values(g, name, weights, wname)
        reject_negative(wv, g, wname, "regression weight", "weights must be >= 0 (NaN = missing)",
                        show_value=True)
    else:
        wv = np.ones((T, N))
    if rcond is None:
        rcond = EPS * max(N, K)
    elif not (0 <= rcond < 1):
        raise InvalidParameterError(f"neutralise: rcond={rcond!r} must be in [0, 1).")

    out = np.empty((T, N))
    excluded = np.zeros((T, N), dtype=bool)
    rank = np.zeros(T, dtype=np.int64)
    for sl in date_chunks(T, N * (4 * K + 8)):
        C = np.stack([c[sl] for c in ctrl_arrays], axis=2) if K else np.empty((sl.stop - sl.start, N, 0))
        out[sl], excluded[sl], rank[sl] = _neutralise_array(gv[sl], C, codes[sl], wv[sl], n_codes, float(rcond))

    n_excl = int(excluded.sum())
    if n_excl:
        _warn_excluded(name, g, excluded, [c for c, _ in ctrl], ctrl_arrays, codes, wv)
    has_fit = np.isfinite(out).any(axis=1)
    attrs = {
        "n_excluded": n_excl,
        "n_rank_deficient": int(((rank < K) & has_fit).sum()) if K else 0,
        "controls": [c for c, _ in ctrl],
        "industries": list(labels),
    }
    return wrap(out, g, g.name, attrs)


def _aligned_values(g: xr.DataArray, g_name: str, other: Any, name: str) -> np.ndarray:
    """``other`` (date, stock), exactly aligned on ``g``, as a float64 array."""
    other = as_date_stock(other, name, numeric=False)
    check_aligned(g, other, g_name, name, ("date", "stock"))
    return float_values(other, name)


def _warn_excluded(
    name: str,
    g: xr.DataArray,
    excluded: np.ndarray,
    ctrl_names: list[str],
    ctrl_arrays: list[np.ndarray],
    codes: np.ndarray,
    wv: np.ndarray,
) -> None:
    """Warn about the stock-dates that had ``g`` but no residual, naming the first and why."""
    t, n = np.argwhere(excluded)[0]
    why = []
    bad_ctrl = [c for c, values in zip(ctrl_names, ctrl_arrays) if not np.isfinite(values[t, n])]
    if bad_ctrl:
        why.append("control " + ", ".join(map(repr, bad_ctrl)))
    if codes[t, n] < 0:
        why.append("industry")
    if not np.isfinite(wv[t, n]):
        why.append("weight")
    reason = " and ".join(why) if why else "its industry has zero total weight"
    warnings.warn(
        f"neutralise({name}): {int(excluded.sum())} stock-date(s) with a value but missing inputs are NaN in "
        f"the result; first: stock {str(g['stock'].values[n])!r} on {fmt_date(g['date'].values[t])} "
        f"(missing: {reason}). Fill or impute the controls to keep them.",
        RiskModelWarning,
        stacklevel=3,
    )
