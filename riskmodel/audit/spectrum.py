"""Spectrum of a residual correlation ``C = Z'Z / T`` without forming the N x N matrix.

Private ndarray layer of :mod:`riskmodel.audit.residuals` (METHODS §7.2-7.3):

* :func:`top_eigenpairs` -- the leading eigenvalues/eigenvectors of ``C`` from the
  ``T x N`` matrix ``Z``: an exact Gram eigendecomposition on the *smaller* side when
  ``min(T, N)`` is small, otherwise a restarted randomized block Krylov (block Lanczos)
  iteration with Rayleigh-Ritz, which needs only products ``Z @ X`` and ``Z.T @ Y``.  In
  between, the float32 Gram matrix of the smaller side gives a start that the float64
  iteration refines in a few products (float64 accuracy).
* :func:`null_lambda_max` -- the top eigenvalue of ``n_null`` surrogates of ``Z`` whose
  columns are made independent in time (shuffled, circularly shifted or sign-flipped),
  all run as independent Lanczos recurrences in lock-step.  The surrogate transform is
  applied to the short ``T``-vectors inside the matvec, never to a copy of ``Z``; the
  products run in float32 (the null needs ``lambda_max`` to a few % of the Tracy-Widom
  scale, ~1e-4 relative, far above float32 rounding). The column groups of each step run
  on a thread pool, each GEMM on one BLAS thread, their terms added in group order: the same
  numbers as the sequential loop on one BLAS thread (``_NULL_POOL = False`` keeps that loop
  on BLAS's own threads).

Float32 work never copies ``Z``: column chunks (or the null's column groups) are
converted into one reused buffer (the pooled null: a float32 copy of one group per running
task), so the memory stays that of ``Z`` plus small buffers.
* closed forms: Marchenko-Pastur edges, the Tracy-Widom edge (Johnstone 2001), the
  BBP detectability bound and the spike/overlap relations of the spiked covariance model.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from riskmodel._blas import blas_threads, one_blas_thread

__all__ = [
    "DENSE_LIMIT",
    "EigenPairs",
    "bbp_bound",
    "marchenko_pastur_edges",
    "null_lambda_max",
    "spike_overlap",
    "top_eigenpairs",
    "tracy_widom_edge",
    "surrogate_plan",
    "apply_surrogate",
]

#: ``min(T, N)`` up to which the exact Gram route (a ``min x min`` matrix) is used.
DENSE_LIMIT = 512

#: ``min(T, N)`` up to which ``"auto"`` uses the float32 Gram start (O(min^3) ``eigh``) ...
GRAM32_LIMIT = 4096

#: ... when its ``min^2`` float32 matrix is at most this fraction of ``Z``'s bytes.
_GRAM32_MEMORY = 0.3

#: Stop of a float64 refinement from a good start, relative to ``rtol``: the change per
#: block understates the remaining error when the start is already close.
_REFINE = 0.3

#: Bytes of ``Z`` converted to float32 at a time.
_CHUNK_BYTES = 1 << 22

#: Upper bound on ``groups * T * surrogates`` index entries held by the null (memory/speed).
_NULL_VOLUME = 1 << 21

#: The null's column groups run on a pool of as many threads as BLAS may use, each GEMM on
#: one BLAS thread (False: one group after another on BLAS's own threads, the former path).
#: Thin GEMMs (``(186 x 2520) @ (2520 x 30)`` at N=5,000, T=2,520) split badly over BLAS
#: threads: see ``benchmarks/results/speed_audit.json``.
_NULL_POOL = True

#: Fewest flops per group and step (``4 T w S``) for the pool: below it handing the groups to
#: threads costs more than their GEMMs (the null of a 300 x 400 toy audit ran 1.6x slower pooled).
_POOL_MIN_GROUP_FLOPS = 4e6

#: Tracy-Widom (GOE, beta=1) quantiles used for the reference edge.
_TW1_QUANTILES = {0.95: 0.9793, 0.99: 2.0234}


@dataclass(frozen=True)
class EigenPairs:
    """Leading eigenpairs of ``C = Z'Z/T``: ``values (k,)`` descending, ``vectors (N, k)``."""

    values: np.ndarray
    vectors: np.ndarray
    method: str
    n_products: int


