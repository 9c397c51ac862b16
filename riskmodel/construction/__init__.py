"""Portfolio construction on a risk model: peer covariance estimators, optimisation on the
structured operator (Woodbury; cvxpy in factor form), and a side-by-side construction
backtest (``riskmodel.construction.backtest``).

This subpackage sits on the floor of ``audit``/``research``: it imports the ground floor,
``data``, ``covariance`` and ``models``; only ``cli`` and ``report`` import it.
"""

from riskmodel.construction.estimators import (
    EqualWeight,
    EWMAShrunk,
    NonlinearShrinkage,
    SklearnShrinkage,
    analytical_nonlinear_shrinkage,
    default_estimators,
)
from riskmodel.construction.optimisation import (
    OptimisationError,
    SkfolioCovariance,
    factor_form,
    long_only_min_variance,
    min_variance,
    optimise,
    sigma_inverse_alpha,
)

__all__ = [
    "EqualWeight",
    "EWMAShrunk",
    "NonlinearShrinkage",
    "SklearnShrinkage",
    "analytical_nonlinear_shrinkage",
    "default_estimators",
    "OptimisationError",
    "SkfolioCovariance",
    "factor_form",
    "long_only_min_variance",
    "min_variance",
    "optimise",
    "sigma_inverse_alpha",
]
