"""The time-series (macroeconomic / known-factor) risk model ``r_n = a_n + B_nᵀ f + u_n``.

``TimeSeriesFactorModel(...).fit(panel, factor_returns)`` regresses every stock's returns on
given factor returns (Fama–French, macro series…) through time, for every date at once,
and builds the same forecasts as the fundamental model: ``Σ_f`` from the factor returns
(:func:`riskmodel.covariance.factor.factor_covariance`) and the specific variances from
the out-of-sample residuals (:func:`riskmodel.covariance.specific.specific_variance`).

The fitted result follows the fitted-model protocol of CONTRIBUTING.md, so
:func:`riskmodel.bias_statistics`, :func:`riskmodel.audit_residuals`, the CLI and the report
work on it unchanged. The base class :class:`LoadingsFittedModel` is shared with the
statistical model (:mod:`riskmodel.models.statistical`): both hold dense loadings
``(refit, stock, factor)`` on a schedule of refit dates, carried forward in between.
"""

from __future__ import annotations

import inspect
import json
import math
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._params import ParameterTable, StageProgress, check_parameters, half_life, jsonable_settings, pos_int
from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    DuplicateLabelError,
    InsufficientDataError,
    InvalidParameterError,
    MissingVariableError,
    NonFiniteError,
    PanelError,
    VariableTypeError,
)
from riskmodel.models.fitted import FittedModel
from riskmodel.models.fundamental import (
    PARAMETERS as _MODEL_PARAMETERS,
    FactorRiskModel,
    factor_covariance_kwargs,
    specific_variance_kwargs,
)

__all__ = ["TimeSeriesFactorModel", "FittedTimeSeriesModel", "LoadingsFittedModel"]

MODEL_KIND = "fitted_timeseries_model"

#: Settings of the forecasts, declared once in :mod:`riskmodel.models.fundamental` and shared.
FORECAST_KEYS = (
    "vol_half_life",
    "vol_lags",
    "corr_half_life",
    "corr_lags",
    "eigen_sims",
    "eigen_scale",
    "eigen_every",
    "vra_half_life",
    "specific_half_life",
    "specific_lags",
    "shrink",
    "specific_vra_half_life",
    "blend",
    "seed",
)
#: Their defaults: those of :class:`riskmodel.FactorRiskModel`, read from its signature.
FORECAST_DEFAULTS: dict[str, Any] = {
    name: inspect.signature(FactorRiskModel.__init__).parameters[name].default for name in FORECAST_KEYS
}
#: Their checks: those of :class:`riskmodel.FactorRiskModel`.
FORECAST_PARAMETERS: ParameterTable = {name: _MODEL_PARAMETERS[name] for name in FORECAST_KEYS}


def _window_or_none(value: Any) -> bool:
    return value is None or (pos_int(value) and value >= 2)


def _half_life_or_none(value: Any) -> bool:
    return value is None or (half_life(value) and math.isfinite(value))


_PARAMETERS: ParameterTable = {
    "window": (_window_or_none, "an integer >= 2 (days in a rolling window), or None for all history"),
    "half_life": (_half_life_or_none, "a positive finite number of days, or None for equal weights"),
    "min_obs": (pos_int, "an integer >= 1 (valid days before a stock has loadings)"),
    "refit_every": (pos_int, "an integer >= 1 (days between stored loadings)"),
    **FORECAST_PARAMETERS,
}


def set_forecast_settings(estimator: Any, owner: str, own: str, forecast_settings: dict[str, Any]) -> None:
    """Store the forecast settings shared with FactorRiskModel on ``estimator`` (defaults filled).

    Raises
    ------
    InvalidParameterError
        Naming any unknown setting and listing the accepted ones (``own`` + the forecast keys).
    """
    unknown = sorted(set(forecast_settings) - set(FORECAST_KEYS))
    if unknown:
        raise InvalidParameterError(
            f"{owner}: unknown setting(s) {unknown}; accepted: {own}, {', '.join(FORECAST_KEYS)}"
        )
    for name in FORECAST_KEYS:
        setattr(estimator, name, forecast_settings.get(name, FORECAST_DEFAULTS[name]))


