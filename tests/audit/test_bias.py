"""bias_statistics refuses what is not a fitted model, saying what it got (issue 17)."""

from __future__ import annotations

import types
import warnings

import pytest

import riskmodel as rm


@pytest.fixture(scope="module")
def panel():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        return rm.simulate(n_stocks=60, n_days=120, seed=3, n_industries=4)


def test_a_panel_is_not_a_fitted_model(panel):
    with pytest.raises(rm.InvalidParameterError, match=r"fit must be a fitted model.*got a Dataset.*FactorRiskModel\(\)\.fit"):
        rm.bias_statistics(panel)


def test_a_stored_model_dataset_points_to_load(panel):
    stored = panel.assign_attrs(riskmodel_kind="fitted_factor_model")
    with pytest.raises(rm.InvalidParameterError, match=r"stored 'fitted_factor_model'.*rm\.load"):
        rm.bias_statistics(stored)


@pytest.mark.parametrize("given, name", [(None, "NoneType"), ("model.nc", "str")])
def test_other_objects_are_named(given, name):
    with pytest.raises(rm.InvalidParameterError, match=rf"got a {name} without dates"):
        rm.bias_statistics(given)


def test_an_object_missing_one_attribute_is_named():
    partial = types.SimpleNamespace(dates=[], factor_returns=None, factor_cov=None, covariance=None)
    with pytest.raises(rm.InvalidParameterError, match=r"got a SimpleNamespace without specific_var;"):
        rm.bias_statistics(partial)
