"""Twins of :mod:`riskmodel.kernels.audit`: the gather and the column standardisation of ``Z``."""

from __future__ import annotations

import numpy as np

from riskmodel.kernels.audit import SVV_LAGGED, SVV_STATIC, gather_standardised, standardise_columns
from tests.kernels.twins import KernelTwin


def gather_standardised_twin(u, svv_lagged, svv_static, svv_kind, rows, cols, mask):
    """Gather ``u[rows][:, cols]``, divide by the predicted sd (of the row before, or of the
    stock), zero the cells outside ``mask``."""
    ref = u[np.ix_(rows, cols)].copy()
    if svv_kind == SVV_LAGGED:
        ref /= np.sqrt(svv_lagged[np.ix_(rows - 1, cols)])
    elif svv_kind == SVV_STATIC:
        ref /= np.sqrt(svv_static[cols])[None, :]
    ref[~mask] = 0.0
    return ref


def standardise_columns_twin(Z, mask, n, rescale, clip):
    """The column-wise numpy passes: optional rescaling by the column sd, the clip, the
    moments over the valid cells and ``(z - mu) sqrt(T / n) / sd`` (columns whose sd is
    ``<= 1e-12 max(|mu|, 1)`` are flagged flat). Returns ``(Z, mu, sd, flat)``; the flat
    columns of ``Z`` are not specified (NaN here)."""
    T = Z.shape[0]

    def moments(x):
        m = x.sum(0) / n
        return m, np.sqrt(np.where(mask, (x - m) ** 2, 0.0).sum(0) / n)

    ref = Z.copy()
    if rescale:
        sd0 = moments(ref)[1]
        ref /= np.where(sd0 > 0, sd0, 1.0)
    ref = np.clip(ref, -clip, clip)
    mu, sd = moments(ref)
    flat = sd <= 1e-12 * np.maximum(np.abs(mu), 1.0)
    keep = ~flat
    out = np.where(mask, (ref - mu) * (np.sqrt(T / n) / np.where(keep, sd, 1.0)), 0.0)
    out[:, flat] = np.nan
    return out, mu, sd, flat


def _gather_inputs(rng, T_all, N_all, T, N):
    u = rng.standard_t(3, size=(T_all, N_all)) * 0.02
    u[rng.random(u.shape) < 0.1] = np.nan
    rows = np.sort(rng.choice(np.arange(1, T_all), T, replace=False)).astype(np.int64)
    cols = rng.permutation(N_all)[:N].astype(np.int64)
    return dict(u=u, svv_lagged=rng.uniform(1e-4, 9e-4, (T_all, N_all)), svv_static=np.zeros(1),
                svv_kind=SVV_LAGGED, rows=rows, cols=cols, mask=np.isfinite(u[np.ix_(rows, cols)]))


def _gather_run(inp):
    out = np.empty((inp["rows"].size, inp["cols"].size), order="F")
    gather_standardised(inp["u"], inp["svv_lagged"], inp["svv_static"], inp["svv_kind"], inp["rows"], inp["cols"],
                        inp["mask"], out)
    return dict(z=out)


def _gather_twin(inp):
    return dict(z=gather_standardised_twin(inp["u"], inp["svv_lagged"], inp["svv_static"], inp["svv_kind"],
                                           inp["rows"], inp["cols"], inp["mask"]))


def _columns_inputs(rng, T, N):
    Z = rng.standard_t(3, size=(T, N)) * rng.uniform(0.5, 3.0, N)
    mask = rng.random((T, N)) > 0.15
    Z[~mask] = 0.0
    return dict(Z=Z, mask=mask, n=mask.sum(axis=0).astype(np.float64), rescale=True, clip=2.5)


def _columns_run(inp):
    N = inp["Z"].shape[1]
    Z = np.asfortranarray(inp["Z"].copy())
    mu, sd, flat = np.empty(N), np.empty(N), np.empty(N, dtype=bool)
    standardise_columns(Z, inp["mask"], inp["n"], inp["rescale"], inp["clip"], mu, sd, flat)
    Z[:, flat] = np.nan
    return dict(z=Z, mu=mu, sd=sd, flat=flat)


def _columns_twin(inp):
    z, mu, sd, flat = standardise_columns_twin(inp["Z"], inp["mask"], inp["n"], inp["rescale"], inp["clip"])
    return dict(z=z, mu=mu, sd=sd, flat=flat)


ENTRIES = [
    KernelTwin(
        "audit.gather_standardised", gather_standardised, _gather_run, _gather_twin, _gather_inputs,
        sizes={"test": dict(T_all=150, N_all=90, T=130, N=70), "quick": dict(T_all=300, N_all=600, T=250, N=500),
               "full": dict(T_all=2520, N_all=5000, T=2500, N=4500)},
        rtol=0.0, atol=0.0,
    ),
    KernelTwin(
        "audit.standardise_columns", standardise_columns, _columns_run, _columns_twin, _columns_inputs,
        sizes={"test": dict(T=120, N=40), "quick": dict(T=250, N=500), "full": dict(T=2520, N=5000)},
        rtol=1e-11, atol=1e-12,
    ),
]
