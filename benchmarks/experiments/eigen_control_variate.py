"""Experiment (issue 21, not kept): a control variate for the eigen adjustment's Monte Carlo.

Each Bartlett draw ``F_j = D₀^{1/2} W_j D₀^{1/2}`` gives the ratio ``r_j(k) = D̃_j(k) / D_j(k)``
of :func:`riskmodel.covariance.factor._simulated_bias`. The candidate control variate is the
draw's diagonal, ``c_j(k) = d₀(k) / F_j(k, k) = ν / χ²_ν``, whose mean ``ν / (ν − 2)`` is known
exactly; with the best coefficient it divides the Monte Carlo variance of ``mean_j r_j(k)`` by
``1 / (1 − ρ_k²)``, ``ρ_k`` the correlation of ``r(k)`` and ``c(k)`` over the draws. Fewer
draws could then give the same accuracy, if ``ρ_k`` is large for the eigenfactors that matter.

Measured on the last recompute date of the 5,000 × 2,520 benchmark panel of
``bench_full_fit.py`` (``D₀`` and ``ν`` as the fit computes them), ``--draws`` draws.
Writes ``benchmarks/results/experiments/eigen_control_variate.json``::

    python benchmarks/experiments/eigen_control_variate.py [--panel PATH] [--draws 4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_full_fit import FULL, _load_inputs, make_panel  # noqa: E402

OUT = HERE.parent / "results" / "experiments" / "eigen_control_variate.json"


def last_recompute_spectrum(panel_path: Path) -> tuple[np.ndarray, float, int]:
    """``D₀`` (ascending, floored as the fit floors it) and ``ν`` on the last recompute date."""
    from riskmodel.covariance import factor as F
    from riskmodel.exposures import build_exposures
    from riskmodel.regression import factor_returns

    panel, styles = _load_inputs(panel_path)
    ex = build_exposures(panel, styles)
    returns = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    f = F._validate_returns(factor_returns(returns, ex).factor_returns)
    s = F._settings(f.shape, dict(F.FACTOR_DEFAULTS), progress=False)
    f0, available = F._base_covariance(f, s)
    rec, _ = F._recompute_schedule(available, s["eigen_every"])
    r = int(rec[-1])
    cols = np.flatnonzero(available[r])
    M = f0[r][np.ix_(cols, cols)]
    d0 = np.maximum(np.linalg.eigvalsh(M), F._EIG_FLOOR * np.trace(M))
    nu = F._effective_df_at(r, F._row_valid(f), F.ewma_weights(s["corr_half_life"], s["corr_window"]),
                            s["corr_lags"])
    return d0, float(nu), r


def ratios_and_controls(d0: np.ndarray, nu: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: the ratios ``r(k)`` (the kernel's formula, in numpy) and the controls ``c(k)``."""
    m = d0.size
    normals = rng.standard_normal((n, m * (m - 1) // 2))
    chi = np.sqrt(rng.chisquare(nu - np.arange(m), size=(n, m)))
    root = np.sqrt(d0 / nu)
    lower = np.tril_indices(m, -1)
    R = np.empty((n, m))
    C = np.empty((n, m))
    for j in range(n):
        A = np.zeros((m, m))
        A[lower] = normals[j]
        A[np.arange(m), np.arange(m)] = chi[j]
        b = root[:, None] * A
        Fj = b @ b.T
        w, u = np.linalg.eigh(Fj)
        R[j] = (d0 @ (u * u)) / w
        C[j] = d0 / np.diag(Fj)
    return R, C


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--panel", type=Path, default=Path("/tmp/riskmodel_bench_panel_5000.nc"),
                    help="the 5,000 x 2,520 benchmark panel (simulated and saved when absent)")
    ap.add_argument("--draws", type=int, default=4000)
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    make_panel(dict(FULL), args.panel)
    d0, nu, date = last_recompute_spectrum(args.panel)
    R, C = ratios_and_controls(d0, nu, args.draws, np.random.default_rng(0))
    rho = np.array([np.corrcoef(R[:, k], C[:, k])[0, 1] for k in range(d0.size)])
    gain = 1.0 / (1.0 - rho**2)
    report = {
        "experiment": "eigen_control_variate",
        "date_row": date, "nu": nu, "m": int(d0.size), "draws": args.draws,
        "control_mean_known": nu / (nu - 2.0), "control_mean_drawn": float(C.mean()),
        "correlation_by_k_ascending": rho.tolist(),
        "variance_divided_by_k_ascending": gain.tolist(),
        "eigenfactors_with_gain_above_2": int(np.sum(gain > 2.0)),
        "median_gain": float(np.median(gain)),
        "decision": "not kept: the control tracks the ratio only at the ends of the spectrum",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"nu {nu:.1f}, m {d0.size}; variance divided by > 2 for {report['eigenfactors_with_gain_above_2']} "
          f"eigenfactors, median {report['median_gain']:.2f}")
    print("correlation (ascending k):", np.round(rho, 2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
