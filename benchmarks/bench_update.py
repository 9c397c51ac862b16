"""Daily update against a full refit, in one run (issue 20): writes benchmarks/results/update.json.

On the cached 5,000 x 2,520 benchmark panel of ``bench_full_fit.py``:

1. a full fit on all 2,520 dates (the refit a daily job would otherwise run), timed warm: the
   process's second full fit (the first, which also first-touches its memory, is recorded too);
2. a fit on the first 2,520 - D dates (D = 250), its update state built once
   (:func:`riskmodel.models.update_state.build_state`), then D consecutive daily updates
   through :func:`riskmodel.models.update.advance` (the API's computation: the new date's
   arrays and the next state), each timed; the D updated dates are compared with the refit's
   (largest relative difference per array, and whether bit-identical);
3. ``FittedFactorModel.update`` of one day on an in-memory model that an update returned
   (the computation plus the new rows written into the arrays' spare room), for
   ``API_DAYS`` consecutive days (median, 90th percentile), and once from an older model (a
   branch: every array copied into a longer one);
4. ``riskmodel update MODEL.zarr --panel DAY.nc`` as a new process (start, imports, the
   store's state, the panel, the computation, the atomic append with its fsyncs), after one
   update that turned the store into a grown one, ``CLI_RUNS`` times on consecutive days
   (wall and CPU seconds of each process, median); and once on a model saved with its
   state (``rm.save`` of an updated model: the state is read alone, not the history).

The machine's load average is recorded (at the start, before the API and the command-line
timings, and at the end): compare the ratios measured side by side here. At full size the
run takes about 10 minutes on an idle 2-core machine (two fits, the state, 250 updates,
two zarr saves and the command-line runs).

Usage::

    python benchmarks/bench_update.py [--panel /tmp/riskmodel_bench_panel.nc] [--days 250]
    python benchmarks/bench_update.py --quick     # 400 x 260, 40 days
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_full_fit import FULL, QUICK, _load_inputs, make_panel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
API_DAYS = 24  # consecutive in-memory updates timed
CLI_RUNS = 5  # consecutive command-line updates timed


def _compare(full_ds, rows_list, first_new: int) -> dict[str, dict[str, float | bool]]:
    """Per array: largest relative difference of the updated dates to the refit, bit-identical or not."""
    out = {}
    for name in rows_list[0].data_vars:
        got = np.concatenate([r[name].to_numpy() for r in rows_list])
        want = full_ds[name].to_numpy()[first_new:]
        if "stock" in full_ds[name].dims:
            want = want[:, : got.shape[1]] if got.ndim == 2 else want
        same = bool(np.array_equal(got, want, equal_nan=True)) if got.dtype.kind == "f" else bool(np.array_equal(got, want))
        rel = 0.0
        if not same and got.dtype.kind == "f":
            ok = np.isfinite(want) & (want != 0)
            rel = float(np.max(np.abs(got[ok] - want[ok]) / np.abs(want[ok]), initial=0.0))
        out[name] = {"bit_identical": same, "max_relative_difference": rel}
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli_update(model: Path, day_panel: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``riskmodel update`` process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "riskmodel.cli", "update", str(model), "--panel", str(day_panel)],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return seconds, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", type=Path, default=None,
                        help="panel file (default: /tmp/riskmodel_bench_panel.nc, or /tmp/rm_quick_panel.nc with --quick)")
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "update.json")
    args = parser.parse_args(argv)
    run_started = time.perf_counter()
    import riskmodel as rm
    from riskmodel.models.update import advance
    from riskmodel.models.update_state import build_state

    warnings.simplefilter("ignore")
    config = QUICK if args.quick else FULL
    days = 40 if args.quick else args.days
    default = Path("/tmp/rm_quick_panel.nc" if args.quick else "/tmp/riskmodel_bench_panel.nc")
    panel, _ = _load_inputs(make_panel(config, args.panel or default))
    n_dates, n_stocks = panel.sizes["date"], panel.sizes["stock"]
    n_warm = min(300, n_dates)
    # numba caches loaded before any timing, the large-panel kernels too (the panel checks run
    # as kernels from 2**20 cells on): every stock on the first dates, not a corner of the panel
    warm = panel.isel(date=slice(0, n_warm))
    warm_fit = rm.FactorRiskModel(progress=False).fit(warm.isel(date=slice(0, n_warm - 1)))
    warm_fit.update(warm.isel(date=[n_warm - 1]))
    load_before = os.getloadavg()

    # The refit is timed warm, like the updates: the first full-size fit of a process also pays
    # for first-touching its memory (about 1.7x a later one); both are recorded.
    started = time.perf_counter()
    full = rm.FactorRiskModel(progress=False).fit(panel)
    refit_first_seconds = time.perf_counter() - started
    del full
    started = time.perf_counter()
    full = rm.FactorRiskModel(progress=False).fit(panel)
    refit_seconds = time.perf_counter() - started
    first_new = n_dates - days
    started = time.perf_counter()
    base = rm.FactorRiskModel(progress=False).fit(panel.isel(date=slice(0, first_new)))
    base_fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    state = build_state(base)
    state_seconds = time.perf_counter() - started

    per_day, rows_list = [], []
    for t in range(first_new, n_dates):
        day = panel.isel(date=[t])
        started = time.perf_counter()
        rows, state = advance(state, day, base.settings)
        per_day.append(time.perf_counter() - started)
        rows_list.append(rows)
    equality = _compare(full.dataset, rows_list, first_new)
    del rows_list

    carrying = base.update(panel.isel(date=[first_new]))  # builds the state once; the model carries it
    api_days = [panel.isel(date=[t]).load() for t in range(first_new + 1, first_new + 1 + API_DAYS)]
    load_api = os.getloadavg()
    api_seconds = []
    model = carrying
    for day in api_days:  # arrays grown in place (models.update_append)
        started = time.perf_counter()
        model = model.update(day)
        api_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()  # a branch from an older model: its arrays are copied
    branch = carrying.update(panel.isel(date=[first_new + 1]))
    api_with_copy = time.perf_counter() - started
    del branch, model

    folder = Path(tempfile.mkdtemp(prefix="bench_update_"))
    try:
        model = folder / "model.zarr"
        started = time.perf_counter()
        rm.save(base, model)
        save_seconds = time.perf_counter() - started
        for k in range(CLI_RUNS + 1):  # each day's panel holds the day before too (checked, not recomputed)
            rm.save(panel.isel(date=slice(first_new + k - 1, first_new + k + 1)), folder / f"day{k}.nc")
        cli_first, _ = _cli_update(model, folder / "day0.nc")  # builds the state from the stored arrays
        load_cli = os.getloadavg()
        cli_runs = [_cli_update(model, folder / f"day{k}.nc") for k in range(1, CLI_RUNS + 1)]
        rm.save(carrying, folder / "carrying.zarr")  # a saved updated model: the state in the root
        cli_saved_state, _ = _cli_update(folder / "carrying.zarr", folder / "day1.nc")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    per_day = np.asarray(per_day)
    result = {
        "panel": {"stocks": n_stocks, "dates": n_dates, "factors": int(full.dataset.sizes["factor"])},
        "conditions": {
            "load_average_before": load_before, "load_average_before_api_updates": load_api,
            "load_average_before_cli_updates": load_cli, "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(),
            "note": "shared machine; compare the ratios measured in this run",
        },
        "run_seconds": time.perf_counter() - run_started,
        "refit_seconds": refit_seconds,
        "refit_first_in_process_seconds": refit_first_seconds,
        "refit_note": "refit_seconds: the second full fit of the process (warm, as the updates are); the ratios use it",
        "base_fit_seconds": base_fit_seconds,
        "build_state_seconds": state_seconds,
        "daily_updates": {
            "days": days,
            "median_seconds": float(np.median(per_day)), "p90_seconds": float(np.percentile(per_day, 90)),
            "max_seconds": float(per_day.max()), "total_seconds": float(per_day.sum()),
            "refit_over_median_update": refit_seconds / float(np.median(per_day)),
            "refit_over_all_updates": refit_seconds / float(per_day.sum()),
        },
        "api_update_seconds": {"n": len(api_seconds), "median": float(np.median(api_seconds)),
                               "p90": float(np.percentile(api_seconds, 90)), "min": float(np.min(api_seconds)),
                               "max": float(np.max(api_seconds)), "all": api_seconds,
                               "refit_over_median": refit_seconds / float(np.median(api_seconds)),
                               "note": "FittedFactorModel.update of one day on a model an update returned "
                                       "(its arrays grown in place), consecutive days"},
        "api_update_with_model_copy_seconds": api_with_copy,
        "cli": {"save_zarr_seconds": save_seconds, "first_update_seconds_builds_state": cli_first,
                "runs": len(cli_runs), "next_update_seconds": float(np.median([w for w, _ in cli_runs])),
                "next_update_cpu_seconds": float(np.median([c for _, c in cli_runs])),
                "next_update_all_seconds": [w for w, _ in cli_runs],
                "next_update_all_cpu_seconds": [c for _, c in cli_runs],
                "update_of_a_saved_model_with_its_state_seconds": cli_saved_state},
        "equality_of_updated_dates_to_refit": equality,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "equality_of_updated_dates_to_refit"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
