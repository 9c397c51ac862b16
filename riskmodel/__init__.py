"""riskmodel: structured equity risk models ``Sigma = B Sigma_f B' + D``.

The data flow is panel -> exposures -> regression -> covariance -> operator / audit /
alpha; each stage lives in its own module. Public names are imported lazily (PEP 562)
so that ``import riskmodel`` and the command line start fast and numba compiles a
kernel only when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from riskmodel.errors import (
    AlignmentError,
    DataQualityWarning,
    DateOrderError,
    DimensionError,
    DuplicateLabelError,
    ImputationWarning,
    InsufficientDataError,
    InvalidParameterError,
    MissingVariableError,
    ModelFileError,
    NonFiniteError,
    PanelError,
    RiskModelWarning,
    SingularDateWarning,
    ThinIndustryWarning,
    VariableTypeError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # panel and storage
    "validate_panel": "riskmodel.data.panel",
    "panel_from_long": "riskmodel.data.panel",
    "panel_from_wide": "riskmodel.data.panel",
    "date_window": "riskmodel.data.panel",
    "load": "riskmodel.data.io",
    "save": "riskmodel.data.io",
    "load_us_equities": "riskmodel.data.datasets",
    "load_ff_factors": "riskmodel.data.datasets",
    "load_wti": "riskmodel.data.datasets",
    "simulate": "riskmodel.data.simulation",
    # exposures
    "clean": "riskmodel.exposures",
    "neutralise": "riskmodel.exposures",
    "build_exposures": "riskmodel.exposures",
    "Exposures": "riskmodel.exposures",
    "quantile_portfolios": "riskmodel.research.portfolios",
    "pool_thin_industries": "riskmodel.data.industries",
    # regression and model
    "factor_returns": "riskmodel.regression",
    "FactorRiskModel": "riskmodel.models.fundamental",
    "FittedFactorModel": "riskmodel.models.fundamental",
    "TimeSeriesFactorModel": "riskmodel.models.timeseries",
    "StatisticalFactorModel": "riskmodel.models.statistical",
    # covariance
    "StructuredCovariance": "riskmodel.covariance.structured",
    "factor_covariance": "riskmodel.covariance.factor",
    "specific_variance": "riskmodel.covariance.specific",
    # audit and evaluation
    "audit_residuals": "riskmodel.audit.residuals",
    "bias_statistics": "riskmodel.audit.bias",
    "refit_with_clusters": "riskmodel.audit.refit",
    "fit_chunked": "riskmodel.models.chunked",
    "cluster_exposures": "riskmodel.audit.refit",
    # research
    "factor_from_signal": "riskmodel.research.factor_from_signal",
    "trailing_sum": "riskmodel.research.signal",
    "yoy_log_growth": "riskmodel.research.signal",
    "alpha_test": "riskmodel.research.alpha",
    "attribution": "riskmodel.research.alpha",
}

__all__ = sorted(
    [
        *_LAZY,
        "AlignmentError",
        "DataQualityWarning",
        "DateOrderError",
        "DimensionError",
        "DuplicateLabelError",
        "ImputationWarning",
        "InsufficientDataError",
        "InvalidParameterError",
        "MissingVariableError",
        "ModelFileError",
        "NonFiniteError",
        "PanelError",
        "RiskModelWarning",
        "SingularDateWarning",
        "ThinIndustryWarning",
        "VariableTypeError",
    ]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
