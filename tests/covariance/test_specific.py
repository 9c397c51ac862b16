"""Specific-variance forecasts (METHODS section 4) on simulated worlds with known truth."""

from __future__ import annotations

import types

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.covariance import specific as sp
from riskmodel.errors import DimensionError, InvalidParameterError, NonFiniteError
from riskmodel.exposures import Exposures

# ---------------------------------------------------------------------------------------
# simulated world
# ---------------------------------------------------------------------------------------


def make_world(seed=0, T=700, N=800, P=4, dist="gauss", n_new=40):
    """Specific returns with true sigma lognormal and correlated with size.

    ln sigma = -4 - 0.25 size + industry effect + 0.3 noise; caps lognormal and drifting;
    two styles (size and an unrelated one); ``n_new`` names list in the last 45 days.
    Returns (u, exposures, true_sigma (N,), listing day (N,)).
    """
    rng = np.random.default_rng(seed)
    log_cap0 = rng.normal(7.0, 1.5, N)
    log_cap = log_cap0[None, :] + np.cumsum(0.01 * rng.standard_normal((T, N)), axis=0)
    cap = np.exp(log_cap)
    size = (log_cap - log_cap.mean(axis=1, keepdims=True)) / log_cap.std(axis=1, keepdims=True)
    other = rng.standard_normal(N)[None, :] + 0.05 * rng.standard_normal((T, N))
    styles = np.ascontiguousarray(np.stack([size, other], axis=2))
    ind0 = rng.integers(0, P, N).astype(np.int32)
    industry = np.repeat(ind0[None, :], T, axis=0)
    ind_effect = rng.normal(0.0, 0.2, P)
    size0 = (log_cap0 - log_cap0.mean()) / log_cap0.std()
    true_sig = np.exp(-4.0 - 0.25 * size0 + ind_effect[ind0] + 0.3 * rng.standard_normal(N))
    if dist == "gauss":
        e = rng.standard_normal((T, N))
    else:  # Student t with 5 dof, unit variance
        e = rng.standard_t(5, (T, N)) / np.sqrt(5 / 3)
    u = e * true_sig
    listing = np.zeros(N, int)
    new = rng.choice(N, n_new, replace=False)
    listing[new] = rng.integers(T - 45, T - 5, n_new)
    alive = np.arange(T)[:, None] >= listing[None, :]
    u = np.where(alive, u, np.nan)
    u[rng.random((T, N)) < 0.02] = np.nan  # scattered missing days
    cap = np.where(alive, cap, np.nan)
    styles = np.where(alive[..., None], styles, np.nan)
    industry = np.where(alive, industry, -1).astype(np.int32)
    estu = alive & (np.arange(T)[:, None] >= listing[None, :] + 60)
    weights = np.where(estu, np.sqrt(cap), np.nan)
    dates = (np.datetime64("2010-01-01") + np.arange(T).astype("timedelta64[D]")).astype("datetime64[ns]")
    ex = Exposures(
        dates=dates,
        stocks=np.array([f"S{n:04d}" for n in range(N)]),
        style_names=("size", "other"),
        industry_labels=tuple(f"ind{p}" for p in range(P)),
        styles=styles,
        industry=industry,
        weights=weights,
        cap=cap,
        imputed=np.zeros((T, N, 2), bool),
    )
    return u, ex, true_sig, listing


@pytest.fixture(scope="module")
def world():
    return make_world()


@pytest.fixture(scope="module")
def fitted(world):
    u, ex, _, _ = world
    return sp.specific_variance(u, ex)


def _z_next(u, var, t0):
    """Standardised next-day residuals u_{t+1} / sigma_t for rows t0 .. T-2 (ex ante)."""
    return u[t0 + 1 :] / np.sqrt(var[t0:-1])


