"""Construction backtest: portfolios rebuilt on a schedule from several covariance
estimators side by side, on the same dates and the same stocks.

:func:`construction_backtest` rebuilds, every ``rebalance`` trading days,

* ``gmv`` — the unconstrained global minimum-variance portfolio ``Σ⁻¹1 / 1ᵀΣ⁻¹1``;
* ``gmv_long_only`` — the fully invested long-only minimum-variance portfolio (cvxpy,
  factor form);
* ``alpha`` — ``w = Σ⁻¹α / αᵀΣ⁻¹α``, the minimum-variance portfolio with unit expected
  return for a random ``α ~ N(0, I)`` drawn afresh at each rebuild and shared by every
  estimator (Engle & Colacito's precision comparison: the lower its realised variance, the
  better ``Σ⁻¹`` ranks directions),

from each estimator — a fitted risk model (its forecast ``fit.covariance(date)``) or a
peer callable of :mod:`riskmodel.construction.estimators` (fed the trailing returns
window) — on the stocks all of them cover with a complete window of returns. The held
weights earn the next ``rebalance`` days' returns (a missing return counts as 0).

The :class:`ConstructionBacktest` result reports realised volatility (annualised),
predicted volatility and the bias statistic (sd of ``R / σ̂``), gross leverage, turnover
and seconds per rebalance.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._results import Result, check_kind
from riskmodel.errors import InsufficientDataError, InvalidParameterError, PanelError

__all__ = ["construction_backtest", "ConstructionBacktest", "PORTFOLIOS"]

KIND = "construction_backtest"
PORTFOLIOS = ("gmv", "gmv_long_only", "alpha")
ANNUAL = 252


def _is_model(obj: Any) -> bool:
    """A fitted risk model (``covariance(date)``), as opposed to a peer callable."""
    return callable(getattr(obj, "covariance", None)) and not callable(obj)


class _Rebuild:
    """One estimator's portfolios at one rebalancing date (weights and predicted vols)."""

    def __init__(self, obj: Any, date: pd.Timestamp, ids: np.ndarray, window: np.ndarray) -> None:
        self.model = _is_model(obj)
        if self.model:
            self.cov = obj.covariance(date).subset(ids)
        else:
            self.cov = np.asarray(obj(window), dtype=np.float64)

    def variance(self, w: np.ndarray) -> float:
        if self.model:
            return float(self.cov.variance(w))
        return float(w @ self.cov @ w)

    def solve(self, x: np.ndarray) -> np.ndarray:
        if self.model:
            return np.asarray(self.cov.solve(x), dtype=np.float64)
        return np.linalg.solve(self.cov, x)

    def long_only(self) -> np.ndarray:
        """Long-only minimum variance: the active set of Woodbury solves on the factor form
        (the same optimum as the cvxpy QP, which is the fallback)."""
        from riskmodel.construction.optimisation import active_set_long_only, factor_form, solve_factor_qp

        G, d = factor_form(self.cov)
        w = active_set_long_only(G, d)
        if w is None:
            w = np.maximum(solve_factor_qp(G, d, budget=1.0, lower=np.zeros(d.size)), 0.0)
        return w / w.sum()


def _universe(objs: Mapping[str, Any], date: pd.Timestamp, index: pd.Index, complete: np.ndarray) -> np.ndarray:
    keep = complete.copy()
    for obj in objs.values():
        if _is_model(obj):
            covered = np.zeros(len(index), dtype=bool)
            pos = index.get_indexer(np.asarray(obj.covariance(date).stocks).astype(str))
            covered[pos[pos >= 0]] = True
            keep &= covered
    return np.flatnonzero(keep)


