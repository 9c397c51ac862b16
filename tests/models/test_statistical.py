"""Statistical (PCA) factor model and the hybrid: kernels vs numpy twins, known truth, protocol."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import xarray as xr

import riskmodel as rm
from riskmodel.errors import InsufficientDataError, InvalidParameterError, RiskModelWarning
from riskmodel.kernels.timeseries import cross_section_ols_kernel, standardise_kernel
from riskmodel.models.statistical import (
    FittedStatisticalModel,
    _window_matrix,
    _WindowMoments,
    choose_n_factors,
    cross_section_factor_returns,
    pca_loadings,
)
from riskmodel.models.hybrid import hybrid_model
from riskmodel.models.loadings import loading_rows, refit_schedule

FAST = dict(eigen_sims=0)


def factor_world(seed: int, *, T: int = 400, N: int = 300, k: int = 4, missing: float = 0.01) -> tuple[xr.Dataset, np.ndarray]:
    """Returns driven by k strong factors (each explains ~15-25% of a stock's variance)."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((T, k)) * np.linspace(0.012, 0.008, k)
    B = rng.standard_normal((N, k))
    B[:, 0] = np.abs(B[:, 0]) + 0.5  # a market-like first factor
    vol = 0.01 * np.exp(0.25 * rng.standard_normal(N))
    r = f @ B.T + vol * rng.standard_normal((T, N))
    r[rng.random((T, N)) < missing] = np.nan
    panel = xr.Dataset(
        {"returns": (("date", "stock"), r)},
        coords={
            "date": np.datetime64("2015-01-01", "ns") + np.arange(T) * np.timedelta64(1, "D"),
            "stock": np.array([f"S{n:04d}" for n in range(N)]),
        },
    )
    return panel, B


# ---------------------------------------------------------------------------------------
# numpy twins of the kernels
# ---------------------------------------------------------------------------------------


def cross_section_twin(returns, loadings, schedule, min_stocks):
    T, N = returns.shape
    k = loadings.shape[2]
    which = np.searchsorted(schedule, np.arange(T) - 1, side="right") - 1
    f = np.full((T, k), np.nan)
    resid = np.full((T, N), np.nan)
    for t in range(T):
        if which[t] < 0:
            continue
        B = loadings[which[t]]
        ok = np.isfinite(B).all(axis=1) & np.isfinite(returns[t])
        if ok.sum() < min_stocks:
            continue
        f[t] = np.linalg.lstsq(B[ok], returns[t, ok], rcond=None)[0]
        resid[t, ok] = returns[t, ok] - B[ok] @ f[t]
    return f, resid


def test_cross_section_kernel_matches_numpy_twin():
    panel, B = factor_world(0, T=120, N=60, k=3, missing=0.05)
    r = panel["returns"].to_numpy()
    schedule = refit_schedule(120, 25)
    rng = np.random.default_rng(1)
    loadings = B[None] + 0.1 * rng.standard_normal((len(schedule), 60, 3))
    loadings[:, :5] = np.nan  # stocks not in the model
    loadings[0] = np.nan  # no loadings yet on the first refit
    f, resid = cross_section_factor_returns(r, loadings, schedule, min_stocks=6)
    f_twin, resid_twin = cross_section_twin(r, loadings, schedule, 6)
    np.testing.assert_array_equal(np.isnan(f), np.isnan(f_twin))
    np.testing.assert_allclose(f, f_twin, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(np.isnan(resid), np.isnan(resid_twin))
    np.testing.assert_allclose(resid, resid_twin, rtol=1e-10, atol=1e-14)
    assert np.isnan(f[: schedule[1] + 1]).all() and np.isfinite(f[schedule[1] + 1 :]).all()
    # the kernel is what cross_section_factor_returns calls
    which = loading_rows(schedule, 120, shift=1)
    f2, r2 = np.empty_like(f), np.empty_like(resid)
    gram = np.einsum("snj,snk->sjk", np.nan_to_num(loadings), np.nan_to_num(loadings))
    cross_section_ols_kernel(r, which, loadings, gram, 6, f2, r2)
    np.testing.assert_array_equal(f2, f)


def test_standardise_kernel_and_running_moments_match_numpy():
    panel, _ = factor_world(2, T=80, N=37, missing=0.1)
    r = panel["returns"].to_numpy()
    r[:, 7] = 0.0  # zero sd (e.g. a halted stock): left out
    r[:30, 9] = np.nan  # too little coverage in the window: left out
    moments = _WindowMoments(r)
    moments.move(0, 40)  # slide the window twice, as the refits do
    cols, z, sd, total = _window_matrix(moments, 10, 70, 0.8, np.float64)
    block = r[10:70]
    with np.errstate(invalid="ignore"):
        mean_np, sd_np = np.nanmean(block, 0), np.nanstd(block, 0)
    count = np.isfinite(block).sum(0)
    keep = (count >= 48) & (sd_np > 0)
    np.testing.assert_array_equal(cols, np.flatnonzero(keep))
    assert 7 not in cols and 9 not in cols and cols.size > 25
    np.testing.assert_allclose(sd[cols], sd_np[cols], rtol=1e-10)
    with np.errstate(invalid="ignore"):
        want = np.where(keep, np.nan_to_num((block - mean_np) / sd_np, nan=0.0), 0.0)
    np.testing.assert_allclose(z, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(total, (want**2).sum(), rtol=1e-10)
    # the kernel alone, against its twin
    inv = np.where(keep, 1.0 / np.where(keep, sd_np, 1.0), 0.0)
    out = np.empty((60, 37), dtype=np.float32)
    standardise_kernel(r, 10, np.nan_to_num(mean_np), inv, out)
    twin = np.where((inv > 0) & np.isfinite(block), (block - np.nan_to_num(mean_np)) * inv, 0.0)
    np.testing.assert_allclose(out, twin, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# number of factors, subspace
# ---------------------------------------------------------------------------------------


def _chosen(seed: int, criterion: str) -> int:
    panel, _ = factor_world(seed, T=260, N=300)
    pca = pca_loadings(panel["returns"].to_numpy(), n_factors=None, window=250, min_obs=250, refit_every=300,
                       criterion=criterion, seed=seed)
    return int(pca.chosen[pca.chosen >= 0][0])


@pytest.mark.parametrize("criterion", ["bai_ng", "ahn_horenstein"])
def test_number_of_factors_single_seed(criterion):
    assert _chosen(0, criterion) == 4


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["bai_ng", "ahn_horenstein"])
def test_number_of_factors_twenty_seeds(criterion):
    hits = sum(_chosen(seed, criterion) == 4 for seed in range(20))
    assert hits >= 18


def test_choose_n_factors_against_dense_eigenvalues():
    rng = np.random.default_rng(3)
    panel, _ = factor_world(3, T=200, N=120, missing=0.0)
    z = panel["returns"].to_numpy()
    z = (z - z.mean(0)) / z.std(0)
    s = np.linalg.svd(z, compute_uv=False)
    total = float((z**2).sum())
    np.testing.assert_allclose(total, (s**2).sum(), rtol=1e-12)
    for criterion in ("bai_ng", "ahn_horenstein"):
        assert choose_n_factors(s, total, 200, 120, criterion=criterion, max_factors=10) == 4
    # pure noise: no factor
    noise = rng.standard_normal((200, 120))
    s0 = np.linalg.svd(noise, compute_uv=False)
    assert choose_n_factors(s0, float((noise**2).sum()), 200, 120, criterion="bai_ng") == 0
    with pytest.raises(InvalidParameterError, match="criterion"):
        choose_n_factors(s, total, 200, 120, criterion="scree")


@pytest.fixture(scope="module")
def world_fit():
    panel, B = factor_world(5, T=500, N=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)
        fit = rm.StatisticalFactorModel(window=252, min_obs=200, **FAST).fit(panel)
    return panel, B, fit


def test_loadings_span_the_true_subspace(world_fit):
    _, B, fit = world_fit
    assert fit.factors == ["pc1", "pc2", "pc3", "pc4"]
    last = fit.loadings.isel(refit=-1).to_numpy()
    ok = np.isfinite(last).all(axis=1)
    angles = scipy.linalg.subspace_angles(last[ok], B[ok])
    assert np.degrees(angles.max()) < 8.0
    # loadings are in return units: B̂ B̂ᵀ ≈ B Σ_f Bᵀ on the diagonal (factor variance per stock)
    f_var = np.linspace(0.012, 0.008, 4) ** 2
    ratio = (last[ok] ** 2).sum(1) / ((B[ok] ** 2) * f_var).sum(1)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)


def test_factor_identity_persists_across_refits(world_fit):
    _, _, fit = world_fit
    L = fit.loadings.to_numpy()
    done = np.flatnonzero(np.isfinite(L).any(axis=(1, 2)))
    assert done.size >= 10
    for a, b in zip(done[:-1], done[1:]):
        ok = np.isfinite(L[a]).all(1) & np.isfinite(L[b]).all(1)
        corr = [np.corrcoef(L[a][ok, j], L[b][ok, j])[0, 1] for j in range(L.shape[2])]
        assert min(corr) > 0.9  # Procrustes: no sign flips or swaps between refits


def test_no_look_ahead():
    panel, _ = factor_world(6, T=330, N=120)
    kw = dict(window=150, min_obs=120, refit_every=20, **FAST)
    full = rm.StatisticalFactorModel(n_factors=3, **kw).fit(panel)
    cut = 270
    part = rm.StatisticalFactorModel(n_factors=3, **kw).fit(panel.isel(date=slice(0, cut + 1)))
    for name in ("factor_returns", "residuals", "factor_cov", "specific_var"):
        np.testing.assert_array_equal(part.dataset[name].to_numpy(), full.dataset[name].to_numpy()[: cut + 1], err_msg=name)


def test_coverage_rule_drops_sparse_names():
    panel, _ = factor_world(7, T=300, N=100)
    r = panel["returns"].to_numpy().copy()
    r[-100:, 0] = np.nan  # 2/3 coverage of the last 150-day window
    panel["returns"] = (("date", "stock"), r)
    fit = rm.StatisticalFactorModel(n_factors=2, window=150, min_obs=150, **FAST).fit(panel)
    assert np.isnan(fit.loadings.isel(refit=-1, stock=0)).all()
    assert not fit.forecast_mask()[-1, 0]
    assert "S0000" not in set(fit.covariance().stocks)


def test_covariance_dense_reference(world_fit):
    _, _, fit = world_fit
    date = fit.dates[-40]
    cov = fit.covariance(date)
    B = fit.exposure_matrix(date).to_pandas().loc[cov.stocks].to_numpy()
    F = fit.factor_cov.sel(date=date).to_numpy()
    d = fit.specific_var.sel(date=date).to_pandas().loc[cov.stocks].to_numpy()
    w = np.random.default_rng(0).standard_normal(len(cov.stocks))
    dense = B @ F @ B.T + np.diag(d)
    np.testing.assert_allclose(np.asarray(cov.matvec(w)), dense @ w, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(float(cov.variance(w)), w @ dense @ w, rtol=1e-12)


def test_protocol_bias_audit_and_persistence(world_fit, tmp_path):
    _, _, fit = world_fit
    table = rm.bias_statistics(fit, ["pure_factors", "random"]).by_family()
    assert 0.85 < table.loc["pure_factors", "median_bias"] < 1.2
    path = rm.save(fit, tmp_path / "st.nc")
    loaded = rm.load(path)
    assert type(loaded) is FittedStatisticalModel
    np.testing.assert_array_equal(loaded.factor_returns.to_numpy(), fit.factor_returns.to_numpy())
    assert "criterion bai_ng" in fit.summary()
    result = rm.audit_residuals(fit)
    assert isinstance(result, rm.ResidualAudit)
    assert list(result.stocks) == list(fit.stocks) and result.n_excluded == 0
    assert set(pd.DatetimeIndex(result.dates)) <= set(fit.dates)
    # the four PCA factors span the four true ones: the residuals hold nothing above the null
    assert result.n_significant == 0 and result.clusters == []


def test_result_api_round_trip_and_summary(world_fit, tmp_path):
    panel, _, fit = world_fit
    assert fit.kind == "fitted_statistical_model"
    back = rm.load(rm.save(fit, tmp_path / "m.nc"))
    assert type(back) is FittedStatisticalModel
    for name in ("factor_returns", "residuals", "loadings", "n_factors_chosen", "eigenvalues", "specific_var"):
        np.testing.assert_array_equal(back.dataset[name].to_numpy(), fit.dataset[name].to_numpy())
    text = fit.summary()
    assert "fitted_statistical_model" in text.splitlines()[0]
    assert f"{panel.sizes['stock']} stocks" in text and f"{len(fit.factors)} factors" in text
    assert f"mean R² {fit.mean_r2():.3f}" in text and 0.2 < fit.mean_r2() < 1.0
    assert repr(fit) == text and back.summary() == text


def test_parameter_and_data_errors():
    with pytest.raises(InvalidParameterError, match="criterion"):
        rm.StatisticalFactorModel(criterion="scree")
    with pytest.raises(InvalidParameterError, match="coverage"):
        rm.StatisticalFactorModel(coverage=1.5)
    panel, _ = factor_world(8, T=100, N=50)
    with pytest.raises(InsufficientDataError, match="min_obs"):
        rm.StatisticalFactorModel(min_obs=252).fit(panel)


# ---------------------------------------------------------------------------------------
# hybrid
# ---------------------------------------------------------------------------------------


def test_hybrid_recovers_a_hidden_factor():
    panel = rm.simulate(n_stocks=300, n_days=500, seed=3, hidden={"n_members": 60, "corr": 0.25})
    kw = dict(eigen_sims=0, return_clip=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)
        fit = hybrid_model(panel, 1, window=200, min_obs=150, **kw)
        base = rm.FactorRiskModel(**kw).fit(panel)
    assert isinstance(fit, rm.FittedFactorModel)
    assert fit.factors[-1] == "stat1"
    hidden = panel["true_hidden_loadings"].isel(hidden=0).to_numpy()
    expo = fit.exposure_matrix(fit.dates[-1]).sel(factor="stat1").to_numpy()
    ok = np.isfinite(expo)
    assert abs(np.corrcoef(expo[ok], hidden[ok])[0, 1]) > 0.8
    # the hidden block's residuals no longer co-move
    members = np.flatnonzero(hidden != 0)
    late = slice(300, None)

    def block_corr(f):
        u = f.residuals.isel(date=late, stock=members).to_pandas()
        c = u.corr().to_numpy()
        return np.nanmean(c[~np.eye(len(members), dtype=bool)])

    assert block_corr(base) > 0.1
    assert block_corr(fit) < 0.5 * block_corr(base)
    # exposures before the first extraction are absent: those cross-sections are skipped
    assert np.isnan(fit.factor_returns.isel(date=100)).all()


def test_hybrid_exposures_have_no_look_ahead():
    rng = np.random.default_rng(4)
    u = 0.01 * rng.standard_normal((300, 80))
    u[:, :20] += 0.01 * rng.standard_normal((300, 1))
    full = pca_loadings(u, n_factors=1, window=100, min_obs=80, refit_every=20)
    part = pca_loadings(u[:241], n_factors=1, window=100, min_obs=80, refit_every=20)
    np.testing.assert_array_equal(part.loadings[:-1], full.loadings[: len(part.schedule) - 1])


def test_hybrid_errors():
    panel = rm.simulate(n_stocks=150, n_days=200, seed=0)
    with pytest.raises(InvalidParameterError, match="k="):
        hybrid_model(panel, 0)
    with pytest.raises(InvalidParameterError, match="prefix"):
        hybrid_model(panel.assign(stat1=panel["size"]), 1)


# --- issue 17: the sizes are checked before anything is allocated ------------------------------


@pytest.mark.parametrize("n_factors, window, limit", [(5000, 60, "(60)"), (60, 504, "(60)"), (40, 30, "= 30")])
def test_n_factors_is_checked_against_the_sizes_before_allocating(n_factors, window, limit):
    """n_factors=5000 on 60 stocks used to try to allocate gigabytes; now an error naming
    n_factors and the size it must stay below (stocks, or days of the window)."""
    panel, _ = factor_world(11, T=120, N=60)
    model = rm.StatisticalFactorModel(n_factors=n_factors, window=window, min_obs=30, progress=False)
    with pytest.raises(InvalidParameterError, match=rf"n_factors={n_factors}") as info:
        model.fit(panel)
    assert limit in str(info.value)


def test_n_factors_below_the_sizes_still_fits():
    panel, _ = factor_world(11, T=120, N=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)
        fit = rm.StatisticalFactorModel(n_factors=3, window=60, min_obs=30, progress=False).fit(panel)
    assert fit.factors == ["pc1", "pc2", "pc3"]


@pytest.mark.parametrize("given", [None, "frame"])
def test_statistical_fit_of_a_non_panel_is_a_dimension_error(given):
    panel, _ = factor_world(11, T=60, N=30)
    obj = None if given is None else panel.to_dataframe()
    with pytest.raises(rm.DimensionError, match=r"StatisticalFactorModel.fit.*xarray.Dataset.*got "
                                                 + ("NoneType" if given is None else "DataFrame")):
        rm.StatisticalFactorModel(progress=False).fit(obj)


def test_hybrid_k_at_or_above_the_stocks_is_refused():
    panel, _ = factor_world(11, T=60, N=30)
    with pytest.raises(InvalidParameterError, match=r"k=30 .*number of stocks \(30\)"):
        hybrid_model(panel, 30)
