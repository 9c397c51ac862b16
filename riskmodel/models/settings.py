"""The settings of the model families, declared once: the forecast settings they share and
the fundamental model's own.

The fundamental, time-series and statistical models forecast ``Σ_f`` with
:func:`~riskmodel.covariance.factor.factor_covariance` and ``D`` with
:func:`~riskmodel.covariance.specific.specific_variance`, under the same setting names
(``vol_half_life`` … ``seed``). :data:`FORECAST_SETTINGS` maps each name to the stage and
the stage's own name for it; the defaults and the checks are those the stages declare in
:mod:`riskmodel.covariance.settings`, so a model cannot accept a value its forecast stage
would refuse (an infinite ``specific_half_life``, say). :data:`FUNDAMENTAL_DEFAULTS` and
:data:`FUNDAMENTAL_PARAMETERS` add the fundamental model's own settings.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from riskmodel._params import (
    ParameterTable,
    check_parameters,
    is_bool,
    is_number,
    nonneg_int,
    pos_int,
    pos_int_or_none,
    positive_or_none,
)
from riskmodel.covariance.settings import (
    FACTOR_DEFAULTS,
    FACTOR_PARAMETERS,
    SPECIFIC_DEFAULTS,
    SPECIFIC_PARAMETERS,
)
from riskmodel.errors import InvalidParameterError

__all__ = [
    "FORECAST_SETTINGS",
    "FORECAST_KEYS",
    "FORECAST_DEFAULTS",
    "FORECAST_PARAMETERS",
    "FUNDAMENTAL_DEFAULTS",
    "FUNDAMENTAL_PARAMETERS",
    "HORIZONS",
    "CONSTRUCTION_SETTINGS",
    "apply_horizon",
    "factor_covariance_kwargs",
    "specific_variance_kwargs",
    "set_forecast_settings",
    "ForecastEstimator",
]

#: Model setting -> (stage, the stage's keyword): ``"factor"`` is
#: :func:`~riskmodel.covariance.factor.factor_covariance`, ``"specific"``
#: :func:`~riskmodel.covariance.specific.specific_variance`.
FORECAST_SETTINGS: dict[str, tuple[str, str]] = {
    "vol_half_life": ("factor", "vol_half_life"),
    "vol_lags": ("factor", "vol_lags"),
    "corr_half_life": ("factor", "corr_half_life"),
    "corr_lags": ("factor", "corr_lags"),
    "corr_standardise": ("factor", "corr_standardise"),
    "eigen_sims": ("factor", "eigen_sims"),
    "eigen_scale": ("factor", "eigen_scale"),
    "eigen_every": ("factor", "eigen_every"),
    "vra_half_life": ("factor", "vra_half_life"),
    "specific_half_life": ("specific", "half_life"),
    "specific_lags": ("specific", "lags"),
    "shrink": ("specific", "shrink"),
    "specific_vra_half_life": ("specific", "vra_half_life"),
    "blend": ("specific", "blend"),
    "seed": ("factor", "seed"),
}
_DEFAULTS = {"factor": FACTOR_DEFAULTS, "specific": SPECIFIC_DEFAULTS}
_PARAMETERS = {"factor": FACTOR_PARAMETERS, "specific": SPECIFIC_PARAMETERS}

#: The forecast settings' names, in the order the estimators list them.
FORECAST_KEYS: tuple[str, ...] = tuple(FORECAST_SETTINGS)
#: Their defaults: the stages' defaults.
FORECAST_DEFAULTS: dict[str, Any] = {name: _DEFAULTS[stage][key] for name, (stage, key) in FORECAST_SETTINGS.items()}
#: Their checks: the stages' checks.
FORECAST_PARAMETERS: ParameterTable = {
    name: _PARAMETERS[stage][key] for name, (stage, key) in FORECAST_SETTINGS.items()
}


_FORECASTS = {name: check for name, check in FORECAST_PARAMETERS.items() if name != "seed"}

#: Barra's two horizons (METHODS §5, USE4S / USE4L): the half-lives each one sets. The
#: short horizon is the stages' defaults; Newey–West lags, shrinkage and the eigenfactor
#: adjustment are the same in both. An explicit setting overrides its horizon's value.
HORIZONS: dict[str, dict[str, float]] = {
    "short": {
        "vol_half_life": FORECAST_DEFAULTS["vol_half_life"],
        "corr_half_life": FORECAST_DEFAULTS["corr_half_life"],
        "vra_half_life": FORECAST_DEFAULTS["vra_half_life"],
        "specific_half_life": FORECAST_DEFAULTS["specific_half_life"],
        "specific_vra_half_life": FORECAST_DEFAULTS["specific_vra_half_life"],
    },
    "long": {
        "vol_half_life": 252,
        "corr_half_life": 504,
        "vra_half_life": 168,
        "specific_half_life": 252,
        "specific_vra_half_life": 168,
    },
}


#: The named setting for portfolio construction, :meth:`FactorRiskModel.for_construction
#: <riskmodel.FactorRiskModel.for_construction>`: the hybrid with ten statistical factors of
#: the residuals, no eigenfactor adjustment, correlations of volatility-standardised factor
#: returns, and the faster volatility (42) and regime (21) half-lives. Chosen by the
#: construction study on the S&P 500 data 2009-2016 (``docs/guide/construction.md``, which
#: reports every variant tried): its minimum-variance portfolios realise less than
#: Ledoit-Wolf's whether the fit starts in 2007 or 2009, and its random and optimised
#: portfolios' bias is inside the 95 % band.
CONSTRUCTION_SETTINGS: dict[str, Any] = {
    "statistical_factors": 10,
    "eigen_sims": 0,
    "corr_standardise": True,
    "vol_half_life": 42,
    "vra_half_life": 21,
    "specific_vra_half_life": 21,
}


def _is_horizon(value: Any) -> bool:
    return isinstance(value, str) and value in HORIZONS


def apply_horizon(settings: Mapping[str, Any], explicit: set[str] | frozenset[str]) -> dict[str, Any]:
    """``settings`` with the half-lives of ``settings["horizon"]`` for each one not in
    ``explicit`` (the settings the caller gave).

    Raises
    ------
    InvalidParameterError
        An unknown horizon.
    """
    horizon = settings.get("horizon", "short")
    if not _is_horizon(horizon):
        raise InvalidParameterError(f"horizon={horizon!r} is invalid; expected one of {', '.join(map(repr, HORIZONS))}")
    return {**settings, **{name: value for name, value in HORIZONS[horizon].items() if name not in explicit}}


#: Every numeric setting's check of :class:`riskmodel.FactorRiskModel`, by name, in the
#: order of its signature (the forecast settings' are the stages').
FUNDAMENTAL_PARAMETERS: ParameterTable = {
    "lag": (pos_int, "an integer >= 1"),
    "return_clip": (positive_or_none, "a positive number of robust sigmas, or None"),
    "min_industry_size": (pos_int, "an integer >= 1"),
    "winsor": (lambda v: is_number(v) and v > 0, "a positive number of sigmas"),
    "impute": (is_bool, "True or False"),
    "horizon": (_is_horizon, "'short' (USE4S, the default) or 'long' (USE4L)"),
    **_FORECASTS,
    "min_history": (pos_int_or_none, "None (the stages' defaults) or a number of dates >= 1"),
    "covariance": (is_bool, "True or False"),
    "statistical_factors": (nonneg_int, "an integer >= 0"),
    "seed": FORECAST_PARAMETERS["seed"],
}

#: Every setting's default of :class:`riskmodel.FactorRiskModel` (its signature reads them).
FUNDAMENTAL_DEFAULTS: dict[str, Any] = {
    "styles": None,
    "fixed_styles": None,
    "industry": "industry",
    "cap": "market_cap",
    "lag": 1,
    "return_clip": 5.0,
    "min_industry_size": 5,
    "winsor": 3.0,
    "impute": True,
    "horizon": "short",
    **{name: FORECAST_DEFAULTS[name] for name in _FORECASTS},
    "min_history": None,
    "covariance": True,
    "statistical_factors": 0,
    "seed": FORECAST_DEFAULTS["seed"],
}



def _stage_kwargs(stage: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: settings[name] for name, (where, key) in FORECAST_SETTINGS.items() if where == stage}


def factor_covariance_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`~riskmodel.covariance.factor.factor_covariance` from a model's settings.

    A ``min_history`` setting (the fundamental model's warm-up) becomes the stage's
    ``min_periods``: the dates of factor returns before the first forecast.
    """
    kwargs = _stage_kwargs("factor", settings)
    if settings.get("min_history") is not None:
        kwargs["min_periods"] = int(settings["min_history"])
    return kwargs


