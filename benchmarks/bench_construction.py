"""Benchmark of portfolio construction on the structured operator (issue 18).

1. Unconstrained global minimum variance ``Σ⁻¹1 / 1ᵀΣ⁻¹1`` by Woodbury at N = 5,000,
   m = 70 (market + 60 industries + 9 styles, simulated): cold (a new operator, so the
   m × m Cholesky set-up is included) and warm (cached). Target ≤ 5 ms.
2. Long-only fully invested minimum variance three ways: cvxpy with ``optimise``'s default
   solver for a QP (OSQP, polished) in factor form
   ``‖Gᵀw‖² + Σ d w²`` (``G = B L_f``) against the same problem written with a dense
   ``quad_form(w, Σ)``, and the active set of Woodbury solves
   (:func:`riskmodel.construction.optimisation.long_only_min_variance`): seconds (problem
   build + solve), and the largest weight differences.
   Target at N = 5,000: ≤ 2 s and ≥ 10× faster than dense, weights equal to 1e-6. The dense
   problem is measured at smaller N (default 300 and 1,000) and, with ``--dense-full``,
   at 5,000 in a child process stopped after ``--dense-timeout`` seconds.

Run: ``python benchmarks/bench_construction.py`` (about 2-4 minutes). Prints a table and
writes ``benchmarks/results/construction.json``.
"""

from __future__ import annotations

import os

# one BLAS thread: on a shared 2-core machine several BLAS threads per process thrash
# (a run with --threads N sets them before numpy is imported)
if "--threads" in os.sys.argv:
    _threads = os.sys.argv[os.sys.argv.index("--threads") + 1]
else:
    _threads = "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

import argparse
import json
import multiprocessing as mp
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "construction.json"


def simulated_covariance(n: int, n_industries: int = 60, n_styles: int = 9, seed: int = 0) -> Any:
    """A StructuredCovariance like a real model's: market, industries, styles (daily units)."""
    from riskmodel.covariance.structured import StructuredCovariance

    rng = np.random.default_rng(seed)
    m = 1 + n_industries + n_styles
    B = np.zeros((n, m))
    B[:, 0] = 1.0
    B[np.arange(n), 1 + rng.integers(0, n_industries, n)] = 1.0
    B[:, 1 + n_industries :] = rng.standard_normal((n, n_styles))
    vols = np.concatenate([[0.011], np.full(n_industries, 0.006), np.full(n_styles, 0.003)])
    A = rng.standard_normal((m, m)) * 0.3
    corr = A @ A.T + np.eye(m)
    corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    F = corr * np.outer(vols, vols)
    d = (rng.uniform(0.008, 0.025, n)) ** 2
    return StructuredCovariance.from_arrays(B, F, d)


