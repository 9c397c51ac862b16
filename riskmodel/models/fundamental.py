"""The fundamental factor risk model: the estimator.

``FactorRiskModel(...).fit(panel)`` runs the pipeline of DESIGN.md — exposures
(clean, impute), the daily cross-sectional WLS (factor returns, residuals), the factor
covariance forecasts and the specific-variance forecasts — and returns a
:class:`FittedFactorModel` that holds every date's outputs, so backtests need no refit.

The estimator stores its settings and dispatches: a dask-backed panel (or a ``store``) goes
to the out-of-core fit (:func:`riskmodel.models.chunked.fit_chunked`), ``statistical_factors``
to the hybrid (:func:`riskmodel.models.hybrid.hybrid_model`), anything else to the
in-memory pipeline :func:`~riskmodel.models.pipeline.fit_fundamental`, which the other two
call in turn. The defaults and checks of the settings are declared in
:mod:`riskmodel.models.pipeline` (:data:`~riskmodel.models.pipeline.MODEL_DEFAULTS`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import xarray as xr

from riskmodel.errors import warns_at_caller
from riskmodel.models.fitted_factor import MODEL_KIND, FittedFactorModel
from riskmodel.models.loadings import require_dataset
from riskmodel.models.settings import CONSTRUCTION_SETTINGS
from riskmodel.models.pipeline import (
    MODEL_DEFAULTS,
    PARAMETERS,
    apply_horizon,
    check_model_settings,
    check_name_list,
    fit_fundamental,
)

__all__ = ["FactorRiskModel", "FittedFactorModel", "fit_fundamental", "MODEL_KIND"]

_D = MODEL_DEFAULTS


def _records_given_settings(init: Callable[..., None]) -> Callable[..., None]:
    """Keep the names of the settings the caller gave (``horizon`` fills in the others)."""

    @functools.wraps(init)  # the signature stays init's (help, inspect, the CLI's --set)
    def wrapper(self: "FactorRiskModel", **settings: Any) -> None:
        self._given = frozenset(settings)
        init(self, **settings)

    return wrapper


class FactorRiskModel:
    """Fundamental (characteristics-based) factor risk model ``Σ = B Σ_f Bᵀ + D``.

    Parameters
    ----------
    styles : list of str, optional
        Style characteristics (panel variables) to clean and use as exposures; default
        ``panel.attrs["styles"]``. A single name is given as a list (``["size"]``); a bare
        ``str`` is refused with :class:`~riskmodel.errors.InvalidParameterError`.
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
    horizon : {"short", "long"}
        Barra's two horizons (METHODS §5). ``"short"`` (USE4S, the default): factor vol
        half-life 84 days, VRA 42, specific half-life 84, specific VRA 42 — forecasts for
        the next days to weeks, quick to follow a change of regime (daily risk, trading).
        ``"long"`` (USE4L): 252, 168, 252, 168 — steadier forecasts for months ahead
        (strategic allocation, slow rebalancing), slower after a spike. The correlation
        half-life (504) and the Newey–West lags are the same in both. A half-life given
        explicitly overrides its horizon's value
        (:data:`riskmodel.models.settings.HORIZONS`).
    vol_half_life, vol_lags, corr_half_life, corr_lags :
        EWMA half-lives and Newey–West lags of factor volatilities and correlations.
    corr_standardise : bool
        Correlations from factor returns standardised by their own volatility of the day
        before, so that a volatile spell does not dominate them (see
        :func:`riskmodel.factor_covariance`); part of :meth:`for_construction`.
    eigen_sims, eigen_scale, eigen_every :
        Eigenfactor risk adjustment: simulations, scale ``a`` and schedule (days); see
        :func:`riskmodel.factor_covariance` for why the defaults (100 draws, quarterly)
        are lighter than USE4's (1,000, monthly).
    vra_half_life : float or None
        Factor volatility regime adjustment half-life.
    specific_half_life, specific_lags, shrink, specific_vra_half_life, blend :
        Specific-risk settings (METHODS §4).
    min_history : int or None
        The forecasts' warm-up: dates of factor returns before the first forecast. ``None``
        (the default): the factor covariance needs ``max(3 × factors, 42)`` dates. A number
        sets the factor covariance's ``min_periods`` (the specific risk starts from the
        first fitted date with its structural model either way). A short warm-up gives a
        user with a few years of data forecasts sooner, at the price of noisier first
        forecasts (measured in ``benchmarks/results/short_history.json``); ``riskmodel
        fit --min-history N``.
    covariance : bool
        ``False`` stops after the factor returns (no forecasts).
    statistical_factors : int
        Hybrid model: add this many statistical factors extracted by a rolling PCA of the
        fundamental model's residuals (see :func:`riskmodel.models.hybrid.hybrid_model`, which
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

    @_records_given_settings
    def __init__(
        self,
        *,
        styles: list[str] | None = _D["styles"],
        fixed_styles: list[str] | None = _D["fixed_styles"],
        industry: str | None = _D["industry"],
        cap: str = _D["cap"],
        lag: int = _D["lag"],
        return_clip: float | None = _D["return_clip"],
        min_industry_size: int = _D["min_industry_size"],
        winsor: float = _D["winsor"],
        impute: bool = _D["impute"],
        horizon: str = _D["horizon"],
        vol_half_life: float = _D["vol_half_life"],
        vol_lags: int = _D["vol_lags"],
        corr_half_life: float = _D["corr_half_life"],
        corr_lags: int = _D["corr_lags"],
        corr_standardise: bool = _D["corr_standardise"],
        eigen_sims: int = _D["eigen_sims"],
        eigen_scale: float = _D["eigen_scale"],
        eigen_every: int = _D["eigen_every"],
        vra_half_life: float | None = _D["vra_half_life"],
        specific_half_life: float = _D["specific_half_life"],
        specific_lags: int = _D["specific_lags"],
        shrink: float = _D["shrink"],
        specific_vra_half_life: float | None = _D["specific_vra_half_life"],
        blend: bool = _D["blend"],
        min_history: int | None = _D["min_history"],
        covariance: bool = _D["covariance"],
        statistical_factors: int = _D["statistical_factors"],
        progress: bool | None = None,
        seed: int = _D["seed"],
    ) -> None:
        check_name_list("FactorRiskModel", "styles", styles)
        check_name_list("FactorRiskModel", "fixed_styles", fixed_styles)
        self.styles = None if styles is None else list(styles)
        self.fixed_styles = [] if fixed_styles is None else list(fixed_styles)
        self.industry = industry
        self.cap = cap
        self.lag = lag
        self.return_clip = return_clip
        self.min_industry_size = min_industry_size
        self.winsor = winsor
        self.impute = impute
        self.horizon = horizon
        self.vol_half_life = vol_half_life
        self.vol_lags = vol_lags
        self.corr_half_life = corr_half_life
        self.corr_lags = corr_lags
        self.corr_standardise = corr_standardise
        self.eigen_sims = eigen_sims
        self.eigen_scale = eigen_scale
        self.eigen_every = eigen_every
        self.vra_half_life = vra_half_life
        self.specific_half_life = specific_half_life
        self.specific_lags = specific_lags
        self.shrink = shrink
        self.specific_vra_half_life = specific_vra_half_life
        self.blend = blend
        self.min_history = min_history
        self.covariance = covariance
        self.statistical_factors = statistical_factors
        self.progress = progress
        self.seed = seed
        for name, value in apply_horizon(self.get_params(), getattr(self, "_given", frozenset())).items():
            setattr(self, name, value)
        check_model_settings(self.get_params())

    def get_params(self) -> dict[str, Any]:
        """The settings as a dict (without ``progress``)."""
        return {name: getattr(self, name) for name in ("styles", "fixed_styles", "industry", "cap", *PARAMETERS)}

    def __repr__(self) -> str:
        return f"FactorRiskModel(styles={self.styles!r}, industry={self.industry!r}, lag={self.lag})"

    @classmethod
    def for_construction(cls, **settings: Any) -> "FactorRiskModel":
        """The model recommended as an optimiser's input (a named setting).

        :data:`~riskmodel.models.settings.CONSTRUCTION_SETTINGS` — ten statistical factors
        of the residuals (the hybrid), no eigenfactor adjustment, correlations of
        volatility-standardised factor returns (``corr_standardise``), volatility
        half-life 42, VRA half-lives 21 — under ``settings``, which override it
        (``styles``, ``industry``, or any of those). Why these: the construction study in
        ``docs/guide/construction.md`` (minimum-variance portfolios on the S&P 500 data,
        every variant tried and its result).

        Examples
        --------
        >>> import riskmodel as rm
        >>> model = rm.FactorRiskModel.for_construction(styles=["size", "beta"])
        >>> model.statistical_factors, model.eigen_sims, model.styles
        (10, 0, ['size', 'beta'])
        """
        return cls(**{**CONSTRUCTION_SETTINGS, **settings})

    @warns_at_caller
    def fit(self, panel: xr.Dataset, *, store: str | None = None) -> FittedFactorModel:
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
        DimensionError
            ``panel`` is not an :class:`xarray.Dataset` (build one with
            :func:`riskmodel.panel_from_long`).
        InsufficientDataError
            The fit could produce no usable forecast (see
            :func:`~riskmodel.models.pipeline.fit_fundamental`), or ``statistical_factors``
            is not below the number of stocks.
        PanelError
            For a malformed panel (see :func:`riskmodel.validate_panel`).
        """
        settings = self.get_params()
        check_model_settings(settings)
        require_dataset(panel, "FactorRiskModel.fit")
        dask_backed = any(v.chunks is not None for v in panel.variables.values())
        if store is not None or dask_backed:  # the chunked path needs the 'dask' extra
            from riskmodel.models.chunked import fit_chunked

            return fit_chunked(self, panel, store=store)
        if self.statistical_factors:
            from riskmodel.models.hybrid import hybrid_model

            k = settings.pop("statistical_factors")
            return hybrid_model(panel, k, progress=self.progress, **settings)
        return fit_fundamental(panel, settings, progress=self.progress)
