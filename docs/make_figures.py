"""Draw the documentation's figures from a simulated world into ``docs/_static/``.

The world is the demo's (``rm.simulate`` with a hidden 60-name "oil" factor), a little
smaller so that the script runs in well under a minute::

    python docs/make_figures.py            # writes docs/_static/fig_*.png and figures.json

Figures (PNG, 80 dpi, a few tens of kB each):

* ``fig_factor_returns.png``  cumulative factor returns (market and styles);
* ``fig_rolling_bias.png``    rolling bias statistics of the Barra portfolio families;
* ``fig_audit_spectrum.png``  residual spectrum against the Marchenko-Pastur, Tracy-Widom and
  surrogate-null edges;
* ``fig_cluster_corr.png``    residual correlation of the cluster members.

``figures.json`` records the settings and the headline numbers the captions quote.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(DOCS.parent / ".numba_cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402

import riskmodel as rm  # noqa: E402
from riskmodel.report.figures import plot_cumulative_factor_returns  # noqa: E402
from riskmodel.report.audit_figures import plot_cluster_correlation, plot_spectrum  # noqa: E402

DPI = 80


def make_figures(output: Path, *, n_stocks: int = 500, n_days: int = 900, seed: int = 0) -> dict:
    """Simulate, fit, evaluate, audit, and save the four figures; return the headline numbers."""
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    panel = rm.simulate(
        n_stocks=n_stocks, n_days=n_days, seed=seed, hidden=[{"name": "oil", "n_members": 60, "corr": 0.15}]
    )
    styles = list(panel.attrs["styles"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        fit = rm.FactorRiskModel(styles=styles, eigen_sims=300, progress=False).fit(panel)
        bias = rm.bias_statistics(fit, start=fit.dates[250], n_random=50, n_optimised=20)
        audit = rm.audit_residuals(fit, labels=panel["industry"], seed=seed)

    figures = {
        "fig_factor_returns.png": plot_cumulative_factor_returns(fit),
        "fig_rolling_bias.png": bias.plot(),
        "fig_audit_spectrum.png": plot_spectrum(audit),
        "fig_cluster_corr.png": plot_cluster_correlation(audit),
    }
    for name, fig in figures.items():
        fig.savefig(output / name, dpi=DPI)

    members = panel["true_hidden_loadings"].sel(hidden="oil").to_series()
    oil = set(members[members != 0].index.astype(str))
    largest = set(audit.clusters[0].stocks) if audit.clusters else set()
    facts = {
        "settings": {"n_stocks": n_stocks, "n_days": n_days, "seed": seed, "hidden": "oil, 60 names, rho 0.15"},
        "n_significant": int(audit.n_significant),
        "null_edge": float(audit.null_edge),
        "mp_edge": float(audit.mp_edge),
        "top_eigenvalue": float(np.asarray(audit.eigenvalues.values)[0]),
        "n_clusters": len(audit.clusters),
        "largest_cluster_size": len(largest),
        "largest_cluster_oil_names": len(largest & oil),
        "mean_bias_by_family": {k: round(float(v), 3) for k, v in bias.by_family()["mean_bias"].items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    (output / "figures.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DOCS / "_static")
    parser.add_argument("--stocks", type=int, default=500)
    parser.add_argument("--days", type=int, default=900)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    facts = make_figures(args.output, n_stocks=args.stocks, n_days=args.days, seed=args.seed)
    print(json.dumps(facts, indent=2))
    for path in sorted(args.output.glob("fig_*.png")):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