def construction_backtest(
    returns: xr.DataArray,
    estimators: Mapping[str, Any],
    *,
    start: object | None = None,
    end: object | None = None,
    rebalance: int = 21,
    window: int = 252,
    portfolios: Sequence[str] = PORTFOLIOS,
    seed: int = 0,
) -> "ConstructionBacktest":
    """Rebuild minimum-variance and ``Σ⁻¹α`` portfolios from several estimators, side by side.

    Parameters
    ----------
    returns : DataArray (date, stock)
        Daily returns (NaN: no return), e.g. ``panel["returns"]``.
    estimators : dict name -> fitted model or callable
        A fitted risk model (``covariance(date)`` → StructuredCovariance, used at each
        rebalancing date over the common stocks) or a callable ``(T, N) returns →
        (N, N) covariance`` fed the trailing ``window`` days (see
        :func:`riskmodel.construction.estimators.default_estimators`).
    start, end : date-like, optional
        First and last rebalancing date (default: the first date with ``window`` days of
        history and a forecast from every model; the last date but one).
    rebalance : int
        Trading days between rebuilds (and the holding period).
    window : int
        Trailing days of complete returns a stock needs (and the peers are fed).
    portfolios : sequence of {"gmv", "gmv_long_only", "alpha"}
    seed : int
        Seed of the random ``α`` of the ``alpha`` portfolios.

    Returns
    -------
    ConstructionBacktest
    """
    if not estimators:
        raise InvalidParameterError("construction_backtest: pass at least one estimator")
    bad = [p for p in portfolios if p not in PORTFOLIOS]
    if bad or not portfolios:
        raise InvalidParameterError(f"construction_backtest: portfolios must be among {PORTFOLIOS}, got {list(portfolios)!r}")
    if int(rebalance) < 1 or int(window) < 2:
        raise InvalidParameterError(f"construction_backtest: rebalance >= 1 and window >= 2 needed, got {rebalance}, {window}")
    dates = pd.DatetimeIndex(returns["date"].to_numpy())
    stocks = np.asarray(returns["stock"].to_numpy()).astype(str)
    index = pd.Index(stocks)
    r = np.asarray(returns.transpose("date", "stock").to_numpy(), dtype=np.float64)
    first = window - 1
    if start is not None:
        first = max(first, int(dates.searchsorted(pd.Timestamp(start))))
    last = len(dates) - 2 if end is None else min(len(dates) - 2, int(dates.searchsorted(pd.Timestamp(end), side="right")) - 1)
    names = list(estimators)
    # the first rebuild needs a forecast from every model
    while first <= last:
        try:
            complete = np.isfinite(r[first - window + 1 : first + 1]).all(axis=0)
            if _universe(estimators, dates[first], index, complete).size >= 2:
                break
        except PanelError:  # no forecast yet on that date
            pass
        first += 1
    if first > last:
        raise InsufficientDataError("construction_backtest: no rebalancing date with a window of history and every model's forecast")
    rebuild_rows = np.arange(first, last + 1, rebalance)
    n_out = min(len(dates) - 1, rebuild_rows[-1] + rebalance) - first
    out_rows = np.arange(first + 1, first + 1 + n_out)
    shape = (out_rows.size, len(names), len(portfolios))
    realised, predicted = np.full(shape, np.nan), np.full(shape, np.nan)
    gross = np.full((rebuild_rows.size, len(names), len(portfolios)), np.nan)
    turnover = np.full_like(gross, np.nan)
    seconds = np.full((rebuild_rows.size, len(names)), np.nan)
    n_stocks = np.zeros(rebuild_rows.size, dtype=np.int64)
    previous: dict[tuple[int, int], pd.Series] = {}
    rng = np.random.default_rng(seed)
    for b, t in enumerate(rebuild_rows):
        complete = np.isfinite(r[t - window + 1 : t + 1]).all(axis=0)
        positions = _universe(estimators, dates[t], index, complete)
        n_stocks[b] = positions.size
        if positions.size < 2:
            continue
        ids = stocks[positions]
        hist = r[t - window + 1 : t + 1][:, positions]
        hold = np.arange(t + 1, min(t + 1 + rebalance, len(dates)))
        rows = hold - (first + 1)
        future = np.nan_to_num(r[np.ix_(hold, positions)])
        alpha = rng.standard_normal(positions.size)
        for e, name in enumerate(names):
            tic = time.perf_counter()
            rebuild = _Rebuild(estimators[name], dates[t], ids, hist)
            weights = {}
            for kind in portfolios:
                if kind == "gmv":
                    x = rebuild.solve(np.ones(positions.size))
                    weights[kind] = x / x.sum()
                elif kind == "alpha":
                    x = rebuild.solve(alpha)
                    weights[kind] = x / float(alpha @ x)
                else:
                    weights[kind] = rebuild.long_only()
            seconds[b, e] = time.perf_counter() - tic
            for p, kind in enumerate(portfolios):
                w = weights[kind]
                realised[rows, e, p] = future @ w
                predicted[rows, e, p] = np.sqrt(max(rebuild.variance(w), 0.0))
                gross[b, e, p] = float(np.abs(w).sum())
                now = pd.Series(w, index=ids)
                if (e, p) in previous:
                    before = previous[(e, p)]
                    both = now.index.union(before.index)
                    turnover[b, e, p] = float(np.abs(now.reindex(both, fill_value=0.0) - before.reindex(both, fill_value=0.0)).sum())
                previous[(e, p)] = now
    ds = xr.Dataset(
        {
            "realised": (("date", "estimator", "portfolio"), realised),
            "predicted": (("date", "estimator", "portfolio"), predicted),
            "gross": (("rebalance", "estimator", "portfolio"), gross),
            "turnover": (("rebalance", "estimator", "portfolio"), turnover),
            "seconds": (("rebalance", "estimator"), seconds),
            "n_stocks": (("rebalance",), n_stocks),
        },
        coords={
            "date": dates[out_rows].to_numpy(),
            "estimator": np.asarray(names, dtype=str),
            "portfolio": np.asarray(list(portfolios), dtype=str),
            "rebalance": dates[rebuild_rows].to_numpy(),
        },
        attrs={"rebalance_every": int(rebalance), "window": int(window), "seed": int(seed)},
    )
    return ConstructionBacktest(ds)


