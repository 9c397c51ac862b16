"""Numba kernels of the residual audit: build the standardised matrix ``Z`` in two passes.

* :func:`gather_standardised` -- ``u / sqrt(specific variance)`` of the audited cells into
  the Fortran-ordered ``Z`` (0 where a cell is not valid), in row blocks (in parallel) so that
  the randomly ordered columns are read from cache-resident rows and written in contiguous runs.
* :func:`standardise_columns` -- per column (in parallel): the optional ex-post rescaling,
  the clip, the moments and ``(z - mu) sqrt(T / n) / sd`` on the valid cells, all on the
  column while it sits in cache.

The plain numpy twins live in ``tests/kernels/twins/audit.py`` (the kernel registry).
"""

from __future__ import annotations

import math

import numba

from riskmodel.kernels._chunks import parallel_chunks
from riskmodel.kernels.clean import clip_row

__all__ = ["SVV_NONE", "SVV_LAGGED", "SVV_STATIC", "gather_standardised", "standardise_columns"]

#: No predicted variance: raw residuals.
SVV_NONE = 0
#: ``svv (T_all, N_all)``: the forecast made the day before (row ``r - 1``) scales row ``r``.
SVV_LAGGED = 1
#: ``svv (N_all,)``: one variance per stock.
SVV_STATIC = 2

_ROW_BLOCK = 64


def gather_standardised(u, svv_lagged, svv_static, svv_kind, rows, cols, mask, out) -> None:
    """``out[t, j] = u[rows[t], cols[j]] / sqrt(var)`` where ``mask[t, j]``, else 0.

    Parameters
    ----------
    u : ndarray (T_all, N_all) float64
        Residuals.
    svv_lagged : ndarray (T_all, N_all) float64
        Predicted specific variances, used when ``svv_kind == SVV_LAGGED``:
        ``var = svv_lagged[rows[t] - 1, cols[j]]`` (any 2-D array otherwise).
    svv_static : ndarray (N_all,) float64
        Used when ``svv_kind == SVV_STATIC``: ``var = svv_static[cols[j]]`` (any 1-D array
        otherwise).
    svv_kind : int
        ``SVV_NONE``, ``SVV_LAGGED`` or ``SVV_STATIC``.
    rows, cols : ndarray int64
        Audited dates and stocks (any order).
    mask : ndarray (T, N) bool
        Valid cells.
    out : ndarray (T, N) float64, Fortran order
        Written.
    """
    parallel_chunks(_gather_standardised_chunk, (rows.shape[0] + _ROW_BLOCK - 1) // _ROW_BLOCK, u,
                    svv_lagged, svv_static, svv_kind, rows, cols, mask, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gather_standardised_chunk(lo, hi, u, svv_lagged, svv_static, svv_kind, rows, cols, mask, out):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`gather_standardised`."""
    T = rows.shape[0]
    N = cols.shape[0]
    for b in range(lo, hi):
        t0 = b * _ROW_BLOCK
        t1 = min(T, t0 + _ROW_BLOCK)
        for j in range(N):
            c = cols[j]
            for t in range(t0, t1):
                if mask[t, j]:
                    r = rows[t]
                    v = u[r, c]
                    if svv_kind == SVV_LAGGED:
                        v = v / math.sqrt(svv_lagged[r - 1, c])
                    elif svv_kind == SVV_STATIC:
                        v = v / math.sqrt(svv_static[c])
                    out[t, j] = v
                else:
                    out[t, j] = 0.0


def standardise_columns(Z, mask, n, rescale, clip, out_mu, out_sd, out_flat) -> None:
    """Standardise every column of ``Z`` in place (see the module notes).

    Parameters
    ----------
    Z : ndarray (T, N) float64, Fortran order
        From :func:`gather_standardised` (0 on invalid cells); overwritten.
    mask : ndarray (T, N) bool
        Valid cells.
    n : ndarray (N,) float64
        Valid cells per column (> 0).
    rescale : bool
        First divide each column by its own sd over the valid cells (no predicted variance).
    clip : float
        Clip bound (``inf`` for none), applied after the rescaling.
    out_mu, out_sd : ndarray (N,) float64
        Written: mean and sd (``ddof=0``, two-pass) of the clipped values over the valid cells.
    out_flat : ndarray (N,) bool
        Written: ``sd <= 1e-12 max(|mu|, 1)`` (the column is left as it is; drop it).

    Notes
    -----
    Afterwards ``Z[t, j] = (z - mu_j) sqrt(T / n_j) / sd_j`` on the valid cells and 0
    elsewhere, so that ``Z'Z / T`` has a unit diagonal.
    """
    parallel_chunks(_standardise_columns_chunk, Z.shape[1], Z, mask, n, rescale, clip, out_mu, out_sd,
                    out_flat)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _standardise_columns_chunk(lo, hi, Z, mask, n, rescale, clip, out_mu, out_sd, out_flat):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`standardise_columns`."""
    T, N = Z.shape
    for j in range(lo, hi):
        col = Z[:, j]
        if rescale:
            sd0 = _valid_sd(col, mask[:, j], n[j], _valid_mean(col, n[j]))
            if sd0 > 0.0:
                for t in range(T):
                    col[t] = col[t] / sd0
        clip_row(col, clip)
        mu = _valid_mean(col, n[j])
        sd = _valid_sd(col, mask[:, j], n[j], mu)
        out_mu[j] = mu
        out_sd[j] = sd
        flat = sd <= 1e-12 * max(abs(mu), 1.0)
        out_flat[j] = flat
        if flat:
            continue
        scale = math.sqrt(T / n[j]) / sd
        for t in range(T):
            col[t] = (col[t] - mu) * scale if mask[t, j] else 0.0


@numba.njit(cache=True, inline="always", error_model="numpy")
def _valid_mean(col, n):  # pragma: no cover - compiled
    """Mean over the valid cells (the others hold 0)."""
    s = 0.0
    for t in range(col.shape[0]):
        s += col[t]
    return s / n


@numba.njit(cache=True, inline="always", error_model="numpy")
def _valid_sd(col, valid, n, mu):  # pragma: no cover - compiled
    """Standard deviation (ddof=0) over the valid cells, two-pass (no cancellation)."""
    s2 = 0.0
    for t in range(col.shape[0]):
        if valid[t]:
            d = col[t] - mu
            s2 += d * d
    return math.sqrt(s2 / n)
