"""EWMA kernels against their plain numpy twins (per-date weighted sums; in ``tests/kernels/twins/ewma.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.ewma import (
    assemble_covariance,
    eigen_rebuild_stack,
    eigh_stack,
    rebuild_stack,
    wishart_eigen_ratios,
)
from tests.kernels.twins.ewma import (
    assemble_covariance_twin,
    eigen_rebuild_stack_twin,
    factor_data,
    nw_twin,
    rebuild_stack_twin,
    run_nw,
    wishart_eigen_ratios_twin,
)


@pytest.mark.parametrize(
    ("half_life", "window", "lags", "demean"),
    [
        (10.0, 30, 0, False),
        (10.0, 30, 3, False),
        (25.0, 75, 2, True),
        (np.inf, 10_000, 2, False),
        (np.inf, 40, 1, True),
        (7.0, 10_000, 5, False),
    ],
)
def test_kernel_matches_numpy_twin(half_life, window, lags, demean):
    x = factor_data(1)
    pairs = [(0, 0), (0, 1), (1, 0), (2, 3), (3, 3), (1, 2)]
    out, cnt = run_nw(x, pairs, half_life, window, lags, demean)
    for p, (i, j) in enumerate(pairs):
        ref, ref_cnt = nw_twin(x, i, j, half_life, window, lags, demean)
        np.testing.assert_array_equal(cnt[p], ref_cnt)
        np.testing.assert_array_equal(np.isnan(out[p]), np.isnan(ref))
        scale = np.nanmax(np.abs(ref))
        np.testing.assert_allclose(out[p], ref, rtol=0, atol=1e-12 * scale)


def test_kernel_pair_symmetry_and_empty_window():
    x = factor_data(2)
    x[40:80, 1] = np.nan  # a gap longer than the window
    out, cnt = run_nw(x, [(0, 1), (1, 0), (1, 1)], 5.0, 15, 2, False)
    # F_NW(i, j) = F_NW(j, i) up to the order of the additions
    np.testing.assert_allclose(out[0], out[1], rtol=1e-13, atol=0)
    gap = np.arange(40 + 15, 80)
    assert np.all(np.isnan(out[2, gap])) and np.all(cnt[2, gap] == 0)
    assert np.all(np.isfinite(out[2, 80:]))


def test_infinite_half_life_is_sample_second_moment():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 3))
    out, _ = run_nw(x, [(0, 1), (2, 2)], np.inf, 10_000, 0, True)
    for t in (0, 10, 199):
        c = np.cov(x[: t + 1].T, bias=True)
        np.testing.assert_allclose(out[0, t], c[0, 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[1, t], c[2, 2], rtol=0, atol=1e-12)


def test_recursion_stays_exact_over_long_series_with_outliers():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 2)) * 0.01
    x[100, 0] = 5.0  # a huge value entering and leaving the window
    out, _ = run_nw(x, [(0, 0), (0, 1)], 20.0, 60, 2, False)
    for p, (i, j) in enumerate([(0, 0), (0, 1)]):
        ref, _ = nw_twin(x[2500:], i, j, 20.0, 60, 2, False)  # window fully inside the tail
        np.testing.assert_allclose(out[p, 2500 + 62 :], ref[62:], rtol=0, atol=1e-12 * np.abs(ref[62:]).max())


def test_eigh_stack_matches_numpy():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((20, 7, 7))
    a = a @ a.transpose(0, 2, 1)
    w = np.empty((20, 7))
    v = np.empty((20, 7, 7))
    eigh_stack(a, w, v)
    w_ref = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12 * np.abs(w_ref).max())
    rebuilt = (v * w[:, None, :]) @ v.transpose(0, 2, 1)
    np.testing.assert_allclose(rebuilt, a, rtol=0, atol=1e-11 * np.abs(a).max())


def test_assemble_covariance_matches_numpy_twin():
    rng = np.random.default_rng(6)
    n_dates, m = 9, 4
    iu = tuple(a.astype(np.int64) for a in np.triu_indices(m))
    cov_c = rng.standard_normal((iu[0].size, n_dates)) * 1e-4
    cov_c[3, 2] = np.nan  # a pair never observed together
    sd = rng.uniform(0.01, 0.02, (m, n_dates))
    sd_c = rng.uniform(0.01, 0.02, (m, n_dates))
    available = rng.random((n_dates, m)) > 0.2
    out = np.empty((n_dates, m, m))
    assemble_covariance(cov_c, iu[0], iu[1], sd, sd_c, available, out)
    ref = assemble_covariance_twin(cov_c, iu[0], iu[1], sd, sd_c, available)
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=0)


def test_rebuild_stack_matches_numpy():
    rng = np.random.default_rng(7)
    u = np.linalg.qr(rng.standard_normal((5, 6, 6)))[0]
    d = rng.uniform(0.1, 2.0, (5, 6))
    out = np.empty((5, 6, 6))
    rebuild_stack(u, d, out)
    ref = rebuild_stack_twin(u, d)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(out, out.transpose(0, 2, 1))


def test_wishart_eigen_ratios_matches_numpy_twin():
    rng = np.random.default_rng(8)
    n, m, nu = 12, 6, 30.0
    d0 = np.geomspace(2.0, 0.01, m)[::-1]
    lower = np.tril_indices(m, -1)
    normals = rng.standard_normal((n, lower[0].size))
    chi = np.sqrt(rng.chisquare(nu - np.arange(m), size=(n, m)))
    chi[3] = 0.0  # a singular draw: compared only where its eigenvalues are clearly positive
    ratio = np.empty((n, m))
    wishart_eigen_ratios(normals, chi, d0, nu, ratio)
    with np.errstate(divide="ignore", invalid="ignore"):  # the singular draw divides by ~0
        ref = wishart_eigen_ratios_twin(normals, chi, d0, nu)
    a = np.zeros((n, m, m))  # its eigenvalues, to keep only the clearly positive ones
    a[:, lower[0], lower[1]] = normals
    a[:, np.arange(m), np.arange(m)] = chi
    b = a * np.sqrt(d0 / nu)[None, :, None]
    d_sim = np.linalg.eigvalsh(b @ b.transpose(0, 2, 1))
    ok = d_sim > 1e-12 * d_sim.max()
    np.testing.assert_allclose(ratio[ok], ref[ok], rtol=1e-10, atol=0)
    assert np.isfinite(ratio[np.arange(n) != 3]).all()


def test_eigen_rebuild_stack_matches_numpy_twin():
    rng = np.random.default_rng(9)
    n, m = 6, 5
    u = np.linalg.qr(rng.standard_normal((n, m, m)))[0]
    d = np.sort(rng.uniform(0.1, 2.0, (n, m)), axis=1)
    d[:, 0] = 1e-9  # below the floor on every matrix
    a = (u * d[:, None, :]) @ u.transpose(0, 2, 1)
    a = 0.5 * (a + a.transpose(0, 2, 1))
    floor = np.full(n, 0.05)
    gamma2 = rng.uniform(0.5, 1.5, (n, m))
    out = np.empty((n, m, m))
    eigen_rebuild_stack(a, floor, gamma2, out)
    ref = eigen_rebuild_stack_twin(a, floor, gamma2)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    np.testing.assert_array_equal(out, out.transpose(0, 2, 1))
    assert np.allclose(np.linalg.eigvalsh(out)[:, 0], (gamma2[:, 0] * 0.05), rtol=1e-10)
    in_place = a.copy()
    eigen_rebuild_stack(in_place, floor, gamma2, in_place)
    np.testing.assert_array_equal(in_place, out)  # out may be a itself
