"""The robust blending statistic of the specific-risk time series, for the update's new dates only.

:func:`riskmodel.kernels.specific_ts.specific_ts_kernel` computes, per stock and date, the
count ``h`` of returns in the window, the window's quartiles and the standard deviation of
the window clipped at ``±10 σ̃`` (from running sums about a shift, recomputed exactly every
32 dates), then ``γ``. Rerunning the kernel over a whole window for one new date costs a
tenth of a second at 5,000 stocks; here the same arithmetic runs in numpy across stocks,
for the new dates only: the running sums are rebuilt at the latest 32-date refresh at or
before the first new date (where the kernel resets them exactly) and carried over the few
dates after it, and the quartiles and clipped values come from the sorted window. Every
operation is the kernel's, in its order, so ``γ`` is the same bit for bit. A stock whose
window was empty at that refresh but not before carries the kernel's residue of earlier
dates: those few columns are handed back for the kernel.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

__all__ = ["REFRESH", "robust_rows", "carried_sums", "remember_sums"]

#: The kernel's refresh period of the running sums (``specific_ts._REFRESH``).
REFRESH = 32


def _window(u: np.ndarray, s0: int, t: int, window: int) -> np.ndarray:
    """Rows of the window ending at global date ``t``, from ``u`` whose row 0 is date ``s0``."""
    return u[max(0, t - window + 1) - s0: t - s0 + 1]


def _sorted(win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each stock's window values ascending (NaN last), ``(N, W)``, and the count ``nb``."""
    return np.sort(win.T, axis=1), np.isfinite(win).sum(axis=0)


def _at(sorted_vals: np.ndarray, index: np.ndarray) -> np.ndarray:
    rows = np.arange(sorted_vals.shape[0])
    return sorted_vals[rows, np.clip(index, 0, sorted_vals.shape[1] - 1)]


def _quantile(sorted_vals: np.ndarray, nb: np.ndarray, p: float) -> np.ndarray:
    """The kernel's ``_cursor_quantile``: linear interpolation between ranks ``floor(p (nb-1))``
    and the next."""
    pos = p * (nb - 1)
    lo = np.floor(pos).astype(np.int64)
    lo_val = _at(sorted_vals, lo)
    hi_val = _at(sorted_vals, lo + 1)
    frac = pos - lo
    return np.where(lo >= nb - 1, lo_val, lo_val + frac * (hi_val - lo_val))


def _gamma(sorted_vals, nb, shift, s1, s2, min_obs, full_obs) -> np.ndarray:
    """``γ`` of one date from the sorted window and the running sums (the kernel's tail)."""
    ramp = (nb - min_obs) / (full_obs - min_obs)
    ramp = np.where(ramp < 0.0, 0.0, np.where(ramp > 1.0, 1.0, ramp))
    with np.errstate(invalid="ignore", divide="ignore"):
        sig_tilde = (_quantile(sorted_vals, nb, 0.75) - _quantile(sorted_vals, nb, 0.25)) / 1.35
        ok = (nb >= 2) & (sig_tilde > 0.0)
        c = 10.0 * sig_tilde
        c1, c2 = s1.copy(), s2.copy()
        for top in (True, False):
            active = ok.copy()
            for j in range(int(nb.max(initial=0))):
                idx = nb - 1 - j if top else np.full(nb.shape, j)
                val = _at(sorted_vals, idx)
                active &= (j < nb) & ((val > c) if top else (val < -c))
                if not active.any():
                    break
                dx = val - shift
                dc = (c if top else -c) - shift
                c1 = np.where(active, c1 + (dc - dx), c1)
                c2 = np.where(active, c2 + (dc * dc - dx * dx), c2)
        var_eq = (c2 - c1 * c1 / nb) / (nb - 1)
        var_eq = np.where(var_eq < 0.0, 0.0, var_eq)
        zt = np.abs(np.sqrt(var_eq) / sig_tilde - 1.0)
    robust = np.ones(nb.shape)
    for n in np.flatnonzero(ok & (zt > 1.0) & (ramp > 0.0)):  # the kernel's libm exp
        robust[n] = math.exp(1.0 - zt[n])
    return np.where(ok, ramp * np.where(robust < 1.0, robust, 1.0), 0.0)


def _refresh(u, s0, t, window, shift, s1, s2) -> None:
    """The kernel's exact recomputation at ``t`` (stocks with a non-empty window), in place."""
    win = _window(u, s0, t, window)
    sorted_vals, nb = _sorted(win)
    has = nb > 0
    mid = 0.5 * (_at(sorted_vals, np.floor(0.25 * (nb - 1)).astype(np.int64))
                 + _at(sorted_vals, np.floor(0.75 * (nb - 1)).astype(np.int64)))
    shift[has] = mid[has]
    a1, a2 = np.zeros(nb.shape), np.zeros(nb.shape)
    for row in win:
        d = row - shift
        fin = np.isfinite(row)
        a1 = np.where(fin, a1 + d, a1)
        a2 = np.where(fin, a2 + d * d, a2)
    s1[has], s2[has] = a1[has], a2[has]


