"""Benchmark: the chunked (dask.distributed) fit of a panel larger than the cluster's memory.

A synthetic panel of ``--n-stocks`` × ``--n-days`` (default 50,000 × 2,520: ten times the
5,000 × 2,520 case) is generated chunk by chunk straight into a zarr store (a cheap
generator of this script: static per-stock characteristics plus daily noise, returns from
a market + industry + style factor model with Student-t specific returns and a few missing
values), then fitted with :func:`riskmodel.models.chunked.fit_chunked` on a ``LocalCluster`` whose
total memory limit is below the panel's size, the outputs written to a zarr store. The
cluster is one worker with ``--threads`` threads in the process (``processes=False``; the
kernels release the GIL, and chunks pass between tasks without serialisation), or with
``--processes`` the former ``--workers`` processes × 1 thread; ``--compare-processes``
fits the large panel on both in the same run.

In the same run, on a ``--ref-stocks`` panel (default 5,000 × the same days) from the same
generator: the in-memory ``FactorRiskModel.fit`` and the chunked fit on the cluster, whose
results are compared (largest difference relative to each variable's scale).

Reported: wall times of generation and fits, throughput (stock-days per second) of each
fit and its ratio to the in-memory one, peak resident memory of each worker process during
the large fit (``ru_maxrss``: the large fit runs in a fresh process that starts its own
cluster, so the peak covers that fit only; with threads the worker is that process) and the
peak of the cluster's total process memory (``distributed.diagnostics.MemorySampler``),
panel and store sizes, the load average before and after. JSON to
``benchmarks/results/scale.json``.

Usage::

    python benchmarks/bench_scale.py             # 50,000 × 2,520 (about 5 GB panel), minutes
    python benchmarks/bench_scale.py --quick     # toy sizes, < 60 s
    python benchmarks/bench_scale.py --n-stocks 20000 --memory-limit 3GiB
    python benchmarks/bench_scale.py --compare-processes   # also the 2-process cluster
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import riskmodel as rm  # noqa: E402
from riskmodel.models.chunked import fit_chunked  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
STYLES = ("size", "value", "momentum")


# ---------------------------------------------------------------------------------------
# chunk-wise synthetic panel
# ---------------------------------------------------------------------------------------


def _static(n_stocks: int, n_industries: int, seed: int) -> dict[str, np.ndarray]:
    """Per-stock constants: industry, log cap, style levels, specific vol."""
    rng = np.random.default_rng([seed, 0])
    industry = rng.integers(0, n_industries, n_stocks).astype(np.int32)
    industry[:n_industries] = np.arange(n_industries)
    return {
        "industry": industry,
        "log_cap": rng.normal(21.0, 1.5, n_stocks),
        "value": rng.normal(0.0, 1.0, n_stocks),
        "momentum": rng.normal(0.0, 1.0, n_stocks),
        "sigma": 0.02 * np.exp(rng.normal(0.0, 0.3, n_stocks)),
    }


def _factor_returns(n_days: int, n_industries: int, seed: int) -> np.ndarray:
    """(T, 1 + P + K) daily factor returns: market, industries, styles."""
    rng = np.random.default_rng([seed, 1])
    vols = np.concatenate([[0.01], np.full(n_industries, 0.005), np.full(len(STYLES), 0.003)])
    return rng.standard_normal((n_days, vols.size)) * vols


def _block(kind: str, shape: tuple[int, int], start: int, *, static: dict, f: np.ndarray, seed: int
           ) -> np.ndarray:
    """One (dates, stocks) block of variable ``kind`` starting at row ``start``."""
    n_rows, n_stocks = shape
    rng = np.random.default_rng([seed, 2, start])  # same draws for every variable of a block
    noise = rng.standard_normal((len(STYLES) + 2, n_rows, n_stocks))
    t = np.arange(start, start + n_rows)[:, None]
    log_cap = static["log_cap"] + 0.002 * np.sqrt(t) * noise[0]
    styles = {
        "size": log_cap,
        "value": static["value"] + 0.1 * noise[1],
        "momentum": static["momentum"] + 0.3 * noise[2],
    }
    if kind in styles:
        return styles[kind]
    if kind == "market_cap":
        return np.exp(log_cap)
    P = f.shape[1] - 1 - len(STYLES)
    ft = f[start: start + n_rows]
    z = np.stack([(styles[s] - styles[s].mean(axis=1, keepdims=True)) / styles[s].std(axis=1, keepdims=True)
                  for s in STYLES], axis=2)
    r = ft[:, :1] + ft[:, 1: 1 + P][:, static["industry"]] + np.einsum("tnk,tk->tn", z, ft[:, 1 + P:])
    r += static["sigma"] * np.clip(noise[3] * (1.0 + 0.2 * np.abs(noise[4])), -15, 15)
    r[rng.random(r.shape) < 0.003] = np.nan
    return np.clip(r, -0.9, None)


def synthetic_panel(n_stocks: int, n_days: int, *, n_industries: int, date_chunk: int, seed: int = 0
                    ) -> xr.Dataset:
    """A lazy (dask) panel whose chunks are generated independently."""
    static = _static(n_stocks, n_industries, seed)
    f = _factor_returns(n_days, n_industries, seed)
    chunks = ((date_chunk,) * (n_days // date_chunk) + ((n_days % date_chunk,) if n_days % date_chunk else ()),
              (n_stocks,))

    def variable(kind: str) -> da.Array:
        def make(block_info=None):
            info = block_info[None]
            return _block(kind, info["chunk-shape"], info["array-location"][0][0], static=static, f=f, seed=seed)

        return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))

    labels = [f"IND{p:02d}" for p in range(n_industries)]
    dims = ("date", "stock")
    panel = xr.Dataset(
        {name: (dims, variable(name)) for name in ("returns", "market_cap", *STYLES)},
        coords={"date": pd.bdate_range("2010-01-04", periods=n_days).values,
                "stock": np.asarray([f"S{n:06d}" for n in range(n_stocks)])},
    )
    panel["industry"] = ("stock", np.asarray(labels)[static["industry"]])
    panel.attrs["styles"] = list(STYLES)
    return panel


# ---------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------


def _du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def _max_rel_diff(fit, ref) -> dict[str, float]:
    out = {}
    for name in ("factor_returns", "residuals", "factor_cov", "specific_var", "specific_vra"):
        a = ref.dataset[name].values
        b = np.asarray(fit.dataset[name].transpose(*ref.dataset[name].dims).values)
        scale = float(np.nanmax(np.abs(a)))
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            out[name] = float("inf")
            continue
        out[name] = float(np.nanmax(np.abs(a - b)) / scale) if scale > 0 else 0.0
    return out


def _copy_bandwidth_gb_s(n_bytes: int = 64 * 2**20, repeat: int = 20) -> float:
    """Memory bandwidth of a numpy copy (bytes read + written per second, GB/s), best of ``repeat``."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * n_bytes / best / 1e9


