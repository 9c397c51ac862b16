"""Benchmark of the residual audit against the dense path, in one run.

For each size (N stocks x T dates) it times, with tracemalloc peaks:

* ``audit``   -- ``rm.audit_residuals`` end to end (standardise, spectrum, surrogate null,
  clusters, bias statistics);
* ``spectrum`` -- the leading 20 eigenvalues from the ``T x N`` matrix (Gram of the
  smaller side or block Krylov; what the audit uses);
* ``dense``   -- the textbook path: the ``N x N`` correlation matrix and ``np.linalg.eigh``
  (no null, no clusters: a lower bound on the dense audit).

Peaks are reported as multiples of the residual matrix (float64 ``T x N``).  Results go to
``benchmarks/results/audit.json``.  ``--quick`` runs toy sizes (used by the test).

    python benchmarks/bench_audit.py            # N=5,000 with T=504 and T=2,520
    python benchmarks/bench_audit.py --quick
    python benchmarks/bench_audit.py --sizes 5000x2520 --out /tmp/audit.json   # one size
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the timing loop the speed benchmarks share
from _machine import best_of

RESULTS = Path(__file__).resolve().parent / "results" / "audit.json"
FULL_SIZES = [(5000, 504), (5000, 2520)]
QUICK_SIZES = [(300, 120)]


def make_residuals(n_stocks: int, n_dates: int, seed: int = 0) -> xr.DataArray:
    """Student-t residuals with a hidden 100-name block (rho 0.15)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_t(5, size=(n_dates, n_stocks)) / math.sqrt(5 / 3)
    k = min(100, n_stocks // 5)
    idx = rng.choice(n_stocks, k, replace=False)
    e[:, idx] = math.sqrt(0.15) * rng.standard_normal((n_dates, 1)) + math.sqrt(0.85) * e[:, idx]
    e *= 0.015
    dates = np.datetime64("2010-01-04") + np.arange(n_dates).astype("timedelta64[D]")
    return xr.DataArray(
        e, dims=("date", "stock"), coords={"date": dates, "stock": [f"S{i:05d}" for i in range(n_stocks)]}
    )


def measure(fn, repeat: int = 1) -> tuple[float, int, object]:
    """Best wall time over ``repeat`` runs and the tracemalloc peak (bytes) of the first."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best_of(fn, repeat), peak, out


def bench_size(n_stocks: int, n_dates: int, repeat: int, n_null: int) -> dict:
    import riskmodel as rm
    from riskmodel.audit import spectrum as sp

    res = make_residuals(n_stocks, n_dates)
    matrix_bytes = res.values.nbytes
    Z = res.values / res.values.std(0)
    Z -= Z.mean(0)

    t_audit, m_audit, audit = measure(lambda: rm.audit_residuals(res, window=n_dates, n_null=n_null), repeat)
    t_spec, m_spec, spec = measure(lambda: sp.top_eigenpairs(Z, 20), repeat)

    def dense():
        C = np.corrcoef(res.values, rowvar=False)
        return np.linalg.eigh(C)[0][::-1][:20]

    t_dense, m_dense, ev_dense = measure(dense, repeat)
    return {
        "n_stocks": n_stocks,
        "n_dates": n_dates,
        "residual_matrix_mb": matrix_bytes / 2**20,
        "audit_seconds": t_audit,
        "audit_peak_x_matrix": m_audit / matrix_bytes,
        "spectrum_seconds": t_spec,
        "spectrum_method": spec.method,
        "spectrum_peak_x_matrix": m_spec / matrix_bytes,
        "dense_seconds": t_dense,
        "dense_peak_x_matrix": m_dense / matrix_bytes,
        "dense_over_spectrum_time": t_dense / t_spec,
        "dense_over_audit_time": t_dense / t_audit,
        "max_abs_eigenvalue_diff_vs_dense": float(np.max(np.abs(spec.values - ev_dense))),
        "n_significant": audit.n_significant,
        "n_clusters": len(audit.clusters),
        "null_group_size": audit.null_group_size,
        "n_null": n_null,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes (seconds)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--sizes", nargs="+", metavar="NxT", default=None,
        help="sizes to run instead of the defaults, e.g. --sizes 5000x2520",
    )
    args = ap.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    n_null = 10 if args.quick else 30
    # warm-up (imports, BLAS threads, scipy) outside the timings
    load_before = os.getloadavg()
    bench_size(*QUICK_SIZES[0], repeat=1, n_null=5)
    rows = []
    for n, t in sizes:
        row = bench_size(n, t, args.repeat, n_null)
        rows.append(row)
        print(
            f"N={n:>5} T={t:>5}: audit {row['audit_seconds']:.2f}s (peak {row['audit_peak_x_matrix']:.2f}x) | "
            f"spectrum {row['spectrum_seconds']:.2f}s [{row['spectrum_method']}] "
            f"(peak {row['spectrum_peak_x_matrix']:.2f}x) | dense corr+eigh {row['dense_seconds']:.2f}s "
            f"(peak {row['dense_peak_x_matrix']:.2f}x) | dense/spectrum {row['dense_over_spectrum_time']:.1f}x, "
            f"max |dlambda| {row['max_abs_eigenvalue_diff_vs_dense']:.1e}"
        )
    result = {
        "benchmark": "audit",
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "rows": rows,
        "conditions": {"load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
                       "repeat": args.repeat, "note": "shared machine; audit and dense timed in the same run"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
