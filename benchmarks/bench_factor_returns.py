"""Benchmark: daily constrained WLS factor returns at 5,000 stocks × 10 years.

Compares, on the same synthetic data (complete, no missing values),

* ``riskmodel.factor_returns`` (numba kernel, parallel over dates), timed after a warm-up,
  with ``return_clip=None`` (the computation the baselines do) and with the default clip;
* the strong plain-numpy baseline a competent user would write: per day, dummies set by
  fancy indexing, the normal equations ``Rᵀ Xᵀ V X R g = Rᵀ Xᵀ V r`` (the industry
  restriction folded in), one GEMM and a Cholesky solve (``scipy.linalg.cho_solve``),
  residuals — timed on every date, with one BLAS thread and with the default threads;
* the naive per-day loop it replaces (``np.linalg.lstsq``, an SVD, on ``V^{1/2} X R``),
  timed on ``--numpy-days`` dates and extrapolated; both loops are checked against
  riskmodel (the same estimator);
* the peer toraniko (``toraniko.model.estimate_factor_returns``), run in its own virtual
  environment (it pins numpy 1.26) as a subprocess that times only its estimation call.
  It builds an N×N weight matrix per day, so it is timed on a few dates and extrapolated
  linearly to the full period (said so in the output). Its estimator differs slightly
  (equal-weight sector constraint, styles fitted on sector residuals).

Every timing records wall seconds and process CPU seconds (best of ``--repeat``, after a
warm-up); ratios are quoted like with like: riskmodel on one numba thread against a
baseline on one BLAS thread, default threads against default threads, CPU against CPU. The
JSON records the load average before and after, the dates timed and whether a row is
extrapolated, and the warm/cold state of each row.

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
from scipy.linalg import cho_factor, cho_solve  # noqa: E402
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


def _restriction(cap_by_industry: np.ndarray, n_ind: int, m: int) -> np.ndarray:
    """``R`` (m × m-1): the largest industry's return is minus the cap-weighted sum of the others."""
    ref = int(np.argmax(cap_by_industry))
    r_mat = np.delete(np.eye(m), 1 + ref, axis=1)
    others = np.delete(np.arange(n_ind), ref)
    r_mat[1 + ref, 1 : n_ind] = -cap_by_industry[others] / cap_by_industry[ref]
    return r_mat


