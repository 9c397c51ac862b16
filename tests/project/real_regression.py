"""The real-data regression check: rerun the pipeline on a slice, compare with committed values.

``pipeline(data)`` fits the full fundamental model of ``examples/real_risk_model.py``
(variant (d): eigen adjustment with ``eigen_scale`` 1.2, factor and specific VRA, Bayesian
shrinkage of the specific vols) on a slice of the real S&P 500 data — the
:data:`N_STOCKS` largest stocks over :data:`START` .. :data:`END`, GICS sectors as the
industry factors — and evaluates it with :func:`riskmodel.bias_statistics` after a burn-in.
It returns a flat dict of figures (mean R², factor and specific vols, VRA multipliers,
bias statistics by family).

``python -m tests.project.real_regression`` writes those figures, with the run's
conditions, to ``tests/project/real_regression_expected.json`` (the committed values are
never typed by hand); ``tests/project/test_real_regression.py`` reruns the pipeline and
compares with :func:`compare` at the tolerances stored in that file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "real_regression_expected.json"
START, END, N_STOCKS, BURN_IN = "2013-01-02", "2016-12-30", 100, 504
# the full model of examples/real_risk_model.py, variant (d), with fewer eigen draws
SETTINGS: dict[str, Any] = dict(eigen_sims=50, eigen_scale=1.2, vra_half_life=42, specific_vra_half_life=42, shrink=0.1)
FAMILIES = ("random", "optimised")
# the fit is deterministic (seeded Monte Carlo, fixed chunking); the tolerance absorbs the
# last-bit differences of another BLAS or thread count, and is far below any change of a setting
RTOL, ATOL = 1e-6, 1e-12


def _examples():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import real_data_common
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return real_data_common


def pipeline(data: Path | str | None = None) -> dict[str, float]:
    """Fit and evaluate the slice with :data:`SETTINGS`; the figures compared, by name."""
    import riskmodel as rm

    common = _examples()
    panel = common.load_panel(START, END, n_stocks=N_STOCKS, data=data)
    panel = panel.assign(industry=panel["sector"])
    with common.quiet_fit_warnings():
        fit = rm.FactorRiskModel(styles=list(panel.attrs["styles"]), progress=False, **SETTINGS).fit(panel)
        bias = rm.bias_statistics(fit, list(FAMILIES), start=fit.dates[BURN_IN], n_random=30, n_optimised=10, seed=0)
    specific_vol = np.sqrt(fit.specific_var.to_numpy())
    factor_vol = np.sqrt(np.diagonal(fit.dataset["factor_cov"].to_numpy(), axis1=1, axis2=2))
    figures = {
        "n_dates": float(panel.sizes["date"]),
        "mean_r2": float(fit.r2.mean()),
        "specific_vol_mean_last_date": float(np.nanmean(specific_vol[-1])),
        "specific_vol_mean_all_dates": float(np.nanmean(specific_vol[BURN_IN:])),
        "specific_vra_mean": float(np.nanmean(fit.dataset["specific_vra"].to_numpy()[BURN_IN:])),
        "factor_vra_mean": float(np.nanmean(fit.dataset["factor_vra"].to_numpy()[BURN_IN:])),
        "market_vol_last_date": float(factor_vol[-1, list(fit.factors).index("market")]),
        "factor_vol_mean_last_date": float(np.nanmean(factor_vol[-1])),
    }
    table = bias.by_family()
    for family in FAMILIES:
        for column in ("mean_bias", "share_inside", "mrad", "qlike"):
            figures[f"{family}_{column}"] = float(table.loc[family, column])
    return figures


def compare(got: dict[str, float], expected: dict[str, Any]) -> list[str]:
    """Every figure outside ``rtol``/``atol`` of the committed one, as messages (empty: all agree)."""
    rtol, atol = expected["tolerance"]["rtol"], expected["tolerance"]["atol"]
    problems = [f"{name}: missing" for name in expected["figures"] if name not in got]
    for name, want in expected["figures"].items():
        if name in got and not np.isclose(got[name], want, rtol=rtol, atol=atol):
            problems.append(f"{name}: {got[name]!r} != committed {want!r} (rtol {rtol}, atol {atol})")
    return problems


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Rerun the pipeline and write the committed expected values with their conditions."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder of the real data (default: riskmodel's)")
    ap.add_argument("-o", "--output", type=Path, default=EXPECTED)
    args = ap.parse_args(argv)
    import riskmodel as rm

    started = time.perf_counter()
    figures = pipeline(args.data)
    report = {
        "written_by": "python -m tests.project.real_regression",
        "slice": {"start": START, "end": END, "n_stocks": N_STOCKS, "industry": "GICS sector", "burn_in": BURN_IN},
        "settings": SETTINGS,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "conditions": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.perf_counter() - started,
                       "python": platform.python_version(), "numpy": np.__version__, "riskmodel": rm.__version__},
        "figures": figures,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return report


if __name__ == "__main__":
    main()
