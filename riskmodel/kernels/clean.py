"""Numba kernels of the exposure cleaning (METHODS section 1).

Two kernels, both parallel over dates, each date handled in one pass over its row
(every intermediate lives in per-date scratch of length N, so no full-size temporary is
ever formed):

* :func:`clean_kernel` -- USE4 standardisation with tiered winsorising of one
  characteristic (``riskmodel.exposures.clean``).
* :func:`exposures_kernel` -- the style block of ``riskmodel.exposures.build_exposures``:
  every style cleaned with cap weights and, optionally, its missing cells imputed by the
  per-date weighted regression on industry dummies + size (Frisch-Waugh-Lovell: weighted
  within-industry demeaning and one slope), written straight into the ``(T, N, K)`` block.

Both share :func:`_clean_row`, so ``build_exposures`` and ``clean`` agree bit for bit.
Sums run in stock order (the order of ``np.bincount``). The plain numpy twins live in
``tests/kernels/test_clean.py``. Callers validate and lay arrays out C-contiguously;
kernels do no checking.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.typed import List as _TypedList

from riskmodel.kernels._chunks import parallel_chunks

__all__ = ["clean_kernel", "clip_row", "exposures_kernel", "styles_argument", "typed_float_arrays", "ZERO_SPREAD_RTOL",
           "STACK_BYTES"]

#: let LLVM reorder the row sums (vectorised reductions); NaN and inf semantics are kept
_REASSOC = {"reassoc"}

#: a cross-section whose spread is below this fraction of its magnitude has no spread
ZERO_SPREAD_RTOL = 1e-14


#: a row whose spread exceeds this fraction of its magnitude bound is surely not flat, so
#: its extremes are not needed (far above ``ZERO_SPREAD_RTOL`` and the rounding of a mean)
_SURELY_SPREAD_RTOL = 1e-9


@numba.njit(cache=True, fastmath=_REASSOC, error_model="numpy")
def _standardise_row(y, h, setter, present, z, bound_err, bound_clip):  # pragma: no cover - compiled
    """``z = (y - mean_h) / std_eq`` over the setters, with one refinement pass.

    Writes ``z`` (NaN where not present or without setter; 0 on a row without spread) and
    returns ``(ok, flat, n_err, n_clip)``: at least one setter, no spread, and the counts
    of ``|z| > bound_err`` and ``|z| > bound_clip`` (taken while the last pass writes ``z``).
    Loops use selects rather than branches so that they vectorise; the refinement's sums
    are taken while ``z`` is written (``z`` is O(1) there, so the one-pass variance loses
    nothing).

    The extremes of the setters (for the no-spread test ``hi == lo or sd <= rtol max|y|``)
    are taken only when the spread is below ``_SURELY_SPREAD_RTOL (|mean| + sqrt(ss))``, a
    bound of ``max|y|``: above it neither condition can hold, and the min/max reductions
    (which do not vectorise) are skipped.
    """
    N = y.shape[0]
    n = 0
    ys = 0.0
    hsum = 0.0
    for i in range(N):
        s = setter[i]
        n += 1 if s else 0
        ys += y[i] if s else 0.0
        hsum += h[i] if s else 0.0
    if n == 0:
        for i in range(N):
            z[i] = np.nan
        return False, False, 0, 0
    mu_eq = ys / n
    ss = 0.0
    hd = 0.0
    for i in range(N):
        s = setter[i]
        d = (y[i] - mu_eq) if s else 0.0
        ss += d * d
        hd += (h[i] if s else 0.0) * d
    sd = math.sqrt(ss / n)
    surely = max(_SURELY_SPREAD_RTOL, 4.0 * n * 2.220446049250313e-16)
    if not sd > surely * (abs(mu_eq) + math.sqrt(ss)):
        hi, lo = _setter_extremes(y, setter)
        scale = max(abs(hi), abs(lo))
        if hi == lo or sd <= ZERO_SPREAD_RTOL * scale:
            for i in range(N):
                z[i] = 0.0 if present[i] else np.nan
            return True, True, 0, 0
    # cap-weighted mean as a shift from the equal mean (one rounding less)
    mu = mu_eq + hd / hsum
    inv = 1.0 / sd
    s_h = 0.0
    s_1 = 0.0
    s_2 = 0.0
    for i in range(N):
        zi = (y[i] - mu) * inv
        z[i] = zi if present[i] else np.nan
        s = setter[i]
        zs = zi if s else 0.0
        s_h += (h[i] if s else 0.0) * zs
        s_1 += zs
        s_2 += zs * zs
    # refinement: z <- (z - mu2) / sd2 removes the rounding left by the first pass
    mu2 = s_h / hsum
    m1 = s_1 / n
    var2 = s_2 / n - m1 * m1
    sd2 = math.sqrt(var2) if var2 > 0.0 else 1.0
    inv2 = 1.0 / sd2
    n_err = 0
    n_clip = 0
    for i in range(N):
        zi = (z[i] - mu2) * inv2
        z[i] = zi
        a = abs(zi)
        n_err += 1 if a > bound_err else 0  # False for NaN
        n_clip += 1 if a > bound_clip else 0
    return True, False, n_err, n_clip


@numba.njit(cache=True, error_model="numpy")
def _setter_extremes(y, setter):  # pragma: no cover - compiled
    """``(max, min)`` of ``y`` over the setters (``(-inf, inf)`` without one)."""
    hi = -np.inf
    lo = np.inf
    for i in range(y.shape[0]):
        if setter[i]:
            hi = max(hi, y[i])
            lo = min(lo, y[i])
    return hi, lo


@numba.njit(cache=True, error_model="numpy")
def _clean_row(x, h, estu, has_estu, winsor, data_error, max_passes,
               y, setter, present, z, err):  # pragma: no cover - compiled
    """Clean one date's row ``x`` into ``z`` (before the final clip).

    ``h`` are the weights of the mean (caps, or ones for equal weights): a setter is
    present, has a finite positive ``h`` and is in ``estu`` (when ``has_estu``).

    ``err`` (bool, N) is written: the data errors removed. Returns ``(n_err, first_err,
    no_setter, unconverged)``: the count and first stock of data errors (-1 if none), a
    row with values but no setter, and a row still clipping after ``max_passes``.
    ``y``, ``setter``, ``present`` are scratch of length N.
    """
    N = x.shape[0]
    for i in range(N):
        y[i] = x[i]
        err[i] = False
        hh = h[i]
        hv = hh > 0.0 and math.isfinite(hh)
        ev = estu[i] if has_estu else True
        present[i] = math.isfinite(x[i])
        setter[i] = present[i] and hv and ev
    n_err = 0
    first_err = -1
    ok = False
    # tier 1: data errors, removed until none is left (<= max_passes rounds)
    n_clip = 0
    for rnd in range(max_passes + 1):
        ok, flat, n_hit, n_clip = _standardise_row(y, h, setter, present, z, data_error, winsor)
        if rnd == max_passes or flat or not ok or n_hit == 0:
            break
        for i in range(N):
            if present[i] and abs(z[i]) > data_error:
                y[i] = np.nan
                present[i] = False
                setter[i] = False
                err[i] = True
                n_err += 1
                if first_err < 0 or i < first_err:
                    first_err = i
    any_present = False
    for i in range(N):
        if present[i]:
            any_present = True
            break
    no_setter = any_present and not ok
    # tier 2: clip at +-winsor and re-standardise while the row clips (n_clip: |z| > winsor
    # in the last standardisation, which wrote z)
    for _ in range(max_passes - 1):
        if n_clip == 0:
            break
        for i in range(N):
            v = z[i]
            y[i] = winsor if v > winsor else (-winsor if v < -winsor else v)
        _, _, _, n_clip = _standardise_row(y, h, setter, present, z, data_error, winsor)
    unconverged = n_clip > 0
    return n_err, first_err, no_setter, unconverged


def clean_kernel(x, h, has_h, estu, has_estu, winsor, data_error, max_passes, final_clip,
                 out_z, out_err, out_nerr, out_first, out_no_setter, out_unconverged
                 ) -> None:
    """Clean every date of one characteristic (``riskmodel.exposures.clean``).

    Parameters
    ----------
    x : ndarray (T, N) float64
        Raw characteristic, NaN = missing.
    h : ndarray (T, N) float64
        Caps (weights of the mean); a setter needs a finite positive cap. Ignored (equal
        weights) when ``has_h`` is False (pass any (1, 1) array).
    has_h : bool
    estu : ndarray (T, N) bool
        Estimation universe; ignored when ``has_estu`` is False.
    has_estu : bool
    winsor, data_error : float
        Clip bound (tier 2) and data-error bound (tier 1), in standard deviations.
    max_passes : int
        Maximum standardisations (and data-error rounds).
    final_clip : bool
        Clip the output at ``+-winsor`` (False: the last standardisation, before the clip).
    out_z : ndarray (T, N) float64
        Written: cleaned values (NaN where ``x`` is NaN, a data error, or no setter).
    out_err : ndarray (T, N) bool
        Written: data errors set to NaN.
    out_nerr, out_first : ndarray (T,) int64
        Written: data errors per date and the first stock with one (-1 if none).
    out_no_setter, out_unconverged : ndarray (T,) bool
        Written: dates with values but no setter; dates still clipping after the passes.
    """
    parallel_chunks(_clean_kernel_chunk, x.shape[0], x, h, has_h, estu, has_estu, winsor, data_error,
                    max_passes, final_clip, out_z, out_err, out_nerr, out_first, out_no_setter,
                    out_unconverged)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _clean_kernel_chunk(lo, hi, x, h, has_h, estu, has_estu, winsor, data_error, max_passes, final_clip,
                        out_z, out_err, out_nerr, out_first, out_no_setter, out_unconverged):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`clean_kernel`."""
    T, N = x.shape
    for t in range(lo, hi):
        y = np.empty(N)
        setter = np.empty(N, np.bool_)
        present = np.empty(N, np.bool_)
        hrow = h[t] if has_h else np.ones(N)
        erow = estu[t] if has_estu else estu[0]
        z = out_z[t]
        ne, fe, ns, uc = _clean_row(x[t], hrow, erow, has_estu, winsor, data_error,
                                    max_passes, y, setter, present, z, out_err[t])
        out_nerr[t] = ne
        out_first[t] = fe
        out_no_setter[t] = ns
        out_unconverged[t] = uc
        if final_clip:
            clip_row(z, winsor)