#: id(a state's residual window) -> (weak reference to it, (refresh date, dates), (shift, s1, s2)):
#: the running sums after a model's last date, kept in memory for its next update.
_CARRIED: dict[int, tuple] = {}


def carried_sums(window: np.ndarray, n_old: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The running sums :func:`robust_rows` left after date ``n_old - 1`` for the state whose
    residual window is ``window`` (this very array), when they are those it would rebuild
    now: started at the same refresh date, with no refresh since (else None)."""
    entry = _CARRIED.get(id(window))
    if entry is None or entry[0]() is not window or entry[1] != (_refresh_date(n_old), n_old):
        return None
    return entry[2]


def remember_sums(window: np.ndarray, key: tuple[int, int] | None, sums: tuple | None) -> None:
    """Keep ``sums`` (``robust_rows``' ``out``) for the next update of the state whose residual
    window is ``window``."""
    if key is None or sums is None:
        return
    _CARRIED[id(window)] = (weakref.ref(window), key, sums)
    weakref.finalize(window, _CARRIED.pop, id(window), None)


def _refresh_date(n_old: int) -> int:
    """The kernel's latest exact recomputation at or before date ``n_old`` (-1: none yet)."""
    return ((n_old + 1) // REFRESH) * REFRESH - 1


def robust_rows(u: np.ndarray, s0: int, n_old: int, window: int, min_obs: int, full_obs: int,
                blend: bool, carried: tuple | None = None,
                out: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``h`` and ``γ`` of the dates ``n_old ..`` as the kernel run on ``u`` computes them.

    Parameters
    ----------
    u : ndarray (L, N)
        Specific returns of the global dates ``s0 .. s0 + L - 1``; ``s0`` a multiple of
        :data:`REFRESH` at least a window before the latest refresh at or before ``n_old``.

    Returns
    -------
    h : ndarray (k, N) int32
    gamma : ndarray (k, N)
    kernel_columns : ndarray of int
        Stocks whose ``γ`` must come from the kernel (an empty window at the refresh after
        returns earlier in ``u``); their ``gamma`` here is not meaningful.

    ``carried`` (:func:`carried_sums`): the running sums after date ``n_old - 1`` of an
    earlier call, used instead of rebuilding them at the latest refresh (the same numbers:
    the same rebuild, then the same steps). ``out``, when given, receives ``key`` and
    ``sums``: the sums after the last date, when the next call may carry them (None when a
    refresh date was passed: those are rebuilt).
    """
    n_rows, n_stocks = u.shape
    n_all = s0 + n_rows
    k = n_all - n_old
    h = np.empty((k, n_stocks), np.int32)
    gamma = np.empty((k, n_stocks))
    r0 = _refresh_date(n_old)
    shift, s1, s2 = np.zeros(n_stocks), np.zeros(n_stocks), np.zeros(n_stocks)
    kernel_columns = np.zeros(0, np.int64)
    first = max(r0, s0)
    if carried is not None:  # the sums after n_old - 1, from the refresh at r0 and the same steps
        shift, s1, s2 = (np.array(a, dtype=np.float64) for a in carried)
        first = n_old
    if r0 >= 0:
        if carried is None:
            _refresh(u, s0, r0, window, shift, s1, s2)
        empty = np.isfinite(_window(u, s0, r0, window)).sum(axis=0) == 0
        kernel_columns = np.flatnonzero(empty & np.isfinite(u[: r0 - s0 + 1]).any(axis=0))
    passed_refresh = False
    for t in range(first, n_all):
        if t > r0:  # (at r0 the sums were just rebuilt)
            x_new = u[t - s0]
            x_old = u[t - window - s0] if t - window >= s0 else np.full(n_stocks, np.nan)
            fn, fo = np.isfinite(x_new), np.isfinite(x_old)
            dn, do = x_new - shift, x_old - shift
            s1 = np.where(fn & fo, s1 + (dn - do), np.where(fo, s1 - do, np.where(fn, s1 + dn, s1)))
            s2 = np.where(fn & fo, s2 + (dn * dn - do * do), np.where(fo, s2 - do * do, np.where(fn, s2 + dn * dn, s2)))
            if t % REFRESH == REFRESH - 1:
                _refresh(u, s0, t, window, shift, s1, s2)
                passed_refresh = True
        if t < n_old:
            continue
        sorted_vals, nb = _sorted(_window(u, s0, t, window))
        h[t - n_old] = nb
        if blend:
            gamma[t - n_old] = _gamma(sorted_vals, nb, shift, s1, s2, min_obs, full_obs)
        else:
            gamma[t - n_old] = np.where(nb >= min_obs, 1.0, 0.0)
    if out is not None:
        out["key"] = None if passed_refresh else (r0, n_all)
        out["sums"] = None if passed_refresh else (shift.copy(), s1.copy(), s2.copy())
    return h, gamma, kernel_columns
