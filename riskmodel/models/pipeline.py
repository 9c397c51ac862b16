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
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from riskmodel._params import StageProgress, check_parameters
from riskmodel.errors import InsufficientDataError, InvalidParameterError, MissingVariableError
from riskmodel.models.loadings import require_dataset
from riskmodel.models.fitted_factor import FittedFactorModel
from riskmodel.models.settings import (
    FUNDAMENTAL_DEFAULTS as MODEL_DEFAULTS,
    FUNDAMENTAL_PARAMETERS as PARAMETERS,
    apply_horizon,
    factor_covariance_kwargs,
    specific_variance_kwargs,
)

__all__ = [
    "fit_fundamental",
    "MODEL_DEFAULTS",
    "PARAMETERS",
    "model_settings",
    "check_model_settings",
    "check_name_list",
    "model_variables",
    "fundamental_exposures",
    "fundamental_regression",
    "with_fixed_styles",
    "check_fundamental_data",
    "check_fitted_history",
    "covariance_min_periods",
]

def check_name_list(owner: str, name: str, value: Any) -> None:
    """Check that a setting naming panel variables is a list of names (or None).

    A single ``str`` is refused rather than taken as one name: ``list("size")`` would split
    it into letters, and ``styles="size"`` reads like a mistake for ``styles=["size"]``.

    Raises
    ------
    InvalidParameterError
        Naming the setting and the value given.
    """
    if value is None:
        return
    if isinstance(value, str):
        raise InvalidParameterError(
            f"{owner}: {name} must be a list of variable names, got the str {value!r}; pass {name}=[{value!r}]"
        )
    try:
        names = list(value)
    except TypeError:
        raise InvalidParameterError(
            f"{owner}: {name} must be a list of variable names, got {type(value).__name__} {value!r}"
        ) from None
    if not all(isinstance(s, str) for s in names):
        raise InvalidParameterError(f"{owner}: {name} must be a list of variable names, got {value!r}")


def check_model_settings(settings: Mapping[str, Any]) -> None:
    """Check FactorRiskModel's settings (each against its declared range, then the names)."""
    check_parameters("FactorRiskModel", PARAMETERS, settings)
    check_name_list("FactorRiskModel", "styles", settings["styles"])
    check_name_list("FactorRiskModel", "fixed_styles", settings["fixed_styles"])
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
    out = apply_horizon({**MODEL_DEFAULTS, **settings}, set(settings))
    check_name_list(owner, "styles", out["styles"])
    check_name_list(owner, "fixed_styles", out["fixed_styles"])
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


# ---------------------------------------------------------------------------------------
# issue 17: a fit that produces no usable forecast is an error, raised before the
# expensive stages; none of these checks changes a number of a fit that passes
# ---------------------------------------------------------------------------------------
def _date_stock_values(panel: xr.Dataset, name: str) -> np.ndarray | None:
    """The (date, stock) float values of a numeric variable, or None when it is absent, of
    other dims or not numeric (:func:`riskmodel.validate_panel` names those)."""
    if name not in panel:
        return None
    da = panel[name]
    if set(da.dims) != {"date", "stock"} or da.dtype.kind not in "biuf":
        return None
    return np.asarray(da.transpose("date", "stock").to_numpy(), dtype=np.float64)


#: from this many cells on, _style_fault runs one parallel numba pass (no compile for small panels)
_KERNEL_MIN_CELLS = 2**20


def _style_fault(values: np.ndarray) -> str | None:
    """Why a style cannot be a factor: no value at all, or one value across stocks on every date."""
    if values.size >= _KERNEL_MIN_CELLS:
        from riskmodel.kernels.panel_checks import row_extremes_kernel

        high, low = np.empty(len(values)), np.empty(len(values))
        row_extremes_kernel(np.ascontiguousarray(values), high, low)
        has_value = bool((high > -np.inf).any())  # a row with no finite value has high = -inf
    else:
        finite = np.isfinite(values)
        has_value = bool(finite.any())
        if has_value:
            high = np.where(finite, values, -np.inf).max(axis=1)
            low = np.where(finite, values, np.inf).min(axis=1)
    if not has_value:
        return "has no value at all (every entry is NaN)"
    if not (high > low).any():
        return "is constant across stocks on every date (no two stocks differ)"
    return None