def _roofline(panel_gb: float, store_gb: float, bandwidth: float, t_mem: float, scale: float, t_big: float) -> dict:
    """What bounds the large fit: the bytes it must move (read the panel, write the fitted
    store, once each) at the measured bandwidth, and the in-memory kernels' own time (the
    reference fit scaled by the number of stocks)."""
    bytes_gb = (panel_gb + store_gb) * 2**30 / 1e9
    return {"bytes_min_gb": bytes_gb, "bandwidth_gb_s": bandwidth, "memory_seconds": bytes_gb / bandwidth,
            "in_memory_kernels_seconds": t_mem * scale, "measured_over_kernels": t_big / (t_mem * scale),
            "note": "bytes: the panel read and the fitted store written once each (sizes on disk), at the "
                    "copy bandwidth; kernels: the in-memory fit at the reference size x n_stocks / ref_stocks"}


def _worker_peaks_mb(client) -> list[float]:
    import resource

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(peak).values())


def _cluster(processes: bool, workers: int, threads: int, memory_limit: str, folder: Path):
    """The local cluster: ``workers`` processes × 1 thread, or one in-process worker × ``threads``."""
    from distributed import LocalCluster

    if processes:
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                            dashboard_address=None, local_directory=str(folder / "dask-scratch"))
    return LocalCluster(n_workers=1, threads_per_worker=threads, processes=False, memory_limit=memory_limit,
                        dashboard_address=None, local_directory=str(folder / "dask-scratch"))


