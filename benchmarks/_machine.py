"""This machine's limits, measured: the probes the speed benchmarks share (issue 21).

Stable names (imported by ``bench_speed_fit.py`` and ``bench_speed_audit.py``; keep them):

* ``best_of(fn, repeats) -> float`` — best wall seconds of ``repeats`` calls of ``fn()``;
* ``best_of_cpu(fn, repeats) -> tuple[float, float]`` — best wall seconds and best process
  CPU seconds (user + system, all threads) of ``repeats`` calls;
* ``copy_probe(megabytes=64, repeats=40, threads=1) -> dict`` — ``np.copyto`` of a
  ``megabytes`` array, on one thread or split in ``threads`` contiguous parts copied at once
  on a thread pool: ``bytes`` (read + written), ``seconds`` (best wall), ``cpu_seconds``
  (best CPU), ``gbs_wall`` and ``gbs_cpu`` (bytes per wall / per CPU second, in GB/s),
  ``threads``;
* ``memory_bandwidth_gbs(megabytes=64, repeats=40, per="wall") -> float`` — the copy rate
  in GB/s (``per="cpu"``: per CPU second, what one core does while it runs on a shared
  machine);
* ``gemm_probe(dtype=np.float64, n=1500, repeats=15) -> dict`` — one ``n × n`` GEMM on all
  BLAS threads and on one: ``gflops_all_threads``, ``gflops_one_thread`` (best wall),
  ``gflops_one_thread_cpu`` (per CPU second), ``gflops`` (the larger of the all-thread
  rate and ``min(2, cores) ×`` the one-thread rate), ``n``;
* ``gemm_peak_gflops(dtype=np.float64, n=1500, repeats=15) -> float`` — ``gemm_probe(...)["gflops"]``.

On a shared machine the best short run is the one that had the cores to itself, which is
what "the machine's limit" means; the per-CPU-second rates are less disturbed still.

The copy's size matters on this machine: from some hundred MB on, glibc's ``memcpy`` (which
``np.copyto`` calls) writes with non-temporal stores, which skip reading the destination into
the cache first, and the copy rate nearly doubles (measured: 256 MB at about twice the rate of
64 MB; with ``GLIBC_TUNABLES=glibc.cpu.x86_non_temporal_threshold`` set above the size, 256 MB
drops to the 64 MB rate). The kernels' stores are ordinary ones, so a copy below that
threshold (64 MB) is the like-for-like probe for their bytes.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

import numpy as np


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Best wall seconds of ``repeats`` calls of ``fn()``."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def best_of_cpu(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall seconds and best process CPU seconds (user + system) of ``repeats`` calls."""
    wall = cpu = math.inf
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def copy_probe(megabytes: int = 64, repeats: int = 40, threads: int = 1) -> dict[str, float]:
    """``np.copyto`` of a ``megabytes`` float64 array (pages faulted in first), on one thread
    or in ``threads`` contiguous parts copied at once (``np.copyto`` releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    src = np.random.default_rng(0).standard_normal(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    edges = [src.size * i // threads for i in range(threads + 1)]
    parts = [(dst[a:b], src[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    with ThreadPoolExecutor(threads) as pool:
        def copy() -> None:
            if threads == 1:
                np.copyto(dst, src)
            else:
                list(pool.map(lambda part: np.copyto(*part), parts))

        copy()  # the pool's threads started
        wall, cpu = best_of_cpu(copy, repeats)
    moved = 2.0 * src.nbytes
    return {"bytes": moved, "seconds": wall, "cpu_seconds": cpu, "megabytes": float(megabytes),
            "gbs_wall": moved / wall / 1e9, "gbs_cpu": moved / max(cpu, 1e-9) / 1e9, "threads": float(threads)}


def memory_bandwidth_gbs(megabytes: int = 64, repeats: int = 40, per: str = "wall") -> float:
    """Copy bandwidth in GB/s (bytes read + written) per wall second or, ``per="cpu"``, per CPU second."""
    if per not in ("wall", "cpu"):
        raise ValueError(f"per must be 'wall' or 'cpu', got {per!r}")
    return copy_probe(megabytes, repeats)[f"gbs_{per}"]


def gemm_probe(dtype: Any = np.float64, n: int = 1500, repeats: int = 15) -> dict[str, float]:
    """An ``n × n`` GEMM on all BLAS threads and on one (GFLOP/s, best of ``repeats``)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(1).standard_normal((n, n)).astype(dtype)
    b = np.random.default_rng(2).standard_normal((n, n)).astype(dtype)
    a @ b  # warm-up
    flops = 2.0 * n**3
    all_threads = flops / best_of(lambda: a @ b, repeats) / 1e9
    with threadpool_limits(1):
        wall1, cpu1 = best_of_cpu(lambda: a @ b, repeats)
    one = flops / wall1 / 1e9
    cores = os.cpu_count() or 1
    return {"n": float(n), "gflops_all_threads": all_threads, "gflops_one_thread": one,
            "gflops_one_thread_cpu": flops / max(cpu1, 1e-9) / 1e9,
            "gflops": max(all_threads, min(2, cores) * one)}


def gemm_peak_gflops(dtype: Any = np.float64, n: int = 1500, repeats: int = 15) -> float:
    """GEMM peak in GFLOP/s: the larger of the all-thread rate and ``min(2, cores) ×`` one thread's."""
    return gemm_probe(dtype, n, repeats)["gflops"]
