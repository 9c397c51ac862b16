"""Exposures that are functions of a group code: the market and industry columns of ``B``.

In a Barra-style model most of the ``m`` columns of ``B`` are indicators: the market column
is 1 for every stock, an industry column is 1 on the industry's members. Grouping stocks by
their pattern over all 0/1 columns gives a code per stock such that each of those columns
(and any other column that is constant within every group) is a lookup
``B[n, fold_cols] = lookup[code[n]]``. Products with ``B`` then cost one scatter or gather
per stock plus the few remaining dense columns (the styles) instead of ``m`` multiply-adds
(:mod:`riskmodel.kernels.operator`). The split is exact: the same numbers, summed in another
order.

:func:`group_exposures` finds the split, or returns ``None`` when it would not pay (few
indicator columns, or almost as many groups as stocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from riskmodel._rows import distinct_rows
from riskmodel.kernels import kernel_threads
from riskmodel.kernels.operator import (
    MODE_APPLY,
    MODE_DECOMPOSE,
    MODE_EXPOSURES,
    MODE_MOMENTS,
    grouped_rows_kernel,
)

__all__ = ["GroupedExposures", "group_exposures"]

#: Fewest folded columns for the grouped kernel. Measured at N = 5,000, P = 1,000: with 8
#: folded and 4-10 dense columns it is 1.5x the GEMM path for a decomposition and as fast
#: for variances; with 60 folded and 10 dense, 2.3x and 2.6x.
MIN_FOLDED = 8
#: Most groups, as a share of the stocks (beyond it the lookups cost what they save).
MAX_GROUP_SHARE = 0.25


@dataclass(frozen=True)
class GroupedExposures:
    """``B (N, m)`` split into dense columns and columns looked up by a group code.

    Attributes
    ----------
    dense_cols : ndarray (kd,) int64
        Positions of the dense columns among the ``m`` factors.
    dense_t : ndarray (kd, N) float64
        Those columns, transposed (C order).
    codes : ndarray (N,) int64
        Group of each stock, ``0 … G-1``.
    fold_cols : ndarray (kf,) int64
        Positions of the folded columns.
    lookup : ndarray (G, kf) float64
        ``B[n, fold_cols] == lookup[codes[n]]`` exactly.
    """

    dense_cols: np.ndarray
    dense_t: np.ndarray
    codes: np.ndarray
    fold_cols: np.ndarray
    lookup: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of groups ``G``."""
        return self.lookup.shape[0]

    @cached_property
    def _nonzeros(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(group, factor position, value)`` of each nonzero of ``lookup`` (market and
        industry: two per group instead of ``kf``)."""
        g, j = np.nonzero(self.lookup)
        return g.astype(np.int64), self.fold_cols[j].astype(np.int64), np.ascontiguousarray(self.lookup[g, j])

    def _run(self, W: np.ndarray, mode: int, F: np.ndarray, d: np.ndarray, threads: int) -> tuple[np.ndarray, ...]:
        W = np.ascontiguousarray(W, dtype=np.float64)
        P, N = W.shape
        m = self.dense_cols.size + self.fold_cols.size
        x = np.empty((P, m))
        moments = mode != MODE_EXPOSURES
        fx = np.empty((P, m)) if moments else x
        fvar = np.empty(P)
        spec = np.empty(P)
        per_stock = mode in (MODE_DECOMPOSE, MODE_APPLY)
        a = np.empty((P, N)) if per_stock else np.empty((1, 1))
        b = np.empty((P, N)) if mode == MODE_DECOMPOSE else a
        with kernel_threads(threads):
            grouped_rows_kernel(W, mode, self.dense_t, self.dense_cols, self.codes, self.n_groups, self.fold_cols,
                                *self._nonzeros, F, d, x, fx, fvar, spec, a, b)
        return x, fx, fvar, spec, a, b

    def exposures(self, W: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """``x = W B`` (P, m) for weights ``W (P, N)``, on at most ``threads`` threads."""
        return self._run(W, MODE_EXPOSURES, np.empty((1, 1)), np.empty(1), threads)[0]

    def moments(self, W: np.ndarray, F: np.ndarray, d: np.ndarray, *, threads: int = 1) -> tuple[np.ndarray, ...]:
        """``(x, F x, xᵀ F x, Σ d w²)`` per row of ``W``."""
        return self._run(W, MODE_MOMENTS, F, d, threads)[:4]

    def decompose(self, W: np.ndarray, F: np.ndarray, d: np.ndarray, *, threads: int = 1) -> tuple[np.ndarray, ...]:
        """``(x, F x, xᵀ F x, Σ d w², MCR, CR)`` per row of ``W``; MCR and CR are (P, N),
        both 0 on a zero row."""
        return self._run(W, MODE_DECOMPOSE, F, d, threads)

    def apply(self, W: np.ndarray, F: np.ndarray, d: np.ndarray, *, threads: int = 1) -> np.ndarray:
        """``Σ w = B F Bᵀ w + d ∘ w`` per row of ``W`` (P, N)."""
        return self._run(W, MODE_APPLY, F, d, threads)[4]


def group_exposures(B: np.ndarray) -> GroupedExposures | None:
    """Split ``B`` into dense columns and columns that are functions of a group code.

    Stocks are grouped by their pattern over the columns whose entries are all exactly 0 or
    1; every such column, and every other column constant within each group, is folded into
    the group lookup table.

    Parameters
    ----------
    B : ndarray (N, m) float64
        Exposures (finite).

    Returns
    -------
    GroupedExposures or None
        None when fewer than ``MIN_FOLDED`` columns fold or the groups number more than
        ``MAX_GROUP_SHARE`` of the stocks: plain products with ``B`` are then as fast.
    """
    n = B.shape[0]
    indicator = np.flatnonzero(((B == 0.0) | (B == 1.0)).all(axis=0))
    if indicator.size == 0 or n == 0:
        return None
    first, codes = distinct_rows(B[:, indicator] != 0.0)
    if first.size > max(1, int(MAX_GROUP_SHARE * n)):
        return None
    representative = B[first]  # (G, m): the row of each group's first stock
    constant = (B == representative[codes]).all(axis=0)
    fold_cols = np.flatnonzero(constant)
    if fold_cols.size < MIN_FOLDED:
        return None
    dense_cols = np.flatnonzero(~constant)
    return GroupedExposures(
        dense_cols=dense_cols.astype(np.int64),
        dense_t=np.ascontiguousarray(B[:, dense_cols].T),
        codes=codes,
        fold_cols=fold_cols.astype(np.int64),
        lookup=np.ascontiguousarray(representative[:, fold_cols]),
    )

