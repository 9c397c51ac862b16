"""Experiment (issue 21, not kept): the audit's surrogate null on one float32 copy of ``Z``.

The null converts each column group of the float64 ``Z`` to float32 at every Lanczos step
(no float32 copy of ``Z``: the null's peak stays a quarter of ``Z``). The variant converts
``Z`` once and hands the float32 copy to :func:`riskmodel.audit.spectrum.null_lambda_max`,
whose groups are then views. Both runs, interleaved, on the 5,000 × 2,520 residuals of
``bench_speed_audit.py``; the variant's null must equal the current one bit for bit.

Writes ``benchmarks/results/experiments/null_float32_copy.json``::

    python benchmarks/experiments/null_float32_copy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_speed_audit import make_residuals  # noqa: E402

from riskmodel.audit import spectrum as sp  # noqa: E402

OUT = HERE.parent / "results" / "experiments" / "null_float32_copy.json"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="600 x 250 (seconds)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    n_stocks, n_dates, n_null = (600, 250, 5) if args.quick else (5000, 2520, 30)
    res = make_residuals(n_stocks, n_dates)
    Z = res.values / res.values.std(0)
    Z = np.asfortranarray((Z - Z.mean(0)) / Z.std(0))
    sp.null_lambda_max(Z[:120, :300], 5, "shuffle", np.random.default_rng(1))  # warm-up

    def current() -> np.ndarray:
        return sp.null_lambda_max(Z, n_null, "shuffle", np.random.default_rng(1))[0]

    def one_copy() -> np.ndarray:
        z32 = np.asfortranarray(Z, dtype=np.float32)
        return sp.null_lambda_max(z32, n_null, "shuffle", np.random.default_rng(1))[0]

    paths = {"current (groups converted at every step)": current, "one float32 copy of Z": one_copy}
    load_before = os.getloadavg()
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(args.repeat):
        for name, fn in paths.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    peaks = {}
    lams = {}
    for name, fn in paths.items():
        tracemalloc.start()
        lams[name] = fn()
        peaks[name] = tracemalloc.get_traced_memory()[1] / Z.nbytes
        tracemalloc.stop()
    a, b = lams.values()
    cur, var = paths
    report = {
        "experiment": "null_float32_copy",
        "quick": args.quick,
        "shape": {"n_dates": n_dates, "n_stocks": n_stocks, "n_null": n_null},
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "rows": [{"name": k, "best_s": min(wall[k]), "median_s": float(np.median(wall[k])),
                  "best_cpu_s": min(cpu[k]), "runs": args.repeat, "peak_x_matrix": peaks[k]} for k in paths],
        "variant_over_current_best": min(wall[var]) / min(wall[cur]),
        "bit_identical": bool(np.array_equal(a, b)),
        "decision": "not kept: the null's peak grows by half of Z for a small part of the audit",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for row in report["rows"]:
        print(f"{row['name']:45s} best {row['best_s']:.3f} s  median {row['median_s']:.3f} s  "
              f"cpu {row['best_cpu_s']:.2f} s  peak {row['peak_x_matrix']:.2f} x Z")
    print("bit-identical:", report["bit_identical"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
