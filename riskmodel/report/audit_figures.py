"""Figures of the residual audit (matplotlib, Agg canvas; no pyplot, no display).

* ``spectrum``  -- leading eigenvalues against the Marchenko-Pastur, Tracy-Widom and
  surrogate-null edges (with the surrogate ``lambda_max`` as a rug);
* ``clusters``  -- raw residual correlation of the cluster members, ordered by cluster;
* ``bias``      -- held-out bias of each cluster portfolio next to random portfolios of
  the same size, with the ``1 +- 2 sqrt(2/T)`` band;
* ``bias_time`` -- rolling bias (63-day sd of the unit-predicted-vol cluster portfolio).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from riskmodel import _atomic

if TYPE_CHECKING:  # pragma: no cover - type hints only: report never imports audit at run time
    from riskmodel.audit.residual_results import ResidualAudit

__all__ = [
    "KINDS",
    "plot_audit",
    "plot_bias",
    "plot_bias_time",
    "plot_cluster_correlation",
    "plot_spectrum",
    "save_figures",
]

KINDS = ("spectrum", "clusters", "bias", "bias_time")
_ROLLING = 63


def _figure(width: float = 7.0, height: float = 4.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_spectrum(audit: ResidualAudit) -> Figure:
    """Eigenvalues (log scale) vs the MP, Tracy-Widom 99% and null edges."""
    fig = _figure()
    ax = fig.add_subplot()
    ev = np.asarray(audit.eigenvalues.values)
    idx = np.arange(1, ev.size + 1)
    sig = ev > audit.null_edge
    ax.scatter(idx[~sig], ev[~sig], color="0.45", s=22, label="eigenvalue", zorder=3)
    ax.scatter(idx[sig], ev[sig], color="C3", s=34, label="significant", zorder=3)
    ax.axhline(audit.mp_edge, color="C0", ls="--", lw=1.2, label=f"MP edge {audit.mp_edge:.2f}")
    ax.axhline(audit.tw_edge, color="C0", ls=":", lw=1.2, label=f"TW 99% {audit.tw_edge:.2f}")
    ax.axhline(audit.null_edge, color="C3", ls="-", lw=1.2, label=f"null edge {audit.null_edge:.2f}")
    lam = np.asarray(audit.null_lambda_max)
    ax.plot(np.full(lam.size, 0.4), lam, "_", color="C3", ms=10, alpha=0.6, label="surrogate $\\lambda_{max}$")
    ax.set_yscale("log")
    ax.set_xlim(0, ev.size + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("component")
    ax.set_ylabel("eigenvalue of $Z^TZ/T$")
    ax.set_title(  # two lines: one would run past the figure's edges
        f"Residual spectrum: {audit.n_stocks} stocks x {audit.n_dates} dates\n"
        f"{audit.n_significant} above the null edge (BBP bound on spikes {audit.detectability:.2f})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_cluster_correlation(audit: ResidualAudit) -> Figure:
    """Heatmap of the raw residual correlation of the flagged stocks, ordered by cluster."""
    fig = _figure(6.4, 5.6)
    ax = fig.add_subplot()
    rho = audit.cluster_correlation
    if rho.shape[0] == 0:
        ax.text(0.5, 0.5, "no residual clusters", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    im = ax.imshow(np.nan_to_num(rho.values), cmap="RdBu_r", vmin=-0.5, vmax=0.5, interpolation="nearest")
    tags = np.asarray(rho["cluster"].values)
    cuts = np.flatnonzero(np.diff(tags)) + 0.5
    for c in cuts:
        ax.axhline(c, color="k", lw=0.8)
        ax.axvline(c, color="k", lw=0.8)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(tags)) + 1])
    ax.set_xticks(starts)
    ax.set_xticklabels([f"#{tags[s]}" for s in starts], fontsize=8)
    ax.set_yticks(starts)
    ax.set_yticklabels([f"#{tags[s]}" for s in starts], fontsize=8)
    ax.set_title(f"Residual correlation of {rho.shape[0]} cluster members (ordered by cluster)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="correlation")
    return fig


def plot_bias(audit: ResidualAudit) -> Figure:
    """Held-out (and discovery) bias of each cluster vs random portfolios of its size."""
    fig = _figure()
    ax = fig.add_subplot()
    band = 2.0 * math.sqrt(2.0 / audit.n_test)
    ax.axhspan(1.0 - band, 1.0 + band, color="0.9", label=f"1 $\\pm$ 2$\\sqrt{{2/T}}$ (T={audit.n_test})")
    ax.axhline(1.0, color="0.5", lw=0.8)
    if not audit.clusters:
        ax.text(0.5, 0.5, "no residual clusters", ha="center", va="center", transform=ax.transAxes)
    for j, c in enumerate(audit.clusters):
        if c.random_bias.size:
            ax.boxplot(c.random_bias, positions=[j], widths=0.5, showfliers=True, manage_ticks=False,
                       boxprops={"color": "0.4"}, medianprops={"color": "0.4"})
        ax.scatter([j], [c.bias_in], marker="o", facecolors="none", edgecolors="C0", s=40,
                   label="cluster, discovery" if j == 0 else None, zorder=3)
        ax.scatter([j], [c.bias_out], marker="D", color="C3" if c.flagged else "C0", s=40,
                   label="cluster, held out" if j == 0 else None, zorder=3)
    ax.set_xticks(range(len(audit.clusters)))
    ax.set_xticklabels([f"#{j}\nk={c.size}" for j, c in enumerate(audit.clusters)], fontsize=8)
    ax.set_xlim(-0.8, max(len(audit.clusters), 1) - 0.2)
    ax.set_ylabel("bias statistic (realised / predicted vol)")
    ax.set_title("Equal-weight cluster portfolios vs random portfolios (boxes)")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_bias_time(audit: ResidualAudit, window: int = _ROLLING) -> Figure:
    """Rolling bias statistic of each cluster portfolio over the audit window."""
    fig = _figure(7.6, 4.2)
    ax = fig.add_subplot()
    band = 2.0 * math.sqrt(2.0 / window)
    ax.axhspan(1.0 - band, 1.0 + band, color="0.9", label=f"1 $\\pm$ 2$\\sqrt{{2/{window}}}$")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvline(np.asarray(audit.dates)[audit.n_discovery], color="k", ls=":", lw=1.0, label="start of hold-out")
    for j, c in enumerate(audit.clusters[:8]):
        s = c.portfolio.to_series()
        rb = s.rolling(window, min_periods=window // 2).std()
        ax.plot(rb.index, rb.values, lw=1.2, label=f"#{j} (k={c.size})")
    if not audit.clusters:
        ax.text(0.5, 0.5, "no residual clusters", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(f"rolling {window}-day bias")
    ax.set_title("Bias statistics of cluster portfolios over time")
    ax.legend(fontsize=8, loc="upper left")
    return fig


_PLOTTERS = {
    "spectrum": plot_spectrum,
    "clusters": plot_cluster_correlation,
    "bias": plot_bias,
    "bias_time": plot_bias_time,
}


def plot_audit(audit: ResidualAudit, kind: str = "spectrum") -> Figure:
    """Dispatch on ``kind`` (one of :data:`KINDS`)."""
    from riskmodel.errors import InvalidParameterError

    if kind not in _PLOTTERS:
        raise InvalidParameterError(f"plot: kind={kind!r} is not one of {KINDS}")
    return _PLOTTERS[kind](audit)


def save_figures(audit: ResidualAudit, directory: str | Path) -> dict[str, Path]:
    """Write every figure as ``audit_<kind>.png`` into ``directory`` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in KINDS:
        fig = plot_audit(audit, kind)
        path = out / f"audit_{kind}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        _atomic.write_bytes(path, buffer.getvalue())  # atomic, with the mode open() gives
        paths[kind] = path
    return paths
