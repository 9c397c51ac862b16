"""Clusters of co-moving residuals and their cost (METHODS §7.4-7.6); ndarray layer.

* :func:`candidate_stocks` -- stocks with a material loading on a signal component,
  judged against the noise level of that eigenvector;
* :func:`filtered_correlation` -- ``C_s = sum_signal lambda_k v_k v_k'`` with unit diagonal;
* :func:`average_linkage` -- Mantegna distance ``sqrt(2 (1 - rho))``, average linkage, cut;
* :func:`pairwise_correlation` -- pairwise-complete Pearson correlation of a small panel;
* :func:`portfolio_bias` -- bias statistic of equal-weight portfolios of standardised
  residuals, ``sd_t( sum_n z_tn / sqrt(k_t) )``;
* :func:`held_out_p_value` -- one-sided p-value of a mean within-group correlation
  against independence;
* :func:`cluster_label` -- the label a cluster is shown with: its most common label, or
  ``"mixed"`` when fewer than ``min_purity`` of the members carry it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import norm

from riskmodel.audit.spectrum import spike_overlap

__all__ = [
    "MIN_PURITY",
    "MIXED",
    "average_linkage",
    "candidate_stocks",
    "cluster_label",
    "filtered_correlation",
    "held_out_p_value",
    "ipr",
    "pairwise_correlation",
    "portfolio_bias",
]

_MAD_TO_SD = 1.482602218505602
#: Default ``min_purity``: a cluster is named after its most common label only when that
#: label is carried by at least half of its members (a majority); otherwise it is "mixed".
MIN_PURITY = 0.5
#: The label of a cluster whose most common label is carried by fewer than ``min_purity``.
MIXED = "mixed"


def cluster_label(dominant_label: str | None, purity: float | None, min_purity: float = MIN_PURITY) -> str | None:
    """The label a cluster is shown with.

    Parameters
    ----------
    dominant_label : str or None
        The most common label among the members (None without labels).
    purity : float or None
        The share of members carrying it.
    min_purity : float
        Fewest share for the cluster to be named after ``dominant_label`` (default
        :data:`MIN_PURITY`, 0.5); 0 always names it.

    Returns
    -------
    str or None
        ``dominant_label`` when ``purity >= min_purity``, :data:`MIXED` (``"mixed"``) below,
        None without labels.

    Examples
    --------
    >>> cluster_label("Energy", 0.8), cluster_label("Energy", 0.24), cluster_label(None, None)
    ('Energy', 'mixed', None)
    """
    if dominant_label is None or purity is None:
        return None
    return dominant_label if purity >= min_purity else MIXED


def ipr(vectors: np.ndarray) -> np.ndarray:
    """Inverse participation ratio ``sum_n v_n**4`` of each unit column of ``vectors (N, k)``."""
    return np.sum(vectors**4, axis=0)


def candidate_stocks(
    vectors: np.ndarray, values: np.ndarray, n_dates: int, threshold: float = 4.0
) -> np.ndarray:
    """Indices of stocks loading materially on at least one signal component.

    The noise level of the entries of a sample eigenvector is estimated twice and the
    smaller estimate is used: robustly, ``1.4826 * MAD(v)`` (most entries are noise when
    the component lives on few names), and from the spiked model, ``sqrt((1 - o) / N)``
    with ``o`` the squared overlap implied by the eigenvalue (right for broad components,
    whose MAD is inflated by the members).  A stock is a candidate when
    ``|v_n| > threshold * noise`` for some component.

    Parameters
    ----------
    vectors : ndarray (N, k)
        Unit eigenvectors of the signal components.
    values : ndarray (k,)
        Their eigenvalues (of ``Z'Z/T``).
    n_dates : int
        ``T`` of the matrix the components come from.
    threshold : float
        Multiple of the noise level.

    Returns
    -------
    ndarray (n_candidates,) int
    """
    N, k = vectors.shape
    if k == 0:
        return np.empty(0, dtype=np.intp)
    mad = np.median(np.abs(vectors - np.median(vectors, axis=0)), axis=0) * _MAD_TO_SD
    theory = np.sqrt((1.0 - spike_overlap(values, N, n_dates)) / N)
    noise = np.maximum(np.minimum(mad, theory), np.finfo(float).tiny)
    material = np.abs(vectors) > threshold * noise
    return np.flatnonzero(material.any(axis=1))


def filtered_correlation(vectors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``C_s = V diag(lambda) V'`` restricted to the given rows, unit diagonal, clipped to [-1, 1].

    Parameters
    ----------
    vectors : ndarray (n, k)
        Rows of the signal eigenvectors for the ``n`` candidate stocks.
    values : ndarray (k,)
        Signal eigenvalues.
    """
    C = (vectors * values) @ vectors.T
    np.clip(C, -1.0, 1.0, out=C)
    np.fill_diagonal(C, 1.0)
    return C


def average_linkage(rho: np.ndarray, cut: float, min_size: int) -> list[np.ndarray]:
    """Average-linkage clusters of a correlation matrix cut at correlation ``cut``.

    Distances are ``d_ij = sqrt(2 (1 - rho_ij))`` (Mantegna 1999); the dendrogram is cut
    at ``d = sqrt(2 (1 - cut))``: the members of a cluster have average pairwise
    correlation of at least ``cut`` at every merge.  Clusters smaller than ``min_size``
    are dropped.

    Returns
    -------
    list of ndarray
        Row indices of each cluster, largest first.
    """
    n = rho.shape[0]
    if n < max(2, min_size):
        return []
    d = np.sqrt(np.clip(2.0 * (1.0 - rho), 0.0, None))
    np.fill_diagonal(d, 0.0)
    d = 0.5 * (d + d.T)
    Zl = linkage(squareform(d, checks=False), method="average")
    labels = fcluster(Zl, t=math.sqrt(2.0 * (1.0 - cut)), criterion="distance")
    uniq, counts = np.unique(labels, return_counts=True)
    keep = uniq[counts >= min_size]
    groups = [np.flatnonzero(labels == lab) for lab in keep]
    groups.sort(key=len, reverse=True)
    return groups


def pairwise_correlation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete Pearson correlation of the columns of ``X (T, k)`` (NaN = missing).

    Returns
    -------
    rho : ndarray (k, k)
        NaN where two columns share fewer than 3 observations.
    n_obs : ndarray (k, k) int
        Number of shared observations.
    """
    M = np.isfinite(X)
    Xf = np.where(M, X, 0.0)
    Mf = M.astype(np.float64)
    n = Mf.T @ Mf
    sx = Xf.T @ Mf  # [i, j]: sum of x_i over dates where j is also present
    sxx = (Xf * Xf).T @ Mf
    sxy = Xf.T @ Xf
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        vx = sxx - sx**2 / n
        rho = cov / np.sqrt(vx * vx.T)
    rho[n < 3] = np.nan
    np.fill_diagonal(rho, 1.0)
    return np.clip(rho, -1.0, 1.0), n.astype(np.int64)


def mean_offdiagonal(rho: np.ndarray) -> float:
    """Mean of the finite off-diagonal entries of a square matrix (NaN if none)."""
    k = rho.shape[0]
    off = rho[~np.eye(k, dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else float("nan")


def portfolio_bias(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bias statistics of equal-weight portfolios of standardised residuals.

    Parameters
    ----------
    sums : ndarray (T, P)
        ``sum_n z_tn`` over the members present on each date.
    counts : ndarray (T, P)
        Number of members present.

    Returns
    -------
    bias : ndarray (P,)
        ``sd_t(sums / sqrt(counts))`` over dates with at least one member (ddof 1): the
        realised over the predicted volatility, the prediction being ``1/sqrt(k)`` for the
        mean of ``k`` independent unit-variance ``z`` (the model's diagonal specific risk).
    n_dates : ndarray (P,) int
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(counts > 0, sums / np.sqrt(counts), np.nan)
    valid = np.isfinite(x)
    n = valid.sum(axis=0)
    mean = np.where(valid, x, 0.0).sum(axis=0) / np.maximum(n, 1)
    ss = (np.where(valid, x - mean, 0.0) ** 2).sum(axis=0)
    bias = np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)
    return bias, n


def held_out_p_value(mean_corr: float, size: int, n_dates: float) -> float:
    """One-sided p-value of a mean pairwise correlation ``rbar`` among ``size`` series.

    Under independence of the series each pairwise correlation has variance ``1/T``
    whatever the tails (``E[x_i^2 x_j^2] = 1``) and distinct pairs are uncorrelated, so
    ``rbar * sqrt(T k (k - 1) / 2)`` is asymptotically standard normal.
    """
    if not np.isfinite(mean_corr) or size < 2 or n_dates < 3:
        return float("nan")
    stat = mean_corr * math.sqrt(n_dates * size * (size - 1) / 2.0)
    return float(norm.sf(stat))
