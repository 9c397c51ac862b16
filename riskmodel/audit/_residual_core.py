"""The ndarray core of :func:`riskmodel.audit.residuals.audit_residuals` (METHODS §7).

No labels here: residuals ``u (dates, stocks)``, optional specific variances ``svv``
(``(dates, stocks)`` lagged forecasts or one ``(stocks,)`` vector) and index arrays. The
steps, in the audit's order (they share one random generator, whose draws they take in
that order):

1. :func:`select_window` -- the valid cells, the window's rows, the covered columns;
2. :func:`standardise` -- the ``T x N`` matrix ``Z`` with unit-diagonal ``Z'Z/T``;
3. :func:`spectrum_and_null` -- the leading eigenpairs and the surrogate null edge;
4. :func:`split_window` -- discovery and held-out parts;
5. :func:`discover_groups` -- groups of co-moving columns on the discovery part;
6. :class:`AuditArrays` -- per-group statistics (:func:`cluster_statistics`,
   :meth:`AuditArrays.random_bias`) read by the labelled edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from riskmodel.audit import clusters as cl
from riskmodel.audit import spectrum as sp
from riskmodel.errors import InsufficientDataError

#: Fewest dates in each of the discovery and the held-out parts.
MIN_PART_DATES = 20
#: Fewest audited stocks.
MIN_STOCKS = 10
#: Expected number of pure-noise stocks per component admitted as cluster candidates: the
#: loading threshold is ``max(3, Phi^-1(1 - CANDIDATE_FALSE / (2 N)))`` noise levels.
CANDIDATE_FALSE = 0.5


# ============================================================================ 1. window
@dataclass
class Window:
    """The audit window: ``rows`` of ``u`` (dates with a standardised residual), the
    columns with enough coverage (``kept``), the thin and the empty ones, the validity
    of the window's cells (``valid``, all columns) and the coverage share per column."""

    rows: np.ndarray
    valid: np.ndarray
    share: np.ndarray
    kept: np.ndarray
    thin: np.ndarray
    empty: np.ndarray


def valid_cells(u: np.ndarray, svv: np.ndarray | None) -> np.ndarray:
    """Cells with a residual and (with ``svv``) a positive variance forecast the day before."""
    valid = np.isfinite(u)
    if svv is not None:
        if svv.ndim == 2:
            valid[0] = False
            valid[1:] &= np.isfinite(svv[:-1]) & (svv[:-1] > 0)
        else:
            valid &= (np.isfinite(svv) & (svv > 0))[None, :]
    return valid


def select_window(u: np.ndarray, svv: np.ndarray | None, window: int, coverage: float) -> Window:
    """The last ``window`` dates with a standardised residual and the columns covering at
    least ``coverage`` of them (no minimum length check: see :func:`check_window`)."""
    valid = valid_cells(u, svv)
    nonempty = np.flatnonzero(valid.any(axis=1))
    rows = nonempty[-window:]
    vw = valid[rows]
    n_valid = vw.sum(axis=0)
    share = n_valid / rows.size
    return Window(
        rows=rows,
        valid=vw,
        share=share,
        kept=np.flatnonzero(share >= coverage),
        thin=np.flatnonzero((n_valid > 0) & (share < coverage)),
        empty=np.flatnonzero(n_valid == 0),
    )


def check_window(n_rows: int, n_dates: int, n_stocks: int) -> None:
    """:class:`InsufficientDataError` unless the window has ``2 * MIN_PART_DATES`` dates."""
    if n_rows < 2 * MIN_PART_DATES:
        raise InsufficientDataError(
            f"audit_residuals: residuals have {n_rows} date(s) with a standardised residual "
            f"(of {n_dates} dates, {n_stocks} stocks); the audit needs at least "
            f"{2 * MIN_PART_DATES} ({MIN_PART_DATES} to discover clusters, {MIN_PART_DATES} to test them): "
            "pass a longer history"
        )