@numba.njit(cache=True, inline="always", error_model="numpy")
def clip_row(z, bound):  # pragma: no cover - compiled
    """``z`` clipped at ``+-bound`` in place (NaN kept; selects, so the loop vectorises)."""
    for i in range(z.shape[0]):
        v = z[i]
        z[i] = bound if v > bound else (-bound if v < -bound else v)


@numba.njit(cache=True, error_model="numpy")
def _impute_row(z, size, codes, has_codes, n_codes, w, has_w, targets, sw, sz, ss, pred
                ):  # pragma: no cover - compiled
    """Fill ``pred`` at ``targets``: weighted regression of ``z`` on industry + size (FWL).

    Donors: finite ``z`` and ``size``, finite positive weight, an industry. ``pred`` is
    ``z̄_p + b (size - s̄_p)`` (NaN where the industry has no donor or size is missing).
    """
    N = z.shape[0]
    for p in range(n_codes):
        sw[p] = 0.0
        sz[p] = 0.0
        ss[p] = 0.0
    for i in range(N):
        c = codes[i] if has_codes else 0
        wi = w[i] if has_w else 1.0
        if math.isfinite(z[i]) and math.isfinite(size[i]) and wi > 0.0 and math.isfinite(wi) and c >= 0:
            sw[c] += wi
            sz[c] += wi * z[i]
            ss[c] += wi * size[i]
    for p in range(n_codes):
        sz[p] = sz[p] / sw[p] if sw[p] != 0.0 else np.nan
        ss[p] = ss[p] / sw[p] if sw[p] != 0.0 else np.nan
    sxy = 0.0
    sxx = 0.0
    for i in range(N):
        c = codes[i] if has_codes else 0
        wi = w[i] if has_w else 1.0
        if math.isfinite(z[i]) and math.isfinite(size[i]) and wi > 0.0 and math.isfinite(wi) and c >= 0:
            zt = z[i] - sz[c]
            st = size[i] - ss[c]
            sxy += wi * st * zt
            sxx += wi * st * st
    b = sxy / sxx if sxx > 0.0 else 0.0
    for i in range(N):
        c = codes[i] if has_codes else 0
        if targets[i] and c >= 0:
            pred[i] = sz[c] + b * (size[i] - ss[c])
        else:
            pred[i] = np.nan


