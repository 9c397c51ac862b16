"""Blocked elementwise passes over ``(portfolio, stock)`` arrays, and how many threads run them.

A pass walks the rows in blocks of :data:`ROW_BLOCK` (a block of each operand stays in cache
while every elementwise step runs on it); numpy releases the GIL inside its loops, so large
passes split their blocks over a few threads (never more than BLAS may use).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from riskmodel._blas import blas_threads

__all__ = [
    "ROW_BLOCK",
    "MAX_PASS_THREADS",
    "safe_div",
    "weighted_sq",
    "inv_sqrt",
    "pass_threads",
    "run_row_blocks",
]

#: Rows per block in blocked elementwise passes over (P, N) arrays (a block of each operand
#: stays in cache while every elementwise step runs on it).
ROW_BLOCK = 32
#: A blocked pass over fewer (P × N) cells than this runs on the calling thread alone.
THREAD_MIN_CELLS = 1 << 20
#: Most threads a blocked elementwise pass uses (never more than BLAS is allowed).
MAX_PASS_THREADS = 8


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` broadcasting ``den`` over trailing axes; 0 where ``den == 0``."""
    den = np.asarray(den)
    den_b = den.reshape(den.shape + (1,) * (np.ndim(num) - den.ndim))
    out = np.zeros(np.broadcast_shapes(np.shape(num), den_b.shape))
    np.divide(num, den_b, out=out, where=den_b != 0)
    return out


def weighted_sq(w: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``Σ_n d_n w_pn²`` per row, in cache-sized row blocks without a (P, N) temporary."""
    w = np.ascontiguousarray(w)
    out = np.empty(w.shape[0])

    def block(lo: int, hi: int, tmp: np.ndarray) -> None:
        dw = tmp[: hi - lo]
        np.multiply(w[lo:hi], d, out=dw)
        np.vecdot(dw, w[lo:hi], out=out[lo:hi])

    run_row_blocks(block, w.shape, pass_threads(w.size))
    return out


def inv_sqrt(var: np.ndarray) -> np.ndarray:
    """``1 / √var``, 0 where ``var == 0`` (a zero portfolio has no contributions)."""
    vol = np.sqrt(var)
    out = np.zeros_like(vol)
    np.divide(1.0, vol, out=out, where=vol != 0)
    return out


def pass_threads(cells: int) -> int:
    """Threads for a blocked elementwise pass over ``cells`` values: as many as BLAS may use
    (so ``threadpool_limits(1)`` keeps everything on one core), 1 for small passes."""
    if cells < THREAD_MIN_CELLS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(blas_threads(), cores, MAX_PASS_THREADS))


def run_row_blocks(fn: Callable[[int, int, np.ndarray], None], shape: tuple[int, int], n_threads: int) -> None:
    """``fn(lo, hi, tmp)`` on every block of ``ROW_BLOCK`` rows of a ``(rows, cols)`` pass.

    ``tmp`` is a ``(ROW_BLOCK, cols)`` scratch block owned by the running thread. numpy
    releases the GIL inside its loops, so with ``n_threads > 1`` the blocks run in parallel:
    the calling thread and ``n_threads - 1`` helpers take the next block from a shared
    counter, so a thread that the OS holds back (busy machine) delays nothing but its
    own block.
    """
    n_rows, n_cols = shape
    starts = range(0, n_rows, ROW_BLOCK)
    n_threads = max(1, min(n_threads, len(starts)))

    def worker(counter: Any) -> None:
        tmp = np.empty((min(ROW_BLOCK, n_rows), n_cols))
        for i in counter:  # next() on a shared iterator is atomic under the GIL
            if i >= len(starts):
                return
            fn(starts[i], min(starts[i] + ROW_BLOCK, n_rows), tmp)

    counter = itertools.count()
    if n_threads == 1:
        worker(counter)
        return
    with ThreadPoolExecutor(max_workers=n_threads - 1) as pool:
        futures = [pool.submit(worker, counter) for _ in range(n_threads - 1)]
        worker(counter)
        for future in futures:
            future.result()