# ----------------------------------------------------------------------------- closed forms
def marchenko_pastur_edges(n_stocks: int, n_dates: int) -> tuple[float, float]:
    """Marchenko-Pastur bulk edges ``(1 -+ sqrt(N/T))**2`` of ``Z'Z/T`` with unit variances."""
    q = math.sqrt(n_stocks / n_dates)
    return (1.0 - q) ** 2, (1.0 + q) ** 2


def tracy_widom_edge(n_stocks: int, n_dates: int, level: float = 0.99) -> float:
    """Johnstone's Tracy-Widom approximation of the ``level`` quantile of ``lambda_max(Z'Z/T)``.

    ``mu = (sqrt(T-1) + sqrt(N))**2``, ``sigma = (sqrt(T-1) + sqrt(N)) (1/sqrt(T-1) +
    1/sqrt(N))**(1/3)`` for the eigenvalues of ``T C``; returns ``(mu + sigma * TW1_q) / T``.
    """
    if level not in _TW1_QUANTILES:
        raise ValueError(f"level must be one of {sorted(_TW1_QUANTILES)}, got {level}")
    a, b = math.sqrt(n_dates - 1.0), math.sqrt(n_stocks)
    mu = (a + b) ** 2
    sigma = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0)
    return (mu + sigma * _TW1_QUANTILES[level]) / n_dates


def bbp_bound(n_stocks: int, n_dates: int) -> float:
    """BBP detectability bound ``1 + sqrt(N/T)`` on the population spike ``1 + (k-1) rho``."""
    return 1.0 + math.sqrt(n_stocks / n_dates)


def spike_overlap(sample_eigenvalue: np.ndarray | float, n_stocks: int, n_dates: int) -> np.ndarray:
    """Squared overlap ``<v, u>**2`` of a sample eigenvector with its population spike.

    Inverts ``lambda = (1 + l)(1 + g / l)`` (``g = N/T``) for the population excess ``l``
    and returns ``(1 - g / l**2) / (1 + g / l)``; 0 at or below the MP edge.
    """
    g = n_stocks / n_dates
    lam = np.atleast_1d(np.asarray(sample_eigenvalue, dtype=np.float64))
    # (1 + l)(1 + g/l) = lam  <=>  l**2 + (1 + g - lam) l + g = 0; larger root
    b = 1.0 + g - lam
    disc = b * b - 4.0 * g
    ell = np.where(disc > 0, (-b + np.sqrt(np.maximum(disc, 0.0))) / 2.0, math.sqrt(g))
    ov = (1.0 - g / ell**2) / (1.0 + g / ell)
    return np.clip(np.where(ell > math.sqrt(g), ov, 0.0), 0.0, 1.0)


