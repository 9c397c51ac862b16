"""Benchmark: every numba kernel against its plain numpy twin, one pair at a time.

The pairs come from the registry ``tests/kernels/twins/`` (the one that drives
``tests/kernels/test_twins.py``): for each kernel entry point the package calls, the
registry gives the kernel's runner (outputs preallocated, as the package calls it), the
numpy twin, a maker of random inputs and the sizes. This script makes the inputs of the
``"full"`` size (``--quick``: ``"quick"``), compiles the kernel on the test size, then per
pair:

* runs kernel and twin once under ``tracemalloc`` (peak of the numpy allocations: the
  outputs and the twin's temporaries; numba's own scratch arrays are not seen) and checks
  they agree to the registry's tolerance (the largest difference, relative to each output's
  largest magnitude, is printed);
* times the kernel (best of ``--repeat``) and the twin (best of ``--twin-repeat``).

A ``"full"`` size is the largest at which the twin, often a Python loop over dates or
stocks, still runs in seconds to a minute (see each entry's ``sizes``); the ratio twin /
kernel is what to read. The twins run with ``--blas-threads`` BLAS threads (default 1:
after a parallel numba kernel its threads still spin, and a multi-threaded BLAS then
fights them for the cores); the kernels use numba's threads. Prints a table and writes JSON
to ``benchmarks/results/kernels.json`` (``--output``).

Usage::

    python benchmarks/bench_kernels.py --quick --output /tmp/kernels.json   # seconds
    python benchmarks/bench_kernels.py                                      # full sizes
    python benchmarks/bench_kernels.py --only wls.wls_factor_returns specific.shrink_kernel
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
sys.path.insert(0, str(ROOT))  # the registry lives in tests/kernels/twins/

import numba  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tests.kernels.twins import KernelTwin, registry  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "kernels.json"


def _traced(fn, *args):
    """``fn(*args)`` and the peak of the numpy allocations during the call (bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def _best_time(fn, arg, repeat: int) -> float:
    best = np.inf
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - start)
    return best


def bench_pair(entry: KernelTwin, size: str, repeat: int, twin_repeat: int, blas_threads: int) -> dict:
    """Time one kernel against its twin at ``size``; check that they agree."""
    entry.run(entry.inputs("test"))  # compile (or load from numba's cache) outside the timings
    inputs = entry.inputs(size)
    got, kernel_peak = _traced(entry.run, inputs)
    with threadpool_limits(blas_threads):
        ref, twin_peak = _traced(entry.twin, inputs)
        twin_seconds = _best_time(entry.twin, inputs, twin_repeat)
    try:
        max_diff, agrees = entry.check(got, ref), True
    except AssertionError as exc:  # reported, not raised: the table shows every pair
        max_diff, agrees = float("nan"), False
        print(f"{entry.name}: kernel and twin disagree: {str(exc).splitlines()[0]}", file=sys.stderr)
    kernel_seconds = _best_time(entry.run, inputs, repeat)
    return {
        "name": entry.name,
        "size": {key: int(value) for key, value in entry.sizes[size].items()},
        "kernel_seconds": kernel_seconds,
        "twin_seconds": twin_seconds,
        "twin_over_kernel": twin_seconds / kernel_seconds,
        "kernel_peak_mb": kernel_peak / 2**20,
        "twin_peak_mb": twin_peak / 2**20,
        "agrees": agrees,
        "max_scaled_diff": max_diff,
    }


def _table(rows: list[dict]) -> str:
    sizes = [" ".join(f"{k}={v}" for k, v in r["size"].items()) for r in rows]
    wn = max([len("kernel")] + [len(r["name"]) for r in rows])
    ws = max([len("size")] + [len(s) for s in sizes])
    head = (f"{'kernel':<{wn}}  {'size':<{ws}}  {'kernel s':>9} {'twin s':>9} {'twin/kernel':>11} "
            f"{'peak MB kernel/twin':>19} {'max diff':>9}")
    lines = [head, "-" * len(head)]
    for r, size in zip(rows, sizes):
        diff = f"{r['max_scaled_diff']:.1e}" if r["agrees"] else "DISAGREE"
        peaks = f"{r['kernel_peak_mb']:.1f} / {r['twin_peak_mb']:.1f}"
        lines.append(f"{r['name']:<{wn}}  {size:<{ws}}  {r['kernel_seconds']:>9.4f} {r['twin_seconds']:>9.4f} "
                     f"{r['twin_over_kernel']:>11.1f} {peaks:>19} {diff:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the registry's quick sizes (seconds)")
    parser.add_argument("--output", "--out", type=Path, default=RESULTS, help="JSON file to write")
    parser.add_argument("--repeat", type=int, default=3, help="kernel timings (best of)")
    parser.add_argument("--twin-repeat", type=int, default=1, help="twin timings (best of)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads of the twins")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these registry entries only")
    args = parser.parse_args(argv)
    entries = registry()
    names = sorted(entries) if not args.only else args.only
    unknown = sorted(set(names) - set(entries))
    if unknown:
        parser.error(f"not in the registry: {unknown}; known: {sorted(entries)}")
    size = "quick" if args.quick else "full"
    rows = []
    for name in names:
        rows.append(bench_pair(entries[name], size, args.repeat, args.twin_repeat, args.blas_threads))
        print(f"{name}: kernel {rows[-1]['kernel_seconds']:.4f} s, twin {rows[-1]['twin_seconds']:.4f} s", flush=True)
    print(_table(rows))
    result = {
        "benchmark": "kernels",
        "quick": args.quick,
        "size": size,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
