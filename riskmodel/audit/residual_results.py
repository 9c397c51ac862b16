"""The result objects of the residual audit: :class:`ResidualAudit` and its
:class:`ResidualCluster` list (re-exported by :mod:`riskmodel.audit.residuals`).

A :class:`ResidualAudit` is a :class:`~riskmodel._results.Result` of kind
``"residual_audit"``: ``summary()`` (also its repr), ``to_dataset()`` /
``from_dataset()`` (so ``rm.save`` / ``rm.load`` round-trip it) and ``save()``; its
pictures and HTML report are drawn by :mod:`riskmodel.report` (imported when asked).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._results import Result, check_kind
from riskmodel.audit.clusters import MIN_PURITY, cluster_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ResidualAudit", "ResidualCluster"]


@dataclass(frozen=True, repr=False)
class ResidualCluster:
    """A group of stocks whose residuals co-move: a candidate missing factor.

    Attributes
    ----------
    stocks : list of str
        Member ids (discovered on the first ``1 - test_fraction`` of the window).
    size : int
        Number of members ``k``.
    mean_correlation : float
        Mean off-diagonal (pairwise-complete) correlation of the members' raw residuals
        over the whole window.
    held_out_correlation : float
        The same on the standardised residuals of the held-out part only.
    p_value : float
        One-sided p-value of ``held_out_correlation`` against independent residuals
        (see Notes of :func:`~riskmodel.audit.residuals.audit_residuals`).
    returns : DataArray (date,)
        Equal-weight mean of the members' raw residuals: the candidate factor return.
    portfolio : DataArray (date,)
        ``sum_n z_tn / sqrt(k_t)``: the equal-weight portfolio of standardised residuals
        scaled to unit predicted volatility (its rolling sd is the rolling bias).
    component : int
        Index of the discovery-window component carrying most of the members' loading.
    ipr : float
        Inverse participation ratio ``sum v**4`` of that component (``~1/k`` when it
        lives on ``k`` names, ``~3/N`` when spread out).
    strength : float
        ``1 + (k - 1) * mean_correlation``: the eigenvalue the group adds (BBP spike).
    bias_in, bias_out : float
        Bias statistic (realised / predicted volatility) of the equal-weight portfolio of
        standardised residuals on the discovery and on the held-out part.
    flagged : bool
        ``bias_out > 1 + 2 sqrt(2 / T_test)``: the model misses risk out of sample.
    random_bias : ndarray (n_random,)
        Held-out bias of random equal-weight portfolios of ``k`` audited names.
    purity, dominant_label : float, str or None
        Share of members carrying the most frequent label, and that label (None
        without labels).
    label : str or None
        The label the cluster is shown with: ``dominant_label`` when ``purity`` is at
        least the audit's ``min_purity`` (default 0.5), else ``"mixed"``; None without
        labels (see :func:`~riskmodel.audit.clusters.cluster_label`).
    """

    stocks: list[str]
    size: int
    mean_correlation: float
    held_out_correlation: float
    p_value: float
    returns: xr.DataArray
    portfolio: xr.DataArray
    component: int
    ipr: float
    strength: float
    bias_in: float
    bias_out: float
    flagged: bool
    random_bias: np.ndarray = field(default_factory=lambda: np.empty(0))
    purity: float | None = None
    dominant_label: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.label is None and self.dominant_label is not None:  # built by hand: the default rule
            object.__setattr__(self, "label", cluster_label(self.dominant_label, self.purity))

    def __repr__(self) -> str:
        head = ", ".join(self.stocks[:5]) + (", ..." if self.size > 5 else "")
        lab = f", {self.label!r} purity={self.purity:.2f}" if self.dominant_label is not None else ""
        return (
            f"ResidualCluster(size={self.size}, mean_correlation={self.mean_correlation:.3f}, "
            f"p_value={self.p_value:.2g}, bias_out={self.bias_out:.2f}"
            f"{' FLAGGED' if self.flagged else ''}{lab}, stocks=[{head}])"
        )


#: Per-cluster scalars stored as ``cluster_<name>`` variables: (attribute, dtype, fill for None).
_CLUSTER_SCALARS: tuple[tuple[str, Any, Any], ...] = (
    ("size", np.int64, -1),
    ("mean_correlation", np.float64, np.nan),
    ("held_out_correlation", np.float64, np.nan),
    ("p_value", np.float64, np.nan),
    ("bias_in", np.float64, np.nan),
    ("bias_out", np.float64, np.nan),
    ("flagged", bool, False),
    ("ipr", np.float64, np.nan),
    ("purity", np.float64, np.nan),
    ("component", np.int64, -1),
    ("strength", np.float64, np.nan),
)
#: Scalar attributes of the audit stored as dataset attributes, with their Python type.
_AUDIT_SCALARS: tuple[tuple[str, type], ...] = (
    ("mp_edge", float),
    ("mp_lower", float),
    ("tw_edge", float),
    ("null_edge", float),
    ("n_significant", int),
    ("detectability", float),
    ("n_discovery", int),
    ("n_test", int),
    ("null_group_size", int),
    ("spectrum_method", str),
)


class ResidualAudit(Result):
    """Result of :func:`~riskmodel.audit.residuals.audit_residuals`.

    Attributes
    ----------
    eigenvalues : DataArray (component,)
        Leading eigenvalues of the residual correlation ``C = Z'Z/T`` over the window.
    eigenvectors : DataArray (stock, component)
        Their unit eigenvectors (loadings) on the audited stocks.
    ipr : DataArray (component,)
        Inverse participation ratio of each eigenvector.
    mp_edge, mp_lower : float
        Marchenko-Pastur upper edge ``(1 + sqrt(N/T))**2`` and lower edge.
    tw_edge : float
        Tracy-Widom 99% edge (Johnstone), for reference.
    null_edge : float
        ``null_quantile`` of the surrogate ``lambda_max``: the significance threshold.
    null_lambda_max : ndarray (n_null,)
        Top eigenvalue of each surrogate.
    null_group_size : int
        Columns that shared one surrogate transform.
    n_significant : int
        Number of eigenvalues above ``null_edge``.
    detectability : float
        BBP bound ``1 + sqrt(N/T)``: a group of ``k`` names with mean residual correlation
        ``rho`` is detectable only if ``1 + (k - 1) rho`` exceeds it.
    clusters : list of ResidualCluster
        Strongest first.
    excluded : dict of str to str
        Stocks left out of the audit and why (no data in the window, low coverage,
        constant residual).
    stocks : list of str
        The audited stocks, in id order.
    dates : ndarray
        The window's dates (``n_discovery`` discovery dates, then ``n_test`` held out).
    standardised : bool
        True when the residuals were divided by predicted specific vols (else by their
        realised sd, ex post).
    spectrum_method : str
        How the eigenpairs were computed: ``"gram"``, ``"gram-mixed"`` or ``"krylov"``
        (see note 3 of :func:`~riskmodel.audit.residuals.audit_residuals`).
    cluster_correlation : DataArray (stock, stock_)
        Raw residual correlation of (up to 400) cluster members, ordered by cluster, with
        their cluster in coordinate ``cluster`` (the heatmap's data).
    settings : dict
        The audit's settings.
    """

    kind = "residual_audit"

    def __init__(
        self,
        *,
        eigenvalues: xr.DataArray,
        eigenvectors: xr.DataArray,
        ipr: xr.DataArray,
        mp_edge: float,
        mp_lower: float,
        tw_edge: float,
        null_edge: float,
        null_lambda_max: np.ndarray,
        null_group_size: int,
        n_significant: int,
        detectability: float,
        clusters: list[ResidualCluster],
        excluded: dict[str, str],
        stocks: list[str],
        dates: np.ndarray,
        n_discovery: int,
        n_test: int,
        standardised: bool,
        spectrum_method: str,
        cluster_correlation: xr.DataArray,
        settings: dict[str, Any],
    ) -> None:
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors
        self.ipr = ipr
        self.mp_edge = mp_edge
        self.mp_lower = mp_lower
        self.tw_edge = tw_edge
        self.null_edge = null_edge
        self.null_lambda_max = null_lambda_max
        self.null_group_size = null_group_size
        self.n_significant = n_significant
        self.detectability = detectability
        self.clusters = clusters
        self.excluded = excluded
        self.stocks = stocks
        self.dates = dates
        self.n_discovery = n_discovery
        self.n_test = n_test
        self.standardised = standardised
        self.spectrum_method = spectrum_method
        self.cluster_correlation = cluster_correlation
        self.settings = settings

    # ------------------------------------------------------------------ sizes
    @property
    def n_dates(self) -> int:
        """Number of dates in the audit window."""
        return int(len(self.dates))

    @property
    def n_stocks(self) -> int:
        """Number of audited stocks."""
        return len(self.stocks)

    @property
    def n_excluded(self) -> int:
        """Number of stocks left out (see :attr:`excluded`)."""
        return len(self.excluded)

    @property
    def flagged(self) -> list[ResidualCluster]:
        """Clusters whose held-out bias exceeds ``1 + 2 sqrt(2/T_test)``."""
        return [c for c in self.clusters if c.flagged]

    # ------------------------------------------------------------------ text
    def headline(self) -> str:
        """One line: size, significant eigenvalues against the edges, clusters found and flagged."""
        return (
            f"Residual audit: {self.n_stocks} stocks x {self.n_dates} dates "
            f"({self.n_excluded} excluded); {self.n_significant} eigenvalue(s) above the null edge "
            f"{self.null_edge:.3f} (MP {self.mp_edge:.3f}); {len(self.clusters)} cluster(s), "
            f"{len(self.flagged)} flagged"
        )

    def summary(self) -> str:
        """A readable multi-line table of the spectrum and the clusters."""
        d0, d1 = (pd.Timestamp(self.dates[0]).date(), pd.Timestamp(self.dates[-1]).date())
        band = 1.0 + 2.0 * math.sqrt(2.0 / self.n_test)
        s = self.settings
        lines = [
            self.headline(),
            "=" * 78,
            f"window            {d0} .. {d1}  ({self.n_dates} dates: {self.n_discovery} discovery"
            f" + {self.n_test} held out)",
            f"stocks            {self.n_stocks} audited, {self.n_excluded} excluded"
            + (f" ({_excluded_counts(self.excluded)})" if self.excluded else ""),
            f"standardised by   {'predicted specific vol (t-1)' if self.standardised else 'realised sd (ex post)'}"
            f", clipped at +-{s['clip']}",
            f"MP edge           {self.mp_edge:.4f}   (Tracy-Widom 99%: {self.tw_edge:.4f})",
            f"null edge         {self.null_edge:.4f}   ({s['null']} null, {s['n_null']} surrogates,"
            f" q={s['null_quantile']}, column groups of {self.null_group_size})",
            f"detectability     {self.detectability:.4f}   (BBP 1 + sqrt(N/T))",
            f"significant       {self.n_significant}"
            + (f"  (= max_components {len(self.eigenvalues)}: there may be more; raise it with "
               "audit_residuals(..., max_components=K) or riskmodel audit --components K)"
               if self.n_significant == len(self.eigenvalues) else ""),
            "eigenvalues       " + " ".join(f"{v:.3f}" for v in self.eigenvalues.values[:8]),
            "",
            f"clusters (cut rho >= {s['cluster_cut']}, size >= {s['min_cluster_size']});"
            f" flagged if held-out bias > {band:.3f}"
            + (f"; label 'mixed' below purity {s.get('min_purity', MIN_PURITY)}"
               if any(c.dominant_label is not None for c in self.clusters) else ""),
        ]
        lines += _cluster_lines(self.clusters)
        return "\n".join(lines)

    # ------------------------------------------------------------------ data
    def to_dataset(self) -> xr.Dataset:
        """Everything as one :class:`xarray.Dataset` (no Python objects; netCDF-safe).

        Dims: ``component``, ``stock`` (audited), ``date`` (window), ``cluster``,
        ``surrogate``, ``random`` and ``member`` / ``member_`` (the heatmap's stocks).
        ``excluded`` and ``settings`` are JSON text attributes; ``attrs["riskmodel_kind"]``
        is ``"residual_audit"``. :meth:`from_dataset` is its inverse.
        """
        n_c = len(self.clusters)
        stocks = np.asarray(self.stocks, dtype=str)
        dates = np.asarray(self.dates)
        member = np.full(stocks.size, -1, dtype=np.int64)
        pos = {s: i for i, s in enumerate(stocks)}
        for j, c in enumerate(self.clusters):
            member[[pos[s] for s in c.stocks]] = j
        n_r = max((c.random_bias.size for c in self.clusters), default=0)
        rand = np.full((n_c, n_r), np.nan)
        for j, c in enumerate(self.clusters):
            rand[j, : c.random_bias.size] = c.random_bias

        def per_date(attr: str) -> np.ndarray:
            if not n_c:
                return np.empty((dates.size, 0))
            return np.stack([getattr(c, attr).values for c in self.clusters], axis=1)

        variables: dict[str, Any] = {
            "eigenvalue": self.eigenvalues,
            "ipr": self.ipr,
            "loading": self.eigenvectors,
            "null_lambda_max": ("surrogate", np.asarray(self.null_lambda_max)),
            "cluster_of_stock": ("stock", member),
            "cluster_returns": (("date", "cluster"), per_date("returns")),
            "cluster_portfolio": (("date", "cluster"), per_date("portfolio")),
            "cluster_dominant_label": (
                "cluster", np.array([c.dominant_label or "" for c in self.clusters], dtype=str)
            ),
            "cluster_n_random": ("cluster", np.array([c.random_bias.size for c in self.clusters], dtype=np.int64)),
            "random_bias": (("cluster", "random"), rand),
        }
        for attr, dtype, fill in _CLUSTER_SCALARS:
            variables[f"cluster_{attr}"] = (
                "cluster",
                np.array([fill if getattr(c, attr) is None else getattr(c, attr) for c in self.clusters], dtype=dtype),
            )
        cc = self.cluster_correlation
        variables["cluster_correlation"] = (("member", "member_"), np.asarray(cc.values))
        attrs: dict[str, Any] = {name: getattr(self, name) for name, _ in _AUDIT_SCALARS}
        attrs.update(
            riskmodel_kind=self.kind,
            standardised=int(self.standardised),
            excluded=json.dumps(self.excluded),
            settings=json.dumps(self.settings),
        )
        return xr.Dataset(
            variables,
            coords={
                "stock": stocks,
                "date": dates,
                "cluster": np.arange(n_c),
                "member": np.asarray(cc["stock"].values, dtype=str),
                "member_cluster": ("member", np.asarray(cc["cluster"].values, dtype=np.int64)),
            },
            attrs=attrs,
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "ResidualAudit":
        """Rebuild the audit from :meth:`to_dataset`'s output (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "ResidualAudit")
        dates = np.asarray(ds["date"].values)
        stocks = np.asarray(ds["stock"].values).astype(str)
        component = np.asarray(ds["component"].values)
        comp = {"component": component}
        attrs = ds.attrs
        scalars = {name: kind(attrs[name]) for name, kind in _AUDIT_SCALARS}
        members = np.asarray(ds["member"].values).astype(str)
        return cls(
            eigenvalues=xr.DataArray(ds["eigenvalue"].values, dims=("component",), coords=comp, name="eigenvalue"),
            eigenvectors=xr.DataArray(
                ds["loading"].transpose("stock", "component").values, dims=("stock", "component"),
                coords={"stock": stocks, "component": component}, name="loading",
            ),
            ipr=xr.DataArray(ds["ipr"].values, dims=("component",), coords=comp, name="ipr"),
            null_lambda_max=np.asarray(ds["null_lambda_max"].values, dtype=np.float64),
            clusters=_clusters_from_dataset(ds, stocks, dates),
            excluded=_json_attr(attrs["excluded"]),
            stocks=list(stocks),
            dates=dates,
            standardised=bool(attrs["standardised"]),
            cluster_correlation=xr.DataArray(
                np.asarray(ds["cluster_correlation"].values, dtype=np.float64), dims=("stock", "stock_"),
                coords={"stock": members, "stock_": members,
                        "cluster": ("stock", np.asarray(ds["member_cluster"].values))},
                name="residual_correlation",
            ),
            settings=_json_attr(attrs["settings"]),
            **scalars,
        )

    # ------------------------------------------------------------------ pictures
    def plot(self, kind: str = "spectrum") -> Figure:
        """One figure: ``"spectrum"``, ``"clusters"`` (heatmap), ``"bias"`` or ``"bias_time"``.

        Returns a :class:`matplotlib.figure.Figure` drawn with the Agg canvas (no pyplot,
        no display needed).
        """
        from riskmodel.report import audit_figures as plots_audit

        return plots_audit.plot_audit(self, kind)

    def figures(self, directory: str | Path) -> dict[str, Path]:
        """Write every figure as ``audit_<kind>.png`` into ``directory``; returns the paths."""
        from riskmodel.report import audit_figures as plots_audit

        return plots_audit.save_figures(self, directory)

    def to_html(self, path: str | Path, *, title: str = "Residual audit") -> Path:
        """Write a self-contained HTML report (PNG figures embedded, summary, settings).

        The file is written aside and renamed (atomic).
        """
        from riskmodel.report import html as report

        return report.write_audit_report(self, path, title=title)


def _json_attr(value: Any) -> Any:
    """An attribute written as JSON text by :meth:`ResidualAudit.to_dataset` (``rm.load``
    may have decoded it already)."""
    return json.loads(value) if isinstance(value, str) else value


def _clusters_from_dataset(ds: xr.Dataset, stocks: np.ndarray, dates: np.ndarray) -> list[ResidualCluster]:
    """The :class:`ResidualCluster` list stored by :meth:`ResidualAudit.to_dataset`."""
    member = np.asarray(ds["cluster_of_stock"].values)
    coord = {"date": dates}
    returns = np.asarray(ds["cluster_returns"].transpose("date", "cluster").values)
    portfolio = np.asarray(ds["cluster_portfolio"].transpose("date", "cluster").values)
    labels = np.asarray(ds["cluster_dominant_label"].values).astype(str)
    rand = np.asarray(ds["random_bias"].transpose("cluster", "random").values)
    n_random = np.asarray(ds["cluster_n_random"].values)
    min_purity = float(_json_attr(ds.attrs["settings"]).get("min_purity", MIN_PURITY))
    clusters = []
    for j in range(ds.sizes["cluster"]):
        value = {attr: ds[f"cluster_{attr}"].values[j] for attr, _, _ in _CLUSTER_SCALARS}
        purity = float(value["purity"])
        clusters.append(ResidualCluster(
            stocks=[str(s) for s in stocks[member == j]],
            size=int(value["size"]),
            mean_correlation=float(value["mean_correlation"]),
            held_out_correlation=float(value["held_out_correlation"]),
            p_value=float(value["p_value"]),
            returns=xr.DataArray(returns[:, j].copy(), dims=("date",), coords=coord, name="cluster_return"),
            portfolio=xr.DataArray(portfolio[:, j].copy(), dims=("date",), coords=coord, name="cluster_portfolio"),
            component=int(value["component"]),
            ipr=float(value["ipr"]),
            strength=float(value["strength"]),
            bias_in=float(value["bias_in"]),
            bias_out=float(value["bias_out"]),
            flagged=bool(value["flagged"]),
            random_bias=rand[j, : int(n_random[j])].copy(),
            purity=None if math.isnan(purity) else purity,
            dominant_label=str(labels[j]) or None,
            label=cluster_label(str(labels[j]) or None, None if math.isnan(purity) else purity, min_purity),
        ))
    return clusters


def _cluster_lines(clusters: list[ResidualCluster]) -> list[str]:
    """The summary's cluster table: one line per cluster, strongest first."""
    if not clusters:
        return ["  none"]
    lines = [
        f"  {'#':>2} {'size':>5} {'rho':>6} {'rho_out':>7} {'p':>8} {'b_in':>5} {'b_out':>5}"
        f" {'rand_med':>8} {'flag':>4} {'ipr':>6} {'purity':>6}  label / members"
    ]
    for i, c in enumerate(clusters):
        rmed = float(np.median(c.random_bias)) if c.random_bias.size else float("nan")
        lab = c.label if c.dominant_label is not None else ", ".join(c.stocks[:4])
        pur = f"{c.purity:6.2f}" if c.purity is not None else f"{'-':>6}"
        lines.append(
            f"  {i:>2} {c.size:>5} {c.mean_correlation:6.3f} {c.held_out_correlation:7.3f}"
            f" {c.p_value:8.2g} {c.bias_in:5.2f} {c.bias_out:5.2f} {rmed:8.2f}"
            f" {'yes' if c.flagged else 'no':>4} {c.ipr:6.3f} {pur}  {lab}"
        )
    return lines


def _excluded_counts(excluded: dict[str, str]) -> str:
    kinds: dict[str, int] = {}
    for why in excluded.values():
        key = "low coverage" if why.startswith("coverage") else why
        kinds[key] = kinds.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