def specific_variance_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`~riskmodel.covariance.specific.specific_variance` from a model's settings."""
    return _stage_kwargs("specific", settings)


def set_forecast_settings(estimator: Any, owner: str, own: str, forecast_settings: Mapping[str, Any]) -> None:
    """Store the forecast settings on ``estimator`` (defaults filled in).

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


class ForecastEstimator:
    """Base of the estimators that take the forecast settings as keywords (time-series and
    statistical models): their own settings, then :data:`FORECAST_KEYS`.

    A subclass declares :attr:`PARAMETERS` (its own settings' checks, then
    :data:`FORECAST_PARAMETERS`) and :attr:`REPR` (the settings its repr shows), and its
    ``__init__`` calls :meth:`_set_params`, which does no work beyond storing and checking.
    """

    #: ``{name: (check, expected)}`` of every setting but ``cap`` and ``progress``.
    PARAMETERS: ClassVar[ParameterTable] = FORECAST_PARAMETERS
    #: The settings the repr shows.
    REPR: ClassVar[tuple[str, ...]] = ()

    def _set_params(self, own: Mapping[str, Any], forecast_settings: Mapping[str, Any]) -> None:
        """Store ``own`` (in signature order) and the forecast settings; check them all."""
        set_forecast_settings(self, type(self).__name__, ", ".join(own), forecast_settings)
        for name, value in own.items():
            setattr(self, name, value)
        self.checked_params()

    def get_params(self) -> dict[str, Any]:
        """The settings as a dict (without ``progress``)."""
        return {name: getattr(self, name) for name in ("cap", *self.PARAMETERS)}

    def checked_params(self) -> dict[str, Any]:
        """:meth:`get_params`, each setting checked against its declared range.

        Raises
        ------
        InvalidParameterError
            Naming the first setting out of range.
        """
        settings = self.get_params()
        check_parameters(type(self).__name__, self.PARAMETERS, settings)
        return settings

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.REPR)
        return f"{type(self).__name__}({shown})"