# ---------------------------------------------------------------------------------------
# shared array helpers (also used by riskmodel.models.statistical)
# ---------------------------------------------------------------------------------------


def refit_schedule(n_dates: int, every: int) -> np.ndarray:
    """Rows ``0, every, 2·every, …`` and the last row: the dates whose loadings are stored.

    Parameters
    ----------
    n_dates : int
    every : int

    Returns
    -------
    ndarray (S,) int64, increasing.
    """
    rows = np.arange(0, n_dates, every, dtype=np.int64)
    if rows[-1] != n_dates - 1:
        rows = np.append(rows, np.int64(n_dates - 1))
    return rows


def loading_rows(schedule: np.ndarray, n_dates: int, shift: int = 0) -> np.ndarray:
    """For each date ``t``, the schedule position in force at ``t − shift`` (−1: none yet).

    Parameters
    ----------
    schedule : ndarray (S,) int64
    n_dates : int
    shift : int
        0: the loadings as of ``t`` (forecast made at the close of ``t``); 1: those known at
        ``t − 1`` (used on the returns of day ``t``).

    Returns
    -------
    ndarray (T,) int64
    """
    target = np.arange(n_dates, dtype=np.int64) - shift
    return np.searchsorted(schedule, target, side="right").astype(np.int64) - 1


