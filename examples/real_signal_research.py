"""Issue #5: the seeds' three regressions on real data (12-1 momentum) and on the simulated spend panel.

1. Manufacture a factor (regression across stocks of returns on the cleaned signal) from
   12-1 momentum of the real S&P 500 panel, raw (centred, standardised, winsorised only)
   and neutralised against size and the GICS industries (regression across stocks of the
   signal on controls).
2. Test its alpha (regression through time) against the Fama-French daily factor lists
   shipped with the data (CAPM, FF3, Carhart, FF5, FF5 + momentum) and against the
   model's own factor returns; the decile cousin too.
3. Ex post attribution: the time-averaged exposures of the daily-neutral book.
4. The same on the simulated world with a card-spend panel (known premium).

Run ``python examples/real_signal_research.py`` (about 1 minute) or with ``--quick``.
Writes ``docs/figures/real_signal_research_*.png`` and ``real_signal_research.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import load_panel, parser, quiet_fit_warnings, save_figure, write_json  # noqa: E402

NAME = "real_signal_research"
FF_LISTS = {
    "CAPM": ["mkt_rf"],
    "FF3": ["mkt_rf", "smb", "hml"],
    "Carhart": ["mkt_rf", "smb", "hml", "mom"],
    "FF5": ["mkt_rf", "smb", "hml", "rmw", "cma"],
    "FF5+mom": ["mkt_rf", "smb", "hml", "rmw", "cma", "mom"],
}
COLUMNS = ["alpha_annual", "t_alpha", "r2", "ir", "n_obs"]


def factor_lists(ff: pd.DataFrame, fit, styles: list[str], signal_style: str) -> dict[str, pd.DataFrame]:
    """Fama-French lists plus the model's market + styles, with and without the signal's own style.

    Industry factor returns are left out of the model lists: thin industries have NaN
    returns on many days, and a list is regressed only on dates where all its factors exist.
    """
    lists = {name: ff[cols] for name, cols in FF_LISTS.items()}
    model = fit.factor_returns.to_pandas()
    others = [s for s in styles if s != signal_style]
    lists[f"model: market+styles ex {signal_style}"] = model[["market", *others]]
    lists["model: market+styles"] = model[["market", *styles]]
    return lists


def alpha_block(rm, series: dict[str, pd.Series], lists: dict) -> pd.DataFrame:
    """alpha_test of each return series against every list, stacked."""
    frames = []
    for name, r in series.items():
        table = rm.alpha_test(r, lists).table[COLUMNS].copy()
        table.insert(0, "portfolio", name)
        frames.append(table.rename_axis("factor_list").reset_index())
    return pd.concat(frames, ignore_index=True)


def cumulative_figure(series: dict[str, pd.Series], title: str):
    """Cumulative sums of daily returns (log-like scale, no compounding)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.8))
    ax = fig.subplots()
    for name, r in series.items():
        r = r.dropna()
        ax.plot(r.index, r.cumsum(), label=f"{name} (Sharpe {r.mean() / r.std() * np.sqrt(252):.2f})")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("cumulative return (sum of daily)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _book_facts(r: pd.Series) -> dict:
    """Days, first and last date, annualised mean and volatility of a daily return series."""
    r = r.dropna()
    return {"n_days": int(r.size), "first": str(r.index[0].date()), "last": str(r.index[-1].date()),
            "mean_annual": float(r.mean() * 252), "vol_annual": float(r.std() * np.sqrt(252))}


def real_study(args, out: Path) -> dict:
    import riskmodel as rm

    panel = load_panel(args.start, args.end, n_stocks=args.stocks, data=args.data)
    styles = list(panel.attrs["styles"])
    print(f"panel {panel.attrs['window']}: {panel.sizes['stock']} stocks x {panel.sizes['date']} dates; "
          f"signal = 12-1 momentum (252-day log return skipping the last 21 days)")
    with quiet_fit_warnings():
        fit = rm.FactorRiskModel(styles=styles, covariance=False, progress=False).fit(panel)
        signal = panel["momentum"]
        raw = rm.factor_from_signal(signal, panel, controls=None, industry=None)
        neutral = rm.factor_from_signal(signal, panel, controls=["size"], industry="industry")
    ff = rm.load_ff_factors(args.data)
    lists = factor_lists(ff, fit, styles, "momentum")
    series = {
        "raw": raw.returns.to_series(),
        "neutral (size, industry)": neutral.returns.to_series(),
        "decile long-short (neutral)": neutral.deciles.returns.to_series(),
    }
    for name, r in series.items():
        r = r.dropna()
        print(f"{name:<28} {r.size} days {r.index[0].date()}..{r.index[-1].date()}: ann. mean {r.mean() * 252:6.2%}, "
              f"ann. vol {r.std() * np.sqrt(252):6.2%}, Sharpe {r.mean() / r.std() * np.sqrt(252):5.2f}")
    print(f"neutral book: max |daily exposure to controls| {float(np.nanmax(np.abs(neutral.control_exposures.to_numpy()))):.1e}; "
          f"mean one-way turnover {float(neutral.turnover.mean()):.3f}/day")
    table = alpha_block(rm, series, lists)
    print("\nAlpha tests (Newey-West t, annualised alpha, IR = alpha/sigma_e * sqrt(252)):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

    with quiet_fit_warnings():
        att_ff = rm.attribution(series["neutral (size, industry)"], ff[FF_LISTS["FF5+mom"]])
        att_model = rm.attribution(series["neutral (size, industry)"], lists["model: market+styles"])
    print("\nEx post attribution of the neutral book: time-averaged exposures (regression slopes, NW t)")
    print("on FF5 + momentum:\n" + att_ff.summary())
    print("on the model's market + styles:\n" + att_model.summary())
    save_figure(cumulative_figure(series | {"Fama-French mom (UMD)": ff["mom"].loc[series["raw"].dropna().index[0]:]},
                                  f"12-1 momentum factors, S&P 500 {panel.attrs['window']}"), out, f"{NAME}_momentum")
    return {
        "panel": panel.attrs["window"],
        "n_stocks": panel.sizes["stock"],
        "n_industries": int(panel["industry"].to_series().nunique()),
        "sharpe": {k: float(v.mean() / v.std() * np.sqrt(252)) for k, v in series.items()},
        "books": {k: _book_facts(v) for k, v in series.items()},
        "alpha": {f"{r.portfolio} | {r.factor_list}": {"alpha_annual": r.alpha_annual, "t_alpha": r.t_alpha, "r2": r.r2} for r in table.itertuples()},
        "max_control_exposure": float(np.nanmax(np.abs(neutral.control_exposures.to_numpy()))),
        "mean_turnover": float(neutral.turnover.mean()),
        "attribution_ff": {"exposures": att_ff.exposures.to_dict(), "t": att_ff.t_stats.to_dict(), "r2": att_ff.r2},
        "attribution_model": {"exposures": att_model.exposures.to_dict(), "t": att_model.t_stats.to_dict(), "r2": att_model.r2},
    }


def simulated_study(args, out: Path) -> dict:
    import riskmodel as rm

    n_stocks, n_days = (300, 600) if args.quick else (600, 1000)
    panel = rm.simulate(n_stocks=n_stocks, n_days=n_days, seed=0, spend=True)
    styles = list(panel.attrs["styles"])
    premium = float(panel.attrs.get("spend_premium", np.nan))
    print(f"\n== simulated world: {n_stocks} stocks x {n_days} days, styles {styles}, spend premium {premium:.2%}/yr ==")
    with quiet_fit_warnings():
        fit = rm.FactorRiskModel(styles=styles, covariance=False, progress=False).fit(panel)
        growth = rm.yoy_log_growth(panel["spend"], window=90)
        raw = rm.factor_from_signal(growth, panel, controls=None, industry=None)
        neutral = rm.factor_from_signal(growth, panel, controls=["size"], industry="industry")
    model = fit.factor_returns.to_pandas()
    lists = {
        "market": model[["market"]],
        "market+size": model[["market", "size"]],
        "market+styles": model[["market", *styles]],
        "true factors": panel["true_factor_returns"].to_pandas(),
    }
    series = {"raw": raw.returns.to_series(), "neutral (size, industry)": neutral.returns.to_series(),
              "decile long-short (neutral)": neutral.deciles.returns.to_series()}
    table = alpha_block(rm, series, lists)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    with quiet_fit_warnings():
        att = rm.attribution(series["neutral (size, industry)"], lists["market+styles"])
    print("attribution of the neutral spend book on the model's market + styles:\n" + att.summary())
    return {
        "n_stocks": n_stocks, "n_days": n_days, "spend_premium": premium,
        "n_factor_days": int(series["neutral (size, industry)"].dropna().size),
        "alpha": {f"{r.portfolio} | {r.factor_list}": {"alpha_annual": r.alpha_annual, "t_alpha": r.t_alpha, "r2": r.r2} for r in table.itertuples()},
        "attribution": {"exposures": att.exposures.to_dict(), "t": att.t_stats.to_dict()},
    }


def main(argv: list[str] | None = None) -> dict:
    args = parser(__doc__.splitlines()[0], start="2007-01-03").parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    facts = {"real": real_study(args, out), "simulated": simulated_study(args, out)}
    facts["seconds"] = time.perf_counter() - started
    write_json(out, NAME, facts)
    print(f"\nwrote figures and {out / (NAME + '.json')} in {facts['seconds']:.0f} s")
    return facts


if __name__ == "__main__":
    main()
