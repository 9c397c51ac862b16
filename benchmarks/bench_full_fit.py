"""Benchmark: the full fundamental risk-model fit at 5,000 stocks x 10 years.

Times ``FactorRiskModel().fit(panel)`` with default settings — exposures (clean, impute),
daily WLS factor returns, the Σ_f forecast series (EWMA + Newey–West, eigenfactor
adjustment, volatility regime adjustment) and the specific-variance series D (time series,
structural blend, Bayesian shrinkage, VRA) — on a panel from ``rm.simulate`` (60
industries, 10 styles), and compares it with skfolio's ``CharacteristicsFactorModel.fit``
fed the same returns, caps, industries and raw characteristics (market + one-hot industries
with the industry zero-sum constraint + one pass-through style factor per characteristic,
skfolio's default cleaning, factor prior and idiosyncratic estimators).

Every measurement runs in its own subprocess, so that its peak memory is its own: the
peak resident set (``VmHWM`` reset after the inputs are loaded) minus the resident set
before the fit, reported against the input bytes (returns + styles + caps, float64). The
riskmodel row also reports the ``tracemalloc`` peak of numpy allocations and the stage
times (``build_exposures``, ``factor_returns``, ``factor_covariance``,
``specific_variance``). riskmodel is timed after a warm-up (JIT cache load), min of
``--repeat``, and — the machine may be shared — measured again after the peer, keeping
the better run; skfolio is fitted once. Process CPU seconds are reported beside wall
seconds (they move less when other jobs compete for the cores), split into user time (the
arithmetic) and system time (mostly the kernel zeroing fresh pages, seconds per GB on a
virtual machine whose host takes freed memory back), with the minor page faults. skfolio
holds dense (date, stock, factor) exposures,
so at full size it is fitted on the last ``--peer-days`` dates only and its time is
extrapolated linearly in the number of dates (said so in the table).

Prints a Markdown table and writes JSON to ``benchmarks/results/full_fit.json``.

Usage::

    python benchmarks/bench_full_fit.py                       # full size
    python benchmarks/bench_full_fit.py --quick --no-peers    # toy size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

RESULTS = Path(__file__).resolve().parent / "results" / "full_fit.json"
FULL = {"n_stocks": 5000, "n_days": 2520, "n_industries": 60, "n_styles": 10, "peer_days": 504}
QUICK = {"n_stocks": 400, "n_days": 260, "n_industries": 8, "n_styles": 4, "peer_days": 260}


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------


def style_names(n_styles: int) -> list[str]:
    """``["size", "s1", ...]``: size plus ``n_styles - 1`` generic characteristics."""
    return ["size", *[f"s{i}" for i in range(1, n_styles)]]


def make_panel(config: dict[str, Any], path: Path, seed: int = 0) -> Path:
    """Simulate the panel once (``n_days + 1`` days, the first — without returns — dropped)
    and save it to ``path``; reuse the file when it exists with the same shape.

    A file at ``path`` that is not a panel of this shape is never replaced (a quick run
    must not overwrite the cached full-size panel, nor anything else): that is an error
    asking for another ``--panel``.
    """
    import riskmodel as rm

    if path.exists():
        try:
            p = rm.load(path)
            shape = (p.sizes["stock"], p.sizes["date"])
        except Exception as err:  # noqa: BLE001 - reported below, the file is left alone
            shape = f"not a riskmodel panel ({type(err).__name__})"
        if shape == (config["n_stocks"], config["n_days"]):
            return path
        raise SystemExit(f"{path} holds {shape if isinstance(shape, str) else '%d stocks x %d days' % shape}, "
                         f"not the {config['n_stocks']} x {config['n_days']} panel asked for; it is left as it is: "
                         "pass --panel another path")
    styles = style_names(config["n_styles"])
    p = rm.simulate(config["n_stocks"], config["n_days"] + 1, seed=seed,
                    n_industries=config["n_industries"], styles=styles)
    keep = ["returns", "market_cap", "industry", *styles]
    p = p[keep].isel(date=slice(1, None))
    p.attrs = {"styles": styles}
    rm.save(p, path)
    return path


def _load_inputs(path: Path, n_days: int | None = None):
    import riskmodel as rm

    p = rm.load(path).load()
    styles = list(p.attrs["styles"])
    p = p[["returns", "market_cap", "industry", *styles]]
    if n_days is not None and n_days < p.sizes["date"]:
        p = p.isel(date=slice(p.sizes["date"] - n_days, None))
    p.attrs["styles"] = styles
    return p, styles


def input_bytes(n_stocks: int, n_days: int, n_styles: int) -> int:
    """Bytes of the float64 inputs: returns + styles + caps."""
    return (2 + n_styles) * n_stocks * n_days * 8


# ---------------------------------------------------------------------------------------
# memory helpers (Linux /proc, with getrusage as fallback)
# ---------------------------------------------------------------------------------------


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_bytes() -> int:
    kb = _status_kb("VmHWM")
    return kb * 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------------------
# workers (run in subprocesses)
# ---------------------------------------------------------------------------------------


def _cpu_and_faults() -> tuple[float, float, int]:
    """User and system CPU seconds of this process so far, and its minor page faults.

    System time is mostly the kernel handing out (zeroed) fresh pages: on a virtual machine
    whose host reclaims freed guest memory it can reach seconds per GB, so it is reported
    apart from the user time, which is the library's own arithmetic.
    """
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def worker_riskmodel(path: Path, repeat: int, n_days: int | None = None) -> dict[str, Any]:
    """Full fit: peak memory of a first (warm-up) fit, then min time of ``repeat`` fits and stages.

    With ``n_days`` only the last ``n_days`` dates are fitted (the dates the peer is fitted on).
    """
    import riskmodel as rm
    from riskmodel.covariance.factor import factor_covariance
    from riskmodel.covariance.specific import specific_variance
    from riskmodel.exposures import build_exposures
    from riskmodel.regression import factor_returns

    warnings.simplefilter("ignore")
    panel, styles = _load_inputs(path, n_days)
    model = rm.FactorRiskModel(progress=False)
    rss0 = _rss_bytes()
    _reset_peak()
    tracemalloc.start()
    fit = model.fit(panel)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _peak_bytes() - rss0
    del fit
    times = []
    cpu = []
    user = []
    system = []
    faults = []
    for _ in range(repeat):
        u0, s0, f0 = _cpu_and_faults()
        t0 = time.perf_counter()
        fit = model.fit(panel)
        times.append(time.perf_counter() - t0)
        u1, s1, f1 = _cpu_and_faults()
        user.append(u1 - u0)
        system.append(s1 - s0)
        cpu.append(user[-1] + system[-1])
        faults.append(f1 - f0)
        del fit
    stages: dict[str, float] = {}

    def stage(name, f):
        best = np.inf
        out = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = f()
            best = min(best, time.perf_counter() - t0)
        stages[name] = best
        return out

    ex = stage("build_exposures", lambda: build_exposures(panel, styles))
    returns = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    wls = stage("factor_returns", lambda: factor_returns(returns, ex))
    stage("factor_covariance", lambda: factor_covariance(wls.factor_returns))
    stage("specific_variance", lambda: specific_variance(wls.residuals, ex))
    best = int(np.argmin(times))  # CPU, user and system time all of the fastest fit
    return {"seconds": min(times), "all_seconds": times, "cpu_seconds": cpu[best], "peak_bytes": int(peak),
            "user_seconds": user[best], "system_seconds": system[best], "page_faults": faults[best],
            "all_user_seconds": user, "all_system_seconds": system,
            "tracemalloc_peak_bytes": int(traced), "stages": stages,
            "n_days_fitted": int(panel.sizes["date"])}


def _skfolio_panel(panel, styles):
    from skfolio.containers import AssetPanel, FieldCategorical

    T, N = panel.sizes["date"], panel.sizes["stock"]
    cap = np.ascontiguousarray(panel["market_cap"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    active = np.isfinite(cap)
    labels_raw = panel["industry"].to_numpy().astype(str)
    labels = sorted(set(labels_raw.tolist()))
    codes = np.searchsorted(np.array(labels), labels_raw).astype(np.int32)
    ind = np.broadcast_to(codes[None, :], (T, N)).copy()
    ind[~active] = -1
    fields = {
        "returns": np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64),
        "market_cap": cap,
        **{s: np.ascontiguousarray(panel[s].transpose("date", "stock").to_numpy(), dtype=np.float64) for s in styles},
        "industry": FieldCategorical(ind, levels=labels),
    }
    return AssetPanel(fields=fields, observations=panel["date"].to_numpy(),
                      asset_names=panel["stock"].to_numpy().astype(str), active_mask=active)


def skfolio_model(styles: list[str]):
    """skfolio's CharacteristicsFactorModel on the same inputs (its default estimators)."""
    from skfolio.descriptor import Passthrough
    from skfolio.factor_exposure import FixedWeightedFactor, GlobalFactor, OneHotCategoricalFactors
    from skfolio.prior import CharacteristicsFactorModel

    factors = [("market", GlobalFactor()),
               ("industry", OneHotCategoricalFactors(category="industry", family="industry"))]
    factors += [(s, FixedWeightedFactor(descriptors=[(s, Passthrough(field=s))], family="style")) for s in styles]
    return CharacteristicsFactorModel(factors=factors, constrained_families=[("industry", None)])