# ----------------------------------------------------------------------------- top eigenpairs
def top_eigenpairs(
    Z: np.ndarray,
    k: int,
    *,
    method: str = "auto",
    rtol: float = 1e-6,
    oversample: int = 10,
    max_basis: int = 400,
    max_restarts: int = 8,
    rng: np.random.Generator | None = None,
    guess: np.ndarray | None = None,
) -> EigenPairs:
    """Leading ``k`` eigenpairs of ``C = Z'Z / T`` from the ``T x N`` matrix ``Z``.

    Parameters
    ----------
    Z : ndarray (T, N) float64
        Standardised residuals (not modified).
    k : int
        Number of eigenpairs (reduced to ``min(T, N)``).
    method : {"auto", "gram", "gram-mixed", "krylov"}
        ``"gram"``: exact eigendecomposition of the Gram matrix of the smaller side
        (``min(T, N)**2`` float64 memory); ``"gram-mixed"``: that Gram matrix formed and
        decomposed in float32 (``4 min(T, N)**2`` bytes, ``Z`` converted chunk by chunk),
        its leading vectors then refined by the float64 block Krylov iteration (a few
        products; float64 accuracy); ``"krylov"``: restarted block Krylov from a random
        start; ``"auto"``: ``"gram"`` when ``min(T, N) <= DENSE_LIMIT``, else
        ``"gram-mixed"`` when ``min(T, N) <= GRAM32_LIMIT`` and the float32 Gram matrix
        is at most 0.3 of ``Z``'s bytes, else ``"krylov"``. At N=5,000, T=2,520,
        ``"gram-mixed"`` took 0.65 s against 2.5 s for ``"krylov"`` (max eigenvalue
        error 7e-13 against 8e-6).
    rtol : float
        Krylov stop: every one of the ``k`` Ritz values moved by less than
        ``rtol * theta_1`` over the last block.
    guess : ndarray (N, b), optional
        Approximate leading eigenvectors (e.g. of a longer window over the same stocks):
        unless the exact Gram route applies, the float64 block Krylov iteration starts
        from them (``method="krylov"``, stop ``0.3 rtol``). The start changes only how
        fast the iteration converges, not what it converges to.

    Returns
    -------
    EigenPairs
        ``values (k,)`` descending, ``vectors (N, k)`` unit columns.
    """
    T, N = Z.shape
    k = int(min(k, T, N))
    rng = np.random.default_rng(0) if rng is None else rng
    p = min(T, N)
    if method == "auto":
        if p <= DENSE_LIMIT:
            method = "gram"
        elif p <= GRAM32_LIMIT and p * p * 4 <= _GRAM32_MEMORY * T * N * Z.itemsize:
            method = "gram-mixed"
        else:
            method = "krylov"
    if method == "gram":
        return _gram_eigenpairs(Z, k)
    refine = min(rtol, max(_REFINE * rtol, 1e-14))
    if guess is not None:
        start = Z @ guess if T <= N else np.asarray(guess, dtype=np.float64)  # basis side
        eig = _krylov_eigenpairs(Z, k, refine, oversample, max_basis, max_restarts, rng, start=start)
        return EigenPairs(eig.values, eig.vectors, "krylov", eig.n_products + 1)
    if method == "gram-mixed":
        start = _gram32_start(Z, min(k + oversample, p))
        eig = _krylov_eigenpairs(Z, k, refine, oversample, max_basis, max_restarts, rng, start=start)
        return EigenPairs(eig.values, eig.vectors, "gram-mixed", eig.n_products + 1)
    if method != "krylov":
        raise ValueError(f"method must be 'auto', 'gram', 'gram-mixed' or 'krylov', got {method!r}")
    return _krylov_eigenpairs(Z, k, rtol, oversample, max_basis, max_restarts, rng)


def _gram_eigenpairs(Z: np.ndarray, k: int) -> EigenPairs:
    T, N = Z.shape
    p = min(T, N)
    G = Z @ Z.T if T <= N else Z.T @ Z
    mu, U = scipy.linalg.eigh(G, subset_by_index=(p - k, p - 1))
    mu, U = mu[::-1], U[:, ::-1]
    if T <= N:
        V = Z.T @ U
        V /= np.maximum(np.linalg.norm(V, axis=0), np.finfo(float).tiny)
    else:
        V = U
    return EigenPairs(np.maximum(mu, 0.0) / T, np.ascontiguousarray(V), "gram", 1)