def _task_seconds(stream: list[dict]) -> dict[str, float]:
    """Thread-seconds per kind of task (the key's prefix) in a task stream, largest first; the time
    of other actions (a dependency read back from the spill directory, a transfer) as "(action)"."""
    from dask.utils import key_split

    out: dict[str, float] = {}
    for task in stream:
        for span in task.get("startstops", ()):
            # compute under the task's name; transfers and spills to disk under "(action)"
            action = span.get("action")
            name = key_split(task["key"]) if action == "compute" else f"({action})"
            out[name] = out.get(name, 0.0) + span["stop"] - span["start"]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _large_fit(panel: str, store: str, date_chunk: int, cluster: dict) -> dict:
    """The large fit in a fresh process (spawned): its own cluster, timed, with its peaks, the wall
    seconds of each pass (``fit_chunked(timings=)``) and the compute thread-seconds per kind of task."""
    import resource

    from distributed import Client, get_task_stream
    from distributed.diagnostics import MemorySampler

    warnings.simplefilter("ignore")
    folder = Path(store).parent
    with _cluster(folder=folder, **cluster) as local, Client(local) as client:
        lazy = rm.load(panel, chunks={"date": date_chunk})
        sampler = MemorySampler()
        load_before = os.getloadavg()
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        with sampler.sample("fit", interval=0.5), get_task_stream(client) as stream:
            fit = fit_chunked(rm.FactorRiskModel(), lazy, store=store, timings=stages)
        seconds = time.perf_counter() - t0
        load_after = os.getloadavg()
        if cluster["processes"]:
            peaks = _worker_peaks_mb(client)
        else:  # the worker runs in this process, which did nothing but this fit
            peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
        finite = float(np.isfinite(fit.dataset["factor_returns"].values).mean())
    return {"seconds": seconds, "peaks": peaks, "cluster_peak": float(sampler.to_pandas().max().iloc[0]) / 2**20,
            "finite": finite, "load_before": load_before, "load_after": load_after,
            "stage_seconds": stages, "task_thread_seconds": _task_seconds(stream.data),
            "store_gb": _du(Path(store))}


