"""The grouped operator kernel against its plain numpy twin (in ``tests/kernels/twins/operator.py``),
and the split of B it runs on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmodel.covariance.exposure_groups import MIN_FOLDED, group_exposures
from riskmodel.kernels.operator import (
    MODE_APPLY,
    MODE_DECOMPOSE,
    MODE_EXPOSURES,
    MODE_MOMENTS,
)
from tests.kernels.twins.operator import barra_b, grouped_rows_numpy


def _run(g, W, mode, F, d, threads=1):
    fn = {MODE_EXPOSURES: lambda: (g.exposures(W, threads=threads),),
          MODE_MOMENTS: lambda: g.moments(W, F, d, threads=threads),
          MODE_DECOMPOSE: lambda: g.decompose(W, F, d, threads=threads),
          MODE_APPLY: lambda: (None, None, None, None, g.apply(W, F, d, threads=threads))}[mode]
    got = fn()
    names = ["x", "fx", "fvar", "spec", "a", "b"]
    return {k: v for k, v in zip(names, got) if v is not None}


def _rel(a, b):
    scale = max(float(np.max(np.abs(b))), 1e-300) if b.size else 1.0
    return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


@st.composite
def _cases(draw):
    return (draw(st.integers(1, 300)), draw(st.integers(1, 7)), draw(st.integers(MIN_FOLDED, 20)),
            draw(st.integers(0, 4)), draw(st.booleans()), draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_kernel_equals_numpy_twin_every_mode(case):
    """Odd and even batches (a lone last row), 1-300 stocks (chunk edges), folded and dense
    columns interleaved, a zero row: every output equals the dense twin to 1e-12."""
    n, p, industries, styles, extra, seed = case
    rng = np.random.default_rng(seed)
    B = barra_b(rng, n, industries, styles, extra)
    g = group_exposures(B)
    if g is None:  # too many groups for the stocks: the operator uses its GEMMs then
        assert industries + 1 > max(1, int(0.25 * n))  # declined only for too many groups
        return
    m = B.shape[1]
    A = rng.normal(size=(m, m))
    F = A @ A.T / m + 0.1 * np.eye(m)
    d = rng.uniform(0.01, 0.1, size=n)
    W = rng.normal(size=(p, n))
    W[rng.integers(p)] = 0.0
    for mode in (MODE_EXPOSURES, MODE_MOMENTS, MODE_DECOMPOSE, MODE_APPLY):
        ref = grouped_rows_numpy(W, mode, B, F, d)
        got = _run(g, W, mode, F, d)
        assert set(got) <= set(ref), mode
        for name, value in got.items():
            assert _rel(value, ref[name]) < 1e-12, (mode, name)


@pytest.mark.parametrize("p", [1, 2, 9, 64])
def test_threads_give_bit_identical_rows(p):
    """Each pair of rows is computed by one thread alone: 1 and 2 threads agree bit for bit."""
    rng = np.random.default_rng(3)
    B = barra_b(rng, 3000, 30, 5)
    g = group_exposures(B)
    m = B.shape[1]
    F = np.cov(rng.normal(size=(m, 4 * m)))
    d = rng.uniform(0.01, 0.1, size=3000)
    W = rng.normal(size=(p, 3000))
    one, two = _run(g, W, MODE_DECOMPOSE, F, d, 1), _run(g, W, MODE_DECOMPOSE, F, d, 2)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_split_reproduces_b_exactly():
    rng = np.random.default_rng(0)
    B = barra_b(rng, 500, 12, 3, extra_constant=True)
    g = group_exposures(B)
    assert g is not None
    assert g.fold_cols.size == 1 + 12 + 1 and g.dense_cols.size == 3  # market, industries, the constant column
    assert g.n_groups == 13  # 12 industries + "none"
    rebuilt = np.empty_like(B)
    rebuilt[:, g.dense_cols] = g.dense_t.T
    rebuilt[:, g.fold_cols] = g.lookup[g.codes]
    np.testing.assert_array_equal(rebuilt, B)


def test_split_declines_when_it_would_not_pay():
    rng = np.random.default_rng(1)
    assert group_exposures(rng.normal(size=(400, 20))) is None  # no indicator column
    assert group_exposures(barra_b(rng, 400, MIN_FOLDED - 2, 5)) is None  # too few folded columns
    fractional = barra_b(rng, 400, 20, 3)
    fractional[fractional == 1.0] = 0.5  # weighted memberships: not indicators
    assert group_exposures(fractional) is None
    many = np.zeros((40, 30))  # 30 groups for 40 stocks
    many[np.arange(40), np.arange(40) % 30] = 1.0
    assert group_exposures(many) is None

