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

__all__ = ["EwmaSums", "carried_sums", "SPECS", "SpecificSums", "carried_specific_sums"]

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


@dataclass
class SpecificSums:
    """The specific time series' windowed sums per stock after the last date
    (:func:`riskmodel.kernels.specific_ts.specific_ts_kernel`'s first pass, carried): for
    each lag ``l`` the sums of ``u_t u_{t−l}`` and of their weights, the number of pairs in
    the window, and the number of returns in the window."""

    num: np.ndarray  # (L + 1, N)
    den: np.ndarray
    npair: np.ndarray  # (L + 1, N) int64
    cnt: np.ndarray  # (N,) int64
    half_life: float
    window: int

    @classmethod
    def empty(cls, n_stocks: int, lags: int, half_life: float, window: int) -> "SpecificSums":
        zeros = np.zeros((lags + 1, n_stocks))
        return cls(zeros, zeros.copy(), np.zeros((lags + 1, n_stocks), np.int64), np.zeros(n_stocks, np.int64),
                   float(half_life), int(window))

    def step(self, u: np.ndarray, t: int) -> np.ndarray:
        """Advance to row ``t`` of ``u (rows, N)`` (rows before 0 are absent); ``σ²_TS`` of that row."""
        lags = self.num.shape[0] - 1
        a = 2.0 ** (-1.0 / self.half_life)
        window = self.window

        def row(i: int) -> np.ndarray:
            return u[i] if i >= 0 else np.full(u.shape[1], np.nan)

        x_new = row(t)
        for ell in range(lags + 1):
            y = row(t - ell)
            ok_in = (x_new == x_new) & (y == y)
            p_in = np.where(ok_in, x_new * y, 0.0)
            y1, y2 = row(t - window + ell), row(t - window)
            ok_out = (y1 == y1) & (y2 == y2)
            p_out = np.where(ok_out, y1 * y2, 0.0)
            self.npair[ell] += ok_in.astype(np.int64) - ok_out.astype(np.int64)
            drop = _int_power(a, window - ell)
            nu = a * self.num[ell] + p_in - drop * p_out
            de = a * self.den[ell] + ok_in.astype(np.float64) - drop * ok_out.astype(np.float64)
            self.num[ell] = np.where(self.npair[ell] != 0, nu, 0.0)
            self.den[ell] = np.where(self.npair[ell] != 0, de, 0.0)
        x_old = row(t - window)
        self.cnt += (x_new == x_new).astype(np.int64) - (x_old == x_old).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            c0 = self.num[0] / self.den[0]
            acc = c0.copy()
            for ell in range(1, lags + 1):
                term = 2.0 * (1.0 - ell / (lags + 1.0)) * self.num[ell] / self.den[ell]
                acc += np.where(self.npair[ell] > 0, term, 0.0)
            floor = c0 / (lags + 1.0)
        v = np.where(acc > floor, acc, floor)
        return np.where(self.cnt > 0, v, np.nan)


def carried_specific_sums(u: np.ndarray, ts_var_last: np.ndarray, lags: int, half_life: float,
                          window: int) -> SpecificSums | None:
    """The specific sums after the last row of ``u (date, stock)``, or None when they do not
    reproduce the kernel's ``σ²_TS`` of the last rows (``ts_var_last``) bit for bit."""
    sums = SpecificSums.empty(u.shape[1], lags, half_life, window)
    n_dates, n_check = u.shape[0], ts_var_last.shape[0]
    for t in range(n_dates):
        var = sums.step(u, t)
        if t >= n_dates - n_check and not np.array_equal(var, ts_var_last[t - n_dates + n_check], equal_nan=True):
            return None
    return sums
