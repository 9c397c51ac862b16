"""The WLS kernel against its plain numpy twin (dense dummies, ``np.linalg.lstsq`` per date;
in ``tests/kernels/twins/wls.py``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from riskmodel.kernels import wls as k
from riskmodel.regression import factor_returns
from tests.kernels.twins.wls import messy_world, run_kernel, wls_twin


def assert_same(got, ref, rtol=1e-10):
    for name in ("factor_returns", "residuals", "r2", "se"):
        a, b = getattr(got, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"NaN pattern of {name}")
        scale = np.nanmax(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)
    lag_rows = ~np.isnan(ref.r2)
    np.testing.assert_array_equal(got.n_obs[lag_rows], ref.n_obs[lag_rows])
    np.testing.assert_array_equal(got.n_clipped[lag_rows], ref.n_clipped[lag_rows])


@pytest.mark.parametrize("lag", [0, 1, 2])
@pytest.mark.parametrize("clip", [np.nan, 3.0])
def test_kernel_matches_numpy_twin(lag, clip):
    w = messy_world(seed=1)
    got = run_kernel(w, lag=lag, clip=clip, min_size=5)
    ref = wls_twin(w.returns, w.styles, w.industry, w.weights, w.cap, lag=lag, clip=clip, min_size=5)
    assert_same(got, ref)
    assert (got.date_status[:lag] == k.DATE_BEFORE_LAG).all()
    assert (got.date_status[lag:] == k.DATE_OK).all()
    # the 3-member industry is thin every date, the others active
    assert (got.ind_status[lag:, -1] == k.IND_THIN).all()
    assert (got.ind_status[lag:, :-1] == k.IND_ACTIVE).all()
    if not np.isnan(clip):
        assert got.n_clipped[5] >= 1


def test_kernel_matches_twin_without_industries():
    w = messy_world(seed=2, industries=False)
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    ref = wls_twin(w.returns, w.styles, None, w.weights, w.cap, lag=1, clip=5.0, min_size=5)
    assert_same(got, ref)
    assert got.factor_returns.shape[1] == 1 + 4


def test_kernel_effective_count_rule_drops_concentrated_industry():
    # 10 members but one dominates the weights: (Σv)²/Σv² ≈ 1.2 < 5 -> thin
    w = messy_world(seed=3)
    w.industry[:] = np.maximum(w.industry[0], 0)  # fixed membership over time
    members = np.flatnonzero(w.industry[0] == 1)
    w.industry[:, members[10:]] = 2
    w.weights[:, members[:10]] = 1.0
    w.weights[:, members[0]] = 1e4
    w.returns[:, members[:10]] = 0.01
    got = run_kernel(w, lag=1, clip=np.nan, min_size=5)
    ref = wls_twin(w.returns, w.styles, w.industry, w.weights, w.cap, lag=1, clip=np.nan, min_size=5)
    assert_same(got, ref)
    assert (got.ind_status[1:, 1] == k.IND_THIN).all()
    assert np.isnan(got.factor_returns[1:, 2]).all()


def test_kernel_singular_and_empty_dates():
    w = messy_world(seed=4)
    w.styles[3, :, 1] = w.styles[3, :, 0]  # duplicate style at exposure row 3 -> return row 4
    w.returns[7] = np.nan  # no returns at all
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    assert got.date_status[4] == k.DATE_SINGULAR and got.date_status[7] == k.DATE_SINGULAR
    for t in (4, 7):
        assert np.isnan(got.factor_returns[t]).all() and np.isnan(got.residuals[t]).all()
        assert np.isnan(got.se[t]).all() and np.isnan(got.r2[t])
    assert got.n_obs[7] == 0
    ok = np.setdiff1d(np.arange(1, 12), [4, 7])
    assert (got.date_status[ok] == k.DATE_OK).all()


def test_cholesky_lower_matches_numpy_and_flags_rank_deficiency():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(30, 8))
    gram = a.T @ a
    work = gram.copy()
    assert k.cholesky_lower(work, 8, k.PIVOT_RTOL)
    np.testing.assert_allclose(np.tril(work), np.linalg.cholesky(gram), rtol=1e-12, atol=1e-12)
    a[:, 3] = a[:, 1] - a[:, 2]
    work = (a.T @ a).copy()
    assert not k.cholesky_lower(work, 8, k.PIVOT_RTOL)


def test_public_wrapper_equals_kernel():
    w = messy_world(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = factor_returns(w.returns, w, lag=1, return_clip=5.0, min_industry_size=5)
    got = run_kernel(w, lag=1, clip=5.0, min_size=5)
    for name in ("factor_returns", "residuals", "r2", "se", "n_obs", "n_clipped"):
        np.testing.assert_array_equal(getattr(res, name), getattr(got, name))


@pytest.mark.parametrize("n", [1, 2, 7, 512, 513, 5000, 5001])
def test_median_matches_numpy(n):
    rng = np.random.default_rng(n)
    cases = [
        rng.standard_t(3, size=n),
        np.round(rng.normal(size=n), 1),  # many ties
        np.where(rng.random(n) < 0.6, 0.0, rng.normal(size=n)),  # mostly zero returns
        np.sort(rng.normal(size=n)),  # sorted: the sample brackets still hold
        rng.exponential(size=n),  # skewed (as |r - median| is)
    ]
    for values in cases:
        a = values.copy()
        got = k.median_bracketed(a, n, np.empty(n))
        assert got == np.median(values)
        np.testing.assert_array_equal(np.sort(a), np.sort(values))  # a permutation of the input