# ============================================================================ 2. Z
def standardise(
    u: np.ndarray,
    svv: np.ndarray | None,
    rows: np.ndarray,
    cols: np.ndarray,
    mask: np.ndarray,
    clip: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build ``Z (T, N)`` (Fortran order, one float64 copy) from ``u`` in two kernel passes
    (:mod:`riskmodel.kernels.audit`): a gather by row blocks, then each column in cache.

    Returns ``Z, mask, mu, scale, cols, dropped`` with ``z = Z / scale + mu`` on the
    valid entries (the clipped standardised residual before column standardisation).
    """
    from riskmodel.kernels.audit import (
        SVV_LAGGED,
        SVV_NONE,
        SVV_STATIC,
        gather_standardised,
        standardise_columns,
    )

    T, N = rows.size, cols.size
    mask = np.ascontiguousarray(mask)
    kind = SVV_NONE if svv is None else (SVV_LAGGED if svv.ndim == 2 else SVV_STATIC)
    Z = np.empty((T, N), order="F")
    lagged = svv if kind == SVV_LAGGED else np.zeros((1, 1))
    static = svv if kind == SVV_STATIC else np.zeros(1)
    gather_standardised(u, lagged, static, kind, rows.astype(np.int64), cols.astype(np.int64), mask, Z)
    n = mask.sum(axis=0).astype(np.float64)
    mu = np.empty(N)
    sd = np.empty(N)
    flat = np.empty(N, dtype=bool)
    standardise_columns(Z, mask, n, svv is None, np.inf if clip is None else float(clip), mu, sd, flat)
    dropped = cols[flat]
    if flat.any():
        keep = ~flat
        Z, mask, mu, sd, n, cols = np.asfortranarray(Z[:, keep]), mask[:, keep], mu[keep], sd[keep], n[keep], cols[keep]
    scale = np.sqrt(T / n) / sd
    return Z, np.ascontiguousarray(mask), mu, scale, cols, dropped


# ============================================================================ 3. spectrum
@dataclass
class Spectrum:
    """Leading eigenpairs of ``Z'Z/T`` and the surrogate null."""

    eig: sp.EigenPairs
    k_max: int
    null_lambda_max: np.ndarray
    null_group_size: int
    null_edge: float
    n_significant: int


def spectrum_and_null(
    Z: np.ndarray, max_components: int, n_null: int, null: str, null_quantile: float,
    null_group_size: int | None, rng: np.random.Generator,
) -> Spectrum:
    """``max_components`` leading eigenpairs, ``n_null`` surrogate ``lambda_max`` and the
    number of eigenvalues above their ``null_quantile``."""
    T, N = Z.shape
    k_max = int(min(max_components, T, N))
    eig = sp.top_eigenpairs(Z, k_max, rng=rng)
    null_lam, group_used = sp.null_lambda_max(Z, n_null, null, rng, group_size=null_group_size)
    null_edge = float(np.quantile(null_lam, null_quantile))
    n_sig = int(np.sum(eig.values > null_edge))
    return Spectrum(eig, k_max, null_lam, group_used, null_edge, n_sig)


# ============================================================================ 4. split
def split_window(T: int, test_fraction: float) -> tuple[int, int]:
    """``(T_discovery, T_test)``; :class:`InsufficientDataError` when a part is too short."""
    T_d = int(math.floor((1.0 - test_fraction) * T))
    T_t = T - T_d
    if min(T_d, T_t) < MIN_PART_DATES:
        raise InsufficientDataError(
            f"audit_residuals: test_fraction={test_fraction} splits the {T} dates into {T_d} + {T_t}; "
            f"each part needs at least {MIN_PART_DATES} dates: pass a longer window or another test_fraction"
        )
    return T_d, T_t


# ============================================================================ 5. groups
def discover_groups(
    Z: np.ndarray, T_d: int, spec: Spectrum, cluster_cut: float, min_cluster_size: int,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, int, float]]:
    """Groups of columns (``members, component, component ipr``) found on the discovery part.

    The ``n_significant`` leading components are re-estimated on ``Z[:T_d]`` (warm start
    from the whole window's vectors: the iteration still converges to the discovery
    part's own eigenpairs); columns loading above the noise threshold are clustered by
    average linkage of their filtered correlation.
    """
    n_sig = spec.n_significant
    if n_sig == 0:
        return []
    N = Z.shape[1]
    disc = sp.top_eigenpairs(Z[:T_d], n_sig, rng=rng, rtol=1e-9, guess=spec.eig.vectors[:, : min(spec.k_max, n_sig + 10)])
    threshold = max(3.0, float(norm.isf(CANDIDATE_FALSE / (2.0 * N))))
    cand = cl.candidate_stocks(disc.vectors, disc.values, T_d, threshold)
    groups = []
    if cand.size >= min_cluster_size:
        rho_s = cl.filtered_correlation(disc.vectors[cand], disc.values)
        groups = [cand[g] for g in cl.average_linkage(rho_s, cluster_cut, min_cluster_size)]
    disc_ipr = cl.ipr(disc.vectors)
    out = []
    for g in groups:
        comp = int(np.argmax(np.sum(disc.vectors[g] ** 2, axis=0)))
        out.append((g, comp, float(disc_ipr[comp])))
    return out


