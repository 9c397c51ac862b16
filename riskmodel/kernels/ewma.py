"""EWMA kernels: rolling-window exponentially weighted (lagged) cross-moments for every date.

One kernel, :func:`ewma_newey_west`, computes for every date ``t`` and every requested pair
of series ``(i, j)`` the Newey–West combination of EWMA lagged cross-moments

``F_t(i, j) = C_0(i, j) + Σ_{l=1..L} (1 − l/(L+1)) (C_l(i, j) + C_l(j, i))``,
``C_l(i, j) = Σ_{s=0}^{W−1} w_s x_{t−s, i} x_{t−s−l, j} / Σ_{s ∈ present} w_s``,

with ``w_s = δ^s`` (``δ = 2^{−1/H}``), a window of ``W`` dates (``W ≥ T`` = infinite) and the
weights renormalised over the terms where both values are present (pairwise complete).
The sums are carried by the windowed recursion ``S_t = δ S_{t−1} + x_t − δ^W x_{t−W}``, so a
whole series costs O(T·(L+1)) per pair whatever the window; the number of present terms is
carried exactly as an integer so that an emptied window gives NaN, not rounding noise.
Pairs are independent and processed in parallel. The other kernels here work on stacks of
small matrices (eigen-decompositions, rebuilds, the eigenfactor simulation, the assembly of
the covariance from its correlation and variance stages). The plain numpy twins live in
``tests/kernels/twins/ewma.py`` (the kernel registry).
"""

from __future__ import annotations

import numba
import numpy as np

from riskmodel.kernels._chunks import parallel_chunks

__all__ = [
    "ewma_newey_west",
    "eigh_stack",
    "assemble_covariance",
    "rebuild_stack",
    "eigen_rebuild_stack",
    "wishart_eigen_ratios",
]


@numba.njit(cache=True, error_model="numpy")
def _lagged_moment(
    u: np.ndarray,
    v: np.ndarray,
    lag: int,
    decay: float,
    window: int,
    demean: bool,
    scale: float,
    acc: np.ndarray,
    count: np.ndarray,
) -> None:
    """Add ``scale · C_l(t)`` of ``u_{t−s} v_{t−s−l}`` to ``acc[t]`` for every date; NaN-free dates only.

    ``count[t]`` receives the number of terms present. Where no term is present ``acc[t]`` is
    left unchanged (the caller decides what an empty window means).
    """
    n_dates = u.shape[0]
    infinite = window >= n_dates
    tail = decay**window if not infinite else 0.0
    s_xy = 0.0
    s_x = 0.0
    s_y = 0.0
    s_w = 0.0
    n_w = 0
    for t in range(n_dates):
        s_xy *= decay
        s_w *= decay
        if demean:
            s_x *= decay
            s_y *= decay
        if t - lag >= 0:
            xu = u[t]
            xv = v[t - lag]
            if not (np.isnan(xu) or np.isnan(xv)):
                s_xy += xu * xv
                s_w += 1.0
                n_w += 1
                if demean:
                    s_x += xu
                    s_y += xv
        old = t - window
        if not infinite and old - lag >= 0:
            xu = u[old]
            xv = v[old - lag]
            if not (np.isnan(xu) or np.isnan(xv)):
                s_xy -= tail * xu * xv
                s_w -= tail
                n_w -= 1
                if demean:
                    s_x -= tail * xu
                    s_y -= tail * xv
        count[t] = n_w
        if n_w > 0:
            c = s_xy / s_w
            if demean:
                c -= (s_x / s_w) * (s_y / s_w)
            acc[t] += scale * c


