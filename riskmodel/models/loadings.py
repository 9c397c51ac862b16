"""What the loadings models share: dense loadings on a refit schedule and their fitted-model base.

The time-series model (:mod:`riskmodel.models.timeseries`) and the statistical model
(:mod:`riskmodel.models.statistical`) both hold dense loadings ``(refit, stock, factor)``
estimated on a schedule of refit dates and carried forward in between, and both forecast
with the fundamental model's estimators (:func:`forecasts`). This module holds the array
helpers of that layout, the checked inputs, the forecasts, the labelled dataset
(:func:`build_dataset`) and the fitted-model base :class:`LoadingsFittedModel`.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import as_date_stock, reject_infinite
from riskmodel._params import jsonable_settings
from riskmodel.errors import DimensionError, DuplicateLabelError, MissingVariableError, PanelError, VariableTypeError
from riskmodel.models.fitted import FittedModel
from riskmodel.models.settings import factor_covariance_kwargs, specific_variance_kwargs

__all__ = [
    "LoadingsFittedModel",
    "refit_schedule",
    "loading_rows",
    "returns_array",
    "require_dataset",
    "cap_array",
    "forecasts",
    "build_dataset",
]


# ---------------------------------------------------------------------------------------
# array helpers of the refit schedule
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


def require_dataset(panel: Any, owner: str) -> xr.Dataset:
    """``panel`` itself if it is an :class:`xarray.Dataset`.

    Raises
    ------
    DimensionError
        Naming the type given and how to build a panel.
    """
    if not isinstance(panel, xr.Dataset):
        hint = (
            "build one from a long table (one row per date and stock) with rm.panel_from_long(frame)"
            if type(panel).__name__ == "DataFrame"
            else "build one with rm.panel_from_long(frame) from a long table, or read one with rm.load(path)"
        )
        raise DimensionError(
            f"{owner}: panel must be an xarray.Dataset with dims (date, stock), got {type(panel).__name__}; {hint}"
        )
    return panel


def returns_array(panel: xr.Dataset, owner: str = "fit") -> np.ndarray:
    """The panel's ``returns`` as a C-contiguous float64 (date, stock) array, checked."""
    require_dataset(panel, owner)
    if "returns" not in panel:
        raise MissingVariableError(
            f"panel has no variable 'returns' (has {sorted(map(str, panel.data_vars))}); "
            "the model needs daily stock returns (date, stock)"
        )
    da = as_date_stock(panel["returns"], "panel['returns']", numeric=False)
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
    reject_infinite(values, "panel['returns']", [("date", dates), ("stock", da["stock"].values)],
                    hint="use NaN for a missing return")
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

    def _exposure_values(self, t: int) -> np.ndarray:
        """The loadings of the last refit date ``≤`` row ``t`` (NaN for stocks without loadings)."""
        position = self._loading_position(t)
        if position < 0:
            return np.full((len(self.stocks), len(self.factors)), np.nan)
        return self.dataset["loadings"].isel(refit=position).transpose("stock", "factor").to_numpy()

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

    def _portfolio_exposures_into(self, out, weights, valid, rows, blocks) -> None:
        """The loadings in force at the close of each date (NaN loadings count as 0): one GEMM
        per block of dates sharing a refit."""
        loadings = np.nan_to_num(self.dataset["loadings"].transpose("refit", "stock", "factor").to_numpy())
        position = self._loadings_by_date()[rows]
        for block in blocks:
            for pos in np.unique(position[block]):
                if pos < 0:
                    continue
                sel = block[position[block] == pos]
                w_eff = weights[None, :, :] * valid[rows[sel]][:, None, :]
                out[sel] = w_eff @ loadings[pos]

    _NO_STOCK_HINT: ClassVar[str] = " (loadings start after min_obs valid days)"

    def _forecast_factors(self, factor_cov: np.ndarray) -> np.ndarray | None:
        """Every factor, once the whole matrix is forecast."""
        return np.ones(factor_cov.shape[0], dtype=bool) if np.isfinite(factor_cov).all() else None

    # -- presentation ------------------------------------------------------------------

    def mean_r2(self) -> float:
        """Mean over dates of the out-of-sample cross-sectional R², ``1 − Σu²/Σr²`` over the
        stocks with a return and a residual that day (uncentred; NaN without any date)."""
        r = self.dataset["returns"].transpose("date", "stock").to_numpy()
        u = self.dataset["residuals"].transpose("date", "stock").to_numpy()
        both = np.isfinite(r) & np.isfinite(u)
        ss_r = np.where(both, r * r, 0.0).sum(axis=1)
        ss_u = np.where(both, u * u, 0.0).sum(axis=1)
        ok = both.any(axis=1) & (ss_r > 0)
        return float(np.mean(1.0 - ss_u[ok] / ss_r[ok])) if ok.any() else float("nan")

    def _summary_lines(self) -> list[str]:
        with_loadings = np.isfinite(self.dataset["loadings"].to_numpy()).all(axis=2).sum(axis=1)
        return [
            self._headline(f", {len(self.refit_dates)} refit dates"),
            f"mean R² {self.mean_r2():.3f} (out of sample); stocks with loadings at the last refit: "
            f"{int(with_loadings[-1]) if with_loadings.size else 0}",
            self._factor_table(),
        ]

    def summary(self) -> str:
        """A short text report: kind, span and size, mean R², loadings coverage, factor volatilities."""
        return "\n".join(self._summary_lines())


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
