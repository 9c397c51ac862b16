"""Issue 19, friction 2: any static or time-varying categorical variable can be the
industry factor; labels without a member are no factor (friction 1)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.data.panel import industry_codes
from riskmodel.exposures import build_exposures
from riskmodel.exposures.industry import drop_unused_labels


@pytest.fixture(scope="module")
def world():
    panel = rm.simulate(n_stocks=150, n_days=160, seed=4)
    industry = panel["industry"].to_numpy()
    # a coarser classification: 10 simulated industries -> 3 sectors
    sector = np.array([f"SEC{int(label[3:]) % 3}" for label in industry])
    panel["sector"] = ("stock", sector)
    return panel


def test_a_per_stock_variable_of_any_name_is_the_industry(world):
    fit = rm.FactorRiskModel(industry="sector", covariance=False, progress=False).fit(world)
    assert fit.industry_labels == ("SEC0", "SEC1", "SEC2")
    assert list(fit.factors[:4]) == ["market", "SEC0", "SEC1", "SEC2"]
    # the same as the variable renamed to 'industry' (the path that always worked)
    renamed = world.drop_vars("industry").rename({"sector": "industry"})
    same = rm.FactorRiskModel(covariance=False, progress=False).fit(renamed)
    np.testing.assert_array_equal(fit.factor_returns.values, same.factor_returns.values)


def test_a_date_stock_variable_of_any_name_is_the_industry(world):
    per_date = np.broadcast_to(world["sector"].to_numpy(), (world.sizes["date"], world.sizes["stock"]))
    panel = world.assign(sector_daily=(("date", "stock"), per_date.copy()))
    fit = rm.FactorRiskModel(industry="sector_daily", covariance=False, progress=False).fit(panel)
    static = rm.FactorRiskModel(industry="sector", covariance=False, progress=False).fit(world)
    np.testing.assert_array_equal(fit.factor_returns.values, static.factor_returns.values)


def test_a_label_without_members_is_no_factor(world):
    codes, labels = industry_codes(world, "sector")
    # integer codes whose labels list a fourth sector no stock is in (a pooled-away label)
    coded = xr.DataArray(codes, dims=("date", "stock"), coords={"date": world["date"], "stock": world["stock"]},
                         attrs={"labels": ["SEC0", "SEC1", "SEC2", "SEC9 (other)"]})
    exposures = build_exposures(world.assign(pooled=coded), ["size"], industry="pooled")
    assert exposures.industry_labels == ("SEC0", "SEC1", "SEC2")
    assert exposures.factor_names == ["market", "SEC0", "SEC1", "SEC2", "size"]


def test_drop_unused_labels_renumbers_and_keeps_missing():
    codes = np.array([[0, 2, -1], [2, 2, 0]], dtype=np.int32)
    new, labels = drop_unused_labels(codes, ("a", "b", "c"))
    assert labels == ("a", "c")
    np.testing.assert_array_equal(new, [[0, 1, -1], [1, 1, 0]])
    same, all_labels = drop_unused_labels(new, labels)
    assert same is new and all_labels == labels


def test_the_industry_must_be_per_stock_or_per_date_and_stock(world):
    panel = world.assign(bad=(("date",), np.zeros(world.sizes["date"])))
    with pytest.raises(rm.PanelError, match="bad"):
        rm.FactorRiskModel(industry="bad", covariance=False, progress=False).fit(panel)
