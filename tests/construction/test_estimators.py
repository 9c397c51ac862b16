"""The peer covariance estimators, above all the analytical nonlinear shrinkage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskmodel.construction.estimators import (
    EqualWeight,
    EWMAShrunk,
    NonlinearShrinkage,
    SklearnShrinkage,
    analytical_nonlinear_shrinkage,
    default_estimators,
)
from riskmodel.errors import InsufficientDataError, InvalidParameterError, NonFiniteError


def reference_nonlinear_shrinkage(x: np.ndarray) -> np.ndarray:
    """Loop-by-loop transcription of Ledoit & Wolf (2020), section 4 (demeaned, k = 1).

    For each sample eigenvalue λ_i: the kernel density f̃(λ_i) = (1/m) Σ_j K((λ_i−λ_j)/h_j)/h_j
    with the Epanechnikov kernel K(u) = 3/(4√5)·(1 − u²/5)⁺ and h_j = n^{-1/3} λ_j, its
    Hilbert transform with H_K(u) = −3u/(10π) + 3/(4√5π)(1 − u²/5) log|(√5 − u)/(√5 + u)|,
    then the shrunk eigenvalue of equation (4.7) (p ≤ n) or (C.5)-(C.6) (p > n).
    """
    x = x - x.mean(axis=0)
    n_obs, p = x.shape
    n = n_obs - 1
    s = x.T @ x / n
    lam_all, u = np.linalg.eigh(s)
    m = min(p, n)
    lam = lam_all[p - m :]
    h = n ** (-1 / 3)
    r5 = math.sqrt(5)
    f = np.zeros(m)
    hf = np.zeros(m)
    for i in range(m):
        for j in range(m):
            bw = h * lam[j]
            v = (lam[i] - lam[j]) / bw
            f[i] += 3 / (4 * r5) * max(1 - v * v / 5, 0) / bw / m
            if abs(v) == r5:
                kern = -3 * v / (10 * math.pi)
            else:
                kern = -3 * v / (10 * math.pi) + 3 / (4 * r5 * math.pi) * (1 - v * v / 5) * math.log(abs((r5 - v) / (r5 + v)))
            hf[i] += kern / bw / m
    if p <= n:
        c = p / n
        d = np.array([lam[i] / ((math.pi * c * lam[i] * f[i]) ** 2 + (1 - c - math.pi * c * lam[i] * hf[i]) ** 2) for i in range(m)])
    else:
        hf0 = (1 / math.pi) * (3 / 10 / h**2 + 3 / (4 * r5) / h * (1 - 1 / (5 * h**2)) * math.log((1 + r5 * h) / (1 - r5 * h)))
        hf0 *= np.mean(1 / lam)
        d0 = 1 / (math.pi * (p - n) / n * hf0)
        d = np.concatenate([np.full(p - n, d0), [1 / (math.pi**2 * lam[i] * (f[i] ** 2 + hf[i] ** 2)) for i in range(m)]])
    return u @ np.diag(d) @ u.T


@pytest.mark.parametrize("n_obs,p", [(80, 30), (40, 70)])
def test_nonlinear_shrinkage_matches_loop_reference(n_obs, p):
    rng = np.random.default_rng(n_obs + p)
    x = rng.standard_normal((n_obs, p)) * np.sqrt(rng.uniform(0.5, 4.0, p))
    np.testing.assert_allclose(analytical_nonlinear_shrinkage(x), reference_nonlinear_shrinkage(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_obs,p", [(200, 50), (60, 150)])
def test_nonlinear_shrinkage_is_pd_with_the_sample_eigenvectors(n_obs, p):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_obs, p)) @ np.diag(np.linspace(0.5, 2.0, p))
    est = analytical_nonlinear_shrinkage(x)
    np.testing.assert_allclose(est, est.T)
    assert np.linalg.eigvalsh(est).min() > 0
    xc = x - x.mean(axis=0)
    sample = xc.T @ xc / (n_obs - 1)
    vals, vecs = np.linalg.eigh(sample)
    top = vecs[:, -min(p, n_obs - 1) :]
    # each top sample eigenvector is an eigenvector of the estimate
    rotated = top.T @ est @ top
    np.testing.assert_allclose(rotated - np.diag(np.diag(rotated)), 0.0, atol=1e-10 * np.abs(rotated).max())


def test_nonlinear_shrinkage_recovers_identity():
    """True Σ = I with p/n = 1/2: the sample spectrum spreads over [0.1, 2.9], the shrunk one
    stays near 1."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((801, 400))
    vals = np.linalg.eigvalsh(analytical_nonlinear_shrinkage(x))
    assert 0.7 < vals.min() and vals.max() < 1.35  # the spectral edges are the kernel's hardest part
    lo, hi = np.percentile(vals, [5, 95])
    assert 0.9 < lo and hi < 1.1
    sample = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert sample.min() < 0.2 and sample.max() > 2.5


