"""Files written by release 0.1.0 (before the subpackage layout) still load and give the
same numbers; every ``rm.*`` name of that release still resolves.

``tests/data/files/*_v0.1.0.nc`` were written by riskmodel 0.1.0 (commit 6c15036) from
``rm.simulate(n_stocks=40, n_days=130, seed=7, n_industries=3)`` and
``rm.FactorRiskModel(styles=["size", "value"]).fit(panel)``; ``v0.1.0_values.json`` holds
what that release computed from them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm

FILES = Path(__file__).resolve().parent / "files"

#: every public name of release 0.1.0's ``rm.*``
NAMES_0_1_0 = [
    "AlignmentError", "DataQualityWarning", "DateOrderError", "DimensionError", "DuplicateLabelError",
    "Exposures", "FactorRiskModel", "FittedFactorModel", "ImputationWarning", "InsufficientDataError",
    "InvalidParameterError", "MissingVariableError", "ModelFileError", "NonFiniteError", "PanelError",
    "RiskModelWarning", "SingularDateWarning", "StatisticalFactorModel", "StructuredCovariance",
    "ThinIndustryWarning", "TimeSeriesFactorModel", "VariableTypeError", "alpha_test", "attribution",
    "audit_residuals", "bias_statistics", "build_exposures", "clean", "cluster_exposures", "date_window",
    "factor_covariance", "factor_from_signal", "factor_returns", "fit_chunked", "load", "load_ff_factors",
    "load_us_equities", "load_wti", "neutralise", "panel_from_long", "panel_from_wide",
    "pool_thin_industries", "quantile_portfolios", "refit_with_clusters", "save", "simulate",
    "specific_variance", "trailing_sum", "validate_panel", "yoy_log_growth",
]
#: array-level stage functions that left the labelled namespace (still reachable, with a warning)
MOVED = {"factor_returns": "riskmodel.regression", "factor_covariance": "riskmodel.covariance.factor",
         "specific_variance": "riskmodel.covariance.specific"}


@pytest.mark.parametrize("name", NAMES_0_1_0)
def test_every_name_of_0_1_0_resolves(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert getattr(rm, name) is not None


@pytest.mark.parametrize("name", sorted(MOVED))
def test_array_stage_functions_warn_and_name_their_module(name: str) -> None:
    import importlib

    with pytest.warns(DeprecationWarning, match=MOVED[name].replace(".", r"\.")):
        value = getattr(rm, name)
    assert value is getattr(importlib.import_module(MOVED[name]), name)
    assert name not in rm.__all__ and name not in dir(rm)


def test_every_name_in_all_resolves_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in rm.__all__:
            assert getattr(rm, name) is not None, name


def test_a_0_1_0_panel_loads_and_validates() -> None:
    panel = rm.load(FILES / "panel_v0.1.0.nc")
    assert isinstance(panel, xr.Dataset)
    rm.validate_panel(panel)
    assert (panel.sizes["date"], panel.sizes["stock"]) == (130, 40)
    assert list(panel.attrs["styles"]) == ["size", "value", "momentum"]


def test_a_0_1_0_model_loads_and_forecasts_as_it_did() -> None:
    expected = json.loads((FILES / "v0.1.0_values.json").read_text())
    fit = rm.load(FILES / "model_v0.1.0.nc")
    assert isinstance(fit, rm.FittedFactorModel)
    cov = fit.covariance()
    w = np.full(cov.exposures.sizes["stock"], 1.0 / cov.exposures.sizes["stock"])
    assert float(cov.volatility(w)) == pytest.approx(expected["equal_weight_volatility"], rel=1e-12)
    assert float(np.nansum(fit.factor_returns.values)) == pytest.approx(expected["factor_returns_sum"], rel=1e-12)
    assert float(np.nansum(fit.specific_var.values)) == pytest.approx(expected["specific_var_sum"], rel=1e-12)


def test_a_0_1_0_model_refits_to_the_same_numbers() -> None:
    """Today's code on the 0.1.0 panel gives the arrays 0.1.0 stored: the same missing
    values, and the numbers to rounding (1e-12 of each array's largest value).

    Not bit for bit: the file was written on another CPU, and BLAS and numba pick kernels
    (FMA, vector width) by CPU, so the last bits differ across machines (seen: an AMD
    machine differs by at most 3e-15 of the scale). Bit-identity on one machine is what
    ``benchmarks/fit_hashes.py`` checks across a refactor.
    """
    panel = rm.load(FILES / "panel_v0.1.0.nc")
    old = rm.load(FILES / "model_v0.1.0.nc")
    new = rm.FactorRiskModel(styles=["size", "value"], progress=False).fit(panel)
    for name in ("factor_returns", "residuals", "factor_cov", "specific_var"):
        got, stored = getattr(new, name).values, getattr(old, name).values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(stored), err_msg=name)
        np.testing.assert_allclose(got, stored, rtol=0, atol=1e-12 * np.nanmax(np.abs(stored)), err_msg=name)


def test_a_0_1_0_covariance_loads() -> None:
    expected = json.loads((FILES / "v0.1.0_values.json").read_text())
    cov = rm.load(FILES / "covariance_v0.1.0.nc")
    assert isinstance(cov, rm.StructuredCovariance)
    w = np.full(cov.exposures.sizes["stock"], 1.0 / cov.exposures.sizes["stock"])
    assert float(cov.volatility(w)) == pytest.approx(expected["equal_weight_volatility"], rel=1e-12)