def numpy_normal_equations(data: SimpleNamespace, n_days_timed: int, lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Strong plain numpy: per day, normal equations with the restriction, one GEMM, Cholesky.

    ``A = Xᵀ V X`` by one GEMM on the dense design (dummies set by fancy indexing), then
    ``(Rᵀ A R) g = Rᵀ Xᵀ V r`` solved by Cholesky, ``f = R g``, residuals ``r - X f``. Only
    the first ``n_days_timed`` return dates are computed.
    """
    n_days, n_stocks, n_styles = data.styles.shape
    n_ind = data.n_ind
    m = 1 + n_ind + n_styles
    f = np.full((n_days, m), np.nan)
    resid = np.full((n_days, n_stocks), np.nan)
    rows = np.arange(n_stocks)
    x = np.empty((n_stocks, m))
    for t in range(lag, min(n_days, lag + n_days_timed)):
        s = t - lag
        x[:, 0] = 1.0
        x[:, 1 : 1 + n_ind] = 0.0
        x[rows, 1 + data.industry[s]] = 1.0
        x[:, 1 + n_ind :] = data.styles[s]
        xv = x * data.weights[s][:, None]
        r_mat = _restriction(np.bincount(data.industry[s], weights=data.cap[s], minlength=n_ind), n_ind, m)
        a = r_mat.T @ (xv.T @ x) @ r_mat
        b = r_mat.T @ (xv.T @ data.returns[t])
        f[t] = r_mat @ cho_solve(cho_factor(a), b)
        resid[t] = data.returns[t] - x @ f[t]
    return f, resid


def _one_thread(fn, threads: int):
    """``fn()`` with one numba thread and one BLAS thread, then ``threads`` numba threads again."""
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return fn()
    finally:
        numba.set_num_threads(threads)


def _peak_tracemalloc(fn) -> tuple[object, float]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak / 2**20


def _best_time(fn, repeat: int) -> tuple[object, float]:
    out, wall, _ = _best_wall_cpu(fn, repeat)
    return out, wall


def _best_wall_cpu(fn, repeat: int) -> tuple[object, float, float]:
    """Output, wall seconds and process CPU seconds (user + system) of the fastest of ``repeat`` calls."""
    best, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        cpu0 = time.process_time()
        start = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, best_cpu = wall, time.process_time() - cpu0
    return out, best, best_cpu


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
    parser.add_argument("--toraniko-days", type=int, default=40, help="dates timed for toraniko, then extrapolated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds: riskmodel and the normal-equation baseline alternate (best of)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--rederive", action="store_true",
                        help="only recompute the like-with-like ratios of the saved --output from its rows")
    args = parser.parse_args(argv)
    if args.rederive:
        return rederive(args.output)

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

    load_before = os.getloadavg()
    full = n_days - 1  # return dates with lagged exposures
    # riskmodel and the strong baseline timed in alternation (round after round, each
    # configuration once per round), so that both see the same load on a shared machine
    numpy_normal_equations(data, 1)  # warm-up: BLAS and LAPACK set up
    threads = numba.get_num_threads()
    configs = {
        "rm": lambda: factor_returns(data.returns, data, return_clip=None),
        "rm_clip": lambda: factor_returns(data.returns, data),
        "ne": lambda: numpy_normal_equations(data, full),
        "rm_1t": lambda: _one_thread(lambda: factor_returns(data.returns, data, return_clip=None), threads),
        "ne_1t": lambda: _one_thread(lambda: numpy_normal_equations(data, full), threads),
    }
    best = {name: (np.inf, np.inf) for name in configs}
    outputs = {}
    for _ in range(args.repeat):
        for name, fn in configs.items():
            out, wall, cpu = _best_wall_cpu(fn, 1)
            if name in ("rm", "ne"):
                outputs[name] = out
            best[name] = min(best[name], (wall, cpu))
    (rm_s, rm_cpu), (rm_clip_s, rm_clip_cpu), (ne_s, ne_cpu), (rm_1t_s, rm_1t_cpu), (ne_1t_s, ne_1t_cpu) = (
        best[name] for name in configs)
    rm_res, (ne_f, ne_u) = outputs["rm"], outputs["ne"]
    _, rm_peak = _peak_tracemalloc(lambda: factor_returns(data.returns, data, return_clip=None))
    rss_after_rm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    _, ne_peak = _peak_tracemalloc(lambda: numpy_normal_equations(data, min(full, 20)))

    numpy_loop(data, 1)
    (np_f, np_u), np_s, np_cpu = _best_wall_cpu(lambda: numpy_loop(data, n_np_days), 1)
    with threadpool_limits(limits=1):
        _, np_1t_s, np_1t_cpu = _best_wall_cpu(lambda: numpy_loop(data, n_np_days), 1)
    _, np_peak = _peak_tracemalloc(lambda: numpy_loop(data, min(n_np_days, 20)))
    done = slice(1, 1 + n_np_days)
    scale = np.abs(np_f[done]).max()
    max_diff_f = float(np.abs(rm_res.factor_returns[done] - np_f[done]).max() / scale)
    max_diff_u = float(np.abs(rm_res.residuals[done] - np_u[done]).max())
    every = slice(1, None)
    ne_diff_f = float(np.abs(rm_res.factor_returns[every] - ne_f[every]).max() / np.abs(ne_f[every]).max())
    ne_diff_u = float(np.abs(rm_res.residuals[every] - ne_u[every]).max())
    load_after = os.getloadavg()

    def row(name, seconds, cpu, days, *, threads, peak=None, peak_kind=None, warm="warm (after a warm-up call)"):
        extrapolated = days < full
        scale_up = full / days
        return {"name": name, "seconds": seconds * scale_up, "cpu_seconds": cpu * scale_up,
                "measured_seconds": seconds, "extrapolated": extrapolated, "days_timed": days,
                "threads": threads, "state": warm, "peak_mb": peak, "peak_kind": peak_kind}

    rows = [
        row("riskmodel (return_clip=None)", rm_s, rm_cpu, full, threads=f"{threads} numba threads",
            peak=rm_peak, peak_kind="tracemalloc (call)"),
        row("riskmodel (return_clip=5)", rm_clip_s, rm_clip_cpu, full, threads=f"{threads} numba threads"),
        row("riskmodel (1 numba thread)", rm_1t_s, rm_1t_cpu, full, threads="1 numba thread"),
        row("numpy normal equations + Cholesky", ne_s, ne_cpu, full, threads="default BLAS threads",
            peak=ne_peak, peak_kind="tracemalloc (call, 20 days)"),
        row("numpy normal equations + Cholesky (1 BLAS thread)", ne_1t_s, ne_1t_cpu, full, threads="1 BLAS thread"),
        row("numpy per-day lstsq loop", np_s, np_cpu, n_np_days, threads="default BLAS threads",
            peak=np_peak, peak_kind="tracemalloc (call, 20 days)"),
        row("numpy loop (1 BLAS thread)", np_1t_s, np_1t_cpu, n_np_days, threads="1 BLAS thread"),
    ]
    if not args.no_peers:
        tor = run_toraniko(data, args.toraniko_days)
        if "skipped" in tor:
            rows.append({"name": "toraniko estimate_factor_returns", "skipped": tor["skipped"]})
        else:
            rows.append({
                **row("toraniko estimate_factor_returns", tor["seconds"], tor.get("cpu_seconds", np.nan),
                      tor["days"], threads="default (polars, numpy BLAS)",
                      peak=tor["peak_rss_mb"], peak_kind="peak RSS (subprocess)",
                      warm=tor.get("state", "cold (first call)")),
                "numpy": tor.get("numpy"), "toraniko": tor.get("toraniko"),
                "estimator": "differs: equal-weight sector constraint, styles fitted on sector residuals",
            })  # fmt: skip
    for entry in rows:
        if "seconds" in entry:
            entry["ratio_vs_riskmodel"] = entry["seconds"] / rm_s
    like_with_like = derived_ratios(rows)

    report = {
        "benchmark": "factor_returns",
        "config": {"n_stocks": n_stocks, "n_days": n_days, "n_industries": n_ind, "n_styles": n_styles,
                   "n_factors": 1 + n_ind + n_styles, "quick": args.quick},
        "machine": {"cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                    "blas": _blas()},
        "inputs_mb": input_mb,
        "riskmodel_peak_over_inputs": rm_peak / input_mb,
        "process_peak_rss_mb_after_riskmodel": rss_after_rm,
        "agreement_vs_numpy": {"factor_returns_max_rel": max_diff_f, "residuals_max_abs": max_diff_u},
        "agreement_vs_normal_equations": {"factor_returns_max_rel": ne_diff_f, "residuals_max_abs": ne_diff_u},
        "conditions": {"load_average_before": list(load_before), "load_average_after": list(load_after),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S"), "repeat": args.repeat,
                       "timing": "riskmodel and the normal-equation baseline alternate, best wall of --repeat rounds "
                  "(its process CPU beside it); the lstsq loops and toraniko once, after them"},
        "like_with_like": like_with_like,
        "results": rows,
    }  # fmt: skip
    _print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.output}")
    return report


def derived_ratios(rows: list[dict]) -> dict[str, float]:
    """Like-with-like ratios from the measured rows: the same threads, wall against wall and
    CPU against CPU (the CPU ratios move least when other jobs load the machine)."""
    by_name = {entry["name"]: entry for entry in rows if "seconds" in entry}
    rm, rm_1t = by_name["riskmodel (return_clip=None)"], by_name["riskmodel (1 numba thread)"]
    pairs = {
        "normal_equations_1thread_vs_riskmodel_1thread": ("numpy normal equations + Cholesky (1 BLAS thread)", rm_1t),
        "normal_equations_vs_riskmodel_default_threads": ("numpy normal equations + Cholesky", rm),
        "lstsq_loop_1thread_vs_riskmodel_1thread": ("numpy loop (1 BLAS thread)", rm_1t),
        "lstsq_loop_vs_riskmodel_default_threads": ("numpy per-day lstsq loop", rm),
        "toraniko_vs_riskmodel_default_threads": ("toraniko estimate_factor_returns", rm),
    }
    out = {}
    for key, (name, base) in pairs.items():
        if name in by_name:
            out[key] = by_name[name]["seconds"] / base["seconds"]
            out[key.replace("_vs_", "_cpu_vs_", 1)] = by_name[name]["cpu_seconds"] / base["cpu_seconds"]
    out["lstsq_loop_1thread_vs_normal_equations_1thread"] = (
        by_name["numpy loop (1 BLAS thread)"]["seconds"] / by_name["numpy normal equations + Cholesky (1 BLAS thread)"]["seconds"])
    return out


def rederive(path: Path) -> dict:
    """Rewrite the ``like_with_like`` block of a saved report from its measured rows."""
    report = json.loads(path.read_text())
    report["like_with_like"] = derived_ratios(report["results"])
    path.write_text(json.dumps(report, indent=2))
    return report


def _blas() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info() if i.get("user_api") == "blas")


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
