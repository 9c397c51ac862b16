"""Benchmark: how far the full fit is from this machine's limits, and what the Σ_f levers buy.

Fits ``FactorRiskModel()`` on the 5,000 × 2,520 benchmark panel of ``bench_full_fit.py``
(60 industries + 10 styles, m = 71 factors) in ONE worker process, side by side, round by
round (``--rounds``, the configurations alternating within each round):

* ``current`` — the default settings (100 eigen-adjustment draws every 63 dates);
* ``former panel checks`` — the same with the panel checks run as before issue 21 (numpy on
  one thread instead of the ``riskmodel/kernels/panel_checks.py`` kernels): its fitted arrays
  must be bit-identical to ``current``'s (``fit_bit_identical_to_current``);
* ``eigen_sims=50`` — half the Monte-Carlo draws (a change of the model's numbers);
* ``eigen_sims=0`` — no eigen adjustment: Σ_f keeps only its per-date eigenvalue-floor
  repair, one LAPACK ``eigh`` per date, so this row is the floor of any Monte-Carlo change.

For each it records the fit's wall seconds (min over rounds), user and system CPU seconds,
the peak resident set above the one before the fit (``VmHWM`` reset, against the input
bytes), the number of 71 × 71 eigendecompositions, and how far its Σ_f is from the current
method's (per date, the max and the median over dates of the largest entry's relative
difference) while D is checked bit-identical (``specific_var`` and ``specific_vra``: the
Σ_f settings must not touch them); the current fit's SHA-1s must repeat round to round.
For the current settings it times the stages in the same process: the panel checks
(``check_fundamental_data`` and ``validate_panel``, which ``build_exposures`` runs first),
exposures, regression, Σ_f split into
EWMA + Newey–West, the Monte Carlo of the eigen adjustment, the per-date rebuild and the
VRA, and D split into its time series, cross section, VRA and final variance.

The panel checks (``check_fundamental_data`` + ``validate_panel``) are also timed alone, the
former way and the new way alternating (``panel_checks`` in the JSON).

The machine's limits are measured in the same run (the probes of ``benchmarks/_machine.py``),
per CPU second as well as per wall
second (the machine is shared; a one-thread probe's rate per CPU second is what a core does
while it runs): memory bandwidth (a one-thread 256 MB ``np.copyto``, read + write bytes),
peak double-precision flops (a one-thread 1,024² ``dgemm`` times the cores), one 71 × 71
``eigh`` and one 71 × 71 ``gemm`` on one BLAS thread. The roofline of the fit is
``max(bytes / bandwidth, flops / peak)`` with the bytes the inputs read once plus the fitted
arrays written once, and the flops counted from the dominant arithmetic (formulas in
:func:`fit_flops`); the fit's user CPU seconds are set against it on every core. The
premise of a warm-started eigensolver is measured too: how far yesterday's eigenvectors are
from diagonalising today's ``F⁰`` (largest off-diagonal entry of ``Q_{t−1}ᵀ F⁰_t Q_{t−1}``
and the number of strongly coupled pairs, ``|a_ij| > 0.1 |a_ii − a_jj|``), and a cyclic
Jacobi in numba started there against LAPACK (sweeps, time, agreement).

Writes ``benchmarks/results/speed_fit.json`` (with the load average before and after, the
thread counts and the versions) and prints a table.

Usage::

    python benchmarks/bench_speed_fit.py                        # full size, 2 rounds
    python benchmarks/bench_speed_fit.py --quick --rounds 1     # 400 x 260
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import best_of_cpu, copy_probe, gemm_probe  # noqa: E402
from bench_full_fit import (  # noqa: E402
    FULL,
    QUICK,
    _cpu_and_faults,
    _load_inputs,
    _peak_bytes,
    _reset_peak,
    _rss_bytes,
    input_bytes,
    make_panel,
)

RESULTS = Path(__file__).resolve().parent / "results" / "speed_fit.json"
CONFIGS = {"current": {}, "former panel checks": {}, "eigen_sims=50": {"eigen_sims": 50},
           "eigen_sims=0": {"eigen_sims": 0}}
#: the configurations that run the panel checks as before issue 21 (numpy, one thread)
FORMER_CHECKS = ("former panel checks",)


def panel_check_kernels(on: bool) -> None:
    """Run the panel checks as numba kernels (the default at this size) or as numpy (former)."""
    from riskmodel.data import validation
    from riskmodel.models import pipeline

    validation._KERNEL_MIN_CELLS = pipeline._KERNEL_MIN_CELLS = (2**20 if on else 1 << 62)


# ---------------------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------------------


def machine_limits(quick: bool) -> dict[str, Any]:
    """Memory bandwidth, dgemm flops and the 71 × 71 eigh/gemm times.

    The machine is shared, so besides the best wall time of each probe its rate per CPU
    second is recorded: a one-thread copy and a one-thread ``dgemm`` per CPU second are
    what one core does while it runs, whatever the other jobs take; the machine's peak is
    that times the cores (``peak_GFlops_per_core × cpu_count``), its bandwidth the copy
    rate of one core (a lower bound: two cores may draw more).
    """
    from riskmodel._blas import blas_threads, one_blas_thread
    from riskmodel.kernels.ewma import eigh_stack

    copy = copy_probe(32 if quick else 256, 9)
    n = 1024
    gemm = gemm_probe(np.float64, n, 10)
    m = 71
    x = np.random.default_rng(3).standard_normal((4 * m, m))
    s = x.T @ x
    stack = np.repeat(s[None], 200, axis=0)
    vals, vecs = np.empty((200, m)), np.empty((200, m, m))
    with one_blas_thread():
        eigh_stack(stack[:2], vals[:2], vecs[:2])  # warm-up (JIT cache)
        from numba import get_num_threads, set_num_threads

        threads = get_num_threads()
        set_num_threads(1)
        try:
            _, c_eigh = best_of_cpu(lambda: eigh_stack(stack, vals, vecs), 5)
        finally:
            set_num_threads(threads)
        _, c_small = best_of_cpu(lambda: [s @ s for _ in range(200)], 5)
        # the batched alternative: numpy's eigh over the stacked (200, 71, 71) array in one call
        _, c_stacked = best_of_cpu(lambda: np.linalg.eigh(stack), 5)
    cores = os.cpu_count() or 1
    per_core = gemm["gflops_one_thread_cpu"]
    return {
        "bandwidth_GBps": copy["gbs_cpu"],
        "bandwidth_GBps_wall": copy["gbs_wall"],
        "copy_MB": copy["megabytes"],
        "peak_GFlops": per_core * cores,
        "peak_GFlops_per_core": per_core,
        "peak_GFlops_wall_all_threads": gemm["gflops_all_threads"],
        "peak_GFlops_wall_1thread": gemm["gflops_one_thread"],
        "dgemm_n": n,
        "eigh71_ms_cpu": c_eigh / 200 * 1e3,
        "gemm71_us_cpu": c_small / 200 * 1e6,
        "eigh71_over_gemm71": c_eigh / c_small,
        "eigh71_numpy_stacked_ms_cpu": c_stacked / 200 * 1e3,
        "eigh71_numpy_stacked_over_kernel": c_stacked / c_eigh,
        "eigh71_GFlops": (4.0 / 3.0 + 2.0) * m**3 / (c_eigh / 200) / 1e9,
        "cpu_count": cores,
        "blas_threads": blas_threads(),
        "numba_threads": threads,
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------------------------------
# counts: eigendecompositions, flops, bytes
# ---------------------------------------------------------------------------------------


def eigh_count(fc: Any, sims: int) -> int:
    """LAPACK eigendecompositions of a Σ_f fit: one per defined date (rebuild), ``sims`` per
    recompute date (Monte Carlo) and one more per recompute date (its ``D₀``)."""
    n_rec = int(len(fc.dates_recomputed)) if sims else 0
    return int(fc.defined.sum()) + n_rec * (sims + 1)


def fit_flops(T: int, N: int, K: int, m: int, n_eigh: int, n_draws: int) -> dict[str, float]:
    """Dominant double-precision flops of a fit (lower bounds, formulas in the comments)."""
    p = K + 1  # market + styles: the dense block of the regressions (industries are one-hot)
    return {
        # cleaning: winsorise + standardise + impute, ~20 flops a style value
        "exposures": 20.0 * T * N * K,
        # WLS per date: the dense block of XᵀVX (2Np²), XᵀVr and the residuals (4Nm)
        "regression": T * (2.0 * N * p * p + 4.0 * N * m),
        # eigh with vectors: 4/3 m³ reduction + 2 m³ back-transformation (the tridiagonal
        # divide and conquer not counted); one m³ gemm pair per rebuild or per draw
        "sigma_f_eigh": n_eigh * (4.0 / 3.0 + 2.0) * m**3,
        "sigma_f_gemm": (n_eigh - n_draws) * 2.0 * m**3 + n_draws * 2.0 * m**3,
        # EWMA + Newey-West moments: m(m+1)/2 pairs, lags 2 (both directions) + lag 0, ~6 flops a term
        "sigma_f_ewma": T * (m * (m + 1) / 2) * 5 * 6.0,
        # specific time series: 6 lag terms x ~10 flops, and the structural regression (2Np²)
        "specific": T * N * 60.0 + T * 2.0 * N * p * p,
    }


def fit_bytes(fit_ds: Any, inputs: int) -> dict[str, int]:
    """Compulsory memory traffic: the inputs read once, the fitted arrays written once."""
    written = int(sum(np.asarray(fit_ds[v].values).nbytes for v in fit_ds.data_vars))
    return {"inputs_read": inputs, "outputs_written": written, "total": inputs + written,
            "outputs_over_inputs": written / inputs}


def array_hashes(ds: Any) -> dict[str, str]:
    return {str(v): hashlib.sha1(np.ascontiguousarray(np.asarray(ds[v].values)).tobytes()).hexdigest()
            for v in ds.data_vars}


# ---------------------------------------------------------------------------------------
# the worker: every configuration in one process
# ---------------------------------------------------------------------------------------


def _timed_fit(model: Any, panel: Any) -> tuple[Any, dict[str, Any]]:
    rss0 = _rss_bytes()
    _reset_peak()
    u0, s0, _ = _cpu_and_faults()
    t0 = time.perf_counter()
    fit = model.fit(panel)
    seconds = time.perf_counter() - t0
    u1, s1, _ = _cpu_and_faults()
    return fit, {"seconds": seconds, "user_seconds": u1 - u0, "system_seconds": s1 - s0,
                 "peak_bytes": _peak_bytes() - rss0}


def stage_times(panel: Any, styles: list[str], repeat: int) -> dict[str, float]:
    """Stages and sub-stages of the current method, min of ``repeat`` each."""
    from riskmodel.covariance import factor as F
    from riskmodel.covariance import specific as S
    from riskmodel.exposures import build_exposures
    from riskmodel.regression import factor_returns

    out: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def stage(name, fn):
        result = None
        best = best_cpu = np.inf
        for _ in range(repeat):
            u0, s0, _ = _cpu_and_faults()
            t0 = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - t0)
            u1, s1, _ = _cpu_and_faults()
            best_cpu = min(best_cpu, u1 - u0)
        out[name] = best
        cpu[name] = best_cpu
        return result

    from riskmodel.data.panel import validate_panel
    from riskmodel.models.pipeline import check_fundamental_data

    # the panel checks, timed alone: validate_panel runs inside build_exposures (so its time
    # is part of "exposures"); check_fundamental_data runs before it in a model's fit
    def checks():
        check_fundamental_data(panel, styles, [], 1)
        validate_panel(panel, styles=list(styles), require=["returns", "market_cap", "industry"])

    for _ in range(repeat):  # the panel checks, former (numpy) and new (kernels) alternating
        for name, on in (("panel_checks_former", False), ("panel_checks", True)):
            panel_check_kernels(on)
            try:
                u0, s0, _ = _cpu_and_faults()
                t0 = time.perf_counter()
                checks()
                out[name] = min(out.get(name, np.inf), time.perf_counter() - t0)
                cpu[name] = min(cpu.get(name, np.inf), _cpu_and_faults()[0] - u0)
            finally:
                panel_check_kernels(True)
    stage("check_fundamental_data", lambda: check_fundamental_data(panel, styles, [], 1))
    stage("validate_panel", lambda: validate_panel(panel, styles=list(styles),
                                                   require=["returns", "market_cap", "industry"]))
    ex = stage("exposures", lambda: build_exposures(panel, styles))
    returns = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    wls = stage("regression", lambda: factor_returns(returns, ex))
    f = F._validate_returns(wls.factor_returns)
    s = F._settings(f.shape, dict(F.FACTOR_DEFAULTS), progress=False)
    f0, available = stage("sigma_f_ewma_newey_west", lambda: F._base_covariance(f, s))
    mc = [0.0]
    simulate = F._simulated_bias

    def timed_simulation(*args):
        t0 = time.perf_counter()
        v = simulate(*args)
        mc[0] += time.perf_counter() - t0
        return v

    best_mc = best_eigen = best_eigen_cpu = np.inf
    F._simulated_bias = timed_simulation  # count the Monte Carlo inside the eigen stage
    try:
        for _ in range(repeat):
            mc[0] = 0.0
            work = f0.copy()
            u0, _, _ = _cpu_and_faults()
            t0 = time.perf_counter()
            f_eig, _, _ = F._eigen_adjust(work, available, F._row_valid(f), s)
            total = time.perf_counter() - t0
            best_eigen_cpu = min(best_eigen_cpu, _cpu_and_faults()[0] - u0)
            if total < best_eigen:
                best_eigen, best_mc = total, mc[0]
    finally:
        F._simulated_bias = simulate
    out["sigma_f_eigen_monte_carlo"] = best_mc
    out["sigma_f_eigen_rebuild"] = best_eigen - best_mc
    cpu["sigma_f_eigen"] = best_eigen_cpu
    stage("sigma_f_vra", lambda: F._vra(f, f_eig, available, s))
    inputs = S.specific_inputs(wls.residuals, ex)
    ss = S.specific_settings(**S.SPECIFIC_DEFAULTS)
    u = inputs.residuals
    ts_var, n_obs, gamma = stage("d_time_series", lambda: S.time_series_stage(u, ss))
    cs = stage("d_cross_section", lambda: S.cross_section_stage(ts_var.copy(), n_obs, gamma, inputs, ss,
                                                                 overwrite_ts_var=True))
    lam = stage("d_vra", lambda: S.vra_stage(u, cs.sig_sh, inputs.cap, cs.estu, ss["vra_half_life"]))
    stage("d_final", lambda: S.final_variance(u, cs.sig_sh.copy(), None, gamma, lam, ss["shrink"], cs.complete))
    return {"seconds": out, "user_cpu_seconds": {k: v for k, v in cpu.items() if np.isfinite(v)}}


def warm_start_premise(factor_returns: np.ndarray, n_dates: int) -> dict[str, float]:
    """How far yesterday's eigenvectors are from diagonalising today's ``F⁰`` (full-block dates)."""
    from riskmodel.covariance import factor as F

    f = F._validate_returns(factor_returns)
    s = F._settings(f.shape, dict(F.FACTOR_DEFAULTS), progress=False)
    f0, available = F._base_covariance(f, s)
    full = np.flatnonzero(available.all(axis=1))
    full = full[np.r_[True, np.diff(full) == 1]][-n_dates:]
    mass, strong, theta = [], [], []
    _, q = np.linalg.eigh(f0[full[0] - 1]) if available[full[0] - 1].all() else np.linalg.eigh(f0[full[0]])
    for t in full:
        a = q.T @ f0[t] @ q
        d = np.diag(a)
        off = np.abs(a - np.diag(d))
        gap = np.abs(d[None, :] - d[:, None])
        np.fill_diagonal(gap, np.inf)
        mass.append(off.max() / d.max())
        strong.append(int(np.triu(off > 0.1 * gap, 1).sum()))
        theta.append(float(np.max(off / gap)))
        q = np.linalg.eigh(f0[t])[1]
    m = f.shape[1]
    return {
        "dates": len(full), "pairs": m * (m - 1) // 2,
        "offdiag_over_top_median": float(np.median(mass)), "offdiag_over_top_p90": float(np.quantile(mass, 0.9)),
        "strong_pairs_median": float(np.median(strong)), "strong_pairs_max": float(np.max(strong)),
        "max_angle_ratio_median": float(np.median(theta)),
        **{f"jacobi_{k}": v for k, v in warm_jacobi(f0, full[1:101], _gamma2_example(m)).items()},
    }


def _gamma2_example(m: int) -> np.ndarray:
    """A γ² profile like the default's (large for the lowest eigenfactors, near 1 above)."""
    k = np.arange(m)
    return (1.0 + 0.4 * np.exp(-k / 5.0) + 0.02 * (k / m) ** 2) ** 2


