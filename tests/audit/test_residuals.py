"""Tests of the residual audit (riskmodel.audit.residuals and its private layers).

Residual worlds are simulated here with numpy: independent Student-t specific returns
with per-stock vols, plus optional hidden blocks (a factor the model does not name) of
``k`` names with within-block correlation ``rho``.  The truth is known, so the spectrum,
the null, the clusters and their bias statistics are checked against it, and the numerics
against dense numpy references.
"""

from __future__ import annotations

import inspect
import base64
import math
import os
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.audit import clusters as cl
from riskmodel.audit import spectrum as sp

sklearn_metrics = pytest.importorskip("sklearn.metrics")
adjusted_rand_score = sklearn_metrics.adjusted_rand_score


# ----------------------------------------------------------------------------- worlds
def residual_world(n_stocks=1000, n_dates=504, blocks=(), seed=0, nu=5.0, missing=0.0):
    """Residuals (date, stock), specific variance forecasts and block membership (-1: none).

    Row 0 has no residual (as a fitted model's first date); ``specific_var`` row t is the
    (true, constant) variance forecast for day t + 1.
    """
    rng = np.random.default_rng(seed)
    T, N = n_dates, n_stocks
    e = rng.standard_t(nu, size=(T, N)) / math.sqrt(nu / (nu - 2.0))
    truth = np.full(N, -1)
    perm = rng.permutation(N)
    start = 0
    for j, (k, rho) in enumerate(blocks):
        idx = perm[start : start + k]
        start += k
        f = rng.standard_normal(T)
        e[:, idx] = math.sqrt(rho) * f[:, None] + math.sqrt(1.0 - rho) * e[:, idx]
        truth[idx] = j
    vol = 0.015 * np.exp(rng.normal(0.0, 0.3, N))
    u = e * vol
    if missing:
        u[rng.random((T, N)) < missing] = np.nan
    dates = np.datetime64("2015-01-02") + np.arange(T + 1).astype("timedelta64[D]")
    stocks = np.array([f"S{i:04d}" for i in range(N)])
    res = xr.DataArray(
        np.vstack([np.full((1, N), np.nan), u]), dims=("date", "stock"), coords={"date": dates, "stock": stocks}
    )
    sv = xr.DataArray(np.tile(vol**2, (T + 1, 1)), dims=("date", "stock"), coords={"date": dates, "stock": stocks})
    return res, sv, truth


def membership(audit, stocks):
    pos = {s: i for i, s in enumerate(stocks)}
    lab = np.full(len(stocks), -1)
    for j, c in enumerate(audit.clusters):
        lab[[pos[s] for s in c.stocks]] = j
    return lab


def dense_z(res, sv, clip=5.0):
    """Numpy reference of the standardised matrix (METHODS §7.1 as documented)."""
    u = res.values[1:]
    s = np.sqrt(sv.values[:-1])
    z = np.clip(u / s, -clip, clip)
    m = np.isfinite(z)
    n = m.sum(0)
    zf = np.where(m, z, 0.0)
    mu = zf.sum(0) / n
    sd = np.sqrt((np.where(m, (z - mu) ** 2, 0.0)).sum(0) / n)
    return np.where(m, (z - mu) / sd * np.sqrt(z.shape[0] / n), 0.0)


ONE_BLOCK = ((100, 0.15),)


@pytest.fixture(scope="module")
def one_block():
    res, sv, truth = residual_world(blocks=ONE_BLOCK, seed=1)
    return res, sv, truth, rm.audit_residuals(res, specific_var=sv)


