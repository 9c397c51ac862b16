"""Numba kernels: the only place numba is used.

Each kernel is a loop writing into preallocated outputs, compiled with ``cache=True``
and parallel over dates (or stocks, pairs, matrices) where that applies: the loop body is
a ``nogil`` numba function over a range of items that :func:`._chunks.parallel_chunks`
runs on a thread pool (the covariance operator's kernel keeps ``prange``, see there).
Every helper compiles with ``error_model="numpy"`` (a zero division gives inf/NaN, as
numpy does). Every kernel the package calls has a plain numpy twin in the registry
``tests/kernels/twins/``, which drives the twin tests and ``benchmarks/bench_kernels.py``.
Callers validate inputs and lay arrays out contiguously before calling; kernels do no
checking.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba

__all__ = ["kernel_threads"]


@contextmanager
def kernel_threads(n: int) -> Iterator[None]:
    """Run the parallel kernels called inside on at most ``n`` threads (restored on exit).

    The limit is numba's, per calling thread; ``n`` is capped to the threads numba started.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
