"""The audit's result objects: ResidualAudit, BiasStatistics and ClusterRefit round-trip
through rm.save / rm.load, summarise their headline numbers, and the layers import in one
direction only (report never imports audit at run time; matplotlib only in report)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.audit.bias import BiasStatistics
from riskmodel.audit.refit import ClusterRefit
from riskmodel.audit.residuals import ResidualAudit, ResidualCluster


@pytest.fixture(scope="module")
def world():
    hidden = [{"name": "oil", "n_members": 30, "corr": 0.35}]
    return rm.simulate(n_stocks=200, n_days=320, seed=5, n_industries=5, hidden=hidden)


@pytest.fixture(scope="module")
def model():
    return rm.FactorRiskModel(eigen_sims=20, progress=False)


@pytest.fixture(scope="module")
def fitted(world, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(world)


@pytest.fixture(scope="module")
def audit(fitted, world):
    return rm.audit_residuals(fitted, labels=world["industry"], n_null=8, n_random=20, seed=1)


def assert_same_audit(a: ResidualAudit, b: ResidualAudit) -> None:
    assert a.to_dataset().identical(b.to_dataset())
    for name in ("mp_edge", "mp_lower", "tw_edge", "null_edge", "n_significant", "detectability",
                 "n_discovery", "n_test", "null_group_size", "standardised", "spectrum_method",
                 "excluded", "settings", "stocks", "n_dates", "n_stocks"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(a.dates, b.dates)
    np.testing.assert_array_equal(a.null_lambda_max, b.null_lambda_max)
    xr.testing.assert_identical(a.eigenvalues, b.eigenvalues)
    xr.testing.assert_identical(a.eigenvectors, b.eigenvectors)
    xr.testing.assert_identical(a.ipr, b.ipr)
    xr.testing.assert_identical(a.cluster_correlation, b.cluster_correlation)
    assert len(a.clusters) == len(b.clusters)
    for c, d in zip(a.clusters, b.clusters):
        assert isinstance(d, ResidualCluster)
        for name in ("stocks", "size", "mean_correlation", "held_out_correlation", "p_value", "component",
                     "ipr", "strength", "bias_in", "bias_out", "flagged", "purity", "dominant_label"):
            assert getattr(c, name) == getattr(d, name), name
        np.testing.assert_array_equal(c.random_bias, d.random_bias)
        xr.testing.assert_identical(c.returns, d.returns)
        xr.testing.assert_identical(c.portfolio, d.portfolio)


# ----------------------------------------------------------------------------- ResidualAudit
def test_residual_audit_round_trips_through_save_and_load(audit, tmp_path):
    assert audit.kind == "residual_audit" and audit.clusters, "the hidden 'oil' block should be found"
    path = tmp_path / "audit.nc"
    rm.save(audit, path)
    back = rm.load(path)
    assert isinstance(back, ResidualAudit)
    assert_same_audit(audit, back)
    assert back.summary() == audit.summary()
    assert_same_audit(audit, ResidualAudit.from_dataset(audit.to_dataset()))


def test_residual_audit_without_clusters_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    res = xr.DataArray(rng.standard_normal((120, 60)), dims=("date", "stock"),
                       coords={"date": np.arange(120).astype("datetime64[D]"), "stock": [f"S{i:02d}" for i in range(60)]})
    audit = rm.audit_residuals(res, n_null=4)
    assert audit.clusters == []
    back = rm.load(rm.save(audit, tmp_path / "empty.nc"))
    assert_same_audit(audit, back)


def test_residual_audit_summary_and_repr_name_the_key_numbers(audit):
    text = audit.summary()
    assert repr(audit) == text
    first = text.splitlines()[0]
    assert f"{audit.n_stocks} stocks x {audit.n_dates} dates" in first
    assert f"{audit.n_significant} eigenvalue(s) above the null edge {audit.null_edge:.3f}" in first
    assert f"{len(audit.clusters)} cluster(s), {len(audit.flagged)} flagged" in first
    c = audit.clusters[0]
    assert f"{c.mean_correlation:6.3f}" in text and f"{c.p_value:8.2g}" in text


def test_from_dataset_refuses_another_kind(audit):
    ds = audit.to_dataset()
    ds.attrs["riskmodel_kind"] = "bias_statistics"
    with pytest.raises(rm.ModelFileError, match="riskmodel_kind='bias_statistics'"):
        ResidualAudit.from_dataset(ds)


# ----------------------------------------------------------------------------- BiasStatistics
def test_bias_statistics_round_trip_and_summary(fitted, tmp_path):
    bias = rm.bias_statistics(fitted, ["random", "pure_factors"], n_random=10)
    assert bias.kind == "bias_statistics"
    back = rm.load(rm.save(bias, tmp_path / "bias.nc"))
    assert isinstance(back, BiasStatistics)
    for name in ("z", "predicted_vol", "bias", "rolling", "qlike", "family"):
        xr.testing.assert_identical(getattr(bias, name), getattr(back, name))
    assert back.band == bias.band and back.mrad == bias.mrad and back.settings == bias.settings
    assert back.summary() == bias.summary()
    text = bias.summary()
    assert repr(bias) == text
    assert f"{bias.z.sizes['date']} outcomes of {bias.z.sizes['portfolio']} portfolios" in text
    assert f"band {bias.band[0]:.3f}..{bias.band[1]:.3f}" in text and f"MRAD {bias.mrad:.3f}" in text
    assert "pure_factors" in text and "random" in text


def test_bias_statistics_names_a_bad_setting(fitted):
    with pytest.raises(rm.InvalidParameterError, match=r"bias_statistics: horizon=0 is invalid; expected an integer >= 1"):
        rm.bias_statistics(fitted, "random", horizon=0)
    with pytest.raises(rm.InvalidParameterError, match=r"window=1 is invalid"):
        rm.bias_statistics(fitted, "random", window=1)


# ----------------------------------------------------------------------------- ClusterRefit
def test_refit_with_clusters_returns_a_cluster_refit(model, world, audit, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = rm.refit_with_clusters(model, world, audit, clusters=[0], n_null=8, n_random=20)
    assert isinstance(result, ClusterRefit) and result.kind == "cluster_refit"
    fit, audit_after = result  # the old tuple still unpacks
    assert fit is result.fit and audit_after is result.audit
    assert result.factors == ["cluster0"] and "cluster0" in fit.factors
    assert result.clusters == [0] and result.members == [audit.clusters[0].stocks]
    text = result.summary()
    assert f"cluster0 ({audit.clusters[0].size} stocks)" in text
    assert f"{len(audit_after.clusters)} cluster(s), {len(audit_after.flagged)} flagged" in text

    back = rm.load(rm.save(result, tmp_path / "refit.nc"))
    assert isinstance(back, ClusterRefit)
    assert back.factors == result.factors and back.clusters == result.clusters and back.members == result.members
    assert_same_audit(result.audit, back.audit)
    assert type(back.fit) is type(fit) and back.fit.factors == fit.factors
    xr.testing.assert_identical(back.fit.factor_returns, fit.factor_returns)
    xr.testing.assert_identical(back.fit.residuals, fit.residuals)
    assert back.summary() == text


# ----------------------------------------------------------------------------- layering
def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    return set(out.stdout.split())


def test_report_does_not_import_audit_and_riskmodel_does_not_import_matplotlib():
    mods = _modules_after("import riskmodel.report.audit_figures, riskmodel.report.html, riskmodel.report.figures")
    assert not [m for m in mods if m.startswith("riskmodel.audit")]
    mods = _modules_after("import riskmodel, riskmodel.audit.residuals, riskmodel.audit.bias, riskmodel.audit.refit")
    assert not [m for m in mods if m.startswith("matplotlib")]
