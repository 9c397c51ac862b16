"""Benchmark: time-series loadings and the statistical model at 5,000 stocks × 10 years.

Same synthetic data for every contender: ``k`` Gaussian factor returns, loadings
``N(0.5, 0.5)``, specific noise, 2% missing returns, a tenth of the stocks listed late.

* **Time-series loadings** — :func:`riskmodel.models.timeseries.ts_loadings` (one numba pass over
  all stocks: expanding-window OLS with intercept, loadings stored every 21 days, the
  out-of-sample residuals of every day) against a per-stock ``np.linalg.lstsq`` loop that
  solves the same regressions on the same schedule. The loop is timed on a subset of
  stocks and **extrapolated linearly** to all stocks (said so in the table); its loadings
  are checked against riskmodel's on that subset.
* **Statistical model** — :func:`riskmodel.models.statistical.pca_loadings` (rolling 504-day
  window, refit every 21 days, warm-started randomized SVD; ``k`` fixed, then chosen by
  Bai–Ng) plus the daily cross-sectional OLS factor returns, against a numpy baseline
  (nan-aware standardisation and a full ``np.linalg.svd`` per refit), timed on a few
  refits and extrapolated.

Prints a table (seconds, ratio, peak RSS) and writes JSON to
``benchmarks/results/timeseries.json``. The machine is shared: judge by the ratios of
one run, not by absolute seconds. The numpy baselines run with one BLAS thread: after a
numba parallel kernel its OpenMP threads still spin, and multi-threaded OpenBLAS then
fights them for the two cores (10× slower); riskmodel's own SVD step does the same.

Usage::

    python benchmarks/bench_timeseries.py            # 5,000 × 2,520 × 10
    python benchmarks/bench_timeseries.py --quick    # 1,000 × 1,260 × 10
    python benchmarks/bench_timeseries.py --toy      # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

import numba  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from riskmodel.models.statistical import cross_section_factor_returns, pca_loadings  # noqa: E402
from riskmodel.models.timeseries import refit_schedule, ts_loadings  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "timeseries.json"
SIZES = {"full": (5000, 2520, 10), "quick": (1000, 1260, 10), "toy": (120, 300, 4)}


def make_data(n_stocks: int, n_days: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns (date, stock) and factor returns (date, factor) from a k-factor model."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal((n_days, k))
    loadings = rng.normal(0.5, 0.5, (n_stocks, k))
    r = x @ loadings.T + 0.02 * rng.standard_normal((n_days, n_stocks))
    r[rng.random((n_days, n_stocks)) < 0.02] = np.nan
    late = rng.choice(n_stocks, n_stocks // 10, replace=False)
    starts = rng.integers(0, n_days // 2, late.size)
    for n, s in zip(late, starts):
        r[:s, n] = np.nan
    return r, x


def lstsq_loop(r: np.ndarray, x: np.ndarray, stocks: np.ndarray, schedule: np.ndarray, min_obs: int) -> np.ndarray:
    """Per-stock, per-refit ``np.linalg.lstsq`` with intercept (expanding window): (S, n, k)."""
    k = x.shape[1]
    out = np.full((len(schedule), stocks.size, k), np.nan)
    design = np.column_stack([np.ones(x.shape[0]), x])
    for j, n in enumerate(stocks):
        y_all = r[:, n]
        for i, t in enumerate(schedule):
            y = y_all[: t + 1]
            ok = np.isfinite(y)
            if ok.sum() < min_obs:
                continue
            out[i, j] = np.linalg.lstsq(design[: t + 1][ok], y[ok], rcond=None)[0][1:]
    return out


def numpy_pca_refit(r: np.ndarray, t: int, window: int, k: int) -> np.ndarray:
    """One refit of the baseline: nan-aware standardisation, full SVD, loadings (N, k)."""
    block = r[max(0, t - window + 1) : t + 1]
    keep = np.isfinite(block).mean(axis=0) >= 0.8
    z = block[:, keep]
    z = np.nan_to_num((z - np.nanmean(z, axis=0)) / np.nanstd(z, axis=0))
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    return vt[:k].T * s[:k]


def _best(fn, repeat: int) -> tuple[object, float]:
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="1,000 stocks × 1,260 days × 10 factors")
    group.add_argument("--toy", action="store_true", help="120 × 300 × 4 (for the tests)")
    parser.add_argument("--loop-stocks", type=int, default=None, help="stocks timed in the lstsq loop (then extrapolated)")
    parser.add_argument("--baseline-refits", type=int, default=3, help="refits timed in the numpy PCA baseline")
    parser.add_argument("--repeat", type=int, default=2, help="riskmodel timings (best of)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    size = "toy" if args.toy else "quick" if args.quick else "full"
    n_stocks, n_days, k = SIZES[size]
    window, min_obs_stat = (504, 252) if size != "toy" else (150, 100)
    r, x = make_data(n_stocks, n_days, k)
    schedule = refit_schedule(n_days, 21)

    # warm-up: compile / load every kernel at toy size
    ts_loadings(r[:80, :16], x[:80], min_obs=30, schedule=refit_schedule(80, 21))
    warm = pca_loadings(r[:200, :64], n_factors=2, window=150, min_obs=100)
    cross_section_factor_returns(r[:200, :64], warm.loadings, warm.schedule)

    rows = []
    # -- time-series loadings --------------------------------------------------------
    load_before = os.getloadavg()
    ts_out, ts_time = _best(lambda: ts_loadings(r, x, min_obs=60, schedule=schedule), args.repeat)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # like with like: the lstsq loop runs on one BLAS thread
    try:
        _, ts_1t_time = _best(lambda: ts_loadings(r, x, min_obs=60, schedule=schedule), args.repeat)
    finally:
        numba.set_num_threads(threads)
    n_loop = args.loop_stocks or (n_stocks if size == "toy" else 40)
    subset = np.linspace(0, n_stocks - 1, n_loop).astype(np.int64)
    start = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        loop = lstsq_loop(r, x, subset, schedule, 60)
    loop_time = (time.perf_counter() - start) * n_stocks / n_loop
    diff = float(np.nanmax(np.abs(loop - ts_out["loadings"][:, subset])))
    same_nan = bool(np.array_equal(np.isnan(loop), np.isnan(ts_out["loadings"][:, subset])))
    rows.append(("time-series loadings", "riskmodel (numba, one pass)", ts_time, 1.0, n_stocks))
    rows.append(("time-series loadings", "np.linalg.lstsq loop" + (" (extrapolated)" if n_loop < n_stocks else ""),
                 loop_time, loop_time / ts_time, n_loop))

    # -- statistical model -------------------------------------------------------------
    def statistical(n_factors):
        pca = pca_loadings(r, n_factors=n_factors, window=window, min_obs=min_obs_stat, refit_every=21)
        f, _ = cross_section_factor_returns(r, pca.loadings, pca.schedule)
        return pca, f

    (pca_k, _), st_time = _best(lambda: statistical(k), args.repeat)
    (pca_ic, _), st_ic_time = _best(lambda: statistical(None), 1)
    refits = pca_k.schedule[pca_k.schedule + 1 >= min_obs_stat]
    timed = refits[np.linspace(0, refits.size - 1, min(args.baseline_refits, refits.size)).astype(int)]
    start = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        for t in timed:
            numpy_pca_refit(r, int(t), window, k)
    base_time = (time.perf_counter() - start) * refits.size / timed.size
    rows.append(("statistical model", f"riskmodel (k={k} fixed)", st_time, 1.0, len(refits)))
    rows.append(("statistical model", f"riskmodel (k by Bai-Ng: {pca_ic.n_factors})", st_ic_time, st_ic_time / st_time, len(refits)))
    rows.append(("statistical model", "numpy nan-standardise + full SVD (extrapolated, no factor returns)",
                 base_time, base_time / st_time, timed.size))

    print(f"\n{n_stocks:,} stocks × {n_days:,} days × {k} factors ({size}); numba threads {numba.get_num_threads()}, "
          f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'task':22s} {'contender':62s} {'seconds':>9s} {'ratio':>7s} {'timed on':>9s}")
    for task, who, sec, ratio, n in rows:
        print(f"{task:22s} {who:62s} {sec:9.3f} {ratio:7.1f} {n:9d}")
    print(f"lstsq loop vs riskmodel loadings: max |diff| {diff:.2e}, same NaN pattern {same_nan}; peak RSS {_rss_mb():.0f} MB")

    result = {
        "size": {"n_stocks": n_stocks, "n_days": n_days, "n_factors": k, "label": size},
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "load_average": os.getloadavg()[0], "python": platform.python_version()},
        "conditions": {"load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S"), "repeat": args.repeat,
                       "timing": "riskmodel warm (after a toy-size warm-up), best of --repeat; baselines once, "
                                 "one BLAS thread, on a subset and extrapolated linearly"},
        "timeseries": {"riskmodel_s": ts_time, "lstsq_loop_s": loop_time, "lstsq_loop_extrapolated": n_loop < n_stocks,
                       "lstsq_stocks_timed": int(n_loop), "speedup": loop_time / ts_time,
                       "riskmodel_1thread_s": ts_1t_time, "speedup_1thread": loop_time / ts_1t_time,
                       "max_abs_diff_vs_lstsq": diff, "same_nan_pattern": same_nan, "target_s": 1.0},
        "statistical": {"riskmodel_fixed_k_s": st_time, "riskmodel_bai_ng_s": st_ic_time,
                        "n_factors_chosen": int(pca_ic.n_factors), "numpy_svd_baseline_s": base_time,
                        "baseline_refits_timed": int(timed.size), "refits": int(refits.size),
                        "speedup": base_time / st_time, "target_s": 2.0},
        "peak_rss_mb": _rss_mb(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
