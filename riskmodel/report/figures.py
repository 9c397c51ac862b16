"""Figures of the model: cumulative factor returns and rolling bias statistics.

Figures are drawn on matplotlib's Agg canvas without pyplot, so they work on a machine
without a screen and leave no global state behind. The audit's figures live in
:mod:`riskmodel.report.audit_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _figure(ax: Any, size: tuple[float, float]):
    """A new Agg figure (no pyplot state, works without a screen), or the figure of ``ax``."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Any, path: str | Path | None) -> None:
    if path is not None:
        fig.savefig(path, dpi=110)


def plot_cumulative_factor_returns(fit: Any, factors: list[str] | None = None, *, ax: Any = None, path: str | Path | None = None):
    """Cumulative (summed) daily returns of the market and style factors.

    Parameters
    ----------
    fit : FittedFactorModel
    factors : list of str, optional
        Default: the market and every style.
    ax : matplotlib Axes, optional
    path : str or Path, optional
        Also write a PNG there.

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _figure(ax, (8, 4))
    frame = fit.factor_returns.to_pandas()
    if factors is None:
        factors = ["market", *[str(s) for s in fit.dataset["style"].to_numpy()]]
    for name in factors:
        ax.plot(frame.index, frame[name].fillna(0.0).cumsum() * 100, label=name, lw=1.2)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylabel("cumulative return, %")
    ax.set_title("Factor returns (daily cross-sectional WLS)")
    ax.legend(ncols=min(4, len(factors)), fontsize=8, frameon=False)
    _save(fig, path)
    return fig


def plot_rolling_bias(bias: Any, *, ax: Any = None, path: str | Path | None = None):
    """Rolling bias statistic per portfolio family: median line, 10–90% band, and the 95% band.

    Parameters
    ----------
    bias : BiasStatistics
    ax : matplotlib Axes, optional
    path : str or Path, optional

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = _figure(ax, (8, 4))
    rolling = bias.rolling.to_pandas()
    families = bias.family.to_numpy()
    window = bias.settings.get("window", 252)
    half = np.sqrt(2.0 / window)
    for family in dict.fromkeys(families):
        block = rolling.loc[:, families == family]
        line = ax.plot(block.index, block.median(axis=1), label=f"{family} (median)", lw=1.3)[0]
        ax.fill_between(block.index, block.quantile(0.1, axis=1), block.quantile(0.9, axis=1), color=line.get_color(), alpha=0.15, lw=0)
    ax.axhspan(1 - half, 1 + half, color="0.85", zorder=0, label=f"95% band (T={window})")
    ax.axhline(1, color="0.4", lw=0.8)
    ax.set_ylabel("rolling bias statistic")
    ax.set_title(f"Rolling bias statistics ({window}-day windows)")
    ax.legend(fontsize=8, frameon=False)
    _save(fig, path)
    return fig
