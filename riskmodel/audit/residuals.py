"""Residual audit: missing factors as groups of co-moving residuals (METHODS §7).

Public: :func:`audit_residuals` returning a :class:`ResidualAudit` (with its
:class:`ResidualCluster` list).  Labels live here; the numerics are ndarray functions in
``_spectrum`` (eigenvalues without the N x N matrix, the surrogate null) and
``_clusters`` (candidates, filtered correlation, linkage, bias statistics).
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
from scipy.stats import norm

from riskmodel.audit import clusters as cl
from riskmodel.audit import spectrum as sp
from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    InsufficientDataError,
    InvalidParameterError,
    NonFiniteError,
    VariableTypeError,
    warns_at_caller,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["ResidualAudit", "ResidualCluster", "audit_residuals"]

#: Default window (trading days) of the audit: the last two years.
DEFAULT_WINDOW = 504
#: Fewest dates in each of the discovery and the held-out parts.
MIN_PART_DATES = 20
#: Fewest audited stocks.
MIN_STOCKS = 10
#: Expected number of pure-noise stocks per component admitted as cluster candidates: the
#: loading threshold is ``max(3, Phi^-1(1 - CANDIDATE_FALSE / (2 N)))`` noise levels.
CANDIDATE_FALSE = 0.5
#: Largest number of stocks shown in the cluster correlation heatmap.
HEATMAP_MAX = 400
_NULLS = ("shuffle", "shift", "sign")


# ============================================================================ results
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
        (see Notes of :func:`audit_residuals`).
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

    def __repr__(self) -> str:
        head = ", ".join(self.stocks[:5]) + (", ..." if self.size > 5 else "")
        lab = f", {self.dominant_label!r} purity={self.purity:.2f}" if self.dominant_label is not None else ""
        return (
            f"ResidualCluster(size={self.size}, mean_correlation={self.mean_correlation:.3f}, "
            f"p_value={self.p_value:.2g}, bias_out={self.bias_out:.2f}"
            f"{' FLAGGED' if self.flagged else ''}{lab}, stocks=[{head}])"
        )


class ResidualAudit:
    """Result of :func:`audit_residuals`.

    Attributes
    ----------
    eigenvalues : DataArray (component,)
        Leading eigenvalues of the residual correlation ``C = Z'Z/T`` over the window.
    eigenvectors : DataArray (stock, component)
        Their unit eigenvectors (loadings) on the audited stocks.
    ipr : DataArray (component,)
        Inverse participation ratio of each eigenvector.
    mp_edge : float
        Marchenko-Pastur upper edge ``(1 + sqrt(N/T))**2``.
    tw_edge : float
        Tracy-Widom 99% edge (Johnstone), for reference.
    null_edge : float
        ``null_quantile`` of the surrogate ``lambda_max``: the significance threshold.
    null_lambda_max : ndarray (n_null,)
        Top eigenvalue of each surrogate.
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
    spectrum_method : str
        How the eigenpairs were computed: ``"gram"``, ``"gram-mixed"`` or ``"krylov"``
        (see note 3 of :func:`audit_residuals`).
    """

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    # ------------------------------------------------------------------ text
    def __repr__(self) -> str:
        return (
            f"<ResidualAudit: {self.n_stocks} stocks x {self.n_dates} dates "
            f"({self.n_excluded} excluded); {self.n_significant} eigenvalue(s) above the null edge "
            f"{self.null_edge:.3f} (MP {self.mp_edge:.3f}); {len(self.clusters)} cluster(s), "
            f"{sum(c.flagged for c in self.clusters)} flagged>"
        )

    @property
    def n_excluded(self) -> int:
        """Number of stocks left out (see :attr:`excluded`)."""
        return len(self.excluded)

    @property
    def flagged(self) -> list[ResidualCluster]:
        """Clusters whose held-out bias exceeds ``1 + 2 sqrt(2/T_test)``."""
        return [c for c in self.clusters if c.flagged]

    def summary(self) -> str:
        """A readable multi-line table of the spectrum and the clusters."""
        d0, d1 = (pd.Timestamp(self.dates[0]).date(), pd.Timestamp(self.dates[-1]).date())
        band = 1.0 + 2.0 * math.sqrt(2.0 / self.n_test)
        s = self.settings
        lines = [
            "Residual audit",
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
            + ("  (= max_components: there may be more)" if self.n_significant == len(self.eigenvalues) else ""),
            "eigenvalues       " + " ".join(f"{v:.3f}" for v in self.eigenvalues.values[:8]),
            "",
            f"clusters (cut rho >= {s['cluster_cut']}, size >= {s['min_cluster_size']});"
            f" flagged if held-out bias > {band:.3f}",
        ]
        if not self.clusters:
            lines.append("  none")
        else:
            hdr = (
                f"  {'#':>2} {'size':>5} {'rho':>6} {'rho_out':>7} {'p':>8} {'b_in':>5} {'b_out':>5}"
                f" {'rand_med':>8} {'flag':>4} {'ipr':>6} {'purity':>6}  label / members"
            )
            lines.append(hdr)
            for i, c in enumerate(self.clusters):
                rmed = float(np.median(c.random_bias)) if c.random_bias.size else float("nan")
                lab = c.dominant_label if c.dominant_label is not None else ", ".join(c.stocks[:4])
                pur = f"{c.purity:6.2f}" if c.purity is not None else f"{'-':>6}"
                lines.append(
                    f"  {i:>2} {c.size:>5} {c.mean_correlation:6.3f} {c.held_out_correlation:7.3f}"
                    f" {c.p_value:8.2g} {c.bias_in:5.2f} {c.bias_out:5.2f} {rmed:8.2f}"
                    f" {'yes' if c.flagged else 'no':>4} {c.ipr:6.3f} {pur}  {lab}"
                )
        return "\n".join(lines)

    # ------------------------------------------------------------------ data
    def to_dataset(self) -> xr.Dataset:
        """Everything as one :class:`xarray.Dataset` (no Python objects; netCDF-safe)."""
        n_c = len(self.clusters)
        stocks = np.asarray(self.stocks, dtype=str)
        member = np.full(stocks.size, -1, dtype=np.int64)
        pos = {s: i for i, s in enumerate(stocks)}
        for j, c in enumerate(self.clusters):
            member[[pos[s] for s in c.stocks]] = j
        n_r = max((c.random_bias.size for c in self.clusters), default=0)
        rand = np.full((n_c, n_r), np.nan)
        for j, c in enumerate(self.clusters):
            rand[j, : c.random_bias.size] = c.random_bias

        def per_cluster(attr: str, dtype: Any = np.float64, fill: Any = np.nan) -> np.ndarray:
            return np.array([fill if getattr(c, attr) is None else getattr(c, attr) for c in self.clusters], dtype=dtype)

        dates = np.asarray(self.dates)
        ds = xr.Dataset(
            {
                "eigenvalue": self.eigenvalues,
                "ipr": self.ipr,
                "loading": self.eigenvectors,
                "null_lambda_max": ("surrogate", np.asarray(self.null_lambda_max)),
                "cluster_of_stock": ("stock", member),
                "cluster_returns": (
                    ("date", "cluster"),
                    np.stack([c.returns.values for c in self.clusters], axis=1) if n_c else np.empty((dates.size, 0)),
                ),
                "cluster_portfolio": (
                    ("date", "cluster"),
                    np.stack([c.portfolio.values for c in self.clusters], axis=1) if n_c else np.empty((dates.size, 0)),
                ),
                "cluster_size": ("cluster", per_cluster("size", np.int64, -1)),
                "cluster_mean_correlation": ("cluster", per_cluster("mean_correlation")),
                "cluster_held_out_correlation": ("cluster", per_cluster("held_out_correlation")),
                "cluster_p_value": ("cluster", per_cluster("p_value")),
                "cluster_bias_in": ("cluster", per_cluster("bias_in")),
                "cluster_bias_out": ("cluster", per_cluster("bias_out")),
                "cluster_flagged": ("cluster", per_cluster("flagged", bool, False)),
                "cluster_ipr": ("cluster", per_cluster("ipr")),
                "cluster_purity": ("cluster", per_cluster("purity")),
                "cluster_dominant_label": ("cluster", np.array([c.dominant_label or "" for c in self.clusters], dtype=str)),
                "random_bias": (("cluster", "random"), rand),
            },
            coords={"stock": stocks, "date": dates, "cluster": np.arange(n_c)},
            attrs={
                "mp_edge": self.mp_edge,
                "tw_edge": self.tw_edge,
                "null_edge": self.null_edge,
                "n_significant": self.n_significant,
                "detectability": self.detectability,
                "n_discovery": self.n_discovery,
                "n_test": self.n_test,
                "null_group_size": self.null_group_size,
                "standardised": int(self.standardised),
                "excluded": json.dumps(self.excluded),
                "settings": json.dumps(self.settings),
            },
        )
        return ds

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


def _excluded_counts(excluded: dict[str, str]) -> str:
    kinds: dict[str, int] = {}
    for why in excluded.values():
        key = "low coverage" if why.startswith("coverage") else why
        kinds[key] = kinds.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


# ============================================================================ validation
def _check_params(**p: Any) -> None:
    def bad(name: str, rule: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"audit_residuals: {name}={p[name]!r} is out of range: {name} must be {rule}"
        )

    if p["window"] is not None and (not isinstance(p["window"], (int, np.integer)) or p["window"] < 2 * MIN_PART_DATES):
        raise bad("window", f"None or an int >= {2 * MIN_PART_DATES} (trading days)")
    if not 0.0 < p["coverage"] <= 1.0:
        raise bad("coverage", "in (0, 1]")
    if p["clip"] is not None and not p["clip"] > 0:
        raise bad("clip", "None or > 0")
    if p["null"] not in _NULLS:
        raise bad("null", f"one of {_NULLS}")
    if not isinstance(p["n_null"], (int, np.integer)) or p["n_null"] < 1:
        raise bad("n_null", "an int >= 1")
    if not 0.0 < p["null_quantile"] < 1.0:
        raise bad("null_quantile", "in (0, 1)")
    if not isinstance(p["max_components"], (int, np.integer)) or p["max_components"] < 1:
        raise bad("max_components", "an int >= 1")
    if not -1.0 < p["cluster_cut"] < 1.0:
        raise bad("cluster_cut", "in (-1, 1)")
    if not isinstance(p["min_cluster_size"], (int, np.integer)) or p["min_cluster_size"] < 2:
        raise bad("min_cluster_size", "an int >= 2")
    if not 0.0 < p["test_fraction"] < 1.0:
        raise bad("test_fraction", "in (0, 1)")
    if not isinstance(p["n_random"], (int, np.integer)) or p["n_random"] < 0:
        raise bad("n_random", "an int >= 0")
    g = p["null_group_size"]
    if g is not None and (not isinstance(g, (int, np.integer)) or g < 1):
        raise bad("null_group_size", "None or an int >= 1")


def _as_date_stock(x: Any, name: str) -> xr.DataArray:
    """A DataArray (date, stock) (or (stock,)) from a DataArray or a DataFrame/Series."""
    if isinstance(x, pd.DataFrame):
        x = xr.DataArray(x.to_numpy(dtype=np.float64), dims=("date", "stock"), coords={"date": x.index.values, "stock": x.columns.astype(str).values})
    elif isinstance(x, pd.Series):
        x = xr.DataArray(x.to_numpy(dtype=np.float64), dims=("stock",), coords={"stock": x.index.astype(str).values})
    if not isinstance(x, xr.DataArray):
        raise VariableTypeError(
            f"audit_residuals: {name} must be an xarray DataArray (date, stock) or a pandas DataFrame, "
            f"got {type(x).__name__}"
        )
    dims = set(x.dims)
    if dims not in ({"date", "stock"}, {"stock"}) or (name == "residuals" and dims != {"date", "stock"}):
        want = "(date, stock)" if name == "residuals" else "(date, stock) or (stock,)"
        raise DimensionError(f"audit_residuals: {name} has dims {tuple(x.dims)}; it must have dims {want}")
    if "stock" not in x.coords:
        raise DimensionError(f"audit_residuals: {name} has no 'stock' coordinate: label the stock ids")
    x = x.transpose(*(("date", "stock") if "date" in dims else ("stock",)))
    ids = np.asarray(x["stock"].values).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DuplicateLabelError(
            f"audit_residuals: {name} has duplicate stock ids {list(uniq[counts > 1][:5])}; make ids unique"
        )
    if "date" in dims:
        if "date" not in x.coords:
            raise DimensionError(f"audit_residuals: {name} has no 'date' coordinate")
        d = np.asarray(x["date"].values)
        if d.size > 1:
            back = np.flatnonzero(~(d[1:] > d[:-1]))
            if back.size:
                raise DateOrderError(
                    f"audit_residuals: {name} dates are not strictly increasing at {d[back[0] + 1]!s} "
                    f"(after {d[back[0]]!s}); sort by date and drop duplicates"
                )
    if not np.issubdtype(x.dtype, np.number):
        raise VariableTypeError(f"audit_residuals: {name} has dtype {x.dtype}; it must be numeric")
    return x.assign_coords(stock=ids)


def _first_nonfinite(values: np.ndarray, x: xr.DataArray, name: str) -> None:
    bad = np.isinf(values)
    if bad.any():
        t, n = np.argwhere(bad)[0] if values.ndim == 2 else (None, np.flatnonzero(bad)[0])
        where = f"stock {x['stock'].values[n]!s}" + (f" on {x['date'].values[t]!s}" if t is not None else "")
        raise NonFiniteError(
            f"audit_residuals: {name} holds {values[(t, n) if t is not None else n]} for {where}; "
            "use NaN for missing values"
        )


def _inputs(fit_or_residuals: Any, specific_var: Any) -> tuple[xr.DataArray, xr.DataArray | None]:
    if isinstance(fit_or_residuals, (xr.DataArray, pd.DataFrame)):
        res = fit_or_residuals
        sv = specific_var
    elif hasattr(fit_or_residuals, "residuals"):
        res = fit_or_residuals.residuals
        sv = specific_var if specific_var is not None else getattr(fit_or_residuals, "specific_var", None)
        if callable(sv) and not isinstance(sv, xr.DataArray):
            sv = sv()
    else:
        raise VariableTypeError(
            "audit_residuals: fit_or_residuals must be a DataArray (date, stock) of residuals or a fitted "
            f"model with .residuals and .specific_var, got {type(fit_or_residuals).__name__}"
        )
    res = _as_date_stock(res, "residuals")
    if sv is not None:
        sv = _as_date_stock(sv, "specific_var")
        missing = np.setdiff1d(res["stock"].values, sv["stock"].values)
        if missing.size:
            raise AlignmentError(
                f"audit_residuals: specific_var has no column for {missing.size} stock(s) of the residuals, "
                f"e.g. {list(missing[:10])}; pass specific_var for every stock (extra stocks are ignored)"
            )
        if "date" in sv.dims:
            mdates = np.setdiff1d(res["date"].values, sv["date"].values)
            if mdates.size:
                raise AlignmentError(
                    f"audit_residuals: specific_var has no row for {mdates.size} date(s) of the residuals, "
                    f"e.g. {[str(d) for d in mdates[:5]]}; its row t must be the forecast made at the close of t"
                )
            sv = sv.sel(date=res["date"].values, stock=res["stock"].values)
        else:
            sv = sv.sel(stock=res["stock"].values)
    return res, sv


def _label_values(labels: Any, stocks: np.ndarray, last_date: Any) -> np.ndarray:
    """One label (str or None) per audited stock; AlignmentError for stocks without a column."""
    if isinstance(labels, pd.Series):
        lab = xr.DataArray(labels.to_numpy(), dims=("stock",), coords={"stock": labels.index.astype(str).values})
    elif isinstance(labels, xr.DataArray):
        lab = labels
    else:
        raise VariableTypeError(
            f"audit_residuals: labels must be a DataArray (stock) / (date, stock) or a pandas Series, got {type(labels).__name__}"
        )
    if "stock" not in lab.dims or not set(lab.dims) <= {"date", "stock"}:
        raise DimensionError(f"audit_residuals: labels has dims {tuple(lab.dims)}; it must be (stock,) or (date, stock)")
    ids = np.asarray(lab["stock"].values).astype(str)
    missing = np.setdiff1d(stocks, ids)
    if missing.size:
        raise AlignmentError(
            f"audit_residuals: labels has no entry for {missing.size} audited stock(s), e.g. "
            f"{list(missing[:10])}; give a label for every stock of the residuals (extra ids are ignored)"
        )
    pos = pd.Index(ids).get_indexer(stocks)
    codes_to_text = lab.attrs.get("labels")
    if "date" in lab.dims:
        lab = lab.transpose("date", "stock")
        if last_date is not None and "date" in lab.coords:
            lab = lab.sel(date=lab["date"].values[lab["date"].values <= last_date])
        vals = np.asarray(lab.values)[:, pos]
    else:
        vals = np.asarray(lab.values)[pos][None, :]
    if np.issubdtype(vals.dtype, np.integer):
        present = vals >= 0
        if codes_to_text is not None:
            text = np.asarray(list(codes_to_text) + [""], dtype=object)
            vals = text[np.where(present, vals, len(text) - 1)]
        else:
            vals = vals.astype(str).astype(object)
    else:
        vals = vals.astype(object)
        present = pd.notna(vals) & (vals != "")
    if vals.shape[0] == 0:
        return np.full(stocks.size, None, dtype=object)
    # last present label per stock
    rev = present[::-1]
    last = vals.shape[0] - 1 - np.argmax(rev, axis=0)
    out = vals[last, np.arange(stocks.size)].astype(object)
    out[~present.any(axis=0)] = None
    return np.array([None if v is None else str(v) for v in out], dtype=object)


# ============================================================================ the audit
@warns_at_caller
def audit_residuals(
    fit_or_residuals: Any,
    labels: xr.DataArray | pd.Series | None = None,
    *,
    specific_var: xr.DataArray | None = None,
    window: int | None = None,
    coverage: float = 0.8,
    clip: float | None = 5.0,
    null: str = "shuffle",
    n_null: int = 30,
    null_quantile: float = 0.99,
    max_components: int = 20,
    cluster_cut: float = 0.1,
    min_cluster_size: int = 5,
    test_fraction: float = 0.5,
    n_random: int = 100,
    seed: int = 0,
    null_group_size: int | None = None,
) -> ResidualAudit:
    """Find groups of stocks whose residuals co-move: factors the model does not name.

    Parameters
    ----------
    fit_or_residuals : DataArray (date, stock) or fitted model
        Specific (residual) returns ``u``, or an object with ``.residuals`` DataArray
        (date, stock) and ``.specific_var`` DataArray (date, stock) (duck-typed, e.g.
        ``FittedFactorModel``).
    labels : DataArray (stock,) or (date, stock), or Series, optional
        Sector/industry labels (str, or int codes with ``attrs["labels"]``, ``-1`` =
        missing).  With a date axis the last label on or before the window's end is used.
        Every audited stock needs an entry (extra ids are ignored); a missing value is
        allowed and counts against purity.
    specific_var : DataArray (date, stock) or (stock,), optional
        Specific variance forecasts: row ``t`` is the forecast for day ``t + 1``, so
        ``u_t`` is divided by ``sqrt(specific_var[t - 1])``.  Overrides the fit's.  A
        ``(stock,)`` vector is one variance per stock.  Without it (and without a fit)
        each stock is scaled by its realised sd over the window (ex post).
    window : int, optional
        Number of most recent dates audited (default: the last 504, or all if fewer).
        Dates on which no stock has a standardised residual (e.g. the first date, which
        has no previous forecast) are skipped before counting.
    coverage : float
        Fewest share of the window's dates a stock needs (default 0.8).
    clip : float or None
        ``z`` is clipped to ``+-clip`` (default 5).
    null : {"shuffle", "shift", "sign"}
        Surrogates: columns shuffled in time, circularly shifted, or sign-flipped.
    n_null : int
        Number of surrogates.
    null_quantile : float
        Quantile of the surrogate ``lambda_max`` used as the significance threshold.
    max_components : int
        Number of leading eigenvalues computed.
    cluster_cut : float
        Average-linkage cut, as a correlation (default 0.1).
    min_cluster_size : int
        Smallest cluster reported.
    test_fraction : float
        Share of the window held out: clusters are discovered on the first
        ``1 - test_fraction`` and their bias and p-value are measured on the rest.
    n_random : int
        Random equal-weight portfolios (of each cluster's size) for comparison.
    seed : int
        Seed of every random draw (surrogates, start vectors, random portfolios).
    null_group_size : int, optional
        Columns that share one surrogate transform (see Notes); default automatic, 1 is
        the textbook per-column surrogate.

    Returns
    -------
    ResidualAudit

    Raises
    ------
    DimensionError, VariableTypeError, DuplicateLabelError, DateOrderError, NonFiniteError
        Malformed inputs.
    AlignmentError
        ``specific_var`` or ``labels`` does not cover the audited stocks (or dates).
    InsufficientDataError
        Fewer than 40 dates (20 to discover, 20 to test) or fewer than 10 stocks pass
        the coverage rule.
    InvalidParameterError
        A setting out of range.

    Notes
    -----
    1. ``z_nt = u_nt / sigma_n,t|t-1`` clipped at ``+-clip``; stocks with a valid ``z``
       on fewer than ``coverage`` of the window's dates are excluded and listed in
       ``.excluded`` with the reason (never dropped silently).
    2. Each column is standardised to mean 0 and sd 1 over its valid dates, missing
       entries are then set to 0 and the column is scaled by ``sqrt(T / T_n)`` so that
       ``C = Z'Z/T`` has a unit diagonal (the MP normalisation); a missing day then
       contributes nothing to any correlation.  The surrogates keep the same zeros.
    3. The leading eigenpairs of ``C`` come from the ``T x N`` matrix: the exact Gram
       matrix of the smaller side when ``min(T, N) <= 512``; up to 4,096 (and while it
       takes at most 0.3 of ``Z``'s memory) its float32 Gram matrix gives a start that a
       float64 block Krylov iteration refines
       (``spectrum_method="gram-mixed"``, float64 accuracy); beyond, a restarted block
       Krylov iteration. The ``N x N`` matrix is never formed. MP edge
       ``(1 + sqrt(N/T))**2``.
    4. Null: ``n_null`` surrogates whose columns are made independent in time; their top
       eigenvalues (lock-step Lanczos, float64 recurrences on float32 surrogate products:
       within 1e-4 Tracy-Widom units of float64 products) give ``null_edge``;
       ``n_significant`` counts the eigenvalues above it.  For speed the columns (in
       random order) are split into groups sharing one transform; columns of one group
       keep their mutual alignment, which can only raise the null edge (conservative) and
       only matters for groups of more than ~``G sqrt(N/T)/rho`` co-moving names (``G``
       groups).
    5. Clusters: on the discovery part, the ``n_significant`` leading components are
       re-estimated; stocks whose loading exceeds ``max(3, Phi^-1(1 - 0.25/N))`` times the
       eigenvector's noise level are candidates (about 0.5 noise stock per component); their filtered correlation ``sum lambda_k v_k v_k'`` (unit
       diagonal) is clustered by average linkage on ``sqrt(2 (1 - rho))`` cut at
       ``cluster_cut``; clusters of at least ``min_cluster_size`` names are kept.
    6. Cost out of sample: the equal-weight portfolio of ``z`` over a cluster's ``k``
       names has predicted sd ``1/sqrt(k)`` under the diagonal specific risk; its bias
       (realised/predicted) is ``~sqrt(1 + (k - 1) rho)``.  ``p_value``: the held-out
       mean pairwise correlation ``rbar`` of the members' ``z`` against independence,
       ``rbar sqrt(T k (k - 1)/2) ~ N(0, 1)`` (valid with fat tails).

    Examples
    --------
    >>> import numpy as np, xarray as xr, riskmodel as rm
    >>> rng = np.random.default_rng(0)
    >>> u = rng.standard_normal((300, 200)) * 0.02
    >>> u[:, :30] += 0.02 * 0.5 * rng.standard_normal((300, 1))   # a hidden group of 30
    >>> res = xr.DataArray(u, dims=("date", "stock"), coords={
    ...     "date": np.arange(300).astype("datetime64[D]"),
    ...     "stock": [f"S{i:03d}" for i in range(200)]})
    >>> audit = rm.audit_residuals(res, n_null=10)
    >>> audit.n_significant, len(audit.clusters), audit.clusters[0].size
    (1, 1, 30)
    """
    _check_params(
        window=window, coverage=coverage, clip=clip, null=null, n_null=n_null, null_quantile=null_quantile,
        max_components=max_components, cluster_cut=cluster_cut, min_cluster_size=min_cluster_size,
        test_fraction=test_fraction, n_random=n_random, null_group_size=null_group_size,
    )
    rng = np.random.default_rng(seed)
    res, sv = _inputs(fit_or_residuals, specific_var)
    u = np.asarray(res.values, dtype=np.float64)
    _first_nonfinite(u, res, "residuals")
    all_dates = np.asarray(res["date"].values)
    all_stocks = np.asarray(res["stock"].values).astype(str)
    svv = None
    if sv is not None:
        svv = np.asarray(sv.values, dtype=np.float64)
        _first_nonfinite(svv, sv, "specific_var")

    # ---------------------------------------------------------------- validity and window
    valid = np.isfinite(u)
    if svv is not None:
        if svv.ndim == 2:
            valid[0] = False
            valid[1:] &= np.isfinite(svv[:-1]) & (svv[:-1] > 0)
        else:
            valid &= (np.isfinite(svv) & (svv > 0))[None, :]
    nonempty = np.flatnonzero(valid.any(axis=1))
    w = DEFAULT_WINDOW if window is None else int(window)
    rows = nonempty[-w:]
    T = rows.size
    if T < 2 * MIN_PART_DATES:
        raise InsufficientDataError(
            f"audit_residuals: residuals have {T} date(s) with a standardised residual "
            f"(of {all_dates.size} dates, {all_stocks.size} stocks); the audit needs at least "
            f"{2 * MIN_PART_DATES} ({MIN_PART_DATES} to discover clusters, {MIN_PART_DATES} to test them): "
            "pass a longer history"
        )
    vw = valid[rows]
    n_valid = vw.sum(axis=0)
    share = n_valid / T
    empty = np.flatnonzero(n_valid == 0)
    thin = np.flatnonzero((n_valid > 0) & (share < coverage))
    excluded: dict[str, str] = dict.fromkeys(all_stocks[empty].tolist(), "no data in the window")
    excluded.update(zip(all_stocks[thin].tolist(), np.char.mod(f"coverage %.2f < {coverage:.2f}", share[thin]).tolist()))
    kept = np.flatnonzero(share >= coverage)
    del valid

    # ---------------------------------------------------------------- Z (T, N), random column order
    cols = kept[rng.permutation(kept.size)]
    mask = vw[:, cols]
    del vw
    Z, M, mu, scale, cols, dropped = _standardise(u, svv, rows, cols, mask, clip)
    del mask
    excluded.update(dict.fromkeys(all_stocks[dropped].tolist(), "constant residual in the window"))
    N = cols.size
    if N < max(MIN_STOCKS, min_cluster_size):
        raise InsufficientDataError(
            f"audit_residuals: only {N} stock(s) have a standardised residual on at least "
            f"{coverage:.0%} of the {T} dates of the window ({len(excluded)} excluded of {all_stocks.size}); "
            f"the audit needs at least {max(MIN_STOCKS, min_cluster_size)}: lower coverage or pass a longer window"
        )
    stock_ids = all_stocks[cols]
    window_dates = all_dates[rows]

    label_of = None
    if labels is not None:
        label_of = _label_values(labels, stock_ids, window_dates[-1])

    # ---------------------------------------------------------------- spectrum and null
    k_max = int(min(max_components, T, N))
    eig = sp.top_eigenpairs(Z, k_max, rng=rng)
    null_lam, group_used = sp.null_lambda_max(Z, n_null, null, rng, group_size=null_group_size)
    null_edge = float(np.quantile(null_lam, null_quantile))
    n_sig = int(np.sum(eig.values > null_edge))
    mp_lo, mp_hi = sp.marchenko_pastur_edges(N, T)

    # ---------------------------------------------------------------- clusters on the discovery part
    T_d = int(math.floor((1.0 - test_fraction) * T))
    T_t = T - T_d
    if min(T_d, T_t) < MIN_PART_DATES:
        raise InsufficientDataError(
            f"audit_residuals: test_fraction={test_fraction} splits the {T} dates into {T_d} + {T_t}; "
            f"each part needs at least {MIN_PART_DATES} dates: pass a longer window or another test_fraction"
        )
    ctx = _Context(u, rows, cols, Z, M, mu, scale, T_d, window_dates, stock_ids, label_of, rng)
    clusters: list[ResidualCluster] = []
    if n_sig > 0:
        # warm start from the whole window's leading vectors: the iteration still converges
        # to the discovery part's own eigenpairs (a start only changes the path)
        disc = sp.top_eigenpairs(Z[:T_d], n_sig, rng=rng, rtol=1e-9, guess=eig.vectors[:, : min(k_max, n_sig + 10)])
        threshold = max(3.0, float(norm.isf(CANDIDATE_FALSE / (2.0 * N))))
        cand = cl.candidate_stocks(disc.vectors, disc.values, T_d, threshold)
        groups = []
        if cand.size >= min_cluster_size:
            rho_s = cl.filtered_correlation(disc.vectors[cand], disc.values)
            groups = [cand[g] for g in cl.average_linkage(rho_s, cluster_cut, min_cluster_size)]
        disc_ipr = cl.ipr(disc.vectors)
        for g in groups:
            comp = int(np.argmax(np.sum(disc.vectors[g] ** 2, axis=0)))
            clusters.append(_describe_cluster(ctx, g, comp, float(disc_ipr[comp]), n_random))
        clusters.sort(key=lambda c: c.strength, reverse=True)

    order = np.argsort(stock_ids, kind="stable")  # report stocks in id order
    comp_coord = np.arange(k_max)
    audit = ResidualAudit(
        eigenvalues=xr.DataArray(eig.values, dims=("component",), coords={"component": comp_coord}, name="eigenvalue"),
        eigenvectors=xr.DataArray(
            eig.vectors[order], dims=("stock", "component"),
            coords={"stock": stock_ids[order], "component": comp_coord}, name="loading",
        ),
        ipr=xr.DataArray(cl.ipr(eig.vectors), dims=("component",), coords={"component": comp_coord}, name="ipr"),
        mp_edge=mp_hi,
        mp_lower=mp_lo,
        tw_edge=sp.tracy_widom_edge(N, T, 0.99),
        null_edge=null_edge,
        null_lambda_max=null_lam,
        null_group_size=group_used,
        n_significant=n_sig,
        detectability=sp.bbp_bound(N, T),
        clusters=clusters,
        excluded=excluded,
        stocks=list(stock_ids[order]),
        dates=window_dates,
        n_dates=T,
        n_stocks=N,
        n_discovery=T_d,
        n_test=T_t,
        standardised=svv is not None,
        spectrum_method=eig.method,
        cluster_correlation=_cluster_correlation(ctx, clusters),
        settings={
            "window": w, "coverage": coverage, "clip": clip, "null": null, "n_null": n_null,
            "null_quantile": null_quantile, "max_components": max_components, "cluster_cut": cluster_cut,
            "min_cluster_size": min_cluster_size, "test_fraction": test_fraction, "n_random": n_random,
            "seed": seed, "null_group_size": null_group_size,
        },
    )
    return audit


# ============================================================================ helpers
def _standardise(
    u: np.ndarray,
    svv: np.ndarray | None,
    rows: np.ndarray,
    cols: np.ndarray,
    mask: np.ndarray,
    clip: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build ``Z (T, N)`` (Fortran order, one float64 copy) from ``u`` in two kernel passes
    (:mod:`riskmodel.kernels.audit`): a gather by row blocks, then each column in cache.

    Returns ``Z, mask, mu, scale, cols, dropped`` with ``z = Z / scale + mu`` on the
    valid entries (the clipped standardised residual before column standardisation).
    """
    from riskmodel.kernels.audit import (
        SVV_LAGGED,
        SVV_NONE,
        SVV_STATIC,
        gather_standardised,
        standardise_columns,
    )

    T, N = rows.size, cols.size
    mask = np.ascontiguousarray(mask)
    kind = SVV_NONE if svv is None else (SVV_LAGGED if svv.ndim == 2 else SVV_STATIC)
    Z = np.empty((T, N), order="F")
    lagged = svv if kind == SVV_LAGGED else np.zeros((1, 1))
    static = svv if kind == SVV_STATIC else np.zeros(1)
    gather_standardised(u, lagged, static, kind, rows.astype(np.int64), cols.astype(np.int64), mask, Z)
    n = mask.sum(axis=0).astype(np.float64)
    mu = np.empty(N)
    sd = np.empty(N)
    flat = np.empty(N, dtype=bool)
    standardise_columns(Z, mask, n, svv is None, np.inf if clip is None else float(clip), mu, sd, flat)
    dropped = cols[flat]
    if flat.any():
        keep = ~flat
        Z, mask, mu, sd, n, cols = np.asfortranarray(Z[:, keep]), mask[:, keep], mu[keep], sd[keep], n[keep], cols[keep]
    scale = np.sqrt(T / n) / sd
    return Z, np.ascontiguousarray(mask), mu, scale, cols, dropped


@dataclass
class _Context:
    u: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    Z: np.ndarray
    M: np.ndarray
    mu: np.ndarray
    scale: np.ndarray
    T_d: int
    dates: np.ndarray
    stocks: np.ndarray
    labels: np.ndarray | None
    rng: np.random.Generator

    def z(self, members: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """Clipped standardised residuals ``z (r1 - r0, k)`` of the members, NaN = missing."""
        zz = self.Z[r0:r1, members] / self.scale[members] + self.mu[members]
        zz[~self.M[r0:r1, members]] = np.nan
        return zz

    def random_bias(self, k: int, n_random: int) -> np.ndarray:
        """Held-out bias of ``n_random`` equal-weight portfolios of ``k`` random audited names."""
        N, T = self.Z.shape[1], self.Z.shape[0]
        if n_random == 0:
            return np.empty(0)
        pick = np.stack([self.rng.choice(N, size=k, replace=False) for _ in range(n_random)])
        T_t = T - self.T_d
        # portfolios per block: gathered columns stay near 1/32 of the residual matrix
        per_block = max(1, min(n_random, (T * N // 32) // max(T_t * k, 1)))
        sums = np.empty((T_t, n_random))
        counts = np.empty_like(sums)
        for p0 in range(0, n_random, per_block):
            cols = pick[p0 : p0 + per_block]
            flat = cols.ravel()
            z = self.Z[self.T_d :, flat] / self.scale[flat] + self.mu[flat]
            m = self.M[self.T_d :, flat]
            z[~m] = 0.0
            sums[:, p0 : p0 + cols.shape[0]] = z.reshape(T_t, cols.shape[0], k).sum(axis=2)
            counts[:, p0 : p0 + cols.shape[0]] = m.reshape(T_t, cols.shape[0], k).sum(axis=2)
        return cl.portfolio_bias(sums, counts)[0]


def _bias_of(z: np.ndarray) -> tuple[float, np.ndarray]:
    ok = np.isfinite(z)
    sums = np.where(ok, z, 0.0).sum(axis=1, keepdims=True)
    counts = ok.sum(axis=1, keepdims=True).astype(np.float64)
    b = cl.portfolio_bias(sums, counts)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        series = np.where(counts[:, 0] > 0, sums[:, 0] / np.sqrt(counts[:, 0]), np.nan)
    return float(b[0]), series


def _describe_cluster(ctx: _Context, members: np.ndarray, comp: int, comp_ipr: float, n_random: int) -> ResidualCluster:
    T = ctx.Z.shape[0]
    k = members.size
    ids = ctx.stocks[members]
    order = np.argsort(ids, kind="stable")
    members, ids = members[order], ids[order]
    raw = ctx.u[np.ix_(ctx.rows, ctx.cols[members])]
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(raw).sum(axis=1)
        ret = np.where(cnt > 0, np.nansum(raw, axis=1) / np.maximum(cnt, 1), np.nan)
    rho_all, _ = cl.pairwise_correlation(raw)
    z_all = ctx.z(members, 0, T)
    b_in, _ = _bias_of(z_all[: ctx.T_d])
    b_out, _ = _bias_of(z_all[ctx.T_d :])
    _, series = _bias_of(z_all)
    rho_out, n_out = cl.pairwise_correlation(z_all[ctx.T_d :])
    off = ~np.eye(k, dtype=bool)
    rbar_out = cl.mean_offdiagonal(rho_out)
    p = cl.held_out_p_value(rbar_out, k, float(np.mean(n_out[off])))
    purity = dominant = None
    if ctx.labels is not None:
        labs = ctx.labels[members]
        present = np.array([v for v in labs if v is not None], dtype=object)
        if present.size:
            vals, counts = np.unique(present.astype(str), return_counts=True)
            dominant = str(vals[np.argmax(counts)])
            purity = float(counts.max() / k)
    mean_corr = cl.mean_offdiagonal(rho_all)
    band = 1.0 + 2.0 * math.sqrt(2.0 / (T - ctx.T_d))
    coord = {"date": ctx.dates}
    return ResidualCluster(
        stocks=[str(s) for s in ids],
        size=int(k),
        mean_correlation=mean_corr,
        held_out_correlation=rbar_out,
        p_value=p,
        returns=xr.DataArray(ret, dims=("date",), coords=coord, name="cluster_return"),
        portfolio=xr.DataArray(series, dims=("date",), coords=coord, name="cluster_portfolio"),
        component=comp,
        ipr=comp_ipr,
        strength=1.0 + (k - 1) * mean_corr,
        bias_in=b_in,
        bias_out=b_out,
        flagged=bool(b_out > band),
        random_bias=ctx.random_bias(k, n_random),
        purity=purity,
        dominant_label=dominant,
    )


def _cluster_correlation(ctx: _Context, clusters: list[ResidualCluster]) -> xr.DataArray:
    """Raw residual correlation of the cluster members, ordered by cluster (heatmap data)."""
    total = sum(c.size for c in clusters)
    pos = {s: i for i, s in enumerate(ctx.stocks)}
    ids: list[str] = []
    tag: list[int] = []
    for j, c in enumerate(clusters):
        take = c.size if total <= HEATMAP_MAX else max(1, int(round(HEATMAP_MAX * c.size / total)))
        ids += c.stocks[:take]
        tag += [j] * min(take, c.size)
    if not ids:
        return xr.DataArray(np.empty((0, 0)), dims=("stock", "stock_"), coords={"stock": [], "stock_": [], "cluster": ("stock", [])})
    members = np.array([pos[s] for s in ids])
    raw = ctx.u[np.ix_(ctx.rows, ctx.cols[members])]
    rho, _ = cl.pairwise_correlation(raw)
    return xr.DataArray(
        rho, dims=("stock", "stock_"),
        coords={"stock": ids, "stock_": ids, "cluster": ("stock", np.asarray(tag))},
        name="residual_correlation",
    )
