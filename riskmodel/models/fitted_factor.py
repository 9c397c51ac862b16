"""The fitted fundamental factor model: every date's factor returns, residuals and forecasts.

:class:`FittedFactorModel` is what :func:`riskmodel.models.pipeline.fit_fundamental` (and
so :meth:`riskmodel.FactorRiskModel.fit`), the hybrid model and the out-of-core fit return;
``rm.load`` rebuilds it from a saved file (kind ``fitted_factor_model``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import xarray as xr

from riskmodel._params import jsonable_settings
from riskmodel.models.fitted import FittedModel
from riskmodel.models.settings import FUNDAMENTAL_DEFAULTS

__all__ = ["FittedFactorModel", "MODEL_KIND", "VARIABLE_ORDER"]

MODEL_KIND = "fitted_factor_model"

#: The variables of a fitted fundamental model's dataset, in order (those present).
VARIABLE_ORDER: tuple[str, ...] = (
    "returns", "factor_returns", "factor_se", "residuals", "r2", "n_obs", "n_clipped",
    "style_exposure", "regression_weight", "market_cap", "imputed", "industry_code",
    "factor_cov", "factor_vra", "specific_var", "specific_vra",
)


@dataclass(frozen=True, eq=False, repr=False)
class FittedFactorModel(FittedModel):
    """A fitted fundamental factor model: every date's factor returns, residuals and forecasts.

    Attributes
    ----------
    dataset : Dataset
        Everything, labelled: ``returns``, ``factor_returns`` (date, factor),
        ``residuals`` (date, stock), ``r2`` (date), ``factor_se``, ``n_obs``, the
        exposures (``style_exposure`` (date, stock, style), ``industry_code``,
        ``regression_weight``, ``market_cap``, ``imputed``) and, when forecasts were
        fitted, ``factor_cov`` (date, factor, factor_) and ``specific_var`` (date, stock):
        row ``t`` is the forecast for day ``t + 1`` made at the close of ``t``.
    settings : dict
        The estimator's settings.
    """

    kind: ClassVar[str] = MODEL_KIND
    REQUIRED: ClassVar[tuple[str, ...]] = ("factor_returns", "residuals", "r2", "style_exposure", "returns")

    # -- construction ------------------------------------------------------------------

    @classmethod
    def _from_parts(cls, panel, exposures, wls, factor_cov, specific, settings) -> "FittedFactorModel":
        dates, stocks = np.asarray(exposures.dates), np.asarray(exposures.stocks).astype(str)
        factors = np.asarray(wls.factor_names, dtype=str)
        styles = np.asarray(exposures.style_names, dtype=str)
        ds = xr.Dataset(
            {
                "returns": (("date", "stock"), panel["returns"].transpose("date", "stock").to_numpy()),
                "factor_returns": (("date", "factor"), wls.factor_returns),
                "factor_se": (("date", "factor"), wls.se),
                "residuals": (("date", "stock"), wls.residuals),
                "r2": (("date",), wls.r2),
                "n_obs": (("date",), np.asarray(wls.n_obs, dtype=np.int64)),
                "n_clipped": (("date",), np.asarray(wls.n_clipped, dtype=np.int64)),
                "style_exposure": (("date", "stock", "style"), exposures.styles),
                "regression_weight": (("date", "stock"), exposures.weights),
                "market_cap": (("date", "stock"), exposures.cap),
                # int8 for netCDF; a view of the bool cube (same bytes), not a (T, N, K) copy
                "imputed": (("date", "stock", "style"), np.ascontiguousarray(exposures.imputed).view(np.int8)),
            },
            coords={"date": dates, "stock": stocks, "factor": factors, "style": styles},
        )
        if exposures.industry is not None:
            ds["industry_code"] = (("date", "stock"), exposures.industry.astype(np.int32, copy=False))
            ds["industry_code"].attrs["labels"] = json.dumps(list(exposures.industry_labels))
        if factor_cov is not None:
            ds["factor_cov"] = (("date", "factor", "factor_"), factor_cov.cov)
            ds = ds.assign_coords(factor_=factors)
            ds["factor_vra"] = (("date",), factor_cov.vra)
        if specific is not None:
            ds["specific_var"] = (("date", "stock"), specific.var)
            ds["specific_vra"] = (("date",), specific.vra)
        ds.attrs["riskmodel_kind"] = MODEL_KIND
        ds.attrs["settings"] = json.dumps(jsonable_settings(settings))
        if isinstance(panel.attrs.get("short_history"), str):  # add_descriptors(short_history=True)
            ds.attrs["descriptor_short_history"] = panel.attrs["short_history"]
        return cls(dataset=ds, settings=settings)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "FittedFactorModel":
        """Rebuild a fitted model from :meth:`to_dataset` output (what :func:`riskmodel.load` does)."""
        if "industry_code" in ds and isinstance(ds["industry_code"].attrs.get("labels"), list):
            ds["industry_code"].attrs["labels"] = json.dumps(ds["industry_code"].attrs["labels"])
        return super().from_dataset(ds)

    def update(self, panel: xr.Dataset, settings: dict | None = None) -> "FittedFactorModel":
        """The model extended by the panel's new dates, computed from a carried state.

        Only the dates after the model's last one are computed (exposures, regressions,
        ``Σ_f`` and ``D``), with the fit's stages started from the state the model carries
        (:mod:`riskmodel.models.update`); the result equals a full refit on the whole
        history (see docs/guide/production.md for which arrays are bit-identical and which
        agree to about 1e-15). The first update of a model without a state rebuilds it from
        the stored arrays (about the cost of the forecast stages of a fit); the returned
        model carries it (``update_*`` variables) for the next one.

        Parameters
        ----------
        panel : Dataset (date, stock)
            The new dates (with the variables the model was fitted on); dates already in
            the model are checked against it (returns and caps) and otherwise ignored.
            Stocks not in the model are appended to its stock axis.
        settings : dict, optional
            When given, refused unless equal to the model's settings.

        Returns
        -------
        FittedFactorModel
            A new model (this one is unchanged); ``self`` when the panel has no new date.

        Raises
        ------
        HistoryMismatchError
            The panel's returns or caps differ from the stored ones on a shared date (the
            date and the stock are named).
        SettingsMismatchError
            ``settings`` differ from the model's.
        UpdateNotSupportedError
            A hybrid model (statistical factors), or an industry the model does not have.
        ModelFileError
            The stored forecasts cannot be reproduced from the stored history (another
            release wrote the model): refit it.
        """
        from riskmodel.models.update import apply_update

        return apply_update(self, panel, settings)

    # -- labelled outputs --------------------------------------------------------------

    @property
    def r2(self) -> xr.DataArray:
        """DataArray (date,): weighted cross-sectional R²."""
        return self.dataset["r2"]

    @cached_property
    def industry_labels(self) -> tuple[str, ...]:
        if "industry_code" not in self.dataset:
            return ()
        labels = self.dataset["industry_code"].attrs["labels"]
        return tuple(json.loads(labels) if isinstance(labels, str) else labels)

    def _exposure_values(self, t: int) -> np.ndarray:
        """``[market, industry dummies, styles]`` of row ``t``."""
        styles = self.dataset["style_exposure"].isel(date=t).to_numpy()
        n_stocks = styles.shape[0]
        blocks = [np.ones((n_stocks, 1))]
        if self.industry_labels:
            codes = self.dataset["industry_code"].isel(date=t).to_numpy()
            dummies = np.zeros((n_stocks, len(self.industry_labels)))
            known = codes >= 0
            dummies[np.flatnonzero(known), codes[known]] = 1.0
            dummies[~known] = np.nan
            blocks.append(dummies)
        blocks.append(styles)
        return np.concatenate(blocks, axis=1)

    def forecast_mask(self) -> np.ndarray:
        """ndarray (date, stock) bool: the stock has a complete forecast made at that date's close.

        Complete means finite exposures to every factor and a positive specific variance.
        """
        self._require_forecasts()
        ds = self.dataset
        spec = ds["specific_var"].to_numpy()
        mask = np.isfinite(spec) & (spec > 0) & np.isfinite(ds["style_exposure"].to_numpy()).all(axis=2)
        if "industry_code" in ds:
            mask &= ds["industry_code"].to_numpy() >= 0
        return mask

    def _portfolio_exposures_into(self, out, weights, valid, rows, blocks) -> None:
        """Exposures to ``[market, *industries, *styles]`` from the structured exposures
        (industry codes, style block) without forming B densely."""
        ds = self.dataset
        styles = ds["style_exposure"].to_numpy()
        codes = ds["industry_code"].to_numpy() if "industry_code" in ds else None
        n_ind = len(self.industry_labels)
        for block in blocks:
            at = rows[block]
            w_eff = weights[None, :, :] * valid[at][:, None, :]  # (c, P, N)
            out[block, :, 0] = w_eff.sum(axis=2)
            if codes is not None:
                code_block = codes[at]
                onehot = np.zeros((at.size, valid.shape[1], n_ind))
                d_idx, s_idx = np.nonzero(code_block >= 0)
                onehot[d_idx, s_idx, code_block[d_idx, s_idx]] = 1.0
                out[block, :, 1 : 1 + n_ind] = w_eff @ onehot
            out[block, :, 1 + n_ind :] = w_eff @ np.nan_to_num(styles[at], nan=0.0)

    def mimicking_portfolios(self, date: object) -> xr.DataArray:
        """Factor-mimicking portfolio weights for the regression of ``date``'s returns.

        Returns
        -------
        DataArray (factor, stock)
            Rows of ``Ω = R(RᵀXᵀVXR)⁻¹RᵀXᵀV``: ``weights @ returns(date) = factor_returns(date)``
            exactly when the model was fitted with ``return_clip=None`` (otherwise the
            identity holds on the clipped returns). Stocks outside that day's regression
            have weight 0; factors without a return that day are NaN rows.
        """
        from riskmodel.regression import mimicking_portfolios

        t = self._date_index(date)
        weights = mimicking_portfolios(
            self._exposures(),
            t,
            lag=self.settings.get("lag", FUNDAMENTAL_DEFAULTS["lag"]),
            returns_row=self.dataset["returns"].isel(date=t).to_numpy(),
            return_clip=self.settings.get("return_clip"),
            min_industry_size=self.settings.get("min_industry_size", FUNDAMENTAL_DEFAULTS["min_industry_size"]),
        )
        return xr.DataArray(
            weights,
            coords={"factor": self.dataset["factor"].to_numpy(), "stock": self.stocks},
            dims=("factor", "stock"),
            name="mimicking_weights",
            attrs={"date": str(self.dates[t].date())},
        )

    def _exposures(self):
        from riskmodel.exposures import Exposures

        ds = self.dataset
        return Exposures(
            dates=ds["date"].to_numpy(),
            stocks=ds["stock"].to_numpy(),
            style_names=tuple(str(s) for s in ds["style"].to_numpy()),
            industry_labels=self.industry_labels,
            styles=np.ascontiguousarray(ds["style_exposure"].to_numpy(), dtype=np.float64),
            industry=None if "industry_code" not in ds else np.ascontiguousarray(ds["industry_code"].to_numpy(), dtype=np.int32),
            weights=np.ascontiguousarray(ds["regression_weight"].to_numpy(), dtype=np.float64),
            cap=np.ascontiguousarray(ds["market_cap"].to_numpy(), dtype=np.float64),
            imputed=ds["imputed"].to_numpy().astype(bool),
        )

    def _forecast_factors(self, factor_cov: np.ndarray) -> np.ndarray | None:
        # a factor without a forecast (e.g. an industry too thin to have a return in the
        # window) is left out: its members are then exposed to the other factors only
        known = np.isfinite(np.diag(factor_cov))
        if not known.any() or not np.isfinite(factor_cov[np.ix_(known, known)]).all():
            return None
        return known

    # -- presentation ------------------------------------------------------------------

    def summary(self) -> str:
        """A short text report: kind, span and size, mean R², the market's and styles' volatilities."""
        r2 = self.r2.to_numpy()
        lines = [
            self._headline(
                f" (1 market, {len(self.industry_labels)} industries, {self.dataset.sizes['style']} styles)"
            ),
            f"mean R² {np.nanmean(r2):.3f}; dates fitted {int(np.isfinite(r2).sum())}",
            *self._warm_up_lines(),
            self._factor_table(["market", *[str(s) for s in self.dataset["style"].to_numpy()]]),
        ]
        return "\n".join(lines)

    def _warm_up_lines(self) -> list[str]:
        """When the forecasts start, and the descriptors still on their short start then
        (from the panel's ``short_history`` attribute, carried into the model)."""
        if "factor_cov" not in self.dataset:
            return []
        first = self._first_forecast_date()
        lines = [f"first forecast at the close of {first}"
                 + (f" ({int(np.searchsorted(self.dates, np.datetime64(first)))} dates after {self.dates[0].date()})"
                    if first != "never" else "")]
        short = self.dataset.attrs.get("descriptor_short_history")
        if isinstance(short, str):
            flagged = {name: info.get("low_confidence_until") for name, info in json.loads(short).items()}
            flagged = {name: until for name, until in flagged.items() if until}
            if flagged:
                listed = ", ".join(f"{name} until {until}" for name, until in flagged.items())
                lines.append(f"low-confidence descriptors (short start, fewer returns than their full window): {listed}")
        return lines