def _jacobi_kernel():
    """A cyclic Jacobi eigensolver in numba (rows of ``V`` are the eigenvectors), for the
    warm-start measurement only: ``A = Qᵀ F Q`` is rotated until every pair is below
    ``tol · sqrt(|a_pp a_qq|)`` or ``1e-16 · max |a_kk|``; returns the number of sweeps."""
    import numba

    @numba.njit(cache=False)
    def jacobi(a, vt, tol, max_sweeps):  # pragma: no cover - compiled
        m = a.shape[0]
        floor = 0.0
        for k in range(m):
            floor = max(floor, abs(a[k, k]))
        floor *= 1e-16  # below rounding of the largest entry: nothing left to rotate
        for sweep in range(max_sweeps):
            rotated = False
            for p in range(m - 1):
                for q in range(p + 1, m):
                    apq = a[p, q]
                    if abs(apq) <= max(tol * np.sqrt(abs(a[p, p] * a[q, q])), floor):
                        continue
                    rotated = True
                    theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                    t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + np.sqrt(theta * theta + 1.0))
                    c = 1.0 / np.sqrt(t * t + 1.0)
                    s = t * c
                    for k in range(m):  # rows p, q
                        x, y = a[p, k], a[q, k]
                        a[p, k] = c * x - s * y
                        a[q, k] = s * x + c * y
                    for k in range(m):  # columns p, q
                        x, y = a[k, p], a[k, q]
                        a[k, p] = c * x - s * y
                        a[k, q] = s * x + c * y
                    for k in range(m):  # eigenvector rows
                        x, y = vt[p, k], vt[q, k]
                        vt[p, k] = c * x - s * y
                        vt[q, k] = s * x + c * y
            if not rotated:
                return sweep
        return max_sweeps

    return jacobi