def _spiked(p: int, rng: np.random.Generator) -> np.ndarray:
    """A one-factor-plus-clusters covariance (spiked model) with heterogeneous variances."""
    beta = rng.normal(1.0, 0.3, p)
    groups = rng.integers(0, 5, p)
    load = np.zeros((p, 5))
    load[np.arange(p), groups] = rng.normal(0.5, 0.1, p)
    return np.outer(beta, beta) + load @ load.T + np.diag(rng.uniform(0.5, 2.0, p))


@pytest.mark.parametrize("n_obs,p", [(120, 60), (60, 120)])
def test_nonlinear_shrinkage_beats_sample_on_spiked_model(n_obs, p):
    rng = np.random.default_rng(3)
    sigma = _spiked(p, rng)
    chol = np.linalg.cholesky(sigma)
    frob_nls, frob_lw, var_nls, var_lw = [], [], [], []
    for _ in range(5):
        x = rng.standard_normal((n_obs, p)) @ chol.T
        est = analytical_nonlinear_shrinkage(x)
        xc = x - x.mean(axis=0)
        sample = xc.T @ xc / (n_obs - 1)
        frob_nls.append(np.linalg.norm(est - sigma))
        frob_lw.append(np.linalg.norm(sample - sigma))
        w = np.linalg.solve(est, np.ones(p))
        w /= w.sum()
        var_nls.append(w @ sigma @ w)
        if n_obs > p:
            ws = np.linalg.solve(sample, np.ones(p))
            ws /= ws.sum()
            var_lw.append(ws @ sigma @ ws)
    assert np.mean(frob_nls) < np.mean(frob_lw)
    if var_lw:  # the sample GMV exists only when n > p
        assert np.mean(var_nls) < np.mean(var_lw)
    # and it is well below the 1/N portfolio's variance, within 2x of the true GMV variance
    w_true = np.linalg.solve(sigma, np.ones(p))
    assert np.mean(var_nls) < 2.0 * (1.0 / w_true.sum())
    assert np.mean(var_nls) < 0.5 * np.full(p, 1 / p) @ sigma @ np.full(p, 1 / p)


def test_nonlinear_shrinkage_rejects_bad_input():
    with pytest.raises(InsufficientDataError):
        analytical_nonlinear_shrinkage(np.ones((5, 3)))
    with pytest.raises(NonFiniteError):
        analytical_nonlinear_shrinkage(np.full((30, 3), np.nan))
    with pytest.raises(InvalidParameterError):
        analytical_nonlinear_shrinkage(np.ones(30))


def test_ewma_shrunk_toward_diagonal():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 6))
    est = EWMAShrunk(half_life=30, shrinkage=0.25, window=300)(x)
    w = 0.5 ** (np.arange(299, -1, -1) / 30)
    w /= w.sum()
    full = (x * w[:, None]).T @ x
    np.testing.assert_allclose(np.diag(est), np.diag(full))
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(est[off], 0.75 * full[off])
    with pytest.raises(InvalidParameterError):
        EWMAShrunk(shrinkage=1.5)


def test_sklearn_adapters_and_equal_weight():
    from sklearn.covariance import OAS, LedoitWolf

    rng = np.random.default_rng(5)
    x = rng.standard_normal((100, 8))
    np.testing.assert_allclose(SklearnShrinkage("ledoit_wolf", 60)(x), LedoitWolf().fit(x[-60:]).covariance_)
    np.testing.assert_allclose(SklearnShrinkage("oas", 100)(x), OAS().fit(x).covariance_)
    eq = EqualWeight(100)(x)
    w = np.linalg.solve(eq, np.ones(8))
    np.testing.assert_allclose(w / w.sum(), np.full(8, 1 / 8))
    assert set(default_estimators()) == {"Ledoit-Wolf", "OAS", "nonlinear shrinkage", "EWMA (hl 60) shrunk 50% to diagonal", "1/N"}
    assert NonlinearShrinkage(50)(x).shape == (8, 8)
    with pytest.raises(InvalidParameterError):
        SklearnShrinkage("glasso")
