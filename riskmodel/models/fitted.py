"""The fitted-model protocol shared by every kind of model (CONTRIBUTING.md, last section).

A fitted model is one labelled Dataset plus its settings. This base class reads the
protocol's series and coordinates from the Dataset, persists it, and turns a date into a
row; each kind adds how its exposures are stored (``exposure_matrix``,
``portfolio_factor_exposures``, ``forecast_mask``, ``covariance``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._params import settings_from_json
from riskmodel.errors import MissingVariableError, ModelFileError, PanelError

__all__ = ["FittedModel"]


@dataclass(frozen=True, eq=False)
class FittedModel:
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

    MODEL_KIND: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ("returns", "factor_returns", "residuals")

    # -- persistence -------------------------------------------------------------------

    @classmethod
    def from_dataset(cls, ds: xr.Dataset):
        """Rebuild a fitted model from :meth:`to_dataset` output (what :func:`riskmodel.load` does)."""
        missing = [v for v in cls.REQUIRED if v not in ds]
        if ds.attrs.get("riskmodel_kind") != cls.MODEL_KIND or missing:
            raise ModelFileError(
                f"not a {cls.__name__} (kind {ds.attrs.get('riskmodel_kind')!r}, expected {cls.MODEL_KIND!r}; "
                f"missing {missing})"
            )
        settings = ds.attrs.get("settings", "{}")
        settings = json.loads(settings) if isinstance(settings, str) else dict(settings)
        return cls(dataset=ds, settings=settings_from_json(settings))

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as one Dataset (what :func:`riskmodel.save` writes)."""
        return self.dataset

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

    def _first_forecast_date(self) -> str:
        ok = np.isfinite(self.dataset["factor_cov"].to_numpy()).any(axis=(1, 2))
        return str(self.dates[np.argmax(ok)].date()) if ok.any() else "never"