def exposures_kernel(xs, cap, has_cap, codes, has_codes, n_codes, present, impute, winsor,
                     data_error, max_passes, out_styles, out_imputed, out_nerr, out_first,
                     out_no_setter, out_n_imputed, out_n_left) -> None:
    """Clean and impute the K styles of ``build_exposures`` into the (T, N, K) block.

    Parameters
    ----------
    xs : sequence of K ndarrays (T, N) float64
        Raw styles: a list or tuple (stacked into one ``(K, T, N)`` array, or made a numba
        typed List when large: :func:`styles_argument`; callers need not import numba) or a
        numba typed List (used as it is).
    cap : ndarray (T, N) float64
        Market caps: cap-weighted centring, √cap imputation weights and the size regressor
        (the cleaned log cap). Ignored when ``has_cap`` is False (equal weights, no size).
    has_cap : bool
    codes : ndarray (T, N) int32
        Industry codes (-1 missing); ignored (one group) when ``has_codes`` is False.
    has_codes : bool
    n_codes : int
        Number of industry codes (1 without industries).
    present : ndarray (T, N) bool
        Stocks present on the date (imputation targets when their style is missing).
    impute : bool
    winsor, data_error, max_passes :
        As in :func:`clean_kernel`.
    out_styles : ndarray (T, N, K) float64
        Written: cleaned (and imputed) styles.
    out_imputed : ndarray (T, N, K) bool
        Written: cells imputed.
    out_nerr, out_first : ndarray (T, K + 1) int64
        Written: data errors per date and first stock with one, column 0 for the log cap
        (size regressor, only when imputing with caps), then one per style.
    out_no_setter : ndarray (T, K + 1) bool
        Written: dates with values but no setter (same columns).
    out_n_imputed, out_n_left : ndarray (T, K) int64
        Written: targets imputed and targets left NaN per date and style.
    """
    if not isinstance(xs, _TypedList):
        xs = styles_argument(xs, present.shape)
    parallel_chunks(_exposures_kernel_chunk, present.shape[0], xs, cap, has_cap, codes, has_codes, n_codes,
                    present, impute, winsor, data_error, max_passes, out_styles, out_imputed, out_nerr,
                    out_first, out_no_setter, out_n_imputed, out_n_left)