def returns_array(panel: xr.Dataset) -> np.ndarray:
    """The panel's ``returns`` as a C-contiguous float64 (date, stock) array, checked."""
    if not isinstance(panel, xr.Dataset):
        raise PanelError(f"panel must be an xarray.Dataset with dims (date, stock), got {type(panel).__name__}")
    if "returns" not in panel:
        raise MissingVariableError(
            f"panel has no variable 'returns' (has {sorted(map(str, panel.data_vars))}); "
            "the model needs daily stock returns (date, stock)"
        )
    da = panel["returns"]
    if set(da.dims) != {"date", "stock"}:
        raise DimensionError(f"panel['returns'] must have dims (date, stock), got {da.dims}")
    if da["stock"].to_index().has_duplicates:
        dup = da["stock"].to_index()[da["stock"].to_index().duplicated()].unique()
        raise DuplicateLabelError(f"panel: duplicate stock ids {list(map(str, dup[:5]))}; each stock must appear once")
    dates = pd.DatetimeIndex(da["date"].to_numpy())
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        bad = dates[1:][np.diff(dates.asi8) <= 0]
        raise PanelError(f"panel dates must be strictly increasing; first offending date {bad[0].date()}")
    values = da.transpose("date", "stock").to_numpy()
    if values.dtype.kind not in "biuf":
        raise VariableTypeError(f"panel['returns'] must be numeric, got dtype {values.dtype}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    inf = np.isinf(values)
    if inf.any():
        t, n = np.argwhere(inf)[0]
        raise NonFiniteError(
            f"panel['returns'] holds {int(inf.sum())} infinite value(s); first for stock "
            f"{da['stock'].values[n]!s} on {dates[t].date()}. Use NaN for a missing return."
        )
    return values


def cap_array(panel: xr.Dataset, name: str | None, n_dates: int, n_stocks: int) -> np.ndarray | None:
    """Market cap (date, stock) for specific-risk shrinkage and VRA weights, or None."""
    if name is None or name not in panel:
        return None
    cap = np.ascontiguousarray(panel[name].transpose("date", "stock").to_numpy(), dtype=np.float64)
    if cap.shape != (n_dates, n_stocks):
        raise DimensionError(f"panel[{name!r}] must have dims (date, stock) like returns, got shape {cap.shape}")
    return cap


def forecasts(
    f: np.ndarray,
    residuals: np.ndarray,
    cap: np.ndarray | None,
    settings: dict[str, Any],
    dates: np.ndarray,
    stocks: np.ndarray,
):
    """Σ_f and specific-variance forecast series, with the fundamental model's estimators.

    ``Σ_f`` by :func:`~riskmodel.covariance.factor.factor_covariance` on ``f (T, k)``. The
    specific variances by :func:`~riskmodel.covariance.specific.specific_variance` on the
    residuals with **no style exposures** (``K = 0``): the time-series EWMA + Newey–West
    variance, blended for short or fat-tailed histories with a cross-sectional (market-level)
    structural volatility, shrunk toward cap-size groups and scaled by the specific VRA.
    Without a cap variable every stock has cap 1 and the shrinkage is off (no size groups).
    """
    from riskmodel.covariance.factor import factor_covariance
    from riskmodel.covariance.specific import specific_variance

    n_dates, n_stocks = residuals.shape
    fc = factor_covariance(f, **factor_covariance_kwargs(settings))
    shrink = settings["shrink"]
    if cap is None:
        cap = np.ones((n_dates, n_stocks))
        shrink = 0.0
    with np.errstate(invalid="ignore"):
        weights = np.where(cap > 0, np.sqrt(cap), np.nan)
    exposures = types.SimpleNamespace(
        styles=np.empty((n_dates, n_stocks, 0)),
        industry=None,
        industry_labels=(),
        cap=cap,
        weights=weights,
        dates=dates,
        stocks=stocks,
    )
    spec = specific_variance(
        np.ascontiguousarray(residuals), exposures, **{**specific_variance_kwargs(settings), "shrink": shrink}
    )
    return fc, spec


# ---------------------------------------------------------------------------------------
# the fitted-model protocol on dense loadings held on a refit schedule
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class LoadingsFittedModel(FittedModel):
    """Fitted-model protocol for models with dense loadings on a refit schedule.

    The dataset holds ``returns``, ``factor_returns`` (date, factor), ``residuals``
    (date, stock), ``factor_cov`` (date, factor, factor_), ``specific_var`` (date, stock)
    and ``loadings`` (refit, stock, factor): the loadings estimated at the close of each
    refit date, in force from that date until the next one (carried forward). The
    residuals are out of sample: day t uses the loadings in force at the close of t − 1.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("returns", "factor_returns", "residuals", "factor_cov", "specific_var", "loadings")

    @property
    def loadings(self) -> xr.DataArray:
        """DataArray (refit, stock, factor): loadings estimated at each refit date."""
        return self.dataset["loadings"]

    @property
    def refit_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset["refit"].to_numpy())

    def _refit_rows(self) -> np.ndarray:
        return self.dates.get_indexer(self.refit_dates).astype(np.int64)

    def _loading_position(self, t: int) -> int:
        """Position in ``refit`` of the loadings in force at the close of row ``t``."""
        return int(np.searchsorted(self._refit_rows(), t, side="right")) - 1

    # -- protocol ----------------------------------------------------------------------

    def exposure_matrix(self, date: object | None = None) -> xr.DataArray:
        """Dense loadings B (stock, factor) in force at the close of ``date`` (default: last).

        The loadings of the last refit date ``≤ date``; rows of stocks without loadings are NaN.
        """
        t = self._date_index(date)
        position = self._loading_position(t)
        if position < 0:
            values = np.full((len(self.stocks), len(self.factors)), np.nan)
        else:
            values = self.dataset["loadings"].isel(refit=position).transpose("stock", "factor").to_numpy()
        return xr.DataArray(
            values,
            coords={"stock": self.stocks, "factor": self.dataset["factor"].to_numpy()},
            dims=("stock", "factor"),
            name="exposures",
        )

    def _loadings_by_date(self) -> np.ndarray:
        """ndarray (T,) int64: position in ``refit`` in force at the close of each date."""
        return loading_rows(self._refit_rows(), len(self.dates), shift=0)

    def forecast_mask(self) -> np.ndarray:
        """ndarray (date, stock) bool: finite loadings and a positive specific variance at that close."""
        spec = self.dataset["specific_var"].to_numpy()
        finite = np.isfinite(self.dataset["loadings"].transpose("refit", "stock", "factor").to_numpy()).all(axis=2)
        position = self._loadings_by_date()
        mask = np.isfinite(spec) & (spec > 0) & (position >= 0)[:, None]
        mask &= finite[np.maximum(position, 0)]
        return mask

    def portfolio_factor_exposures(
        self, weights: np.ndarray, valid: np.ndarray, rows: np.ndarray | None = None, *, chunk: int = 16
    ) -> np.ndarray:
        """Factor exposures ``B_tᵀ (w ∘ valid_t)`` of static portfolios on many dates.

        Parameters
        ----------
        weights : ndarray (P, N)
            Portfolio weights over the model's stocks.
        valid : ndarray (T, N) bool
            Which stocks count on each date of the model (weights of the others count as zero).
        rows : ndarray of int, optional
            The dates (row positions) wanted; default all.
        chunk : int
            Dates per block (bounds memory to about ``chunk · P · N`` floats).

        Returns
        -------
        ndarray (len(rows), P, k)
            With the loadings in force at the close of each requested date (NaN loadings
            count as 0): one GEMM per block of dates sharing a refit.
        """
        loadings = np.nan_to_num(self.dataset["loadings"].transpose("refit", "stock", "factor").to_numpy())
        rows = np.arange(valid.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        position = self._loadings_by_date()[rows]
        out = np.zeros((rows.size, weights.shape[0], loadings.shape[2]))
        for start in range(0, rows.size, chunk):
            block = np.arange(start, min(start + chunk, rows.size))
            for pos in np.unique(position[block]):
                if pos < 0:
                    continue
                sel = block[position[block] == pos]
                w_eff = weights[None, :, :] * valid[rows[sel]][:, None, :]
                out[sel] = w_eff @ loadings[pos]
        return out

    def covariance(self, date: object | None = None):
        """The risk model forecast made at the close of ``date`` (default: the last date).

        Returns
        -------
        StructuredCovariance
            For the day after ``date``: exposures = the loadings as of ``date``, over the
            stocks with finite loadings and a positive specific variance that day.

        Raises
        ------
        PanelError
            No factor covariance forecast exists yet on ``date`` (too little history).
        """
        from riskmodel.covariance.structured import StructuredCovariance

        t = self._date_index(date)
        exposures = self.exposure_matrix(self.dates[t])
        factor_cov = self.dataset["factor_cov"].isel(date=t)
        specific = self.dataset["specific_var"].isel(date=t)
        fc = factor_cov.to_numpy()
        if not np.isfinite(fc).all():
            raise PanelError(
                f"no factor covariance forecast on {self.dates[t].date()}: too little history before it "
                f"(first forecast on {self._first_forecast_date()})"
            )
        spec = specific.to_numpy()
        complete = np.isfinite(exposures.to_numpy()).all(axis=1) & np.isfinite(spec) & (spec > 0)
        if not complete.any():
            raise PanelError(
                f"no stock has loadings and a specific variance on {self.dates[t].date()}; "
                f"pick a later date (loadings start after min_obs valid days)"
            )
        return StructuredCovariance(
            exposures.isel(stock=complete),
            factor_cov,
            specific.isel(stock=complete),
            date=self.dates[t],
        )

    # -- presentation ------------------------------------------------------------------

    def _summary_lines(self) -> list[str]:
        fr = self.factor_returns.to_pandas()
        with_loadings = np.isfinite(self.dataset["loadings"].to_numpy()).all(axis=2).sum(axis=1)
        lines = [
            f"{type(self).__name__}: {len(self.dates)} dates ({self.dates[0].date()}..{self.dates[-1].date()}), "
            f"{len(self.stocks)} stocks, {len(self.factors)} factors, {len(self.refit_dates)} refit dates",
            f"stocks with loadings at the last refit: {int(with_loadings[-1]) if with_loadings.size else 0}",
        ]
        vol = fr.std() * np.sqrt(252)
        tstat = fr.mean() / fr.std() * np.sqrt(fr.count())
        lines.append(pd.DataFrame({"ann. vol": vol, "t(mean)": tstat}).to_string(float_format=lambda v: f"{v:.3f}"))
        return lines

    def summary(self) -> str:
        """A short text report: span, factors, loadings coverage, factor volatilities."""
        return "\n".join(self._summary_lines())

    def __repr__(self) -> str:
        return self.summary().splitlines()[0]


def build_dataset(
    kind: str,
    panel_returns: np.ndarray,
    dates: np.ndarray,
    stocks: np.ndarray,
    factors: list[str],
    f: np.ndarray,
    residuals: np.ndarray,
    loadings: np.ndarray,
    schedule: np.ndarray,
    fc,
    spec,
    settings: dict[str, Any],
    extra: dict[str, tuple[tuple[str, ...], np.ndarray]] | None = None,
) -> xr.Dataset:
    """Assemble the labelled dataset of a loadings model (arrays in, labels out)."""
    factors_arr = np.asarray(factors, dtype=str)
    variables = {
        "returns": (("date", "stock"), panel_returns),
        "factor_returns": (("date", "factor"), f),
        "residuals": (("date", "stock"), residuals),
        "loadings": (("refit", "stock", "factor"), loadings),
        "factor_cov": (("date", "factor", "factor_"), fc.cov),
        "factor_vra": (("date",), fc.vra),
        "specific_var": (("date", "stock"), spec.var),
        "specific_vra": (("date",), spec.vra),
        **(extra or {}),
    }
    ds = xr.Dataset(
        variables,
        coords={
            "date": dates,
            "stock": np.asarray(stocks).astype(str),
            "factor": factors_arr,
            "factor_": factors_arr,
            "refit": dates[schedule],
        },
    )
    ds.attrs["riskmodel_kind"] = kind
    ds.attrs["settings"] = json.dumps(jsonable_settings(settings))
    return ds


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
    if np.isinf(values).any():
        t, j = np.argwhere(np.isinf(values))[0]
        raise NonFiniteError(
            f"factor_returns holds an infinite value for factor {names[j]!r} on {dates[t].date()}; use NaN"
        )
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


class TimeSeriesFactorModel:
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
        set_forecast_settings(
            self, "TimeSeriesFactorModel", "window, half_life, min_obs, refit_every, cap, progress", forecast_settings
        )
        self.window = window
        self.half_life = half_life
        self.min_obs = min_obs
        self.refit_every = refit_every
        self.cap = cap
        self.progress = progress
        check_parameters("TimeSeriesFactorModel", _PARAMETERS, self.get_params())

    def get_params(self) -> dict[str, Any]:
        """The settings as a dict (without ``progress``)."""
        return {name: getattr(self, name) for name in ("cap", *_PARAMETERS)}

    def __repr__(self) -> str:
        return (
            f"TimeSeriesFactorModel(window={self.window!r}, half_life={self.half_life!r}, "
            f"min_obs={self.min_obs}, refit_every={self.refit_every})"
        )

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
        settings = self.get_params()
        check_parameters("TimeSeriesFactorModel", _PARAMETERS, settings)
        returns_all = returns_array(panel)
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

    MODEL_KIND: ClassVar[str] = MODEL_KIND

    @property
    def intercept(self) -> xr.DataArray:
        """DataArray (refit, stock): regression intercepts ``a`` (per day)."""
        return self.dataset["intercept"]

    @property
    def resid_var(self) -> xr.DataArray:
        """DataArray (refit, stock): in-sample residual variance ``Σwe²/(Σw − pΣw²/Σw)``."""
        return self.dataset["resid_var"]
