"""Issue #4: audit the residuals of a model that omits industries, and find the sectors (and oil).

1. Fit a market + six styles model WITHOUT industry factors (``industry=None``) on the real
   S&P 500 panel and audit its residuals over the last ``--window`` trading days with the
   GICS sector as labels: significant components, clusters (size, mean correlation, purity,
   dominant sector), adjusted Rand index of the cluster labels against the sectors.
2. The Energy cluster's return series (``cluster.returns``) against the daily log change of
   WTI crude: correlation, and the hit rate (same sign) on the 10% largest oil moves.
3. The same audit of the default model WITH the 68 GICS industries: what is left.

Run ``python examples/real_audit.py`` (about 2 minutes) or with ``--quick``.
Writes ``docs/figures/real_audit_*.png`` and ``real_audit.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import load_panel, parser, quiet_fit_warnings, save_figure, sector_labels, write_json  # noqa: E402

NAME = "real_audit"


def cluster_table(audit) -> pd.DataFrame:
    """One row per cluster: size, mean correlation, held-out correlation, p-value, bias, purity, sector."""
    rows = [
        {
            "cluster": i,
            "size": c.size,
            "mean_corr": c.mean_correlation,
            "held_out_corr": c.held_out_correlation,
            "p_value": c.p_value,
            "bias_out": c.bias_out,
            "flagged": bool(c.flagged),
            "purity": c.purity,
            "dominant_sector": c.dominant_label,
            # median held-out bias of the audit's random equal-weight portfolios of the same size
            "random_bias_median": float(np.median(c.random_bias)) if np.size(c.random_bias) else None,
        }
        for i, c in enumerate(audit.clusters)
    ]
    return pd.DataFrame(rows, columns=["cluster", "size", "mean_corr", "held_out_corr", "p_value", "bias_out", "flagged", "purity",
                                       "dominant_sector", "random_bias_median"])


def adjusted_rand(audit, sectors: pd.Series) -> tuple[float, int]:
    """Adjusted Rand index of cluster membership vs GICS sector over the clustered stocks."""
    from sklearn.metrics import adjusted_rand_score

    ids, labels = [], []
    for i, c in enumerate(audit.clusters):
        ids.extend(c.stocks)
        labels.extend([i] * c.size)
    if len(set(labels)) < 2:
        return float("nan"), len(ids)
    return float(adjusted_rand_score(sectors.loc[ids].to_numpy(), np.asarray(labels))), len(ids)


def oil_check(cluster_returns: pd.Series, wti: pd.Series, top: float = 0.10) -> dict:
    """Correlation of a cluster's daily return with the WTI daily log change, and the sign hit rate on big oil days.

    The oil change of a day is the log change from the previous available fixing; days
    without a fixing (US holidays) are left out.
    """
    oil = np.log(wti.dropna()).diff().rename("oil")
    both = pd.concat([cluster_returns.rename("cluster"), oil], axis=1, join="inner").dropna()
    big = both["oil"].abs() >= both["oil"].abs().quantile(1.0 - top)
    hit = float((np.sign(both.loc[big, "cluster"]) == np.sign(both.loc[big, "oil"])).mean())
    return {
        "n_days": int(len(both)),
        "correlation": float(both["cluster"].corr(both["oil"])),
        "n_big_days": int(big.sum()),
        "hit_rate_big_moves": hit,
        "frame": both,
    }


def oil_figure(both: pd.DataFrame, label: str):
    """Energy cluster return vs WTI: scatter of daily moves and cumulative paths."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(both["oil"] * 100, both["cluster"] * 100, s=5, alpha=0.5)
    ax1.axhline(0, color="grey", lw=0.5)
    ax1.axvline(0, color="grey", lw=0.5)
    ax1.set_xlabel("WTI daily log change (%)")
    ax1.set_ylabel(f"{label} cluster residual (%)")
    ax1.set_title(f"daily, corr {both['cluster'].corr(both['oil']):.2f}")
    ax2.plot(both.index, both["oil"].cumsum(), label="WTI cumulative log change")
    scale = both["oil"].std() / both["cluster"].std()
    ax2.plot(both.index, (both["cluster"] * scale).cumsum(), label=f"{label} cluster residual (x{scale:.1f})")
    ax2.legend(fontsize=7)
    ax2.set_title("cumulative")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def run_audit(panel, industry: str | None, window: int, n_null: int, seed: int = 0):
    """Fit the model (with or without industries) on the whole panel and audit the last ``window`` days."""
    import riskmodel as rm

    with quiet_fit_warnings():
        fit = rm.FactorRiskModel(styles=list(panel.attrs["styles"]), industry=industry, progress=False).fit(panel)
        audit = rm.audit_residuals(fit, labels=sector_labels(panel), window=window, n_null=n_null, seed=seed)
    return fit, audit