def warm_jacobi(f0: np.ndarray, dates: np.ndarray, gamma2: np.ndarray) -> dict[str, float]:
    """The warm-started Jacobi against LAPACK on consecutive full-block dates, one thread:
    sweeps to convergence, seconds per date, and the rebuilt ``U diag(γ²λ) Uᵀ``'s distance
    from LAPACK's (relative to each date's largest entry)."""
    from riskmodel._blas import one_blas_thread

    jacobi = _jacobi_kernel()
    sweeps, t_jac, t_lapack, err = [], 0.0, 0.0, 0.0
    with one_blas_thread():
        q = np.linalg.eigh(f0[dates[0] - 1])[1]
        a = q.T @ f0[dates[0]] @ q
        jacobi(a.copy(), q.T.copy(), 1e-15, 30)  # compile
        for t in dates:
            t0 = time.perf_counter()
            a = q.T @ f0[t] @ q
            vt = np.ascontiguousarray(q.T)
            n = jacobi(a, vt, 1e-15, 30)
            lam = np.diag(a).copy()
            order = np.argsort(lam)
            lam, vt = lam[order], vt[order]
            t_jac += time.perf_counter() - t0
            t0 = time.perf_counter()
            w, u = np.linalg.eigh(f0[t])
            t_lapack += time.perf_counter() - t0
            ref = (u * (gamma2 * w)) @ u.T
            new = (vt.T * (gamma2 * lam)) @ vt
            err = max(err, float(np.abs(new - ref).max() / np.abs(ref).max()))
            sweeps.append(n)
            q = vt.T.copy()  # warm start of the next date: this date's Jacobi eigenvectors
    return {"dates": len(dates), "sweeps_median": float(np.median(sweeps)), "sweeps_max": float(np.max(sweeps)),
            "jacobi_ms_per_date": 1e3 * t_jac / len(dates), "lapack_ms_per_date": 1e3 * t_lapack / len(dates),
            "jacobi_over_lapack": t_jac / t_lapack, "rebuild_max_rel_diff": err}