def check_fundamental_data(panel: xr.Dataset, styles: Sequence[str], fixed_styles: Sequence[str], lag: int) -> None:
    """Before the exposures: the panel has returns, more than ``lag`` dates, enough stocks
    for the market and the styles, and every style varies across stocks on some date.

    Raises
    ------
    InsufficientDataError
        Naming what makes every cross-section of the fit empty or rank-deficient.
    """
    n_dates, n_stocks = panel.sizes.get("date", 0), panel.sizes.get("stock", 0)
    if n_dates <= lag:
        raise InsufficientDataError(
            f"the panel has {n_dates} date(s); a fit needs at least lag + 1 = {lag + 1} dates (the returns of "
            f"date t are explained by the exposures of date t - {lag}), and a forecast far more: pass more dates"
        )
    least = 1 + len(styles) + len(fixed_styles)  # the market and the styles, before any industry
    if n_stocks < least + 1:
        raise InsufficientDataError(
            f"the panel has {n_stocks} stock(s); the cross-sectional regression on at least {least} factors "
            f"(market + {len(styles) + len(fixed_styles)} style(s)) needs at least {least + 1} stocks"
        )
    returns = _date_stock_values(panel, "returns")
    if returns is not None and not np.isfinite(returns[lag:]).any():
        raise InsufficientDataError(
            f"returns has no value (all NaN) on the {n_dates - lag} date(s) the fit explains; nothing can be fitted"
        )
    for kind, names in (("style", styles), ("fixed style", fixed_styles)):
        for name in names:
            values = _date_stock_values(panel, name)
            fault = None if values is None else _style_fault(values[: n_dates - lag])
            if fault:
                raise InsufficientDataError(
                    f"{kind} {name!r} {fault}: it cannot be a factor and makes every cross-section "
                    f"rank-deficient; leave it out of {kind.replace(' ', '_')}s or fix its values"
                )


def covariance_min_periods(n_factors: int, settings: Mapping[str, Any]) -> int:
    """Dates of factor returns the factor covariance forecast needs before its first forecast:
    ``min_periods`` of :func:`~riskmodel.covariance.factor.factor_covariance`
    (``max(3 × factors, 42)`` unless the settings give it as ``min_history``)."""
    given = settings.get("min_history", settings.get("min_periods"))
    return int(given) if given is not None else max(3 * n_factors, 42)


def check_fitted_history(
    factor_returns: np.ndarray, factor_names: Sequence[str], n_dates: int, settings: Mapping[str, Any]
) -> None:
    """After the daily regressions: some date was fitted and, when forecasts are asked for,
    enough dates were fitted for the factor covariance forecast to start.

    Raises
    ------
    InsufficientDataError
        "no date could be fitted", or "needs N dates of factor returns, has n".
    """
    fitted = np.isfinite(factor_returns).any(axis=1)
    n_fitted = int(fitted.sum())
    if n_fitted == 0:
        raise InsufficientDataError(
            f"no date of the {n_dates} could be fitted: every cross-section was empty or rank-deficient (see the "
            "SingularDateWarning for why); the fit would have no factor return and no forecast"
        )
    if not settings.get("covariance", True):
        return
    needed = covariance_min_periods(len(factor_names), settings)
    most = int(np.isfinite(factor_returns).sum(axis=0).max())
    if most < needed:
        lag = int(settings.get("lag", 1))
        raise InsufficientDataError(
            f"the factor covariance forecast needs {needed} dates of factor returns ("
            + (f"min_history={needed}" if settings.get("min_history") is not None
               else f"max(3 x {len(factor_names)} factors, 42)")
            + f"), so at least {needed + lag} days with lag={lag}; the panel has {n_dates} days, "
            f"{n_fitted} of them fitted: pass more days, a shorter min_history, or covariance=False for the "
            "factor returns only"
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
    DimensionError
        ``panel`` is not an :class:`xarray.Dataset`.
    InsufficientDataError
        The fit could produce no usable forecast: no return, a style with no two different
        values on any date, no more stocks than the market and the styles, fewer dates than
        ``lag + 1`` or than the factor covariance forecast needs (``covariance=True``), no
        date fitted.
    PanelError
        For a malformed panel (see :func:`riskmodel.validate_panel`).
    """
    settings = model_settings("fit_fundamental", settings)
    require_dataset(panel, "fit_fundamental")
    styles = model_variables(panel, settings)
    settings["styles"] = styles
    check_fundamental_data(panel, styles, settings["fixed_styles"], settings["lag"])
    forecast = settings["covariance"]
    stages = ["exposures", "regression"] + (["factor covariance", "specific risk"] if forecast else [])
    with StageProgress(stages, progress) as bar:
        exposures = fundamental_exposures(panel, styles, settings)
        bar.advance()
        wls = fundamental_regression(panel, exposures, settings)
        check_fitted_history(wls.factor_returns, wls.factor_names, panel.sizes["date"], settings)
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
