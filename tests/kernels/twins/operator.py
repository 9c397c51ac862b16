"""Twin of :mod:`riskmodel.kernels.operator`: the whole ``B`` and plain dense products."""

from __future__ import annotations

import numpy as np

from riskmodel.covariance.exposure_groups import group_exposures
from riskmodel.kernels.operator import (
    MODE_APPLY,
    MODE_DECOMPOSE,
    MODE_EXPOSURES,
    grouped_rows_kernel,
)
from tests.kernels.twins import KernelTwin


def grouped_rows_numpy(W: np.ndarray, mode: int, B: np.ndarray, F: np.ndarray, d: np.ndarray) -> dict:
    """Twin of ``grouped_rows_kernel`` with the whole ``B``: plain dense products."""
    x = W @ B
    out = {"x": x}
    if mode == MODE_EXPOSURES:
        return out
    fx = x @ F
    out.update(fx=fx, fvar=np.einsum("pk,pk->p", x, fx), spec=(W * W) @ d)
    sw = fx @ B.T + W * d
    if mode == MODE_APPLY:
        out["a"] = sw
    elif mode == MODE_DECOMPOSE:
        vol = np.sqrt(out["fvar"] + out["spec"])
        inv = np.divide(1.0, vol, out=np.zeros_like(vol), where=vol > 0)
        out["a"] = sw * inv[:, None]
        out["b"] = W * out["a"]
    return out


def barra_b(rng, n, industries, styles, extra_constant=False, none_share=0.1):
    """Market of ones, one-hot industries (a share of stocks in none), styles; optionally a
    column constant within each industry that is not an indicator (folded too)."""
    code = rng.integers(0, industries, size=n)
    code[rng.random(n) < none_share] = industries  # no industry
    cols = [np.ones(n), *(code == j for j in range(industries))]
    if extra_constant:
        cols.append(rng.normal(size=industries + 1)[code])
    cols += [rng.normal(size=n) for _ in range(styles)]
    B = np.column_stack(cols).astype(float)
    return B[:, rng.permutation(B.shape[1])]  # folded and dense columns interleaved


def _inputs(rng, n, P, industries, styles):
    B = barra_b(rng, n, industries, styles)
    m = B.shape[1]
    A = rng.normal(size=(m, m))
    W = rng.normal(size=(P, n))
    W[0] = 0.0  # a zero portfolio: no contributions
    return dict(B=B, grouped=group_exposures(B), W=W, F=A @ A.T / m + 0.1 * np.eye(m),
                d=rng.uniform(0.01, 0.1, size=n))


def _run(inp):
    """The kernel in ``MODE_DECOMPOSE`` on the grouping of ``B``, as ``GroupedExposures`` calls it."""
    g, W = inp["grouped"], inp["W"]
    P, N = W.shape
    m = g.dense_cols.size + g.fold_cols.size
    x, fx = np.empty((P, m)), np.empty((P, m))
    fvar, spec = np.empty(P), np.empty(P)
    a, b = np.empty((P, N)), np.empty((P, N))
    grouped_rows_kernel(W, MODE_DECOMPOSE, g.dense_t, g.dense_cols, g.codes, g.n_groups, g.fold_cols,
                        *g._nonzeros, inp["F"], inp["d"], x, fx, fvar, spec, a, b)
    return dict(x=x, fx=fx, fvar=fvar, spec=spec, a=a, b=b)


def _twin(inp):
    return grouped_rows_numpy(inp["W"], MODE_DECOMPOSE, inp["B"], inp["F"], inp["d"])


ENTRIES = [
    KernelTwin(
        "operator.grouped_rows_kernel", grouped_rows_kernel, _run, _twin, _inputs,
        sizes={"test": dict(n=300, P=9, industries=12, styles=4),
               "quick": dict(n=2000, P=100, industries=30, styles=6),
               "full": dict(n=5000, P=1000, industries=60, styles=10)},
        rtol=1e-12, atol=1e-12,
    ),
]
