"""Residual audit: missing factors as groups of co-moving residuals (METHODS §7).

Public: :func:`audit_residuals` returning a :class:`ResidualAudit` (with its
:class:`ResidualCluster` list; both live in :mod:`riskmodel.audit.residual_results` and
are re-exported here).  This module is the labelled edge: it validates and converts the
inputs (:mod:`riskmodel._labels`), runs the ndarray steps of
:mod:`riskmodel.audit._residual_core` (which call ``spectrum`` and ``clusters``) and puts
the labels back on the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel import _labels
from riskmodel._params import ParameterTable, check_parameters
from riskmodel.audit import _residual_core as core
from riskmodel.audit import clusters as cl
from riskmodel.audit import spectrum as sp
from riskmodel.audit._residual_core import MIN_PART_DATES, MIN_STOCKS
from riskmodel.audit.residual_results import ResidualAudit, ResidualCluster
from riskmodel.errors import (
    AlignmentError,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    InsufficientDataError,
    InvalidParameterError,
    VariableTypeError,
    warns_at_caller,
)

__all__ = ["ResidualAudit", "ResidualCluster", "audit_residuals"]

#: Default window (trading days) of the audit: the last two years.
DEFAULT_WINDOW = 504
#: Largest number of stocks shown in the cluster correlation heatmap.
HEATMAP_MAX = 400
_NULLS = ("shuffle", "shift", "sign")


# ============================================================================ settings
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer))


def _in_open(low: float, high: float, *, closed_high: bool = False) -> Any:
    """A validator: a number in ``(low, high)`` (or ``(low, high]``)."""

    def check(value: Any) -> bool:
        try:
            return bool(low < value <= high) if closed_high else bool(low < value < high)
        except TypeError:
            return False

    return check


def _date_or_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (bool, int, float, np.number)):
        return False
    try:
        return pd.Timestamp(value) is not pd.NaT
    except (TypeError, ValueError):
        return False


def _positive_or_none(value: Any) -> bool:
    try:
        return value is None or bool(value > 0)
    except TypeError:
        return False


#: The settings of :func:`audit_residuals`, declared once: ``{name: (check, expected)}``.
PARAMETERS: ParameterTable = {
    "window": (lambda v: v is None or (_is_int(v) and v >= 2 * MIN_PART_DATES),
               f"None or an int >= {2 * MIN_PART_DATES} (trading days)"),
    "coverage": (_in_open(0.0, 1.0, closed_high=True), "a number in (0, 1]"),
    "clip": (_positive_or_none, "None or a number > 0"),
    "null": (lambda v: v in _NULLS, f"one of {_NULLS}"),
    "n_null": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "null_quantile": (_in_open(0.0, 1.0), "a number in (0, 1)"),
    "max_components": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "cluster_cut": (_in_open(-1.0, 1.0), "a number in (-1, 1)"),
    "min_cluster_size": (lambda v: _is_int(v) and v >= 2, "an int >= 2"),
    "test_fraction": (_in_open(0.0, 1.0), "a number in (0, 1)"),
    "n_random": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "null_group_size": (lambda v: v is None or (_is_int(v) and v >= 1), "None or an int >= 1"),
    "min_purity": (lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and 0.0 <= v <= 1.0,
                   "a number in [0, 1]"),
    "start": (_date_or_none, "None or a date (e.g. '2020-01-31')"),
    "end": (_date_or_none, "None or a date (e.g. '2021-12-31')"),
}


# ============================================================================ the labelled edge
def _as_date_stock(x: Any, name: str) -> xr.DataArray:
    """A DataArray (date, stock) (or (stock,), except for the residuals) from a DataArray or
    a pandas DataFrame / Series, with unique str stock ids and strictly increasing dates.

    The type, dims and dtype checks are :func:`riskmodel._labels.as_date_stock`'s; the
    pandas input, the ``(stock,)`` form and the duplicate-id and date-order checks are the
    audit's own.
    """
    what = f"audit_residuals: {name}"
    if isinstance(x, pd.DataFrame):
        x = xr.DataArray(x.to_numpy(dtype=np.float64), dims=("date", "stock"), coords={"date": x.index.values, "stock": x.columns.astype(str).values})
    elif isinstance(x, pd.Series):
        x = xr.DataArray(x.to_numpy(dtype=np.float64), dims=("stock",), coords={"stock": x.index.astype(str).values})
    if not isinstance(x, xr.DataArray):
        raise VariableTypeError(
            f"{what} must be an xarray DataArray (date, stock) or a pandas DataFrame, got {type(x).__name__}"
        )
    if name != "residuals" and x.dims == ("stock",):
        if x.dtype.kind not in "fiub":
            raise VariableTypeError(f"{what}: dtype {x.dtype} is not numeric; convert it to float (NaN = missing).")
    else:
        x = _labels.as_date_stock(x, what)
    if "stock" not in x.coords:
        raise DimensionError(f"{what} has no 'stock' coordinate: label the stock ids")
    ids = _labels.str_ids(x["stock"].values)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DuplicateLabelError(f"{what} has duplicate stock ids {list(uniq[counts > 1][:5])}; make ids unique")
    if "date" in x.dims:
        if "date" not in x.coords:
            raise DimensionError(f"{what} has no 'date' coordinate")
        d = np.asarray(x["date"].values)
        if d.size > 1:
            back = np.flatnonzero(~(d[1:] > d[:-1]))
            if back.size:
                raise DateOrderError(
                    f"{what} dates are not strictly increasing at {_labels.fmt_date(d[back[0] + 1])} "
                    f"(after {_labels.fmt_date(d[back[0]])}); sort by date and drop duplicates"
                )
    return x.assign_coords(stock=ids)


def _inputs(fit_or_residuals: Any, specific_var: Any) -> tuple[xr.DataArray, xr.DataArray | None]:
    """The residuals (date, stock) and the specific variances aligned on them, or None."""
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


def _float_values(da: xr.DataArray, name: str) -> np.ndarray:
    """``da``'s values as float64; ±inf is a NonFiniteError naming the stock (and date)."""
    values = np.asarray(da.values, dtype=np.float64)
    _labels.reject_infinite(
        values, f"audit_residuals: {name}", [(dim, da[dim].values) for dim in da.dims],
        hint="use NaN for missing values",
    )
    return values


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