def _gram32_start(Z: np.ndarray, b: int) -> np.ndarray:
    """Leading ``b`` eigenvectors of the smaller-side Gram matrix, formed and decomposed in float32.

    ``G = Z Z'`` (``T <= N``) or ``Z'Z`` accumulates by rank-k updates (``ssyrk``) of
    float32 column (row) chunks of ``Z`` converted into one reusable buffer, so the only
    large allocation is ``G`` itself (``4 min(T, N)^2`` bytes). Its eigenvectors carry float32
    rounding: they are a start for a float64 Krylov refinement, not the answer.
    """
    from scipy.linalg.blas import ssyrk

    T, N = Z.shape
    by_cols = T <= N
    p = T if by_cols else N
    G = np.zeros((p, p), dtype=np.float32, order="F")
    step = max(1, _CHUNK_BYTES // (p * 4))
    buf = np.empty((p, step), dtype=np.float32, order="F")
    for c0 in range(0, N if by_cols else T, step):
        c1 = min(c0 + step, N if by_cols else T)
        chunk = buf[:, : c1 - c0]
        chunk[...] = Z[:, c0:c1] if by_cols else Z[c0:c1].T
        G = ssyrk(1.0, chunk, beta=1.0, c=G, trans=0, lower=1, overwrite_c=1)
    _, U = scipy.linalg.eigh(G, lower=True, subset_by_index=(p - b, p - 1), overwrite_a=True, check_finite=False)
    return np.ascontiguousarray(U[:, ::-1], dtype=np.float64)


def _top_eigh(M: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``min(n, m)`` eigenpairs of the symmetric ``M (m, m)``, values descending.

    Only the wanted end of the spectrum is computed (LAPACK ``syevr`` with an index range):
    several times faster than a full ``eigh`` for the Rayleigh quotients of the Krylov basis.
    """
    m = M.shape[0]
    n = min(n, m)
    mu, U = scipy.linalg.eigh(M, subset_by_index=(m - n, m - 1), check_finite=False)
    return mu[::-1], U[:, ::-1]


def _orthonormal_block(Y: np.ndarray, Q: np.ndarray | None) -> np.ndarray:
    """Columns of ``Y`` orthogonalised against ``Q`` (twice) and among themselves.

    Directions already (numerically) in ``span(Q)`` are dropped: an empty result means
    the Krylov space is invariant and the Ritz pairs are exact.
    """
    scale = max(float(np.linalg.norm(Y, axis=0).max(initial=0.0)), np.finfo(float).tiny)
    for _ in range(2):
        if Q is not None and Q.shape[1]:
            Y = Y - Q @ (Q.T @ Y)
    U, s, _ = np.linalg.svd(Y, full_matrices=False)
    keep = s > 1e-10 * scale
    return np.ascontiguousarray(U[:, keep])


def _krylov_eigenpairs(
    Z: np.ndarray,
    k: int,
    rtol: float,
    oversample: int,
    max_basis: int,
    max_restarts: int,
    rng: np.random.Generator,
    *,
    start: np.ndarray | None = None,
) -> EigenPairs:
    """Restarted block Krylov on the Gram matrix of the smaller side of ``Z``.

    ``start`` (basis side, ``min(T, N) x b``) replaces the random start block.
    """
    T, N = Z.shape
    # A A' is the Gram matrix of the smaller side; the basis lives there.
    A = Z if T <= N else Z.T
    p, q = min(T, N), max(T, N)
    b = min(k + oversample, p)
    # basis (p x m) and A'Q (q x m) stay below a quarter of Z's memory
    max_basis = max(min(max_basis, p, int(0.25 * T * N / (T + N))), min(p, 8 * b), 2 * b)
    n_products = 0
    if start is None:
        start = A @ rng.standard_normal((q, b))
        n_products = 1
    theta_old = None
    converged = False
    # Fortran-ordered buffers: the basis grows in place (column slices stay contiguous)
    Qbuf = np.empty((p, max_basis + b), order="F")
    Wbuf = np.empty((q, max_basis + b), order="F")
    for _restart in range(max_restarts + 1):
        Q0 = _orthonormal_block(start, None)
        m = Q0.shape[1]
        Qbuf[:, :m] = Q0
        np.matmul(A.T, Q0, out=Wbuf[:, :m])  # A' Q, kept to form the Rayleigh quotient without A again
        Q, W = Qbuf[:, :m], Wbuf[:, :m]
        M = W.T @ W  # Q' A A' Q, grown block by block
        n_products += 1
        theta_old = None  # a restarted basis reproduces the old Ritz values: compare anew
        while True:
            mu, U = _top_eigh(M, b)
            theta = mu[:k]
            if theta_old is not None and theta.size == theta_old.size:
                if np.all(np.abs(theta - theta_old) <= rtol * max(theta[0], np.finfo(float).tiny)):
                    converged = True
                    break
            theta_old = theta
            if m + b > max_basis:
                break
            last = W[:, -min(b, m) :]
            block = _orthonormal_block(A @ last, Q)
            n_products += 1
            nb = block.shape[1]
            if nb == 0:  # invariant subspace: Ritz pairs are exact
                converged = True
                break
            Qbuf[:, m : m + nb] = block
            Wb = Wbuf[:, m : m + nb]
            np.matmul(A.T, block, out=Wb)
            n_products += 1
            cross = W.T @ Wb
            M = np.block([[M, cross], [cross.T, Wb.T @ Wb]])
            m += nb
            Q, W = Qbuf[:, :m], Wbuf[:, :m]
        if converged or m >= p or _restart == max_restarts:
            break
        # thick restart from the leading Ritz vectors of the basis side
        start = Q @ U[:, :b]
    mu = np.maximum(mu[:k], 0.0)
    if T <= N:
        V = W @ U[:, :k]  # other side = stock side
    else:
        V = Q @ U[:, :k]
    V /= np.maximum(np.linalg.norm(V, axis=0), np.finfo(float).tiny)
    return EigenPairs(mu / T, np.ascontiguousarray(V), "krylov", n_products)


# ----------------------------------------------------------------------------- null
@dataclass(frozen=True)
class SurrogatePlan:
    """Column groups and their independent time transforms for ``S`` surrogates.

    ``edges (G+1,)`` splits the columns of ``Z`` into contiguous groups; group ``g`` of
    surrogate ``s`` is transformed by ``(P x)[t, s] = x[perm, s]`` with ``perm`` given as
    flat indices ``perm[g, t, s] = pi_gs(t) * S + s`` into a C-ordered ``(T, S)`` array;
    ``inverse`` (or None: ``P'`` is then the scatter through ``perm``) holds the flat
    indices of ``pi_gs^-1`` so that ``P' x`` is a gather too.
    The sign null uses ``(P x)[t, s] = sign[g, t, s] * x[t, s]`` (int8 signs).
    """

    edges: np.ndarray
    kind: str
    perm: np.ndarray | None
    sign: np.ndarray | None
    inverse: np.ndarray | None = None

    @property
    def n_surrogates(self) -> int:
        arr = self.perm if self.perm is not None else self.sign
        return int(arr.shape[2])


def surrogate_plan(
    n_dates: int,
    n_stocks: int,
    n_surrogates: int,
    kind: str,
    rng: np.random.Generator,
    group_size: int | None = None,
) -> SurrogatePlan:
    """Draw the transforms of ``n_surrogates`` surrogates (see :class:`SurrogatePlan`).

    ``group_size=None`` chooses the smallest group size for which the transforms hold at
    most ``min(2**21, max(T N / 4, 2**19))`` entries: an int32 index each, at most 1/8 of
    the memory of ``Z`` beyond a fixed 2 MB; exact per-column surrogates when that allows.
    The inverse permutation (a second index array, for speed) is added when both fit in
    1/5 of the memory of ``Z``.
    """
    T, N, S = n_dates, n_stocks, n_surrogates
    if group_size is None:
        volume = min(_NULL_VOLUME, max(T * N // 4, 1 << 19))
        max_groups = max(1, volume // (T * S))
        group_size = max(1, -(-N // max_groups))
    G = -(-N // group_size)
    edges = np.minimum(np.arange(G + 1) * group_size, N)
    if kind == "sign":
        sign = (2 * rng.integers(0, 2, size=(G, T, S), dtype=np.int8) - 1).astype(np.int8)
        return SurrogatePlan(edges, kind, None, sign)
    if kind not in ("shuffle", "shift"):
        raise ValueError(f"kind must be 'shuffle', 'shift' or 'sign', got {kind!r}")
    itype = np.int32 if T * S < 2**31 else np.int64
    # one group at a time (G small): only the two index arrays are held at full size
    perm = np.empty((G, T, S), dtype=itype)
    # pi^-1 makes P' x a gather (np.take) instead of a scatter; kept while both index arrays
    # take at most 1/5 of the memory of Z (so always at the 2**21 cap once T N >= 1e7)
    inverse = np.empty_like(perm) if G * T * S * 5 <= T * N else None
    rows = np.arange(T, dtype=itype)
    for g in range(G):
        local = _draw_rows(kind, rng, S, T).astype(itype)
        perm[g] = _flat_indices(local, S)
        if inverse is not None:
            inv = np.empty_like(local)
            np.put_along_axis(inv, local, rows[None, :], axis=1)
            inverse[g] = _flat_indices(inv, S)
    return SurrogatePlan(edges, kind, perm, None, inverse)


def _draw_rows(kind: str, rng: np.random.Generator, S: int, T: int) -> np.ndarray:
    """``(S, T)`` source rows of one group's ``S`` surrogates: uniform permutations or circular shifts."""
    if kind == "shuffle":  # argsort of uniforms = uniform random permutations
        return np.argsort(rng.random((S, T)), axis=1)
    return (np.arange(T)[None, :] + rng.integers(0, T, size=(S, 1))) % T


def _flat_indices(local: np.ndarray, S: int) -> np.ndarray:
    """``(S, T)`` row indices -> ``(T, S)`` flat indices ``row * S + s`` into a C-ordered ``(T, S)`` array."""
    flat = local.T * S
    flat += np.arange(S, dtype=flat.dtype)
    return flat


def apply_surrogate(Z: np.ndarray, plan: SurrogatePlan, s: int) -> np.ndarray:
    """Materialise surrogate ``s`` of ``Z`` (tests and small problems only: a full copy)."""
    out = np.empty_like(Z)
    S = plan.n_surrogates
    for g in range(len(plan.edges) - 1):
        a, b = plan.edges[g], plan.edges[g + 1]
        if plan.sign is not None:
            out[:, a:b] = plan.sign[g, :, s][:, None] * Z[:, a:b]
        else:
            rows = (plan.perm[g, :, s] - s) // S
            out[:, a:b] = Z[rows, a:b]
    return out


def _surrogate_gram_product(
    Z: np.ndarray, plan: SurrogatePlan, X: np.ndarray, dtype: type = np.float64, pool: Any = None
) -> np.ndarray:
    """``Y[:, s] = Z_s Z_s' X[:, s]`` for every surrogate ``s`` (``X`` is ``(T, S)``).

    ``dtype=np.float32`` runs the two GEMMs of each group in single precision: the group's
    columns of ``Z`` are converted into one reused buffer (no float32 copy of ``Z``) and the
    permutations act on float32 vectors; ``Y`` is accumulated in float64.

    ``pool`` (a ``concurrent.futures`` executor, used under a one-thread BLAS limit): the
    groups' products run on its threads, each group's permuted product into its own
    ``(T, S)`` array, summed into ``Y`` in group order as they arrive. The sum is then the
    same, bit for bit, as this function's sequential loop on one BLAS thread.
    """
    T, S = X.shape
    Y = np.zeros((T, S))
    Xc = np.ascontiguousarray(X, dtype=dtype)
    widths = np.diff(plan.edges)
    if pool is not None and widths.size > 1:
        for U in pool.map(lambda g: _group_product(Z, plan, Xc, g, dtype), range(widths.size)):
            Y += U
        return Y
    flat = Xc.ravel()
    Xg = np.empty_like(Xc)
    xg = Xg.ravel()
    tmp = np.empty_like(Xc)
    Zbuf = None if dtype == Z.dtype else np.empty((T, int(widths.max())), dtype=dtype, order="F")
    for g in range(len(widths)):
        Zg = Z[:, plan.edges[g] : plan.edges[g + 1]]
        if Zbuf is not None:
            Zg32 = Zbuf[:, : widths[g]]
            Zg32[...] = Zg
            Zg = Zg32
        if plan.sign is not None:
            sg = plan.sign[g]
            np.multiply(Xc, sg, out=Xg)
            U = Zg @ (Zg.T @ Xg)
            U *= sg
            Y += U
        else:
            if plan.inverse is not None:
                np.take(flat, plan.inverse[g].ravel(), out=xg, mode="wrap")  # P' x
            else:
                xg[plan.perm[g].ravel()] = flat
            U = Zg @ (Zg.T @ Xg)
            np.take(U.ravel(), plan.perm[g].ravel(), out=tmp.ravel(), mode="wrap")  # P u
            Y += tmp
    return Y


def _group_product(Z: np.ndarray, plan: SurrogatePlan, Xc: np.ndarray, g: int, dtype: type) -> np.ndarray:
    """Group ``g``'s term ``P_g Z_g Z_g' P_g' X`` of :func:`_surrogate_gram_product` (a new
    ``(T, S)`` array of ``Xc``'s dtype), the same operations as its sequential loop."""
    Zg = Z[:, plan.edges[g] : plan.edges[g + 1]]
    if dtype != Z.dtype:
        Zg = np.asfortranarray(Zg, dtype=dtype)
    Xg = np.empty_like(Xc)
    if plan.sign is not None:
        sg = plan.sign[g]
        np.multiply(Xc, sg, out=Xg)
        U = Zg @ (Zg.T @ Xg)
        U *= sg
        return U
    if plan.inverse is not None:
        np.take(Xc.ravel(), plan.inverse[g].ravel(), out=Xg.ravel(), mode="wrap")  # P' x
    else:
        Xg.ravel()[plan.perm[g].ravel()] = Xc.ravel()
    U = Zg @ (Zg.T @ Xg)
    out = np.empty_like(Xc)
    np.take(U.ravel(), plan.perm[g].ravel(), out=out.ravel(), mode="wrap")  # P u
    return out


def null_lambda_max(
    Z: np.ndarray,
    n_null: int,
    kind: str,
    rng: np.random.Generator,
    *,
    group_size: int | None = None,
    tol: float | None = None,
    n_iter: int | None = None,
    max_iter: int = 150,
    batch: int = 32,
    dtype: type = np.float32,
) -> tuple[np.ndarray, int]:
    """Top eigenvalue of ``Z_s'Z_s/T`` for ``n_null`` surrogates ``Z_s`` of ``Z``.

    Each surrogate keeps every column's values (fat tails, volatility clusters for
    ``"sign"`` and ``"shift"``) and makes the columns independent; the transforms act on
    groups of ``group_size`` columns (see :func:`surrogate_plan`).  Independent Lanczos
    recurrences run in lock-step on the ``T x S`` block for ``n_iter`` steps (default:
    enough for the Ritz value to reach an MP edge within 5% of the Tracy-Widom scale,
    ``j ~ sqrt(0.3 width / (0.05 sigma_TW))``), or until every top Ritz value moved by
    less than ``tol`` (default 0.2% of the Tracy-Widom scale; a spike converges fast).

    ``dtype`` is the precision of the surrogate products (the recurrence itself is float64).
    The default float32 halves the GEMM time; its rounding (~1e-7 of ``lambda_max``) is
    four orders of magnitude below the accuracy asked of the null (5% of the Tracy-Widom
    scale, ~1e-4 of ``lambda_max`` at N=5,000, T=2,520): ``tests/test_audit.py`` checks
    it against the converged float64 null.  ``np.float64`` gives the exact-arithmetic path.

    Returns
    -------
    lam : ndarray (n_null,)
        Surrogate ``lambda_max``.
    group_size : int
        The group size used.
    """
    T, N = Z.shape
    a, b = math.sqrt(T - 1.0), math.sqrt(N)
    sigma_tw = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0)  # Tracy-Widom scale of T*C
    if tol is None:
        tol = 0.002 * sigma_tw
    if n_iter is None:
        # Lanczos misses an MP edge by about 0.3 * width / j**2 after j steps: ask 5% of TW
        width = 4.0 * math.sqrt(min(N, T) / max(N, T)) * max(N, T)
        n_iter = int(math.ceil(math.sqrt(0.3 * width / (0.05 * sigma_tw))))
    n_iter = int(min(max(n_iter, 15), max_iter, T))
    out = np.empty(n_null)
    used = group_size
    for start in range(0, n_null, batch):
        S = min(batch, n_null - start)
        plan = surrogate_plan(T, N, S, kind, rng, group_size)
        used = int(plan.edges[1] - plan.edges[0])
        out[start : start + S] = _lockstep_lanczos_top(Z, plan, S, rng, tol, n_iter, dtype) / T
    return out, int(used if used is not None else 1)


def _lockstep_lanczos_top(
    Z: np.ndarray,
    plan: SurrogatePlan,
    S: int,
    rng: np.random.Generator,
    tol: float,
    max_iter: int,
    dtype: type = np.float64,
    trace: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Top Ritz value of each surrogate's Lanczos recurrence (``trace``: a list that receives
    a copy of the ``(S,)`` top Ritz values after every step from the fifth on; the numbers
    are the same with or without it)."""
    T = Z.shape[0]
    X = rng.standard_normal((T, S))
    X /= np.linalg.norm(X, axis=0)
    X_prev = np.zeros_like(X)
    beta = np.zeros(S)
    alphas: list[np.ndarray] = []
    betas: list[np.ndarray] = []
    theta = np.full(S, -np.inf)
    tiny = np.finfo(float).tiny
    widest = int(np.diff(plan.edges).max())
    pooled = _NULL_POOL and len(plan.edges) > 2 and 4.0 * T * widest * S >= _POOL_MIN_GROUP_FLOPS
    threads = blas_threads() if pooled else 1
    with ExitStack() as stack:
        pool = None
        if threads > 1:
            stack.enter_context(one_blas_thread())
            pool = stack.enter_context(ThreadPoolExecutor(threads))
        for j in range(min(max_iter, T)):
            Y = _surrogate_gram_product(Z, plan, X, dtype, pool)
            alpha = np.einsum("ts,ts->s", X, Y)
            Y -= alpha * X + beta * X_prev
            beta_new = np.linalg.norm(Y, axis=0)
            alphas.append(alpha)
            betas.append(beta_new)
            if j >= 4:
                new = _top_tridiagonal(np.array(alphas), np.array(betas[:-1]))
                done = (np.abs(new - theta) <= tol) | (beta_new <= 1e-12 * np.abs(new))
                theta = new
                if trace is not None:
                    trace.append(new.copy())
                if done.all():
                    break
            X_prev, X = X, Y / np.maximum(beta_new, tiny)
            beta = beta_new
    if not np.isfinite(theta).all():  # fewer than five steps possible (tiny T)
        theta = _top_tridiagonal(np.array(alphas), np.array(betas[:-1]))
    return theta


def _top_tridiagonal(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of each of ``S`` symmetric tridiagonals (``d (j, S)``, ``e (j-1, S)``)."""
    j, S = d.shape
    H = np.zeros((S, j, j))
    idx = np.arange(j)
    H[:, idx, idx] = d.T
    if j > 1:
        H[:, idx[:-1], idx[1:]] = e.T
        H[:, idx[1:], idx[:-1]] = e.T
    return np.linalg.eigvalsh(H)[:, -1]
