"""The fitted-model protocol shared by every kind of model (CONTRIBUTING.md, last section).

A fitted model is one labelled Dataset plus its settings, and a
:class:`riskmodel._results.Result`: ``kind``, ``to_dataset`` / ``from_dataset``,
``summary()`` (also its repr) and ``save``. This base class reads the protocol's series and
coordinates from the Dataset, persists it, and turns a date into a row; each kind adds how
its exposures are stored (``exposure_matrix``, ``portfolio_factor_exposures``,
``forecast_mask``, ``covariance``) and its summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._params import settings_from_json
from riskmodel._results import Result, check_kind
from riskmodel.errors import MissingVariableError, ModelFileError, PanelError

__all__ = ["FittedModel"]


@dataclass(frozen=True, eq=False, repr=False)
class FittedModel(Result):
    """Base of the fitted models: labelled outputs read from one Dataset.

    Attributes
    ----------
    dataset : Dataset
        Every output, labelled by ``date``, ``stock`` and ``factor``.
    settings : dict
        The estimator's settings.
    """

    dataset: xr.Dataset
    settings: dict

    REQUIRED: ClassVar[tuple[str, ...]] = ("returns", "factor_returns", "residuals")

    # -- persistence -------------------------------------------------------------------

    @classmethod
    def from_dataset(cls, ds: xr.Dataset):
        """Rebuild a fitted model from :meth:`to_dataset` output (what :func:`riskmodel.load` does)."""
        check_kind(ds, cls.kind, cls.__name__)
        missing = [v for v in cls.REQUIRED if v not in ds]
        if missing:
            raise ModelFileError(
                f"{cls.__name__}.from_dataset: the dataset lacks the variable(s) {missing}; it was not "
                f"written by {cls.__name__}.to_dataset (or rm.save of a fitted model)"
            )
        settings = ds.attrs.get("settings", "{}")
        settings = json.loads(settings) if isinstance(settings, str) else dict(settings)
        return cls(dataset=ds, settings=settings_from_json(settings))

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as one Dataset (what :func:`riskmodel.save` writes)."""
        return self.dataset

    def update(self, panel: xr.Dataset, settings: dict | None = None):
        """Extend the model by new dates (the fundamental model only; see
        :meth:`riskmodel.models.fitted_factor.FittedFactorModel.update`).

        Raises
        ------
        UpdateNotSupportedError
            Always here: only the fundamental model is updated date by date. The
            statistical model re-extracts its factors from the whole window at each date's
            fit; carrying the time-series model's rolling loadings is not implemented.
        """
        from riskmodel.models.update import UpdateNotSupportedError

        raise UpdateNotSupportedError(
            f"{type(self).__name__}.update: only the fundamental model (FittedFactorModel) is updated date by date; "
            "the statistical model re-extracts its factors from the whole window and carrying the time-series "
            "model's rolling loadings is not implemented: refit it on the full panel"
        )

    # -- coordinates and series --------------------------------------------------------

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset["date"].to_numpy())

    @property
    def stocks(self) -> np.ndarray:
        return self.dataset["stock"].to_numpy().astype(str)

    @property
    def factors(self) -> list[str]:
        return [str(f) for f in self.dataset["factor"].to_numpy()]

    @property
    def returns(self) -> xr.DataArray:
        """DataArray (date, stock): the stock returns the model was fitted on."""
        return self.dataset["returns"]

    @property
    def factor_returns(self) -> xr.DataArray:
        """DataArray (date, factor): daily factor returns (NaN where a date or factor has none)."""
        return self.dataset["factor_returns"]

    @property
    def residuals(self) -> xr.DataArray:
        """DataArray (date, stock): specific returns; NaN where absent."""
        return self.dataset["residuals"]

    @property
    def factor_cov(self) -> xr.DataArray:
        """DataArray (date, factor, factor_): forecast for the next day made at the close of each date."""
        self._require_forecasts()
        return self.dataset["factor_cov"]

    @property
    def specific_var(self) -> xr.DataArray:
        """DataArray (date, stock): specific-variance forecast made at the close of each date."""
        self._require_forecasts()
        return self.dataset["specific_var"]

    def _require_forecasts(self) -> None:
        if "factor_cov" not in self.dataset or "specific_var" not in self.dataset:
            raise MissingVariableError(
                "this model was fitted with covariance=False: it has factor returns but no forecasts"
            )

    # -- exposures ---------------------------------------------------------------------

    def exposure_matrix(self, date: object | None = None) -> xr.DataArray:
        """Dense exposures B (stock, factor) in force at the close of ``date`` (default: the last).

        One date only; rows of stocks without a complete exposure that day are NaN.
        """
        return xr.DataArray(
            self._exposure_values(self._date_index(date)),
            coords={"stock": self.stocks, "factor": self.dataset["factor"].to_numpy()},
            dims=("stock", "factor"),
            name="exposures",
        )

    def _exposure_values(self, t: int) -> np.ndarray:  # pragma: no cover - every kind defines it
        """ndarray (stock, factor): the exposures in force at the close of row ``t``."""
        raise NotImplementedError

    # -- portfolios --------------------------------------------------------------------

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
        ndarray (len(rows), P, m)
            Exposures to the model's factors at the close of each requested date, from the
            exposures as the model stores them (never a dense ``(T, N, m)`` array).
        """
        rows = np.arange(valid.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        out = np.zeros((rows.size, weights.shape[0], len(self.factors)))
        blocks = [np.arange(start, min(start + chunk, rows.size)) for start in range(0, rows.size, chunk)]
        self._portfolio_exposures_into(out, weights, valid, rows, blocks)
        return out

    def _portfolio_exposures_into(
        self, out: np.ndarray, weights: np.ndarray, valid: np.ndarray, rows: np.ndarray, blocks: list[np.ndarray]
    ) -> None:  # pragma: no cover - every kind defines it
        """Write ``out[block]`` for each block of positions into ``rows``."""
        raise NotImplementedError

    # -- the forecast of one date -------------------------------------------------------

    #: What the message of a date without any complete stock suggests (after "pick a later date").
    _NO_STOCK_HINT: ClassVar[str] = ""

    def covariance(self, date: object | None = None):
        """The risk model forecast made at the close of ``date`` (default: the last date).

        Returns
        -------
        StructuredCovariance
            For the day after ``date``, over the factors with a forecast that day and the
            stocks with a complete forecast (finite exposures to those factors and a
            positive specific variance).

        Raises
        ------
        MissingVariableError
            The model was fitted without forecasts (``covariance=False``).
        PanelError
            ``date`` is not in the model, no factor covariance forecast exists yet on it
            (too little history), or no stock has a complete forecast that day.
        """
        from riskmodel.covariance.structured import StructuredCovariance

        self._require_forecasts()
        t = self._date_index(date)
        exposures = self.exposure_matrix(self.dates[t])
        factor_cov = self.dataset["factor_cov"].isel(date=t)
        specific = self.dataset["specific_var"].isel(date=t)
        known = self._forecast_factors(factor_cov.to_numpy())
        if known is None:
            raise PanelError(
                f"no factor covariance forecast on {self.dates[t].date()}: too little history before it "
                f"(first forecast on {self._first_forecast_date()})"
            )
        factor_cov = factor_cov.isel(factor=known, factor_=known)
        exposures = exposures.isel(factor=known)
        spec = specific.to_numpy()
        complete = np.isfinite(exposures.to_numpy()).all(axis=1) & np.isfinite(spec) & (spec > 0)
        if not complete.any():
            raise PanelError(
                f"no stock has exposures and a specific variance on {self.dates[t].date()}; "
                f"pick a later date{self._NO_STOCK_HINT}"
            )
        return StructuredCovariance(
            exposures.isel(stock=complete),
            factor_cov,
            specific.isel(stock=complete),
            date=self.dates[t],
        )

    def _forecast_factors(self, factor_cov: np.ndarray) -> np.ndarray | None:  # pragma: no cover
        """Bool (factor,): the factors ``factor_cov`` (one date) forecasts; None: no forecast."""
        raise NotImplementedError

    # -- dates -------------------------------------------------------------------------

    def _date_index(self, date: object | None) -> int:
        """Row of ``date`` (default: the last); a date outside the model is a PanelError."""
        if date is None:
            return len(self.dates) - 1
        try:
            stamp = pd.Timestamp(date)
        except (TypeError, ValueError) as exc:
            raise PanelError(f"date {date!r} is not a date") from exc
        position = self.dates.get_indexer([stamp])[0]
        if position < 0:
            raise PanelError(
                f"date {stamp.date()} is not in the model ({self.dates[0].date()}..{self.dates[-1].date()}, "
                "trading days only)"
            )
        return int(position)

    # -- presentation ------------------------------------------------------------------

    def _headline(self, detail: str) -> str:
        """The summary's first line: class, kind, span and size."""
        return (
            f"{type(self).__name__} ({self.kind}): {len(self.dates)} dates "
            f"({self.dates[0].date()}..{self.dates[-1].date()}), {len(self.stocks)} stocks, "
            f"{len(self.factors)} factors{detail}"
        )

    def _factor_table(self, rows: list[str] | None = None) -> str:
        """Annualised volatility and t-statistic of the mean of each factor's returns."""
        fr = self.factor_returns.to_pandas()
        vol = fr.std() * np.sqrt(252)
        tstat = fr.mean() / fr.std() * np.sqrt(fr.count())
        table = pd.DataFrame({"ann. vol": vol, "t(mean)": tstat})
        if rows is not None:
            table = table.loc[rows]
        return table.to_string(float_format=lambda v: f"{v:.3f}")

    def _first_forecast_date(self) -> str:
        ok = np.isfinite(self.dataset["factor_cov"].to_numpy()).any(axis=(1, 2))
        return str(self.dates[np.argmax(ok)].date()) if ok.any() else "never"
