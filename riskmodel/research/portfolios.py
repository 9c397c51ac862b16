"""Quantile (decile) long-short portfolios of a signal: the regression factor's coarser cousin.

Per date t, the stocks are sorted on the signal known at the close of ``t - lag`` into ``n``
quantiles; the portfolio held over day t is long the top quantile and short the bottom
one, equal-weighted, each leg summing to ±1. Everything is vectorised along the stock axis
(``argsort``, tie runs by ``np.maximum.accumulate``, per-quantile sums by ``np.bincount``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import as_date_stock, check_aligned, float_values
from riskmodel._results import Result, check_kind
from riskmodel.errors import InvalidParameterError

__all__ = ["quantile_portfolios", "QuantilePortfolios"]

TRADING_DAYS = 252


def _average_ranks(s: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (0-based, ties share the mean of their positions) along axis 1.

    Ineligible cells get NaN. Returns ranks (T, N) and the eligible count (T,).
    """
    T, N = s.shape
    key = np.where(eligible, s, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    srt = np.take_along_axis(key, order, axis=1)
    pos = np.broadcast_to(np.arange(N), (T, N))
    new_run = np.ones((T, N), dtype=bool)
    new_run[:, 1:] = srt[:, 1:] != srt[:, :-1]
    start = np.maximum.accumulate(np.where(new_run, pos, 0), axis=1)
    end_run = np.ones((T, N), dtype=bool)
    end_run[:, :-1] = new_run[:, 1:]
    # last position of each run: reverse running minimum of "end" positions
    end = np.where(end_run, pos, N)[:, ::-1]
    end = np.minimum.accumulate(end, axis=1)[:, ::-1]
    avg_sorted = 0.5 * (start + end)
    ranks = np.empty((T, N))
    np.put_along_axis(ranks, order, avg_sorted, axis=1)
    ranks[~eligible] = np.nan
    return ranks, eligible.sum(axis=1)


def _quantile_arrays(
    sig: np.ndarray, ret: np.ndarray, n: int, lag: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Core on ndarrays: weights (T, N), returns (T,), quantile returns (T, n), quantile (T, N),
    eligible counts (T,) and the status of each date (0 ok, 1 no signal yet, 2 too few, 3 ties)."""
    T, N = ret.shape
    lagged = np.full((T, N), np.nan)
    if lag < T:
        lagged[lag:] = sig[: T - lag]
    eligible = np.isfinite(lagged) & np.isfinite(ret)
    ranks, n_el = _average_ranks(lagged, eligible)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.floor(ranks * n / n_el[:, None])
    q = np.where(eligible, np.minimum(q, n - 1), -1).astype(np.int64)
    status = np.zeros(T, dtype=np.int8)
    status[:lag] = 1
    too_few = (n_el < 2 * n) & (status == 0)
    status[too_few] = 2
    idx = np.arange(T)[:, None] * n + np.where(q >= 0, q, 0)
    cnt = np.bincount(idx[eligible], minlength=T * n).reshape(T, n)
    tot = np.bincount(idx[eligible], weights=ret[eligible], minlength=T * n).reshape(T, n)
    degenerate = (status == 0) & ((cnt[:, 0] == 0) | (cnt[:, n - 1] == 0))
    status[degenerate] = 3
    good = status == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        qret = np.where(cnt > 0, tot / cnt, np.nan)
        top = q == n - 1
        bot = q == 0
        w = np.where(top, 1.0 / cnt[:, n - 1 : n], 0.0) - np.where(bot, 1.0 / cnt[:, 0:1], 0.0)
    w = np.where(good[:, None], w, np.nan)
    qret = np.where(good[:, None], qret, np.nan)
    q = np.where(good[:, None], q, -1)
    port = np.where(good, np.where(eligible, w * np.where(eligible, ret, 0.0), 0.0).sum(axis=1), np.nan)
    return w, port, qret, q, n_el, status


@dataclass(frozen=True, eq=False, repr=False)
class QuantilePortfolios(Result):
    """Top-minus-bottom quantile portfolios of a signal.

    Attributes
    ----------
    weights : DataArray (date, stock)
        Portfolio held over each day: ``+1/n_top`` on the top quantile, ``-1/n_bottom`` on
        the bottom one, 0 elsewhere; NaN on dates without a portfolio.
    returns : DataArray (date,)
        ``Σ_stock weights · returns`` (the long-short return of each day).
    quantile_returns : DataArray (date, quantile)
        Equal-weighted mean return of each quantile (1 = lowest signal).
    quantile : DataArray (date, stock) int
        Quantile (1..n) each stock belonged to, 0 where not eligible.
    n_stocks : DataArray (date,) int
        Stocks with both a lagged signal and a return.
    n : int
    lag : int
    n_skipped : int
        Dates (after the first ``lag``) without a portfolio: fewer than ``2 n`` eligible
        stocks, or an empty top/bottom quantile because of ties.
    """

    weights: xr.DataArray
    returns: xr.DataArray
    quantile_returns: xr.DataArray
    quantile: xr.DataArray
    n_stocks: xr.DataArray
    n: int
    lag: int
    n_skipped: int

    kind: ClassVar[str] = "quantile_portfolios"

    @cached_property
    def spread(self) -> xr.DataArray:
        """Top minus bottom quantile return (equals ``returns``), DataArray (date,)."""
        q = self.quantile_returns
        return q.isel(quantile=-1) - q.isel(quantile=0)

    def table(self) -> pd.DataFrame:
        """Annualised mean, volatility and Sharpe ratio of the long-short and of each quantile."""
        series = {"long-short": self.returns.values}
        for i, lab in enumerate(self.quantile_returns["quantile"].values):
            series[f"Q{int(lab)}"] = self.quantile_returns.values[:, i]
        rows = {}
        for key, v in series.items():
            v = v[np.isfinite(v)]
            mean = v.mean() * TRADING_DAYS if v.size else np.nan
            vol = v.std(ddof=1) * np.sqrt(TRADING_DAYS) if v.size > 1 else np.nan
            rows[key] = {"ann_mean": mean, "ann_vol": vol, "sharpe": mean / vol if vol and vol > 0 else np.nan,
                         "n_days": int(v.size)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def summary(self) -> str:
        """Size, dates with a portfolio, the long-short Sharpe ratio and the per-quantile :meth:`table`."""
        r = self.returns.values
        ok = np.isfinite(r)
        sharpe = (r[ok].mean() / r[ok].std(ddof=1) * np.sqrt(TRADING_DAYS)) if ok.sum() > 1 and r[ok].std() > 0 else np.nan
        head = (
            f"QuantilePortfolios(n={self.n}, lag={self.lag}, {self.returns.sizes['date']} dates, "
            f"{int(ok.sum())} with a portfolio, {self.n_skipped} skipped; long-short Sharpe {sharpe:.2f})"
        )
        return head + "\n" + self.table().to_string(float_format=lambda v: f"{v:.4g}")

    def to_dataset(self) -> xr.Dataset:
        """All arrays in one Dataset (``n``, ``lag``, ``n_skipped`` as attributes); the
        quantile of each stock is the variable ``stock_quantile`` (``quantile`` is the
        coordinate of ``quantile_returns``)."""
        return xr.Dataset(
            {
                "weights": self.weights,
                "returns": self.returns,
                "quantile_returns": self.quantile_returns,
                "stock_quantile": self.quantile,
                "n_stocks": self.n_stocks,
            },
            attrs={"riskmodel_kind": self.kind, "n": self.n, "lag": self.lag, "n_skipped": self.n_skipped},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "QuantilePortfolios":
        """Rebuild the portfolios from :meth:`to_dataset` (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "QuantilePortfolios")
        return cls(
            weights=ds["weights"],
            returns=ds["returns"],
            quantile_returns=ds["quantile_returns"],
            quantile=ds["stock_quantile"].rename("quantile"),
            n_stocks=ds["n_stocks"],
            n=int(ds.attrs["n"]),
            lag=int(ds.attrs["lag"]),
            n_skipped=int(ds.attrs["n_skipped"]),
        )


def quantile_portfolios(
    signal: xr.DataArray,
    returns: xr.DataArray,
    n: int = 10,
    *,
    lag: int = 1,
) -> QuantilePortfolios:
    """Long the top, short the bottom quantile of a signal, equal-weighted, every day.

    Parameters
    ----------
    signal : DataArray (date, stock)
        The characteristic, row t known at the close of day t; NaN = no signal.
    returns : DataArray (date, stock)
        Simple returns of each day; same dates and stocks as ``signal`` (exactly).
    n : int, default 10
        Number of quantiles (10 = deciles), >= 2.
    lag : int, default 1
        The portfolio held over day t is sorted on the signal of day ``t - lag`` (>= 1: no
        look-ahead).

    Returns
    -------
    QuantilePortfolios
        ``weights (date, stock)``, ``returns (date,)``, ``quantile_returns (date, quantile)``…

    Raises
    ------
    DimensionError, VariableTypeError, AlignmentError, InvalidParameterError

    Notes
    -----
    On day t the eligible stocks are those with a signal at ``t - lag`` and a return at t
    (a stock without a return that day is excluded, not given 0). With ``M`` eligible
    stocks and average ranks ``ρ`` (0..M-1, tied signals share the mean of their positions,
    so ties are deterministic and independent of the stock order), stock i is in quantile
    ``⌊ρ_i n / M⌋`` (0-based, capped at n-1). Weights are ``1/|top|`` on the top quantile and
    ``-1/|bottom|`` on the bottom one: each leg sums to ±1, the book is dollar neutral, and
    ``Σ w r`` is the mean top return minus the mean bottom return. Dates with ``M < 2n``, or
    whose top or bottom quantile is empty (massive ties, e.g. a signal with no spread), are
    NaN rows and counted in ``n_skipped``; the first ``lag`` dates are NaN (no signal yet).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> dates = np.array(["2024-01-02", "2024-01-03"], dtype="datetime64[ns]")
    >>> coords = {"date": dates, "stock": list("abcd")}
    >>> sig = xr.DataArray([[4.0, 3.0, 2.0, 1.0], [0, 0, 0, 0]], dims=("date", "stock"), coords=coords)
    >>> ret = xr.DataArray([[0.0, 0, 0, 0], [0.02, 0.01, -0.01, -0.03]], dims=("date", "stock"), coords=coords)
    >>> q = quantile_portfolios(sig, ret, n=2)
    >>> float(q.returns[1])  # (0.02 + 0.01) / 2 - (-0.01 - 0.03) / 2
    0.035
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise InvalidParameterError(f"quantile_portfolios: n={n!r} must be an integer >= 2.")
    if isinstance(lag, bool) or int(lag) != lag or lag < 1:
        raise InvalidParameterError(
            f"quantile_portfolios: lag={lag!r} must be an integer >= 1 (the portfolio held over day t "
            "may only use the signal known at the close of t - 1 or earlier)."
        )
    n, lag = int(n), int(lag)
    signal = as_date_stock(signal, "signal")
    returns = as_date_stock(returns, "returns")
    check_aligned(signal, returns, "signal", "returns", ("date", "stock"))
    sig = float_values(signal, "signal")
    ret = float_values(returns, "returns")
    w, port, qret, q, n_el, status = _quantile_arrays(sig, ret, n, lag)
    dates = returns["date"].values
    stocks = returns["stock"].values
    ds = {"date": dates, "stock": stocks}
    labels = np.arange(1, n + 1)
    return QuantilePortfolios(
        weights=xr.DataArray(w, dims=("date", "stock"), coords=ds, name="weights"),
        returns=xr.DataArray(port, dims=("date",), coords={"date": dates}, name="returns"),
        quantile_returns=xr.DataArray(qret, dims=("date", "quantile"), coords={"date": dates, "quantile": labels},
                                      name="quantile_returns"),
        quantile=xr.DataArray(q + 1, dims=("date", "stock"), coords=ds, name="quantile"),
        n_stocks=xr.DataArray(n_el, dims=("date",), coords={"date": dates}, name="n_stocks"),
        n=n,
        lag=lag,
        n_skipped=int((status >= 2).sum()),
    )
