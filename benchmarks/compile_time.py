"""Time numba's compilation as a fit meets it: ``FactorRiskModel().fit`` of a small panel in a
fresh process with an empty kernel cache, then again in a fresh process with the cache it left.

::

    python benchmarks/compile_time.py -o benchmarks/results/compile_time.json

The panel (200 stocks × 400 dates, 10 industries, two styles, ``rm.simulate``) is built and
saved first, in this process; each fit then runs in its own subprocess with ``NUMBA_CACHE_DIR``
pointing at a new, empty folder (``PYTHONPATH`` puts this checkout first), so the first fit
compiles every kernel it calls and the second finds them cached. Below 2²⁰ cells the panel
checks run their numpy code, so they compile nothing. The JSON records, for each run, the
wall and CPU seconds (user + system, every thread) of the fit alone and of the whole process
(start-up, imports and loading the panel included), with the load average before and after,
the machine and the versions: on a shared machine the load stretches the wall time, the CPU
time much less. About a minute on a quiet 2-core machine, two on a busy one; not part of
``riskmodel bench`` (a first run cannot be repeated within a timed suite).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compile_time.json"
PANEL = {"n_stocks": 200, "n_days": 400, "n_industries": 10, "styles": ["size", "value"], "seed": 0}

CHILD = """
import json, resource, sys, time
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
import riskmodel as rm
panel = rm.load(sys.argv[1]).load()
wall, cpu0 = time.perf_counter(), cpu()
rm.FactorRiskModel().fit(panel)
print(json.dumps({"fit_wall_seconds": time.perf_counter() - wall, "fit_cpu_seconds": cpu() - cpu0}))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed_fit(panel_path: Path, cache_dir: Path) -> dict[str, Any]:
    """One fit in a fresh process whose numba cache is ``cache_dir``: the fit's and the process's times."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    cached_before = sum(1 for _ in cache_dir.rglob("*.nbc"))
    load_before, wall, cpu = _load(), time.perf_counter(), _children_cpu()
    out = subprocess.run([sys.executable, "-c", CHILD, str(panel_path)], env=env, capture_output=True, text=True,
                         check=True)
    record = {"process_wall_seconds": time.perf_counter() - wall, "process_cpu_seconds": _children_cpu() - cpu,
              **json.loads(out.stdout.strip().splitlines()[-1]), "load_average_before": load_before,
              "load_average_after": _load(), "cached_kernels_before": cached_before,
              "cached_kernels_after": sum(1 for _ in cache_dir.rglob("*.nbc"))}
    return record


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import numba
    import numpy as np

    import riskmodel as rm

    with tempfile.TemporaryDirectory(prefix="rm-compile-") as tmp:
        panel_path = Path(tmp) / "panel.nc"
        panel = rm.simulate(PANEL["n_stocks"], PANEL["n_days"], seed=PANEL["seed"], n_industries=PANEL["n_industries"],
                            styles=PANEL["styles"])
        rm.save(panel, panel_path)
        cache_dir = Path(tmp) / "numba_cache"
        cache_dir.mkdir()
        first = timed_fit(panel_path, cache_dir)
        second = timed_fit(panel_path, cache_dir)
    report = {
        "benchmark": "compile_time",
        "what": "FactorRiskModel().fit of a simulated panel in a fresh process: first with an empty numba cache, "
                "then with the cache the first run left",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "panel": PANEL,
        "first_run": first,
        "second_run": second,
        "compile_seconds_estimate": first["fit_wall_seconds"] - second["fit_wall_seconds"],
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__},
        "conditions": {"load_average_before": first["load_average_before"],
                       "load_average_after": second["load_average_after"],
                       "note": "each run a fresh process; wall and CPU (user + system) of the fit alone and of the process"},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for name in ("first_run", "second_run"):
        run = report[name]
        print(f"{name}: fit {run['fit_wall_seconds']:.1f} s ({run['fit_cpu_seconds']:.1f} CPU s), process "
              f"{run['process_wall_seconds']:.1f} s ({run['process_cpu_seconds']:.1f} CPU s), kernels cached "
              f"{run['cached_kernels_before']} -> {run['cached_kernels_after']}")
    return report


if __name__ == "__main__":
    main()
