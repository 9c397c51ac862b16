"""The settings of the two forecast stages, declared once: their defaults and their checks.

:func:`riskmodel.covariance.factor.factor_covariance` and
:func:`riskmodel.covariance.specific.specific_variance` take their keyword defaults from
:data:`FACTOR_DEFAULTS` and :data:`SPECIFIC_DEFAULTS` and check their settings against
:data:`FACTOR_PARAMETERS` and :data:`SPECIFIC_PARAMETERS` (``{name: (check, what is
expected)}``, see :func:`riskmodel._params.check_parameters`). The model families read the
same tables for their forecast settings (:mod:`riskmodel.models.settings`), so a default or
a range is written here and nowhere else.

The module imports no kernel (numba) and no scipy: the estimators' signatures read it when
:mod:`riskmodel.models` is imported.
"""

from __future__ import annotations

from typing import Any

from riskmodel._params import (
    ParameterTable,
    half_life,
    is_bool,
    is_number,
    nonneg_int,
    nonneg_int_or_none,
    nonneg_number,
    pos_int,
    pos_int_or_none,
    positive_finite,
    positive_finite_or_none,
    positive_or_none,
)

__all__ = ["FACTOR_DEFAULTS", "FACTOR_PARAMETERS", "SPECIFIC_DEFAULTS", "SPECIFIC_PARAMETERS"]

#: Defaults of :func:`~riskmodel.covariance.factor.factor_covariance` (USE4S half-lives and lags).
FACTOR_DEFAULTS: dict[str, Any] = {
    "vol_half_life": 84,
    "vol_lags": 5,
    "corr_half_life": 504,
    "corr_lags": 2,
    "corr_standardise": False,
    "window": None,
    "demean": False,
    "eigen_sims": 100,
    "eigen_scale": 1.0,
    "eigen_every": 63,
    "eigen_fit_exclude": 15,
    "vra_half_life": 42,
    "min_periods": None,
    "seed": 0,
}

#: Checks of :func:`~riskmodel.covariance.factor.factor_covariance`'s settings.
FACTOR_PARAMETERS: ParameterTable = {
    "vol_half_life": (half_life, "a positive number of dates (inf for equal weights)"),
    "vol_lags": (nonneg_int, "an integer >= 0"),
    "corr_half_life": (half_life, "a positive number of dates (inf for equal weights)"),
    "corr_lags": (nonneg_int, "an integer >= 0"),
    "corr_standardise": (is_bool, "True or False"),
    "window": (pos_int_or_none, "None (3 x each half-life) or an integer >= 1"),
    "demean": (is_bool, "True or False"),
    "eigen_sims": (nonneg_int_or_none, "an integer >= 0 (0 or None disables the eigenfactor adjustment)"),
    "eigen_scale": (nonneg_number, "a finite number >= 0"),
    "eigen_every": (pos_int, "an integer >= 1"),
    "eigen_fit_exclude": (nonneg_int_or_none, "None (no smoothing) or an integer >= 0"),
    "vra_half_life": (positive_finite_or_none, "a positive finite number of dates, or None to disable"),
    "min_periods": (pos_int_or_none, "None or an integer >= 1"),
    "seed": (nonneg_int, "an integer >= 0"),
}

#: Defaults of :func:`~riskmodel.covariance.specific.specific_variance` (METHODS section 4).
SPECIFIC_DEFAULTS: dict[str, Any] = {
    "half_life": 84,
    "lags": 5,
    "window": None,
    "min_obs": 60,
    "full_obs": 180,
    "blend": True,
    "shrink": 0.1,
    "n_groups": 10,
    "structural_scale": "duan",
    "vra_half_life": 42,
}


def _structural_scale(value: Any) -> bool:
    return value == "duan" if isinstance(value, str) else positive_finite(value)


#: Checks of :func:`~riskmodel.covariance.specific.specific_variance`'s settings, each on
#: its own; the relations (``window > lags + 1``, ``min_obs < full_obs``) are checked
#: after them.
SPECIFIC_PARAMETERS: ParameterTable = {
    "half_life": (positive_finite, "a positive finite number of days (its window is 3 x half_life)"),
    "lags": (nonneg_int, "an integer >= 0"),
    "window": (pos_int_or_none, "None (3 x half_life) or an integer > lags + 1"),
    "min_obs": (nonneg_int, "an integer >= 0, below full_obs"),
    "full_obs": (pos_int, "an integer above min_obs"),
    "blend": (is_bool, "True or False"),
    "shrink": (lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1] (0 disables)"),
    "n_groups": (lambda v: pos_int(v) and v <= 100, "an integer in [1, 100]"),
    "structural_scale": (_structural_scale, "'duan' or a positive finite number (USE4: 1.05)"),
    "vra_half_life": (positive_or_none, "a positive number of days, or None to disable"),
}
