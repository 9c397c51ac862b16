"""Figure of a :class:`~riskmodel.construction.backtest.ConstructionBacktest`.

matplotlib is imported inside the function (``import riskmodel`` stays light);
:meth:`ConstructionBacktest.plot` calls it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_construction_backtest"]


def plot_construction_backtest(result: Any, *, window: int = 252, path: str | None = None) -> Any:
    """Realised against predicted volatility per estimator and portfolio, and the rolling
    realised volatility of each estimator's unconstrained minimum-variance portfolio.

    Parameters
    ----------
    result : ConstructionBacktest
    window : int
        Days of the trailing realised volatility (right panel).
    path : str, optional
        Also write the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    table = result.table()
    portfolios = [p for p in result.portfolios if p != "alpha"] or result.portfolios
    estimators = result.estimators
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax_bar, ax_roll = fig.subplots(1, 2, width_ratios=[1.2, 1.4])
    x = np.arange(len(estimators))
    width = 0.8 / len(portfolios)
    for k, p in enumerate(portfolios):
        real = 100 * table.loc[p, "realised vol"].reindex(estimators).to_numpy()
        pred = 100 * table.loc[p, "predicted vol"].reindex(estimators).to_numpy()
        pos = x - 0.4 + width * (k + 0.5)
        ax_bar.bar(pos, real, width=width * 0.95, color=f"C{k}", label=f"{p} realised")
        ax_bar.scatter(pos, pred, color="k", marker="_", s=120, zorder=3, label="predicted" if k == 0 else None)
        for xi, v in zip(pos, real):
            ax_bar.text(xi, v, f"{v:.1f}", ha="center", va="bottom", fontsize=6)
    ax_bar.set_xticks(x, estimators, rotation=30, ha="right", fontsize=7)
    ax_bar.set_ylabel("annualised volatility, %")
    ax_bar.set_title("Minimum-variance portfolios: realised (bars) vs predicted (ticks)", fontsize=9)
    ax_bar.legend(fontsize=7, frameon=False)
    realised = result.dataset["realised"].sel(portfolio=result.portfolios[0]).to_pandas()
    rolling = realised.rolling(window, min_periods=window // 2).std() * np.sqrt(252) * 100
    for j, label in enumerate(rolling.columns):
        ax_roll.plot(rolling.index, rolling[label], lw=1.1, color=f"C{j}", label=str(label))
    locator = AutoDateLocator(maxticks=6)
    ax_roll.xaxis.set_major_locator(locator)
    ax_roll.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax_roll.set_ylabel(f"realised vol, % (trailing {window} days)")
    ax_roll.set_title(f"{result.portfolios[0]}: rolling realised volatility", fontsize=9)
    ax_roll.legend(fontsize=7, frameon=False, ncol=2)
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig
