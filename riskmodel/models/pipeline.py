"""The fundamental model's pipeline as a function, below the estimator that dispatches to it.

:func:`fit_fundamental` runs the pipeline of DESIGN.md on an in-memory panel — exposures
(clean, impute), the daily cross-sectional WLS (factor returns, residuals), the factor
covariance forecasts and the specific-variance forecasts — and returns a
:class:`~riskmodel.models.fitted_factor.FittedFactorModel`.
:class:`riskmodel.FactorRiskModel` (in :mod:`riskmodel.models.fundamental`, one floor up)
stores the settings and sends a panel here, to the hybrid model
(:mod:`riskmodel.models.hybrid`) or to the out-of-core fit (:mod:`riskmodel.models.chunked`);
those two call this module's functions, never the estimator, as scikit-learn's
``LedoitWolf`` calls ``ledoit_wolf``.

The settings are declared once, in :mod:`riskmodel.models.settings`:
:data:`MODEL_DEFAULTS` (the estimator's signature reads it) and :data:`PARAMETERS` (their
checks), re-exported here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import xarray as xr

from riskmodel._params import StageProgress, check_parameters
from riskmodel.errors import InvalidParameterError, MissingVariableError
from riskmodel.models.fitted_factor import FittedFactorModel
from riskmodel.models.settings import (
    FUNDAMENTAL_DEFAULTS as MODEL_DEFAULTS,
    FUNDAMENTAL_PARAMETERS as PARAMETERS,
    factor_covariance_kwargs,
    specific_variance_kwargs,
)

__all__ = [
    "fit_fundamental",
    "MODEL_DEFAULTS",
    "PARAMETERS",
    "model_settings",
    "check_model_settings",
    "model_variables",
    "fundamental_exposures",
    "fundamental_regression",
    "with_fixed_styles",
]

def check_model_settings(settings: Mapping[str, Any]) -> None:
    """Check FactorRiskModel's settings (each against its declared range, then the names)."""
    check_parameters("FactorRiskModel", PARAMETERS, settings)
    styles = settings["styles"]
    if styles is not None and (isinstance(styles, str) or not all(isinstance(s, str) for s in styles)):
        raise InvalidParameterError(f"FactorRiskModel: styles must be a list of variable names, got {styles!r}")
    if settings["industry"] is not None and not isinstance(settings["industry"], str):
        raise InvalidParameterError(f"FactorRiskModel: industry must be a variable name or None, got {settings['industry']!r}")


