"""Forecast evaluation: bias statistics, rolling bias, MRAD and QLIKE (METHODS §6).

For a portfolio with return ``R_t`` and ex-ante volatility ``σ_{t|t−1}`` (the forecast made
at the close of the previous day), ``z_t = R_t / σ_{t|t−1}`` and the bias statistic is
``b = sd(z)``; a calibrated forecast gives ``b ≈ 1`` with 95% band ``1 ± √(2/T)``.
"""

from __future__ import annotations

import inspect
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._params import ParameterTable, check_parameters, jsonable_settings, pos_int, settings_from_json
from riskmodel._results import Result, check_kind
from riskmodel.errors import AlignmentError, InsufficientDataError, InvalidParameterError, warns_at_caller

__all__ = ["bias_statistics", "BiasStatistics", "FAMILIES"]

FAMILIES = ("pure_factors", "eigenfactors", "random", "optimised")

#: The checked settings of :func:`bias_statistics`: ``{name: (check, expected)}``.
PARAMETERS: ParameterTable = {
    "horizon": (pos_int, "an integer >= 1 (days per outcome)"),
    "window": (lambda v: pos_int(v) and v >= 2, "an integer >= 2 (outcomes per rolling window)"),
}


@dataclass(frozen=True, repr=False)
class BiasStatistics(Result):
    """Bias statistics of portfolio risk forecasts (a result of kind ``"bias_statistics"``).

    Attributes
    ----------
    z : DataArray (date, portfolio)
        Standardised outcomes ``R / σ_pred`` (per ``horizon``-day block when horizon > 1).
    predicted_vol : DataArray (date, portfolio)
        Ex-ante volatility used for each outcome.
    bias : DataArray (portfolio,)
        ``sd(z)`` over the evaluation period.
    band : tuple of float
        ``1 ± √(2/T)`` for the number of outcomes ``T``.
    rolling : DataArray (date, portfolio)
        Bias over trailing windows of ``window`` outcomes.
    mrad : float
        Mean over windows and portfolios of ``|b_τ − 1|``.
    qlike : DataArray (portfolio,)
        ``mean(z² − ln z² − 1)`` (1.2704 for a perfect Gaussian forecast).
    family : DataArray (portfolio,)
        The family each portfolio belongs to.
    settings : dict
        ``horizon``, ``window`` and ``seed`` of :func:`bias_statistics`.
    """

    kind = "bias_statistics"

    z: xr.DataArray
    predicted_vol: xr.DataArray
    bias: xr.DataArray
    band: tuple[float, float]
    rolling: xr.DataArray
    mrad: float
    qlike: xr.DataArray
    family: xr.DataArray
    settings: dict = field(default_factory=dict)

    @property
    def inside(self) -> xr.DataArray:
        """DataArray (portfolio,) bool: bias inside the band."""
        return (self.bias >= self.band[0]) & (self.bias <= self.band[1])

    def by_family(self) -> pd.DataFrame:
        """Per family: portfolios, mean and median bias, share inside the band, MRAD, QLIKE."""
        frame = pd.DataFrame(
            {
                "family": self.family.to_numpy(),
                "bias": self.bias.to_numpy(),
                "inside": self.inside.to_numpy(),
                "qlike": self.qlike.to_numpy(),
                "mrad": _nan_stat(np.nanmean, np.abs(self.rolling.to_numpy() - 1.0), axis=0),
            }
        )
        table = frame.groupby("family", sort=False).agg(
            n=("bias", "size"),
            mean_bias=("bias", "mean"),
            median_bias=("bias", "median"),
            share_inside=("inside", "mean"),
            mrad=("mrad", "mean"),
            qlike=("qlike", "mean"),
        )
        return table

    def summary(self) -> str:
        """The number of outcomes and portfolios, the band, MRAD and the table by family."""
        lo, hi = self.band
        inside = self.inside.to_numpy()
        return (
            f"bias statistics over {self.z.sizes['date']} outcomes of {self.z.sizes['portfolio']} portfolios "
            f"(band {lo:.3f}..{hi:.3f}, {int(inside.sum())} inside), {self._mrad_text()}\n"
            + self.by_family().to_string(float_format=lambda v: f"{v:.3f}")
        )

    def _mrad_text(self) -> str:
        """``MRAD 0.123``, or why there is none: the rolling bias needs half a window of outcomes."""
        if np.isfinite(self.mrad):
            return f"MRAD {self.mrad:.3f}"
        window = int(self.settings.get("window", 0) or 0)
        need = f"fewer than {max(2, window // 2)} outcomes for the {window}-outcome rolling bias" if window else \
            "too few outcomes for the rolling bias"
        return f"MRAD n/a: {need} ({self.z.sizes['date']} outcomes)"

    def to_dataset(self) -> xr.Dataset:
        """The statistics as one :class:`xarray.Dataset` (netCDF-safe; ``settings`` as JSON text).

        Variables ``z``, ``predicted_vol``, ``rolling`` (date, portfolio) and ``bias``,
        ``qlike``, ``family`` (portfolio); attributes ``band_low``, ``band_high``, ``mrad``.
        """
        return xr.Dataset(
            {
                "z": self.z,
                "predicted_vol": self.predicted_vol,
                "rolling": self.rolling,
                "bias": self.bias,
                "qlike": self.qlike,
                "family": self.family,
            },
            attrs={
                "riskmodel_kind": self.kind,
                "band_low": float(self.band[0]),
                "band_high": float(self.band[1]),
                "mrad": float(self.mrad),
                "settings": json.dumps(jsonable_settings(self.settings)),
            },
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "BiasStatistics":
        """Rebuild the statistics from :meth:`to_dataset`'s output (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "BiasStatistics")
        coords = {"date": ds["date"].values, "portfolio": np.asarray(ds["portfolio"].values).astype(str)}
        per_portfolio = {"portfolio": coords["portfolio"]}

        def table(name: str, new_name: str) -> xr.DataArray:
            values = ds[name].transpose("date", "portfolio").values
            return xr.DataArray(values, coords=coords, dims=("date", "portfolio"), name=new_name)

        settings = ds.attrs.get("settings", "{}")
        return cls(
            z=table("z", "z"),
            predicted_vol=table("predicted_vol", "predicted_vol"),
            bias=xr.DataArray(ds["bias"].values, coords=per_portfolio, dims="portfolio", name="bias"),
            band=(float(ds.attrs["band_low"]), float(ds.attrs["band_high"])),
            rolling=table("rolling", "rolling_bias"),
            mrad=float(ds.attrs["mrad"]),
            qlike=xr.DataArray(ds["qlike"].values, coords=per_portfolio, dims="portfolio", name="qlike"),
            family=xr.DataArray(np.asarray(ds["family"].values).astype(str), coords=per_portfolio, dims="portfolio"),
            settings=settings_from_json(json.loads(settings) if isinstance(settings, str) else dict(settings)),
        )

    def plot(self, ax: Any = None, *, path: str | None = None):
        """Rolling bias statistics of each family (median and 10–90% range) with the band."""
        from riskmodel.report.figures import plot_rolling_bias

        return plot_rolling_bias(self, ax=ax, path=path)


def _stock_weights(portfolios: Any, stocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, N) weights aligned on the model's stocks by id, and portfolio names."""
    if isinstance(portfolios, pd.Series):
        portfolios = portfolios.to_frame().T
    if isinstance(portfolios, pd.DataFrame):
        portfolios = xr.DataArray(
            portfolios.to_numpy(float),
            coords={"portfolio": portfolios.index.astype(str), "stock": portfolios.columns.astype(str)},
            dims=("portfolio", "stock"),
        )
    if not isinstance(portfolios, xr.DataArray) or "stock" not in portfolios.dims:
        raise InvalidParameterError(
            "portfolios must be a family name, a list of them, or weights as a DataArray "
            "(portfolio, stock) / DataFrame (portfolio x stock)"
        )
    if "portfolio" not in portfolios.dims:
        portfolios = portfolios.expand_dims(portfolio=[str(portfolios.name or "portfolio")])
    portfolios = portfolios.transpose("portfolio", "stock")
    ids = portfolios["stock"].to_numpy().astype(str)
    position = pd.Index(stocks).get_indexer(ids)
    unknown = ids[position < 0]
    if unknown.size:
        raise AlignmentError(
            f"portfolio weights on {unknown.size} stock(s) the model does not know: {list(unknown[:5])}"
        )
    values = portfolios.to_numpy().astype(float)
    if np.isnan(values).any():
        p, n = np.argwhere(np.isnan(values))[0]
        raise InvalidParameterError(f"portfolio {portfolios['portfolio'].values[p]!r} has a NaN weight on {ids[n]!r}")
    weights = np.zeros((values.shape[0], len(stocks)))
    weights[:, position] = values
    return weights, portfolios["portfolio"].to_numpy().astype(str)


#: What :func:`bias_statistics` reads of a fitted model.
_FITTED_ATTRIBUTES = ("dates", "factor_returns", "factor_cov", "specific_var", "covariance")


def _check_fitted(fit: Any) -> None:
    """Refuse anything but a fitted model, saying what was given.

    Raises
    ------
    InvalidParameterError
        Naming the type given (a panel Dataset, say) and what is expected.
    """
    absent = object()  # getattr_static: a property is looked up, not evaluated
    missing = [name for name in _FITTED_ATTRIBUTES if inspect.getattr_static(fit, name, absent) is absent]
    if not missing:
        return
    got = type(fit).__name__
    if isinstance(fit, xr.Dataset):
        kind = fit.attrs.get("riskmodel_kind")
        hint = (f"it is a stored {kind!r}: read it with rm.load(path)" if kind
                else "a panel? fit a model first: rm.bias_statistics(rm.FactorRiskModel().fit(panel))")
    else:
        hint = "fit a model first: rm.bias_statistics(rm.FactorRiskModel().fit(panel))"
    raise InvalidParameterError(
        f"bias_statistics: fit must be a fitted model (FittedFactorModel or another fitted model with "
        f"{', '.join(_FITTED_ATTRIBUTES)}), got a {got} without {', '.join(missing)}; {hint}"
    )


@warns_at_caller
def bias_statistics(
    fit: Any,
    portfolios: Any = FAMILIES,
    *,
    start: object | None = None,
    end: object | None = None,
    horizon: int = 1,
    window: int = 252,
    n_random: int = 100,
    n_optimised: int = 100,
    rebalance: int = 21,
    seed: int = 0,
) -> BiasStatistics:
    """Bias statistics of a fitted model's risk forecasts for families of portfolios.

    Parameters
    ----------
    fit : FittedFactorModel
        (or any fitted model with ``factor_returns``, ``returns``, ``factor_cov``,
        ``specific_var``, ``covariance(date)`` and ``portfolio_factor_exposures``).
    portfolios : str, list of str, DataArray (portfolio, stock) or DataFrame
        Families (``"pure_factors"``, ``"eigenfactors"``, ``"random"``, ``"optimised"``)
        and/or user portfolios with static weights, aligned by stock id (an unknown stock
        is an error).
    start, end : date-like, optional
        Evaluation period (outcome dates). Dates without a forecast the day before are skipped.
    horizon : int
        Outcome length in days: non-overlapping blocks of ``horizon`` daily returns, each
        against ``σ·√horizon`` forecast at the close before the block.
    window : int
        Outcomes per rolling window for the rolling bias and MRAD.
    n_random, n_optimised : int
        Sizes of the random (long-only, random weights on half the stocks, at most 500
        names) and optimised (``w ∝ Σ⁻¹α``, ``α ~ N(0, I)``, rebuilt every ``rebalance``
        days) families.
    seed : int

    Returns
    -------
    BiasStatistics

    Raises
    ------
    InvalidParameterError
        ``fit`` is not a fitted model (a panel Dataset, say), ``horizon`` or ``window``
        out of range, an unknown family, or no portfolio.
    InsufficientDataError
        Fewer than ``2 * horizon`` outcome dates in the period.
    AlignmentError
        User weights on a stock the model does not know.

    Notes
    -----
    A stock counts on outcome day ``t`` when it had a complete forecast at ``t − 1`` and
    a return at ``t``; other weights count as zero that day (not renormalised). Pure factor
    and eigenfactor outcomes are computed in factor space (``f_{k,t}/√F_{kk}`` and
    ``u_kᵀ f_t/√λ_k``); eigenfactors use the factors that have a forecast and a return on
    every outcome date (an industry too thin on some days is left out).
    """
    check_parameters("bias_statistics", PARAMETERS, {"horizon": horizon, "window": window})
    _check_fitted(fit)
    if isinstance(portfolios, str):
        portfolios = [portfolios]
    specs = [p for p in portfolios if isinstance(p, str)]
    user = [p for p in portfolios if not isinstance(p, str)]
    for name in specs:
        if name not in FAMILIES:
            raise InvalidParameterError(f"unknown portfolio family {name!r}; choose from {FAMILIES}")
    dates = pd.DatetimeIndex(fit.dates)
    factor_cov = fit.factor_cov.to_numpy()
    outcome_idx = _outcome_rows(dates, factor_cov, start, end, horizon)

    outcomes = _Outcomes()
    _factor_space_outcomes(outcomes, specs, fit, factor_cov, outcome_idx)
    _stock_space_outcomes(outcomes, specs, user, fit, factor_cov, outcome_idx,
                          np.random.default_rng(seed), n_random, n_optimised, rebalance)
    if not outcomes.returns:
        raise InvalidParameterError("no portfolios to evaluate")

    ret = np.concatenate(outcomes.returns, axis=1)
    var = np.concatenate(outcomes.variances, axis=1)
    out_dates = dates[outcome_idx]
    if horizon > 1:
        n_blocks = len(outcome_idx) // horizon
        ret = ret[: n_blocks * horizon].reshape(n_blocks, horizon, -1).sum(axis=1)
        var = var[: n_blocks * horizon : horizon] * horizon
        out_dates = out_dates[: n_blocks * horizon : horizon]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = ret / np.sqrt(var)
    return _summarise(z, np.sqrt(var), out_dates, outcomes.names, outcomes.families, window,
                      dict(horizon=horizon, window=window, seed=seed))


def _outcome_rows(dates: pd.DatetimeIndex, factor_cov: np.ndarray, start: Any, end: Any, horizon: int) -> np.ndarray:
    """Rows ``t`` in ``[start, end]`` with a forecast at ``t - 1`` (outcome day t uses row t-1)."""
    has_forecast = np.zeros(len(dates), dtype=bool)
    has_forecast[1:] = np.isfinite(np.diagonal(factor_cov[:-1], axis1=1, axis2=2)).any(axis=1)
    period = np.ones(len(dates), dtype=bool)
    if start is not None:
        period &= dates >= pd.Timestamp(start)
    if end is not None:
        period &= dates <= pd.Timestamp(end)
    outcome_idx = np.flatnonzero(has_forecast & period)
    if outcome_idx.size < 2 * horizon:
        raise InsufficientDataError(
            f"only {outcome_idx.size} outcome dates with a forecast the day before in the period; need more"
        )
    return outcome_idx


@dataclass
class _Outcomes:
    """Realised returns and predicted variances (outcome date, portfolio) of each family, in order."""

    returns: list[np.ndarray] = field(default_factory=list)
    variances: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def add(self, family: str, label: Iterable[str], ret: np.ndarray, var: np.ndarray) -> None:
        self.returns.append(ret)
        self.variances.append(var)
        labels = list(label)
        self.names.extend(labels)
        self.families.extend([family] * len(labels))


def _factor_space_outcomes(
    outcomes: _Outcomes, specs: list[str], fit: Any, factor_cov: np.ndarray, outcome_idx: np.ndarray
) -> None:
    """Pure factor and eigenfactor outcomes, computed in factor space."""
    f = fit.factor_returns.to_numpy()
    prev = outcome_idx - 1
    if "pure_factors" in specs:
        var = np.diagonal(factor_cov[prev], axis1=1, axis2=2)
        outcomes.add("pure_factors", fit.factors, f[outcome_idx], var)
    if "eigenfactors" in specs:
        # over the factors with a forecast and a return on every outcome date
        always = np.isfinite(np.diagonal(factor_cov[prev], axis1=1, axis2=2)).all(axis=0)
        always &= np.isfinite(f[outcome_idx]).all(axis=0)
        evals, evecs = np.linalg.eigh(factor_cov[prev][:, always][:, :, always])
        ret = np.einsum("tkj,tk->tj", evecs, f[outcome_idx][:, always])
        labels = [f"eigen{j:02d}" for j in range(evals.shape[1])]
        outcomes.add("eigenfactors", labels, ret, evals)


def _stock_space_outcomes(
    outcomes: _Outcomes, specs: list[str], user: list[Any], fit: Any, factor_cov: np.ndarray,
    outcome_idx: np.ndarray, rng: np.random.Generator, n_random: int, n_optimised: int, rebalance: int,
) -> None:
    """Random, user and optimised portfolios of stocks (in that order)."""
    stocks = np.asarray(fit.stocks).astype(str)
    returns = fit.returns.to_numpy()
    stock_portfolios: list[tuple[str, np.ndarray, list[str]]] = []
    if "random" in specs:
        stock_portfolios.append(("random", _random_portfolios(rng, returns, n_random), [f"random{j:03d}" for j in range(n_random)]))
    for item in user:
        weights, labels = _stock_weights(item, stocks)
        stock_portfolios.append(("user", weights, list(labels)))

    # stocks that count on outcome day t: forecast at t-1 and a return at t
    counted = np.zeros_like(returns, dtype=bool)
    counted[1:] = fit.forecast_mask()[:-1] & np.isfinite(returns[1:])
    ret_filled = np.nan_to_num(returns)
    spec_filled = np.nan_to_num(fit.specific_var.to_numpy())
    for family, weights, labels in stock_portfolios:
        ret, var = _static_portfolio_outcomes(fit, weights, counted, ret_filled, spec_filled, factor_cov, outcome_idx)
        outcomes.add(family, labels, ret, var)
    if "optimised" in specs:
        ret, var = _optimised_outcomes(fit, rng, n_optimised, rebalance, counted, ret_filled, spec_filled, factor_cov, outcome_idx)
        outcomes.add("optimised", [f"optimised{j:03d}" for j in range(n_optimised)], ret, var)


def _nan_stat(func, values: np.ndarray, **kwargs) -> np.ndarray:
    """A NaN-aware reduction that returns NaN for columns without enough outcomes, silently."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(values, **kwargs)


def _summarise(z, vol, out_dates, names, families, window, settings) -> BiasStatistics:
    """Bias, band, rolling bias, MRAD and QLIKE; a portfolio with < 2 outcomes has NaN bias."""
    coords = {"date": out_dates, "portfolio": np.asarray(names, dtype=str)}
    n_obs = np.isfinite(z).sum(axis=0)
    bias = _nan_stat(np.nanstd, z, axis=0, ddof=1)
    t_eff = int(np.median(n_obs))
    band = (1.0 - np.sqrt(2.0 / t_eff), 1.0 + np.sqrt(2.0 / t_eff))
    rolling = pd.DataFrame(z).rolling(window, min_periods=max(2, window // 2)).std().to_numpy()
    z2 = np.where(z != 0.0, z**2, np.nan)  # an outcome of exactly 0 (a rounded return) has no QLIKE
    qlike = _nan_stat(np.nanmean, z2 - _nan_stat(np.log, z2) - 1.0, axis=0)
    return BiasStatistics(
        z=xr.DataArray(z, coords=coords, dims=("date", "portfolio"), name="z"),
        predicted_vol=xr.DataArray(vol, coords=coords, dims=("date", "portfolio"), name="predicted_vol"),
        bias=xr.DataArray(bias, coords={"portfolio": coords["portfolio"]}, dims="portfolio", name="bias"),
        band=band,
        rolling=xr.DataArray(rolling, coords=coords, dims=("date", "portfolio"), name="rolling_bias"),
        mrad=float(_nan_stat(np.nanmean, np.abs(rolling - 1.0))),
        qlike=xr.DataArray(qlike, coords={"portfolio": coords["portfolio"]}, dims="portfolio", name="qlike"),
        family=xr.DataArray(np.asarray(families, dtype=str), coords={"portfolio": coords["portfolio"]}, dims="portfolio"),
        settings=settings,
    )


def _random_portfolios(rng: np.random.Generator, returns: np.ndarray, n: int) -> np.ndarray:
    """Long-only portfolios with random weights on random names with good coverage."""
    coverage = np.isfinite(returns).mean(axis=0)
    pool = np.flatnonzero(coverage >= 0.8)
    if pool.size < 2:
        pool = np.arange(returns.shape[1])
    k = int(min(500, max(2, pool.size // 2)))
    weights = np.zeros((n, returns.shape[1]))
    for j in range(n):
        names = rng.choice(pool, size=k, replace=False)
        raw = rng.uniform(0.5, 1.5, size=k)
        weights[j, names] = raw / raw.sum()
    return weights


def _static_portfolio_outcomes(fit, weights, counted, ret_filled, spec_filled, factor_cov, outcome_idx):
    """Realised returns (T', P) and predicted variances (T', P) of static stock portfolios."""
    valid_prev = np.zeros_like(counted)
    valid_prev[:-1] = counted[1:]  # the forecast row t-1 applies to stocks counted on day t
    x = fit.portfolio_factor_exposures(weights, valid_prev, outcome_idx - 1)  # (T', P, m)
    cov = np.nan_to_num(factor_cov[outcome_idx - 1])
    factor_var = np.einsum("tpi,tij,tpj->tp", x, cov, x)
    w2 = weights**2
    specific_var = (counted[outcome_idx] * spec_filled[outcome_idx - 1]) @ w2.T
    realised = (counted[outcome_idx] * ret_filled[outcome_idx]) @ weights.T
    return realised, factor_var + specific_var


def _optimised_outcomes(fit, rng, n, rebalance, counted, ret_filled, spec_filled, factor_cov, outcome_idx):
    """``w ∝ Σ⁻¹α`` portfolios rebuilt every ``rebalance`` outcome days and held in between."""
    n_stocks = counted.shape[1]
    alpha = rng.standard_normal((n_stocks, n))
    realised = np.empty((len(outcome_idx), n))
    variance = np.empty((len(outcome_idx), n))
    for block_start in range(0, len(outcome_idx), rebalance):
        block = outcome_idx[block_start : block_start + rebalance]
        cov = fit.covariance(fit.dates[block[0] - 1])
        position = pd.Index(np.asarray(fit.stocks).astype(str)).get_indexer(np.asarray(cov.stocks).astype(str))
        solved = cov.solve(alpha[position])
        solved = np.asarray(solved)
        weights = np.zeros((n, n_stocks))
        weights[:, position] = (solved / np.abs(solved).sum(axis=0, keepdims=True)).T
        r, v = _static_portfolio_outcomes(fit, weights, counted, ret_filled, spec_filled, factor_cov, block)
        realised[block_start : block_start + len(block)] = r
        variance[block_start : block_start + len(block)] = v
    return realised, variance
