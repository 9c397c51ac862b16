"""Issue #18, item 5: how fast the forecast follows a volatility spike, and comes back down.

On the real S&P 500 panel (``../shared/data``, fitted from 2007-01-03 so that 2008 is in
the sample), for several settings of the forecast half-lives and the volatility regime
adjustment (VRA), this script measures the daily risk forecast of the equal-weight
portfolio of the covered stocks and of 100 random long-only portfolios
(:func:`riskmodel.bias_statistics`) around three spikes: the flash crash (2010-05-06), the
US downgrade (2011-08-04) and the August 2015 devaluation sell-off (2015-08-24). (Lehman,
2008-09-15, falls in the burn-in of a fit that starts in 2007: momentum's 252-day
look-back and the covariance warm-up put the first forecast in 2009.) For each event and
setting:

* ``catch_up_days``: trading days from the onset until the forecast reaches 80 % of the
  volatility realised over the next 21 days (``q_t = σ̂_t / RV_{t..t+20} ≥ 0.8``);
* ``over_days`` / ``under_days``: of the 126 days from the onset, how many the forecast
  spends more than 20 % above (``q_t > 1.2``: slow to come down) or below (``q_t < 0.8``:
  slow to go up) the next 21 days' realised volatility;
* ``bias_0_63`` / ``bias_63_126``: the bias statistic ``sd(R/σ̂)`` of the equal-weight
  portfolio over the 63 days from the onset and the 63 days after that (1 = calibrated);
* ``random_bias_0_63``: the same, median over the random portfolios;

and, per setting, the random portfolios' bias per calendar year 2008-2016 and over
2010-2016. Results: ``examples/results/regime_response.json``; figure:
``docs/figures/regime_response.png``.

Run: ``python examples/regime_response.py`` (about 2-4 minutes per setting on 2 cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import STYLES, load_panel, quiet_fit_warnings, write_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
START, END = "2007-01-03", "2016-12-30"
EVENTS = {"flash crash": "2010-05-06", "US downgrade": "2011-08-04", "China sell-off": "2015-08-24"}
HORIZON_DAYS = 21
CATCH_UP, COME_DOWN = 0.8, 1.2

#: name -> FactorRiskModel settings on top of the six styles and GICS industries
SETTINGS: dict[str, dict[str, Any]] = {
    "default (vol 84, VRA 42)": {},
    "horizon='long' (vol 252, VRA 168)": {"horizon": "long"},
    "vol 42": {"vol_half_life": 42},
    "VRA 21": {"vra_half_life": 21, "specific_vra_half_life": 21},
    "vol 42, VRA 21": {"vol_half_life": 42, "vra_half_life": 21, "specific_vra_half_life": 21},
    "no VRA": {"vra_half_life": None, "specific_vra_half_life": None},
    "vol 42, VRA 21, eigen adjustment off": {"vol_half_life": 42, "vra_half_life": 21, "specific_vra_half_life": 21,
                                             "eigen_sims": 0},
    "FactorRiskModel.for_construction()": {"construction": True},
    "vol 21, VRA 21, eigen adjustment off": {"vol_half_life": 21, "vra_half_life": 21, "specific_vra_half_life": 21,
                                             "eigen_sims": 0},
    "vol 21, VRA 10, eigen adjustment off": {"vol_half_life": 21, "vra_half_life": 10, "specific_vra_half_life": 10,
                                             "eigen_sims": 0},
    "vol 21, VRA 21, eigen adjustment off, standardised corr": {"vol_half_life": 21, "vra_half_life": 21,
                                                                "specific_vra_half_life": 21, "eigen_sims": 0,
                                                                "corr_standardise": True},
    "vol 42, VRA 21, eigen adjustment off, standardised corr": {"vol_half_life": 42, "vra_half_life": 21,
                                                                "specific_vra_half_life": 21, "eigen_sims": 0,
                                                                "corr_standardise": True},
}


def forward_realised(returns: np.ndarray, days: int) -> np.ndarray:
    """``sqrt(mean r²)`` over ``t .. t + days - 1`` for every ``t`` (NaN where incomplete)."""
    sq = np.concatenate([[0.0], np.cumsum(np.nan_to_num(returns) ** 2)])
    out = np.full(returns.shape, np.nan)
    n = returns.size
    if n >= days:
        out[: n - days + 1] = np.sqrt((sq[days:] - sq[:-days]) / days)
    return out


def event_facts(dates: np.ndarray, z: np.ndarray, vol: np.ndarray, z_random: np.ndarray) -> dict[str, Any]:
    """Catch-up and come-down lags and the bias after each event (see the module docstring)."""
    realised = z * vol
    q = vol / forward_realised(realised, HORIZON_DAYS)
    out: dict[str, Any] = {}
    for name, onset in EVENTS.items():
        i0 = int(np.searchsorted(dates, np.datetime64(onset)))
        if i0 >= dates.size - 126 or i0 == 0:
            continue
        window = slice(i0, i0 + 126)
        caught = np.flatnonzero(q[window] >= CATCH_UP)
        finite = np.isfinite(q[window])
        out[name] = {
            "onset": str(dates[i0])[:10],
            "catch_up_days": int(caught[0]) if caught.size else None,
            "over_days": int((q[window][finite] > COME_DOWN).sum()),
            "under_days": int((q[window][finite] < CATCH_UP).sum()),
            "bias_0_63": float(np.nanstd(z[i0 : i0 + 63])),
            "bias_63_126": float(np.nanstd(z[i0 + 63 : i0 + 126])),
            "random_bias_0_63": float(np.median(np.nanstd(z_random[i0 : i0 + 63], axis=0))),
            "random_bias_63_126": float(np.median(np.nanstd(z_random[i0 + 63 : i0 + 126], axis=0))),
        }
    return out


def measure(panel: Any, name: str, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    import riskmodel as rm

    tic = time.perf_counter()
    with quiet_fit_warnings():
        if settings.get("construction"):
            model = rm.FactorRiskModel.for_construction(styles=list(STYLES), progress=False)
        else:
            model = rm.FactorRiskModel(styles=list(STYLES), progress=False, **settings)
        fit = model.fit(panel)
    fit_seconds = time.perf_counter() - tic
    stocks = np.asarray(fit.stocks)
    equal = rm.bias_statistics(
        fit, ["random", _equal_weight(stocks)], start="2008-01-02", n_random=100, seed=0
    )
    family = equal.family.to_numpy()
    z = equal.z.to_numpy()
    vol = equal.predicted_vol.to_numpy()
    dates = equal.z["date"].to_numpy()
    user = np.flatnonzero(family != "random")[0]
    random_cols = family == "random"
    z_random = z[:, random_cols]
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    yearly = {str(y): float(np.median(np.nanstd(z_random[years == y], axis=0))) for y in np.unique(years)}
    span = years >= 2010
    facts = {
        "settings": settings,
        "fit_seconds": fit_seconds,
        "events": event_facts(dates, z[:, user], vol[:, user], z_random),
        "yearly_random_bias": yearly,
        "random_bias_2010_2016": float(np.median(np.nanstd(z_random[span], axis=0))),
        "equal_weight_bias_2010_2016": float(np.nanstd(z[span, user])),
    }
    series = {"dates": dates, "vol": vol[:, user], "realised": forward_realised(z[:, user] * vol[:, user], HORIZON_DAYS)}
    print(f"{name:36s} fit {fit_seconds:.0f} s; " + "; ".join(
        f"{e}: up {v['catch_up_days']} d, over/under {v['over_days']}/{v['under_days']} d, bias {v['bias_0_63']:.2f}/{v['bias_63_126']:.2f}"
        for e, v in facts["events"].items()), flush=True)
    return facts, series


def _equal_weight(stocks: np.ndarray) -> Any:
    import xarray as xr

    return xr.DataArray(np.full((1, stocks.size), 1.0 / stocks.size), dims=("portfolio", "stock"),
                        coords={"portfolio": ["equal weight"], "stock": stocks})


def figure(series: dict[str, dict[str, np.ndarray]]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, len(EVENTS)).ravel()
    for ax, (event, onset) in zip(axes, EVENTS.items()):
        first = next(iter(series.values()))
        i0 = int(np.searchsorted(first["dates"], np.datetime64(onset)))
        window = slice(max(i0 - 42, 0), i0 + 168)
        ann = np.sqrt(252) * 100
        ax.plot(first["dates"][window], ann * first["realised"][window], color="k", lw=1.6, label="realised, next 21 days")
        for j, (name, s) in enumerate(series.items()):
            ax.plot(s["dates"][window], ann * s["vol"][window], lw=1.0, color=f"C{j}", label=name)
        ax.axvline(first["dates"][i0], color="0.6", ls=":")
        ax.set_title(f"{event} ({onset})", fontsize=9)
        ax.set_ylabel("equal-weight vol, % a year", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6, frameon=False)
    figures = Path(__file__).resolve().parents[1] / "docs" / "figures"
    fig.savefig(figures / "regime_response.png", dpi=80)


def markdown_table(facts: dict[str, Any]) -> str:
    """The docs' table from the JSON: per setting and event, catch-up days, days over / under
    and the bias of the 63 days after the onset, then the random portfolios' yearly bias."""
    events = list(facts["events"])
    head = ["setting", *[f"{e}: up / over / under, bias 0-63" for e in events], "random bias by year 2010-2016"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, v in facts["settings"].items():
        cells = [name]
        for e in events:
            x = v["events"][e]
            cells.append(f"{x['catch_up_days']} / {x['over_days']} / {x['under_days']}, {x['bias_0_63']:.2f}")
        years = [f"{b:.2f}" for y, b in v["yearly_random_bias"].items() if int(y) >= 2010]
        cells.append(" ".join(years))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="setting names separated by ';' (default all)")
    p.add_argument("--data", default=None)
    p.add_argument("--table", action="store_true", help="print the docs' Markdown table from the JSON and stop")
    args = p.parse_args()
    if args.table:
        import json

        print(markdown_table(json.loads((OUT / "regime_response.json").read_text())))
        return
    panel = load_panel(START, END, data=args.data)
    names = [n for n in SETTINGS if not args.only or n in args.only.split(";")]
    if args.only and not names:
        raise SystemExit(f"--only {args.only!r}: no such setting; the settings are {list(SETTINGS)}")
    facts: dict[str, Any] = {"events": EVENTS, "catch_up": CATCH_UP, "come_down": COME_DOWN, "settings": {}}
    path = OUT / "regime_response.json"
    if args.only and path.exists():  # a partial run adds to the settings already measured
        import json

        facts["settings"] = json.loads(path.read_text())["settings"]
    series = {}
    for name in names:
        facts["settings"][name], series[name] = measure(panel, name, SETTINGS[name])
        write_json(OUT, "regime_response", facts)
    if not args.only:  # the figure shows every setting: only a full run draws it
        figure(series)


if __name__ == "__main__":
    main()