#: Raw styles of at most this many bytes go to :func:`exposures_kernel` stacked in one
#: ``(K, T, N)`` array (one small copy); larger ones as a numba typed List of the arrays (no
#: copy). Building the first typed List of a process costs about a second (numba compiles
#: its methods, which it does not cache), which a daily update's one date should not pay.
STACK_BYTES = 1 << 26


def styles_argument(arrays, shape: tuple[int, int]):
    """The ``xs`` argument of :func:`exposures_kernel` for a sequence of ``(T, N)`` arrays
    (``shape``): a ``(K, T, N)`` float64 array when it holds at most :data:`STACK_BYTES`,
    else :func:`typed_float_arrays`. The kernel indexes both alike (``xs[k][t]``)."""
    arrays = list(arrays)
    if 8 * len(arrays) * shape[0] * shape[1] <= STACK_BYTES:
        stacked = np.empty((len(arrays), *shape))
        for k, x in enumerate(arrays):
            stacked[k] = x
        return stacked
    return typed_float_arrays(arrays)


def typed_float_arrays(arrays) -> _TypedList:
    """A numba typed List of ``arrays`` as C-contiguous float64 ndarrays (the ``xs`` of
    :func:`exposures_kernel`)."""
    out = _TypedList()
    for x in arrays:
        out.append(np.ascontiguousarray(x, dtype=np.float64))
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _exposures_kernel_chunk(lo, hi, xs, cap, has_cap, codes, has_codes, n_codes, present, impute, winsor,
                            data_error, max_passes, out_styles, out_imputed, out_nerr, out_first,
                            out_no_setter, out_n_imputed, out_n_left):  # pragma: no cover - compiled
    """Items ``lo .. hi - 1`` of :func:`exposures_kernel`."""
    T, N = present.shape
    K = len(xs)
    with_size = impute and has_cap
    for t in range(lo, hi):
        y = np.empty(N)
        setter = np.empty(N, np.bool_)
        pres = np.empty(N, np.bool_)
        err = np.empty(N, np.bool_)
        z = np.empty(N)
        size = np.zeros(N)
        pred = np.empty(N)
        targets = np.empty(N, np.bool_)
        w = np.empty(N)
        sw = np.empty(n_codes)
        sz = np.empty(n_codes)
        ss = np.empty(n_codes)
        hrow = cap[t] if has_cap else np.ones(N)
        crow = codes[t] if has_codes else codes[0]
        if has_cap:
            for i in range(N):
                c = hrow[i]
                w[i] = math.sqrt(c) if c > 0.0 else np.nan
        if with_size:
            logcap = np.empty(N)
            for i in range(N):
                c = hrow[i]
                logcap[i] = math.log(c) if c > 0.0 else np.nan
            ne, fe, ns, _ = _clean_row(logcap, hrow, present[t], False, winsor,
                                       data_error, max_passes, y, setter, pres, size, err)
            clip_row(size, winsor)
            out_nerr[t, 0] = ne
            out_first[t, 0] = fe
            out_no_setter[t, 0] = ns
        else:
            out_nerr[t, 0] = 0
            out_first[t, 0] = -1
            out_no_setter[t, 0] = False
        for k in range(K):
            x = xs[k][t]
            ne, fe, ns, _ = _clean_row(x, hrow, present[t], False, winsor,
                                       data_error, max_passes, y, setter, pres, z, err)
            out_nerr[t, k + 1] = ne
            out_first[t, k + 1] = fe
            out_no_setter[t, k + 1] = ns
            clip_row(z, winsor)
            n_target = 0
            if impute:
                prow = present[t]
                for i in range(N):
                    tg = prow[i] and not math.isfinite(z[i])
                    targets[i] = tg
                    if tg:
                        n_target += 1
            n_done = 0
            if n_target > 0:
                _impute_row(z, size, crow, has_codes, n_codes, w, has_cap, targets, sw, sz, ss, pred)
                for i in range(N):
                    if targets[i] and math.isfinite(pred[i]):
                        out_styles[t, i, k] = pred[i]
                        out_imputed[t, i, k] = True
                        n_done += 1
                    else:
                        out_styles[t, i, k] = z[i]
                        out_imputed[t, i, k] = False
            else:
                for i in range(N):
                    out_styles[t, i, k] = z[i]
                    out_imputed[t, i, k] = False
            out_n_imputed[t, k] = n_done
            out_n_left[t, k] = n_target - n_done
