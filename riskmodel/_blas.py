"""BLAS thread control shared by the numerical stages.

Numba kernels that call LAPACK in parallel (batched ``eigh``) and the blocked numpy
passes of the covariance operator need to know, or to limit, how many threads BLAS uses.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from threadpoolctl import ThreadpoolController


@cache
def blas_controller() -> ThreadpoolController:
    """The BLAS libraries' thread controller, built once (building it scans the loaded
    libraries, ~1 ms, which adds up over many calls).

    scipy's LAPACK, the library numba's ``np.linalg`` functions call, is loaded first: a
    controller built before it is loaded would not cover it, and its threads would then
    fight numba's (batched ``eigh`` ran 2-4x slower on 2 threads that way).
    """
    import scipy.linalg.cython_lapack  # noqa: F401 - load the library the kernels call

    return ThreadpoolController().select(user_api="blas")


def one_blas_thread() -> Any:
    """Context manager limiting every BLAS library to one thread."""
    return blas_controller().limit(limits=1)


def blas_threads() -> int:
    """How many threads BLAS may use now (honours ``threadpoolctl.threadpool_limits``)."""
    return max((lib.num_threads for lib in blas_controller().lib_controllers), default=1)
