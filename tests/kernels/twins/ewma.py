"""Twins of :mod:`riskmodel.kernels.ewma`: per-date weighted sums, dense eigen-decompositions."""

from __future__ import annotations

import numpy as np

from riskmodel.kernels.ewma import (
    assemble_covariance,
    eigen_rebuild_stack,
    eigh_stack,
    ewma_newey_west,
    rebuild_stack,
    wishart_eigen_ratios,
)
from tests.kernels.twins import KernelTwin


def nw_twin(
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


def run_nw(x, pairs, half_life, window, lags, demean):
    pi = np.array([p[0] for p in pairs], dtype=np.int64)
    pj = np.array([p[1] for p in pairs], dtype=np.int64)
    out = np.empty((len(pairs), x.shape[0]))
    cnt = np.empty((len(pairs), x.shape[0]), dtype=np.int64)
    decay = 1.0 if np.isinf(half_life) else 0.5 ** (1.0 / half_life)
    ewma_newey_west(np.ascontiguousarray(x.T), pi, pj, decay, window, lags, demean, out, cnt)
    return out, cnt


def factor_data(seed, n_dates: int = 160, m: int = 4, nan_share: float = 0.1) -> np.ndarray:
    """Factor returns with scattered and whole missing rows and a late factor (``seed``: an
    int or a ``numpy.random.Generator``)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_dates, m)) * np.resize([0.01, 0.02, 0.005, 0.03], m) + 0.001
    x[rng.random(x.shape) < nan_share] = np.nan
    x[5:9] = np.nan  # whole missing rows (dates with no regression)
    x[:3, 2] = np.nan  # a factor starting late
    return x


def assemble_covariance_twin(cov_c, pair_i, pair_j, sd, sd_c, available):
    """Per date: rho from the correlation stage, sigma from the variance stage, NaN rows and
    columns for the factors not available."""
    m, n_dates = sd.shape
    out = np.empty((n_dates, m, m))
    for t in range(n_dates):
        c = np.full((m, m), np.nan)
        c[pair_i, pair_j] = cov_c[:, t]
        c = np.triu(c, 1) + np.triu(c, 1).T
        rho = c / np.outer(sd_c[:, t], sd_c[:, t])
        rho[np.isnan(rho)] = 0.0
        np.fill_diagonal(rho, 1.0)
        ref = rho * np.outer(sd[:, t], sd[:, t])
        off = ~available[t]
        ref[off] = np.nan
        ref[:, off] = np.nan
        out[t] = ref
    return out


def rebuild_stack_twin(vectors, values):
    """``U diag(d) Uᵀ`` per matrix of the stack."""
    return (vectors * values[:, None, :]) @ vectors.transpose(0, 2, 1)


def wishart_eigen_ratios_twin(normals, chi, d0, nu):
    """Bartlett factor ``B`` of each draw, ``F = B Bᵀ``, and ``D̃_j(k) = u_jkᵀ diag(d0) u_jk``
    over ``D_j(k)`` (its eigenvalues and vectors)."""
    n, m = chi.shape
    lower = np.tril_indices(m, -1)
    a = np.zeros((n, m, m))
    a[:, lower[0], lower[1]] = normals
    a[:, np.arange(m), np.arange(m)] = chi
    b = a * np.sqrt(d0 / nu)[None, :, None]
    d_sim, u_sim = np.linalg.eigh(b @ b.transpose(0, 2, 1))
    return np.einsum("i,jik->jk", d0, u_sim**2) / d_sim


def eigen_rebuild_stack_twin(a, floor, gamma2):
    """Eigenvalues floored at ``floor``, scaled by ``gamma2``, and the matrices rebuilt."""
    w, v = np.linalg.eigh(a)
    return (v * (gamma2 * np.maximum(w, floor[:, None]))[:, None, :]) @ v.transpose(0, 2, 1)


# ---------------------------------------------------------------------------------------
# registry entries
# ---------------------------------------------------------------------------------------


def _nw_inputs(rng, n_dates, m):
    x = factor_data(rng, n_dates, m)
    iu = np.triu_indices(m)
    return dict(x=x, pairs=list(zip(iu[0].tolist(), iu[1].tolist())), half_life=25.0, window=75, lags=2,
                demean=True)


def _nw_run(inp):
    out, cnt = run_nw(inp["x"], inp["pairs"], inp["half_life"], inp["window"], inp["lags"], inp["demean"])
    return dict(cov=out, count=cnt)


def _nw_twin(inp):
    rows = [nw_twin(inp["x"], i, j, inp["half_life"], inp["window"], inp["lags"], inp["demean"])
            for i, j in inp["pairs"]]
    return dict(cov=np.array([r[0] for r in rows]), count=np.array([r[1] for r in rows]))


def _spd_stack(rng, n, m):
    a = rng.standard_normal((n, m, m))
    return a @ a.transpose(0, 2, 1)


def _eigh_inputs(rng, n, m):
    return dict(a=_spd_stack(rng, n, m))


def _eigh_run(inp):
    a = inp["a"]
    w, v = np.empty(a.shape[:2]), np.empty(a.shape)
    eigh_stack(a, w, v)
    return dict(values=w, rebuilt=rebuild_stack_twin(v, w))


def _eigh_twin(inp):
    return dict(values=np.linalg.eigvalsh(inp["a"]), rebuilt=inp["a"])


def _assemble_inputs(rng, n_dates, m):
    iu = tuple(a.astype(np.int64) for a in np.triu_indices(m))
    cov_c = rng.standard_normal((iu[0].size, n_dates)) * 1e-4
    cov_c[3, 2] = np.nan  # a pair never observed together
    return dict(cov_c=cov_c, pair_i=iu[0], pair_j=iu[1], sd=rng.uniform(0.01, 0.02, (m, n_dates)),
                sd_c=rng.uniform(0.01, 0.02, (m, n_dates)), available=rng.random((n_dates, m)) > 0.2)


def _assemble_run(inp):
    m, n_dates = inp["sd"].shape
    out = np.empty((n_dates, m, m))
    assemble_covariance(inp["cov_c"], inp["pair_i"], inp["pair_j"], inp["sd"], inp["sd_c"], inp["available"], out)
    return dict(cov=out)


def _assemble_twin(inp):
    return dict(cov=assemble_covariance_twin(inp["cov_c"], inp["pair_i"], inp["pair_j"], inp["sd"], inp["sd_c"],
                                             inp["available"]))


def _rebuild_inputs(rng, n, m):
    return dict(vectors=np.linalg.qr(rng.standard_normal((n, m, m)))[0], values=rng.uniform(0.1, 2.0, (n, m)))


def _rebuild_run(inp):
    out = np.empty(inp["vectors"].shape)
    rebuild_stack(inp["vectors"], inp["values"], out)
    return dict(cov=out)


def _rebuild_twin(inp):
    return dict(cov=rebuild_stack_twin(inp["vectors"], inp["values"]))


def _wishart_inputs(rng, n, m, nu):
    d0 = np.geomspace(2.0, 0.01, m)[::-1].copy()
    normals = rng.standard_normal((n, m * (m - 1) // 2))
    chi = np.sqrt(rng.chisquare(nu - np.arange(m), size=(n, m)))
    return dict(normals=normals, chi=chi, d0=d0, nu=float(nu))


def _wishart_run(inp):
    ratio = np.empty(inp["chi"].shape)
    wishart_eigen_ratios(inp["normals"], inp["chi"], inp["d0"], inp["nu"], ratio)
    return dict(ratio=ratio)


def _wishart_twin(inp):
    return dict(ratio=wishart_eigen_ratios_twin(inp["normals"], inp["chi"], inp["d0"], inp["nu"]))


def _eigen_rebuild_inputs(rng, n, m):
    u = np.linalg.qr(rng.standard_normal((n, m, m)))[0]
    d = np.sort(rng.uniform(0.1, 2.0, (n, m)), axis=1)
    d[:, 0] = 1e-9  # below the floor on every matrix
    a = (u * d[:, None, :]) @ u.transpose(0, 2, 1)
    return dict(a=0.5 * (a + a.transpose(0, 2, 1)), floor=np.full(n, 0.05), gamma2=rng.uniform(0.5, 1.5, (n, m)))


def _eigen_rebuild_run(inp):
    out = np.empty(inp["a"].shape)
    eigen_rebuild_stack(inp["a"], inp["floor"], inp["gamma2"], out)
    return dict(cov=out)


def _eigen_rebuild_twin(inp):
    return dict(cov=eigen_rebuild_stack_twin(inp["a"], inp["floor"], inp["gamma2"]))


_STACKS = {"test": dict(n=20, m=7), "quick": dict(n=200, m=30), "full": dict(n=2520, m=70)}

ENTRIES = [
    KernelTwin(
        "ewma.ewma_newey_west", ewma_newey_west, _nw_run, _nw_twin, _nw_inputs,
        sizes={"test": dict(n_dates=160, m=4), "quick": dict(n_dates=200, m=3), "full": dict(n_dates=1000, m=8)},
        rtol=0.0, atol=1e-12,
    ),
    KernelTwin("ewma.eigh_stack", eigh_stack, _eigh_run, _eigh_twin, _eigh_inputs, sizes=_STACKS,
               rtol=0.0, atol=1e-11),
    KernelTwin(
        "ewma.assemble_covariance", assemble_covariance, _assemble_run, _assemble_twin, _assemble_inputs,
        sizes={"test": dict(n_dates=9, m=4), "quick": dict(n_dates=500, m=20), "full": dict(n_dates=2520, m=70)},
        rtol=1e-14, atol=0.0,
    ),
    KernelTwin("ewma.rebuild_stack", rebuild_stack, _rebuild_run, _rebuild_twin, _rebuild_inputs, sizes=_STACKS,
               rtol=0.0, atol=1e-14),
    KernelTwin(
        "ewma.wishart_eigen_ratios", wishart_eigen_ratios, _wishart_run, _wishart_twin, _wishart_inputs,
        sizes={"test": dict(n=12, m=6, nu=30), "quick": dict(n=100, m=30, nu=252), "full": dict(n=1000, m=70, nu=2520)},
        rtol=1e-8, atol=0.0,
    ),
    KernelTwin(
        "ewma.eigen_rebuild_stack", eigen_rebuild_stack, _eigen_rebuild_run, _eigen_rebuild_twin,
        _eigen_rebuild_inputs, sizes=_STACKS, rtol=0.0, atol=1e-12,
    ),
]