def _decile_bias(z, sig, n=10):
    """Bias (std of pooled z) by forecast-vol decile, deciles formed per date."""
    ok = np.isfinite(z) & np.isfinite(sig)
    ranks = np.full(z.shape, -1)
    for i in range(z.shape[0]):  # test helper: a loop over dates is fine here
        s = np.where(ok[i], sig[i], np.nan)
        order = np.argsort(np.argsort(s))
        ranks[i] = np.where(ok[i], order * n // ok[i].sum(), -1)
    return np.array([np.sqrt(np.mean(z[ranks == d] ** 2)) for d in range(n)])


# ---------------------------------------------------------------------------------------
# METHODS section 4 Accept
# ---------------------------------------------------------------------------------------


def test_public_name_is_mapped():
    assert rm.specific_variance is sp.specific_variance


def test_median_stock_bias_is_one(world, fitted):
    u, ex, _, listing = world
    t0 = u.shape[0] - 251
    z = _z_next(u, fitted.var, t0)
    old = listing == 0
    bias = np.nanstd(z[:, old], axis=0, ddof=1)
    assert abs(np.median(bias) - 1.0) <= 0.03
    # the per-stock spread matches sampling noise of 250 days (sd ~ 1/sqrt(500) ~ 0.045)
    assert np.std(bias) < 0.10


def test_decile_bias_spread_small_and_shrinkage_helps(world, fitted):
    u, ex, _, listing = world
    t0 = u.shape[0] - 251
    unshrunk = sp.specific_variance(u, ex, shrink=0.0)
    z_sh = _z_next(u, fitted.var, t0)
    z_un = _z_next(u, unshrunk.var, t0)
    b_sh = _decile_bias(z_sh, fitted.var[t0:-1])
    b_un = _decile_bias(z_un, unshrunk.var[t0:-1])
    spread_sh = b_sh.max() - b_sh.min()
    spread_un = b_un.max() - b_un.min()
    assert spread_sh <= 0.10
    assert spread_sh < spread_un
    # the unshrunk pattern: low forecast vol under-predicted, high over-predicted
    assert b_un[0] > b_un[-1]


def test_new_listings_get_finite_positive_forecasts(world, fitted):
    u, ex, _, listing = world
    T = u.shape[0]
    young = (fitted.n_obs < 60) & np.isfinite(u)
    young[:1] = False
    assert young[-40:].sum() > 100
    assert np.all(np.isfinite(fitted.var[young])) and np.all(fitted.var[young] > 0)
    assert np.all(fitted.gamma[young] == 0.0)
    # their forecasts come from the structural model: right order of magnitude
    new = listing > 0
    ratio = np.sqrt(fitted.var[T - 1, new]) / world[2][new]
    ok = np.isfinite(ratio)
    assert ok.sum() >= 30 and 0.8 < np.exp(np.mean(np.log(ratio[ok]))) < 1.25


def test_gaussian_gamma_ramp(world, fitted):
    h, g = fitted.n_obs, fitted.gamma
    assert np.all(g[h <= 60] == 0.0)
    assert np.all(g[h >= 180] == 1.0)
    mid = (h > 60) & (h < 180)
    np.testing.assert_allclose(g[mid], (h[mid] - 60) / 120, rtol=1e-14)


def test_fat_tailed_name_gets_lower_gamma():
    u, ex, _, _ = make_world(seed=3, T=400, N=200, n_new=0)
    rng = np.random.default_rng(9)
    jumps = rng.random(400) < 0.10
    u[:, 0] = np.where(jumps, 20.0, 1.0) * 0.01 * rng.standard_normal(400)
    res = sp.specific_variance(u, ex)
    assert res.gamma[-1, 0] < 0.9
    assert np.median(res.gamma[-1, 1:]) == 1.0
    assert np.isfinite(res.var[-1, 0]) and res.var[-1, 0] > 0


def test_contract_finite_exactly_where_residual_and_exposures(world, fitted):
    u, ex, _, _ = world
    present = np.isfinite(u) & np.isfinite(ex.styles).all(axis=2)
    v = fitted.var
    assert np.all(np.isnan(v[~present]))
    assert np.all(np.isfinite(v[1:][present[1:]])) and np.all(v[1:][present[1:]] > 0)
    assert fitted.gamma.shape == v.shape and fitted.vra.shape == (u.shape[0],)


# ---------------------------------------------------------------------------------------
# switches reproduce the stages exactly
# ---------------------------------------------------------------------------------------


def _stage(u, ex, **kw):
    """Steps 1-3 through the public stages, the blend done here (its numpy twin)."""
    inputs = sp.specific_inputs(u, ex)
    s = sp.specific_settings(window=252, **kw)
    ts_var, h, gamma = sp.time_series_stage(inputs.residuals, s)
    sig_str, _, _ = sp.structural_volatility(
        ts_var, h, gamma, inputs.styles, inputs.industry, inputs.n_industries, inputs.weights, inputs.cap,
        min_obs=s["min_obs"], structural_scale=s["structural_scale"],
    )
    full, mid = gamma >= 1.0, (gamma > 0.0) & (gamma < 1.0)
    sig_hat = sig_str.copy()
    sig_hat[mid] = gamma[mid] * np.sqrt(ts_var[mid]) + (1.0 - gamma[mid]) * sig_str[mid]
    sig_hat[full] = np.sqrt(ts_var[full])
    return types.SimpleNamespace(ts_var=ts_var, gamma=gamma, sig_str=sig_str, sig_hat=sig_hat)


def test_no_shrink_no_vra_is_the_blend(world):
    u, ex, _, _ = world
    res = sp.specific_variance(u, ex, shrink=0.0, vra_half_life=None)
    bl = _stage(u, ex)
    present = np.isfinite(res.var)
    np.testing.assert_allclose(res.var[present], (bl.sig_hat**2)[present], rtol=1e-15)
    assert np.all(res.vra == 1.0)
    # blended = TS where gamma = 1, structural where gamma = 0
    g1 = present & (bl.gamma == 1.0)
    g0 = present & (bl.gamma == 0.0)
    np.testing.assert_array_equal(res.var[g1], bl.ts_var[g1])
    np.testing.assert_allclose(res.var[g0], bl.sig_str[g0] ** 2, rtol=1e-14)


def test_no_blend_no_shrink_no_vra_is_the_time_series(world):
    u, ex, _, _ = world
    res = sp.specific_variance(u, ex, blend=False, shrink=0.0, vra_half_life=None)
    ts_var, h, _ = sp.ts_stats(np.ascontiguousarray(u), half_life=84, lags=5, window=252)
    old = np.isfinite(res.var) & (h >= 60)
    np.testing.assert_array_equal(res.var[old], ts_var[old])
    np.testing.assert_array_equal(res.gamma, (h >= 60).astype(float))


def test_vra_is_a_row_multiplier_and_matches_direct_ewma(world, fitted):
    u, ex, _, _ = world
    base = sp.specific_variance(u, ex, vra_half_life=None)
    ratio = fitted.var / base.var
    ok = np.isfinite(ratio)
    lam2 = np.broadcast_to((fitted.vra**2)[:, None], ratio.shape)
    np.testing.assert_allclose(ratio[ok], lam2[ok], rtol=1e-13)
    # direct reference: B_t^2 with cap weights over the ESTU of t-1, EWMA with H=42
    bl = _stage(u, ex)
    sig_sh = sp.shrink_volatility(bl.sig_hat, ex.cap, (ex.weights > 0) & (ex.cap > 0), n_groups=10, q=0.1)
    T = u.shape[0]
    a = 2.0 ** (-1 / 42)
    lam = np.ones(T)
    b2 = []
    for t in range(1, T):
        z2 = (u[t] / sig_sh[t - 1]) ** 2
        ok_t = np.isfinite(z2) & (ex.weights[t - 1] > 0)
        if not ok_t.any():
            continue
        b2.append((t, np.sum(ex.cap[t - 1, ok_t] * z2[ok_t]) / ex.cap[t - 1, ok_t].sum()))
        if not b2:
            continue
        w = np.array([a ** (t - s) for s, _ in b2])
        lam[t] = np.sqrt(np.sum(w * np.array([x for _, x in b2])) / w.sum())
    np.testing.assert_allclose(fitted.vra, lam, rtol=1e-10)
    assert np.all((fitted.vra[300:] > 0.9) & (fitted.vra[300:] < 1.1))


def test_vra_multiplier_skips_dates_without_b2():
    b2 = np.array([np.nan, 4.0, np.nan, 1.0])
    a = 2.0 ** (-1.0 / 10)
    expected = [1.0, 2.0, 2.0, np.sqrt((4.0 * a**2 + 1.0) / (a**2 + 1.0))]
    np.testing.assert_allclose(sp.vra_multiplier(b2, 10), expected, rtol=1e-14)
    np.testing.assert_array_equal(sp.vra_multiplier(b2, None), np.ones(4))


def test_vra_reacts_to_a_volatility_step():
    u, ex, _, _ = make_world(seed=4, T=500, N=300, n_new=0)
    u[400:] *= 2.0
    res = sp.specific_variance(u, ex)
    assert np.all((res.vra[250:400] > 0.9) & (res.vra[250:400] < 1.1))
    assert res.vra[-1] > 1.2
    z_vra = _z_next(u, res.var, 400)
    z_raw = _z_next(u, sp.specific_variance(u, ex, vra_half_life=None).var, 400)
    assert abs(np.nanstd(z_vra) - 1) < abs(np.nanstd(z_raw) - 1)


def test_fixed_structural_scale_and_no_industry(world):
    u, ex, _, _ = world
    res = sp.specific_variance(u, ex, structural_scale=1.05)
    assert np.all(res.structural_scale[1:] == 1.05)
    import dataclasses

    ex_noind = dataclasses.replace(ex, industry=None, industry_labels=())
    res2 = sp.specific_variance(u, ex_noind)
    present = np.isfinite(u) & np.isfinite(ex.styles).all(axis=2)
    assert np.all(np.isfinite(res2.var[1:][present[1:]]))
    # Duan smearing of lognormal errors with sd ~0.3 is ~exp(0.3^2/2) or larger
    assert np.all(res.structural_scale[300:] == 1.05)
    assert np.nanmedian(res2.structural_scale[300:]) > 1.0


# ---------------------------------------------------------------------------------------
# no look-ahead
# ---------------------------------------------------------------------------------------


def _truncate(ex, t):
    import dataclasses

    return dataclasses.replace(
        ex, dates=ex.dates[: t + 1], styles=ex.styles[: t + 1], weights=ex.weights[: t + 1],
        cap=ex.cap[: t + 1], industry=ex.industry[: t + 1], imputed=ex.imputed[: t + 1],
    )


@pytest.mark.parametrize("t", [0, 59, 200, 450])
def test_no_look_ahead(world, fitted, t):
    u, ex, _, _ = world
    res = sp.specific_variance(u[: t + 1], _truncate(ex, t))
    np.testing.assert_array_equal(res.var, fitted.var[: t + 1])
    np.testing.assert_array_equal(res.gamma, fitted.gamma[: t + 1])
    np.testing.assert_array_equal(res.vra, fitted.vra[: t + 1])
    np.testing.assert_array_equal(res.structural_scale, fitted.structural_scale[: t + 1])


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


def test_infinite_residual_names_stock_and_date(world):
    u, ex, _, _ = world
    bad = u.copy()
    bad[5, 7] = np.inf
    with pytest.raises(NonFiniteError, match=r"stock 'S0007' on 2010-01-06"):
        sp.specific_variance(bad, ex)


def test_shape_mismatch(world):
    u, ex, _, _ = world
    with pytest.raises(DimensionError, match=r"exposures.styles must have shape"):
        sp.specific_variance(u[:, :-1], ex)
    with pytest.raises(DimensionError, match=r"residuals must be a 2-D"):
        sp.specific_variance(u[0], ex)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(half_life=0), "half_life"),
        (dict(lags=-1), "lags"),
        (dict(window=3, lags=5), "window"),
        (dict(min_obs=200), "min_obs"),
        (dict(shrink=1.5), "shrink"),
        (dict(n_groups=0), "n_groups"),
        (dict(structural_scale="mean"), "structural_scale"),
        (dict(structural_scale=-1.0), "structural_scale"),
        (dict(vra_half_life=0), "vra_half_life"),
    ],
)
def test_invalid_settings(world, kw, msg):
    u, ex, _, _ = world
    with pytest.raises(InvalidParameterError, match=msg):
        sp.specific_variance(u[:5], _truncate(ex, 4), **kw)


@pytest.mark.slow
def test_student_t_world_is_calibrated():
    u, ex, _, listing = make_world(seed=7, dist="t")
    res = sp.specific_variance(u, ex)
    z = _z_next(u, res.var, u.shape[0] - 251)
    bias = np.nanstd(z[:, listing == 0], axis=0, ddof=1)
    assert abs(np.median(bias) - 1.0) <= 0.03
    b = _decile_bias(z, res.var[u.shape[0] - 251 : -1])
    assert b.max() - b.min() <= 0.10


@pytest.mark.slow
def test_shrinkage_narrows_decile_spread_over_seeds():
    spreads = []
    for seed in range(1, 4):
        u, ex, _, _ = make_world(seed=seed)
        t0 = u.shape[0] - 251
        row = []
        for q in (0.1, 0.0):
            res = sp.specific_variance(u, ex, shrink=q)
            b = _decile_bias(_z_next(u, res.var, t0), res.var[t0:-1])
            row.append(b.max() - b.min())
        spreads.append(row)
    shrunk, raw = np.mean(spreads, axis=0)
    assert shrunk <= 0.7 * raw and shrunk <= 0.10