def worker_skfolio(path: Path, n_days: int, repeat: int = 2) -> dict[str, Any]:
    """skfolio fits on the last ``n_days`` dates: the first (cold) and the best of the
    following (warm, like riskmodel's fits after its warm-up), with the peak memory."""
    warnings.simplefilter("ignore")
    panel, styles = _load_inputs(path, n_days)
    characteristics = _skfolio_panel(panel, styles)
    del panel
    rss0 = _rss_bytes()
    _reset_peak()
    fits = []
    n_fac = 0
    for _ in range(max(repeat, 1)):
        model = skfolio_model(styles)
        u0, s0, f0 = _cpu_and_faults()
        t0 = time.perf_counter()
        model.fit(characteristics=characteristics)
        seconds = time.perf_counter() - t0
        u1, s1, f1 = _cpu_and_faults()
        n_fac = int(model.factor_model_.factor_returns_df.shape[1])
        fits.append({"seconds": seconds, "cpu_seconds": (u1 - u0) + (s1 - s0), "user_seconds": u1 - u0,
                     "system_seconds": s1 - s0, "page_faults": f1 - f0})
        del model
    peak = _peak_bytes() - rss0
    warm = min(fits[1:], key=lambda fit: fit["seconds"]) if len(fits) > 1 else fits[0]
    return {**warm, "state": "warm (best fit after a first one)" if len(fits) > 1 else "cold (one fit)",
            "cold": fits[0], "all_fits": fits, "peak_bytes": int(peak), "n_days_fitted": int(n_days),
            "n_factors": n_fac}