def worker(path: Path, rounds: int, repeat: int, quick: bool) -> dict[str, Any]:
    import riskmodel as rm

    warnings.simplefilter("ignore")
    panel, styles = _load_inputs(path)
    T, N, K = panel.sizes["date"], panel.sizes["stock"], len(styles)
    models = {name: rm.FactorRiskModel(progress=False, **kw) for name, kw in CONFIGS.items()}
    models["current"].fit(panel)  # warm-up: JIT cache, pools, first touches
    rows: dict[str, dict[str, Any]] = {name: {"name": name, "runs": []} for name in CONFIGS}
    reference: dict[str, Any] = {}
    for r in range(rounds):
        for name, model in models.items():
            panel_check_kernels(name not in FORMER_CHECKS)
            fit, run = _timed_fit(model, panel)
            panel_check_kernels(True)
            rows[name]["runs"].append(run)
            ds = fit.to_dataset()
            hashes = array_hashes(ds)
            if name == "current":
                if r == 0:
                    reference = {"hashes": hashes, "cov": np.asarray(fit.factor_cov.values),
                                 "spec": hashes_of_specific(hashes), "bytes": fit_bytes(ds, input_bytes(N, T, K)),
                                 "f": np.asarray(fit.factor_returns.values)}
                rows[name]["repeats_bit_identical"] = bool(rows[name].get("repeats_bit_identical", True)
                                                          and hashes == reference["hashes"])
            rows[name]["fit_bit_identical_to_current"] = bool(rows[name].get("fit_bit_identical_to_current", True)
                                                              and hashes == reference["hashes"])
            if r == 0:
                fc = fit_sigma_f(fit, model)
                cov = np.asarray(fit.factor_cov.values)
                rows[name]["n_eigh"] = eigh_count(fc, int(model.get_params()["eigen_sims"] or 0))
                rows[name]["n_draws"] = len(fc.dates_recomputed) * int(model.get_params()["eigen_sims"] or 0)
                diff = _rel_diff_by_date(cov, reference["cov"])
                rows[name]["sigma_f_max_rel_diff"] = float(diff.max())
                rows[name]["sigma_f_median_rel_diff"] = float(np.median(diff))
                rows[name]["d_bit_identical"] = hashes_of_specific(hashes) == reference["spec"]
            del fit, ds
    stages = stage_times(panel, styles, repeat)
    premise = warm_start_premise(reference["f"], 60 if quick else 400)
    m = reference["f"].shape[1]
    for row in rows.values():
        runs = row.pop("runs")
        best = min(runs, key=lambda x: x["seconds"])
        row.update(seconds=best["seconds"], all_seconds=[x["seconds"] for x in runs],
                   user_seconds=best["user_seconds"], system_seconds=best["system_seconds"],
                   peak_bytes=int(max(x["peak_bytes"] for x in runs)))
    return {"rows": list(rows.values()), "stages": stages, "warm_start": premise, "bytes": reference["bytes"],
            "shape": {"n_dates": T, "n_stocks": N, "n_styles": K, "n_factors": m}}


