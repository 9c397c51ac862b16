"""Kernels of the specific-risk model against plain numpy twins (direct sums, dense lstsq)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.specific import (
    MIN_INDUSTRY_NAMES,
    shrink_kernel,
    specific_ts_kernel,
    structural_kernel,
)

# ---------------------------------------------------------------------------------------
# numpy twins
# ---------------------------------------------------------------------------------------


def gamma_twin(h, z, min_obs, full_obs, blend):
    """gamma from h and Z by the METHODS formula."""
    if not blend:
        return (h >= min_obs).astype(float)
    ramp = np.clip((h - min_obs) / (full_obs - min_obs), 0, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        robust = np.minimum(1.0, np.maximum(0.0, np.exp(1.0 - z)))
    return np.where(np.isnan(z), 0.0, ramp * robust)


def ts_twin(u, half_life, window, lags):
    """Direct windowed sums: sigma_TS^2, h and Z for every (date, stock)."""
    T, N = u.shape
    var = np.full((T, N), np.nan)
    h = np.zeros((T, N), np.int32)
    z = np.full((T, N), np.nan)
    for n in range(N):
        for t in range(T):
            lo = max(0, t - window + 1)
            x = u[lo : t + 1, n]
            valid = x[np.isfinite(x)]
            h[t, n] = valid.size
            if valid.size == 0:
                continue
            c = np.zeros(lags + 1)
            for l in range(lags + 1):
                # pairs (tau, tau - l) with both inside the window; weight by the age of tau
                taus = np.arange(max(lo + l, l), t + 1)
                if taus.size == 0:
                    continue
                w = 2.0 ** (-(t - taus) / half_life)
                prod = u[taus, n] * u[taus - l, n]
                ok = np.isfinite(prod)
                if ok.any():
                    c[l] = (w[ok] * prod[ok]).sum() / w[ok].sum()
            v = c[0] + 2.0 * sum((1 - l / (lags + 1)) * c[l] for l in range(1, lags + 1))
            var[t, n] = max(v, c[0] / (lags + 1))
            if valid.size < 2:
                continue
            q25, q75 = np.quantile(valid, [0.25, 0.75])
            st = (q75 - q25) / 1.35
            if st <= 0:
                z[t, n] = np.inf
                continue
            s_eq = np.std(np.clip(valid, -10 * st, 10 * st), ddof=1)
            z[t, n] = abs(s_eq / st - 1.0)
    return var, h, z


def structural_twin(log_sig, tier, styles, industry, n_industries, weights, fallback,
                    min_names, duan, scale):
    """Per date dense weighted lstsq with industry / pooled dummies + styles."""
    T, N, K = styles.shape
    P = n_industries if industry is not None else 0
    sig = np.full((T, N), np.nan)
    e0 = np.full(T, np.nan)
    nfit = np.zeros(T, np.int64)
    for t in range(T):
        complete = np.isfinite(styles[t]).all(axis=1)
        usable = complete & (weights[t] > 0) & np.isfinite(weights[t]) & np.isfinite(log_sig[t])
        fb = complete & (fallback[t] > 0) & np.isfinite(fallback[t]) & np.isfinite(log_sig[t])
        candidates = [usable & (tier[t] <= k) for k in range(3)] + [fb & (tier[t] <= 2)]
        use = next((k for k, c in enumerate(candidates) if c.sum() >= min_names), None)
        if use is None:
            continue
        fit = candidates[use]
        w_t = weights[t] if use < 3 else fallback[t]
        ind = industry[t] if industry is not None else np.full(N, -1)
        fitted = [p for p in range(P) if ((ind == p) & fit).sum() >= MIN_INDUSTRY_NAMES]
        grp = np.full(N, len(fitted))
        for i, p in enumerate(fitted):
            grp[ind == p] = i
        G = len(fitted) + 1
        D = np.zeros((N, G))
        D[np.arange(N), grp] = 1.0
        pooled_used = (grp[fit] == G - 1).any()
        cols = list(range(G)) if pooled_used else list(range(G - 1))
        X = np.hstack([D[:, cols], styles[t]])
        sw = np.sqrt(w_t[fit])
        coef = np.linalg.lstsq(X[fit] * sw[:, None], log_sig[t, fit] * sw, rcond=None)[0]
        b = coef[len(cols):]
        icpt = coef[: len(cols)]
        resid_style = log_sig[t, fit] - styles[t, fit] @ b
        a0 = np.average(resid_style, weights=w_t[fit])
        e = log_sig[t, fit] - X[fit] @ coef
        e0[t] = np.mean(np.exp(e)) if duan else scale
        nfit[t] = fit.sum()
        a = np.full(N, a0)
        infit = grp < G - 1
        a[infit] = icpt[grp[infit]]
        sig[t, complete] = e0[t] * np.exp(a[complete] + styles[t, complete] @ b)
    return sig, e0, nfit


def blend_twin(gamma, ts_var, sig_str):
    """sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR, only the terms with weight."""
    with np.errstate(invalid="ignore"):
        mid = gamma * np.sqrt(ts_var) + (1 - gamma) * sig_str
    return np.where(gamma >= 1, np.sqrt(ts_var), np.where(gamma > 0, mid, sig_str))


def structural_inputs(log_sig, tier, fallback, min_obs):
    """The kernel's inputs (ts_var, h, gamma, cap) for given ln sigma_TS, tiers and fallback
    weights, and the twin's (log_sig, fallback) recomputed from them as the kernel does."""
    ts_var = np.exp(2.0 * log_sig)
    h = np.select([tier == 0, tier == 1, tier == 2], [3 * min_obs, 2 * min_obs, min_obs // 2], 0)
    gamma = np.where(tier == 0, 1.0, 0.5)
    cap = fallback**2
    with np.errstate(divide="ignore", invalid="ignore"):
        twin_log = np.where(ts_var > 0, 0.5 * np.log(ts_var), np.nan)
        twin_fb = np.where(cap > 0, np.sqrt(cap), np.nan)
    return ts_var, h.astype(np.int32), gamma, cap, twin_log, twin_fb


def _run_structural(ts_var, h, gamma, styles, industry, P, weights, cap, min_obs, min_names,
                    duan, scale, blend):
    T, N, K = styles.shape
    sig = np.empty((T, N))
    e0 = np.empty(T)
    nfit = np.empty(T, np.int64)
    complete = np.empty((T, N), np.bool_)
    has_ind = industry is not None
    structural_kernel(ts_var, h, gamma, styles, industry if has_ind else np.zeros((1, 1), np.int32),
                      has_ind, P, weights, cap, min_obs, min_names, duan, scale, blend, sig, e0,
                      nfit, complete)
    return sig, e0, nfit, complete


def shrink_twin(sig, cap, estu, n_groups, q):
    """Per date: np.quantile breakpoints, group means, nu."""
    T, N = sig.shape
    out = sig.copy()
    for t in range(T):
        if not estu[t].any():
            continue
        bp = np.quantile(cap[t, estu[t]], np.arange(1, n_groups) / n_groups)
        fin = np.isfinite(cap[t])
        grp = np.full(N, -1)
        grp[fin] = np.searchsorted(bp, cap[t, fin], side="right")
        for g in range(n_groups):
            mem = (grp == g) & estu[t] & np.isfinite(sig[t])
            if not mem.any() or cap[t, mem].sum() <= 0:
                continue
            mean = np.average(sig[t, mem], weights=cap[t, mem])
            delta = np.sqrt(np.mean((sig[t, mem] - mean) ** 2))
            tgt = (grp == g) & np.isfinite(sig[t])
            d = np.abs(sig[t, tgt] - mean)
            den = delta + q * d
            nu = np.where(den > 0, q * d / np.where(den > 0, den, 1.0), 0.0)
            out[t, tgt] = nu * mean + (1 - nu) * sig[t, tgt]
    return out


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


def _gappy_returns(rng, T, N):
    u = 0.02 * rng.standard_normal((T, N)) * np.exp(0.5 * rng.standard_normal(N))
    u[rng.random((T, N)) < 0.1] = np.nan  # scattered missing days
    u[: T // 3, 0] = np.nan  # late listing
    u[T // 2 :, 1] = np.nan  # delisting
    u[5:60, 2] = np.nan  # long halt
    u[:, 3] = np.nan  # never traded
    u[::7, 4] = 0.0  # ties
    u[10, 5] = 0.9  # jump beyond the clip bound
    u[11, 5] = -0.8
    u[:, 6] = np.where(np.isfinite(u[:, 6]), 0.0, np.nan)  # zero IQR
    return u


def _run_ts(u, half_life, window, lags, min_obs=60, full_obs=180, blend=True):
    T, N = u.shape
    var = np.empty((T, N))
    h = np.empty((T, N), np.int32)
    z = np.empty((T, N))
    g = np.empty((T, N))
    specific_ts_kernel(u, half_life, window, lags, min_obs, full_obs, blend, var, h, z, g)
    return var, h, z, g


@pytest.mark.parametrize("lags,window,half_life", [(5, 40, 13.0), (0, 25, 1e9), (2, 7, 3.0)])
@pytest.mark.parametrize("blend", [True, False])
def test_ts_kernel_matches_direct_sums(lags, window, half_life, blend):
    rng = np.random.default_rng(1)
    T, N = 150, 19  # 19 stocks: two full blocks of 8 and a partial one
    u = _gappy_returns(rng, T, N)
    var, h, z, g = _run_ts(u, half_life, window, lags, 5, 30, blend)
    rv, rh, rz = ts_twin(u, half_life, window, lags)
    np.testing.assert_allclose(g, gamma_twin(rh, rz, 5, 30, blend), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(h, rh)
    np.testing.assert_array_equal(np.isnan(var), np.isnan(rv))
    # the windowed recursion leaves rounding residue of order eps x (largest window sum),
    # so the tolerance is 1e-12 relative to each value or to the data's scale
    np.testing.assert_allclose(var, rv, rtol=1e-12, atol=1e-12 * np.nanmax(rv))
    np.testing.assert_array_equal(np.isinf(z), np.isinf(rz))
    np.testing.assert_allclose(z, rz, rtol=1e-10, atol=1e-12)
    assert np.isinf(z[50:, 6]).all()  # zero IQR -> Z = inf
    assert np.isnan(var[:, 3]).all() and (h[:, 3] == 0).all()


def test_ts_kernel_long_windows_heavy_ties_and_signed_zeros():
    """Windows spanning several 64-rank words of the window bitmap, values on a coarse grid
    (many ties, +0.0 and -0.0 mixed), long gaps that empty and refill the window."""
    rng = np.random.default_rng(9)
    T, N = 420, 5
    u = np.round(3 * rng.standard_normal((T, N))) / 100
    u[rng.random((T, N)) < 0.3] = 0.0
    u[rng.random((T, N)) < 0.3] *= -1.0  # -0.0 among the zeros
    u[100:260, 1] = np.nan  # longer than the window: empties it
    u[:, 2] = rng.standard_t(2, T) * 0.01  # heavy tails: clipped values on both sides
    u[rng.random((T, N)) < 0.05] = np.nan
    var, h, z, g = _run_ts(u, 40.0, 120, 3, 20, 60, True)
    rv, rh, rz = ts_twin(u, 40.0, 120, 3)
    np.testing.assert_array_equal(h, rh)
    np.testing.assert_allclose(var, rv, rtol=1e-12, atol=1e-12 * np.nanmax(rv))
    np.testing.assert_array_equal(np.isinf(z), np.isinf(rz))
    np.testing.assert_allclose(z, rz, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, gamma_twin(rh, rz, 20, 60, True), rtol=1e-12, atol=1e-15)
    assert (h[259, 1] == 0) and np.isnan(var[259, 1]) and np.isfinite(z[300:, 1]).all()


def test_ts_kernel_without_z_output_writes_the_same_var_h_gamma():
    rng = np.random.default_rng(4)
    u = _gappy_returns(rng, 120, 11)
    var, h, _, g = _run_ts(u, 13.0, 40, 5, 5, 30, True)
    var0, h0, g0 = np.empty_like(var), np.empty_like(h), np.empty_like(g)
    specific_ts_kernel(u, 13.0, 40, 5, 5, 30, True, var0, h0, np.empty((0, 11)), g0)
    np.testing.assert_array_equal(var0, var)
    np.testing.assert_array_equal(h0, h)
    np.testing.assert_array_equal(g0, g)


def test_ts_kernel_newey_west_reduces_to_ewma_without_lags():
    rng = np.random.default_rng(2)
    u = rng.standard_normal((60, 3))
    var, h, _, _ = _run_ts(u, 1e12, 60, 0)  # flat weights, window = whole sample
    np.testing.assert_allclose(var[-1], (u**2).mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(h[:, 0], np.arange(1, 61))


@pytest.mark.parametrize("with_industry", [True, False])
@pytest.mark.parametrize("duan", [True, False])
def test_structural_kernel_matches_dense_lstsq(with_industry, duan):
    rng = np.random.default_rng(3)
    T, N, K, P = 6, 150, 3, 6
    styles = rng.standard_normal((T, N, K))
    styles[0, :5, 1] = np.nan  # incomplete exposures: no prediction
    industry = rng.integers(-1, P, (T, N)).astype(np.int32)
    industry[:, :130][industry[:, :130] == 5] = 0  # industry 5 thin: pooled
    weights = np.sqrt(np.exp(rng.standard_normal((T, N))))
    weights[:, -10:] = np.nan  # outside the ESTU: predicted, not fitted
    log_sig = -4 + 0.3 * styles[..., 0] + 0.2 * rng.standard_normal((T, N))
    log_sig[1, ::3] = np.nan
    tier = rng.integers(0, 4, (T, N)).astype(np.int8)
    tier[2] = 2  # no gamma = 1 names: fallback tier
    tier[3] = 3  # nothing usable: no fit
    fallback = np.sqrt(np.exp(rng.standard_normal((T, N))))
    fallback[4, :3] = np.nan  # no cap: not in the fallback sample
    weights[4, 10:] = np.nan  # too few ESTU names: fallback sample
    ind = industry if with_industry else None
    ts_var, h, gamma, cap, twin_log, twin_fb = structural_inputs(log_sig, tier, fallback, 60)
    part = (tier[5] > 0) & (np.arange(N) % 4 == 0)  # partial blends, same tiers
    gamma[5, part] = rng.uniform(0.0, 1.0, part.sum())
    gamma[5, (tier[5] > 0) & (np.arange(N) % 4 == 1)] = 0.0
    sig, e0, nfit, complete = _run_structural(ts_var, h, gamma, styles, ind, P, weights, cap,
                                              60, K + 10, duan, 1.05, False)
    rs, re0, rn = structural_twin(twin_log, tier, styles, ind, P, weights, twin_fb, K + 10,
                                  duan, 1.05)
    np.testing.assert_array_equal(nfit, rn)
    np.testing.assert_allclose(e0, re0, rtol=1e-10)
    np.testing.assert_allclose(sig, rs, rtol=1e-10)
    np.testing.assert_array_equal(complete, np.isfinite(styles).all(axis=2))
    # blend=True writes gamma sigma_TS + (1 - gamma) sigma_STR, the same fit
    sig_b, e0_b, nfit_b, _ = _run_structural(ts_var, h, gamma, styles, ind, P, weights, cap,
                                             60, K + 10, duan, 1.05, True)
    np.testing.assert_array_equal(e0_b, e0)
    np.testing.assert_array_equal(nfit_b, nfit)
    np.testing.assert_array_equal(sig_b, blend_twin(gamma, ts_var, sig))
    # the output may be ts_var itself (each date's row is read before it is written)
    in_place = ts_var.copy()
    e0_i, nfit_i = np.empty(T), np.empty(T, np.int64)
    structural_kernel(in_place, h, gamma, styles, ind if with_industry else np.zeros((1, 1), np.int32),
                      with_industry, P, weights, cap, 60, K + 10, duan, 1.05, True, in_place, e0_i,
                      nfit_i, np.empty((T, N), np.bool_))
    np.testing.assert_array_equal(in_place, sig_b)
    np.testing.assert_array_equal(e0_i, e0)
    assert np.isfinite(sig_b[3][tier[3] == 0]).all()  # no fit: sigma_TS where gamma = 1
    assert np.isnan(sig[3]).all() and nfit[3] == 0
    assert np.isnan(sig[0, :5]).all() and np.isfinite(sig[0, 5:]).all()
    assert (nfit[[0, 1, 2, 4, 5]] > 0).all()
    assert nfit[4] > 100  # the fallback sample is larger than the 20 ESTU names


def test_structural_kernel_recovers_noise_free_model():
    rng = np.random.default_rng(4)
    T, N, K, P = 3, 200, 2, 4
    styles = rng.standard_normal((T, N, K))
    industry = rng.integers(0, P, (T, N)).astype(np.int32)
    a = np.array([-4.0, -3.5, -4.2, -3.9])
    log_sig = a[industry] + styles @ np.array([0.3, -0.1])
    weights = np.ones((T, N))
    ts_var = np.exp(2.0 * log_sig)
    h = np.full((T, N), 252, np.int32)
    gamma = np.ones((T, N))
    sig, e0, nfit, _ = _run_structural(ts_var, h, gamma, styles, industry, P, weights, weights,
                                       60, 12, True, 1.0, False)
    np.testing.assert_allclose(e0, 1.0, atol=1e-12)
    np.testing.assert_allclose(np.log(sig), log_sig, atol=1e-12)


def test_shrink_kernel_matches_numpy():
    rng = np.random.default_rng(5)
    T, N, G = 5, 300, 10
    cap = np.exp(2 * rng.standard_normal((T, N)))
    cap[0, :7] = np.nan
    sig = 0.02 * np.exp(0.5 * rng.standard_normal((T, N)))
    sig[1, ::11] = np.nan
    estu = np.isfinite(cap) & (rng.random((T, N)) < 0.8)
    estu[4] = False  # no ESTU: untouched
    out = np.empty((T, N))
    grp = np.empty((T, N), np.int8)
    shrink_kernel(sig, cap, estu, G, 0.1, out, grp)
    ref = shrink_twin(sig, cap, estu, G, 0.1)
    np.testing.assert_allclose(out, ref, rtol=1e-13)
    np.testing.assert_array_equal(out[4], sig[4])
    assert (grp[0, :7] == -1).all()
    counts = np.bincount(grp[2][estu[2]], minlength=G)
    assert counts.min() >= estu[2].sum() // G - 1  # ESTU deciles are balanced
    in_place = sig.copy()
    shrink_kernel(in_place, cap, estu, G, 0.1, in_place, grp)
    np.testing.assert_array_equal(in_place, out)  # out may be sig itself
    shrink_kernel(sig, cap, estu, G, 0.0, out, grp)
    np.testing.assert_array_equal(out, sig)  # q = 0 is the identity


def test_shrink_kernel_sorts_ties_wide_ranges_and_non_positive_caps():
    """The radix-sorted breakpoints equal np.quantile's, including ties, caps spanning many
    binades and (fallback comparison sort) a zero or negative cap inside the ESTU."""
    rng = np.random.default_rng(8)
    T, N, G = 4, 400, 10
    cap = np.exp(8 * rng.standard_normal((T, N)))  # many exponents: every radix pass moves
    cap[1] = np.round(rng.uniform(1, 20, N))  # heavy ties
    cap[2, :5] = 0.0
    cap[2, 5:9] = -3.0
    sig = 0.02 * np.exp(0.5 * rng.standard_normal((T, N)))
    estu = rng.random((T, N)) < 0.9
    out = np.empty((T, N))
    grp = np.empty((T, N), np.int8)
    shrink_kernel(sig, cap, estu, G, 0.3, out, grp)
    np.testing.assert_allclose(out, shrink_twin(sig, cap, estu, G, 0.3), rtol=1e-13)
    for t in range(T):
        bp = np.quantile(cap[t, estu[t]], np.arange(1, G) / G)
        np.testing.assert_array_equal(grp[t], np.searchsorted(bp, cap[t], side="right"))


def test_vra_terms_kernel_matches_numpy_twin():
    from riskmodel.kernels.specific import vra_terms_kernel

    rng = np.random.default_rng(21)
    R, N = 9, 37
    u = rng.standard_normal((R, N)) * 0.02
    sig = rng.uniform(0.01, 0.03, (R, N))
    cap = rng.uniform(1.0, 5.0, (R, N))
    estu = rng.random((R, N)) < 0.8
    u[rng.random((R, N)) < 0.1] = np.nan  # missing residuals are skipped
    sig[0, :5] = 0.0  # an infinite ratio is skipped
    estu[3] = False  # a row without an ESTU: zero weight
    num = np.empty(R)
    wsum = np.empty(R)
    vra_terms_kernel(u, sig, cap, estu, num, wsum)
    with np.errstate(divide="ignore", invalid="ignore"):  # twin: the plain masked sums
        z2 = (u / sig) ** 2
    ok = np.isfinite(z2) & estu
    w = np.where(ok, cap, 0.0)
    np.testing.assert_allclose(num, np.where(ok, w * z2, 0.0).sum(axis=1), rtol=1e-13, atol=0)
    np.testing.assert_allclose(wsum, w.sum(axis=1), rtol=1e-13, atol=0)
    assert num[3] == 0.0 and wsum[3] == 0.0