def ewma_newey_west(
    x_t: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    decay: float,
    window: int,
    lags: int,
    demean: bool,
    out: np.ndarray,
    count: np.ndarray,
) -> None:
    """Newey–West EWMA cross-moments of pairs of series, for every date.

    Parameters
    ----------
    x_t : ndarray (m, T) float64, C-contiguous
        The series laid out one per row (transposed factor returns); NaN = missing.
    pair_i, pair_j : ndarray (P,) int64
        The pairs ``(i, j)`` to compute.
    decay : float
        ``δ = 2^{−1/H}`` (``1.0`` for equal weights).
    window : int
        Number of dates ``W`` in the window (``W ≥ T`` means infinite).
    lags : int
        Newey–West lags ``L ≥ 0`` (Bartlett weights ``1 − l/(L+1)``).
    demean : bool
        Centre each lagged product on the weighted means of its two legs over the same terms.
    out : ndarray (P, T) float64
        Written: ``F_t(i, j)`` in row ``p``; NaN where no term of lag 0 is present. A lag
        ``l ≥ 1`` with no term present contributes nothing.
    count : ndarray (P, T) int64
        Written: number of lag-0 terms present in the window (pairwise).
    """
    parallel_chunks(_ewma_newey_west_chunk, pair_i.shape[0], x_t, pair_i, pair_j, decay, window, lags,
                    demean, out, count)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ewma_newey_west_chunk(lo, hi, x_t, pair_i, pair_j, decay, window, lags, demean, out, count):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`ewma_newey_west`."""
    n_dates = x_t.shape[1]
    for p in range(lo, hi):
        a = x_t[pair_i[p]]
        b = x_t[pair_j[p]]
        acc = out[p]
        acc[:] = 0.0
        n_lag = np.empty(n_dates, dtype=np.int64)
        _lagged_moment(a, b, 0, decay, window, demean, 1.0, acc, count[p])
        for lag in range(1, lags + 1):
            kernel = 1.0 - lag / (lags + 1.0)
            _lagged_moment(a, b, lag, decay, window, demean, kernel, acc, n_lag)
            _lagged_moment(b, a, lag, decay, window, demean, kernel, acc, n_lag)
        for t in range(n_dates):
            if count[p, t] == 0:
                acc[t] = np.nan


def eigh_stack(a: np.ndarray, values: np.ndarray, vectors: np.ndarray) -> None:
    """Eigendecomposition of a stack of symmetric matrices, in parallel over the stack.

    Companion of the EWMA covariances (their per-date eigenbasis and the simulated
    covariances of the eigenfactor adjustment). Same LAPACK routine as ``np.linalg.eigh``,
    so the results equal numpy's; call it with BLAS limited to one thread.

    Parameters
    ----------
    a : ndarray (n, m, m) float64
        Symmetric matrices (the lower triangle is used).
    values : ndarray (n, m) float64
        Written: eigenvalues, ascending.
    vectors : ndarray (n, m, m) float64
        Written: eigenvectors in columns.
    """
    parallel_chunks(_eigh_stack_chunk, a.shape[0], a, values, vectors)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _eigh_stack_chunk(lo, hi, a, values, vectors):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`eigh_stack`."""
    for i in range(lo, hi):
        w, v = np.linalg.eigh(a[i])
        values[i] = w
        vectors[i] = v


