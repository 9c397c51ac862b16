"""Twins of :mod:`riskmodel.kernels.timeseries`: a per-stock lstsq loop, a per-date lstsq
and the plain standardisation."""

from __future__ import annotations

import numpy as np

from riskmodel.kernels.timeseries import cross_section_ols_kernel, standardise_kernel, ts_loadings_kernel
from riskmodel.models.timeseries import common_cross_products
from tests.kernels.twins import KernelTwin


def ts_loadings_twin(r, x, window, decay, min_obs, schedule):
    """Per stock and schedule row: weighted ``np.linalg.lstsq`` of the returns on ``[1, f]``
    over the window's days with a return and every factor return; the out-of-sample
    residuals with the loadings of the last schedule row ``<= t - 1``."""
    T, N = r.shape
    k = x.shape[1]
    p = k + 1
    fvalid = np.isfinite(x).all(axis=1)
    S = len(schedule)
    loadings = np.full((S, N, k), np.nan)
    intercept = np.full((S, N), np.nan)
    resid_var = np.full((S, N), np.nan)
    n_obs = np.zeros((S, N), dtype=np.int64)
    for i, t in enumerate(schedule):
        rows = np.arange(max(0, t - window + 1), t + 1)
        for n in range(N):
            y = r[rows, n]
            ok = fvalid[rows] & np.isfinite(y)
            n_obs[i, n] = ok.sum()
            if ok.sum() < min_obs or ok.sum() <= p:
                continue
            w = decay ** (t - rows[ok])
            X = np.column_stack([np.ones(ok.sum()), x[rows[ok]]])
            sw = np.sqrt(w)
            beta = np.linalg.lstsq(X * sw[:, None], y[ok] * sw, rcond=None)[0]
            e = y[ok] - X @ beta
            intercept[i, n] = beta[0]
            loadings[i, n] = beta[1:]
            resid_var[i, n] = (w * e**2).sum() / (w.sum() - p * (w**2).sum() / w.sum())
    resid = np.full((T, N), np.nan)
    for t in range(1, T):
        pos = np.searchsorted(schedule, t - 1, side="right") - 1
        if pos >= 0 and fvalid[t]:
            resid[t] = r[t] - intercept[pos] - loadings[pos] @ x[t]
    return dict(loadings=loadings, intercept=intercept, resid_var=resid_var, n_obs=n_obs, resid=resid)


def cross_section_ols_twin(r, which, loadings, min_stocks):
    """Per date: ``np.linalg.lstsq`` of the returns on the loadings of row ``which[t]`` over
    the stocks with a return and loadings (NaN with fewer than ``min_stocks``)."""
    T, N = r.shape
    k = loadings.shape[2]
    f = np.full((T, k), np.nan)
    resid = np.full((T, N), np.nan)
    for t in range(T):
        s = which[t]
        if s < 0:
            continue
        ok = np.isfinite(loadings[s, :, 0]) & np.isfinite(r[t])
        if ok.sum() < min_stocks:
            continue
        f[t] = np.linalg.lstsq(loadings[s, ok], r[t, ok], rcond=None)[0]
        resid[t, ok] = r[t, ok] - loadings[s, ok] @ f[t]
    return dict(f=f, resid=resid)


def standardise_twin(r, t0, mean, inv_sd, n_rows):
    """``(r - mean) inv_sd`` over the window's rows; 0 where the return is NaN or ``inv_sd == 0``."""
    y = r[t0 : t0 + n_rows]
    with np.errstate(invalid="ignore"):
        return np.where((inv_sd > 0) & np.isfinite(y), (y - mean) * inv_sd, 0.0)


