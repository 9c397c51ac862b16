"""Issue #18: why riskmodel's minimum-variance portfolios lose to shrinkage, one setting at a time.

On the real S&P 500 panel (``../shared/data``, development span 2009-2016) the global
minimum-variance portfolio (GMV) is rebuilt every 21 trading days over 2010-2016 on the
stocks with a complete 252-day return window, from

* the peers (run once, ``--part peers``): scikit-learn Ledoit-Wolf and OAS, the
  analytical nonlinear shrinkage of Ledoit & Wolf (2020), EWMA (half-life 60) shrunk half
  way to its diagonal, and 1/N, each on the trailing 252 days;
* riskmodel's FactorRiskModel (``--part variants``), the baseline (GICS industries, the
  six styles of ``real_data_common.STYLES`` incl. beta, default forecast settings) and
  variants that change ONE thing: the factor set, the factor covariance (half-lives, eigen
  adjustment, VRA), the specific risk (half-life, shrinkage, structural blend, its VRA) or
  statistical factors of the residuals (the hybrid), plus a few combinations.

For each it reports the GMV's realised volatility unconstrained and long-only (annualised),
its predicted volatility and bias statistic, the ``Σ⁻¹α`` (random α) portfolio's realised
volatility, gross leverage, turnover, and (models only) the random-portfolio bias over the
whole span and per calendar year, with every figure also for 2010-2012 and 2013-2016.
Every variant tried is reported. Results go to ``examples/results/construction_study_<part>.json``
(written after each variant, so a partial run keeps what it finished).

Run: ``python examples/construction_study.py --part peers`` and ``--part variants``
(about 1 minute per variant on 2 busy cores; ``--only name,name`` picks variants).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import load_panel, quiet_fit_warnings, write_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
START, END = "2009-01-01", "2016-12-30"
EVAL_START = "2010-01-04"
PERIODS = {"2010-2016": (None, None), "2010-2012": (None, "2012-12-31"), "2013-2016": ("2013-01-01", None)}
ALL_STYLES = ["size", "momentum", "reversal", "volatility", "liquidity", "beta"]

#: name -> (what changes, FactorRiskModel settings on top of the baseline, use sectors)
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "baseline": ("GICS industries + 6 styles incl. beta, default forecast settings", {}, False),
    "sectors": ("11 GICS sectors instead of 68 industries", {}, True),
    "no_beta": ("5 styles (beta dropped)", {"styles": ALL_STYLES[:5]}, False),
    "issue_set": ("sectors + size/momentum/volatility/reversal (the issue's default run)",
                  {"styles": ["size", "momentum", "volatility", "reversal"]}, True),
    "vol_hl_42": ("factor vol half-life 84 -> 42", {"vol_half_life": 42}, False),
    "vol_hl_168": ("factor vol half-life 84 -> 168", {"vol_half_life": 168}, False),
    "corr_hl_126": ("factor corr half-life 504 -> 126", {"corr_half_life": 126}, False),
    "corr_hl_252": ("factor corr half-life 504 -> 252", {"corr_half_life": 252}, False),
    "no_eigen": ("eigenfactor adjustment off", {"eigen_sims": 0}, False),
    "no_vra": ("factor VRA off", {"vra_half_life": None}, False),
    "spec_hl_42": ("specific half-life 84 -> 42", {"specific_half_life": 42}, False),
    "spec_hl_168": ("specific half-life 84 -> 168", {"specific_half_life": 168}, False),
    "shrink_0": ("specific Bayesian shrinkage 0.1 -> 0", {"shrink": 0.0}, False),
    "shrink_0.3": ("specific Bayesian shrinkage 0.1 -> 0.3", {"shrink": 0.3}, False),
    "no_blend": ("structural blend of specific risk off", {"blend": False}, False),
    "no_spec_vra": ("specific VRA off", {"specific_vra_half_life": None}, False),
    "hybrid_2": ("+ 2 statistical factors of the residuals", {"statistical_factors": 2}, False),
    "hybrid_5": ("+ 5 statistical factors of the residuals", {"statistical_factors": 5}, False),
    "hybrid_10": ("+ 10 statistical factors of the residuals", {"statistical_factors": 10}, False),
    "hybrid_20": ("+ 20 statistical factors of the residuals", {"statistical_factors": 20}, False),
    "hybrid_10_sectors": ("11 sectors + 10 statistical factors of the residuals", {"statistical_factors": 10}, True),
    "hybrid_5_sectors": ("11 sectors + 5 statistical factors of the residuals", {"statistical_factors": 5}, True),
    "hybrid_10_corr_252": ("+ 10 statistical factors, factor corr half-life 252",
                           {"statistical_factors": 10, "corr_half_life": 252}, False),
    "hybrid_10_corr_126": ("+ 10 statistical factors, factor corr half-life 126",
                           {"statistical_factors": 10, "corr_half_life": 126}, False),
    "hybrid_10_short": ("+ 10 statistical factors, vol 42, corr 252, specific 42",
                        {"statistical_factors": 10, "vol_half_life": 42, "corr_half_life": 252, "specific_half_life": 42}, False),
    "short_horizon": ("USE4S-like: vol 42, corr 252, specific 42",
                      {"vol_half_life": 42, "corr_half_life": 252, "specific_half_life": 42}, False),
    "hybrid_5_short": ("hybrid 5 + vol 42, corr 252, specific 42",
                       {"statistical_factors": 5, "vol_half_life": 42, "corr_half_life": 252, "specific_half_life": 42}, False),
    "hybrid_10_no_eigen": ("+ 10 statistical factors, eigenfactor adjustment off",
                           {"statistical_factors": 10, "eigen_sims": 0}, False),
    "hybrid_10_corr_252_no_eigen": ("+ 10 statistical factors, factor corr half-life 252, eigenfactor adjustment off",
                                    {"statistical_factors": 10, "corr_half_life": 252, "eigen_sims": 0}, False),
    "hybrid_20_corr_252_no_eigen": ("+ 20 statistical factors, factor corr half-life 252, eigenfactor adjustment off",
                                    {"statistical_factors": 20, "corr_half_life": 252, "eigen_sims": 0}, False),
    "hybrid_10_sectors_no_eigen": ("11 sectors + 10 statistical factors, eigenfactor adjustment off",
                                   {"statistical_factors": 10, "eigen_sims": 0}, True),
    "hybrid_10_no_eigen_vol_42": ("+ 10 statistical factors, eigenfactor adjustment off, factor vol half-life 42",
                                  {"statistical_factors": 10, "eigen_sims": 0, "vol_half_life": 42}, False),
    "hybrid_10_no_eigen_vol_42_vra_21": ("+ 10 statistical factors, eigen adjustment off, factor vol half-life 42, VRA half-lives 21",
                                         {"statistical_factors": 10, "eigen_sims": 0, "vol_half_life": 42,
                                          "vra_half_life": 21, "specific_vra_half_life": 21}, False),
    "one_sided_eigen": ("eigen adjustment that only raises risk: v(k) floored at 1 (experiment, by patching)", {}, False),
    "hybrid_10_one_sided_eigen": ("+ 10 statistical factors, eigen adjustment floored at 1 (experiment, by patching)",
                                  {"statistical_factors": 10}, False),
    "hybrid_10_no_eigen_std_corr_63": ("as hybrid_10_no_eigen_std_corr, returns standardised only after 63 days of "
                                       "volatility history (experiment, by patching)",
                                       {"statistical_factors": 10, "eigen_sims": 0}, False),
    "hybrid_10_no_eigen_std_corr": ("+ 10 statistical factors, eigen adjustment off, correlations of vol-standardised "
                                    "factor returns (experiment, by patching)",
                                    {"statistical_factors": 10, "eigen_sims": 0}, False),
    "hybrid_10_corr_252_no_eigen_vol_42_vra_21": ("+ 10 statistical factors, corr half-life 252, eigen adjustment off, "
                                                  "vol half-life 42, VRA half-lives 21",
                                                  {"statistical_factors": 10, "corr_half_life": 252, "eigen_sims": 0,
                                                   "vol_half_life": 42, "vra_half_life": 21, "specific_vra_half_life": 21}, False),
    "hybrid_10_no_eigen_corr_std": ("+ 10 statistical factors, eigen adjustment off, corr_standardise=True "
                                    "(the setting, no patch)",
                                    {"statistical_factors": 10, "eigen_sims": 0, "corr_standardise": True}, False),
    "hybrid_10_no_eigen_corr_std_vol_42_vra_21": ("+ 10 statistical factors, eigen adjustment off, corr_standardise=True, "
                                                  "vol half-life 42, VRA half-lives 21",
                                                  {"statistical_factors": 10, "eigen_sims": 0, "corr_standardise": True,
                                                   "vol_half_life": 42, "vra_half_life": 21, "specific_vra_half_life": 21},
                                                  False),
    "no_eigen_vol_42_vra_21": ("eigen adjustment off, factor vol half-life 42, VRA half-lives 21",
                               {"eigen_sims": 0, "vol_half_life": 42, "vra_half_life": 21, "specific_vra_half_life": 21}, False),
}


#: Variants that are experiments on the method itself: a patch applied around their fit.
PATCHED = {"one_sided_eigen", "hybrid_10_one_sided_eigen", "hybrid_10_no_eigen_std_corr", "hybrid_10_no_eigen_std_corr_63"}


def one_sided_eigen_patch() -> Any:
    """Floor the simulated eigenfactor bias ``v(k)`` at 1 (the adjustment only adds risk)."""
    from unittest import mock

    import riskmodel.covariance.factor as factor

    smooth = factor._smooth_bias
    return mock.patch.object(factor, "_smooth_bias", lambda v, exclude: np.maximum(smooth(v, exclude), 1.0))


#: Days of volatility history before a factor return is standardised (experiment ``std_corr``).
WARM_UP_DAYS = 63


def standardised_correlation_patch(warm_up: int) -> Any:
    """Correlations from factor returns divided by their own lagged EWMA volatility (half-life
    ``vol_half_life``, known the day before), so a high-volatility spell does not dominate
    the correlation estimate; the volatilities stay those of the raw returns."""
    from unittest import mock

    import riskmodel.covariance.factor as factor

    base = factor._base_covariance

    def patched(f: np.ndarray, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        f_t = np.ascontiguousarray(f.T)
        m = f.shape[1]
        diag = (np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64))
        var, count = factor._nw_series(f_t, diag, s["vol_half_life"], 0, s["vol_window"], s["demean"])
        var = np.where(count >= warm_up, var, np.nan)  # no z before the volatility is estimated
        prev = np.full_like(var, np.nan)
        prev[:, 1:] = var[:, :-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            z = f / np.sqrt(np.where(prev > 0, prev, np.nan)).T
        f0_z, available_z = base(z, s)  # correlations of z (its own vols are discarded)
        f0_raw, available = base(f, s)  # vols of the raw returns
        sd_raw = np.sqrt(np.diagonal(f0_raw, axis1=1, axis2=2))
        sd_z = np.sqrt(np.diagonal(f0_z, axis1=1, axis2=2))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = f0_z / (sd_z[:, :, None] * sd_z[:, None, :])
        out = corr * sd_raw[:, :, None] * sd_raw[:, None, :]
        return out, available & available_z

    return mock.patch.object(factor, "_base_covariance", patched)


def _patch(name: str) -> Any:
    if name in ("one_sided_eigen", "hybrid_10_one_sided_eigen"):
        return one_sided_eigen_patch()
    if name == "hybrid_10_no_eigen_std_corr":
        return standardised_correlation_patch(warm_up=1)
    if name == "hybrid_10_no_eigen_std_corr_63":
        return standardised_correlation_patch(warm_up=WARM_UP_DAYS)
    return contextlib.nullcontext()


def model_panel(panel: Any, sectors: bool) -> Any:
    """The panel with ``industry`` = GICS sector when ``sectors`` (sector labels are static)."""
    if not sectors:
        return panel
    return panel.drop_vars("industry").rename({"sector": "industry"})


def backtest_facts(bt: Any) -> dict[str, Any]:
    """Per period and portfolio: realised/predicted vol, bias, gross, turnover, seconds."""
    facts: dict[str, Any] = {}
    for label, (lo, hi) in PERIODS.items():
        table = bt.table(lo, hi)
        facts[label] = {
            f"{p} | {e}": {k: float(v) for k, v in table.loc[(p, e)].items()}
            for p, e in table.index
        }
    return facts


def bias_facts(fit: Any) -> dict[str, Any]:
    """Random- and optimised-portfolio bias over 2010-2016 and random bias per calendar year."""
    import riskmodel as rm

    bias = rm.bias_statistics(fit, ["random", "optimised"], start=EVAL_START, n_random=100, n_optimised=100)
    fam = bias.by_family()
    z = bias.z.to_pandas()
    random_cols = bias.family.to_numpy() == "random"
    yearly = {str(y): float(block.loc[:, random_cols].std().median()) for y, block in z.groupby(z.index.year)}
    out = {"band": [float(b) for b in bias.band], "yearly_random": yearly}
    for family in ("random", "optimised"):
        out[family] = {k: float(v) for k, v in fam.loc[family].items() if isinstance(v, (int, float, np.floating))}
    return out


def run_peers(panel: Any, args: Any) -> None:
    import riskmodel as rm
    from riskmodel.construction import default_estimators
    from riskmodel.construction.backtest import construction_backtest

    facts: dict[str, Any] = {"window": panel.attrs["window"], "n_stocks_panel": int(panel.sizes["stock"])}
    tic = time.perf_counter()
    bt = construction_backtest(panel["returns"], default_estimators(252), start=EVAL_START, rebalance=21, window=252)
    facts["seconds"] = time.perf_counter() - tic
    facts["n_stocks_median"] = int(np.median(bt.dataset["n_stocks"].to_numpy()))
    facts["results"] = backtest_facts(bt)
    rm.save(bt, OUT / "construction_peers.nc")
    print(bt.summary())
    write_json(OUT, "construction_study_peers", facts)


def run_variants(panel: Any, args: Any) -> None:
    import riskmodel as rm
    from riskmodel.construction.backtest import construction_backtest

    names = list(VARIANTS) if not args.only else args.only.split(",")
    stem = "construction_study_variants" + (f"_{args.tag}" if args.tag else "")
    path = OUT / f"{stem}.json"
    facts: dict[str, Any] = {}
    if path.exists() and args.only:
        import json

        facts = json.loads(path.read_text())
    for name in names:
        what, settings, sectors = VARIANTS[name]
        settings = {"styles": ALL_STYLES, **settings}
        tic = time.perf_counter()
        with quiet_fit_warnings(), _patch(name):
            fit = rm.FactorRiskModel(progress=False, **settings).fit(model_panel(panel, sectors))
            fit_seconds = time.perf_counter() - tic
            bt = construction_backtest(panel["returns"], {name: fit}, start=EVAL_START, rebalance=21, window=252)
            bias = bias_facts(fit)
        label = name if args.fit_start == START else f"{name}@{args.fit_start[:4]}"
        facts[label] = {
            "fit_start": args.fit_start,
            "what": what if args.fit_start == START else f"{what}; fitted from {args.fit_start} (longer burn-in)", "settings": {k: v for k, v in settings.items()}, "sectors": sectors,
            "n_factors": int(len(fit.factors)), "fit_seconds": fit_seconds,
            "n_stocks_median": int(np.median(bt.dataset["n_stocks"].to_numpy())),
            "results": backtest_facts(bt), "bias": bias,
        }
        row = facts[label]["results"]["2010-2016"]
        print(f"{label:16s} gmv {row[f'gmv | {name}']['realised vol']:.4f} lo {row[f'gmv_long_only | {name}']['realised vol']:.4f} "
              f"pred {row[f'gmv | {name}']['predicted vol']:.4f} alpha {row[f'alpha | {name}']['realised vol']:.4f} "
              f"rand bias {bias['random'].get('median_bias', np.nan):.3f} ({time.perf_counter() - tic:.0f} s)", flush=True)
        write_json(OUT, stem, facts)
        rm.save(bt, OUT / f"construction_variant_{label}.nc")
        del fit, bt


def _load_parts() -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    peers = json.loads((OUT / "construction_study_peers.json").read_text())
    variants: dict[str, Any] = {}
    for path in sorted(OUT.glob("construction_study_variants*.json")):
        variants.update(json.loads(path.read_text()))
    order = [v for v in VARIANTS if v in variants] + sorted(v for v in variants if "@" in v)
    return peers, {k: variants[k] for k in order}


def report_rows(peers: dict[str, Any], variants: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per peer and variant: GMV realised vol (unconstrained, long-only) for the
    three periods, GMV predicted vol, alpha-portfolio realised vol, gross, random bias."""
    rows = []

    def row(label: str, what: str, results: dict[str, Any], est: str, bias: dict[str, Any] | None) -> dict[str, Any]:
        out = {"label": label, "what": what}
        for period in PERIODS:
            res = results[period]
            out[f"gmv {period}"] = res[f"gmv | {est}"]["realised vol"]
            out[f"long-only {period}"] = res[f"gmv_long_only | {est}"]["realised vol"]
        full = results["2010-2016"]
        out["gmv predicted"] = full[f"gmv | {est}"]["predicted vol"]
        out["gmv bias"] = full[f"gmv | {est}"]["bias"]
        out["alpha vol"] = full[f"alpha | {est}"]["realised vol"]
        out["gross"] = full[f"gmv | {est}"]["gross"]
        out["turnover"] = full[f"gmv | {est}"]["turnover"]
        out["seconds"] = full[f"gmv | {est}"]["seconds"]
        if bias:
            out["random bias"] = bias["random"]["median_bias"]
            out["optimised bias"] = bias["optimised"]["median_bias"]
            yearly = bias["yearly_random"]
            out["yearly random bias min..max"] = f"{min(yearly.values()):.2f}..{max(yearly.values()):.2f}"
        return out

    for est in ("Ledoit-Wolf", "OAS", "nonlinear shrinkage", "EWMA (hl 60) shrunk 50% to diagonal", "1/N"):
        rows.append(row(est, "peer, trailing 252 days", peers["results"], est, None))
    for name, v in variants.items():
        rows.append(row(f"riskmodel: {name}", v["what"], v["results"], name.split("@")[0], v["bias"]))
    return rows