def date_position(dates: pd.DatetimeIndex, when: Any, side: str) -> int:
    """``dates.searchsorted(when, side)``, also for a date beyond pandas' nanosecond range
    (year 2999 is after every date, not an overflow)."""
    when = pd.Timestamp(when)
    if not dates.size or when > dates[-1]:
        return int(dates.size)
    if when < dates[0]:
        return 0
    return int(dates.searchsorted(when, side=side))


def _date_range(dates: np.ndarray, start: Any, end: Any) -> tuple[int, int]:
    """Positions ``lo, hi`` of the dates in ``[start, end]`` (``dates[lo:hi]``)."""
    if start is not None and end is not None and pd.Timestamp(start) > pd.Timestamp(end):
        raise InvalidParameterError(
            f"audit_residuals: start={_labels.fmt_date(start)} is after end={_labels.fmt_date(end)}")
    d = pd.DatetimeIndex(dates)
    lo = 0 if start is None else date_position(d, start, "left")
    hi = d.size if end is None else date_position(d, end, "right")
    if hi - lo < 2 * MIN_PART_DATES:
        span = f"{_labels.fmt_date(dates[0])} .. {_labels.fmt_date(dates[-1])}" if dates.size else "no dates"
        raise InsufficientDataError(
            f"audit_residuals: {max(hi - lo, 0)} date(s) of the residuals ({span}) lie in "
            f"start={_labels.fmt_date(start) if start is not None else 'None'} .. "
            f"end={_labels.fmt_date(end) if end is not None else 'None'}; the audit needs at least "
            f"{2 * MIN_PART_DATES}: widen the range")
    return lo, hi


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
    min_purity: float = cl.MIN_PURITY,
    start: Any = None,
    end: Any = None,
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
        Number of most recent dates audited (default: the last 504, or all if fewer;
        with ``start`` or ``end``: every date between them).
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
    min_purity : float
        A cluster is named after its most common label (``ResidualCluster.label``) only
        when at least this share of its members carry it; below, its label is
        ``"mixed"`` (default 0.5, a majority; 0 always names it). ``dominant_label`` and
        ``purity`` are kept either way.
    start, end : date-like, optional
        Audit only the dates from ``start`` to ``end`` (inclusive; e.g. ``"2021-01-01"``);
        ``window`` then counts back from ``end``. The forecast made the day before
        ``start`` still standardises ``start``'s residual.

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
        Fewer than 40 dates (20 to discover, 20 to test; in ``start .. end``) or fewer
        than 10 stocks pass the coverage rule.
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
    check_parameters(
        "audit_residuals", PARAMETERS,
        dict(window=window, coverage=coverage, clip=clip, null=null, n_null=n_null, null_quantile=null_quantile,
             max_components=max_components, cluster_cut=cluster_cut, min_cluster_size=min_cluster_size,
             test_fraction=test_fraction, n_random=n_random, null_group_size=null_group_size,
             min_purity=min_purity, start=start, end=end),
    )
    rng = np.random.default_rng(seed)
    res, sv = _inputs(fit_or_residuals, specific_var)
    u = _float_values(res, "residuals")
    all_dates = np.asarray(res["date"].values)
    all_stocks = np.asarray(res["stock"].values).astype(str)
    svv = None if sv is None else _float_values(sv, "specific_var")
    w = DEFAULT_WINDOW if window is None else int(window)
    if start is not None or end is not None:  # the dates in [start, end], and the forecast before start
        lo, hi = _date_range(all_dates, start, end)
        lagged = svv is not None and svv.ndim == 2
        first = lo - 1 if lagged and lo > 0 else lo  # a lagged forecast's row is invalid as a residual row
        u, all_dates = u[first:hi], all_dates[first:hi]
        svv = svv[first:hi] if lagged else svv
        w = hi - first if window is None else w

    # ---------------------------------------------------------------- window and Z (T, N)
    win = core.select_window(u, svv, w, coverage)
    rows, T = win.rows, win.rows.size
    core.check_window(T, all_dates.size, all_stocks.size)
    excluded = _excluded(all_stocks, win, coverage)
    cols = win.kept[rng.permutation(win.kept.size)]  # random column order
    Z, M, mu, scale, cols, dropped = core.standardise(u, svv, rows, cols, win.valid[:, cols], clip)
    del win
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
    label_of = None if labels is None else _label_values(labels, stock_ids, window_dates[-1])

    # ---------------------------------------------------------------- spectrum, null, clusters
    spec = core.spectrum_and_null(Z, max_components, n_null, null, null_quantile, null_group_size, rng)
    T_d, T_t = core.split_window(T, test_fraction)
    arrays = core.AuditArrays(u, rows, cols, Z, M, mu, scale, T_d, label_of, rng)
    clusters = [
        _labelled_cluster(arrays, members, comp, comp_ipr, n_random, stock_ids, window_dates, min_purity)
        for members, comp, comp_ipr in core.discover_groups(Z, T_d, spec, cluster_cut, min_cluster_size, rng)
    ]
    clusters.sort(key=lambda c: c.strength, reverse=True)

    # ---------------------------------------------------------------- labels back on
    settings = {
        "window": w, "coverage": coverage, "clip": clip, "null": null, "n_null": n_null,
        "null_quantile": null_quantile, "max_components": max_components, "cluster_cut": cluster_cut,
        "min_cluster_size": min_cluster_size, "test_fraction": test_fraction, "n_random": n_random,
        "seed": seed, "null_group_size": null_group_size, "min_purity": min_purity,
        "start": None if start is None else _labels.fmt_date(start),
        "end": None if end is None else _labels.fmt_date(end),
    }
    return _labelled_audit(
        spec, clusters, excluded, stock_ids, window_dates, T_d, T_t,
        cluster_correlation=_cluster_correlation(arrays, clusters, stock_ids),
        standardised=svv is not None, settings=settings,
    )


