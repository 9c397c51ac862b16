"""riskmodel: structured equity risk models ``Sigma = B Sigma_f B' + D``.

The data flow is panel -> exposures -> regression -> covariance -> model -> audit /
research; each stage lives in its own subpackage (``data``, ``exposures``, ``regression``,
``covariance``, ``models``, ``audit``, ``research``, ``report``, ``cli``). Public names are imported lazily (PEP 562)
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

# public name -> module that defines it, in the order of the data flow
_LAZY: dict[str, str] = {
    # data: panels, storage, bundled and simulated data
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
    "pool_thin_industries": "riskmodel.data.industries",
    # exposures and regression
    "clean": "riskmodel.exposures",
    "neutralise": "riskmodel.exposures",
    "build_exposures": "riskmodel.exposures",
    "Exposures": "riskmodel.exposures",
    "WLSResult": "riskmodel.regression",
    # covariance
    "StructuredCovariance": "riskmodel.covariance.structured",
    "RiskDecomposition": "riskmodel.covariance.structured",
    "FactorCovarianceResult": "riskmodel.covariance.factor",
    "SpecificRiskResult": "riskmodel.covariance.specific",
    # model families
    "FactorRiskModel": "riskmodel.models.fundamental",
    "FittedFactorModel": "riskmodel.models.fundamental",
    "TimeSeriesFactorModel": "riskmodel.models.timeseries",
    "FittedTimeSeriesModel": "riskmodel.models.timeseries",
    "StatisticalFactorModel": "riskmodel.models.statistical",
    "FittedStatisticalModel": "riskmodel.models.statistical",
    "fit_chunked": "riskmodel.models.chunked",
    # audit and evaluation
    "audit_residuals": "riskmodel.audit.residuals",
    "ResidualAudit": "riskmodel.audit.residuals",
    "ResidualCluster": "riskmodel.audit.residuals",
    "bias_statistics": "riskmodel.audit.bias",
    "BiasStatistics": "riskmodel.audit.bias",
    "refit_with_clusters": "riskmodel.audit.refit",
    "cluster_exposures": "riskmodel.audit.refit",
    # research on a signal
    "factor_from_signal": "riskmodel.research.factor_from_signal",
    "SignalFactor": "riskmodel.research.factor_from_signal",
    "trailing_sum": "riskmodel.research.signal",
    "yoy_log_growth": "riskmodel.research.signal",
    "quantile_portfolios": "riskmodel.research.portfolios",
    "QuantilePortfolios": "riskmodel.research.portfolios",
    "alpha_test": "riskmodel.research.alpha",
    "AlphaTest": "riskmodel.research.alpha",
    "attribution": "riskmodel.research.alpha",
    "Attribution": "riskmodel.research.alpha",
}

#: array-level stage functions: importable from their modules, reachable as ``rm.<name>``
#: only for code written before they left the labelled namespace (a DeprecationWarning
#: names the module); not in ``__all__``.
_MOVED: dict[str, str] = {
    "factor_returns": "riskmodel.regression",
    "factor_covariance": "riskmodel.covariance.factor",
    "specific_variance": "riskmodel.covariance.specific",
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


_CACHE_CHECKED: list[bool] = []


def _check_numba_cache() -> None:
    """Once, before numba is first imported: no writable cache folder means a private one
    for this process and one warning line, not numba's traceback at the first kernel."""
    import sys

    if _CACHE_CHECKED or "numba" in sys.modules:
        return
    _CACHE_CHECKED.append(True)
    from riskmodel import _atomic

    problem = _atomic.numba_cache_problem()
    if problem is not None:
        import warnings

        folder = _atomic.use_private_numba_cache()
        warnings.warn(f"{problem}; compiling into a private cache for this process ({folder})",
                      RiskModelWarning, stacklevel=3)


def __getattr__(name: str) -> Any:
    _check_numba_cache()
    module = _LAZY.get(name)
    if module is None and name in _MOVED:
        import warnings

        warnings.warn(
            f"rm.{name} takes and returns bare arrays and is no longer part of the labelled "
            f"namespace; import it from its module: from {_MOVED[name]} import {name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    if module is None:
        raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
