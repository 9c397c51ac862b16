"""Numba kernel of the covariance operator on grouped exposures: one pass per pair of rows.

Risk-model exposures are mostly a function of a few *group codes*: the market column is 1
for every stock, an industry column is 1 on its members and 0 elsewhere. With stocks
grouped by their pattern of memberships, ``B[n, fold_cols] = lookup[code[n]]``, and only
the remaining ``dense`` columns (the styles) need a product over stocks:

* ``x = Bᵀ w``: ``acc[g] = Σ_{code[n]=g} w_n`` (one scatter), ``x_fold = lookupᵀ acc``
  (over the table's nonzeros), ``x_dense = dense_t w``;
* ``B y``: ``h = lookup y_fold`` (G values), ``(B y)_n = h[code[n]] + dense_tᵀ y_dense``.

With 60 industries and 10 styles that is 11 instead of 70 multiply-adds per stock, and the
two portfolios of a pair share every load of ``dense_t``. :func:`grouped_rows_kernel` does
the whole of a risk decomposition (or ``Σ x``) of a pair of rows while the rows sit in
cache, so each weight is read from memory once and each output written once.

The plain numpy twin lives in ``tests/kernels/twins/operator.py`` (the kernel registry).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["MODE_APPLY", "MODE_DECOMPOSE", "MODE_EXPOSURES", "MODE_MOMENTS", "grouped_rows_kernel"]

#: ``x = Bᵀ w`` only.
MODE_EXPOSURES = 0
#: ``x``, ``F x``, ``xᵀ F x`` and ``Σ d w²``.
MODE_MOMENTS = 1
#: Moments plus the per-stock marginal (``Σ w / σ``) and component (``w ∘ MCR``) contributions.
MODE_DECOMPOSE = 2
#: Moments plus ``Σ w = B F Bᵀ w + d ∘ w`` (written into ``out_a``; ``out_b`` unused).
MODE_APPLY = 3

#: Stocks per block of the per-stock pass: the block's operands (~100 KB for a pair) stay in
#: L2 across its sweeps; 512 and 2,048 measured the same.
_CHUNK = 1024
_FASTMATH = {"reassoc", "contract", "nsz"}


@numba.njit(cache=True, fastmath=_FASTMATH, inline="never", error_model="numpy")
def _pair(W, p0, p1, mode, dense_t, dense_cols, codes, n_groups, fold_cols, nz_group, nz_factor, nz_value, F, d,
          out_x, out_fx, out_fvar, out_spec, out_a, out_b):  # pragma: no cover - compiled
    """Rows ``p0`` and ``p1`` (equal for a lone last row) of :func:`grouped_rows_kernel`."""
    kd = dense_t.shape[0]
    G = n_groups
    kf = fold_cols.shape[0]
    nnz = nz_group.shape[0]
    m = out_x.shape[1]
    w0 = W[p0]
    w1 = W[p1]
    xd = np.zeros((kd, 2))
    acc = np.zeros((G, 2))
    spec0, spec1 = _row_sums(w0, w1, mode, dense_t, codes, d, xd, acc)
    for c in range(kd):
        out_x[p0, dense_cols[c]] = xd[c, 0]
        out_x[p1, dense_cols[c]] = xd[c, 1]
    xf = np.zeros((m, 2))  # local: a lone row (p0 == p1) must not accumulate twice
    for e in range(nnz):  # x_fold = lookupᵀ acc over the lookup's nonzeros
        xf[nz_factor[e], 0] += nz_value[e] * acc[nz_group[e], 0]
        xf[nz_factor[e], 1] += nz_value[e] * acc[nz_group[e], 1]
    for j in range(kf):
        out_x[p0, fold_cols[j]] = xf[fold_cols[j], 0]
        out_x[p1, fold_cols[j]] = xf[fold_cols[j], 1]
    if mode == MODE_EXPOSURES:
        return
    # ---- F x, xᵀ F x, 1/σ (both rows per load of F)
    x0 = out_x[p0]
    x1 = out_x[p1]
    fx0 = out_fx[p0]
    fx1 = out_fx[p1]
    fvar0 = 0.0
    fvar1 = 0.0
    for a in range(m):
        s0 = 0.0
        s1 = 0.0
        for k in range(m):
            s0 += F[a, k] * x0[k]
            s1 += F[a, k] * x1[k]
        fx0[a] = s0
        fx1[a] = s1
        fvar0 += s0 * x0[a]
        fvar1 += s1 * x1[a]
    out_fvar[p0] = fvar0
    out_fvar[p1] = fvar1
    out_spec[p0] = spec0
    out_spec[p1] = spec1
    r0 = 1.0
    r1 = 1.0
    if mode == MODE_DECOMPOSE:  # 1/σ; a zero book has no contributions
        r0 = 1.0 / math.sqrt(fvar0 + spec0) if fvar0 + spec0 > 0.0 else 0.0
        r1 = 1.0 / math.sqrt(fvar1 + spec1) if fvar1 + spec1 > 0.0 else 0.0
    if mode == MODE_MOMENTS:
        return
    # ---- per stock: (B F x)_n + d_n w_n, by group lookup plus the dense columns
    h = np.zeros((G, 2))
    for e in range(nnz):  # h = lookup (F x)_fold over the lookup's nonzeros
        h[nz_group[e], 0] += nz_value[e] * out_fx[p0, nz_factor[e]]
        h[nz_group[e], 1] += nz_value[e] * out_fx[p1, nz_factor[e]]
    gd = np.empty((kd, 2))
    for c in range(kd):
        gd[c, 0] = out_fx[p0, dense_cols[c]]
        gd[c, 1] = out_fx[p1, dense_cols[c]]
    _per_stock(w0, w1, p0, p1, mode, dense_t, codes, d, h, gd, r0, r1, out_a, out_b)


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always", error_model="numpy")
def _row_sums(w0, w1, mode, dense_t, codes, d, xd, acc):  # pragma: no cover - compiled
    """``x_dense = dense_t w`` (into ``xd (kd, 2)``), the group sums ``acc (G, 2)`` and
    ``Σ d w²`` (returned) of the two rows ``w0, w1``, in one pass over the stocks.

    A chunk at a time: the chunk of both rows stays in L1 across the sweeps over the dense
    columns; the group sums are a scatter.
    """
    N = w0.shape[0]
    kd = dense_t.shape[0]
    spec0 = 0.0
    spec1 = 0.0
    for lo in range(0, N, _CHUNK):
        hi = min(lo + _CHUNK, N)
        n = hi - lo
        a0 = w0[lo:hi]
        a1 = w1[lo:hi]
        c = 0
        while c + 2 <= kd:  # two columns per sweep: each weight loaded once for four products
            ba = dense_t[c, lo:hi]
            bb = dense_t[c + 1, lo:hi]
            s0a = 0.0
            s0b = 0.0
            s1a = 0.0
            s1b = 0.0
            for i in range(n):
                s0a += a0[i] * ba[i]
                s0b += a0[i] * bb[i]
                s1a += a1[i] * ba[i]
                s1b += a1[i] * bb[i]
            xd[c, 0] += s0a
            xd[c + 1, 0] += s0b
            xd[c, 1] += s1a
            xd[c + 1, 1] += s1b
            c += 2
        if c < kd:
            ba = dense_t[c, lo:hi]
            s0a = 0.0
            s1a = 0.0
            for i in range(n):
                s0a += a0[i] * ba[i]
                s1a += a1[i] * ba[i]
            xd[c, 0] += s0a
            xd[c, 1] += s1a
        if mode != MODE_EXPOSURES:  # (d is a placeholder then)
            dc = d[lo:hi]
            s0a = 0.0
            s1a = 0.0
            for i in range(n):
                s0a += dc[i] * a0[i] * a0[i]
                s1a += dc[i] * a1[i] * a1[i]
            spec0 += s0a
            spec1 += s1a
        cc = codes[lo:hi]
        for i in range(n):
            g = cc[i]
            acc[g, 0] += a0[i]
            acc[g, 1] += a1[i]
    return spec0, spec1


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always", error_model="numpy")
def _per_stock(w0, w1, p0, p1, mode, dense_t, codes, d, h, gd, r0, r1, out_a, out_b):  # pragma: no cover - compiled
    """Per stock of the rows ``p0, p1``: ``(B F x)_n + d_n w_n`` into ``out_a`` by the group
    lookup ``h (G, 2)`` plus the dense columns' ``gd = (F x)_dense (kd, 2)``; scaled by
    ``r0, r1 = 1/σ`` with the components ``w ∘ MCR`` into ``out_b`` in ``MODE_DECOMPOSE``."""
    N = w0.shape[0]
    kd = dense_t.shape[0]
    lone = p1 == p0  # the second row's per-stock outputs go to scratch, not over the first's
    scratch = np.empty((2, _CHUNK if lone else 0))
    for lo in range(0, N, _CHUNK):
        hi = min(lo + _CHUNK, N)
        n = hi - lo
        a0 = w0[lo:hi]
        a1 = w1[lo:hi]
        m0 = out_a[p0, lo:hi]
        m1 = scratch[0, :n] if lone else out_a[p1, lo:hi]
        dc = d[lo:hi]
        cc = codes[lo:hi]
        for i in range(n):  # specific part and group lookup (a gather: kept out of the sweeps below)
            g = cc[i]
            m0[i] = dc[i] * a0[i] + h[g, 0]
            m1[i] = dc[i] * a1[i] + h[g, 1]
        c = 0
        # dense columns four at a time (a quarter of the loads and stores of m), then the rest
        while c + 4 <= kd:
            ba, bb, bc, bd = dense_t[c, lo:hi], dense_t[c + 1, lo:hi], dense_t[c + 2, lo:hi], dense_t[c + 3, lo:hi]
            g0a, g0b, g0c, g0d = gd[c, 0], gd[c + 1, 0], gd[c + 2, 0], gd[c + 3, 0]
            g1a, g1b, g1c, g1d = gd[c, 1], gd[c + 1, 1], gd[c + 2, 1], gd[c + 3, 1]
            for i in range(n):
                m0[i] += g0a * ba[i] + g0b * bb[i] + g0c * bc[i] + g0d * bd[i]
                m1[i] += g1a * ba[i] + g1b * bb[i] + g1c * bc[i] + g1d * bd[i]
            c += 4
        if c + 2 <= kd:
            ba, bb = dense_t[c, lo:hi], dense_t[c + 1, lo:hi]
            g0a, g0b, g1a, g1b = gd[c, 0], gd[c + 1, 0], gd[c, 1], gd[c + 1, 1]
            for i in range(n):
                m0[i] += g0a * ba[i] + g0b * bb[i]
                m1[i] += g1a * ba[i] + g1b * bb[i]
            c += 2
        if c < kd:
            ba = dense_t[c, lo:hi]
            g0a, g1a = gd[c, 0], gd[c, 1]
            for i in range(n):
                m0[i] += g0a * ba[i]
                m1[i] += g1a * ba[i]
        if mode == MODE_DECOMPOSE:
            c0 = out_b[p0, lo:hi]
            c1 = scratch[1, :n] if lone else out_b[p1, lo:hi]
            for i in range(n):
                m0[i] *= r0
                c0[i] = a0[i] * m0[i]
                m1[i] *= r1
                c1[i] = a1[i] * m1[i]


# ``prange`` here, not :func:`~riskmodel.kernels._chunks.parallel_chunks` like the other
# kernels: numba compiles a parfor body with its array arguments marked no-alias, so LLVM
# vectorises the per-stock loops of ``_pair`` without run-time overlap checks (7-8% faster
# on one thread, measured in one process against the chunked version), which is worth the
# kernel's extra 3-6 s of compilation.
@numba.njit(cache=True, parallel=True)
def grouped_rows_kernel(W, mode, dense_t, dense_cols, codes, n_groups, fold_cols, nz_group, nz_factor, nz_value,
                        F, d, out_x, out_fx, out_fvar, out_spec, out_a, out_b):  # pragma: no cover - compiled
    """Exposures, risk moments, per-stock contributions or ``Σ w`` of the rows of ``W``.

    ``B`` is given by columns: ``B[:, dense_cols] = dense_tᵀ`` and
    ``B[n, fold_cols] = lookup[codes[n]]``, the lookup table given by its nonzeros
    ``lookup[nz_group[e], ·] = nz_value[e]`` in factor column ``nz_factor[e]``. Rows are taken in pairs (``prange`` over
    pairs); a lone last row is computed as a pair with itself (its second copy's per-stock
    outputs go to scratch).

    Parameters
    ----------
    W : ndarray (P, N) float64, C order
        Weights, one portfolio per row.
    mode : int
        ``MODE_EXPOSURES``, ``MODE_MOMENTS``, ``MODE_DECOMPOSE`` or ``MODE_APPLY``.
    dense_t : ndarray (kd, N) float64, C order
        The dense columns of ``B``, transposed.
    dense_cols : ndarray (kd,) int64
        Their positions among the ``m`` factors.
    codes : ndarray (N,) int64
        Group of each stock, ``0 … G-1``.
    n_groups : int
        ``G``.
    fold_cols : ndarray (kf,) int64
        Positions of the folded columns among the ``m`` factors.
    nz_group, nz_factor : ndarray (nnz,) int64
        Group and factor position of each nonzero of the lookup table (a handful per group:
        the market and the group's industry).
    nz_value : ndarray (nnz,) float64
        Its value.
    F : ndarray (m, m) float64
        Factor covariance (unused in ``MODE_EXPOSURES``).
    d : ndarray (N,) float64
        Specific variances (unused in ``MODE_EXPOSURES``).
    out_x : ndarray (P, m) float64
        Written: ``x = Bᵀ w``.
    out_fx : ndarray (P, m) float64
        Written (modes ≥ 1): ``F x``.
    out_fvar, out_spec : ndarray (P,) float64
        Written (modes ≥ 1): factor variance ``xᵀ F x`` and specific variance ``Σ d w²``.
    out_a : ndarray (P, N) float64
        Written: marginal contributions ``(B F x + d ∘ w) / σ`` (``MODE_DECOMPOSE``, 0 for
        a zero portfolio) or ``Σ w = B F x + d ∘ w`` (``MODE_APPLY``); any array otherwise.
    out_b : ndarray (P, N) float64
        Written (``MODE_DECOMPOSE``): component contributions ``w ∘ MCR``; any array otherwise.
    """
    P = W.shape[0]
    for t in numba.prange((P + 1) // 2):
        p0 = 2 * t
        p1 = min(p0 + 1, P - 1)
        _pair(W, p0, p1, mode, dense_t, dense_cols, codes, n_groups, fold_cols, nz_group, nz_factor, nz_value, F, d,
              out_x, out_fx, out_fvar, out_spec, out_a, out_b)