# ============================================================================ 6. statistics
@dataclass
class AuditArrays:
    """The arrays a cluster's statistics are read from (``Z``'s columns are ``u[:, cols]``
    over ``rows``; ``labels`` per column or None)."""

    u: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    Z: np.ndarray
    M: np.ndarray
    mu: np.ndarray
    scale: np.ndarray
    T_d: int
    labels: np.ndarray | None
    rng: np.random.Generator

    def z(self, members: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """Clipped standardised residuals ``z (r1 - r0, k)`` of the members, NaN = missing."""
        zz = self.Z[r0:r1, members] / self.scale[members] + self.mu[members]
        zz[~self.M[r0:r1, members]] = np.nan
        return zz

    def raw(self, members: np.ndarray) -> np.ndarray:
        """Raw residuals ``u (T, k)`` of the members over the window."""
        return self.u[np.ix_(self.rows, self.cols[members])]

    def random_bias(self, k: int, n_random: int) -> np.ndarray:
        """Held-out bias of ``n_random`` equal-weight portfolios of ``k`` random audited names."""
        N, T = self.Z.shape[1], self.Z.shape[0]
        if n_random == 0:
            return np.empty(0)
        pick = np.stack([self.rng.choice(N, size=k, replace=False) for _ in range(n_random)])
        T_t = T - self.T_d
        # portfolios per block: gathered columns stay near 1/32 of the residual matrix
        per_block = max(1, min(n_random, (T * N // 32) // max(T_t * k, 1)))
        sums = np.empty((T_t, n_random))
        counts = np.empty_like(sums)
        for p0 in range(0, n_random, per_block):
            cols = pick[p0 : p0 + per_block]
            flat = cols.ravel()
            z = self.Z[self.T_d :, flat] / self.scale[flat] + self.mu[flat]
            m = self.M[self.T_d :, flat]
            z[~m] = 0.0
            sums[:, p0 : p0 + cols.shape[0]] = z.reshape(T_t, cols.shape[0], k).sum(axis=2)
            counts[:, p0 : p0 + cols.shape[0]] = m.reshape(T_t, cols.shape[0], k).sum(axis=2)
        return cl.portfolio_bias(sums, counts)[0]


def portfolio_bias_of(z: np.ndarray) -> tuple[float, np.ndarray]:
    """Bias of the equal-weight portfolio of ``z`` (NaN = missing) and its unit-predicted-vol series."""
    ok = np.isfinite(z)
    sums = np.where(ok, z, 0.0).sum(axis=1, keepdims=True)
    counts = ok.sum(axis=1, keepdims=True).astype(np.float64)
    b = cl.portfolio_bias(sums, counts)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        series = np.where(counts[:, 0] > 0, sums[:, 0] / np.sqrt(counts[:, 0]), np.nan)
    return float(b[0]), series


@dataclass
class ClusterStatistics:
    """One group's numbers (members in id order; ``returns`` and ``portfolio`` per date)."""

    members: np.ndarray
    returns: np.ndarray
    portfolio: np.ndarray
    mean_correlation: float
    held_out_correlation: float
    p_value: float
    bias_in: float
    bias_out: float
    flagged: bool
    random_bias: np.ndarray
    purity: float | None
    dominant_label: str | None


def cluster_statistics(arrays: AuditArrays, members: np.ndarray, n_random: int) -> ClusterStatistics:
    """Correlations, bias in and out of sample, p-value and label purity of one group
    (``members`` already in id order)."""
    T = arrays.Z.shape[0]
    k = members.size
    raw = arrays.raw(members)
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(raw).sum(axis=1)
        ret = np.where(cnt > 0, np.nansum(raw, axis=1) / np.maximum(cnt, 1), np.nan)
    rho_all, _ = cl.pairwise_correlation(raw)
    z_all = arrays.z(members, 0, T)
    b_in, _ = portfolio_bias_of(z_all[: arrays.T_d])
    b_out, _ = portfolio_bias_of(z_all[arrays.T_d :])
    _, series = portfolio_bias_of(z_all)
    rho_out, n_out = cl.pairwise_correlation(z_all[arrays.T_d :])
    off = ~np.eye(k, dtype=bool)
    rbar_out = cl.mean_offdiagonal(rho_out)
    p = cl.held_out_p_value(rbar_out, k, float(np.mean(n_out[off])))
    purity = dominant = None
    if arrays.labels is not None:
        labs = arrays.labels[members]
        present = np.array([v for v in labs if v is not None], dtype=object)
        if present.size:
            vals, counts = np.unique(present.astype(str), return_counts=True)
            dominant = str(vals[np.argmax(counts)])
            purity = float(counts.max() / k)
    mean_corr = cl.mean_offdiagonal(rho_all)
    band = 1.0 + 2.0 * math.sqrt(2.0 / (T - arrays.T_d))
    return ClusterStatistics(
        members=members,
        returns=ret,
        portfolio=series,
        mean_correlation=mean_corr,
        held_out_correlation=rbar_out,
        p_value=p,
        bias_in=b_in,
        bias_out=b_out,
        flagged=bool(b_out > band),
        random_bias=arrays.random_bias(k, n_random),
        purity=purity,
        dominant_label=dominant,
    )
