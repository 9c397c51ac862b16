"""The time-series (macroeconomic / known-factor) risk model ``r_n = a_n + B_nᵀ f + u_n``.

``TimeSeriesFactorModel(...).fit(panel, factor_returns)`` regresses every stock's returns on
given factor returns (Fama–French, macro series…) through time, for every date at once,
and builds the same forecasts as the fundamental model: ``Σ_f`` from the factor returns
(:func:`riskmodel.covariance.factor.factor_covariance`) and the specific variances from
the out-of-sample residuals (:func:`riskmodel.covariance.specific.specific_variance`).

The fitted result follows the fitted-model protocol of CONTRIBUTING.md, so
:func:`riskmodel.bias_statistics`, :func:`riskmodel.audit_residuals`, the CLI and the report
work on it unchanged. Its base class :class:`~riskmodel.models.loadings.LoadingsFittedModel`
is shared with the statistical model (:mod:`riskmodel.models.statistical`): both hold dense
loadings ``(refit, stock, factor)`` on a schedule of refit dates, carried forward in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import reject_infinite
from riskmodel._params import ParameterTable, StageProgress, pos_int, positive_finite_or_none
from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    DuplicateLabelError,
    InsufficientDataError,
    PanelError,
    VariableTypeError,
)
from riskmodel.models.loadings import (  # noqa: F401 - loading_rows, refit_schedule re-exported
    LoadingsFittedModel,
    build_dataset,
    cap_array,
    forecasts,
    loading_rows,
    refit_schedule,
    returns_array,
)
from riskmodel.models.settings import FORECAST_PARAMETERS, ForecastEstimator

__all__ = ["TimeSeriesFactorModel", "FittedTimeSeriesModel", "align_factor_returns", "ts_loadings"]

MODEL_KIND = "fitted_timeseries_model"


def _window_or_none(value: Any) -> bool:
    return value is None or (pos_int(value) and value >= 2)


_PARAMETERS: ParameterTable = {
    "window": (_window_or_none, "an integer >= 2 (days in a rolling window), or None for all history"),
    "half_life": (positive_finite_or_none, "a positive finite number of days, or None for equal weights"),
    "min_obs": (pos_int, "an integer >= 1 (valid days before a stock has loadings)"),
    "refit_every": (pos_int, "an integer >= 1 (days between stored loadings)"),
    **FORECAST_PARAMETERS,
}


# ---------------------------------------------------------------------------------------
# the time-series model
# ---------------------------------------------------------------------------------------


def _factor_frame(factor_returns: Any) -> tuple[pd.DatetimeIndex, list[str], np.ndarray]:
    """Factor returns as (dates, names, values (date, factor)) from a DataFrame or DataArray."""
    if isinstance(factor_returns, pd.DataFrame):
        frame = factor_returns
    elif isinstance(factor_returns, xr.DataArray):
        if set(factor_returns.dims) != {"date", "factor"}:
            raise DimensionError(f"factor_returns must have dims (date, factor), got {factor_returns.dims}")
        frame = factor_returns.transpose("date", "factor").to_pandas()
    else:
        raise PanelError(
            f"factor_returns must be a pandas DataFrame (date × factor) or a DataArray (date, factor), "
            f"got {type(factor_returns).__name__}"
        )
    try:
        dates = pd.DatetimeIndex(frame.index)
    except (TypeError, ValueError) as exc:
        raise PanelError(f"factor_returns: the index must hold dates ({exc})") from None
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise DuplicateLabelError(f"factor_returns: duplicate factor names in {names}")
    if dates.has_duplicates:
        raise DuplicateLabelError(
            f"factor_returns: duplicate dates {[str(d.date()) for d in dates[dates.duplicated()][:5]]}"
        )
    values = frame.to_numpy()
    if values.dtype.kind not in "biuf":
        raise VariableTypeError(f"factor_returns must be numeric, got dtype {values.dtype}")
    values = values.astype(np.float64)
    reject_infinite(values, "factor_returns", [("date", dates), ("factor", names)], hint="use NaN for a missing return")
    return dates, names, values


def align_factor_returns(panel_dates: pd.DatetimeIndex, factor_returns: Any) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Align factor returns to the panel's dates by label.

    Returns ``(rows, names, values)``: the panel rows of the overlap, the factor names and
    the factor returns on those rows ``(T', k)``.

    Raises
    ------
    AlignmentError
        No common date, or the calendars disagree inside the common span (dates one side
        has and the other lacks, named).
    """
    f_dates, names, values = _factor_frame(factor_returns)
    order = np.argsort(f_dates.asi8, kind="stable")
    f_dates, values = f_dates[order], values[order]
    common = panel_dates.intersection(f_dates)
    if common.empty:
        raise AlignmentError(
            f"factor_returns share no date with the panel (panel {panel_dates[0].date()}..{panel_dates[-1].date()}, "
            f"factors {f_dates[0].date() if len(f_dates) else 'none'}..{f_dates[-1].date() if len(f_dates) else ''}); "
            "pass factor returns indexed by the panel's trading dates"
        )
    lo, hi = common[0], common[-1]
    in_span_panel = panel_dates[(panel_dates >= lo) & (panel_dates <= hi)]
    in_span_factors = f_dates[(f_dates >= lo) & (f_dates <= hi)]
    only_panel = in_span_panel.difference(f_dates)
    only_factors = in_span_factors.difference(panel_dates)
    if len(only_panel) or len(only_factors):
        show = lambda idx: [str(d.date()) for d in idx[:5]] + (["…"] if len(idx) > 5 else [])  # noqa: E731
        raise AlignmentError(
            f"factor_returns and the panel disagree on trading dates inside {lo.date()}..{hi.date()}: "
            f"{len(only_panel)} panel date(s) without factor returns {show(only_panel)}, "
            f"{len(only_factors)} factor date(s) not in the panel {show(only_factors)}; reindex the factor "
            "returns to the panel's dates (NaN rows are allowed: those days are skipped)"
        )
    rows = panel_dates.get_indexer(common).astype(np.int64)
    return rows, names, values[f_dates.get_indexer(common)]