# ============================================================================ re-labelling
def _excluded(stocks: np.ndarray, win: core.Window, coverage: float) -> dict[str, str]:
    """The stocks the window leaves out, with the reason."""
    excluded: dict[str, str] = dict.fromkeys(stocks[win.empty].tolist(), "no data in the window")
    excluded.update(zip(stocks[win.thin].tolist(), np.char.mod(f"coverage %.2f < {coverage:.2f}", win.share[win.thin]).tolist()))
    return excluded


def _labelled_cluster(
    arrays: core.AuditArrays, members: np.ndarray, comp: int, comp_ipr: float, n_random: int,
    stock_ids: np.ndarray, dates: np.ndarray, min_purity: float = cl.MIN_PURITY,
) -> ResidualCluster:
    """A :class:`ResidualCluster` (members in id order) from one group of columns."""
    ids = stock_ids[members]
    order = np.argsort(ids, kind="stable")
    members, ids = members[order], ids[order]
    stats = core.cluster_statistics(arrays, members, n_random)
    k = members.size
    coord = {"date": dates}
    return ResidualCluster(
        stocks=[str(s) for s in ids],
        size=int(k),
        mean_correlation=stats.mean_correlation,
        held_out_correlation=stats.held_out_correlation,
        p_value=stats.p_value,
        returns=xr.DataArray(stats.returns, dims=("date",), coords=coord, name="cluster_return"),
        portfolio=xr.DataArray(stats.portfolio, dims=("date",), coords=coord, name="cluster_portfolio"),
        component=comp,
        ipr=comp_ipr,
        strength=1.0 + (k - 1) * stats.mean_correlation,
        bias_in=stats.bias_in,
        bias_out=stats.bias_out,
        flagged=stats.flagged,
        random_bias=stats.random_bias,
        purity=stats.purity,
        dominant_label=stats.dominant_label,
        label=cl.cluster_label(stats.dominant_label, stats.purity, min_purity),
    )