def model_settings(owner: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """FactorRiskModel's settings from keywords: defaults filled in, lists copied, checked.

    Raises
    ------
    TypeError
        An unknown keyword (as a call of ``FactorRiskModel(...)`` with it would).
    InvalidParameterError
        A setting out of its declared range.
    """
    unknown = sorted(set(settings) - set(MODEL_DEFAULTS))
    if unknown:
        raise TypeError(f"{owner}() got unexpected keyword argument(s) {unknown}; FactorRiskModel settings are "
                        f"{', '.join(MODEL_DEFAULTS)}")
    out = {**MODEL_DEFAULTS, **settings}
    out["styles"] = None if out["styles"] is None else list(out["styles"])
    out["fixed_styles"] = [] if out["fixed_styles"] is None else list(out["fixed_styles"])
    check_model_settings(out)
    return out


def model_variables(
    panel: xr.Dataset, settings: Mapping[str, Any], *, first: tuple[str, ...] = (), data_vars_only: bool = False
) -> list[str]:
    """The styles to clean (``settings["styles"]``, default ``panel.attrs["styles"]``), after
    checking that the panel has every variable the settings name (``first`` ones first;
    with ``data_vars_only`` a coordinate of that name does not count).

    Raises
    ------
    MissingVariableError
        Naming the first variable the panel lacks.
    """
    styles = list(panel.attrs.get("styles", [])) if settings["styles"] is None else list(settings["styles"])
    industry = [settings["industry"]] if settings["industry"] else []
    present = panel.data_vars if data_vars_only else panel
    for name in [*first, *styles, *settings["fixed_styles"], settings["cap"], *industry]:
        if name not in present:
            raise MissingVariableError(
                f"panel has no variable {name!r} (has {sorted(map(str, panel.data_vars))}); "
                "pass styles=[...], industry=... and cap=... naming panel variables"
            )
    return styles


def fundamental_exposures(panel: xr.Dataset, styles: list[str], settings: Mapping[str, Any]):
    """Stage 1: the cleaned styles, industry and weights, plus the fixed styles used as given."""
    from riskmodel.exposures import build_exposures

    exposures = build_exposures(
        panel, styles, industry=settings["industry"], cap=settings["cap"], winsor=settings["winsor"],
        impute=settings["impute"],
    )
    if settings["fixed_styles"]:
        exposures = with_fixed_styles(exposures, panel, list(settings["fixed_styles"]))
    return exposures


def fundamental_regression(panel: xr.Dataset, exposures: Any, settings: Mapping[str, Any]):
    """Stage 2: the daily cross-sectional WLS of the panel's returns on the exposures."""
    from riskmodel.regression import factor_returns

    returns = np.ascontiguousarray(panel["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    return factor_returns(
        returns, exposures, lag=settings["lag"], return_clip=settings["return_clip"],
        min_industry_size=settings["min_industry_size"],
    )


def with_fixed_styles(exposures, panel: xr.Dataset, names: list[str]):
    """Append exposure variables used as given (no cleaning) to the style block."""
    extra = np.stack([panel[name].transpose("date", "stock").to_numpy().astype(np.float64) for name in names], axis=2)
    return replace(
        exposures,
        style_names=(*exposures.style_names, *names),
        styles=np.ascontiguousarray(np.concatenate([exposures.styles, extra], axis=2)),
        imputed=np.concatenate([exposures.imputed, np.zeros(extra.shape, dtype=bool)], axis=2),
    )


def fit_fundamental(panel: xr.Dataset, settings: Mapping[str, Any], *, progress: bool | None = None) -> FittedFactorModel:
    """Fit the fundamental factor model on an in-memory panel.

    Parameters
    ----------
    panel : Dataset (date, stock)
        With ``returns``, the cap variable, the styles and (optionally) the industry.
    settings : mapping
        :class:`riskmodel.FactorRiskModel`'s settings (as its ``get_params()``); missing
        ones take their defaults (:data:`MODEL_DEFAULTS`). ``statistical_factors`` is not
        looked at: this is the plain fundamental pipeline.
    progress : bool or None
        Stage progress bar; ``None``: when stderr is a terminal.

    Returns
    -------
    FittedFactorModel

    Raises
    ------
    MissingVariableError
        The panel lacks a variable the settings name.
    InvalidParameterError
        A setting out of range.
    PanelError
        For a malformed panel (see :func:`riskmodel.validate_panel`).
    """
    settings = model_settings("fit_fundamental", settings)
    styles = model_variables(panel, settings)
    settings["styles"] = styles
    forecast = settings["covariance"]
    stages = ["exposures", "regression"] + (["factor covariance", "specific risk"] if forecast else [])
    with StageProgress(stages, progress) as bar:
        exposures = fundamental_exposures(panel, styles, settings)
        bar.advance()
        wls = fundamental_regression(panel, exposures, settings)
        bar.advance()
        factor_cov = specific = None
        if forecast:
            from riskmodel.covariance.factor import factor_covariance
            from riskmodel.covariance.specific import specific_variance

            factor_cov = factor_covariance(wls.factor_returns, **factor_covariance_kwargs(settings))
            bar.advance()
            specific = specific_variance(wls.residuals, exposures, **specific_variance_kwargs(settings))
            bar.advance()
    return FittedFactorModel._from_parts(panel, exposures, wls, factor_cov, specific, settings)
