"""Time ``riskmodel demo`` as a new user meets it: a fresh virtual environment, an empty
numba cache, the first run and then a second one.

::

    python -m venv /tmp/venv && /tmp/venv/bin/pip install .
    python benchmarks/demo_first_run.py --venv /tmp/venv -o benchmarks/results/demo_first_run.json

The runs use the venv's ``riskmodel`` console script from an empty folder, with
``PYTHONPATH`` and ``NUMBA_CACHE_DIR`` removed from the environment, so the installed
package is used and numba caches its kernels where a user's would go (``__pycache__``
folders inside the installed package). Before the first run, the compiled kernels cached
there (``*.nbi``, ``*.nbc``) are deleted, so a rerun of this script measures a first run
again. The JSON records the wall time of each run, its CPU time (user + system of the
demo and the compile helper it waits for), the load average and the machine (cores,
Python, numba): on a shared machine the load stretches the wall time, the CPU time much
less.
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


def _package_folder(python: Path) -> Path:
    code = "import pathlib, riskmodel; print(pathlib.Path(riskmodel.__file__).parent)"
    return Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                               env=_clean_env(), cwd=tempfile.gettempdir()).stdout.strip())


def _versions(python: Path) -> dict:
    code = ("import json, numba, numpy, sys; print(json.dumps({'python': sys.version.split()[0], "
            "'numba': numba.__version__, 'numpy': numpy.__version__}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                                     env=_clean_env(), cwd=tempfile.gettempdir()).stdout)


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR")}
    env["MPLBACKEND"] = "Agg"
    return env


def _cache_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")]


def _run(script: Path, output: Path) -> dict:
    load_before = os.getloadavg()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([str(script), "demo", "-o", str(output)], capture_output=True, text=True, env=_clean_env(),
                          cwd=output.parent)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"riskmodel demo failed ({done.returncode}): {done.stderr[-2000:]}")
    last = [line for line in done.stdout.splitlines() if line.startswith("wrote ")]
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "demo_says": last[-1] if last else None, "stderr_first_line": (done.stderr.splitlines() or [""])[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", required=True, help="the fresh virtual environment riskmodel was pip-installed into")
    parser.add_argument("-o", "--output", default="benchmarks/results/demo_first_run.json")
    args = parser.parse_args(argv)
    venv = Path(args.venv)
    python, script = venv / "bin" / "python", venv / "bin" / "riskmodel"
    package = _package_folder(python)
    removed = _cache_files(package)
    for path in removed:
        path.unlink()
    record = {
        "what": "riskmodel demo (600 stocks x 1,000 days), first and second run in a fresh venv",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), **_versions(python)},
        "installed_package": str(package),
        "cache_files_removed_before_first_run": len(removed),
    }
    with tempfile.TemporaryDirectory(prefix="rm-first-run-") as tmp:
        record["first_run"] = _run(script, Path(tmp) / "demo1")
        record["cache_files_after_first_run"] = len(_cache_files(package))
        record["second_run"] = _run(script, Path(tmp) / "demo2")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