def run_report(panel: Any, args: Any) -> None:
    """Markdown table of every peer and variant, and the figure, from the two JSON files."""
    from matplotlib.figure import Figure

    peers, variants = _load_parts()
    rows = report_rows(peers, variants)
    cols = ["gmv 2010-2016", "long-only 2010-2016", "gmv 2010-2012", "gmv 2013-2016", "long-only 2010-2012",
            "long-only 2013-2016", "gmv predicted", "gmv bias", "alpha vol", "gross", "random bias", "optimised bias",
            "yearly random bias min..max"]
    pct = {c for c in cols if c.startswith(("gmv 2", "long-only", "gmv predicted", "alpha"))}
    lines = ["| covariance | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(v if isinstance(v, str) else (f"{100 * v:.2f}" if c in pct else f"{v:.2f}"))
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    (OUT / "construction_study_table.md").write_text(table + "\n")
    write_json(OUT, "construction_study", {"peers": peers, "variants": variants, "rows": rows})
    fig = Figure(figsize=(10, 0.32 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.2, [100 * r["gmv 2010-2016"] for r in rows], height=0.4, label="GMV, unconstrained", color="C0")
    ax.barh(y - 0.2, [100 * r["long-only 2010-2016"] for r in rows], height=0.4, label="GMV, long-only", color="C1")
    ax.scatter([100 * r["gmv predicted"] for r in rows], y + 0.2, marker="|", color="k", s=60, label="predicted (unconstrained)")
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=7)
    ax.set_xlabel("annualised realised volatility 2010-2016, %")
    lw = 100 * rows[0]["gmv 2010-2016"]
    ax.axvline(lw, color="0.5", ls=":", lw=1)
    left = 7.0
    ax.set_xlim(left, 1.03 * max(100 * r["gmv 2010-2016"] for r in rows))
    for yi, r in zip(y, rows):
        if 100 * r["gmv predicted"] < left:  # a prediction off the scale: say it in text
            ax.text(left + 0.05, yi + 0.2, f"predicted {100 * r['gmv predicted']:.1f}", va="center", fontsize=6, color="w")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.set_title("Minimum-variance portfolios rebuilt every 21 days, S&P 500 2010-2016 (lower is better)", fontsize=9)
    figures = Path(__file__).resolve().parents[1] / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(figures / "construction_study.png", dpi=80)
    print(f"wrote {figures / 'construction_study.png'}")


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("peers", "variants", "report"), required=True)
    p.add_argument("--only", default="", help="comma-separated variant names (default all)")
    p.add_argument("--fit-start", default=START, help=f"first date of the panel the models are fitted on (default {START})")
    p.add_argument("--tag", default="", help="suffix of the variants JSON (to run parts in parallel)")
    p.add_argument("--data", default=None)
    args = p.parse_args()
    if args.part == "report":
        run_report(None, args)
        return
    panel = load_panel(args.fit_start, END, data=args.data)
    (run_peers if args.part == "peers" else run_variants)(panel, args)


if __name__ == "__main__":
    main()