def _run_worker(kind: str, path: Path, extra: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", kind, "--panel", str(path), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "numba", "scipy", "xarray", "riskmodel", "skfolio"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional peer is just absent
            pass
    return out


def _fmt_optional(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(report: dict[str, Any]) -> str:
    rows = [
        "| method | seconds | × riskmodel | CPU seconds | of which system | peak memory (MB) | memory / inputs | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = report["results"][0]["seconds"]
    for r in report["results"]:
        rows.append(
            f"| {r['name']} | {r['seconds']:.2f} | {r['seconds'] / base:.1f} | {r['cpu_seconds']:.1f} | "
            f"{_fmt_optional(r.get('system_seconds'), '.1f')} | {r['peak_bytes'] / 1e6:.0f} | {r['memory_ratio']:.2f} | {r.get('note', '')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="toy size (400 stocks x 260 days)")
    ap.add_argument("--no-peers", action="store_true", help="skip skfolio")
    ap.add_argument("--n-stocks", type=int)
    ap.add_argument("--n-days", type=int)
    ap.add_argument("--peer-days", type=int, help="dates skfolio is fitted on (extrapolated to n_days)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--peer-repeat", type=int, default=2, help="skfolio fits (the first cold, the best later one quoted)")
    ap.add_argument("--panel", type=Path, help="panel file (simulated and saved when absent)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--_worker", choices=["riskmodel", "skfolio"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker == "riskmodel":
        print(json.dumps(worker_riskmodel(args.panel, args.repeat, args.peer_days)))
        return {}
    if args._worker == "skfolio":
        print(json.dumps(worker_skfolio(args.panel, args.peer_days, args.peer_repeat)))
        return {}

    config = dict(QUICK if args.quick else FULL)
    for key in ("n_stocks", "n_days", "peer_days"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config["peer_days"] = min(config["peer_days"], config["n_days"])
    N, T, K = config["n_stocks"], config["n_days"], config["n_styles"]
    path = args.panel or Path(f"/tmp/bench_full_fit_{N}x{T}x{config['n_industries']}x{K}.nc")
    t0 = time.perf_counter()
    make_panel(config, path)
    config["panel_seconds"] = time.perf_counter() - t0
    inputs = input_bytes(N, T, K)

    load_before = os.getloadavg()
    results = []
    rm_row = _run_worker("riskmodel", path, ["--repeat", str(args.repeat)], args.timeout)
    rm_row.update(name="riskmodel FactorRiskModel.fit", memory_ratio=rm_row["peak_bytes"] / inputs,
                  note=f"min of {args.repeat} after warm-up")
    results.append(rm_row)
    if not args.no_peers:
        Tp = config["peer_days"]
        sk = _run_worker("skfolio", path, ["--peer-days", str(Tp), "--peer-repeat", str(args.peer_repeat)],
                         args.timeout)
        measured = sk["seconds"]
        sk.update(
            name="skfolio CharacteristicsFactorModel.fit",
            measured_seconds=measured,
            seconds=measured * T / Tp,
            cpu_seconds=sk["cpu_seconds"] * T / Tp,
            user_seconds=sk["user_seconds"] * T / Tp,
            system_seconds=sk["system_seconds"] * T / Tp,
            memory_ratio=sk["peak_bytes"] / input_bytes(N, Tp, K),
            extrapolated=Tp < T,
            note=(f"{sk['state']}: fitted on the last {Tp} of {T} dates in {measured:.1f} s, time x {T / Tp:.2f} "
                  "(linear in dates); memory measured on that subset" if Tp < T else f"{sk['state']}: full panel"),
        )
        results.append(sk)
        # like with like: riskmodel fitted on the same last Tp dates, both warm, nothing extrapolated
        same = _run_worker("riskmodel", path, ["--repeat", str(args.repeat), "--peer-days", str(Tp)], args.timeout)
        same.update(name=f"riskmodel FactorRiskModel.fit (the same {Tp} dates)",
                    memory_ratio=same["peak_bytes"] / input_bytes(N, Tp, K),
                    note=f"min of {args.repeat} after warm-up, on the {Tp} dates skfolio is fitted on")
        results.append(same)
        # the machine is shared: measure riskmodel again after the peer and keep the best
        again = _run_worker("riskmodel", path, ["--repeat", str(args.repeat)], args.timeout)
        rm_row["rounds_seconds"] = [rm_row["seconds"], again["seconds"]]
        if again["seconds"] < rm_row["seconds"]:
            for key in ("seconds", "all_seconds", "cpu_seconds", "user_seconds", "system_seconds", "page_faults",
                        "all_user_seconds", "all_system_seconds", "stages"):
                rm_row[key] = again[key]
        rm_row["note"] = f"min of {args.repeat} after warm-up, best of 2 runs around the peer"
    report = {
        "benchmark": "full_fit",
        "config": config,
        "input_bytes": inputs,
        "results": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "numba_threads": _numba_threads()},
        "versions": _versions(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    report["conditions"] = {
        "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
        "riskmodel": f"warm: min of {args.repeat} fits after a warm-up fit, in a fresh process",
        "skfolio": f"best of fits 2..{args.peer_repeat} in a fresh process (the first, cold, is kept as 'cold')",
        "malloc": "glibc defaults (no MALLOC_* settings)",
    }
    if len(results) > 1:
        sk, same = results[1], results[2]
        # extrapolated: skfolio's time on Tp dates x T / Tp against riskmodel on all T dates
        report["speedup_vs_skfolio"] = sk["seconds"] / results[0]["seconds"]
        report["like_with_like"] = {
            "dates": sk["n_days_fitted"],
            "wall_ratio": sk["measured_seconds"] / same["seconds"],
            "user_cpu_ratio": sk["user_seconds"] * sk["n_days_fitted"] / T / same["user_seconds"],
            "cpu_ratio": sk["cpu_seconds"] * sk["n_days_fitted"] / T / same["cpu_seconds"],
            "cold_wall_ratio": sk["cold"]["seconds"] / same["seconds"],
            "extrapolated_user_cpu_ratio": sk["user_seconds"] / results[0]["user_seconds"],
            "note": "both warm, both fitted on the same last dates in fresh processes, nothing extrapolated "
                    "(extrapolated_user_cpu_ratio: skfolio's user CPU x T/Tp against riskmodel's on all T dates)",
        }
    print(f"Full fit, {N} stocks x {T} dates, {config['n_industries']} industries, {K} styles; "
          f"inputs {inputs / 1e6:.0f} MB\n")
    print(table(report))
    st = rm_row["stages"]
    print("\nriskmodel stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in st.items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _numba_threads() -> int | None:
    try:
        import numba

        return int(numba.config.NUMBA_NUM_THREADS)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    main()