def fit_sigma_f(fit: Any, model: Any) -> Any:
    """The Σ_f result's recompute dates and defined dates, recomputed from the fit's factor returns."""
    from riskmodel.covariance.factor import factor_covariance
    from riskmodel.models.settings import factor_covariance_kwargs

    return factor_covariance(np.asarray(fit.factor_returns.values), **factor_covariance_kwargs(model.get_params()))


def hashes_of_specific(hashes: dict[str, str]) -> dict[str, str]:
    """The SHA-1s of D's fitted arrays (``specific_var``, ``specific_vra``)."""
    out = {k: v for k, v in hashes.items() if k.startswith("specific_")}
    if "specific_var" not in out:  # the check must compare something
        raise KeyError(f"no specific_var among the fitted arrays {sorted(hashes)}")
    return out


def _rel_diff_by_date(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per defined date: max |a − b| over the date's largest |b| (inf where the masks differ)."""
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return np.array([np.inf])
    defined = np.isfinite(b).any(axis=(-2, -1))
    with np.errstate(invalid="ignore"):
        scale = np.nanmax(np.abs(b[defined]), axis=(-2, -1))
        return np.nanmax(np.abs(a[defined] - b[defined]), axis=(-2, -1)) / scale


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def roofline(result: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    sh = result["shape"]
    cur = result["rows"][0]
    flops = fit_flops(sh["n_dates"], sh["n_stocks"], sh["n_styles"], sh["n_factors"], cur["n_eigh"], cur["n_draws"])
    total_flops = sum(flops.values())
    t_bytes = result["bytes"]["total"] / (limits["bandwidth_GBps"] * 1e9)
    t_flops = total_flops / (limits["peak_GFlops"] * 1e9)
    bound = max(t_bytes, t_flops)
    return {"bytes": result["bytes"]["total"], "flops": total_flops,
            "flops_by_stage": flops, "seconds_at_bandwidth": t_bytes, "seconds_at_peak_flops": t_flops,
            "roofline_seconds": bound, "fit_seconds": cur["seconds"], "fit_over_roofline": cur["seconds"] / bound,
            "fit_user_cpu_seconds": cur["user_seconds"],
            "fit_cpu_over_roofline": cur["user_seconds"] / (bound * limits["cpu_count"]),
            "eigh_share_of_flops": (flops["sigma_f_eigh"] + flops["sigma_f_gemm"]) / total_flops}


def panel_checks_summary(result: dict[str, Any]) -> dict[str, float]:
    """The panel checks (``check_fundamental_data`` + ``validate_panel``) former against new,
    and the whole fit with each, from the same run."""
    st, cpu = result["stages"]["seconds"], result["stages"]["user_cpu_seconds"]
    rows = {r["name"]: r for r in result["rows"]}
    cur, former = rows["current"], rows[FORMER_CHECKS[0]]
    return {"former_seconds": st["panel_checks_former"], "new_seconds": st["panel_checks"],
            "former_user_cpu": cpu["panel_checks_former"], "new_user_cpu": cpu["panel_checks"],
            "speedup_wall": st["panel_checks_former"] / st["panel_checks"],
            "cpu_saved": cpu["panel_checks_former"] - cpu["panel_checks"],
            "fit_former_seconds": former["seconds"], "fit_new_seconds": cur["seconds"],
            "fit_former_over_new": former["seconds"] / cur["seconds"],
            "fit_former_user_cpu": former["user_seconds"], "fit_new_user_cpu": cur["user_seconds"],
            "fit_bit_identical": bool(former["fit_bit_identical_to_current"])}


def table(report: dict[str, Any]) -> str:
    lines = ["| configuration | fit s | user s | system s | peak / inputs | eigh | Σ_f max rel diff | D identical "
             "| fit identical |", "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['name']} | {r['seconds']:.2f} | {r['user_seconds']:.1f} | {r['system_seconds']:.1f} | "
                     f"{r['memory_ratio']:.2f} | {r['n_eigh']} | {r['sigma_f_max_rel_diff']:.1e} | "
                     f"{r['d_bit_identical']} | {r['fit_bit_identical_to_current']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="toy size (400 stocks x 260 days)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the alternating fits")
    ap.add_argument("--repeat", type=int, default=2, help="repeats of each stage timing")
    ap.add_argument("--panel", type=Path, help="panel file (simulated and saved when absent)")
    ap.add_argument("--output", "--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    config = dict(QUICK if args.quick else FULL)
    path = args.panel or Path("/tmp/riskmodel_bench_panel.nc" if not args.quick else "/tmp/bench_speed_fit_quick.nc")
    make_panel(config, path)
    load_before = os.getloadavg()
    limits = machine_limits(args.quick)
    result = worker(path, args.rounds, args.repeat, args.quick)
    inputs = input_bytes(result["shape"]["n_stocks"], result["shape"]["n_dates"], result["shape"]["n_styles"])
    for row in result["rows"]:
        row["memory_ratio"] = row["peak_bytes"] / inputs
    report = {
        "benchmark": "speed_fit",
        "config": {**result["shape"], "rounds": args.rounds, "stage_repeat": args.repeat},
        "input_bytes": inputs,
        "results": result["rows"],
        "stages_current": result["stages"]["seconds"],
        "stages_current_user_cpu": result["stages"]["user_cpu_seconds"],
        "panel_checks": panel_checks_summary(result),
        "limits": limits,
        "roofline": roofline(result, limits),
        "warm_start": result["warm_start"],
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "versions": {m: __import__(m).__version__ for m in ("numpy", "numba", "scipy")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(table(report))
    pc = report["panel_checks"]
    print(f"\npanel checks: former {pc['former_seconds']:.2f} s ({pc['former_user_cpu']:.2f} CPU s), new "
          f"{pc['new_seconds']:.2f} s ({pc['new_user_cpu']:.2f} CPU s); fit former {pc['fit_former_seconds']:.2f} s, "
          f"new {pc['fit_new_seconds']:.2f} s, bit-identical {pc['fit_bit_identical']}")
    print("\nstages (s): " + ", ".join(f"{k} {v:.3f}" for k, v in report["stages_current"].items()))
    rf = report["roofline"]
    print(f"\nroofline: {rf['bytes'] / 1e9:.2f} GB at {limits['bandwidth_GBps']:.1f} GB/s = "
          f"{rf['seconds_at_bandwidth']:.2f} s; {rf['flops'] / 1e9:.1f} GFlop at {limits['peak_GFlops']:.0f} GFlop/s = "
          f"{rf['seconds_at_peak_flops']:.2f} s; fit {rf['fit_seconds']:.2f} s = {rf['fit_over_roofline']:.1f}x, "
          f"user CPU {rf['fit_user_cpu_seconds']:.1f} s = {rf['fit_cpu_over_roofline']:.1f}x the roofline on every core")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
