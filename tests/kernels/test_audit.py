"""The audit's Z-building kernels against their plain numpy twins (in ``tests/kernels/twins/audit.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.kernels.audit import (
    SVV_LAGGED,
    SVV_NONE,
    SVV_STATIC,
    gather_standardised,
    standardise_columns,
)
from tests.kernels.twins.audit import gather_standardised_twin, standardise_columns_twin


def _world(seed=0, T_all=150, N_all=90):
    rng = np.random.default_rng(seed)
    u = rng.standard_t(3, size=(T_all, N_all)) * 0.02
    u[rng.random(u.shape) < 0.1] = np.nan
    svv2 = rng.uniform(1e-4, 9e-4, (T_all, N_all))
    svv1 = rng.uniform(1e-4, 9e-4, N_all)
    rows = np.sort(rng.choice(np.arange(1, T_all), 130, replace=False)).astype(np.int64)  # more than one row block
    cols = rng.permutation(N_all)[:70].astype(np.int64)
    return rng, u, svv2, svv1, rows, cols


@pytest.mark.parametrize("kind", [SVV_NONE, SVV_LAGGED, SVV_STATIC])
def test_gather_standardised_matches_numpy_twin(kind):
    _, u, svv2, svv1, rows, cols = _world(kind)
    mask = np.isfinite(u[np.ix_(rows, cols)])
    out = np.empty((rows.size, cols.size), order="F")
    gather_standardised(u, svv2 if kind == SVV_LAGGED else np.zeros((1, 1)),
                        svv1 if kind == SVV_STATIC else np.zeros(1), kind, rows, cols, mask, out)
    ref = gather_standardised_twin(u, svv2, svv1, kind, rows, cols, mask)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("rescale", [False, True])
@pytest.mark.parametrize("clip", [np.inf, 2.5])
def test_standardise_columns_matches_numpy_twin(rescale, clip):
    rng = np.random.default_rng(3)
    T, N = 120, 40
    Z0 = rng.standard_t(3, size=(T, N)) * rng.uniform(0.5, 3.0, N)
    mask = rng.random((T, N)) > 0.15
    Z0[~mask] = 0.0
    Z0[:, 7] = np.where(mask[:, 7], 0.4, 0.0)  # a constant column: flagged, left alone
    n = mask.sum(axis=0).astype(np.float64)
    Z = np.asfortranarray(Z0.copy())
    mu, sd, flat = np.empty(N), np.empty(N), np.empty(N, dtype=bool)
    standardise_columns(Z, mask, n, rescale, clip, mu, sd, flat)
    expect, mu_ref, sd_ref, flat_ref = standardise_columns_twin(Z0, mask, n, rescale, clip)
    np.testing.assert_array_equal(flat, flat_ref)
    assert flat[7] and flat.sum() == 1  # a constant column is caught despite its nonzero mean
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd[~flat], sd_ref[~flat], rtol=1e-12)
    keep = ~flat
    np.testing.assert_allclose(Z[:, keep], expect[:, keep], rtol=1e-11, atol=1e-12)
    # the result has the MP normalisation: unit diagonal of Z'Z/T, zero column means
    np.testing.assert_allclose((Z[:, keep] ** 2).sum(0) / T, 1.0, rtol=1e-12)
    np.testing.assert_allclose(Z[:, keep].sum(0), 0.0, atol=1e-10)