def describe(audit, sectors: pd.Series, title: str) -> dict:
    """Print the audit and return its key numbers."""
    table = cluster_table(audit)
    ari, n_clustered = adjusted_rand(audit, sectors)
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
    print(audit.summary())
    print(f"\nadjusted Rand index, cluster labels vs GICS sector over the {n_clustered} clustered stocks: {ari:.3f}")
    largest = table.sort_values("size", ascending=False).head(5)
    print("largest clusters: " + "; ".join(f"{r.size} names, {r.dominant_sector} purity {r.purity:.2f}" for r in largest.itertuples()))
    return {
        "n_audited": int(audit.n_stocks),
        "n_dates": int(audit.n_dates),
        "window": f"{pd.Timestamp(audit.dates[0]).date()} .. {pd.Timestamp(audit.dates[-1]).date()}",
        "n_significant": int(audit.n_significant),
        "null_edge": float(audit.null_edge),
        "mp_edge": float(audit.mp_edge),
        "eigenvalues": [float(v) for v in audit.eigenvalues.values[:10]],
        "n_clusters": len(audit.clusters),
        "n_flagged": len(audit.flagged),
        # a cluster is flagged when its held-out bias exceeds 1 + 2 sqrt(2 / held-out dates)
        "flag_threshold": 1.0 + 2.0 * float(np.sqrt(2.0 / (audit.n_dates - np.floor((1 - audit.settings["test_fraction"])
                                                                                    * audit.n_dates)))),
        "n_clustered": n_clustered,
        "adjusted_rand": ari,
        "clusters": table.drop(columns="cluster").to_dict(orient="records"),
    }


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__.splitlines()[0], start="2007-01-03")
    p.add_argument("--window", type=int, default=504, help="audited trading days at the end of the panel (default 504)")
    args = p.parse_args(argv)
    # rm.load_wti is not exported by riskmodel/__init__.py (yet): import it from its module
    from riskmodel.data.datasets import load_wti

    out = Path(args.out)
    started = time.perf_counter()
    panel = load_panel(args.start, args.end, n_stocks=args.stocks, data=args.data)
    window = min(args.window, panel.sizes["date"] // 2)
    n_null = 10 if args.quick else 30
    sectors = sector_labels(panel).to_series()
    print(f"panel {panel.attrs['window']}: {panel.sizes['stock']} stocks x {panel.sizes['date']} dates; "
          f"models fitted on the whole panel, residuals audited over the last {window} trading days, "
          f"{n_null} shuffle surrogates")

    fit0, audit0 = run_audit(panel, None, window, n_null)
    facts = {"panel": panel.attrs["window"], "n_stocks": panel.sizes["stock"], "audit_window_days": window, "n_null": n_null}
    facts["no_industry"] = describe(audit0, sectors, "market + styles, NO industries; labels = GICS sector")

    energy = [c for c in audit0.clusters if c.dominant_label == "Energy"]
    if energy:
        cluster = max(energy, key=lambda c: c.size)
        n_energy_audited = int(sum(sectors.loc[s] == "Energy" for s in audit0.eigenvectors["stock"].values.astype(str)))
        in_cluster = int(sum(sectors.loc[s] == "Energy" for s in cluster.stocks))
        check = oil_check(cluster.returns.to_series(), load_wti(args.data))
        print(f"\nEnergy cluster: {cluster.size} names ({in_cluster} of the {n_energy_audited} audited Energy stocks), "
              f"purity {cluster.purity:.2f}, mean residual corr {cluster.mean_correlation:.3f}")
        print(f"its return vs WTI daily log change over {check['n_days']} days: correlation {check['correlation']:.3f}; "
              f"on the {check['n_big_days']} largest oil moves (top 10% |change|) same sign {check['hit_rate_big_moves']:.0%} of the time")
        members_other = sorted(s for s in cluster.stocks if sectors.loc[s] != "Energy")
        print(f"non-Energy members: {', '.join(members_other) if members_other else 'none'}")
        save_figure(oil_figure(check.pop("frame"), "Energy"), out, f"{NAME}_energy_vs_oil")
        facts["energy_cluster"] = {"size": cluster.size, "energy_members": in_cluster, "energy_audited": n_energy_audited,
                                   "purity": cluster.purity, "mean_corr": cluster.mean_correlation,
                                   "non_energy_members": members_other, **check}
    else:
        print("\nno cluster is dominated by Energy in this window")
        facts["energy_cluster"] = None
    save_figure(audit0.plot(kind="spectrum"), out, f"{NAME}_spectrum_no_industry")
    save_figure(audit0.plot(kind="clusters"), out, f"{NAME}_clusters_no_industry")

    fit1, audit1 = run_audit(panel, "industry", window, n_null)
    facts["with_industries"] = describe(audit1, sectors, "default model WITH 68 GICS industries; labels = GICS sector")
    save_figure(audit1.plot(kind="spectrum"), out, f"{NAME}_spectrum_with_industries")
    if audit1.clusters:
        save_figure(audit1.plot(kind="clusters"), out, f"{NAME}_clusters_with_industries")
    a, b = facts["no_industry"], facts["with_industries"]
    print(f"\nchange when industries enter the model: significant components {a['n_significant']} -> {b['n_significant']}, "
          f"clusters {a['n_clusters']} -> {b['n_clusters']} (flagged {a['n_flagged']} -> {b['n_flagged']}), "
          f"clustered stocks {a['n_clustered']} -> {b['n_clustered']}, top eigenvalue {a['eigenvalues'][0]:.2f} -> {b['eigenvalues'][0]:.2f}; "
          f"mean R² over the window {float(fit0.r2[-window:].mean()):.3f} -> {float(fit1.r2[-window:].mean()):.3f}")
    facts["mean_r2_window"] = {"no_industry": float(fit0.r2[-window:].mean()), "with_industries": float(fit1.r2[-window:].mean())}
    facts["seconds"] = time.perf_counter() - started
    write_json(out, NAME, facts)
    print(f"wrote figures and {out / (NAME + '.json')} in {facts['seconds']:.0f} s")
    return facts


if __name__ == "__main__":
    main()
