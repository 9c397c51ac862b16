"""Issue 21, rows 2-4: the residual audit, the 1,000-portfolio decomposition and the
out-of-core fit against the former method and against this machine's own limits, in one run.

* **machine limits**, measured here: memory bandwidth from a large numpy copy (bytes read +
  bytes written per second) and the dgemm / sgemm peaks from one large GEMM on all BLAS
  threads;
* **audit** at N stocks x T dates (default 5,000 x 2,520; ``bench_audit.make_residuals``):
  ``rm.audit_residuals`` end to end and the surrogate null alone, the former path
  (``spectrum._NULL_POOL = False``: the groups one after another on BLAS's threads) and the
  new one (the groups on a thread pool, one BLAS thread per GEMM) interleaved, with their
  results compared (the new null is the former one on one BLAS thread bit for bit; against
  the former on several BLAS threads it differs by float32 rounding, in Tracy-Widom units);
* **decomposition**: ``cov.decompose(W)`` of P = 1,000 portfolios with every part taken
  out as a user gets it (``bench_portfolio_risk.structured_decompose``);
* **null convergence**: the null's first batch of surrogates followed for up to 120 Lanczos
  steps, the error of each step count against the converged values in Tracy-Widom units and
  the flop floor of each step count (``null_convergence``);
* **decomposition breakdown**: the grouped kernel's CPU time on one thread with touched and
  with fresh outputs, and the first touch of fresh outputs (``breakdown``);
* **out-of-core**: not run by this script (see ``notes`` in the JSON).

Each workload gets a roofline line: the bytes it must move and the flops it must do, the
time those take at the measured bandwidth and peak, and the measured time's distance to it.
The machine is shared: the load average is recorded before and after, the ratios come from
interleaved runs, and CPU seconds (less disturbed by other processes) are kept next to wall
seconds. Peak memory is tracemalloc's (numpy buffers included) over one run of each path.

    python benchmarks/bench_speed_audit.py            # full size (~10 min on a busy machine), writes results/speed_audit.json
    python benchmarks/bench_speed_audit.py --quick --out /tmp/s.json   # toy sizes (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import best_of, best_of_cpu, copy_probe, gemm_probe  # noqa: E402
from bench_audit import make_residuals  # noqa: E402
from bench_portfolio_risk import make_world, structured_decompose  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "speed_audit.json"


# ----------------------------------------------------------------------------- machine
def machine_limits(quick: bool) -> dict[str, float]:
    """Copy bandwidth (GB/s, bytes read + written) and dgemm / sgemm peaks (GFLOP/s), from the
    shared probes of :mod:`_machine` (``copy_probe``, ``gemm_probe``).

    Each is the best of many short runs (a copy of 64 MB, a 1,500 x 1,500 GEMM), on all
    cores and on one: on a shared machine the best short run is the one that had the
    cores to itself, which is what "the machine's limit" means. ``*_gflop_s`` is the larger
    of the all-thread figure and twice the one-thread figure; ``bandwidth_gb_s`` the larger
    of the one-thread copy and the copy split over the two cores (the workloads run on both;
    64 MB: below the size where glibc's copy switches to non-temporal stores, which the
    kernels' ordinary stores do not use, see :mod:`_machine`).
    """
    copy = copy_probe(8 if quick else 64, 10 if quick else 40)
    cores = min(2, os.cpu_count() or 1)
    both = copy_probe(8 if quick else 64, 10 if quick else 40, threads=cores)
    n = 500 if quick else 1500
    reps = 3 if quick else 15
    out: dict[str, float] = {"copy_bytes": copy["bytes"], "copy_seconds": copy["seconds"],
                             "bandwidth_gb_s_one_thread": copy["gbs_wall"],
                             "bandwidth_gb_s_per_cpu_second": copy["gbs_cpu"],
                             "bandwidth_gb_s_all_cores": both["gbs_wall"], "copy_threads": float(cores),
                             "bandwidth_gb_s": max(copy["gbs_wall"], both["gbs_wall"]),
                             "gemm_n": float(n)}
    for name, dtype in (("dgemm", np.float64), ("sgemm", np.float32)):
        probe = gemm_probe(dtype, n, reps)
        out[f"{name}_gflop_s_all_threads"] = probe["gflops_all_threads"]
        out[f"{name}_gflop_s_one_thread"] = probe["gflops_one_thread"]
        out[f"{name}_gflop_s"] = probe["gflops"]
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak), out


def _interleaved(paths: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, float]]:
    """Best and median wall seconds and best CPU seconds of each path, runs interleaved."""
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(repeat):
        for name, fn in paths.items():
            w, c, _ = _timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    return {k: {"best_s": min(wall[k]), "median_s": float(np.median(wall[k])), "cpu_s": min(cpu[k]),
                "runs": len(wall[k])} for k in paths}


def roofline(name: str, seconds: float, flops: float, bytes_moved: float, peak_gflop_s: float,
             bandwidth_gb_s: float, note: str) -> dict[str, Any]:
    """Time at the machine's limits (the larger of the flop time and the memory time) and the
    measured time as a multiple of it."""
    t_flops = flops / (peak_gflop_s * 1e9)
    t_bytes = bytes_moved / (bandwidth_gb_s * 1e9)
    bound = max(t_flops, t_bytes)
    return {"workload": name, "measured_s": seconds, "flops": flops, "bytes": bytes_moved,
            "flop_time_s": t_flops, "memory_time_s": t_bytes, "limit_s": bound,
            "bound_by": "flops" if t_flops >= t_bytes else "memory", "x_limit": seconds / bound, "note": note}


# ----------------------------------------------------------------------------- audit
def bench_audit(n_stocks: int, n_dates: int, n_null: int, repeat: int, limits: dict) -> dict[str, Any]:
    import riskmodel as rm
    from threadpoolctl import threadpool_limits

    from riskmodel.audit import spectrum as sp

    res = make_residuals(n_stocks, n_dates)
    Z = res.values / res.values.std(0)
    Z = np.asfortranarray((Z - Z.mean(0)) / Z.std(0))
    T, N = Z.shape

    def audit(pool: bool) -> Callable[[], Any]:
        def run() -> Any:
            sp._NULL_POOL = pool
            try:
                return rm.audit_residuals(res, window=n_dates, n_null=n_null)
            finally:
                sp._NULL_POOL = True
        return run

    def null(pool: bool) -> Callable[[], Any]:
        def run() -> Any:
            sp._NULL_POOL = pool
            try:
                return sp.null_lambda_max(Z, n_null, "shuffle", np.random.default_rng(1))
            finally:
                sp._NULL_POOL = True
        return run

    # warm-up of both paths (imports, numba kernels, caches) before the peaks and timings
    small = make_residuals(300, 120)
    for pool in (False, True):
        sp._NULL_POOL = pool
        rm.audit_residuals(small, window=120, n_null=5)
        sp.null_lambda_max(Z[:120, :300], 5, "shuffle", np.random.default_rng(1))
    sp._NULL_POOL = True
    # steps of the Lanczos recurrence (products per surrogate batch), counted on one run
    counted = {"products": 0}
    product = sp._surrogate_gram_product

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted["products"] += 1
        return product(*args, **kwargs)

    sp._surrogate_gram_product = counting
    try:
        peak_new, (lam_new, group) = _peak(null(True))
    finally:
        sp._surrogate_gram_product = product
    peak_old, (lam_old, _) = _peak(null(False))
    with threadpool_limits(1):
        lam_old1, _ = null(False)()
    a, b = math.sqrt(T - 1.0), math.sqrt(N)
    sigma_tw = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0) / T
    null_times = _interleaved({"former": null(False), "new": null(True)}, repeat)

    audit_peak_new, audit_new = _peak(audit(True))
    audit_peak_old, audit_old = _peak(audit(False))
    audit_times = _interleaved({"former": audit(False), "new": audit(True)}, repeat)
    spec_s = best_of(lambda: sp.top_eigenpairs(Z, 20), repeat)
    eig = sp.top_eigenpairs(Z, 20)

    steps = counted["products"]
    S = min(n_null, 32)
    default_steps = steps // max(1, math.ceil(n_null / 32))
    convergence = null_convergence(Z, n_null, default_steps, min(T, 60 if T < 1000 else 120), limits)
    null_flops = steps * 4.0 * T * N * S  # Z_g' X_g and Z_g (.) per group: 2 GEMMs of 2 T w S flops
    null_bytes = steps * (T * N * 8.0 + T * N * 4.0)  # Z read (float64) and its float32 groups written/read in cache
    b_ = min(20 + 10, T)
    spec_flops = T * T * N + (4.0 / 3.0) * T**3 + eig.n_products * 2.0 * T * N * b_
    spec_bytes = (1 + eig.n_products) * T * N * 8.0
    new_s = audit_times["new"]["best_s"]
    return {
        "n_stocks": N, "n_dates": T, "n_null": n_null, "null_group_size": group,
        "lanczos_steps": default_steps,
        "null_convergence": convergence,
        "audit": {**audit_times, "speedup_best": audit_times["former"]["best_s"] / new_s,
                  "peak_x_matrix": {"former": audit_peak_old / (T * N * 8), "new": audit_peak_new / (T * N * 8)}},
        "null": {**null_times, "speedup_best": null_times["former"]["best_s"] / null_times["new"]["best_s"],
                 "peak_x_matrix": {"former": peak_old / (T * N * 8), "new": peak_new / (T * N * 8)}},
        "spectrum_s": spec_s, "spectrum_method": eig.method, "spectrum_products": eig.n_products,
        "agreement": {
            "null_new_equals_former_on_one_blas_thread": bool(np.array_equal(lam_new, lam_old1)),
            "null_max_abs_diff_vs_former_tw_units": float(np.max(np.abs(lam_new - lam_old)) / sigma_tw),
            "audit_null_max_abs_diff_tw_units": float(
                np.max(np.abs(audit_new.null_lambda_max - audit_old.null_lambda_max)) / sigma_tw),
            "audit_null_edge_diff_tw_units": float(abs(audit_new.null_edge - audit_old.null_edge) / sigma_tw),
            "audit_eigenvalues_identical": bool(np.array_equal(audit_new.eigenvalues.values,
                                                               audit_old.eigenvalues.values)),
            "n_significant": [audit_old.n_significant, audit_new.n_significant],
            "n_clusters": [len(audit_old.clusters), len(audit_new.clusters)],
            "tracy_widom_scale": sigma_tw,
        },
        "roofline": [
            roofline("audit null (float32 GEMMs)", null_times["new"]["best_s"], null_flops, null_bytes,
                     limits["sgemm_gflop_s"], limits["bandwidth_gb_s"],
                     f"{steps} products x 4 T N S flops (S={S}); each product reads Z (float64) once"),
            roofline("audit spectrum (float32 Gram + float64 refinement)", spec_s, spec_flops, spec_bytes,
                     limits["sgemm_gflop_s"], limits["bandwidth_gb_s"],
                     "T^2 N (syrk) + 4/3 T^3 (eigh) + products x 2 T N b; at the sgemm peak (a lower bound)"),
            roofline("audit end to end", new_s, null_flops + spec_flops, null_bytes + spec_bytes,
                     limits["sgemm_gflop_s"], limits["bandwidth_gb_s"], "null + spectrum; the rest not counted"),
        ],
    }


def null_convergence(Z: np.ndarray, n_null: int, default_steps: int, max_steps: int, limits: dict,
                     quantile: float = 0.99) -> dict[str, Any]:
    """How far the null's surrogate ``lambda_max`` are from their converged values after j
    Lanczos steps, in Tracy-Widom units, and what j steps cost at the sgemm peak.

    The first batch of the audit's null (the ``"shuffle"`` plan and start vectors that
    ``null_lambda_max(Z, n_null, "shuffle", default_rng(1))`` draws) is run for ``max_steps``
    steps, its top Ritz values recorded after every step (``spectrum._lockstep_lanczos_top``'s
    ``trace``); the last are the reference (``converged_change_tw`` is their largest move over
    the last 10 steps). For each j: the median and the most negative error (Ritz values
    approach from below), the error of the ``quantile`` edge, and the time of ``4 T N S j``
    flops at the sgemm peak. ``fewest_steps_*`` are the smallest j meeting the bounds of
    ``tests/audit/test_residuals.py::test_float32_null_matches_converged_float64_null``
    (median and edge within 5% of sigma, every surrogate within 0.25 sigma) and the first two
    of them only.
    """
    from riskmodel.audit import spectrum as sp

    T, N = Z.shape
    S = min(n_null, 32)
    rng = np.random.default_rng(1)
    plan = sp.surrogate_plan(T, N, S, "shuffle", rng)
    trace: list[np.ndarray] = []
    sp._lockstep_lanczos_top(Z, plan, S, rng, 0.0, max_steps, np.float32, trace=trace)
    theta = np.array(trace) / T  # theta[i]: after i + 5 steps
    a, b = math.sqrt(T - 1.0), math.sqrt(N)
    sigma = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0) / T
    ref = theta[-1]
    err = (theta - ref) / sigma
    edge = (np.quantile(theta, quantile, axis=1) - np.quantile(ref, quantile)) / sigma
    median = np.median(np.abs(err), axis=1)
    worst = err.min(axis=1)
    steps = np.arange(5, 5 + theta.shape[0])
    flops_per_step = 4.0 * T * N * S
    peak = limits["sgemm_gflop_s"] * 1e9

    def fewest(ok: np.ndarray) -> int | None:
        # the first j from which the bounds hold at every later step
        bad = np.flatnonzero(~ok)
        first = 0 if bad.size == 0 else bad[-1] + 1
        return int(steps[first]) if first < steps.size - 1 else None

    central = (median < 0.05) & (np.abs(edge) < 0.05)
    table = []
    for j in sorted({15, 20, 25, 30, 35, 40, default_steps, 60}):
        if 5 <= j < 5 + theta.shape[0] - 1:
            i = j - 5
            table.append({"steps": j, "median_abs_error_tw": float(median[i]), "worst_error_tw": float(worst[i]),
                          "edge_error_tw": float(edge[i]), "null_floor_s": j * flops_per_step / peak})
    fewest_all = fewest(central & (worst > -0.25))
    fewest_central = fewest(central)
    gram_floor = T * T * min(T, N) / peak if T <= N else N * N * T / peak
    return {
        "surrogates": S, "max_steps": int(steps[-1]), "default_steps": default_steps, "quantile": quantile,
        "converged_change_tw": float(np.abs(theta[-1] - theta[-11]).max() / sigma) if theta.shape[0] > 10 else None,
        "tracy_widom_scale": sigma, "by_steps": table,
        "fewest_steps_all_bounds": fewest_all, "fewest_steps_median_and_edge": fewest_central,
        "null_floor_s_default_steps": default_steps * flops_per_step / peak,
        "null_floor_s_fewest_central": None if fewest_central is None else fewest_central * flops_per_step / peak,
        "spectrum_gram_floor_s": gram_floor,
        "note": "floors: the flops at the sgemm peak (null: 4 T N S per step; spectrum: the T^2 N of the "
                "float32 Gram matrix alone, without its eigendecomposition or the refinement)",
    }


# ----------------------------------------------------------------------------- decomposition
def bench_decomposition(n_stocks: int, n_portfolios: int, repeat: int, limits: dict) -> dict[str, Any]:
    from riskmodel.covariance.structured import StructuredCovariance

    B, F, d = make_world(n_stocks, 70)
    cov = StructuredCovariance.from_arrays(B, F, d)
    W = np.random.default_rng(1).normal(size=(n_portfolios, n_stocks)) / n_stocks
    structured_decompose(cov, W)
    times = _interleaved({"current": lambda: structured_decompose(cov, W)}, repeat)
    peak, _ = _peak(lambda: structured_decompose(cov, W))
    breakdown = decomposition_breakdown(cov, W, repeat)
    groups = cov._groups
    kd = groups.dense_t.shape[0] if groups is not None else 70
    P, N = W.shape
    flops = P * N * (4.0 * kd + 9.0)  # x_dense and B F x over the dense columns, specific, scaling
    bytes_moved = P * N * 8.0 * (1 + 2 + 2)  # read W, write MCR and CR, the OS zeroing their fresh pages
    return {
        "n_stocks": N, "n_portfolios": P, "dense_columns": kd, "method_changed": False,
        **times, "peak_mb": peak / 2**20, "breakdown": breakdown,
        "roofline": [roofline("decomposition, 1,000 portfolios", times["current"]["best_s"], flops, bytes_moved,
                              limits["dgemm_gflop_s"], limits["bandwidth_gb_s"],
                              "read W, write MCR and CR (+ the zeroing of their fresh pages)")],
    }


def decomposition_breakdown(cov: Any, W: np.ndarray, repeat: int) -> dict[str, float]:
    """Where the decomposition's time goes, in CPU milliseconds on one thread (less disturbed
    by other processes than wall time): the grouped kernel alone (``MODE_DECOMPOSE``, its
    two ``(P, N)`` outputs already faulted in), the same with fresh outputs as a call makes
    them, and the first touch of two fresh ``(P, N)`` arrays against a fill of touched ones
    (the pages the OS zeroes for every call's outputs)."""
    from riskmodel.kernels import kernel_threads
    from riskmodel.kernels.operator import MODE_DECOMPOSE, grouped_rows_kernel

    g = cov._groups
    P, N = W.shape
    m = cov._F.shape[0]
    small = [np.empty((P, m)), np.empty((P, m)), np.empty(P), np.empty(P)]
    touched = [np.zeros((P, N)), np.zeros((P, N))]
    args = (W, MODE_DECOMPOSE, g.dense_t, g.dense_cols, g.codes, g.n_groups, g.fold_cols, *g._nonzeros, cov._F, cov._d)

    def kernel(outs: list[np.ndarray]) -> None:
        with kernel_threads(1):
            grouped_rows_kernel(*args, *small, *outs)

    def fresh_kernel() -> None:
        kernel([np.empty((P, N)), np.empty((P, N))])

    def fresh_fill() -> None:
        for _ in range(2):
            np.empty((P, N)).fill(0.0)

    def touched_fill() -> None:
        for a in touched:
            a.fill(0.0)

    kernel(touched)
    reps = max(5, repeat)
    return {"kernel_one_thread_cpu_ms": best_of_cpu(lambda: kernel(touched), reps)[1] * 1e3,
            "kernel_fresh_outputs_one_thread_cpu_ms": best_of_cpu(fresh_kernel, reps)[1] * 1e3,
            "fresh_outputs_fill_cpu_ms": best_of_cpu(fresh_fill, reps)[1] * 1e3,
            "touched_outputs_fill_cpu_ms": best_of_cpu(touched_fill, reps)[1] * 1e3}


# ----------------------------------------------------------------------------- main
def _threads() -> dict[str, Any]:
    import numba
    from threadpoolctl import threadpool_info

    return {"cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
            "blas": [{k: p.get(k) for k in ("internal_api", "version", "num_threads")} for p in threadpool_info()]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes (seconds)")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--out", "--output", dest="out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    quick = args.quick
    repeat = args.repeat or (1 if quick else 3)
    load_before = os.getloadavg()
    t_start = time.time()
    limits = machine_limits(quick)
    print(f"machine: copy {limits['bandwidth_gb_s']:.1f} GB/s, dgemm {limits['dgemm_gflop_s']:.0f} GFLOP/s, "
          f"sgemm {limits['sgemm_gflop_s']:.0f} GFLOP/s", flush=True)
    n_stocks, n_dates = (300, 120) if quick else (5000, 2520)
    audit = bench_audit(n_stocks, n_dates, 5 if quick else 30, repeat, limits)
    print(f"audit {n_stocks}x{n_dates}: former {audit['audit']['former']['best_s']:.2f}s, "
          f"new {audit['audit']['new']['best_s']:.2f}s; null former {audit['null']['former']['best_s']:.2f}s, "
          f"new {audit['null']['new']['best_s']:.2f}s", flush=True)
    dec = bench_decomposition(500 if quick else 5000, 100 if quick else 1000, 5 if quick else 20, limits)
    print(f"decomposition: {dec['current']['best_s'] * 1e3:.1f} ms best, {dec['current']['median_s'] * 1e3:.1f} median",
          flush=True)
    load_after = os.getloadavg()
    try:
        import resource

        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:  # pragma: no cover - not on POSIX
        peak_rss_mb = None
    result = {
        "benchmark": "speed_audit",
        "quick": quick,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "wall_seconds": time.time() - t_start,
        "machine": {"python": platform.python_version(), "numpy": np.__version__, **_threads()},
        "limits": limits,
        "peak_rss_mb": peak_rss_mb,
        "audit": audit,
        "decomposition": dec,
        "out_of_core": {"run": False, "note": "not run by this script: the out-of-core fit (models/chunked.py) "
                        "was not changed in this round; its last measurement is benchmarks/results/scale.json"},
        "notes": "former = the null's groups one after another on BLAS's own threads (spectrum._NULL_POOL = False); "
                 "new = the groups on a thread pool, one BLAS thread per GEMM. Ratios are from interleaved runs "
                 "in this one process; the machine is shared (load averages above).",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
