"""Benchmark: daily constrained WLS factor returns at 5,000 stocks × 10 years.

Compares, on the same synthetic data (complete, no missing values),

* ``riskmodel.factor_returns`` (numba kernel, parallel over dates), timed after a warm-up,
  with ``return_clip=None`` (the computation the baselines do) and with the default clip;
* a plain per-day numpy loop: dense dummies, restriction, ``np.linalg.lstsq`` on
  ``V^{1/2} X R``, residuals — the same estimator, checked to agree to 1e-8;
* the peer toraniko (``toraniko.model.estimate_factor_returns``), run in its own virtual
  environment (it pins numpy 1.26) as a subprocess that times only its estimation call.
  It builds an N×N weight matrix per day, so it is timed on a few dates and extrapolated
  linearly to the full period (said so in the output). Its estimator differs slightly
  (equal-weight sector constraint, styles fitted on sector residuals).

Prints a table (seconds, ratio to riskmodel, peak memory) and writes JSON to
``benchmarks/results/factor_returns.json``.

Usage::

    python benchmarks/bench_factor_returns.py                 # full size
    python benchmarks/bench_factor_returns.py --quick --no-peers
    python benchmarks/bench_factor_returns.py --n-stocks 2000 --n-days 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

import numba  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from riskmodel.regression import factor_returns  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "factor_returns.json"
TORANIKO_PYTHON = Path("/tmp/venv_toraniko/bin/python")
RUNNER = Path(__file__).resolve().parent / "_toraniko_runner.py"


def make_data(n_stocks: int, n_days: int, n_ind: int, n_styles: int, seed: int = 0) -> SimpleNamespace:
    """Synthetic exposures (unlagged) and returns from a factor model, no missing values."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_ind, size=n_stocks).astype(np.int32)
    codes[:n_ind] = np.arange(n_ind)  # every industry present
    industry = np.ascontiguousarray(np.broadcast_to(codes, (n_days, n_stocks)))
    log_cap = rng.normal(8.0, 1.5, size=n_stocks) + np.cumsum(rng.normal(0, 0.01, size=(n_days, n_stocks)), axis=0)
    cap = np.exp(log_cap)
    del log_cap
    styles = rng.standard_normal((n_days, n_stocks, n_styles))  # C-contiguous (T, N, K)
    f = rng.normal(0, 0.005, size=(n_days, 1 + n_ind + n_styles))
    returns = rng.normal(0, 0.02, size=(n_days, n_stocks))
    returns += f[:, :1] + np.take_along_axis(f[:, 1 : 1 + n_ind], industry.astype(np.intp), axis=1)
    returns[1:] += np.einsum("tnk,tk->tn", styles[:-1], f[1:, 1 + n_ind :])
    return SimpleNamespace(
        returns=returns, styles=styles, industry=industry, weights=np.sqrt(cap), cap=cap, n_ind=n_ind
    )