def _returns(rng, T, N, k):
    """k-factor returns with 3% missing, a tenth of the stocks listed late, a missing factor day."""
    x = 0.01 * rng.standard_normal((T, k))
    r = 0.0005 + x @ rng.normal(1.0, 0.5, (N, k)).T + 0.01 * rng.standard_normal((T, N))
    r[rng.random((T, N)) < 0.03] = np.nan
    r[: T // 2, : max(1, N // 10)] = np.nan
    x[T // 3, 0] = np.nan
    return r, x


def _loadings_inputs(rng, T, N, k):
    r, x = _returns(rng, T, N, k)
    return dict(r=r, x=x, window=120, decay=0.5 ** (1 / 60), min_obs=40, schedule=np.arange(59, T, 21, dtype=np.int64))


def _loadings_run(inp):
    r, x, schedule = inp["r"], inp["x"], inp["schedule"]
    (T, N), k, S = r.shape, x.shape[1], len(schedule)
    fvalid = np.isfinite(x).all(axis=1)
    common = common_cross_products(x, fvalid, schedule, inp["decay"], inp["window"])
    out = dict(loadings=np.empty((S, N, k)), intercept=np.empty((S, N)), resid_var=np.empty((S, N)),
               n_obs=np.empty((S, N), np.int64), resid=np.empty((T, N)))
    ts_loadings_kernel(r, np.ascontiguousarray(np.where(fvalid[:, None], x, 0.0)), fvalid, inp["decay"], inp["window"],
                       inp["min_obs"], schedule, common, *out.values())
    return out


def _loadings_twin(inp):
    return ts_loadings_twin(inp["r"], inp["x"], inp["window"], inp["decay"], inp["min_obs"], inp["schedule"])


def _ols_inputs(rng, T, N, k):
    r, _ = _returns(rng, T, N, k)
    S = 3
    loadings = rng.normal(1.0, 0.5, (S, N, k))
    loadings[:, rng.random(N) < 0.1] = np.nan  # stocks not in the model
    which = np.minimum(np.arange(T) // max(1, T // S) - 1, S - 1).astype(np.int64)  # -1 first: no loadings yet
    gram = np.empty((S, k, k))
    for s in range(S):
        b = loadings[s][np.isfinite(loadings[s, :, 0])]
        gram[s] = b.T @ b
    return dict(r=r, which=which, loadings=loadings, gram=gram, min_stocks=2 * k)


def _ols_run(inp):
    (T, N), k = inp["r"].shape, inp["loadings"].shape[2]
    f, resid = np.empty((T, k)), np.empty((T, N))
    cross_section_ols_kernel(inp["r"], inp["which"], inp["loadings"], inp["gram"], inp["min_stocks"], f, resid)
    return dict(f=f, resid=resid)


def _ols_twin(inp):
    return cross_section_ols_twin(inp["r"], inp["which"], inp["loadings"], inp["min_stocks"])


def _standardise_inputs(rng, T, N, W):
    r, _ = _returns(rng, T, N, 2)
    inv_sd = 1.0 / rng.uniform(0.01, 0.03, N)
    inv_sd[rng.random(N) < 0.1] = 0.0  # stocks left out of the window
    return dict(r=r, t0=T - W, mean=rng.normal(0.0, 0.001, N), inv_sd=inv_sd, W=W)


def _standardise_run(inp):
    out = np.empty((inp["W"], inp["r"].shape[1]))
    standardise_kernel(inp["r"], inp["t0"], inp["mean"], inp["inv_sd"], out)
    return dict(z=out)


def _standardise_twin(inp):
    return dict(z=standardise_twin(inp["r"], inp["t0"], inp["mean"], inp["inv_sd"], inp["W"]))


ENTRIES = [
    KernelTwin(
        "timeseries.ts_loadings_kernel", ts_loadings_kernel, _loadings_run, _loadings_twin, _loadings_inputs,
        sizes={"test": dict(T=260, N=30, k=3), "quick": dict(T=504, N=100, k=5), "full": dict(T=2520, N=200, k=10)},
        rtol=1e-8, atol=1e-10,
    ),
    KernelTwin(
        "timeseries.cross_section_ols_kernel", cross_section_ols_kernel, _ols_run, _ols_twin, _ols_inputs,
        sizes={"test": dict(T=60, N=300, k=4), "quick": dict(T=252, N=1000, k=5), "full": dict(T=2520, N=5000, k=10)},
        rtol=1e-10, atol=1e-12,
    ),
    KernelTwin(
        "timeseries.standardise_kernel", standardise_kernel, _standardise_run, _standardise_twin, _standardise_inputs,
        sizes={"test": dict(T=80, N=50, W=60), "quick": dict(T=504, N=1000, W=504),
               "full": dict(T=2520, N=5000, W=504)},
        rtol=0.0, atol=0.0,
    ),
]
