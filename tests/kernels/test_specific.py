"""Kernels of the specific-risk model against plain numpy twins (direct sums, dense lstsq;
in ``tests/kernels/twins/specific.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.specific import shrink_kernel, specific_ts_kernel, structural_kernel
from tests.kernels.twins.specific import (
    blend_twin,
    gamma_twin,
    gappy_returns,
    run_structural,
    run_ts,
    shrink_twin,
    structural_inputs,
    structural_twin,
    ts_twin,
    vra_terms_twin,
)


@pytest.mark.parametrize("lags,window,half_life", [(5, 40, 13.0), (0, 25, 1e9), (2, 7, 3.0)])
@pytest.mark.parametrize("blend", [True, False])
def test_ts_kernel_matches_direct_sums(lags, window, half_life, blend):
    rng = np.random.default_rng(1)
    T, N = 150, 19  # 19 stocks: two full blocks of 8 and a partial one
    u = gappy_returns(rng, T, N)
    var, h, z, g = run_ts(u, half_life, window, lags, 5, 30, blend)
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
    var, h, z, g = run_ts(u, 40.0, 120, 3, 20, 60, True)
    rv, rh, rz = ts_twin(u, 40.0, 120, 3)
    np.testing.assert_array_equal(h, rh)
    np.testing.assert_allclose(var, rv, rtol=1e-12, atol=1e-12 * np.nanmax(rv))
    np.testing.assert_array_equal(np.isinf(z), np.isinf(rz))
    np.testing.assert_allclose(z, rz, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, gamma_twin(rh, rz, 20, 60, True), rtol=1e-12, atol=1e-15)
    assert (h[259, 1] == 0) and np.isnan(var[259, 1]) and np.isfinite(z[300:, 1]).all()


def test_ts_kernel_without_z_output_writes_the_same_var_h_gamma():
    rng = np.random.default_rng(4)
    u = gappy_returns(rng, 120, 11)
    var, h, _, g = run_ts(u, 13.0, 40, 5, 5, 30, True)
    var0, h0, g0 = np.empty_like(var), np.empty_like(h), np.empty_like(g)
    specific_ts_kernel(u, 13.0, 40, 5, 5, 30, True, var0, h0, np.empty((0, 11)), g0)
    np.testing.assert_array_equal(var0, var)
    np.testing.assert_array_equal(h0, h)
    np.testing.assert_array_equal(g0, g)


def test_ts_kernel_newey_west_reduces_to_ewma_without_lags():
    rng = np.random.default_rng(2)
    u = rng.standard_normal((60, 3))
    var, h, _, _ = run_ts(u, 1e12, 60, 0)  # flat weights, window = whole sample
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
    sig, e0, nfit, complete = run_structural(ts_var, h, gamma, styles, ind, P, weights, cap,
                                              60, K + 10, duan, 1.05, False)
    rs, re0, rn = structural_twin(twin_log, tier, styles, ind, P, weights, twin_fb, K + 10,
                                  duan, 1.05)
    np.testing.assert_array_equal(nfit, rn)
    np.testing.assert_allclose(e0, re0, rtol=1e-10)
    np.testing.assert_allclose(sig, rs, rtol=1e-10)
    np.testing.assert_array_equal(complete, np.isfinite(styles).all(axis=2))
    # blend=True writes gamma sigma_TS + (1 - gamma) sigma_STR, the same fit
    sig_b, e0_b, nfit_b, _ = run_structural(ts_var, h, gamma, styles, ind, P, weights, cap,
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
    sig, e0, nfit, _ = run_structural(ts_var, h, gamma, styles, industry, P, weights, weights,
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
    ref_num, ref_wsum = vra_terms_twin(u, sig, cap, estu)
    np.testing.assert_allclose(num, ref_num, rtol=1e-13, atol=0)
    np.testing.assert_allclose(wsum, ref_wsum, rtol=1e-13, atol=0)
    assert num[3] == 0.0 and wsum[3] == 0.0
