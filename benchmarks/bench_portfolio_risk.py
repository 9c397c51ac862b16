"""Portfolio risk with :class:`StructuredCovariance` vs the dense N×N numpy path, in one run.

For N stocks, m factors and P portfolios (default N = 5,000, m = 70, P ∈ {1, 1,000}) and
exposures shaped like a fitted model's (market, one-hot industries, 10 styles; ``--exposures
dense`` for all-Gaussian columns, where the operator has no indicator columns to exploit):

* **structured**: ``cov.decompose(W)`` with every part materialised (totals, per-factor
  Euler contributions, factor exposures, per-stock marginal and component contributions,
  all as the labelled outputs a user gets), and
  ``cov.solve(x)`` (Woodbury + one refinement step; the first solve also pays for the
  Cholesky of the m×m matrix M);
* **dense**: form ``Σ = B F Bᵀ + D`` (N×N), then the same decomposition through one GEMM
  ``W Σ`` plus the same elementwise work done in place (no extra (P, N) temporaries), and
  a solve through ``scipy.linalg.cho_factor`` / ``cho_solve``.

Each timing is the best of ``--repeat`` runs after one warm-up run, the structured and dense
runs of a row interleaved so that both see the same load; peak memory is measured
separately with :mod:`tracemalloc` (numpy reports its buffers to it). The machine may be
shared, so compare the ratios, which are measured in the same run.

Usage::

    python benchmarks/bench_portfolio_risk.py            # N=5,000, m=70, P=1 and 1,000
    python benchmarks/bench_portfolio_risk.py --quick    # N=1,000, m=20, P=1 and 100
    python benchmarks/bench_portfolio_risk.py --exposures dense --output results/portfolio_risk_dense.json

Writes ``benchmarks/results/portfolio_risk.json`` (``--output`` to change).
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
from typing import Any, Callable

import numpy as np
import scipy
import scipy.linalg

from riskmodel.covariance.structured import StructuredCovariance

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "portfolio_risk.json"


# --- the two paths ----------------------------------------------------------------------


#: Exposure structures: ``barra`` = market column of ones, one-hot industries, 10 styles (what
#: ``FactorRiskModel`` fits); ``dense`` = every column Gaussian (market-like first column).
EXPOSURES = ("barra", "dense")


def make_world(n_stocks: int, n_factors: int, seed: int = 0, exposures: str = "barra"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A daily-scale risk model: exposures, PD factor covariance, d ≈ (1–3%)².

    ``exposures="barra"``: market (ones) + ``n_factors - 1 - k`` one-hot industries + ``k``
    Gaussian styles, ``k = min(10, n_factors // 3)`` (70 factors: 59 industries, 10 styles);
    ``"dense"``: all columns Gaussian, the first market-like (1 + 0.2 N(0, 1)).
    """
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n_stocks, n_factors))
    B[:, 0] = 1.0 + 0.2 * rng.normal(size=n_stocks)
    if exposures == "barra":
        n_styles = min(10, n_factors // 3)
        n_industries = n_factors - 1 - n_styles
        B[:, 0] = 1.0
        industry = rng.integers(0, n_industries, size=n_stocks)
        B[:, 1 : 1 + n_industries] = np.arange(n_industries) == industry[:, None]
    elif exposures != "dense":
        raise ValueError(f"exposures must be one of {EXPOSURES}, got {exposures!r}")
    A = rng.normal(size=(n_factors, n_factors))
    F = (A @ A.T / n_factors + 0.2 * np.eye(n_factors)) * 1e-5
    F[0, 0] += 1e-4
    d = rng.uniform(1e-4, 9e-4, size=n_stocks)
    return B, F, d


def structured_decompose(cov: StructuredCovariance, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """Full decomposition, every part taken out as the user gets it (labelled, then
    ``.values``): totals, per-factor parts, factor exposures and every per-stock contribution,
    in the order of :func:`dense_parts`."""
    dec = cov.decompose(W)
    return tuple(
        np.asarray(getattr(part, "values", part))
        for part in (
            dec.total_vol,
            dec.factor_vol,
            dec.specific_vol,
            dec.factor_contributions,
            dec.specific_contribution,
            dec.marginal_contributions,
            dec.component_contributions,
            dec.factor_exposures,
        )
    )


def dense_sigma(B: np.ndarray, F: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``Σ = B F Bᵀ + D`` as an N×N array (the baseline)."""
    sigma = (B @ F) @ B.T
    sigma[np.diag_indices_from(sigma)] += d
    return sigma


def dense_parts(sigma: np.ndarray, B: np.ndarray, F: np.ndarray, d: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same decomposition from the dense Σ, as fast as plain numpy does it.

    One GEMM ``W Σ`` (O(P N²), the cost that matters), then the elementwise work in place:
    ``σ² = rowdot(W, WΣ)``, MCR = ``WΣ / σ`` scaled in place, CR = ``W ∘ MCR`` (the two
    (P, N) outputs are the only (P, N) arrays allocated), factor parts from ``x = Bᵀ w``.
    Returns the parts of :func:`structured_decompose`, factor exposures last.
    """
    sw = W @ sigma
    var = np.vecdot(W, sw)
    x = W @ B
    fx = x @ F
    factor_var = np.vecdot(x, fx)
    specific_var = np.einsum("pn,pn,n->p", W, W, d)
    vol = np.sqrt(var)
    inv = 1.0 / vol
    sw *= inv[:, None]
    return (vol, np.sqrt(factor_var), np.sqrt(specific_var), x * fx * inv[:, None], specific_var * inv, sw,
            W * sw, x)


def dense_decompose(sigma: np.ndarray, B: np.ndarray, F: np.ndarray, d: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`dense_parts` without the factor exposures: ``(vol, factor_vol, specific_vol,
    factor_contributions, specific_contribution, mcr, cr)``."""
    return dense_parts(sigma, B, F, d, W)[:7]


def dense_solve(sigma: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Σ⁻¹ x`` by a dense Cholesky."""
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(sigma, lower=True, check_finite=False), x, check_finite=False)


# --- measurement ------------------------------------------------------------------------


def best_time(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Seconds: best and median wall time, and best CPU time (all threads), of ``repeat``
    runs after one warm-up run. CPU time is less disturbed by other processes on a busy box."""
    fn()
    wall, cpu = [], []
    for _ in range(max(repeat, 1)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"best_s": float(min(wall)), "median_s": float(np.median(wall)), "cpu_s": float(min(cpu))}


#: Runs shorter than this get one untimed run before each timed one in :func:`paired_times`.
REWARM_BELOW_S = 0.05
#: Pause before each timed run in :func:`paired_times`: OpenBLAS's worker threads spin for
#: ~0.1 s after a multithreaded call before they sleep, and while they spin they hold the
#: second core (measured here: the structured decomposition took 33-38 ms within 0.05 s of
#: the dense GEMM, 18-21 ms after 0.1-0.4 s, 17.4 ms back to back).
SETTLE_S = 0.2


def paired_times(fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeat: int, settle: float = SETTLE_S
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """:func:`best_time` of two functions with their runs interleaved (a, b, a, b, …), so that
    both see the same load on a shared machine and their ratio is fair.

    A short function is run once untimed before each timed run: the other path (a dense Σ of
    200 MB) has just flushed the caches, and a sub-millisecond solve would otherwise be timed
    cold, unlike in :func:`best_time` or in a loop of solves. Each timed run starts
    ``settle`` seconds after the previous call, once the other path's BLAS threads have
    stopped spinning (:data:`SETTLE_S`); both paths get the same pause.
    """
    rewarm = []
    for fn in (fn_a, fn_b):
        start = time.perf_counter()
        fn()
        rewarm.append(time.perf_counter() - start < REWARM_BELOW_S)
    times: tuple[dict[str, list[float]], ...] = ({"wall": [], "cpu": []}, {"wall": [], "cpu": []})
    for _ in range(max(repeat, 1)):
        for fn, acc, warm in zip((fn_a, fn_b), times, rewarm):
            time.sleep(settle)
            if warm:
                fn()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            acc["wall"].append(time.perf_counter() - start)
            acc["cpu"].append(time.process_time() - start_cpu)
    a, b = (
        {"best_s": float(min(t["wall"])), "median_s": float(np.median(t["wall"])), "cpu_s": float(min(t["cpu"]))}
        for t in times
    )
    return a, b


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc, numpy buffers included) while ``fn`` runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak)


def _max_rel(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        worst = max(worst, float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-300)))
    return worst


def run(
    n_stocks: int = 5_000,
    n_factors: int = 70,
    n_portfolios: tuple[int, ...] = (1, 1_000),
    repeat: int = 5,
    seed: int = 0,
    exposures: str = "barra",
    settle: float = SETTLE_S,
) -> dict[str, Any]:
    """Time and measure both paths; return a JSON-ready dict of rows and settings."""
    B, F, d = make_world(n_stocks, n_factors, seed, exposures)
    rng = np.random.default_rng(seed + 1)
    rows: list[dict[str, Any]] = []

    def add(task: str, p: int, s_time: dict, d_time: dict, s_mem: int, d_mem: int, err: float, note: str) -> None:
        rows.append(
            {
                "task": task,
                "n_portfolios": p,
                "structured_s": s_time["best_s"],
                "dense_s": d_time["best_s"],
                "structured_median_s": s_time["median_s"],
                "dense_median_s": d_time["median_s"],
                "structured_cpu_s": s_time["cpu_s"],
                "dense_cpu_s": d_time["cpu_s"],
                "speedup": d_time["best_s"] / s_time["best_s"],
                "structured_peak_bytes": s_mem,
                "dense_peak_bytes": d_mem,
                "memory_ratio": d_mem / max(s_mem, 1),
                "max_rel_diff": err,
                "note": note,
            }
        )

    # building: operator (validation, Cholesky of F, B L) vs forming Σ
    build = lambda: StructuredCovariance.from_arrays(B, F, d)  # noqa: E731
    add("build", 0, *paired_times(build, lambda: dense_sigma(B, F, d), repeat, settle),
        peak_memory(build), peak_memory(lambda: dense_sigma(B, F, d)), 0.0,
        "operator (validate, chol F, B L) vs form Σ = BFBᵀ + D")

    cov = build()
    sigma = dense_sigma(B, F, d)
    for p in n_portfolios:
        W = rng.normal(size=(p, n_stocks)) / n_stocks
        s_out = structured_decompose(cov, W)
        d_out = dense_parts(sigma, B, F, d, W)
        err = _max_rel(tuple(np.atleast_1d(v) for v in s_out), tuple(np.atleast_1d(v) for v in d_out))
        s_time, d_time = paired_times(lambda: structured_decompose(cov, W), lambda: dense_parts(sigma, B, F, d, W),
                                      repeat, settle)
        s_mem = peak_memory(lambda: structured_decompose(cov, W))
        d_mem = peak_memory(lambda: dense_parts(sigma, B, F, d, W))
        add("decompose", p, s_time, d_time, s_mem, d_mem, err, "full decomposition, Σ already formed")
        form = best_time(lambda: dense_sigma(B, F, d), 1)
        both = {k: form[k] + d_time[k] for k in d_time}
        d_both_mem = peak_memory(lambda: dense_parts(dense_sigma(B, F, d), B, F, d, W))
        add("form+decompose", p, s_time, both, s_mem, d_both_mem, err, "dense includes forming Σ")

    x = rng.normal(size=n_stocks)
    ref = dense_solve(sigma, x)
    err = float(np.max(np.abs(cov.solve(x) - ref)) / np.max(np.abs(ref)))
    c_fac = scipy.linalg.cho_factor(sigma, lower=True, check_finite=False)
    add("solve", 1, *paired_times(lambda: cov.solve(x), lambda: scipy.linalg.cho_solve(c_fac, x, check_finite=False),
                                  max(repeat, 20), settle),
        peak_memory(lambda: cov.solve(x)), peak_memory(lambda: scipy.linalg.cho_solve(c_fac, x, check_finite=False)),
        err, "per solve, factorisations cached (Woodbury + 1 refinement vs cho_solve)")

    def fresh_solve() -> None:
        StructuredCovariance.from_arrays(B, F, d).solve(x)

    add("setup+solve", 1, *paired_times(fresh_solve, lambda: dense_solve(dense_sigma(B, F, d), x), repeat, settle),
        peak_memory(fresh_solve), peak_memory(lambda: dense_solve(dense_sigma(B, F, d), x)),
        err, "build operator + chol M + solve vs form Σ + cho_factor + cho_solve")

    return {
        "benchmark": "portfolio_risk",
        "settings": {"n_stocks": n_stocks, "n_factors": n_factors, "n_portfolios": list(n_portfolios),
                     "repeat": repeat, "seed": seed, "exposures": exposures, "settle_s": settle,
                     "grouped_kernel": cov._groups is not None},
        "machine": _machine(),
        "rows": rows,
    }


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads")} for p in threadpool_info()]
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass
    return info


def format_table(result: dict[str, Any]) -> str:
    """A fixed-width text table of the rows."""
    s = result["settings"]
    head = (f"Portfolio risk: N={s['n_stocks']:,} stocks, m={s['n_factors']} factors, "
            f"{s.get('exposures', 'dense')} exposures "
            f"(best of {s['repeat']} after warm-up; ratios = dense / structured; "
            f"CPU = process time over all threads)")
    cols = (f"{'task':<15}{'P':>6}{'structured':>13}{'dense':>13}{'speedup':>10}{'struct CPU':>13}{'dense CPU':>13}"
            f"{'peak struct':>14}{'peak dense':>13}{'mem ratio':>11}{'max rel diff':>14}")
    lines = [head, cols, "-" * len(cols)]
    for r in result["rows"]:
        lines.append(
            f"{r['task']:<15}{r['n_portfolios']:>6}{_ms(r['structured_s']):>13}{_ms(r['dense_s']):>13}"
            f"{r['speedup']:>9.1f}x{_ms(r['structured_cpu_s']):>13}{_ms(r['dense_cpu_s']):>13}"
            f"{_mb(r['structured_peak_bytes']):>14}{_mb(r['dense_peak_bytes']):>13}"
            f"{r['memory_ratio']:>10.1f}x{r['max_rel_diff']:>14.1e}"
        )
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=1,000, m=20, P=1 and 100, 3 repeats")
    parser.add_argument("--n-stocks", type=int, default=None)
    parser.add_argument("--n-factors", type=int, default=None)
    parser.add_argument("--n-portfolios", type=int, nargs="+", default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settle", type=float, default=SETTLE_S,
                        help="seconds of pause before each timed run (BLAS threads stop spinning)")
    parser.add_argument("--exposures", choices=EXPOSURES, default="barra",
                        help="barra: market + one-hot industries + 10 styles (default); dense: all Gaussian")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS threads (threadpoolctl) for both paths; default: leave as is")
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return _main(args)
    return _main(args)


def _main(args: argparse.Namespace) -> int:
    base = dict(n_stocks=1_000, n_factors=20, n_portfolios=(1, 100), repeat=3) if args.quick else \
        dict(n_stocks=5_000, n_factors=70, n_portfolios=(1, 1_000), repeat=5)
    for key in ("n_stocks", "n_factors", "repeat"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.n_portfolios is not None:
        base["n_portfolios"] = tuple(args.n_portfolios)
    load_before = os.getloadavg()
    result = run(seed=args.seed, exposures=args.exposures, settle=args.settle, **base)
    result["settings"]["blas_threads_limit"] = args.threads
    result["conditions"] = {"load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
                            "note": "shared machine; structured and dense timed interleaved in one run (their ratio is fair)"}
    print(format_table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.output)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
