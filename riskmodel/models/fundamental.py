"""The fundamental factor risk model: estimator and fitted result.

``FactorRiskModel(...).fit(panel)`` runs the pipeline of DESIGN.md — exposures
(clean, impute), the daily cross-sectional WLS (factor returns, residuals), the factor
covariance forecasts and the specific-variance forecasts — and returns a
:class:`FittedFactorModel` that holds every date's outputs, so backtests need no refit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._params import (
    ParameterTable,
    StageProgress,
    check_parameters,
    half_life,
    jsonable_settings,
    nonneg_int,
    pos_int,
    positive_or_none,
)
from riskmodel.errors import InvalidParameterError, MissingVariableError, PanelError, warns_at_caller
from riskmodel.models.fitted import FittedModel

__all__ = ["FactorRiskModel", "FittedFactorModel"]

MODEL_KIND = "fitted_factor_model"


# ---------------------------------------------------------------------------------------
# parameter declarations (checked once, by name)
# ---------------------------------------------------------------------------------------


#: Every setting's check, by name (the forecast settings are shared with the time-series
#: and statistical models).
PARAMETERS: ParameterTable = {
    "lag": (pos_int, "an integer >= 1"),
    "return_clip": (positive_or_none, "a positive number of robust sigmas, or None"),
    "min_industry_size": (pos_int, "an integer >= 1"),
    "winsor": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number of sigmas"),
    "impute": (lambda v: isinstance(v, bool), "True or False"),
    "vol_half_life": (half_life, "a positive number of days (inf for equal weights)"),
    "vol_lags": (nonneg_int, "an integer >= 0"),
    "corr_half_life": (half_life, "a positive number of days (inf for equal weights)"),
    "corr_lags": (nonneg_int, "an integer >= 0"),
    "eigen_sims": (nonneg_int, "an integer >= 0 (0 disables the eigenfactor adjustment)"),
    "eigen_scale": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
    "eigen_every": (pos_int, "an integer >= 1"),
    "vra_half_life": (positive_or_none, "a positive number of days, or None to disable"),
    "specific_half_life": (half_life, "a positive number of days"),
    "specific_lags": (nonneg_int, "an integer >= 0"),
    "shrink": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0 (0 disables)"),
    "specific_vra_half_life": (positive_or_none, "a positive number of days, or None to disable"),
    "blend": (lambda v: isinstance(v, bool), "True or False"),
    "covariance": (lambda v: isinstance(v, bool), "True or False"),
    "statistical_factors": (nonneg_int, "an integer >= 0"),
    "seed": (nonneg_int, "an integer >= 0"),
}


def check_model_settings(settings: dict[str, Any]) -> None:
    """Check FactorRiskModel's settings (each against its declared range, then the names)."""
    check_parameters("FactorRiskModel", PARAMETERS, settings)
    styles = settings["styles"]
    if styles is not None and (isinstance(styles, str) or not all(isinstance(s, str) for s in styles)):
        raise InvalidParameterError(f"FactorRiskModel: styles must be a list of variable names, got {styles!r}")
    if settings["industry"] is not None and not isinstance(settings["industry"], str):
        raise InvalidParameterError(f"FactorRiskModel: industry must be a variable name or None, got {settings['industry']!r}")


