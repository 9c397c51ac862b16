"""The factor EWMA + Newey–West sums carried from date to date (the daily update's fast path).

:func:`riskmodel.kernels.ewma.ewma_newey_west` carries, for every pair of factors and every
lagged term, the windowed sums ``S_t = δ S_{t−1} + x_t − δ^W x_{t−W}`` (and their weights
and counts) through the whole series. :class:`EwmaSums` holds those sums after the last
date and advances them by one date with the kernel's arithmetic, operation for operation,
vectorised over pairs and terms (O(pairs × terms) a date instead of O(dates × pairs ×
terms)). :func:`carried_sums` runs them over the stored history once and keeps them only if
the moments they give on the last dates are bit-identical to the kernel's; otherwise the
update reruns the kernel over the stored history (same result, slower).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["EwmaSums", "carried_sums", "SPECS"]

#: The four moment series of the factor covariance's first stage:
#: name -> (pairs: "diag" or "upper", half-life key, lags key (None: lag 0), window key).
SPECS: dict[str, tuple[str, str, str | None, str]] = {
    "var_nw": ("diag", "vol_half_life", "vol_lags", "vol_window"),
    "var_c0": ("diag", "vol_half_life", None, "vol_window"),
    "cov_c": ("upper", "corr_half_life", "corr_lags", "corr_window"),
    "corr_c0": ("diag", "corr_half_life", None, "corr_window"),
}
_CHECKED_DATES = 40


def _int_power(base: float, exponent: int) -> float:
    """``base ** exponent`` by repeated squaring, as numba evaluates a float to an integer
    power inside the kernel (C ``pow`` can differ in the last bit)."""
    result = 1.0
    while True:
        if exponent & 1:
            result *= base
        exponent >>= 1
        if not exponent:
            return result
        base *= base


def _pairs(kind: str, m: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "diag":
        return np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64)
    i, j = np.triu_indices(m)
    return i.astype(np.int64), j.astype(np.int64)


@dataclass
class EwmaSums:
    """Windowed sums of every (pair, term) of one moment series after its last date.

    Terms: lag 0, then for each lag ``l`` the products ``x_i,t x_j,t−l`` and ``x_j,t x_i,t−l``.
    """

    first: np.ndarray  # (P, terms) series index of the leading factor of each term
    second: np.ndarray  # (P, terms) series index of the lagged factor
    lag: np.ndarray  # (terms,)
    scale: np.ndarray  # (terms,) Bartlett weights (1.0 for lag 0)
    decay: float
    window: int
    s_xy: np.ndarray
    s_w: np.ndarray
    n_w: np.ndarray

    @classmethod
    def empty(cls, kind: str, m: int, lags: int, half_life: float, window: int) -> "EwmaSums":
        i, j = _pairs(kind, m)
        first, second, lag, scale = [i], [j], [0], [1.0]
        for ell in range(1, lags + 1):
            k = 1.0 - ell / (lags + 1.0)
            first += [i, j]
            second += [j, i]
            lag += [ell, ell]
            scale += [k, k]
        n_terms = len(lag)
        zeros = np.zeros((i.size, n_terms))
        decay = 1.0 if math.isinf(half_life) else 0.5 ** (1.0 / half_life)
        return cls(np.stack(first, axis=1), np.stack(second, axis=1), np.asarray(lag, dtype=np.int64),
                   np.asarray(scale), decay, int(window), zeros, zeros.copy(), np.zeros((i.size, n_terms), np.int64))

    def step(self, f_t: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Advance to date ``t`` of the series ``f_t (m, ≥ t + 1)``; the moment and the lag-0 count."""
        self.s_xy *= self.decay
        self.s_w *= self.decay
        back = t - self.lag
        xu = f_t[self.first, t]
        xv = f_t[self.second, np.maximum(back, 0)[None, :]]
        add = (back >= 0)[None, :] & ~np.isnan(xu) & ~np.isnan(xv)
        self.s_xy = np.where(add, self.s_xy + xu * xv, self.s_xy)
        self.s_w = np.where(add, self.s_w + 1.0, self.s_w)
        self.n_w += add
        old = t - self.window
        if old - self.lag.min() >= 0:
            tail = _int_power(self.decay, self.window)
            old_back = old - self.lag
            yu = f_t[self.first, max(old, 0)]
            yv = f_t[self.second, np.maximum(old_back, 0)[None, :]]
            drop = (old_back >= 0)[None, :] & ~np.isnan(yu) & ~np.isnan(yv)
            self.s_xy = np.where(drop, self.s_xy - tail * yu * yv, self.s_xy)
            self.s_w = np.where(drop, self.s_w - tail, self.s_w)
            self.n_w -= drop
        acc = np.zeros(self.s_xy.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            c = self.s_xy / self.s_w
        for k in range(self.lag.size):
            acc = np.where(self.n_w[:, k] > 0, acc + self.scale[k] * c[:, k], acc)
        count = self.n_w[:, 0].copy()
        return np.where(count == 0, np.nan, acc), count


def _kernel_moments(f_t: np.ndarray, kind: str, s: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    from riskmodel.covariance.factor import _nw_series

    _, hl, lags, win = SPECS[name]
    return _nw_series(f_t, _pairs(kind, f_t.shape[0]), s[hl], s[lags] if lags else 0, s[win], s["demean"])


def carried_sums(f: np.ndarray, s: Mapping[str, Any]) -> dict[str, EwmaSums] | None:
    """The four series' sums after the last date of ``f (date, factor)``, or None when the
    carried arithmetic does not reproduce the kernel's moments bit for bit on the last dates
    (or the settings demean, which the carried sums do not)."""
    if s["demean"]:
        return None
    n_dates, m = f.shape
    f_t = np.ascontiguousarray(f.T)
    out = {}
    for name, (kind, hl, lags, win) in SPECS.items():
        sums = EwmaSums.empty(kind, m, s[lags] if lags else 0, s[hl], s[win])
        want, want_count = _kernel_moments(f_t, kind, s, name)
        for t in range(n_dates):
            got, count = sums.step(f_t, t)
            if t >= n_dates - _CHECKED_DATES and not (
                    np.array_equal(got, want[:, t], equal_nan=True) and np.array_equal(count, want_count[:, t])):
                return None
        out[name] = sums
    return out
