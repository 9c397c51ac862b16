"""LAPACK's symmetric eigensolvers at the size of the fit's factor covariance (m = 71), one BLAS thread.

::

    python benchmarks/eigh_drivers.py -o benchmarks/results/eigh_drivers.json

The eigen adjustment of Σ_f decomposes thousands of 71 × 71 matrices (``bench_speed_fit.py``
counts them), with numpy's ``eigh`` (LAPACK ``dsyevd``). This script asks whether another
driver, or float32, would be cheaper at that size: it times, on one BLAS thread, CPU
milliseconds per call (best of several rounds of many calls, the solvers interleaved round by
round) for ``dsyevd`` through numpy
and through scipy's thin LAPACK wrapper (workspaces sized once), two of its parts (``dsytrd``,
the reduction to tridiagonal form; ``dsterf``, the eigenvalues of the tridiagonal matrix),
``dsyevr`` (relatively robust representations, ``dstemr`` inside), ``dsyev`` (QR iteration),
``dstemr`` and ``dstein`` on the tridiagonal matrix alone, and ``ssyevd`` (float32), on a
fixed random covariance matrix (seeded, a sample covariance of 504 Gaussian draws, so its
low eigenvalues cluster as Σ_f's do). The JSON records the load average, the versions and
the BLAS. Seconds to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy.linalg import lapack
from threadpoolctl import threadpool_info, threadpool_limits

RESULTS = Path(__file__).resolve().parent / "results" / "eigh_drivers.json"
SIZE, OBSERVATIONS, SEED = 71, 504, 0


def covariance(size: int = SIZE, observations: int = OBSERVATIONS, seed: int = SEED) -> np.ndarray:
    """A sample covariance of ``observations`` Gaussian draws with unequal scales (SPD, ``size`` × ``size``)."""
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((observations, size)) * np.geomspace(0.03, 0.002, size)
    return draws.T @ draws / observations


def cpu_ms(calls_by_name: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, float]:
    """Best over ``rounds`` of the CPU milliseconds per call (``calls`` calls a round), the solvers
    interleaved round by round so that each sees the same load."""
    best = dict.fromkeys(calls_by_name, np.inf)
    for _ in range(rounds):
        for name, call in calls_by_name.items():
            start = time.process_time()
            for _ in range(calls):
                call()
            best[name] = min(best[name], (time.process_time() - start) / calls)
    return {name: ms * 1e3 for name, ms in best.items()}


def drivers(matrix: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Each solver as a call on ``matrix`` (the tridiagonal ones on its reduction, given fresh copies of the
    diagonals: ``dsterf`` and ``dstemr`` overwrite them)."""
    size = matrix.shape[0]
    work, info = lapack.dsytrd_lwork(size)
    assert info == 0
    _c, d, e, _tau, info = lapack.dsytrd(matrix, lwork=int(work))
    assert info == 0
    values = lapack.dsterf(d.copy(), e.copy())[0]
    e_padded = np.append(e, 0.0)  # dstemr's off-diagonal has n entries
    block, split = np.ones(size, dtype=np.int32), np.full(size, size, dtype=np.int32)
    single = matrix.astype(np.float32)
    evd = tuple(int(x) for x in lapack.dsyevd_lwork(size)[:2])
    evr = tuple(int(x) for x in lapack.dsyevr_lwork(size)[:2])
    ev = int(lapack.dsyev_lwork(size)[0])
    return {
        "dsyevd (numpy eigh)": lambda: np.linalg.eigh(matrix),
        "dsytrd (reduction only)": lambda: lapack.dsytrd(matrix, lwork=int(work)),
        "dsterf (tridiagonal eigenvalues only)": lambda: lapack.dsterf(d.copy(), e.copy()),
        "dsyevd (LAPACK wrapper)": lambda: lapack.dsyevd(matrix, lwork=evd[0], liwork=evd[1]),
        "dsyevr (LAPACK wrapper)": lambda: lapack.dsyevr(matrix, lwork=evr[0], liwork=evr[1]),
        "dsyev (LAPACK wrapper)": lambda: lapack.dsyev(matrix, lwork=ev),
        "dstemr (tridiagonal, vectors)": lambda: lapack.dstemr(d.copy(), e_padded.copy(), 0, 0.0, 0.0, 0, 0),
        "dstein after dsterf (tridiagonal, vectors)": lambda: lapack.dstein(d, e, values, block, split),
        "ssyevd (float32, LAPACK wrapper)": lambda: lapack.ssyevd(single, lwork=evd[0], liwork=evd[1]),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=RESULTS)
    parser.add_argument("--calls", type=int, default=300, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="few calls (a check that it runs)")
    args = parser.parse_args(argv)
    calls, rounds = (20, 2) if args.quick else (args.calls, args.rounds)
    matrix = covariance()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with threadpool_limits(1):
        for call in drivers(matrix).values():  # a first call of each outside the timing
            call()
        timings = cpu_ms(drivers(matrix), calls, rounds)
    base = timings["dsyevd (numpy eigh)"]
    report = {
        "benchmark": "eigh_drivers",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "matrix": {"size": SIZE, "observations": OBSERVATIONS, "seed": SEED,
                   "condition_number": float(np.linalg.cond(matrix))},
        "timing": {"calls_per_round": calls, "rounds": rounds, "blas_threads": 1,
                   "what": "best over rounds of the process CPU milliseconds per call"},
        "cpu_ms": timings,
        "over_dsyevd": {name: ms / base for name, ms in timings.items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__,
                    "blas": [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()]},
        "conditions": {"load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for name, ms in timings.items():
        print(f"{name:45s} {ms:7.3f} ms  {ms / base:5.2f}x dsyevd")
    return report


if __name__ == "__main__":
    main()
