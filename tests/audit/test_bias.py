"""bias_statistics refuses what is not a fitted model, saying what it got (issue 17)."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.audit import bias as bias_module


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


# ---------------------------------------------------------------------------------------
# every statistic of every family against a direct numpy computation (issue 22)
# ---------------------------------------------------------------------------------------

TWIN_START, TWIN_WINDOW, N_RANDOM, N_OPTIMISED, REBALANCE, SEED = 60, 40, 6, 5, 10, 4


@pytest.fixture(scope="module")
def twin_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        panel = rm.simulate(n_stocks=120, n_days=200, seed=5, n_industries=4)
        return rm.FactorRiskModel(styles=["size", "value"], eigen_sims=10, progress=False).fit(panel)


def _twin_outcomes(fit, user: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Realised returns and predicted variances (outcome date, portfolio), family by family.

    Each stock portfolio's variance is ``wᵀ Σ w`` with the dense Σ of the forecast made the
    day before, over the stocks that have that forecast and a return on the day. The random
    weights come from the same generator draws as bias_statistics (a sampling choice, not a
    statistic); optimised weights are ``Σ⁻¹α / ‖Σ⁻¹α‖₁`` from a dense solve.
    """
    dates = pd.DatetimeIndex(fit.dates)
    factor_cov = fit.factor_cov.to_numpy()
    f = fit.factor_returns.to_numpy()
    returns = fit.returns.to_numpy()
    stocks = list(np.asarray(fit.stocks).astype(str))
    rows = [t for t in range(TWIN_START, len(dates)) if np.isfinite(np.diag(factor_cov[t - 1])).any()]
    dense = {}
    for t in sorted({t - 1 for t in rows}):
        cov = fit.covariance(dates[t])
        dense[t] = (np.array([stocks.index(s) for s in np.asarray(cov.stocks).astype(str)]), cov.to_dense())

    def static(weights: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        pos, sigma = dense[t - 1]
        has = np.isfinite(returns[t, pos])
        w = weights[:, pos[has]]
        return w @ returns[t, pos[has]], np.einsum("pi,ij,pj->p", w, sigma[np.ix_(has, has)], w)

    rng = np.random.default_rng(SEED)
    random_weights = bias_module._random_portfolios(rng, returns, N_RANDOM)
    alpha = rng.standard_normal((len(stocks), N_OPTIMISED))
    always = np.all([np.isfinite(np.diag(factor_cov[t - 1])) & np.isfinite(f[t]) for t in rows], axis=0)
    families: dict[str, tuple[list, list]] = {name: ([], []) for name in FAMILIES_TWIN}
    optimised = None
    for i, t in enumerate(rows):
        diag = np.diag(factor_cov[t - 1])
        families["pure_factors"][0].append(f[t])
        families["pure_factors"][1].append(diag)
        lam, vec = np.linalg.eigh(factor_cov[t - 1][np.ix_(always, always)])
        families["eigenfactors"][0].append(vec.T @ f[t, always])
        families["eigenfactors"][1].append(lam)
        for name, weights in (("random", random_weights), ("user", user)):
            r, v = static(weights, t)
            families[name][0].append(r)
            families[name][1].append(v)
        if i % REBALANCE == 0:
            pos, sigma = dense[t - 1]
            solved = np.linalg.solve(sigma, alpha[pos])
            optimised = np.zeros((N_OPTIMISED, len(stocks)))
            optimised[:, pos] = (solved / np.abs(solved).sum(axis=0)).T
        r, v = static(optimised, t)
        families["optimised"][0].append(r)
        families["optimised"][1].append(v)
    ret = np.concatenate([np.array(families[name][0]) for name in FAMILIES_TWIN], axis=1)
    var = np.concatenate([np.array(families[name][1]) for name in FAMILIES_TWIN], axis=1)
    labels = [name for name in FAMILIES_TWIN for _ in range(np.array(families[name][0]).shape[1])]
    return ret, var, labels


FAMILIES_TWIN = ("pure_factors", "eigenfactors", "random", "user", "optimised")  # bias_statistics' order


def _twin_statistics(z: np.ndarray) -> dict[str, np.ndarray]:
    """Bias (sd, ddof 1), the band, rolling bias, per-portfolio MRAD and QLIKE, in plain numpy."""
    n_obs = np.isfinite(z).sum(axis=0)
    bias = np.array([np.std(col[np.isfinite(col)], ddof=1) for col in z.T])
    t_eff = int(np.median(n_obs))
    band = (1 - np.sqrt(2 / t_eff), 1 + np.sqrt(2 / t_eff))
    rolling = np.full(z.shape, np.nan)
    for end in range(z.shape[0]):
        block = z[max(0, end - TWIN_WINDOW + 1) : end + 1]
        for p in range(z.shape[1]):
            values = block[:, p][np.isfinite(block[:, p])]
            if values.size >= max(2, TWIN_WINDOW // 2):
                rolling[end, p] = np.std(values, ddof=1)
    mrad = np.array([np.mean(np.abs(col[np.isfinite(col)] - 1)) for col in rolling.T])
    qlike = np.array([np.mean(c**2 - np.log(c**2) - 1) for c in (col[np.isfinite(col) & (col != 0)] for col in z.T)])
    inside = (bias >= band[0]) & (bias <= band[1])
    return {"bias": bias, "band": band, "rolling": rolling, "mrad": mrad, "qlike": qlike, "inside": inside}


def test_bias_statistics_equal_a_numpy_twin_for_every_statistic_and_family(twin_fit):
    fit = twin_fit
    stocks = np.asarray(fit.stocks).astype(str)
    user = np.zeros((2, len(stocks)))
    user[0, :40] = 1 / 40
    user[1, ::3] = np.linspace(1, 2, user[1, ::3].size) / np.linspace(1, 2, user[1, ::3].size).sum()
    book = xr.DataArray(user, coords={"portfolio": ["book0", "book1"], "stock": stocks}, dims=("portfolio", "stock"))
    got = rm.bias_statistics(fit, ["pure_factors", "eigenfactors", "random", "optimised", book],
                             start=fit.dates[TWIN_START], window=TWIN_WINDOW, n_random=N_RANDOM,
                             n_optimised=N_OPTIMISED, rebalance=REBALANCE, seed=SEED)
    ret, var, families = _twin_outcomes(fit, user)
    z = ret / np.sqrt(var)
    want = _twin_statistics(z)

    assert list(got.family.to_numpy()) == families
    assert got.z.sizes["date"] == z.shape[0] and got.z.to_numpy()[0].size == z.shape[1]
    np.testing.assert_allclose(got.z.to_numpy(), z, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.predicted_vol.to_numpy(), np.sqrt(var), rtol=1e-9)
    np.testing.assert_allclose(got.bias.to_numpy(), want["bias"], rtol=1e-9)
    assert got.band == pytest.approx(want["band"], rel=1e-12)
    np.testing.assert_array_equal(got.inside.to_numpy(), want["inside"])
    np.testing.assert_allclose(got.rolling.to_numpy(), want["rolling"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.qlike.to_numpy(), want["qlike"], rtol=1e-9)
    assert got.mrad == pytest.approx(np.nanmean(np.abs(want["rolling"] - 1)), rel=1e-9)
    table = got.by_family()
    labels = np.array(families)
    for family in FAMILIES_TWIN:
        mine = labels == family
        row = table.loc[family]
        assert row["n"] == mine.sum() > 0, family
        assert row["mean_bias"] == pytest.approx(want["bias"][mine].mean(), rel=1e-9), family
        assert row["median_bias"] == pytest.approx(np.median(want["bias"][mine]), rel=1e-9), family
        assert row["share_inside"] == pytest.approx(want["inside"][mine].mean(), abs=1e-12), family
        assert row["mrad"] == pytest.approx(want["mrad"][mine].mean(), rel=1e-9), family
        assert row["qlike"] == pytest.approx(want["qlike"][mine].mean(), rel=1e-9), family
    # the statistics are not degenerate: the check compares numbers that differ between families
    assert len({round(v, 6) for v in table["mean_bias"]}) == len(FAMILIES_TWIN)