class ConstructionBacktest(Result):
    """Result of :func:`construction_backtest` (labelled arrays; see :meth:`table`).

    Attributes
    ----------
    dataset : xr.Dataset
        ``realised`` and ``predicted`` (date, estimator, portfolio): daily portfolio
        returns and the daily volatility forecast of the last rebuild; ``gross``,
        ``turnover`` (rebalance, estimator, portfolio); ``seconds`` (rebalance, estimator);
        ``n_stocks`` (rebalance,).
    """

    kind: ClassVar[str] = KIND

    def __init__(self, dataset: xr.Dataset) -> None:
        self.dataset = dataset

    @property
    def estimators(self) -> list[str]:
        return [str(e) for e in self.dataset["estimator"].to_numpy()]

    @property
    def portfolios(self) -> list[str]:
        return [str(p) for p in self.dataset["portfolio"].to_numpy()]

    def table(self, start: object | None = None, end: object | None = None) -> pd.DataFrame:
        """One row per (portfolio, estimator): realised and predicted annualised volatility,
        their ratio, the bias statistic (sd of ``R/σ̂``), mean gross leverage, mean turnover
        per rebalance, and mean seconds per rebalance (all portfolios of the estimator).

        ``start``, ``end`` restrict the outcome days (and rebuilds) to a sub-period.
        """
        ds = self.dataset.sel(date=slice(start, end), rebalance=slice(start, end))
        rows = []
        for p in self.portfolios:
            for e in self.estimators:
                real = ds["realised"].sel(estimator=e, portfolio=p).to_numpy()
                pred = ds["predicted"].sel(estimator=e, portfolio=p).to_numpy()
                ok = np.isfinite(real) & np.isfinite(pred) & (pred > 0)
                rows.append({
                    "portfolio": p,
                    "estimator": e,
                    "realised vol": float(np.std(real[ok], ddof=1) * np.sqrt(ANNUAL)) if ok.sum() > 1 else np.nan,
                    "predicted vol": float(np.sqrt(np.mean(pred[ok] ** 2)) * np.sqrt(ANNUAL)) if ok.any() else np.nan,
                    "bias": float(np.std(real[ok] / pred[ok], ddof=1)) if ok.sum() > 1 else np.nan,
                    "gross": float(np.nanmean(ds["gross"].sel(estimator=e, portfolio=p).to_numpy())),
                    "turnover": float(np.nanmean(ds["turnover"].sel(estimator=e, portfolio=p).to_numpy()))
                    if np.isfinite(ds["turnover"].sel(estimator=e, portfolio=p).to_numpy()).any() else np.nan,
                    "seconds": float(np.nanmean(ds["seconds"].sel(estimator=e).to_numpy())),
                })
        table = pd.DataFrame(rows).set_index(["portfolio", "estimator"])
        table.insert(2, "ratio", table["realised vol"] / table["predicted vol"])
        return table

    def plot(self, *, window: int = 252, path: str | None = None) -> Any:
        """Realised against predicted volatility, and the rolling realised volatility of the
        minimum-variance portfolios (:func:`riskmodel.report.construction_figures.plot_construction_backtest`)."""
        from riskmodel.report.construction_figures import plot_construction_backtest

        return plot_construction_backtest(self, window=window, path=path)

    def to_dataset(self) -> xr.Dataset:
        ds = self.dataset.copy()
        ds.attrs = {**ds.attrs, "riskmodel_kind": KIND}
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "ConstructionBacktest":
        check_kind(ds, KIND, "ConstructionBacktest")
        out = ds.copy()
        out.attrs = {k: v for k, v in ds.attrs.items() if k != "riskmodel_kind"}
        for name in ("estimator", "portfolio"):
            out = out.assign_coords({name: out[name].to_numpy().astype(str)})
        return cls(out)

    def summary(self) -> str:
        ds = self.dataset
        dates = pd.DatetimeIndex(ds["date"].to_numpy())
        head = (
            f"ConstructionBacktest: {len(self.estimators)} estimators x {len(self.portfolios)} portfolios, "
            f"{ds.sizes['rebalance']} rebuilds every {ds.attrs.get('rebalance_every')} days, "
            f"{dates[0].date()} .. {dates[-1].date()}, {int(np.median(ds['n_stocks'].to_numpy()))} stocks (median)"
        )
        table = self.table()[["realised vol", "predicted vol", "bias", "gross", "turnover", "seconds"]]
        with pd.option_context("display.width", 140, "display.float_format", "{:.3f}".format):
            return head + "\n" + table.to_string()