def assemble_covariance(
    cov_c: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    sd: np.ndarray,
    sd_c: np.ndarray,
    available: np.ndarray,
    out: np.ndarray,
) -> None:
    """``F⁰_t = ρ_t ∘ σ_tσ_tᵀ`` from the pair moments, in parallel over dates.

    Parameters
    ----------
    cov_c : ndarray (P, T)
        Correlation-stage moments of the pairs ``(pair_i, pair_j)`` (upper triangle).
    pair_i, pair_j : ndarray (P,) int64
    sd : ndarray (m, T)
        Volatilities of the variance stage.
    sd_c : ndarray (m, T)
        Volatilities of the correlation stage (``ρ_ij = cov_c / (sd_c,i sd_c,j)``).
    available : ndarray (T, m) bool
    out : ndarray (T, m, m)
        Written: ``ρ_ij σ_i σ_j`` on the available block (``σ_i²`` on the diagonal, ``0`` for a
        pair with no moment), NaN elsewhere.
    """
    parallel_chunks(_assemble_covariance_chunk, out.shape[0], cov_c, pair_i, pair_j, sd, sd_c, available, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _assemble_covariance_chunk(lo, hi, cov_c, pair_i, pair_j, sd, sd_c, available, out):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`assemble_covariance`."""
    n_pairs = pair_i.shape[0]
    for t in range(lo, hi):
        out[t] = np.nan
        for p in range(n_pairs):
            i = pair_i[p]
            j = pair_j[p]
            if not (available[t, i] and available[t, j]):
                continue
            if i == j:
                val = sd[i, t] * sd[i, t]
            else:
                val = cov_c[p, t] * (sd[i, t] * sd[j, t]) / (sd_c[i, t] * sd_c[j, t])
                if np.isnan(val):
                    val = 0.0
            out[t, i, j] = val
            out[t, j, i] = val


def rebuild_stack(vectors: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """``out[n] = U_n diag(values_n) U_nᵀ`` (symmetrised), in parallel over the stack.

    Parameters
    ----------
    vectors : ndarray (n, m, m)
    values : ndarray (n, m)
    out : ndarray (n, m, m)
        Written.
    """
    parallel_chunks(_rebuild_stack_chunk, vectors.shape[0], vectors, values, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _rebuild_stack_chunk(lo, hi, vectors, values, out):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`rebuild_stack`."""
    for n in range(lo, hi):
        u = vectors[n]
        scaled = u * values[n]
        c = scaled @ u.T
        out[n] = 0.5 * (c + c.T)


def wishart_eigen_ratios(normals: np.ndarray, chi: np.ndarray, d0: np.ndarray, nu: float,
                         ratio: np.ndarray) -> None:
    """Eigenfactor bias ratios ``D̃_j(k) / D_j(k)`` of Bartlett-drawn covariances, in parallel over draws.

    Draw ``j`` is ``F_j = B_j B_jᵀ`` with ``B_j = diag(√(d0/ν)) A_j`` and ``A_j`` lower
    triangular: ``A_j[i, i] = chi[j, i]`` and the strictly lower entries ``normals[j]`` in
    row-major order (``np.tril_indices(m, -1)``). With ``F_j = U_j diag(D_j) U_jᵀ``
    (eigenvalues ascending, the LAPACK routine of ``np.linalg.eigh``) and
    ``D̃_j(k) = Σ_i d0_i U_j(i, k)²`` (the true variance of the simulated eigenportfolio
    ``k`` when the true covariance is ``diag(d0)``). Builds ``F_j``, decomposes it and forms
    the ratio per draw, so that neither the draws' covariances nor their eigenvectors are
    stored; call it with BLAS limited to one thread.

    Parameters
    ----------
    normals : ndarray (n, m (m - 1) / 2) float64
        Standard normal draws of the strictly lower triangles.
    chi : ndarray (n, m) float64
        Diagonals, ``chi[j, i]² ~ χ²(ν − i)``.
    d0 : ndarray (m,) float64
        True eigenvalues.
    nu : float
        Effective number of observations of the simulated estimator.
    ratio : ndarray (n, m) float64
        Written: ``D̃_j(k) / D_j(k)``, NaN where ``D_j(k) ≤ 0``.
    """
    parallel_chunks(_wishart_eigen_ratios_chunk, chi.shape[0], normals, chi, d0, nu, ratio)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wishart_eigen_ratios_chunk(lo, hi, normals, chi, d0, nu, ratio):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`wishart_eigen_ratios`."""
    n, m = chi.shape
    root = np.sqrt(d0 / nu)
    for j in range(lo, hi):
        b = np.zeros((m, m))
        p = 0
        for i in range(m):
            for l in range(i):
                b[i, l] = root[i] * normals[j, p]
                p += 1
            b[i, i] = root[i] * chi[j, i]
        w, u = np.linalg.eigh(b @ b.T)
        for k in range(m):
            if w[k] > 0:
                d_true = 0.0
                for i in range(m):
                    d_true += d0[i] * (u[i, k] * u[i, k])
                ratio[j, k] = d_true / w[k]
            else:
                ratio[j, k] = np.nan


def eigen_rebuild_stack(a: np.ndarray, floor: np.ndarray, gamma2: np.ndarray, out: np.ndarray) -> None:
    """``out[n] = U_n diag(γ²_n · max(D_n, floor_n)) U_nᵀ`` (symmetrised) with ``a[n] = U_n D_n U_nᵀ``.

    Fuses :func:`eigh_stack` and :func:`rebuild_stack` (same LAPACK routine and the same
    arithmetic, so the results are identical) without storing the eigenvectors; parallel
    over the stack, call it with BLAS limited to one thread.

    Parameters
    ----------
    a : ndarray (n, m, m) float64
        Symmetric matrices (the lower triangle is used).
    floor : ndarray (n,) float64
        Eigenvalue floor of each matrix.
    gamma2 : ndarray (n, m) float64
        Multipliers of the floored eigenvalues, ascending order.
    out : ndarray (n, m, m) float64
        Written; may be ``a`` itself (each matrix is decomposed before it is replaced).
    """
    parallel_chunks(_eigen_rebuild_stack_chunk, a.shape[0], a, floor, gamma2, out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _eigen_rebuild_stack_chunk(lo, hi, a, floor, gamma2, out):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`eigen_rebuild_stack`."""
    for n in range(lo, hi):
        w, u = np.linalg.eigh(a[n])
        values = gamma2[n] * np.maximum(w, floor[n])
        scaled = u * values
        c = scaled @ u.T
        out[n] = 0.5 * (c + c.T)