# ----------------------------------------------------------------------------- spectrum numerics
@pytest.mark.parametrize("shape", [(504, 300), (200, 300)])
@pytest.mark.parametrize("method", ["gram", "krylov"])
def test_top_eigenpairs_match_dense_eigh(shape, method):
    rng = np.random.default_rng(3)
    Z = rng.standard_t(4, size=shape)
    Z[:, :20] += 0.5 * rng.standard_normal((shape[0], 1))
    Z = (Z - Z.mean(0)) / Z.std(0)
    C = Z.T @ Z / shape[0]
    ref = np.linalg.eigvalsh(C)[::-1][:20]
    got = sp.top_eigenpairs(Z, 20, method=method, rtol=1e-14, rng=rng)
    assert got.method == method
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=1e-10)
    # eigenvectors: unit, C v = lambda v
    np.testing.assert_allclose(np.linalg.norm(got.vectors, axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(C @ got.vectors, got.vectors * got.values, atol=1e-8)


def test_krylov_restarts_reach_the_same_spectrum():
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((700, 900))
    ref = np.linalg.eigvalsh(Z @ Z.T / 700)[::-1][:10]
    got = sp.top_eigenpairs(Z, 10, method="krylov", rtol=1e-13, max_basis=60, max_restarts=200, rng=rng)
    np.testing.assert_allclose(got.values, ref, atol=1e-9)


def test_audit_eigenvalues_equal_dense_reference_with_missing_values():
    res, sv, _ = residual_world(n_stocks=300, n_dates=504, blocks=((30, 0.2),), seed=5, missing=0.02)
    audit = rm.audit_residuals(res, specific_var=sv, max_components=20, n_null=5)
    Z = dense_z(res, sv)
    ref = np.linalg.eigvalsh(Z.T @ Z / Z.shape[0])[::-1][:20]
    np.testing.assert_allclose(audit.eigenvalues.values, ref, atol=1e-10)
    assert audit.spectrum_method == "gram"
    # the normalisation gives C a unit diagonal
    np.testing.assert_allclose((Z * Z).sum(0) / Z.shape[0], 1.0, atol=1e-12)


def test_closed_forms():
    lo, hi = sp.marchenko_pastur_edges(1000, 250)
    assert (lo, hi) == pytest.approx((1.0, 9.0))
    assert sp.bbp_bound(3000, 252) == pytest.approx(1 + math.sqrt(3000 / 252))
    assert sp.bbp_bound(3000, 252) == pytest.approx(4.45, abs=0.01)  # METHODS §7.3
    # TW edge sits just above the MP edge and approaches it as N, T grow
    small, big = sp.tracy_widom_edge(500, 250), sp.tracy_widom_edge(5000, 2500)
    assert small > sp.marchenko_pastur_edges(500, 250)[1] > 0
    assert big - sp.marchenko_pastur_edges(5000, 2500)[1] < small - sp.marchenko_pastur_edges(500, 250)[1]
    # spike model: population excess l = 3, g = 1 -> lambda = 4 * 4/3, overlap (1 - 1/9)/(1 + 1/3)
    lam = (1 + 3.0) * (1 + 1.0 / 3.0)
    assert sp.spike_overlap(lam, 500, 500)[0] == pytest.approx((1 - 1 / 9) / (1 + 1 / 3), rel=1e-12)
    assert sp.spike_overlap(1.5, 500, 500)[0] == 0.0


# ----------------------------------------------------------------------------- null
@pytest.mark.parametrize("kind", ["shuffle", "shift", "sign"])
def test_surrogates_keep_each_column_and_lanczos_matches_dense(kind):
    rng = np.random.default_rng(6)
    T, N, S = 240, 150, 6
    Z = rng.standard_t(4, size=(T, N))
    Z[:, :15] += rng.standard_normal((T, 1))
    for group in (1, 7):
        plan = sp.surrogate_plan(T, N, S, kind, np.random.default_rng(7), group_size=group)
        a, b = math.sqrt(T - 1), math.sqrt(N)
        sigma_tw = (a + b) * (1 / a + 1 / b) ** (1 / 3) / T
        lam = sp._lockstep_lanczos_top(Z, plan, S, rng, tol=1e-9, max_iter=T) / T
        for s in range(S):
            Zs = sp.apply_surrogate(Z, plan, s)
            if kind == "sign":
                np.testing.assert_array_equal(np.abs(Zs), np.abs(Z))
            else:  # same values in every column, in another order
                np.testing.assert_array_equal(np.sort(Zs, axis=0), np.sort(Z, axis=0))
            ref = np.linalg.eigvalsh(Zs.T @ Zs / T)[-1]
            assert abs(lam[s] - ref) < 1e-3 * sigma_tw
        # product used by the Lanczos recurrence == dense surrogate products
        X = rng.standard_normal((T, S))
        Y = sp._surrogate_gram_product(Z, plan, X)
        for s in range(S):
            Zs = sp.apply_surrogate(Z, plan, s)
            np.testing.assert_allclose(Y[:, s], Zs @ (Zs.T @ X[:, s]), rtol=1e-12, atol=1e-9)


def test_null_destroys_cross_sectional_structure():
    """Per-column surrogates of a world with a strong block sit at the MP edge, not the spike."""
    rng = np.random.default_rng(8)
    T, N = 400, 300
    Z = rng.standard_normal((T, N))
    Z[:, :60] += rng.standard_normal((T, 1))
    spike = np.linalg.eigvalsh(Z.T @ Z / T)[-1]
    lam, g = sp.null_lambda_max(Z / Z.std(0), 10, "shuffle", rng, group_size=1)
    assert g == 1
    assert spike > 20
    assert np.all(lam < sp.tracy_widom_edge(N, T) + 0.3)
    assert np.all(lam > sp.marchenko_pastur_edges(N, T)[1] - 0.3)


def test_default_null_stops_close_to_the_exact_edge():
    rng = np.random.default_rng(9)
    T, N = 504, 1000
    Z = rng.standard_t(5, size=(T, N))
    Z = (Z - Z.mean(0)) / Z.std(0)
    plan_rng = np.random.default_rng(10)
    lam, g = sp.null_lambda_max(Z, 6, "sign", plan_rng)
    plan = sp.surrogate_plan(T, N, 6, "sign", np.random.default_rng(10), group_size=g)
    a, b = math.sqrt(T - 1), math.sqrt(N)
    sigma_tw = (a + b) * (1 / a + 1 / b) ** (1 / 3) / T
    for s in range(6):
        Zs = sp.apply_surrogate(Z, plan, s)
        ref = np.linalg.eigvalsh(Zs @ Zs.T / T)[-1]
        assert -0.25 * sigma_tw < lam[s] - ref <= 1e-9  # Ritz values approach from below


def _tw_scale(T, N):
    a, b = math.sqrt(T - 1), math.sqrt(N)
    return (a + b) * (1 / a + 1 / b) ** (1 / 3) / T


@pytest.mark.parametrize("kind", ["shuffle", "shift", "sign"])
def test_float32_null_matches_converged_float64_null(kind):
    """The default null (float32 products, default step count) against the same surrogates in
    float64, in Tracy-Widom units sigma:

    * same steps and start vectors in float64: within 1e-4 sigma (float32 rounding alone;
      about 1e-5 sigma measured);
    * float64 run to convergence (= the dense eigenvalue): every surrogate within
      [-0.25, +1e-4] sigma (Ritz values approach from below; the default step count leaves
      an occasional slow surrogate ~0.2 sigma short), median within 5% of sigma and the
      99% edge within 5% of sigma.
    """
    rng = np.random.default_rng(21)
    T, N, S = 504, 1000, 12
    Z = rng.standard_t(5, size=(T, N))
    Z[:, :40] += 0.4 * rng.standard_normal((T, 1))  # a block: the surrogates must not see it
    Z = (Z - Z.mean(0)) / Z.std(0)
    sigma = _tw_scale(T, N)
    lam32, g = sp.null_lambda_max(Z, S, kind, np.random.default_rng(22))
    same64, _ = sp.null_lambda_max(Z, S, kind, np.random.default_rng(22), dtype=np.float64)
    lam64, g64 = sp.null_lambda_max(
        Z, S, kind, np.random.default_rng(22), dtype=np.float64, tol=1e-10, n_iter=T, max_iter=T
    )
    assert g == g64 and g < N  # grouped: the default plan
    assert np.abs(lam32 - same64).max() < 1e-4 * sigma
    assert np.abs(lam32 - same64).max() > 0  # the float32 path was taken
    # the float64 run is converged: the dense eigenvalue of each surrogate
    plan = sp.surrogate_plan(T, N, S, kind, np.random.default_rng(22), group_size=g)
    for s in range(S):
        Zs = sp.apply_surrogate(Z, plan, s)
        assert lam64[s] == pytest.approx(np.linalg.eigvalsh(Zs @ Zs.T / T)[-1], abs=1e-9)
    err = (lam32 - lam64) / sigma
    assert np.all((err > -0.25) & (err < 1e-4)), err
    assert np.median(np.abs(err)) < 0.05
    assert abs(np.quantile(lam32, 0.99) - np.quantile(lam64, 0.99)) < 0.05 * sigma


@pytest.mark.parametrize("kind", ["shuffle", "sign"])
def test_float32_surrogate_product_matches_float64(kind):
    rng = np.random.default_rng(23)
    T, N, S = 300, 400, 5
    Z = np.asfortranarray(rng.standard_t(4, size=(T, N)))
    plan = sp.surrogate_plan(T, N, S, kind, np.random.default_rng(24), group_size=30)
    X = rng.standard_normal((T, S))
    Y64 = sp._surrogate_gram_product(Z, plan, X)
    Y32 = sp._surrogate_gram_product(Z, plan, X, np.float32)
    assert Y32.dtype == np.float64
    np.testing.assert_allclose(Y32, Y64, rtol=0, atol=1e-5 * np.abs(Y64).max())
    assert np.abs(Y32 - Y64).max() > 0  # the float32 path was taken


def test_surrogate_plan_inverse_is_the_inverse_permutation():
    T, N, S = 50, 2000, 4
    plan = sp.surrogate_plan(T, N, S, "shuffle", np.random.default_rng(25), group_size=400)
    assert plan.inverse is not None  # 5 groups: the index arrays are small next to Z
    flat = np.arange(T * S)
    for g in range(plan.perm.shape[0]):
        np.testing.assert_array_equal(flat[plan.perm[g].ravel()][plan.inverse[g].ravel()], flat)
        np.testing.assert_array_equal(np.sort(plan.perm[g], axis=0), np.sort(plan.inverse[g], axis=0))
    # the gather through the inverse and the scatter through perm give the same product
    rng = np.random.default_rng(29)
    Z = np.asfortranarray(rng.standard_normal((T, N)))
    X = rng.standard_normal((T, S))
    scatter = sp.SurrogatePlan(plan.edges, plan.kind, plan.perm, None, None)
    np.testing.assert_allclose(
        sp._surrogate_gram_product(Z, plan, X), sp._surrogate_gram_product(Z, scatter, X), rtol=1e-13, atol=1e-10
    )
    # many small groups: no inverse (memory), same plan otherwise
    small = sp.surrogate_plan(T, 40, S, "shuffle", np.random.default_rng(25), group_size=7)
    assert small.inverse is None and small.perm.shape == (6, T, S)


@pytest.mark.parametrize("shape", [(600, 1400), (1400, 600)])
def test_gram_mixed_matches_dense_eigh(shape):
    """The float32 Gram matrix only supplies the start: the float64 refinement reaches dense accuracy."""
    rng = np.random.default_rng(29)
    Z = rng.standard_t(4, size=shape)
    Z[:, :30] += 0.4 * rng.standard_normal((shape[0], 1))
    Z = np.asfortranarray((Z - Z.mean(0)) / Z.std(0))
    T = shape[0]
    C = Z.T @ Z / T
    ref = np.linalg.eigvalsh(C)[::-1][:20]
    got = sp.top_eigenpairs(Z, 20, rng=rng)  # "auto": min(T, N) = 600 > DENSE_LIMIT, G is small
    assert got.method == "gram-mixed"
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=1e-10)
    # the vectors: the refinement stops when no Ritz value moves by more than 0.3 rtol * theta_1
    # over a block, so a vector's residual is of that order, not of float64 rounding (on this
    # world 4e-8 typically, up to 1.7e-7 with another CPU's float32 start); the float64
    # eigenvalues above are what the refinement buys
    rtol = inspect.signature(sp.top_eigenpairs).parameters["rtol"].default
    stop_scale = sp._REFINE * rtol * got.values[0]
    assert np.abs(C @ got.vectors - got.vectors * got.values).max() < stop_scale
    # the float32 start alone carries float32 rounding; the refinement is what buys the digits
    start = sp._gram32_start(Z, 30)
    side = Z @ Z.T if T <= shape[1] else Z.T @ Z
    rayleigh = np.sort(np.einsum("ik,ij,jk->k", start, side, start))[::-1][:20] / T
    assert 1e-9 < np.abs(rayleigh - ref).max() < 1e-3


def test_auto_route_keeps_krylov_when_the_gram_matrix_is_large():
    Z = np.zeros((700, 800))  # min^2 float32 bytes > 0.3 of Z's bytes
    Z[np.arange(700), np.arange(700)] = 1.0
    Z[:, 700:] = np.random.default_rng(30).standard_normal((700, 100))
    assert sp.top_eigenpairs(Z, 3).method == "krylov"


@pytest.mark.slow
def test_audit_at_gram_mixed_size_finds_the_block():
    """An audit large enough for the float32-Gram spectrum equals the dense spectrum."""
    res, sv, truth = residual_world(n_stocks=2100, n_dates=900, blocks=((60, 0.2),), seed=28)
    audit = rm.audit_residuals(res, specific_var=sv, window=900, max_components=5, n_null=10)
    assert audit.spectrum_method == "gram-mixed"
    Z = dense_z(res, sv)
    ref = np.linalg.eigvalsh(Z @ Z.T / Z.shape[0])[::-1][:5]
    np.testing.assert_allclose(audit.eigenvalues.values, ref, rtol=1e-10)
    assert audit.n_significant >= 1  # (at T = 900 a second, weak component can pass 10 surrogates)
    assert adjusted_rand_score(truth, membership(audit, res["stock"].values)) >= 0.9


# ----------------------------------------------------------------------------- cluster helpers
def test_pairwise_correlation_matches_pandas():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((120, 7))
    X[:, 1] += X[:, 0]
    X[rng.random(X.shape) < 0.15] = np.nan
    rho, n = cl.pairwise_correlation(X)
    ref = pd.DataFrame(X).corr(min_periods=3).to_numpy()
    np.testing.assert_allclose(rho, ref, atol=1e-12)
    m = np.isfinite(X).astype(int)
    np.testing.assert_array_equal(n, m.T @ m)


def test_portfolio_bias_matches_direct_computation():
    rng = np.random.default_rng(12)
    z = rng.standard_normal((300, 12))
    z[rng.random(z.shape) < 0.1] = np.nan
    ok = np.isfinite(z)
    sums = np.where(ok, z, 0).sum(1, keepdims=True)
    counts = ok.sum(1, keepdims=True).astype(float)
    b, n = cl.portfolio_bias(sums, counts)
    x = np.nansum(z, 1) / np.sqrt(ok.sum(1))
    assert b[0] == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    assert n[0] == 300


def test_held_out_p_value_is_calibrated_under_independence():
    rng = np.random.default_rng(13)
    p = []
    for _ in range(400):
        x = rng.standard_t(4, size=(250, 10))
        rho, n = cl.pairwise_correlation(x)
        p.append(cl.held_out_p_value(cl.mean_offdiagonal(rho), 10, 250))
    share = np.mean(np.array(p) < 0.05)
    assert 0.02 <= share <= 0.09


def test_filtered_correlation_and_linkage_recover_blocks():
    rng = np.random.default_rng(14)
    N = 60
    v = np.zeros((N, 2))
    v[:20, 0] = 1 / math.sqrt(20)
    v[20:35, 1] = 1 / math.sqrt(15)
    rho = cl.filtered_correlation(v, np.array([5.0, 4.0]))
    assert np.allclose(np.diag(rho), 1.0)
    assert rho[0, 1] == pytest.approx(5.0 / 20)
    groups = cl.average_linkage(rho[:35, :35] + 0 * rng.random(), 0.1, 5)
    assert [sorted(g) for g in groups] == [list(range(20)), list(range(20, 35))]


# ----------------------------------------------------------------------------- known worlds
def test_one_hidden_block_found_and_costly(one_block):
    res, sv, truth, audit = one_block
    assert audit.n_significant == 1
    assert audit.eigenvalues.values[0] > audit.null_edge > audit.mp_edge * 0.99
    ari = adjusted_rand_score(truth, membership(audit, res["stock"].values))
    assert ari >= 0.9
    c = audit.clusters[0]
    assert len(audit.clusters) == 1
    assert 0.1 < c.mean_correlation < 0.2
    assert c.bias_out > 1.5 and c.flagged
    assert c.p_value < 1e-6
    band = 2 * math.sqrt(2 / audit.n_test)
    assert np.mean(np.abs(c.random_bias - 1) <= band) >= 0.9
    assert c.random_bias.size == 100
    # the candidate factor return is the members' mean residual
    members = res.sel(stock=c.stocks).sel(date=audit.dates)
    np.testing.assert_allclose(c.returns.values, members.mean("stock", skipna=True).values, atol=1e-15)
    assert 1.0 / c.size * 0.5 < c.ipr < 3.0 / c.size


def test_two_blocks_above_the_bound_both_found():
    res, sv, truth = residual_world(blocks=((100, 0.15), (40, 0.2)), seed=2)
    audit = rm.audit_residuals(res, specific_var=sv)
    assert audit.n_significant == 2
    assert adjusted_rand_score(truth, membership(audit, res["stock"].values)) >= 0.9
    assert all(c.flagged for c in audit.clusters)
    assert audit.clusters[0].strength > audit.clusters[1].strength


def test_weak_block_below_the_bound_not_found():
    k, rho = 8, 0.15  # (k - 1) rho = 1.05 < sqrt(N/T) = 1.41: undetectable (BBP)
    res, sv, truth = residual_world(blocks=((100, 0.15), (k, rho)), seed=3)
    audit = rm.audit_residuals(res, specific_var=sv)
    assert 1 + (k - 1) * rho < audit.detectability
    assert audit.n_significant == 1
    weak = set(res["stock"].values[truth == 1])
    assert all(len(weak & set(c.stocks)) < k / 2 for c in audit.clusters)


def test_nothing_hidden_nothing_flagged():
    res, sv, _ = residual_world(seed=4)
    audit = rm.audit_residuals(res, specific_var=sv)
    assert audit.n_significant == 0
    assert audit.clusters == []
    assert "none" in audit.summary()


def test_fit_like_object_and_specific_vector_agree():
    res, sv, _ = residual_world(n_stocks=400, n_dates=300, blocks=((40, 0.2),), seed=6)
    a = rm.audit_residuals(res, specific_var=sv, n_null=8)
    b = rm.audit_residuals(SimpleNamespace(residuals=res, specific_var=sv), n_null=8)
    np.testing.assert_array_equal(a.eigenvalues.values, b.eigenvalues.values)
    assert [c.stocks for c in a.clusters] == [c.stocks for c in b.clusters]
    # a constant forecast per stock, given as a (stock,) vector, is the same standardisation
    c = rm.audit_residuals(res, specific_var=sv.isel(date=0), n_null=8)
    np.testing.assert_allclose(c.eigenvalues.values, a.eigenvalues.values, atol=1e-10)
    assert c.n_dates == a.n_dates
    # without any forecast: ex-post scaling, same clusters here
    d = rm.audit_residuals(res.to_pandas(), n_null=8)
    assert not d.standardised
    assert [x.stocks for x in d.clusters] == [x.stocks for x in a.clusters]


def test_labels_purity_with_industry_codes_over_dates():
    res, sv, truth = residual_world(n_stocks=400, n_dates=300, blocks=((40, 0.2),), seed=7)
    stocks = res["stock"].values
    codes = np.where(truth == 0, 1, 0).astype(np.int32)
    codes[np.flatnonzero(truth == 0)[:4]] = 2  # 4 members in another industry
    panel_codes = np.tile(codes, (res.sizes["date"], 1))
    panel_codes[-1, :] = -1  # last date missing: the previous label is used
    ind = xr.DataArray(panel_codes, dims=("date", "stock"), coords={"date": res["date"], "stock": stocks},
                       attrs={"labels": ["Tech", "Oil", "Gas"]})
    audit = rm.audit_residuals(res, ind, specific_var=sv, n_null=8)
    c = audit.clusters[0]
    assert c.dominant_label == "Oil"
    assert c.purity == pytest.approx(1 - 4 / c.size, abs=0.05)
    series = pd.Series(np.where(truth == 0, "Oil", "Tech"), index=stocks)
    c = rm.audit_residuals(res, series, specific_var=sv, n_null=8).clusters[0]
    assert c.dominant_label == "Oil" and c.purity >= 0.95


# ----------------------------------------------------------------------------- bad input
def test_all_nan_and_thin_stocks_are_excluded_and_listed():
    res, sv, _ = residual_world(n_stocks=200, n_dates=200, seed=8)
    res = res.copy()
    res[:, 3] = np.nan
    res[:, 7] = np.nan
    res[: 150, 11] = np.nan  # 25% coverage
    audit = rm.audit_residuals(res, specific_var=sv, n_null=5)
    assert audit.excluded["S0003"] == "no data in the window"
    assert audit.excluded["S0007"] == "no data in the window"
    assert audit.excluded["S0011"].startswith("coverage 0.2")
    assert audit.n_excluded == 3 and audit.n_stocks == 197
    assert "S0003" not in audit.stocks
    assert "3 excluded" in audit.summary()
    ds = audit.to_dataset()
    assert "S0003" in ds.attrs["excluded"] and ds.sizes["stock"] == 197


def test_too_few_days_is_insufficient_data():
    res, sv, _ = residual_world(n_stocks=100, n_dates=30, seed=9)
    with pytest.raises(rm.InsufficientDataError, match=r"30 date\(s\).*at least 40"):
        rm.audit_residuals(res, specific_var=sv)
    res, sv, _ = residual_world(n_stocks=100, n_dates=200, seed=9, missing=0.5)
    with pytest.raises(rm.InsufficientDataError, match=r"only 0 stock\(s\).*80% of the 200 dates"):
        rm.audit_residuals(res, specific_var=sv)


def test_labels_that_do_not_match_raise_alignment_error():
    res, sv, _ = residual_world(n_stocks=100, n_dates=120, seed=10)
    labels = xr.DataArray(["A"] * 98, dims="stock", coords={"stock": res["stock"].values[:98]})
    with pytest.raises(rm.AlignmentError, match=r"labels has no entry for 2 audited stock\(s\).*S0098.*S0099"):
        rm.audit_residuals(res, labels, specific_var=sv, n_null=4)
    extra = xr.DataArray(["A"] * 101, dims="stock", coords={"stock": [*res["stock"].values, "ZZZ"]})
    assert rm.audit_residuals(res, extra, specific_var=sv, n_null=4).n_stocks == 100


def test_other_bad_inputs():
    res, sv, _ = residual_world(n_stocks=60, n_dates=120, seed=11)
    with pytest.raises(rm.AlignmentError, match=r"specific_var has no column.*S0059"):
        rm.audit_residuals(res, specific_var=sv.isel(stock=slice(0, 59)))
    bad = res.copy()
    bad[5, 2] = np.inf
    with pytest.raises(rm.NonFiniteError, match=r"stock 'S0002' on 2015-01-07"):
        rm.audit_residuals(bad, specific_var=sv)
    with pytest.raises(rm.DimensionError, match=r"dims \('time', 'stock'\)"):
        rm.audit_residuals(res.rename(date="time"))
    with pytest.raises(rm.InvalidParameterError, match=r"null='bootstrap'"):
        rm.audit_residuals(res, null="bootstrap")
    with pytest.raises(rm.InvalidParameterError, match=r"test_fraction=1.0"):
        rm.audit_residuals(res, test_fraction=1.0)
    with pytest.raises(rm.VariableTypeError, match=r"fitted model with .residuals"):
        rm.audit_residuals(np.zeros((5, 5)))
    dup = res.assign_coords(stock=["S0000"] * 2 + list(res["stock"].values[2:]))
    with pytest.raises(rm.DuplicateLabelError, match="S0000"):
        rm.audit_residuals(dup)
    rev = res.isel(date=slice(None, None, -1))
    with pytest.raises(rm.DateOrderError, match="not strictly increasing"):
        rm.audit_residuals(rev)


# ----------------------------------------------------------------------------- outputs
def test_summary_repr_dataset(one_block, tmp_path):
    _, _, _, audit = one_block
    text = audit.summary()
    assert "MP edge" in text and "null edge" in text and "yes" in text
    assert "1 eigenvalue(s) above the null edge" in repr(audit)
    assert "FLAGGED" in repr(audit.clusters[0])
    ds = audit.to_dataset()
    assert ds["cluster_returns"].dims == ("date", "cluster")
    assert int((ds["cluster_of_stock"] == 0).sum()) == audit.clusters[0].size
    path = tmp_path / "audit.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    np.testing.assert_allclose(back["eigenvalue"].values, audit.eigenvalues.values)


def test_figures_and_self_contained_html(one_block, tmp_path):
    _, _, _, audit = one_block
    paths = audit.figures(tmp_path / "fig")
    assert set(paths) == {"spectrum", "clusters", "bias", "bias_time"}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(rm.InvalidParameterError, match="kind='pie'"):
        audit.plot("pie")
    out = audit.to_html(tmp_path / "rep" / "audit.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    stripped = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', 'src=""', text)
    assert not re.search(r"https?:|//|<script|<link|@import|<iframe", stripped)
    images = re.findall(r'<img[^>]*src="([^"]+)"', text)
    assert len(images) == 4
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Summary" in text and "Settings" in text
    assert sorted(q.name for q in out.parent.iterdir()) == ["audit.html"]  # no temp file left


def test_report_write_is_atomic(tmp_path, monkeypatch):
    from riskmodel.report import html as report

    target = tmp_path / "r.html"
    report.write_report(target, "old", [report.Block("p", "first")])
    old = target.read_text()

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(os, "replace", boom)  # the rename of the finished temporary (riskmodel._atomic)
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_report(target, "new", [report.Block("p", "second")])
    assert target.read_text() == old
    assert sorted(q.name for q in tmp_path.iterdir()) == ["r.html"]


def test_no_clusters_still_draws(tmp_path):
    res, sv, _ = residual_world(n_stocks=150, n_dates=120, seed=12)
    audit = rm.audit_residuals(res, specific_var=sv, n_null=5)
    assert audit.clusters == []
    assert audit.to_html(tmp_path / "a.html").exists()
    assert audit.to_dataset().sizes["cluster"] == 0


# ----------------------------------------------------------------------------- many seeds
@pytest.mark.slow
def test_many_seeds_one_block_and_null_worlds():
    ok_block, ok_null, no_spike = 0, 0, 0
    for seed in range(20):
        res, sv, truth = residual_world(blocks=ONE_BLOCK, seed=100 + seed)
        a = rm.audit_residuals(res, specific_var=sv, seed=seed)
        band = 2 * math.sqrt(2 / a.n_test)
        ok_block += (
            a.n_significant == 1
            and len(a.clusters) >= 1
            and adjusted_rand_score(truth, membership(a, res["stock"].values)) >= 0.9
            and a.clusters[0].bias_out > 1.5
            and np.mean(np.abs(a.clusters[0].random_bias - 1) <= band) >= 0.9
        )
        res, sv, _ = residual_world(seed=200 + seed)
        b = rm.audit_residuals(res, specific_var=sv, seed=seed)
        ok_null += not b.flagged  # METHODS §7 accept: nothing flagged in >= 95% of seeds
        no_spike += b.n_significant == 0  # a 99% edge from 30 surrogates: ~3% false spikes
    assert ok_block >= 19
    assert ok_null >= 19
    assert no_spike >= 17


@pytest.mark.slow
def test_many_seeds_two_blocks():
    found, weak_missed = 0, 0
    for seed in range(20):
        res, sv, truth = residual_world(blocks=((100, 0.15), (40, 0.2)), seed=300 + seed)
        a = rm.audit_residuals(res, specific_var=sv, seed=seed)
        found += a.n_significant == 2 and adjusted_rand_score(truth, membership(a, res["stock"].values)) >= 0.9
        res, sv, truth = residual_world(blocks=((100, 0.15), (8, 0.15)), seed=400 + seed)
        b = rm.audit_residuals(res, specific_var=sv, seed=seed)
        weak = set(res["stock"].values[truth == 1])
        weak_missed += b.n_significant == 1 and all(len(weak & set(c.stocks)) < 4 for c in b.clusters)
    assert found >= 19
    assert weak_missed >= 19


def test_benchmark_toy_run(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_audit.py"
    spec = importlib.util.spec_from_file_location("bench_audit", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "audit.json"
    result = mod.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == result["rows"] and len(saved["rows"]) == 1
    row = saved["rows"][0]
    assert row["max_abs_eigenvalue_diff_vs_dense"] < 1e-8
    assert row["audit_seconds"] > 0 and row["dense_seconds"] > 0