class FactorRiskModel:
    """Fundamental (characteristics-based) factor risk model ``Σ = B Σ_f Bᵀ + D``.

    Parameters
    ----------
    styles : list of str, optional
        Style characteristics (panel variables) to clean and use as exposures; default
        ``panel.attrs["styles"]``.
    fixed_styles : list of str, optional
        Exposure variables used as given, without cleaning (e.g. a 0/1 membership of a
        cluster found by the audit, or loadings of a statistical factor). NaN = unknown.
    industry : str or None
        Panel variable with industry labels; ``None``: no industry factors.
    cap : str
        Market-cap variable (√cap regression weights, cap-weighted centring and constraint).
    lag : int
        Exposures known at the close of day ``t − lag`` explain the returns of day ``t``.
    return_clip : float or None
        Robust clip of returns for the fit only (median ± c·1.4826·MAD); ``None``: no
        clipping, so factor returns are exactly mimicking-portfolio returns.
    min_industry_size : int
        Industries with fewer members on a date have no factor return that day.
    winsor, impute :
        Cleaning of the styles (METHODS §1).
    vol_half_life, vol_lags, corr_half_life, corr_lags :
        EWMA half-lives and Newey–West lags of factor volatilities and correlations.
    eigen_sims, eigen_scale, eigen_every :
        Eigenfactor risk adjustment: simulations, scale ``a`` and schedule (days); see
        :func:`riskmodel.factor_covariance` for why the defaults (100 draws, quarterly)
        are lighter than USE4's (1,000, monthly).
    vra_half_life : float or None
        Factor volatility regime adjustment half-life.
    specific_half_life, specific_lags, shrink, specific_vra_half_life, blend :
        Specific-risk settings (METHODS §4).
    covariance : bool
        ``False`` stops after the factor returns (no forecasts).
    statistical_factors : int
        Hybrid model: add this many statistical factors extracted by a rolling PCA of the
        fundamental model's residuals (see :func:`riskmodel.models.statistical.hybrid_model`, which
        says when it helps). ``0``: the plain fundamental model.
    progress : bool or None
        Progress bar; ``None``: when stderr is a terminal.
    seed : int
        Seed of the eigenfactor Monte Carlo.

    Examples
    --------
    >>> import riskmodel as rm
    >>> panel = rm.simulate(n_stocks=200, n_days=300, seed=0)
    >>> fit = rm.FactorRiskModel(covariance=False).fit(panel)
    >>> fit.factor_returns.dims
    ('date', 'factor')
    """

    def __init__(
        self,
        *,
        styles: list[str] | None = None,
        fixed_styles: list[str] | None = None,
        industry: str | None = "industry",
        cap: str = "market_cap",
        lag: int = 1,
        return_clip: float | None = 5.0,
        min_industry_size: int = 5,
        winsor: float = 3.0,
        impute: bool = True,
        vol_half_life: float = 84,
        vol_lags: int = 5,
        corr_half_life: float = 504,
        corr_lags: int = 2,
        eigen_sims: int = 100,
        eigen_scale: float = 1.0,
        eigen_every: int = 63,
        vra_half_life: float | None = 42,
        specific_half_life: float = 84,
        specific_lags: int = 5,
        shrink: float = 0.1,
        specific_vra_half_life: float | None = 42,
        blend: bool = True,
        covariance: bool = True,
        statistical_factors: int = 0,
        progress: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.styles = None if styles is None else list(styles)
        self.fixed_styles = [] if fixed_styles is None else list(fixed_styles)
        self.industry = industry
        self.cap = cap
        self.lag = lag
        self.return_clip = return_clip
        self.min_industry_size = min_industry_size
        self.winsor = winsor
        self.impute = impute
        self.vol_half_life = vol_half_life
        self.vol_lags = vol_lags
        self.corr_half_life = corr_half_life
        self.corr_lags = corr_lags
        self.eigen_sims = eigen_sims
        self.eigen_scale = eigen_scale
        self.eigen_every = eigen_every
        self.vra_half_life = vra_half_life
        self.specific_half_life = specific_half_life
        self.specific_lags = specific_lags
        self.shrink = shrink
        self.specific_vra_half_life = specific_vra_half_life
        self.blend = blend
        self.covariance = covariance
        self.statistical_factors = statistical_factors
        self.progress = progress
        self.seed = seed
        check_model_settings(self.get_params())

    def get_params(self) -> dict[str, Any]:
        """The settings as a dict (without ``progress``)."""
        return {name: getattr(self, name) for name in ("styles", "fixed_styles", "industry", "cap", *PARAMETERS)}

    def __repr__(self) -> str:
        return f"FactorRiskModel(styles={self.styles!r}, industry={self.industry!r}, lag={self.lag})"

    @warns_at_caller
    def fit(self, panel: xr.Dataset, *, store: str | None = None) -> "FittedFactorModel":
        """Fit the model on a panel.

        Parameters
        ----------
        panel : Dataset (date, stock)
            With ``returns``, the cap variable, the styles and (optionally) industry. A
            dask-backed panel (e.g. ``rm.load("panel.zarr", chunks={"date": 250})``) is
            fitted chunk by chunk along ``date`` (:func:`riskmodel.models.chunked.fit_chunked`), on
            the active dask scheduler (a ``dask.distributed`` Client if one is running),
            with results equal to the in-memory fit.
        store : str, optional
            A ``.zarr`` path: the (date, stock) outputs are written there incrementally
            (atomically: a failed run leaves an existing store intact) and the fitted model
            returned is backed by it, so nothing of size dates × stocks must fit in memory.

        Returns
        -------
        FittedFactorModel

        Raises
        ------
        PanelError
            For a malformed panel (see :func:`riskmodel.validate_panel`).
        """
        from riskmodel.exposures import build_exposures
        from riskmodel.regression import factor_returns

        settings = self.get_params()
        check_model_settings(settings)
        dask_backed = any(v.chunks is not None for v in panel.variables.values())
        if store is not None or dask_backed:  # the chunked path needs the 'dask' extra
            from riskmodel.models.chunked import fit_chunked

            return fit_chunked(self, panel, store=store)
        if self.statistical_factors:
            from riskmodel.models.statistical import hybrid_model

            k = settings.pop("statistical_factors")
            return hybrid_model(panel, k, progress=self.progress, **settings)
        styles = list(panel.attrs.get("styles", [])) if self.styles is None else list(self.styles)
        for name in [*styles, *self.fixed_styles, self.cap, *([self.industry] if self.industry else [])]:
            if name not in panel:
                raise MissingVariableError(
                    f"panel has no variable {name!r} (has {sorted(map(str, panel.data_vars))}); "
                    "pass styles=[...], industry=... and cap=... naming panel variables"
                )
        settings["styles"] = styles
        stages = ["exposures", "regression"] + (["factor covariance", "specific risk"] if self.covariance else [])
        with StageProgress(stages, self.progress) as progress:
            exposures = build_exposures(
                panel, styles, industry=self.industry, cap=self.cap, winsor=self.winsor, impute=self.impute
            )
            if self.fixed_styles:
                exposures = with_fixed_styles(exposures, panel, self.fixed_styles)
            progress.advance()
            returns = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
            wls = factor_returns(
                returns,
                exposures,
                lag=self.lag,
                return_clip=self.return_clip,
                min_industry_size=self.min_industry_size,
            )
            progress.advance()
            factor_cov = specific = None
            if self.covariance:
                from riskmodel.covariance.factor import factor_covariance
                from riskmodel.covariance.specific import specific_variance

                factor_cov = factor_covariance(wls.factor_returns, **factor_covariance_kwargs(settings))
                progress.advance()
                specific = specific_variance(wls.residuals, exposures, **specific_variance_kwargs(settings))
                progress.advance()
        return FittedFactorModel._from_parts(panel, exposures, wls, factor_cov, specific, settings)


# The helpers below are shared with riskmodel.models.chunked (the chunked fit runs the same stages
# with the same settings) and riskmodel.models.timeseries (the same forecasts on other factors);
# they are not part of the public API.


def factor_covariance_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`~riskmodel.covariance.factor.factor_covariance` from an estimator's
    settings (named as :class:`FactorRiskModel`'s)."""
    return {
        "vol_half_life": settings["vol_half_life"],
        "vol_lags": settings["vol_lags"],
        "corr_half_life": settings["corr_half_life"],
        "corr_lags": settings["corr_lags"],
        "eigen_sims": settings["eigen_sims"],
        "eigen_scale": settings["eigen_scale"],
        "eigen_every": settings["eigen_every"],
        "vra_half_life": settings["vra_half_life"],
        "seed": settings["seed"],
    }


def specific_variance_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`~riskmodel.covariance.specific.specific_variance` from an
    estimator's settings (named as :class:`FactorRiskModel`'s)."""
    return {
        "half_life": settings["specific_half_life"],
        "lags": settings["specific_lags"],
        "blend": settings["blend"],
        "shrink": settings["shrink"],
        "vra_half_life": settings["specific_vra_half_life"],
    }


def with_fixed_styles(exposures, panel: xr.Dataset, names: list[str]):
    """Append exposure variables used as given (no cleaning) to the style block."""
    from dataclasses import replace

    extra = np.stack([panel[name].transpose("date", "stock").to_numpy().astype(np.float64) for name in names], axis=2)
    return replace(
        exposures,
        style_names=(*exposures.style_names, *names),
        styles=np.ascontiguousarray(np.concatenate([exposures.styles, extra], axis=2)),
        imputed=np.concatenate([exposures.imputed, np.zeros(extra.shape, dtype=bool)], axis=2),
    )


# ---------------------------------------------------------------------------------------
# fitted model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
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

    MODEL_KIND: ClassVar[str] = MODEL_KIND
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
        return cls(dataset=ds, settings=settings)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "FittedFactorModel":
        """Rebuild a fitted model from :meth:`to_dataset` output (what :func:`riskmodel.load` does)."""
        if "industry_code" in ds and isinstance(ds["industry_code"].attrs.get("labels"), list):
            ds["industry_code"].attrs["labels"] = json.dumps(ds["industry_code"].attrs["labels"])
        return super().from_dataset(ds)

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

    def exposure_matrix(self, date: object | None = None) -> xr.DataArray:
        """Dense exposures B (stock, factor) at the close of ``date`` (one date only).

        Rows of stocks without a complete exposure that day are NaN.
        """
        t = self._date_index(date)
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
        matrix = np.concatenate(blocks, axis=1)
        return xr.DataArray(
            matrix,
            coords={"stock": self.stocks, "factor": self.dataset["factor"].to_numpy()},
            dims=("stock", "factor"),
            name="exposures",
        )

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
            Exposures to ``[market, *industries, *styles]`` at the close of each requested
            date, from the structured exposures (industry codes, style block) without
            forming B densely.
        """
        ds = self.dataset
        rows = np.arange(valid.shape[0]) if rows is None else np.asarray(rows)
        styles = ds["style_exposure"].to_numpy()
        codes = ds["industry_code"].to_numpy() if "industry_code" in ds else None
        n_ind = len(self.industry_labels)
        out = np.empty((rows.size, weights.shape[0], 1 + n_ind + styles.shape[2]))
        for start in range(0, rows.size, chunk):
            block = slice(start, min(start + chunk, rows.size))
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
        return out

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
            lag=self.settings.get("lag", 1),
            returns_row=self.dataset["returns"].isel(date=t).to_numpy(),
            return_clip=self.settings.get("return_clip"),
            min_industry_size=self.settings.get("min_industry_size", 5),
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

    def covariance(self, date: object | None = None):
        """The risk model forecast made at the close of ``date`` (default: the last date).

        Returns
        -------
        StructuredCovariance
            For the day after ``date``, over the stocks with a complete forecast
            (exposures and specific variance) that day.
        """
        from riskmodel.covariance.structured import StructuredCovariance

        self._require_forecasts()
        t = self._date_index(date)
        exposures = self.exposure_matrix(self.dates[t])
        factor_cov = self.dataset["factor_cov"].isel(date=t)
        specific = self.dataset["specific_var"].isel(date=t)
        # a factor without a forecast (e.g. an industry too thin to have a return in the
        # window) is left out: its members are then exposed to the other factors only
        known = np.isfinite(np.diag(factor_cov.to_numpy()))
        if not known.any() or not np.isfinite(factor_cov.to_numpy()[np.ix_(known, known)]).all():
            raise PanelError(
                f"no factor covariance forecast on {self.dates[t].date()}: too little history before it "
                f"(first forecast on {self._first_forecast_date()})"
            )
        factor_cov = factor_cov.isel(factor=known, factor_=known)
        exposures = exposures.isel(factor=known)
        complete = np.isfinite(exposures.to_numpy()).all(axis=1) & np.isfinite(specific.to_numpy())
        complete &= specific.to_numpy() > 0
        return StructuredCovariance(
            exposures.isel(stock=complete),
            factor_cov,
            specific.isel(stock=complete),
            date=self.dates[t],
        )

    # -- presentation ------------------------------------------------------------------

    def summary(self) -> str:
        """A short text report: span, factors, R², factor volatilities."""
        fr = self.factor_returns.to_pandas()
        r2 = self.r2.to_numpy()
        lines = [
            f"FittedFactorModel: {len(self.dates)} dates ({self.dates[0].date()}..{self.dates[-1].date()}), "
            f"{len(self.stocks)} stocks, {len(self.factors)} factors "
            f"(1 market, {len(self.industry_labels)} industries, {self.dataset.sizes['style']} styles)",
            f"mean R² {np.nanmean(r2):.3f}; dates fitted {int(np.isfinite(r2).sum())}",
        ]
        vol = fr.std() * np.sqrt(252)
        tstat = fr.mean() / fr.std() * np.sqrt(fr.count())
        table = pd.DataFrame({"ann. vol": vol, "t(mean)": tstat}).loc[
            ["market", *[str(s) for s in self.dataset["style"].to_numpy()]]
        ]
        lines.append(table.to_string(float_format=lambda v: f"{v:.3f}"))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary().splitlines()[0]
