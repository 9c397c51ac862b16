"""``riskmodel demo``: the whole story on a simulated world with known truth.

1. simulate a world (with a hidden "oil" factor and a card-spend panel);
2. fit the fundamental model and check the exact identities against the truth;
3. measure portfolio risk with the structured covariance and evaluate forecasts;
4. audit the residuals: find the hidden factor, add it, refit, audit again;
5. manufacture the spend signal's factor and test its alpha against factor lists.

Everything printed is computed; figures and an HTML page are written to one folder.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class _Story:
    """Prints the demo as it runs and keeps the same text and figures for the HTML page."""

    def __init__(self) -> None:
        from riskmodel.report.html import Block

        self._block = Block
        self.blocks: list = []
        self._lines: list[str] = []

    def section(self, title: str) -> None:
        self._flush()
        print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
        self.blocks.append(self._block("h2", title))

    def say(self, text: str) -> None:
        print(text)
        self._lines.append(text)

    def figure(self, fig, caption: str, path: Path) -> None:
        import io

        from riskmodel import _atomic

        self._flush()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110)
        _atomic.write_bytes(path, png.getvalue())  # atomic, with the mode open() gives
        self.blocks.append(self._block("figure", fig, caption))

    def _flush(self) -> None:
        if self._lines:
            self.blocks.append(self._block("pre", "\n".join(self._lines)))
            self._lines = []

    def finish(self) -> list:
        self._flush()
        return self.blocks


def run_demo(output: Path, *, n_stocks: int = 600, n_days: int = 1000, seed: int = 0) -> dict:
    """Run the demo, print its report and write figures and ``index.html`` to ``output``.

    Returns
    -------
    dict
        The headline figures (also written to ``output/demo.json``).
    """
    import riskmodel as rm
    from riskmodel import _atomic
    from riskmodel.report.figures import plot_cumulative_factor_returns
    from riskmodel.report.html import write_report

    output.mkdir(parents=True, exist_ok=True)
    story = _Story()
    facts: dict[str, object] = {}
    started = time.perf_counter()

    story.section("1. A simulated world with known truth")
    panel = rm.simulate(
        n_stocks=n_stocks,
        n_days=n_days,
        seed=seed,
        hidden=[{"name": "oil", "n_members": 60, "corr": 0.15}],
        spend=True,
    )
    styles = list(panel.attrs["styles"])
    n_ind = len(np.unique(panel["industry"].to_numpy()))
    story.say(f"{n_stocks} stocks x {n_days} days, {n_ind} industries, styles {styles}, one hidden 'oil' factor on 60 names")

    story.section("2. Daily cross-sectional regressions: factor returns")
    fit = rm.FactorRiskModel(styles=styles, eigen_sims=300, progress=False).fit(panel)
    story.say(fit.summary())
    truth = panel["true_factor_returns"]
    corr = {
        s: float(np.corrcoef(*_both_finite(fit.factor_returns.sel(factor=s).to_numpy(), truth.sel(true_factor=s).to_numpy()))[0, 1])
        for s in styles
    }
    story.say("correlation of estimated and true style factor returns: " + ", ".join(f"{k} {v:.3f}" for k, v in corr.items()))
    facts["style_return_correlation"] = corr
    exact = rm.FactorRiskModel(styles=styles, return_clip=None, covariance=False, progress=False).fit(panel)
    day = exact.dates[len(exact.dates) // 2]
    weights = exact.mimicking_portfolios(day)
    portfolio_return = (weights.fillna(0.0) * exact.returns.sel(date=day).fillna(0.0)).sum("stock")
    identity_error = float(np.nanmax(np.abs(portfolio_return - exact.factor_returns.sel(date=day))))
    story.say(f"a factor is a portfolio: on {day.date()}, max |mimicking-portfolio return - factor return| = {identity_error:.1e}")
    facts["mimicking_identity_error"] = identity_error
    story.figure(plot_cumulative_factor_returns(fit), "Cumulative factor returns", output / "factor_returns.png")

    story.section("3. Portfolio risk without an N x N matrix")
    cov = fit.covariance()
    cap = fit.dataset["market_cap"].isel(date=-1).sel(stock=list(cov.stocks))
    top = cap.to_series().nlargest(100)
    book = (top / top.sum()).rename("weight")
    dec = cov.decompose(book)
    story.say(f"cap-weighted book of the 100 largest names, forecast for the day after {pd.Timestamp(cov.date).date()}:")
    story.say(f"  volatility {float(dec.total_vol) * np.sqrt(252):.2%}/yr  (factor {float(dec.factor_vol) * np.sqrt(252):.2%}, "
          f"specific {float(dec.specific_vol) * np.sqrt(252):.2%})")
    facts["book_volatility_annual"] = float(dec.total_vol) * np.sqrt(252)
    bias = rm.bias_statistics(fit, start=fit.dates[250], n_random=50, n_optimised=20)  # after a year of burn-in
    story.say(bias.summary())
    story.figure(bias.plot(), "Rolling bias statistics with the 95% band", output / "rolling_bias.png")
    facts["bias_by_family"] = bias.by_family()["mean_bias"].round(3).to_dict()

    story.section("4. Audit: what does the model miss?")
    audit = rm.audit_residuals(fit, labels=panel["industry"], seed=seed)
    story.say(audit.summary())
    members = panel["true_hidden_loadings"].sel(hidden="oil").to_series()
    oil = set(members[members != 0].index.astype(str))
    if audit.clusters:
        found = set(audit.clusters[0].stocks)
        story.say(f"largest cluster: {len(found)} names, {len(found & oil)} of the 60 true 'oil' names "
              f"({len(found - oil)} others)")
        facts["oil_found"] = len(found & oil)
        refit, audit_after = rm.refit_with_clusters(rm.FactorRiskModel(styles=styles, eigen_sims=300, progress=False), panel, audit)
        story.say(f"after adding the cluster as a factor: {len(audit_after.clusters)} cluster(s) flagged")
        facts["clusters_after_refit"] = len(audit_after.clusters)
    audit.to_html(output / "audit.html")

    story.section("5. A new signal: card-spend growth")
    growth = rm.yoy_log_growth(panel["spend"], window=90)
    lists = {
        "market": fit.factor_returns.sel(factor=["market"]),
        "market+size": fit.factor_returns.sel(factor=["market", "size"]),
        "full model": fit.factor_returns,
    }
    raw = rm.factor_from_signal(growth, panel, controls=None, industry=None)
    neutral = rm.factor_from_signal(growth, panel, controls=["size"], industry="industry")
    story.say("raw signal (centred and standardised only):")
    story.say(rm.alpha_test(raw.returns, lists).summary())
    story.say("neutralised to size and industries:")
    story.say(rm.alpha_test(neutral.returns, lists).summary())
    story.say(neutral.summary())
    facts["true_spend_premium_annual"] = float(panel.attrs.get("spend_premium", np.nan))

    write_report(output / "index.html", "riskmodel demo", story.finish())
    _atomic.write_bytes(output / "demo.json", (json.dumps(plain_json(facts), indent=2) + "\n").encode("utf-8"))
    elapsed = time.perf_counter() - started
    print(f"\nwrote {output}/index.html, audit.html, demo.json and figures in {elapsed:.1f} s")  # console only
    return facts


def plain_json(value: Any) -> Any:
    """``value`` as strict JSON: numpy numbers as Python numbers, NaN and infinities as None,
    dicts and sequences recursively (keys as text)."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _both_finite(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


__all__ = ["plain_json", "run_demo"]