def time_gmv(n: int, repeats: int = 50) -> dict[str, float]:
    cov = simulated_covariance(n)
    B, F, d = (np.asarray(x.to_numpy()) for x in (cov.exposures, cov.factor_cov, cov.specific_var))
    from riskmodel.covariance.structured import StructuredCovariance

    cold = []
    for _ in range(max(5, repeats // 5)):
        fresh = StructuredCovariance.from_arrays(B, F, d)
        tic = time.perf_counter()
        fresh.min_variance_weights()
        cold.append(time.perf_counter() - tic)
    warm = []
    for _ in range(repeats):
        tic = time.perf_counter()
        w = cov.min_variance_weights()
        warm.append(time.perf_counter() - tic)
    w_dense = np.linalg.solve(cov.to_dense(), np.ones(n)) if n <= 5000 else None
    err = float(np.abs(np.asarray(w) - w_dense / w_dense.sum()).max()) if w_dense is not None else float("nan")
    return {"n": n, "m": int(cov.n_factors), "cold_ms": 1e3 * float(np.median(cold)),
            "warm_ms": 1e3 * float(np.median(warm)), "max_abs_diff_vs_dense_solve": err}


def solve_long_only(n: int, form: str) -> tuple[float, np.ndarray]:
    from riskmodel.construction.optimisation import optimise

    cov = simulated_covariance(n)
    tic = time.perf_counter()
    w = optimise(cov, long_only=True, form=form).to_numpy()
    return time.perf_counter() - tic, w


def active_set_long_only(n: int) -> tuple[float, np.ndarray]:
    from riskmodel.construction.optimisation import long_only_min_variance

    cov = simulated_covariance(n)
    tic = time.perf_counter()
    w = long_only_min_variance(cov).to_numpy()
    return time.perf_counter() - tic, w


def _child(n: int, form: str, queue: Any) -> None:
    seconds, w = solve_long_only(n, form)
    queue.put((seconds, w))


def solve_in_child(n: int, form: str, timeout: float) -> tuple[float, np.ndarray | None]:
    """Solve in a child process, stopped after ``timeout`` seconds: (seconds or nan, weights or None)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(n, form, queue))
    proc.start()
    try:
        seconds, w = queue.get(timeout=timeout)
    except Exception:  # noqa: BLE001 - queue.Empty after the timeout
        proc.terminate()
        proc.join()
        return float("nan"), None
    proc.join()
    return seconds, w


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--dense-sizes", default="300,1000")
    p.add_argument("--dense-full", action="store_true", help="also try the dense problem at --n (child process)")
    p.add_argument("--dense-timeout", type=float, default=180.0)
    p.add_argument("--threads", default="1", help="BLAS threads (set before numpy is imported)")
    p.add_argument("-o", "--out", default=str(RESULTS))
    args = p.parse_args()

    gmv = time_gmv(args.n)
    print(f"unconstrained GMV, N={gmv['n']:,}, m={gmv['m']}: cold {gmv['cold_ms']:.2f} ms, warm {gmv['warm_ms']:.2f} ms "
          f"(target <= 5 ms); max |w - dense solve| = {gmv['max_abs_diff_vs_dense_solve']:.1e}")
    solve_long_only(50, "factor")  # warm-up: cvxpy's import and first canonicalisation are not timed
    solve_long_only(50, "dense")
    sizes = [int(s) for s in args.dense_sizes.split(",") if s] + ([args.n] if args.dense_full else [])
    rows = []
    for n in sorted(set(sizes + [args.n])):
        f_sec, w_f = solve_long_only(n, "factor")
        a_sec, w_a = active_set_long_only(n)
        if n in sizes:
            d_sec, w_d = solve_in_child(n, "dense", args.dense_timeout) if n == args.n else solve_long_only(n, "dense")
        else:
            d_sec, w_d = float("nan"), None
        diff = float(np.abs(w_f - w_d).max()) if w_d is not None else float("nan")
        rows.append({"n": n, "factor_s": f_sec, "active_set_s": a_sec, "dense_s": d_sec, "speedup": d_sec / f_sec,
                     "speedup_active_set": d_sec / a_sec, "max_abs_weight_diff": diff,
                     "max_abs_diff_active_set_vs_factor": float(np.abs(w_a - w_f).max()),
                     "n_held": int((w_f > 1e-6).sum())})
    print(f"\nlong-only minimum variance, cvxpy {_cvxpy_version()} + optimise()'s default solver for a QP, "
          f"OSQP {_version('osqp')} polished (build + solve)")
    print(f"{'N':>6} {'factor s':>9} {'dense s':>9} {'speedup':>8} {'max|dw|':>9} {'held':>5} {'active-set s':>13} {'speedup':>8} {'|dw| vs factor':>15}")
    for r in rows:
        print(f"{r['n']:>6} {r['factor_s']:>9.3f} {r['dense_s']:>9.3f} {r['speedup']:>8.1f} {r['max_abs_weight_diff']:>9.1e} {r['n_held']:>5}"
              f" {r['active_set_s']:>13.3f} {r['speedup_active_set']:>8.1f} {r['max_abs_diff_active_set_vs_factor']:>15.1e}")
    if not args.dense_full:
        print(f"(dense quad_form not run at N={args.n:,}: pass --dense-full; its time grows about as N^2-N^3, see the smaller N)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "load_average_1min": os.getloadavg()[0]},
        "solver": {"cvxpy": _cvxpy_version(), "qp": "OSQP (polished; optimise's default for a QP)",
                   "osqp": _version("osqp")},
        "gmv": gmv, "long_only": rows, "dense_full_attempted": bool(args.dense_full),
        "dense_timeout_s": args.dense_timeout,
        "targets": {"gmv_ms": 5.0, "long_only_s": 2.0, "speedup": 10.0, "weights_atol": 1e-6},
    }, indent=2, default=lambda v: None if isinstance(v, float) and not np.isfinite(v) else v) + "\n")
    print(f"wrote {out}")


def _cvxpy_version() -> str:
    import cvxpy

    return cvxpy.__version__


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
