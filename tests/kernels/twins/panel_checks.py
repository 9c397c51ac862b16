"""Twins of :mod:`riskmodel.kernels.panel_checks`: the numpy code of the panel checks
(``np.nanmedian`` per date, boolean masks over the whole block)."""

from __future__ import annotations

import numpy as np

from riskmodel.kernels.panel_checks import cap_jump_kernel, cap_return_kernel, robust_spread_kernel, row_extremes_kernel
from tests.kernels.twins import KernelTwin

LIMIT = 100.0
JUMP = float(np.log(10.0))


def robust_spread_twin(values, limit):
    """``1.4826 x`` MAD of each row's finite values within ``limit`` (two ``np.nanmedian``)."""
    v = np.where(np.abs(values) <= limit, values, np.nan)
    count = np.isfinite(v).sum(axis=1)
    spread = np.full(len(v), np.nan)
    for t in np.flatnonzero(count):
        centre = np.nanmedian(v[t])
        spread[t] = 1.4826 * np.nanmedian(np.abs(v[t] - centre))
    return dict(spread=spread, count=count.astype(np.int64))


def cap_return_twin(caps, returns, limit):
    """The used stock-days by boolean mask: counts, sign agreements and the packed |y|, |r|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(caps[1:] / caps[:-1])
    r = returns
    ok = np.isfinite(y) & np.isfinite(r) & (y != 0) & (r != 0) & (np.abs(r) <= limit)
    count = ok.sum(axis=1)
    packed_y, packed_r = np.zeros(r.shape), np.zeros(r.shape)
    for t in range(len(r)):
        packed_y[t, : count[t]] = np.abs(y[t, ok[t]])
        packed_r[t, : count[t]] = np.abs(r[t, ok[t]])
    agree = (ok & (np.sign(y) == np.sign(r))).sum(axis=1)
    return dict(count=count.astype(np.int64), agree=agree.astype(np.int64), abs_dcap=packed_y, abs_ret=packed_r)


def cap_jump_twin(caps, returns, limit):
    with np.errstate(invalid="ignore", divide="ignore"):
        moved = np.log1p(np.where(np.isfinite(returns) & (returns > -1), returns, 0.0))
        jump = np.abs(np.log(caps[1:] / caps[:-1]) - moved) > limit
    jump &= (caps[1:] > 0) & (caps[:-1] > 0)
    first = np.where(jump.any(axis=1), jump.argmax(axis=1), -1)
    return dict(count=jump.sum(axis=1).astype(np.int64), first=first.astype(np.int64))


def row_extremes_twin(values):
    finite = np.isfinite(values)
    return dict(high=np.where(finite, values, -np.inf).max(axis=1), low=np.where(finite, values, np.inf).min(axis=1))


def _inputs(rng, T, N):
    """Returns with holes, an inf, an absurd return, a row with few values and an empty row;
    caps that follow the returns with a few jumps, zeros and holes."""
    r = 0.02 * rng.standard_t(4, size=(T, N))
    r[rng.random((T, N)) < 0.05] = np.nan
    r[1, 3] = np.inf
    r[1, 4] = 500.0
    r[2, 2:] = np.nan  # two values only
    r[3] = np.nan  # none
    r[4, :5] = 0.0
    steps = np.where(np.isfinite(r) & (r < 10), r, 0.0)
    caps = np.exp(rng.normal(8.0, 1.0, N)) * np.vstack([np.ones(N), np.cumprod(1.0 + steps, axis=0)])
    caps[rng.random((T + 1, N)) < 0.02] = np.nan
    caps[5, 7] *= 50.0  # a jump beyond the return
    caps[6, 1] = 0.0
    caps[7, 9] *= 0.01
    # the spread drops an inf (|v| > limit); the cap checks run after validate_panel refused any
    return dict(values=r, caps=caps, returns=np.where(np.isinf(r), np.nan, r))


def _spread_run(inp):
    T = len(inp["values"])
    out = dict(spread=np.empty(T), count=np.empty(T, np.int64))
    robust_spread_kernel(inp["values"], LIMIT, *out.values())
    return out


def _cap_return_run(inp):
    r = inp["returns"]
    out = dict(abs_dcap=np.zeros(r.shape), abs_ret=np.zeros(r.shape), count=np.empty(len(r), np.int64),
               agree=np.empty(len(r), np.int64))
    cap_return_kernel(inp["caps"], r, LIMIT, *out.values())
    return out


def _cap_jump_run(inp):
    T = len(inp["returns"])
    out = dict(count=np.empty(T, np.int64), first=np.empty(T, np.int64))
    cap_jump_kernel(inp["caps"], inp["returns"], JUMP, *out.values())
    return out


def _extremes_run(inp):
    T = len(inp["values"])
    out = dict(high=np.empty(T), low=np.empty(T))
    row_extremes_kernel(inp["values"], *out.values())
    return out


_SIZES = {"test": dict(T=12, N=150), "quick": dict(T=252, N=1000), "full": dict(T=512, N=5000)}
ENTRIES = [
    KernelTwin("panel_checks.robust_spread_kernel", robust_spread_kernel, _spread_run,
               lambda inp: robust_spread_twin(inp["values"], LIMIT), _inputs, sizes=_SIZES, rtol=0.0, atol=0.0),
    # numba's log (libm) and numpy's vectorised one may differ in the last bit
    KernelTwin("panel_checks.cap_return_kernel", cap_return_kernel, _cap_return_run,
               lambda inp: cap_return_twin(inp["caps"], inp["returns"], LIMIT), _inputs, sizes=_SIZES,
               rtol=1e-15, atol=0.0),
    KernelTwin("panel_checks.cap_jump_kernel", cap_jump_kernel, _cap_jump_run,
               lambda inp: cap_jump_twin(inp["caps"], inp["returns"], JUMP), _inputs, sizes=_SIZES),
    KernelTwin("panel_checks.row_extremes_kernel", row_extremes_kernel, _extremes_run,
               lambda inp: row_extremes_twin(inp["values"]), _inputs, sizes=_SIZES, rtol=0.0, atol=0.0),
]