def common_cross_products(x: np.ndarray, fvalid: np.ndarray, schedule: np.ndarray, decay: float, window: int) -> np.ndarray:
    """``Σ_s w_{t−s} x̃_s x̃_sᵀ`` over the valid factor dates of each schedule row's window.

    ``x̃ = [1, x]``, ``w_l = decay^l`` for ``l < window``. Returns ndarray (S, k + 1, k + 1).
    """
    n_dates, k = x.shape
    xt = np.empty((n_dates, k + 1))
    xt[:, 0] = 1.0
    xt[:, 1:] = np.where(fvalid[:, None], x, 0.0)
    xt[~fvalid] = 0.0
    out = np.empty((len(schedule), k + 1, k + 1))
    for i, t in enumerate(schedule):
        start = max(0, t - window + 1)
        w = decay ** (t - np.arange(start, t + 1, dtype=np.float64))
        block = xt[start : t + 1]
        out[i] = block.T @ (block * w[:, None])
    return out


def ts_loadings(
    returns: np.ndarray,
    x: np.ndarray,
    *,
    window: int | None = None,
    half_life: float | None = None,
    min_obs: int = 60,
    schedule: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-stock time-series regressions with intercept, on ndarrays, for every date at once.

    Parameters
    ----------
    returns : ndarray (date, stock) float64
        NaN: no return (the day is skipped for that stock).
    x : ndarray (date, factor) float64
        Factor returns; a date with any NaN factor return is skipped for every stock.
    window, half_life, min_obs :
        See :class:`TimeSeriesFactorModel`.
    schedule : ndarray (S,) int64
        Rows at which loadings are solved and stored.

    Returns
    -------
    dict
        ``loadings (S, N, k)``, ``intercept (S, N)``, ``resid_var (S, N)``, ``n_obs (S, N)``,
        ``residuals (T, N)`` (out of sample: loadings of the last schedule row ``≤ t − 1``).
    """
    from riskmodel.kernels.timeseries import ts_loadings_kernel

    n_dates, n_stocks = returns.shape
    k = x.shape[1]
    fvalid = np.isfinite(x).all(axis=1)
    decay = 1.0 if half_life is None else 0.5 ** (1.0 / half_life)
    win = n_dates + 1 if window is None else int(window)
    schedule = np.ascontiguousarray(schedule, dtype=np.int64)
    common = common_cross_products(x, fvalid, schedule, decay, win)
    out = dict(
        loadings=np.empty((len(schedule), n_stocks, k)),
        intercept=np.empty((len(schedule), n_stocks)),
        resid_var=np.empty((len(schedule), n_stocks)),
        n_obs=np.empty((len(schedule), n_stocks), dtype=np.int64),
        residuals=np.empty((n_dates, n_stocks)),
    )
    ts_loadings_kernel(
        np.ascontiguousarray(returns, dtype=np.float64),
        np.ascontiguousarray(np.where(fvalid[:, None], x, 0.0)),
        fvalid,
        float(decay),
        win,
        int(min_obs),
        schedule,
        common,
        out["loadings"],
        out["intercept"],
        out["resid_var"],
        out["n_obs"],
        out["residuals"],
    )
    return out


class TimeSeriesFactorModel(ForecastEstimator):
    """Time-series factor risk model: per-stock regressions on given factor returns.

    For every date ``t`` and stock ``n``, ``r_ns = a_n + b_nᵀ f_s + e_ns`` is fitted by
    (weighted) least squares over the days ``s ≤ t`` of the window on which both the stock
    and every factor have a return. ``Σ = B Σ_f Bᵀ + D`` then uses the loadings ``B`` as of
    ``t``, ``Σ_f`` forecast from the factor returns and ``D`` from the residuals.

    Parameters
    ----------
    window : int or None
        Rolling window in days; ``None``: all history up to ``t``.
    half_life : float or None
        EWMA half-life of the regression weights (weight ``2^(−(t−s)/H)``); ``None``: equal
        weights. With ``window`` too, EWMA weights inside the rolling window.
    min_obs : int
        A stock has loadings once it has this many valid days in the window (NaN before).
    refit_every : int
        Loadings are stored every this many days and on the last date, and carried forward
        in between (see Notes).
    factor-covariance and specific-risk settings :
        ``vol_half_life, vol_lags, corr_half_life, corr_lags, eigen_sims, eigen_scale,
        eigen_every, vra_half_life, specific_half_life, specific_lags, shrink,
        specific_vra_half_life, blend, seed`` as in :class:`riskmodel.FactorRiskModel`.
    cap : str or None
        Market-cap variable for the specific-risk shrinkage groups and VRA weights (used
        when present in the panel).
    progress : bool or None
        Progress bar; ``None``: when stderr is a terminal.

    Notes
    -----
    *Schedule.* Loadings of all dates would be ``(T, N, k)`` (1 GB at 5,000 × 2,520 × 10),
    so they are solved and stored on rows ``0, refit_every, 2·refit_every, …`` and the last
    row, and the loadings *as of* a date are those of the last refit date ``≤`` it
    (``refit_every=1``: every date). The running sums behind them are still updated every
    day, so a refit date's loadings use all data up to that date.

    *Residuals* are out of sample: ``u_t = r_t − a − Bᵀ f_t`` with the intercept and loadings
    in force at the close of ``t − 1`` (no look-ahead), so the specific-risk forecasts and
    the bias statistics see the errors a user would have seen. Stocks without loadings yet
    have no residual.

    *Intercept.* ``a_n`` is estimated and subtracted in the residuals, but it is not a risk
    factor: the covariance is ``B Σ_f Bᵀ + D`` over the given factors only.

    *Dates.* Factor returns are aligned to the panel's dates by label; the model is fitted
    on the dates both cover (the overlap). Inside the overlap the calendars must agree
    (otherwise an :class:`~riskmodel.errors.AlignmentError` names the dates); a NaN factor
    return on a date skips that date for every stock.

    *Specific risk* uses the fundamental model's estimator with no style exposures (see
    :func:`forecasts`).

    Examples
    --------
    >>> import numpy as np, pandas as pd, riskmodel as rm
    >>> panel = rm.simulate(n_stocks=150, n_days=300, seed=0)
    >>> f = panel["true_factor_returns"].rename(true_factor="factor").sel(factor=["market"])
    >>> ts = rm.TimeSeriesFactorModel(min_obs=60, eigen_sims=0).fit(panel, f)
    >>> ts.covariance().exposures.dims
    ('stock', 'factor')
    """

    PARAMETERS: ClassVar[ParameterTable] = _PARAMETERS
    REPR: ClassVar[tuple[str, ...]] = ("window", "half_life", "min_obs", "refit_every")

    def __init__(
        self,
        *,
        window: int | None = None,
        half_life: float | None = None,
        min_obs: int = 60,
        refit_every: int = 21,
        cap: str | None = "market_cap",
        progress: bool | None = None,
        **forecast_settings: Any,
    ) -> None:
        own = dict(window=window, half_life=half_life, min_obs=min_obs, refit_every=refit_every, cap=cap,
                   progress=progress)
        self._set_params(own, forecast_settings)

    def fit(self, panel: xr.Dataset, factor_returns: Any) -> "FittedTimeSeriesModel":
        """Fit the model.

        Parameters
        ----------
        panel : Dataset (date, stock)
            With ``returns`` (and optionally the cap variable).
        factor_returns : DataFrame (date × factor) or DataArray (date, factor)
            Daily factor returns, aligned to the panel's dates by label.

        Returns
        -------
        FittedTimeSeriesModel

        Raises
        ------
        AlignmentError
            The factor returns and the panel share no date, or disagree on dates inside
            the common span.
        InsufficientDataError
            Fewer common dates than ``min_obs``, or ``min_obs`` ≤ number of factors + 1.
        PanelError
            A malformed panel or factor-return table.
        """
        settings = self.checked_params()
        returns_all = returns_array(panel, "TimeSeriesFactorModel.fit")
        panel_dates = pd.DatetimeIndex(panel["date"].to_numpy())
        rows, names, x = align_factor_returns(panel_dates, factor_returns)
        k = len(names)
        if self.min_obs <= k + 1:
            raise InsufficientDataError(
                f"TimeSeriesFactorModel: min_obs={self.min_obs} must exceed the number of regressors "
                f"({k} factors + intercept = {k + 1}); raise min_obs"
            )
        if len(rows) < self.min_obs:
            raise InsufficientDataError(
                f"only {len(rows)} common dates of panel and factor returns, fewer than min_obs={self.min_obs}"
            )
        returns = np.ascontiguousarray(returns_all[rows])
        dates = panel_dates[rows].to_numpy()
        stocks = panel["stock"].to_numpy().astype(str)
        cap = cap_array(panel, self.cap, len(panel_dates), len(stocks))
        cap = None if cap is None else np.ascontiguousarray(cap[rows])
        schedule = refit_schedule(len(rows), self.refit_every)
        with StageProgress(["loadings", "factor covariance + specific risk"], self.progress) as progress:
            fitted = ts_loadings(
                returns, x, window=self.window, half_life=self.half_life, min_obs=self.min_obs, schedule=schedule
            )
            progress.advance()
            fc, spec = forecasts(x, fitted["residuals"], cap, settings, dates, stocks)
            progress.advance()
        ds = build_dataset(
            MODEL_KIND,
            returns,
            dates,
            stocks,
            names,
            x,
            fitted["residuals"],
            fitted["loadings"],
            schedule,
            fc,
            spec,
            settings,
            extra={
                "intercept": (("refit", "stock"), fitted["intercept"]),
                "resid_var": (("refit", "stock"), fitted["resid_var"]),
                "n_obs": (("refit", "stock"), fitted["n_obs"]),
            },
        )
        return FittedTimeSeriesModel(dataset=ds, settings=settings)


@dataclass(frozen=True, eq=False, repr=False)
class FittedTimeSeriesModel(LoadingsFittedModel):
    """A fitted time-series factor model (fitted-model protocol, see CONTRIBUTING.md).

    Attributes
    ----------
    dataset : Dataset
        ``returns``, ``factor_returns`` (the given ones, on the fitted dates),
        ``residuals`` (out of sample), ``loadings`` (refit, stock, factor),
        ``intercept`` / ``resid_var`` / ``n_obs`` (refit, stock) (in-sample regression
        diagnostics), ``factor_cov`` (date, factor, factor_), ``specific_var`` (date, stock).
    settings : dict
    """

    kind: ClassVar[str] = MODEL_KIND

    @property
    def intercept(self) -> xr.DataArray:
        """DataArray (refit, stock): regression intercepts ``a`` (per day)."""
        return self.dataset["intercept"]

    @property
    def resid_var(self) -> xr.DataArray:
        """DataArray (refit, stock): in-sample residual variance ``Σwe²/(Σw − pΣw²/Σw)``."""
        return self.dataset["resid_var"]
