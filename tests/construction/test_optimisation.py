"""Optimisation on the structured operator: factor form equals dense, adapters agree."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmodel.construction.optimisation import (
    CVXPY_HINT,
    OptimisationError,
    SkfolioCovariance,
    factor_form,
    min_variance,
    optimise,
    sigma_inverse_alpha,
)
from riskmodel.covariance.structured import StructuredCovariance
from riskmodel.errors import InvalidParameterError

import cvxpy  # noqa: E402,F401 - in the test extra: a missing solver fails, not skips


def _cov(n: int, m: int, seed: int) -> StructuredCovariance:
    rng = np.random.default_rng(seed)
    B = rng.normal(0.0, 1.0, (n, m))
    B[:, 0] = rng.normal(1.0, 0.3, n)  # a market factor
    A = rng.normal(0.0, 1.0, (m, m))
    F = (A @ A.T / m + np.eye(m) * 0.1) * 1.0
    d = rng.uniform(0.5, 2.0, n)
    return StructuredCovariance.from_arrays(B, F, d)


def test_factor_form_reproduces_sigma():
    cov = _cov(12, 3, 0)
    G, d = factor_form(cov)
    np.testing.assert_allclose(G @ G.T + np.diag(d), cov.to_dense(), rtol=1e-12, atol=1e-12)
    dense = cov.to_dense()
    G2, d2 = factor_form(dense)
    np.testing.assert_allclose(G2 @ G2.T + np.diag(d2), dense, rtol=1e-9, atol=1e-9)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 20))  # rank 5: a 5-factor form plus a floor
    low_rank = x.T @ x + 0.3 * np.eye(20)
    G3, d3 = factor_form(low_rank)
    assert G3.shape == (20, 5)
    np.testing.assert_allclose(d3, 0.3, rtol=1e-8)
    with pytest.raises(InvalidParameterError):
        factor_form(np.ones((3, 4)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
@given(n=st.integers(4, 25), m=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_long_only_factor_form_equals_dense(n, m, seed):
    cov = _cov(n, m, seed)
    w_factor = optimise(cov, long_only=True).to_numpy()
    w_dense = optimise(cov, long_only=True, form="dense").to_numpy()
    np.testing.assert_allclose(w_factor, w_dense, atol=1e-6)
    assert w_factor.min() > -1e-7 and abs(w_factor.sum() - 1) < 1e-8
    # the optimum is no worse than any feasible point we can name
    assert cov.variance(w_factor) <= cov.variance(np.full(n, 1 / n)) + 1e-9


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
@given(n=st.integers(6, 20), seed=st.integers(0, 10_000))
def test_constrained_factor_form_equals_dense(n, seed):
    cov = _cov(n, 3, seed)
    rng = np.random.default_rng(seed)
    alpha = rng.normal(0, 0.1, n)
    bench = np.full(n, 1 / n)
    previous = rng.dirichlet(np.ones(n))
    kw = dict(alpha=alpha, risk_aversion=2.0, long_only=True, upper=0.5, benchmark=bench, tracking_error=0.8,
              previous=previous, max_turnover=1.5, factor_bounds={"f1": (-0.5, 0.5)})
    w_factor = optimise(cov, **kw).to_numpy()
    w_dense = optimise(cov, form="dense", **kw).to_numpy()
    np.testing.assert_allclose(w_factor, w_dense, atol=1e-6)
    active = w_factor - bench
    assert np.sqrt(cov.variance(active)) <= 0.8 + 1e-6
    assert np.abs(w_factor - previous).sum() <= 1.5 + 1e-6
    assert abs(float(cov.factor_exposures(w_factor).sel(factor="f1"))) <= 0.5 + 1e-6
    assert w_factor.max() <= 0.5 + 1e-7


def test_unconstrained_matches_woodbury():
    cov = _cov(30, 4, 7)
    w = optimise(cov, long_only=False).to_numpy()
    np.testing.assert_allclose(w, min_variance(cov).to_numpy(), atol=1e-6)
    alpha = np.random.default_rng(0).standard_normal(30)
    raw = np.asarray(sigma_inverse_alpha(cov, alpha, normalise="none"))
    np.testing.assert_allclose(raw, np.linalg.solve(cov.to_dense(), alpha), rtol=1e-8)
    # unconstrained mean-variance: w = Σ⁻¹α / (2 λ)
    w_mv = optimise(cov, alpha=alpha, risk_aversion=3.0, long_only=False, budget=None).to_numpy()
    np.testing.assert_allclose(w_mv, raw / 6.0, atol=1e-6)


def test_labelled_inputs_and_errors():
    cov = _cov(10, 2, 3)
    alpha = pd.Series(np.linspace(-1, 1, 5), index=[f"s{i}" for i in range(5)])  # other stocks: 0
    w = optimise(cov, alpha=alpha, long_only=True)
    assert list(w["stock"].to_numpy()) == list(cov.stocks)
    with pytest.raises(OptimisationError):
        optimise(cov, long_only=True, upper=0.05)  # ten stocks cannot sum to 1 at <= 5 % each
    with pytest.raises(InvalidParameterError):
        optimise(cov, form="sparse")
    with pytest.raises(InvalidParameterError):
        optimise(cov, factor_bounds={"nope": (0, 1)})
    with pytest.raises(InvalidParameterError):
        optimise(cov, alpha=np.ones(3))


def test_missing_cvxpy_names_the_extra(monkeypatch):
    cov = _cov(5, 1, 0)
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    with pytest.raises(ImportError, match=r"pip install riskmodel\[construction\]"):
        optimise(cov)
    assert "riskmodel[construction]" in CVXPY_HINT


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
@given(n=st.integers(5, 15), seed=st.integers(0, 1000))
def test_skfolio_adapter_weights_equal_cvxpy(n, seed):
    from skfolio.optimization import MeanRisk
    from skfolio.prior import EmpiricalPrior

    cov = _cov(n, 2, seed)

    class Fit:  # the fitted-model protocol the adapter needs: covariance(date)
        def covariance(self, date=None):
            return cov

    dates = pd.bdate_range("2020-01-01", periods=30)
    X = pd.DataFrame(np.random.default_rng(seed).normal(0, 0.01, (30, n)), index=dates, columns=list(cov.stocks))
    estimator = SkfolioCovariance(Fit())
    model = MeanRisk(prior_estimator=EmpiricalPrior(covariance_estimator=estimator), min_weights=0.0, max_weights=1.0)
    model.fit(X)
    np.testing.assert_allclose(model.weights_, optimise(cov, long_only=True).to_numpy(), atol=1e-5)
    np.testing.assert_allclose(model.prior_estimator_.covariance_estimator_.covariance_, cov.to_dense())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)
@given(n=st.integers(4, 40), m=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_active_set_long_only_equals_cvxpy(n, m, seed):
    from riskmodel.construction.optimisation import long_only_min_variance

    cov = _cov(n, m, seed)
    w_active = long_only_min_variance(cov).to_numpy()
    w_qp = optimise(cov, long_only=True).to_numpy()
    # the active set is exact (KKT below); the QP is exact to its solver's tolerance
    np.testing.assert_allclose(w_active, w_qp, atol=1e-5)
    dense = cov.to_dense()
    assert w_active @ dense @ w_active <= w_qp @ dense @ w_qp * (1 + 1e-9)
    assert w_active.min() >= 0 and abs(w_active.sum() - 1) < 1e-12
    # KKT: no excluded stock lowers the variance at the margin
    grad = cov.to_dense() @ w_active
    held = w_active > 0
    assert (grad[~held] >= grad[held].max() * (1 - 1e-8)).all()


def test_default_solver_is_polished_osqp_for_a_qp_and_clarabel_for_a_cone(monkeypatch):
    """A QP goes to OSQP and its polished weights are exact (KKT to 1e-10); a tracking-error
    limit (a second-order cone) goes to CLARABEL; a failed polish is solved again by CLARABEL."""
    import riskmodel.construction.optimisation as opt

    cov = _cov(40, 3, 7)
    used: list[str] = []
    real_solve = opt._solve

    def spy(cp, problem, solver, options):
        used.append(solver)
        real_solve(cp, problem, solver, options)

    monkeypatch.setattr(opt, "_solve", spy)
    w = optimise(cov, long_only=True).to_numpy()
    assert used == ["OSQP"]
    # KKT of min wᵀΣw, 1ᵀw = 1, w ≥ 0: (Σw)_i equal on the held stocks, not below elsewhere
    grad = cov.to_dense() @ w
    held = w > 1e-9
    assert held.sum() >= 2 and (w > -1e-12).all()
    np.testing.assert_allclose(grad[held], grad[held].mean(), rtol=1e-9)
    assert (grad[~held] >= grad[held].mean() * (1 - 1e-9)).all()
    used.clear()
    optimise(cov, long_only=True, benchmark=np.full(40, 1 / 40), tracking_error=0.5)
    assert used == ["CLARABEL"]
    used.clear()
    monkeypatch.setattr(opt, "_osqp_polished", lambda problem: False)
    w_fallback = optimise(cov, long_only=True).to_numpy()
    assert used == ["OSQP", "CLARABEL"]
    np.testing.assert_allclose(w_fallback, w, atol=1e-7)
