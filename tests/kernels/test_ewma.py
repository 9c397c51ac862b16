"""EWMA kernels against their plain numpy twins (per-date weighted sums)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.ewma import (
    assemble_covariance,
    eigen_rebuild_stack,
    eigh_stack,
    ewma_newey_west,
    rebuild_stack,
    wishart_eigen_ratios,
)


def _nw_twin(
    x: np.ndarray, i: int, j: int, half_life: float, window: int, lags: int, demean: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-date numpy twin: F_t(i, j) from explicit weighted sums over the window."""
    n_dates = x.shape[0]
    decay = 1.0 if np.isinf(half_life) else 0.5 ** (1.0 / half_life)
    out = np.full(n_dates, np.nan)
    count = np.zeros(n_dates, dtype=np.int64)

    def moment(t: int, u: np.ndarray, v: np.ndarray, lag: int) -> tuple[float, int]:
        s = np.arange(min(window, t + 1))
        s = s[t - s - lag >= 0]
        a, b, w = u[t - s], v[t - s - lag], decay**s
        ok = ~(np.isnan(a) | np.isnan(b))
        a, b, w = a[ok], b[ok], w[ok]
        if w.size == 0:
            return np.nan, 0
        w = w / w.sum()
        c = np.sum(w * a * b)
        if demean:
            c -= np.sum(w * a) * np.sum(w * b)
        return c, int(ok.sum())

    for t in range(n_dates):
        c0, n0 = moment(t, x[:, i], x[:, j], 0)
        count[t] = n0
        if n0 == 0:
            continue
        total = c0
        for lag in range(1, lags + 1):
            k = 1.0 - lag / (lags + 1.0)
            for u, v in ((x[:, i], x[:, j]), (x[:, j], x[:, i])):
                c, n = moment(t, u, v, lag)
                if n:
                    total += k * c
        out[t] = total
    return out, count


def _run_kernel(x, pairs, half_life, window, lags, demean):
    pi = np.array([p[0] for p in pairs], dtype=np.int64)
    pj = np.array([p[1] for p in pairs], dtype=np.int64)
    out = np.empty((len(pairs), x.shape[0]))
    cnt = np.empty((len(pairs), x.shape[0]), dtype=np.int64)
    decay = 1.0 if np.isinf(half_life) else 0.5 ** (1.0 / half_life)
    ewma_newey_west(np.ascontiguousarray(x.T), pi, pj, decay, window, lags, demean, out, cnt)
    return out, cnt


def _data(seed: int, n_dates: int = 160, m: int = 4, nan_share: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_dates, m)) * np.array([0.01, 0.02, 0.005, 0.03])[:m] + 0.001
    x[rng.random(x.shape) < nan_share] = np.nan
    x[5:9] = np.nan  # whole missing rows (dates with no regression)
    x[:3, 2] = np.nan  # a factor starting late
    return x


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
    x = _data(1)
    pairs = [(0, 0), (0, 1), (1, 0), (2, 3), (3, 3), (1, 2)]
    out, cnt = _run_kernel(x, pairs, half_life, window, lags, demean)
    for p, (i, j) in enumerate(pairs):
        ref, ref_cnt = _nw_twin(x, i, j, half_life, window, lags, demean)
        np.testing.assert_array_equal(cnt[p], ref_cnt)
        np.testing.assert_array_equal(np.isnan(out[p]), np.isnan(ref))
        scale = np.nanmax(np.abs(ref))
        np.testing.assert_allclose(out[p], ref, rtol=0, atol=1e-12 * scale)


def test_kernel_pair_symmetry_and_empty_window():
    x = _data(2)
    x[40:80, 1] = np.nan  # a gap longer than the window
    out, cnt = _run_kernel(x, [(0, 1), (1, 0), (1, 1)], 5.0, 15, 2, False)
    # F_NW(i, j) = F_NW(j, i) up to the order of the additions
    np.testing.assert_allclose(out[0], out[1], rtol=1e-13, atol=0)
    gap = np.arange(40 + 15, 80)
    assert np.all(np.isnan(out[2, gap])) and np.all(cnt[2, gap] == 0)
    assert np.all(np.isfinite(out[2, 80:]))


def test_infinite_half_life_is_sample_second_moment():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 3))
    out, _ = _run_kernel(x, [(0, 1), (2, 2)], np.inf, 10_000, 0, True)
    for t in (0, 10, 199):
        c = np.cov(x[: t + 1].T, bias=True)
        np.testing.assert_allclose(out[0, t], c[0, 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(out[1, t], c[2, 2], rtol=0, atol=1e-12)


def test_recursion_stays_exact_over_long_series_with_outliers():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 2)) * 0.01
    x[100, 0] = 5.0  # a huge value entering and leaving the window
    out, _ = _run_kernel(x, [(0, 0), (0, 1)], 20.0, 60, 2, False)
    for p, (i, j) in enumerate([(0, 0), (0, 1)]):
        ref, _ = _nw_twin(x[2500:], i, j, 20.0, 60, 2, False)  # window fully inside the tail
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
    for t in range(n_dates):  # twin: ρ from the correlation stage, σ from the variance stage
        c = np.full((m, m), np.nan)
        c[iu] = cov_c[:, t]
        c = np.triu(c, 1) + np.triu(c, 1).T
        rho = c / np.outer(sd_c[:, t], sd_c[:, t])
        rho[np.isnan(rho)] = 0.0
        np.fill_diagonal(rho, 1.0)
        ref = rho * np.outer(sd[:, t], sd[:, t])
        off = ~available[t]
        ref[off] = np.nan
        ref[:, off] = np.nan
        np.testing.assert_allclose(out[t], ref, rtol=1e-14, atol=0)


def test_rebuild_stack_matches_numpy():
    rng = np.random.default_rng(7)
    u = np.linalg.qr(rng.standard_normal((5, 6, 6)))[0]
    d = rng.uniform(0.1, 2.0, (5, 6))
    out = np.empty((5, 6, 6))
    rebuild_stack(u, d, out)
    ref = (u * d[:, None, :]) @ u.transpose(0, 2, 1)
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
    a = np.zeros((n, m, m))  # twin: Bartlett factor, F = B Bᵀ, D̃_j(k) = u_jkᵀ diag(d0) u_jk over D_j(k)
    a[:, lower[0], lower[1]] = normals
    a[:, np.arange(m), np.arange(m)] = chi
    b = a * np.sqrt(d0 / nu)[None, :, None]
    d_sim, u_sim = np.linalg.eigh(b @ b.transpose(0, 2, 1))
    d_true = np.einsum("i,jik->jk", d0, u_sim**2)
    ok = d_sim > 1e-12 * d_sim.max()
    np.testing.assert_allclose(ratio[ok], (d_true / np.where(ok, d_sim, 1.0))[ok], rtol=1e-10, atol=0)
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
    w, v = np.linalg.eigh(a)  # twin: floor, scale, rebuild
    ref = (v * (gamma2 * np.maximum(w, floor[:, None]))[:, None, :]) @ v.transpose(0, 2, 1)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    np.testing.assert_array_equal(out, out.transpose(0, 2, 1))
    assert np.allclose(np.linalg.eigvalsh(out)[:, 0], (gamma2[:, 0] * 0.05), rtol=1e-10)
    in_place = a.copy()
    eigen_rebuild_stack(in_place, floor, gamma2, in_place)
    np.testing.assert_array_equal(in_place, out)  # out may be a itself