def _in_fresh_process(func, *args) -> dict:
    """``func(*args)`` in a spawned process (not a daemon: a cluster of processes may start there)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(func, *args).result()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes (3,000 × 300; reference 600 stocks)")
    parser.add_argument("--n-stocks", type=int, default=None)
    parser.add_argument("--n-days", type=int, default=None)
    parser.add_argument("--ref-stocks", type=int, default=None, help="size of the in-memory comparison")
    parser.add_argument("--n-industries", type=int, default=20)
    parser.add_argument("--date-chunk", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2, help="worker processes with --processes")
    parser.add_argument("--threads", type=int, default=2, help="threads of the in-process worker")
    parser.add_argument("--processes", action="store_true", help="the cluster of --workers processes × 1 thread")
    parser.add_argument("--compare-processes", action="store_true",
                        help="also fit the large panel on the cluster of processes, in the same run")
    parser.add_argument("--memory-limit", default=None,
                        help="per worker, e.g. 2GiB (default: the cluster's 4 GiB, 1 GiB with --quick, split over the workers)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    n_stocks = args.n_stocks or (3_000 if args.quick else 50_000)
    n_days = args.n_days or (300 if args.quick else 2_520)
    ref_stocks = args.ref_stocks or (600 if args.quick else 5_000)
    date_chunk = args.date_chunk or (50 if args.quick else 42)
    warnings.simplefilter("ignore")

    from dask.utils import format_bytes, parse_bytes
    from distributed import Client

    total = parse_bytes("2GiB" if args.quick else "4GiB")
    processes_setup = {"processes": True, "workers": args.workers, "threads": 1,
                       "memory_limit": args.memory_limit or format_bytes(total // args.workers)}
    threads_setup = {"processes": False, "workers": 1, "threads": args.threads,
                     "memory_limit": args.memory_limit or format_bytes(total)}
    setup = processes_setup if args.processes else threads_setup
    workers = setup["workers"]
    memory_limit = setup["memory_limit"]

    panel_gb = (2 + len(STYLES)) * n_stocks * n_days * 8 / 2**30
    cluster_gb = workers * parse_bytes(memory_limit) / 2**30
    folder = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=args.workdir))
    model = rm.FactorRiskModel()
    doc: dict = {
        "benchmark": "scale",
        "config": {"n_stocks": n_stocks, "n_days": n_days, "ref_stocks": ref_stocks, "date_chunk": date_chunk,
                   "n_industries": args.n_industries, "n_styles": len(STYLES), "workers": workers,
                   "threads_per_worker": setup["threads"], "processes": setup["processes"],
                   "memory_limit_per_worker": memory_limit,
                   "cluster_memory_gb": cluster_gb, "panel_gb_uncompressed": panel_gb, "quick": args.quick},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "dask": dask.__version__, "xarray": xr.__version__},
        "conditions": {"load_average_before": list(os.getloadavg())},
    }
    t_start = time.perf_counter()
    try:
        with _cluster(folder=folder, **setup) as cluster, Client(cluster):
            # -- reference size: in memory vs chunked, same data ---------------------------
            small = synthetic_panel(ref_stocks, n_days, n_industries=args.n_industries, date_chunk=date_chunk)
            rm.save(small, folder / "ref_panel.zarr")
            in_memory = rm.load(folder / "ref_panel.zarr")
            # numba warm-up: enough dates for every kernel (the eigenfactor simulation needs more
            # dates than factors), or a cold cache compiles inside the timed fit
            model.fit(in_memory.isel(date=slice(0, 400), stock=slice(0, 300)))
            t0 = time.perf_counter()
            ref_fit = model.fit(in_memory)
            t_mem = time.perf_counter() - t0
            del in_memory
            lazy_small = rm.load(folder / "ref_panel.zarr", chunks={"date": date_chunk})
            t0 = time.perf_counter()
            chunked_small = fit_chunked(model, lazy_small, store=folder / "ref_fit.zarr")
            t_small = time.perf_counter() - t0
            agreement = _max_rel_diff(chunked_small, ref_fit)
            del ref_fit, chunked_small

            # -- large panel, generated chunk by chunk into zarr ---------------------------
            big = synthetic_panel(n_stocks, n_days, n_industries=args.n_industries, date_chunk=date_chunk)
            t0 = time.perf_counter()
            rm.save(big, folder / "panel.zarr")
            t_gen = time.perf_counter() - t0
        # -- the large fit, in a fresh process (its own cluster: the peaks cover it only) ----
        large = _in_fresh_process(_large_fit, str(folder / "panel.zarr"), str(folder / "fit.zarr"), date_chunk,
                                  setup)
        doc["sizes_gb_on_disk"] = {"panel": _du(folder / "panel.zarr"), "fit_store": large["store_gb"]}
        shutil.rmtree(folder / "fit.zarr", ignore_errors=True)
        former = None
        if args.compare_processes and not args.processes:
            former = _in_fresh_process(_large_fit, str(folder / "panel.zarr"), str(folder / "fit.zarr"),
                                       date_chunk, processes_setup)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    doc["conditions"]["load_average_after"] = list(os.getloadavg())
    doc["conditions"]["load_average_large_fit"] = {"before": list(large["load_before"]),
                                                   "after": list(large["load_after"])}
    doc["conditions"]["run_seconds"] = time.perf_counter() - t_start

    cells_ref, cells_big = ref_stocks * n_days, n_stocks * n_days
    t_big = large["seconds"]
    doc["results"] = [
        {"name": f"in-memory fit ({ref_stocks:,} stocks)", "seconds": t_mem, "stock_days_per_s": cells_ref / t_mem,
         "ratio_to_in_memory": 1.0},
        {"name": f"fit_chunked on the cluster ({ref_stocks:,} stocks)", "seconds": t_small,
         "stock_days_per_s": cells_ref / t_small, "ratio_to_in_memory": (cells_ref / t_small) / (cells_ref / t_mem)},
        {"name": f"fit_chunked on the cluster ({n_stocks:,} stocks)", "seconds": t_big,
         "stock_days_per_s": cells_big / t_big, "ratio_to_in_memory": (cells_big / t_big) / (cells_ref / t_mem)},
    ]
    if former is not None:
        doc["results"].append(
            {"name": f"fit_chunked on {args.workers} processes x 1 thread ({n_stocks:,} stocks)",
             "seconds": former["seconds"], "stock_days_per_s": cells_big / former["seconds"],
             "ratio_to_in_memory": (cells_big / former["seconds"]) / (cells_ref / t_mem),
             "memory_limit_per_worker": processes_setup["memory_limit"],
             "peak_rss_mb_per_worker": former["peaks"], "peak_cluster_process_memory_mb": former["cluster_peak"],
             "stage_seconds": former["stage_seconds"],
             "load_average": {"before": list(former["load_before"]), "after": list(former["load_after"])}})
    doc["roofline_large_fit"] = _roofline(doc["sizes_gb_on_disk"]["panel"], doc["sizes_gb_on_disk"]["fit_store"],
                                          _copy_bandwidth_gb_s(), t_mem, n_stocks / ref_stocks, t_big)
    doc["generation_seconds"] = t_gen
    doc["stage_seconds_large_fit"] = large["stage_seconds"]
    doc["task_thread_seconds_large_fit"] = large["task_thread_seconds"]
    doc["peak_rss_mb_per_worker_large_fit"] = large["peaks"]
    doc["peak_cluster_process_memory_mb_large_fit"] = large["cluster_peak"]
    doc["agreement_chunked_vs_in_memory_max_rel"] = agreement
    doc["large_fit_share_finite_factor_returns"] = large["finite"]
    doc["notes"] = ("throughput = stock-days / wall seconds of the whole fit (exposures, regression, factor "
                    "covariance, specific variance; reading and writing zarr for the chunked fits); "
                    "ratio_to_in_memory = throughput / in-memory throughput at the reference size, same run; "
                    "agreement = largest |chunked - in-memory| / largest |in-memory| per variable at the "
                    "reference size; peak RSS per worker = ru_maxrss of the worker process in a process that "
                    "ran only the large fit (with threads: the one process holding client and worker); "
                    "stage_seconds = wall seconds of each pass of the large fit (fit_chunked(timings=)); "
                    "task_thread_seconds = compute seconds per kind of task summed over the worker's threads "
                    "(distributed task stream; reads, writes and rechunks are tasks too)")

    mode = (f"{workers} workers x 1 thread" if setup["processes"] else f"1 worker x {setup['threads']} threads, in process")
    print(f"panel {n_stocks:,} x {n_days:,} ({panel_gb:.1f} GB uncompressed) on {mode} x "
          f"{memory_limit} ({cluster_gb:.1f} GB); generated in {t_gen:.1f} s")
    print(f"{'fit':<56} {'seconds':>9} {'stock-days/s':>14} {'vs in-memory':>13}")
    for row in doc["results"]:
        print(f"{row['name']:<56} {row['seconds']:>9.1f} {row['stock_days_per_s']:>14,.0f} "
              f"{row['ratio_to_in_memory']:>13.2f}")
    print("large fit, wall seconds per pass: "
          + ", ".join(f"{k} {v:.1f}" for k, v in large["stage_seconds"].items()))
    print("large fit, compute thread-seconds per kind of task: "
          + ", ".join(f"{k} {v:.1f}" for k, v in list(large["task_thread_seconds"].items())[:10]))
    peaks = large["peaks"]
    print(f"peak RSS per worker (MB): {', '.join(f'{p:,.0f}' for p in peaks)}; cluster peak "
          f"{large['cluster_peak']:,.0f} MB")
    print(f"chunked vs in-memory at {ref_stocks:,} stocks, max relative difference: {agreement}")
    print(f"load average {doc['conditions']['load_average_before'][0]:.1f} before, "
          f"{doc['conditions']['load_average_after'][0]:.1f} after; run {doc['conditions']['run_seconds']:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return doc


if __name__ == "__main__":
    main()
