"""Parallel loops over independent items on Python threads, for kernels that release the GIL.

A kernel's loop body over items ``lo .. hi`` (dates, stock blocks, matrices of a stack) is
compiled once with ``numba.njit(nogil=True)``; :func:`parallel_chunks` cuts ``0 .. n`` into
contiguous chunks and runs them on the calling thread and ``threads - 1`` pool threads,
each taking the next chunk from a shared counter.

Why not ``numba.prange``: a ``parallel=True`` kernel costs 3-6 s more to compile than the
same loop compiled plainly (numba's parfor lowering), and a fit has a dozen of them, so a
first run on a new machine spent over 40% of its compile time there. The arithmetic is the
same, bit for bit; chunks taken from a counter also keep both cores busy when the
operating system holds one back (the static split of ``prange`` waits for the slow half).
One kernel keeps ``prange``: the covariance operator's, whose loops gain from the no-alias
arguments numba gives a parfor body (see :mod:`riskmodel.kernels.operator`).

The thread count is numba's (``numba.get_num_threads()``, which
:func:`riskmodel.kernels.kernel_threads` limits), so the kernels keep honouring it.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numba

__all__ = ["compiled_bodies", "parallel_chunks"]

#: Chunks per thread: with 8 the last chunks of the eigen-adjustment draws (100 matrices a
#: call) left a core idle for ~1 ms a call (3-4% of the stage); a chunk's call costs ~2 µs.
CHUNKS_PER_THREAD = 32

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()


def _executor() -> ThreadPoolExecutor:
    """The shared pool: one thread fewer than numba may use (the caller is the other), made
    on first use and kept (threads start lazily, as work is submitted)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="riskmodel-kernel", initializer=_mark_pool_thread)
        return _pool


def _mark_pool_thread() -> None:
    _local.in_pool = True


def _forget_pool_in_child() -> None:
    """A forked child has none of the parent's pool threads: start a new pool on first use
    (the inherited one would queue chunks that no thread ever runs)."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def compiled_bodies(kernel: Callable[..., Any]) -> list[Any]:
    """The numba dispatchers a kernel runs: itself when it is one, else those its Python
    driver names (the chunk body it hands to :func:`parallel_chunks`)."""
    from numba.core.registry import CPUDispatcher

    if isinstance(kernel, CPUDispatcher):
        return [kernel]
    names = getattr(getattr(kernel, "__code__", None), "co_names", ())
    scope = getattr(kernel, "__globals__", {})
    return [scope[name] for name in names if isinstance(scope.get(name), CPUDispatcher)]


def parallel_chunks(body: Callable[..., None], n: int, *args: Any) -> None:
    """Run ``body(lo, hi, *args)`` over ``0 .. n`` in contiguous chunks, in parallel.

    Parameters
    ----------
    body : numba dispatcher compiled with ``nogil=True``
        Processes items ``lo <= i < hi``; chunks must be independent (disjoint writes).
    n : int
        Number of items.
    *args
        Passed to every call after ``lo, hi``.

    Notes
    -----
    Runs on the calling thread alone when numba's thread count is 1, when ``n < 2``, or
    when called from one of the pool's own threads (no nested pools). An exception raised by
    a chunk is raised here once every running chunk has finished.
    """
    threads = min(numba.get_num_threads(), n)
    if threads <= 1 or getattr(_local, "in_pool", False):
        if n > 0:
            body(0, n, *args)
        return
    n_chunks = min(n, threads * CHUNKS_PER_THREAD)
    bounds = [n * i // n_chunks for i in range(n_chunks + 1)]
    counter = itertools.count()

    def worker() -> None:
        for i in counter:  # next() on a shared iterator is atomic under the GIL
            if i >= n_chunks:
                return
            body(bounds[i], bounds[i + 1], *args)

    pool = _executor()
    futures = [pool.submit(worker) for _ in range(threads - 1)]
    try:
        worker()
    finally:
        for future in futures:
            future.result()