def numpy_loop(data: SimpleNamespace, n_days_timed: int, lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Plain per-day numpy: dense dummies, restriction, lstsq on V^{1/2} X R (no clipping).

    Outputs are preallocated at full size; only the first ``n_days_timed`` return dates are
    computed.
    """
    n_days, n_stocks, n_styles = data.styles.shape
    n_ind = data.n_ind
    m = 1 + n_ind + n_styles
    f = np.full((n_days, m), np.nan)
    resid = np.full((n_days, n_stocks), np.nan)
    rows = np.arange(n_stocks)
    for t in range(lag, min(n_days, lag + n_days_timed)):
        s = t - lag
        x = np.zeros((n_stocks, m))
        x[:, 0] = 1.0
        x[rows, 1 + data.industry[s]] = 1.0
        x[:, 1 + n_ind :] = data.styles[s]
        c = np.bincount(data.industry[s], weights=data.cap[s], minlength=n_ind)
        ref = int(np.argmax(c))
        keep = np.array([j for j in range(m) if j != 1 + ref])
        r_mat = np.eye(m)[:, keep]
        others = keep[(keep >= 1) & (keep <= n_ind)] - 1
        r_mat[1 + ref, 1 : 1 + n_ind - 1] = -c[others] / c[ref]
        sqrt_v = np.sqrt(data.weights[s])
        xr_ = x @ r_mat
        g, *_ = np.linalg.lstsq(xr_ * sqrt_v[:, None], data.returns[t] * sqrt_v, rcond=None)
        f[t] = r_mat @ g
        resid[t] = data.returns[t] - x @ f[t]
    return f, resid


def _peak_tracemalloc(fn) -> tuple[object, float]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak / 2**20


def _best_time(fn, repeat: int) -> tuple[object, float]:
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def run_toraniko(data: SimpleNamespace, n_days_timed: int, lag: int = 1) -> dict:
    """Save the first dates (exposures lagged onto return dates) and time toraniko there."""
    if not TORANIKO_PYTHON.exists():
        return {"skipped": f"no toraniko venv at {TORANIKO_PYTHON} (see benchmarks/README.md)"}
    d = min(n_days_timed, data.returns.shape[0] - lag)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "toraniko_input.npz"
        np.savez(
            path,
            returns=data.returns[lag : lag + d],
            styles=data.styles[:d],
            industry=data.industry[:d],
            cap=data.cap[:d],
        )
        proc = subprocess.run(
            [str(TORANIKO_PYTHON), str(RUNNER), str(path)], capture_output=True, text=True, check=False
        )
    if proc.returncode != 0:
        return {"skipped": f"toraniko runner failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes (300 stocks × 60 days, 8 industries, 4 styles)")
    parser.add_argument("--n-stocks", type=int, default=None)
    parser.add_argument("--n-days", type=int, default=None)
    parser.add_argument("--n-industries", type=int, default=None)
    parser.add_argument("--n-styles", type=int, default=None)
    parser.add_argument("--no-peers", action="store_true", help="skip toraniko")
    parser.add_argument(
        "--numpy-days", type=int, default=252, help="dates timed for the numpy loop, then extrapolated (default 252)"
    )
    parser.add_argument("--toraniko-days", type=int, default=10, help="dates timed for toraniko, then extrapolated")
    parser.add_argument("--repeat", type=int, default=3, help="riskmodel timings (best of)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    n_stocks = args.n_stocks or (300 if args.quick else 5_000)
    n_days = args.n_days or (60 if args.quick else 2_520)
    n_ind = args.n_industries or (8 if args.quick else 60)
    n_styles = args.n_styles or (4 if args.quick else 10)
    n_np_days = min(args.numpy_days or n_days, n_days - 1)

    data = make_data(n_stocks, n_days, n_ind, n_styles)
    input_mb = (data.returns.nbytes + data.styles.nbytes) / 2**20

    # warm-up: compile or load the cached kernel
    warm = make_data(50, 4, 3, n_styles, seed=1)
    factor_returns(warm.returns, warm, return_clip=None, min_industry_size=1)

    rm_res, rm_s = _best_time(lambda: factor_returns(data.returns, data, return_clip=None), args.repeat)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    _, rm_1t_s = _best_time(lambda: factor_returns(data.returns, data, return_clip=None), args.repeat)
    numba.set_num_threads(threads)
    _, rm_clip_s = _best_time(lambda: factor_returns(data.returns, data), args.repeat)
    _, rm_peak = _peak_tracemalloc(lambda: factor_returns(data.returns, data, return_clip=None))
    rss_after_rm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    (np_f, np_u), np_s = _best_time(lambda: numpy_loop(data, n_np_days), 1)
    with threadpool_limits(limits=1):
        _, np_1t_s = _best_time(lambda: numpy_loop(data, n_np_days), 1)
    _, np_peak = _peak_tracemalloc(lambda: numpy_loop(data, min(n_np_days, 20)))
    done = slice(1, 1 + n_np_days)
    scale = np.abs(np_f[done]).max()
    max_diff_f = float(np.abs(rm_res.factor_returns[done] - np_f[done]).max() / scale)
    max_diff_u = float(np.abs(rm_res.residuals[done] - np_u[done]).max())
    np_full_s = np_s * (n_days - 1) / n_np_days
    np_1t_full_s = np_1t_s * (n_days - 1) / n_np_days

    rows = [
        {"name": "riskmodel (return_clip=None)", "seconds": rm_s, "extrapolated": False,
         "days_timed": n_days, "peak_mb": rm_peak, "peak_kind": "tracemalloc (call)"},
        {"name": "riskmodel (return_clip=5)", "seconds": rm_clip_s, "extrapolated": False,
         "days_timed": n_days, "peak_mb": None, "peak_kind": None},
        {"name": "riskmodel (1 numba thread)", "seconds": rm_1t_s, "extrapolated": False,
         "days_timed": n_days, "peak_mb": None, "peak_kind": None},
        {"name": "numpy per-day lstsq loop", "seconds": np_full_s, "extrapolated": n_np_days < n_days - 1,
         "days_timed": n_np_days, "peak_mb": np_peak, "peak_kind": "tracemalloc (call, 20 days)"},
        {"name": "numpy loop (1 BLAS thread)", "seconds": np_1t_full_s, "extrapolated": n_np_days < n_days - 1,
         "days_timed": n_np_days, "peak_mb": None, "peak_kind": None},
    ]  # fmt: skip
    if not args.no_peers:
        tor = run_toraniko(data, args.toraniko_days)
        if "skipped" in tor:
            rows.append({"name": "toraniko estimate_factor_returns", "skipped": tor["skipped"]})
        else:
            rows.append({
                "name": "toraniko estimate_factor_returns",
                "seconds": tor["seconds"] * (n_days - 1) / tor["days"],
                "extrapolated": tor["days"] < n_days - 1,
                "days_timed": tor["days"],
                "peak_mb": tor["peak_rss_mb"],
                "peak_kind": "peak RSS (subprocess)",
            })  # fmt: skip
    for row in rows:
        if "seconds" in row:
            row["ratio_vs_riskmodel"] = row["seconds"] / rm_s

    report = {
        "benchmark": "factor_returns",
        "config": {"n_stocks": n_stocks, "n_days": n_days, "n_industries": n_ind, "n_styles": n_styles,
                   "n_factors": 1 + n_ind + n_styles, "quick": args.quick},
        "machine": {"cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__},
        "inputs_mb": input_mb,
        "riskmodel_peak_over_inputs": rm_peak / input_mb,
        "process_peak_rss_mb_after_riskmodel": rss_after_rm,
        "agreement_vs_numpy": {"factor_returns_max_rel": max_diff_f, "residuals_max_abs": max_diff_u},
        "results": rows,
    }  # fmt: skip
    _print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")
    return report


def _print_table(report: dict) -> None:
    cfg = report["config"]
    print(
        f"factor_returns: {cfg['n_stocks']} stocks × {cfg['n_days']} days, {cfg['n_industries']} industries + "
        f"{cfg['n_styles']} styles (m = {cfg['n_factors']}); {report['machine']['numba_threads']} numba threads; "
        f"inputs (returns + styles) {report['inputs_mb']:.0f} MB"
    )
    print(f"{'method':<36} {'seconds':>10} {'× riskmodel':>12} {'peak MB':>9}  note")
    for row in report["results"]:
        if "skipped" in row:
            print(f"{row['name']:<36} {'skipped':>10}  {row['skipped']}")
            continue
        note = f"extrapolated from {row['days_timed']} dates" if row["extrapolated"] else ""
        peak = f"{row['peak_mb']:.0f}" if row["peak_mb"] is not None else "-"
        if row["peak_kind"]:
            note = f"{note}; peak = {row['peak_kind']}".lstrip("; ")
        print(f"{row['name']:<36} {row['seconds']:>10.3f} {row['ratio_vs_riskmodel']:>12.1f} {peak:>9}  {note}")
    agree = report["agreement_vs_numpy"]
    print(
        f"riskmodel peak / inputs = {report['riskmodel_peak_over_inputs']:.2f}; agreement with numpy loop: "
        f"factor returns {agree['factor_returns_max_rel']:.1e} (relative), residuals {agree['residuals_max_abs']:.1e}"
    )


if __name__ == "__main__":
    main()