def _cluster_correlation(arrays: core.AuditArrays, clusters: list[ResidualCluster], stock_ids: np.ndarray) -> xr.DataArray:
    """Raw residual correlation of the cluster members, ordered by cluster (heatmap data)."""
    total = sum(c.size for c in clusters)
    pos = {s: i for i, s in enumerate(stock_ids)}
    ids: list[str] = []
    tag: list[int] = []
    for j, c in enumerate(clusters):
        take = c.size if total <= HEATMAP_MAX else max(1, int(round(HEATMAP_MAX * c.size / total)))
        ids += c.stocks[:take]
        tag += [j] * min(take, c.size)
    if not ids:
        none = np.array([], dtype=str)
        return xr.DataArray(
            np.empty((0, 0)), dims=("stock", "stock_"),
            coords={"stock": none, "stock_": none, "cluster": ("stock", np.array([], dtype=np.int64))},
            name="residual_correlation",
        )
    rho, _ = cl.pairwise_correlation(arrays.raw(np.array([pos[s] for s in ids])))
    return xr.DataArray(
        rho, dims=("stock", "stock_"),
        coords={"stock": ids, "stock_": ids, "cluster": ("stock", np.asarray(tag))},
        name="residual_correlation",
    )


def _labelled_audit(
    spec: core.Spectrum, clusters: list[ResidualCluster], excluded: dict[str, str], stock_ids: np.ndarray,
    dates: np.ndarray, T_d: int, T_t: int, *, cluster_correlation: xr.DataArray, standardised: bool,
    settings: dict[str, Any],
) -> ResidualAudit:
    """The :class:`ResidualAudit`: eigenvectors and stocks in id order, the edges of the spectrum."""
    N, T = stock_ids.size, dates.size
    order = np.argsort(stock_ids, kind="stable")  # report stocks in id order
    comp_coord = np.arange(spec.k_max)
    eig = spec.eig
    mp_lo, mp_hi = sp.marchenko_pastur_edges(N, T)
    return ResidualAudit(
        eigenvalues=xr.DataArray(eig.values, dims=("component",), coords={"component": comp_coord}, name="eigenvalue"),
        eigenvectors=xr.DataArray(
            eig.vectors[order], dims=("stock", "component"),
            coords={"stock": stock_ids[order], "component": comp_coord}, name="loading",
        ),
        ipr=xr.DataArray(cl.ipr(eig.vectors), dims=("component",), coords={"component": comp_coord}, name="ipr"),
        mp_edge=mp_hi,
        mp_lower=mp_lo,
        tw_edge=sp.tracy_widom_edge(N, T, 0.99),
        null_edge=spec.null_edge,
        null_lambda_max=spec.null_lambda_max,
        null_group_size=spec.null_group_size,
        n_significant=spec.n_significant,
        detectability=sp.bbp_bound(N, T),
        clusters=clusters,
        excluded=excluded,
        stocks=list(stock_ids[order]),
        dates=dates,
        n_discovery=T_d,
        n_test=T_t,
        standardised=standardised,
        spectrum_method=eig.method,
        cluster_correlation=cluster_correlation,
        settings=settings,
    )
