"""Factor covariance forecasts: numpy twins, exact identities, look-ahead, and METHODS §3 Accept."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import riskmodel as rm
from riskmodel.covariance.factor import (
    _simulated_bias,
    _smooth_bias,
    ewma_weights,
    factor_covariance,
    nw_effective_df,
)
from riskmodel.errors import DimensionError, InvalidParameterError, NonFiniteError

OFF = dict(eigen_sims=0, vra_half_life=None)  # the EWMA + Newey–West stage alone
IID = dict(vol_lags=0, corr_lags=0)  # i.i.d. worlds need no Newey–West (its lags only add noise)


# --------------------------------------------------------------------------- twins and worlds


def _nw_twin(x: np.ndarray, t: int, half_life: float, window: int, lags: int) -> np.ndarray:
    """Dense per-date twin of F_NW at date t (pairwise-complete weighted moments)."""
    m = x.shape[1]
    decay = 1.0 if np.isinf(half_life) else 0.5 ** (1.0 / half_life)
    out = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            total = 0.0
            for lag in range(lags + 1):
                k = 1.0 - lag / (lags + 1.0)
                for a, b in ((i, j), (j, i)) if lag else ((i, j),):
                    s = np.arange(min(window, t + 1))
                    s = s[t - s - lag >= 0]
                    u, v, w = x[t - s, a], x[t - s - lag, b], decay**s
                    ok = ~(np.isnan(u) | np.isnan(v))
                    if ok.any():
                        total += (1.0 if lag == 0 else k) * np.sum(w[ok] * u[ok] * v[ok]) / np.sum(w[ok])
            out[i, j] = total
    return out


def _f0_twin(x, t, vol_h, vol_l, corr_h, corr_l):
    """F⁰ = ρ σσᵀ from the two twins."""
    fv = _nw_twin(x, t, vol_h, int(np.ceil(3 * vol_h)), vol_l)
    fc = _nw_twin(x, t, corr_h, int(np.ceil(3 * corr_h)), corr_l)
    sd = np.sqrt(np.diag(fv))
    sc = np.sqrt(np.diag(fc))
    return fc / np.outer(sc, sc) * np.outer(sd, sd)


def _true_cov(rng: np.random.Generator, m: int, top: float = 0.01, ratio: float = 0.05) -> np.ndarray:
    """A covariance with vols spread geometrically from ``top`` to ``top·ratio`` in a random basis."""
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    lam = (top * np.geomspace(1.0, ratio, m)) ** 2
    return (q * lam) @ q.T


def _gaussian_world(seed: int, n_dates: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cov = _true_cov(rng, m)
    f = rng.standard_normal((n_dates, m)) @ np.linalg.cholesky(cov).T
    return f, cov


def _bias(z: np.ndarray) -> np.ndarray:
    """Bias statistic: standard deviation of the standardised outcomes, per column."""
    return np.std(z, axis=0, ddof=1)


def _assert_pd(res) -> None:
    """Every defined forecast is symmetric positive definite on its available block."""
    for t in np.flatnonzero(res.defined):
        cols = np.flatnonzero(res.available[t])
        c = res.cov[t][np.ix_(cols, cols)]
        assert np.all(np.isfinite(c)), t
        np.testing.assert_array_equal(c, c.T)
        np.linalg.cholesky(c)  # raises unless positive definite
        rest = np.flatnonzero(~res.available[t])
        assert np.all(np.isnan(res.cov[t][rest])) and np.all(np.isnan(res.cov[t][:, rest]))


# --------------------------------------------------------------------------- exact identities


def test_public_name_is_mapped():
    assert rm.factor_covariance is factor_covariance


def test_nw_stage_matches_dense_twin():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((140, 4)) * [0.01, 0.02, 0.015, 0.005]
    x[1:] += 0.4 * x[:-1]  # autocorrelated, so the lags matter
    res = factor_covariance(x, vol_half_life=12, vol_lags=3, corr_half_life=30, corr_lags=2, min_periods=20, **OFF)
    for t in (19, 20, 45, 139):
        if not res.defined[t]:
            assert t == 19
            assert np.isnan(res.cov[t]).all()
            continue
        ref = _f0_twin(x, t, 12.0, 3, 30.0, 2)
        np.testing.assert_allclose(res.cov[t], ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def _standardised_twin(x: np.ndarray, vol_h: float) -> np.ndarray:
    """``x_t / σ_{t−1}`` with ``σ²`` the lag-0 EWMA variance of the twin, NaN until it
    holds min(63, window // 2) observations (the direct transcription of the docstring)."""
    from riskmodel.covariance.factor import STANDARDISE_MIN_DAYS

    window = int(np.ceil(3 * vol_h))
    min_count = min(STANDARDISE_MIN_DAYS, window // 2)
    z = np.full_like(x, np.nan)
    for t in range(1, x.shape[0]):
        var = np.diag(_nw_twin(x, t - 1, vol_h, window, 0))
        seen = np.array([np.isfinite(x[max(0, t - window) : t, k]).sum() for k in range(x.shape[1])])
        ok = (seen >= min_count) & (var > 0)
        z[t, ok] = x[t, ok] / np.sqrt(var[ok])
    return z


def test_standardised_correlations_match_dense_twin():
    """corr_standardise: correlations of x_t/σ_{t−1} (lags and all), variances of the raw x."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((260, 3)) * [0.01, 0.02, 0.015]
    x[120:160] *= 4.0  # a volatile spell
    x[1:] += 0.3 * x[:-1]
    res = factor_covariance(x, vol_half_life=15, vol_lags=2, corr_half_life=40, corr_lags=1, min_periods=20,
                            corr_standardise=True, **OFF)
    z = _standardised_twin(x, 15.0)
    for t in (150, 200, 259):
        fv = _nw_twin(x, t, 15.0, 45, 2)
        fc = _nw_twin(z, t, 40.0, 120, 1)
        sd, sc = np.sqrt(np.diag(fv)), np.sqrt(np.diag(fc))
        ref = fc / np.outer(sc, sc) * np.outer(sd, sd)
        np.testing.assert_allclose(res.cov[t], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    plain = factor_covariance(x, vol_half_life=15, vol_lags=2, corr_half_life=40, corr_lags=1, min_periods=20, **OFF)
    assert not np.allclose(res.cov[200], plain.cov[200])
    # the first forecast waits for the standardisation's own warm-up, then min_periods
    assert np.flatnonzero(res.defined)[0] > np.flatnonzero(plain.defined)[0]


def test_standardised_correlations_forget_a_volatile_spell_sooner():
    """Correlation 0.2, except a 60-day spell at 4× the volatility and correlation 0.9: a
    year after it, with a 504-day half-life, the raw estimate is still above 0.45 (the
    spell's 16× variance weighs it), the standardised one below 0.4 and at least 0.1 lower
    (seeded world; measured 0.52 and 0.35)."""
    rng = np.random.default_rng(13)
    n = 900

    def block(rho: float, scale: float, days: int) -> np.ndarray:
        c = np.array([[1.0, rho], [rho, 1.0]])
        return scale * 0.01 * rng.standard_normal((days, 2)) @ np.linalg.cholesky(c).T

    x = np.vstack([block(0.2, 1.0, 500), block(0.9, 4.0, 60), block(0.2, 1.0, n - 560)])
    kw = dict(vol_half_life=42, vol_lags=0, corr_half_life=504, corr_lags=0, **OFF)
    raw = factor_covariance(x, **kw).cov[-1]
    std = factor_covariance(x, corr_standardise=True, **kw).cov[-1]
    corr = lambda c: c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])  # noqa: E731
    assert corr(raw) > 0.45 and corr(std) < 0.4 and corr(std) < corr(raw) - 0.1


def test_standardised_correlations_have_no_look_ahead():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((300, 3)) * 0.01
    full = factor_covariance(x, corr_standardise=True, vol_half_life=20, corr_half_life=60, min_periods=30, **OFF)
    cut = factor_covariance(x[:220], corr_standardise=True, vol_half_life=20, corr_half_life=60, min_periods=30, **OFF)
    np.testing.assert_array_equal(full.cov[:220], cut.cov)


def test_lags_zero_is_weighted_second_moment():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((120, 5))
    res = factor_covariance(x, vol_half_life=20, vol_lags=0, corr_half_life=20, corr_lags=0, min_periods=15, **OFF)
    w = ewma_weights(20.0, 60)
    for t in (60, 90, 119):
        window = x[t - 59 : t + 1][::-1]  # newest first
        c0 = (window * w[:, None]).T @ window
        np.testing.assert_allclose(res.cov[t], c0, rtol=0, atol=1e-12 * np.abs(c0).max())


@pytest.mark.parametrize("demean", [True, False])
def test_infinite_half_life_is_sample_covariance(demean):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((150, 4)) * 0.01 + 0.002
    res = factor_covariance(
        x, vol_half_life=np.inf, vol_lags=0, corr_half_life=np.inf, corr_lags=0, demean=demean, min_periods=10, **OFF
    )
    for t in (10, 75, 149):
        obs = x[: t + 1]
        ref = np.cov(obs.T, bias=True) if demean else obs.T @ obs / obs.shape[0]
        np.testing.assert_allclose(res.cov[t], ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_min_periods_burn_in_and_default():
    x = np.random.default_rng(13).standard_normal((100, 3))
    res = factor_covariance(x, **OFF)
    assert res.settings["min_periods"] == 42  # max(3m, 42)
    first = int(np.argmax(res.defined))
    assert first == 41 and np.isnan(res.cov[:first]).all() and np.isfinite(res.cov[first:]).all()


# --------------------------------------------------------------------------- look-ahead, NaN, PD


@pytest.fixture(scope="module")
def small_world() -> np.ndarray:
    f, _ = _gaussian_world(20, 260, 6)
    return f


def test_look_ahead_truncation_is_bit_identical(small_world):
    kw = dict(vol_half_life=20, corr_half_life=40, eigen_sims=60, eigen_every=10, vra_half_life=10, min_periods=30)
    full = factor_covariance(small_world, **kw)
    grid = full.dates_recomputed
    t_on = int(grid[len(grid) // 2])  # a recompute date of the full run
    cut = factor_covariance(small_world[: t_on + 1], **kw)
    np.testing.assert_array_equal(cut.cov, full.cov[: t_on + 1])
    np.testing.assert_array_equal(cut.vra, full.vra[: t_on + 1])
    for t_off in (t_on + 3, 251):  # off the grid too: the schedule only looks back
        cut = factor_covariance(small_world[: t_off + 1], **kw)
        np.testing.assert_array_equal(cut.cov, full.cov[: t_off + 1])
        np.testing.assert_array_equal(cut.dates_recomputed, grid[grid <= t_off])


def test_look_ahead_any_date_without_eigen(small_world):
    kw = dict(vol_half_life=20, corr_half_life=40, eigen_sims=0, vra_half_life=10, min_periods=30)
    full = factor_covariance(small_world, **kw)
    for t in (40, 101, 200):
        cut = factor_covariance(small_world[: t + 1], **kw)
        np.testing.assert_array_equal(cut.cov, full.cov[: t + 1])


def test_missing_factor_returns_give_symmetric_pd_output():
    f, _ = _gaussian_world(21, 400, 6)
    rng = np.random.default_rng(21)
    f[rng.random(f.shape) < 0.05] = np.nan  # dropped industries here and there
    f[:150, 4] = np.nan  # a factor that starts late
    f[200:210] = np.nan  # dates with no regression
    f[::7, 5] = np.nan
    res = factor_covariance(f, vol_half_life=20, corr_half_life=60, eigen_sims=50, eigen_every=15, min_periods=40)
    _assert_pd(res)
    assert not res.available[150, 4] and res.available[-1].all()
    assert np.isfinite(res.cov[-1]).all() and np.isfinite(res.vra[res.defined]).all()
    # a change of the available set starts a new run of recompute dates
    first_full = int(np.argmax(res.available.all(axis=1)))
    assert first_full in set(res.dates_recomputed.tolist())
    # the forecast on dates with no regression carries on from history
    assert np.isfinite(res.cov[205]).all()


def test_pairwise_moments_match_twin_with_gaps():
    rng = np.random.default_rng(22)
    x = rng.standard_normal((120, 3))
    x[rng.random(x.shape) < 0.15] = np.nan
    res = factor_covariance(x, vol_half_life=15, vol_lags=1, corr_half_life=15, corr_lags=1, min_periods=20, **OFF)
    for t in (60, 119):
        ref = _f0_twin(x, t, 15.0, 1, 15.0, 1)
        if np.linalg.eigvalsh(ref).min() > 0:  # no PSD repair needed: equal to the twin
            np.testing.assert_allclose(res.cov[t], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        _assert_pd(res)


def test_pipeline_is_pd_and_reproducible():
    f, _ = _gaussian_world(23, 300, 8)
    kw = dict(vol_half_life=20, corr_half_life=50, eigen_sims=40, eigen_every=20, min_periods=30)
    a = factor_covariance(f, **kw, seed=3)
    b = factor_covariance(f, **kw, seed=3)
    c = factor_covariance(f, **kw, seed=4)
    _assert_pd(a)
    np.testing.assert_array_equal(a.cov, b.cov)
    assert not np.array_equal(a.eigen_bias, c.eigen_bias)
    assert a.eigen_bias.shape == (a.dates_recomputed.size, 8)
    assert np.all(np.diff(a.dates_recomputed) == 20) and a.dates_recomputed[-1] > 299 - 20  # a grid, no extra last date


# --------------------------------------------------------------------------- eigen simulation pieces


def test_effective_df_without_lags_is_t_eff():
    w = ewma_weights(42.0, 126)
    np.testing.assert_allclose(nw_effective_df(w, 0), w.sum() ** 2 / np.sum(w**2), rtol=1e-14)
    assert nw_effective_df(w, 2) < nw_effective_df(w, 0)


def test_effective_df_matches_monte_carlo_variance():
    """Off-diagonal F_NW of white noise has variance 1/ν (the Wishart with ν dof)."""
    rng = np.random.default_rng(30)
    half_life, lags, n_w = 10.0, 2, 30
    w = ewma_weights(half_life, n_w)
    nu = nw_effective_df(w, lags)
    z = rng.standard_normal((4000, n_w + lags, 2))  # newest first along axis 1
    est = np.einsum("s,rs,rs->r", w, z[:, :n_w, 0], z[:, :n_w, 1])
    for lag in range(1, lags + 1):
        k = 1.0 - lag / (lags + 1.0)
        est += k * np.einsum("s,rs,rs->r", w, z[:, :n_w, 0], z[:, lag : lag + n_w, 1])
        est += k * np.einsum("s,rs,rs->r", w, z[:, :n_w, 1], z[:, lag : lag + n_w, 0])
    # sd of a variance estimate from 4,000 draws ≈ √(2/4000) = 2.2 %
    np.testing.assert_allclose(np.var(est) * nu, 1.0, atol=0.08)


def test_bartlett_sampler_matches_explicit_simulation():
    """v(k) from the Bartlett Wishart equals v(k) from simulated T_w × m series (MC tolerance)."""
    m, n_obs, sims = 12, 40, 3000
    d0 = np.geomspace(1e-4, 1e-6, m)[::-1]
    v_bartlett = _simulated_bias(d0, float(n_obs), sims, np.random.default_rng(31))
    rng = np.random.default_rng(32)
    b = rng.standard_normal((sims, n_obs, m)) * np.sqrt(d0)
    f_sim = b.transpose(0, 2, 1) @ b / n_obs
    d_sim, u_sim = np.linalg.eigh(f_sim)
    v_explicit = np.sqrt(np.mean(np.einsum("i,jik->jk", d0, u_sim**2) / d_sim, axis=0))
    np.testing.assert_allclose(v_bartlett, v_explicit, atol=0.02)
    assert v_bartlett[0] > 1.3 and v_bartlett[-1] < 1.0  # low eigenfactors under-forecast


def test_simulated_bias_needs_enough_observations():
    assert np.isnan(_simulated_bias(np.ones(5), 3.5, 10, np.random.default_rng(0))).all()


def test_parabola_smoothing():
    k = np.arange(30.0)
    v = 1.0 + 0.001 * (k - 25.0) ** 2
    noisy = v + np.where(k >= 10, np.random.default_rng(33).normal(0, 1e-3, 30), 0.0)
    smooth = _smooth_bias(noisy, 10)
    np.testing.assert_array_equal(smooth[:10], noisy[:10])
    assert np.abs(smooth[10:] - v[10:]).max() < np.abs(noisy[10:] - v[10:]).max()
    np.testing.assert_allclose(_smooth_bias(v, 10), v, atol=1e-12)
    assert _smooth_bias(noisy, None) is noisy


# --------------------------------------------------------------------------- errors


def test_errors_name_the_fault():
    with pytest.raises(DimensionError, match="2-D array"):
        factor_covariance(np.zeros(10))
    f = np.zeros((50, 3))
    f[7, 2] = np.inf
    with pytest.raises(NonFiniteError, match="date row 7, factor row 2"):
        factor_covariance(f)
    with pytest.raises(InvalidParameterError, match="vol_half_life=-1"):
        factor_covariance(np.zeros((50, 3)), vol_half_life=-1)
    with pytest.raises(InvalidParameterError, match="corr_lags"):
        factor_covariance(np.zeros((50, 3)), corr_lags=1.5)
    with pytest.raises(InvalidParameterError, match="eigen_every=0"):
        factor_covariance(np.zeros((50, 3)), eigen_every=0)


# --------------------------------------------------------------------------- METHODS §3 Accept


def _pure_and_random_biases(res, f, start, n_random=100, seed=0):
    idx = np.arange(start, f.shape[0] - 1)
    sd = np.sqrt(np.diagonal(res.cov[idx], axis1=1, axis2=2))
    z_pure = f[idx + 1] / sd
    w = np.random.default_rng(seed).standard_normal((n_random, f.shape[1]))
    var = np.einsum("pi,tij,pj->tp", w, res.cov[idx], w)
    z_rand = (f[idx + 1] @ w.T) / np.sqrt(var)
    return _bias(z_pure), _bias(z_rand), idx.size


def _accept_i(seed: int, **kw) -> tuple[float, float]:
    f, _ = _gaussian_world(seed, 1300, 60)
    res = factor_covariance(f, **kw)
    start = int(np.argmax(res.defined))
    b_pure, b_rand, n = _pure_and_random_biases(res, f, start)
    band = np.sqrt(2.0 / n)
    return np.mean(np.abs(b_pure - 1) <= band), np.mean(np.abs(b_rand - 1) <= band)


def test_accept_i_stationary_biases_in_band():
    share_pure, share_rand = _accept_i(40, **IID, **OFF)
    assert share_pure >= 0.9 and share_rand >= 0.9, (share_pure, share_rand)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [41, 42, 43])
def test_accept_i_full_pipeline_many_seeds(seed):
    share_pure, share_rand = _accept_i(seed, eigen_sims=200, **IID)
    assert share_pure >= 0.9 and share_rand >= 0.9, (share_pure, share_rand)


def _ar1_world(seed: int, n_dates: int, m: int, phi: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n_dates, m)) * 0.01
    f = np.empty_like(e)
    f[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n_dates):  # an AR(1) recursion: sequential by nature
        f[t] = phi * f[t - 1] + e[t]
    return f


def _bias_21(res, f) -> np.ndarray:
    """21-day bias: non-overlapping 21-day sums vs σ√21 of the forecast made before the block."""
    start = int(np.argmax(res.defined))
    blocks = np.arange(start, f.shape[0] - 21, 21)
    sums = np.stack([f[b + 1 : b + 22].sum(axis=0) for b in blocks])
    sd = np.sqrt(21.0 * np.diagonal(res.cov[blocks], axis1=1, axis2=2))
    return _bias(sums / sd), blocks.size


def test_accept_ii_newey_west_removes_autocorrelation_bias():
    f = _ar1_world(50, 2520, 12)
    kw = dict(corr_half_life=252, corr_lags=0, **OFF)
    b0, n21 = _bias_21(factor_covariance(f, vol_lags=0, **kw), f)
    b5, _ = _bias_21(factor_covariance(f, vol_lags=5, **kw), f)
    # theory without NW: √((1 + φ)/(1 − φ)) ≈ 1.36 (a little less over 21 days)
    assert 1.25 <= b0.mean() <= 1.45, b0
    band = 2.0 * np.sqrt(2.0 / n21)
    assert np.mean(np.abs(b5 - 1.0) <= band) >= 0.9, (b5, band)


def _eigen_biases(res, f, start):
    idx = np.arange(start, f.shape[0] - 1)
    with threadpool_limits(1, user_api="blas"):  # threaded BLAS is ~30× slower on small stacks
        d, u = np.linalg.eigh(res.cov[idx])
        w = np.linalg.solve(res.cov[idx], np.ones((idx.size, f.shape[1], 1)))[..., 0]
    z_eig = np.einsum("tik,ti->tk", u, f[idx + 1]) / np.sqrt(d)
    var_mv = np.einsum("ti,tij,tj->t", w, res.cov[idx], w)
    z_mv = np.einsum("ti,ti->t", w, f[idx + 1]) / np.sqrt(var_mv)
    return _bias(z_eig), float(np.std(z_mv, ddof=1)), idx.size


def _accept_iii(seed: int, sims: int, every: int):
    f, _ = _gaussian_world(seed, 1000, 60)
    kw = dict(vol_half_life=90, corr_half_life=90, vol_lags=0, corr_lags=0, vra_half_life=None)  # T_eff ≈ 260
    raw = factor_covariance(f, eigen_sims=0, **kw)
    adj = factor_covariance(f, eigen_sims=sims, eigen_every=every, eigen_scale=1.0, seed=seed, **kw)
    start = int(np.argmax(raw.defined)) + 60
    b_raw, mv_raw, n = _eigen_biases(raw, f, start)
    b_adj, mv_adj, _ = _eigen_biases(adj, f, start)
    return b_raw, mv_raw, b_adj, mv_adj, 2.0 * np.sqrt(2.0 / n)


def test_accept_iii_eigen_adjustment_removes_low_eigenfactor_bias():
    b_raw, mv_raw, b_adj, mv_adj, band = _accept_iii(60, sims=200, every=42)
    assert b_raw[:6].mean() > 1.15, b_raw[:6]  # lowest decile (ascending variance)
    assert mv_raw > 1.0 + band
    assert np.all(np.abs(b_adj - 1.0) <= band), (b_adj, band)
    assert abs(mv_adj - 1.0) <= band, mv_adj


@pytest.mark.slow
@pytest.mark.parametrize("seed", [61, 62])
def test_accept_iii_many_seeds(seed):
    b_raw, mv_raw, b_adj, mv_adj, band = _accept_iii(seed, sims=1000, every=21)
    assert b_raw[:6].mean() > 1.15
    assert np.all(np.abs(b_adj - 1.0) <= band) and abs(mv_adj - 1.0) <= band


def test_accept_iv_vra_is_quiet_in_a_stationary_world():
    f, _ = _gaussian_world(70, 1300, 60)
    res = factor_covariance(f, eigen_sims=0, **IID)
    active = res.defined & (np.arange(f.shape[0]) >= int(np.argmax(res.defined)) + 21)
    lam = res.vra[active]
    # measured 100 % inside [0.95, 1.05] for this seed (sd of λ ≈ 0.012)
    assert np.mean((lam >= 0.95) & (lam <= 1.05)) >= 0.99, (lam.min(), lam.max())


def _rolling_mrad(res, f, start, stop, window=21):
    idx = np.arange(start, stop)
    sd = np.sqrt(np.diagonal(res.cov[idx], axis1=1, axis2=2))
    z = f[idx + 1] / sd
    roll = np.lib.stride_tricks.sliding_window_view(z, window, axis=0)  # (n_windows, m, window)
    return float(np.mean(np.abs(np.std(roll, axis=-1, ddof=1) - 1.0)))


def test_accept_iv_vra_reduces_rolling_bias_after_vol_step():
    f, _ = _gaussian_world(71, 1400, 20)
    step = 900
    f[step:] *= 2.0
    kw = dict(eigen_sims=0, min_periods=100, **IID)
    with_vra = factor_covariance(f, **kw)
    without = factor_covariance(f, vra_half_life=None, **kw)
    mrad_vra = _rolling_mrad(with_vra, f, step - 50, step + 250)
    mrad_raw = _rolling_mrad(without, f, step - 50, step + 250)
    assert mrad_vra <= 0.7 * mrad_raw, (mrad_vra, mrad_raw)
    assert with_vra.vra[step + 60] > 1.3


def test_one_blas_thread_limits_the_lapack_numba_calls():
    """The BLAS limit covers scipy's LAPACK (what numba's eigh calls) even when nothing had
    loaded it before the limit was built (a fresh process)."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from riskmodel._blas import one_blas_thread\nfrom riskmodel.covariance import factor as F\n"
        "from threadpoolctl import threadpool_info\n"
        "with one_blas_thread():\n"
        "    F._eigh(np.eye(3)[None])  # numba's eigh: loads scipy's LAPACK if nothing had\n"
        "    libs = [(i['filepath'], i['num_threads']) for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "assert all(n == 1 for _, n in libs), libs\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
