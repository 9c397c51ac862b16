"""Factor covariance forecasts Σ_f: EWMA + Newey–West, eigenfactor adjustment, vol regime adjustment.

The USE4 pipeline (METHODS §3) on ndarrays, for every date at once:

1. **EWMA + Newey–West** (numba kernel :func:`riskmodel.kernels.ewma.ewma_newey_west`):
   variances from ``(H_vol, L_vol)``, correlations from ``(H_corr, L_corr)``,
   ``F⁰ = ρ σσᵀ``; missing factor returns are handled pairwise (weights renormalised over
   the terms present) and ``F⁰`` is repaired to positive definite by an eigenvalue floor.
2. **Eigenfactor risk adjustment** (Menchero, Wang & Orr 2011): Monte-Carlo bias ``v(k)``
   of each eigenfactor, recomputed every ``eigen_every`` dates, ``F_eig = U₀ diag(γ²D₀) U₀ᵀ``.
3. **Volatility regime adjustment**: ``Σ_f = λ_F² F_eig`` with ``λ_F² = EWMA(B_F²)``.

Row ``t`` of every output is made at the close of day ``t`` from ``f[≤ t]`` and is the
forecast for day ``t + 1`` (CONTRIBUTING, timing). Labels are attached by the caller
(:mod:`riskmodel.models`); this module sees ``(date, factor)`` arrays only. The settings'
defaults and checks are declared in :mod:`riskmodel.covariance.settings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskmodel._blas import one_blas_thread
from riskmodel._labels import reject_infinite
from riskmodel._params import check_parameters
from riskmodel._rows import distinct_rows
from riskmodel.covariance.settings import FACTOR_DEFAULTS, FACTOR_PARAMETERS
from riskmodel.errors import DimensionError
from riskmodel.kernels.ewma import (
    assemble_covariance,
    eigen_rebuild_stack,
    eigh_stack,
    ewma_newey_west,
    wishart_eigen_ratios,
)

__all__ = ["factor_covariance", "FactorCovarianceResult", "ewma_weights", "nw_effective_df"]

_EIG_FLOOR = 1e-12  # eigenvalue floor, relative to the trace of F⁰


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class FactorCovarianceResult:
    """Factor covariance forecast series and its diagnostics (arrays; labels added by the caller).

    Attributes
    ----------
    cov : ndarray (date, factor, factor_)
        Row ``t``: forecast of the factor covariance for day ``t + 1`` from ``f[≤ t]``
        (per day, not annualised). Symmetric positive definite on the block of factors
        available at ``t``; NaN rows/columns for unavailable factors and NaN everywhere
        before enough history.
    vra : ndarray (date,)
        Volatility regime multiplier ``λ_F,t`` applied at ``t`` (``cov = λ² F_eig``);
        1.0 while VRA is disabled or has too few observations; NaN where ``cov`` is undefined.
    eigen_bias : ndarray (recompute, eigenfactor)
        Simulated eigenfactor volatility bias ``v(k)`` (after optional parabola smoothing) on
        each recompute date, eigenfactors ordered by **ascending** variance (``k = 0`` is the
        lowest-risk eigenportfolio); NaN-padded when fewer factors are available, NaN on a
        date where the effective sample was too short to simulate (no adjustment then).
    dates_recomputed : ndarray (recompute,) int64
        Row indices ``t`` of the recompute dates of ``eigen_bias``.
    available : ndarray (date, factor) bool
        Factors with enough history at ``t`` (the block on which ``cov[t]`` is defined).
    settings : dict
        All settings, with the derived windows, ``min_periods`` and seeds.
    """

    cov: np.ndarray
    vra: np.ndarray
    eigen_bias: np.ndarray
    dates_recomputed: np.ndarray
    available: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def defined(self) -> np.ndarray:
        """ndarray (date,) bool: dates with a forecast (at least one factor available)."""
        return self.available.any(axis=1)

    def __repr__(self) -> str:
        n_dates, m = self.available.shape
        n_def = int(self.defined.sum())
        first = int(np.argmax(self.defined)) if n_def else None
        return (
            f"FactorCovarianceResult(dates={n_dates}, factors={m}, defined_dates={n_def}, "
            f"first_defined={first}, eigen_recomputes={len(self.dates_recomputed)})"
        )


# --------------------------------------------------------------------------- weights


def _decay(half_life: float) -> float:
    return 1.0 if math.isinf(half_life) else 0.5 ** (1.0 / half_life)


def _window_length(half_life: float, window: int | None, n_dates: int) -> int:
    """Window in dates: ``window`` if given, else ``3·H`` (infinite ``H`` ⇒ all history)."""
    if window is not None:
        return int(window)
    if math.isinf(half_life):
        return max(n_dates, 1)
    return max(int(math.ceil(3.0 * half_life)), 1)


def ewma_weights(half_life: float, window: int) -> np.ndarray:
    """Normalised EWMA weights ``2^(−s/H)``, ``s = 0..window−1`` (``s = 0`` newest).

    Parameters
    ----------
    half_life : float
        ``H`` in dates; ``inf`` gives equal weights.
    window : int
        Number of weights.

    Returns
    -------
    ndarray (window,)
    """
    w = _decay(half_life) ** np.arange(window, dtype=np.float64)
    return w / w.sum()


def nw_effective_df(weights: np.ndarray, lags: int, valid: np.ndarray | None = None) -> float:
    """Effective degrees of freedom of the weighted Newey–West estimator on white noise.

    The estimator is a quadratic form ``Z K Zᵀ`` of the data with ``tr K = 1``; on i.i.d.
    Gaussian data its entries have the variance of a Wishart with
    ``ν = (tr K)² / ‖K‖²_F`` degrees of freedom (``ν = T_eff = (Σw)²/Σw²`` for ``L = 0``).

    Parameters
    ----------
    weights : ndarray (window,)
        Weights of lag ``s`` (``s = 0`` newest); need not be normalised.
    lags : int
        Newey–West lags ``L``.
    valid : ndarray (window + lags,) bool, optional
        Whether the observation ``s`` dates back is present (default: all).

    Returns
    -------
    float
    """
    n_w = weights.shape[0]
    if valid is None:
        valid = np.ones(n_w + lags, dtype=bool)
    present = valid[:n_w]
    s0 = np.sum(weights * present)
    if s0 <= 0:
        return 0.0
    frob = np.sum((weights * present) ** 2) / s0**2
    for lag in range(1, lags + 1):
        both = present & valid[lag : lag + n_w]
        sl = np.sum(weights * both)
        if sl > 0:
            kernel = 1.0 - lag / (lags + 1.0)
            frob += 2.0 * kernel**2 * np.sum((weights * both) ** 2) / sl**2
    return float(1.0 / frob)


# --------------------------------------------------------------------------- stage 1: EWMA + NW


def _nw_series(
    f_t: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], half_life: float, lags: int, window: int, demean: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel call: Newey–West EWMA moments ``(P, T)`` and lag-0 counts ``(P, T)``."""
    pair_i, pair_j = pairs
    n_pairs, n_dates = pair_i.shape[0], f_t.shape[1]
    out = np.empty((n_pairs, n_dates))
    count = np.empty((n_pairs, n_dates), dtype=np.int64)
    ewma_newey_west(f_t, pair_i, pair_j, _decay(half_life), window, lags, demean, out, count)
    return out, count


#: Observations of a factor's volatility before its returns are standardised for the
#: correlations (``corr_standardise``): a quarter, or half the volatility window if that is
#: shorter; earlier returns are left out of the correlations.
STANDARDISE_MIN_DAYS = 63


def _standardised(f_t: np.ndarray, var: np.ndarray, count: np.ndarray, min_count: int) -> np.ndarray:
    """``f_t (factor, date)`` divided by the lag-0 EWMA volatility of the day before (NaN
    until it holds ``min_count`` observations): what ``corr_standardise`` feeds the
    correlation moments. Row ``t`` uses ``f[< t]`` for the scale, so no look-ahead."""
    known = np.where((count >= min_count) & (var > 0), var, np.nan)
    prev = np.full_like(known, np.nan)
    prev[:, 1:] = known[:, :-1]
    return np.ascontiguousarray(f_t / np.sqrt(prev))


def _base_covariance(f: np.ndarray, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``F⁰ = ρ σσᵀ`` for every date (NaN off the available block) and availability ``(T, m)``.

    Moments stay in the kernel's ``(pair, date)`` layout; one kernel writes ``(date, m, m)``.
    """
    n_dates, m = f.shape
    f_t = np.ascontiguousarray(f.T)
    diag = (np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64))
    upper = tuple(a.astype(np.int64) for a in np.triu_indices(m))
    is_diag = upper[0] == upper[1]

    var_nw, n_vol = _nw_series(f_t, diag, s["vol_half_life"], s["vol_lags"], s["vol_window"], s["demean"])
    var_c0, count_c0 = _nw_series(f_t, diag, s["vol_half_life"], 0, s["vol_window"], s["demean"])
    if s.get("corr_standardise"):
        f_corr = _standardised(f_t, var_c0, count_c0, min(STANDARDISE_MIN_DAYS, max(1, s["vol_window"] // 2)))
    else:
        f_corr = f_t
    cov_c, n_corr = _nw_series(f_corr, upper, s["corr_half_life"], s["corr_lags"], s["corr_window"], s["demean"])
    corr_c0, _ = _nw_series(f_corr, diag, s["corr_half_life"], 0, s["corr_window"], s["demean"])

    # a non-positive long-run variance (possible with pairwise EWMA weights) falls back to lag 0
    var = np.where(var_nw > 0, var_nw, var_c0)
    corr_var = np.where(cov_c[is_diag] > 0, cov_c[is_diag], corr_c0)
    vol_min = min(s["min_periods"], max(1, s["vol_window"] // 2))
    with np.errstate(invalid="ignore"):
        available = (n_corr[is_diag] >= s["min_periods"]) & (n_vol >= vol_min) & (var > 0) & (corr_var > 0)

    sd_c = np.sqrt(np.where(corr_var > 0, corr_var, np.nan))
    sd = np.sqrt(np.where(var > 0, var, np.nan))
    available = np.ascontiguousarray(available.T)
    f0 = np.empty((n_dates, m, m))
    assemble_covariance(cov_c, upper[0], upper[1], sd, sd_c, available, f0)
    return f0, available


# --------------------------------------------------------------------------- stage 2: eigen


def _eigh(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``eigh`` (numba, parallel over the stack) with BLAS on one thread
    (multi-threaded OpenBLAS is ~30× slower on stacks of small matrices)."""
    n, m, _ = stack.shape
    values = np.empty((n, m))
    vectors = np.empty((n, m, m))
    if n:
        with one_blas_thread():
            eigh_stack(np.ascontiguousarray(stack), values, vectors)
    return values, vectors


def _segments(available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive defined dates with the same availability: (starts, stops)."""
    defined = available.any(axis=1)
    change = np.ones(available.shape[0], dtype=bool)
    change[1:] = np.any(available[1:] != available[:-1], axis=1) | (defined[1:] != defined[:-1])
    starts = np.flatnonzero(change & defined)
    stops = np.empty_like(starts)
    if starts.size:
        ends = np.flatnonzero(change)
        nxt = np.searchsorted(ends, starts, side="right")
        stops = np.where(nxt < ends.size, ends[np.minimum(nxt, ends.size - 1)], available.shape[0])
    return starts, stops


def _recompute_schedule(available: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Recompute dates (first date of each run, then every ``every`` dates) and, for every
    date, the row of the latest recompute date at or before it (−1 if none).

    The grid depends only on the past, so truncating the data never changes a forecast.
    """
    n_dates = available.shape[0]
    starts, stops = _segments(available)
    rec = np.zeros(n_dates, dtype=bool)
    for a, b in zip(starts, stops):  # a handful of runs
        rec[np.arange(a, b, every)] = True
    idx = np.where(rec, np.arange(n_dates), -1)
    latest = np.maximum.accumulate(idx)
    latest[~available.any(axis=1)] = -1
    return np.flatnonzero(rec), latest


def _simulated_bias(d0: np.ndarray, nu: float, n_sims: int, rng: np.random.Generator) -> np.ndarray:
    """Monte-Carlo eigenfactor bias ``v(k)``, eigenfactors by ascending variance.

    Each simulated covariance is ``F_j = D₀^{1/2} W_j D₀^{1/2}`` with ``W_j ~ Wishart(I, ν)/ν``:
    the covariance of ``ν`` i.i.d. ``N(0, D₀)`` draws (the eigenbasis rotation ``U₀`` cancels
    in ``v``), drawn exactly by the Bartlett decomposition ``W = A Aᵀ`` (``A`` lower
    triangular, ``A_ii² ~ χ²(ν − i)``, ``A_ij ~ N(0, 1)``) in O(m³) per draw.
    """
    m = d0.shape[0]
    if not nu > m - 1:
        return np.full(m, np.nan)
    normals = rng.standard_normal((n_sims, m * (m - 1) // 2))
    chi = np.sqrt(rng.chisquare(nu - np.arange(m), size=(n_sims, m)))
    ratio = np.empty((n_sims, m))
    with one_blas_thread():
        wishart_eigen_ratios(normals, chi, np.ascontiguousarray(d0, dtype=np.float64), float(nu), ratio)
    return np.sqrt(np.nanmean(ratio, axis=0))


def _smooth_bias(v: np.ndarray, exclude: int | None) -> np.ndarray:
    """Parabola fit ``v(k) ≈ c₀ + c₁k + c₂k²`` over ``k ≥ exclude``, replacing those values.

    The ``exclude`` lowest-variance eigenfactors keep their simulated values (their bias is
    large and not parabolic; USE4 Appendix B excludes them from the fit). Skipped when fewer
    than 3 eigenfactors would be fitted.
    """
    if exclude is None or not np.all(np.isfinite(v)):
        return v
    k = np.arange(v.shape[0], dtype=np.float64)
    fit = k >= exclude
    if fit.sum() < 3:
        return v
    coef = np.polyfit(k[fit], v[fit], 2)
    out = v.copy()
    out[fit] = np.polyval(coef, k[fit])
    return out


def _row_valid(f: np.ndarray) -> np.ndarray:
    return ~np.all(np.isnan(f), axis=1)


def _effective_df_at(t: int, row_valid: np.ndarray, weights: np.ndarray, lags: int) -> float:
    """ν of the correlation estimator at date ``t`` over the dates actually present."""
    n_w = weights.shape[0]
    back = t - np.arange(n_w + lags)
    valid = np.zeros(n_w + lags, dtype=bool)
    inside = back >= 0
    valid[inside] = row_valid[back[inside]]
    return nw_effective_df(weights, lags, valid)


def _eigen_adjust(
    f0: np.ndarray, available: np.ndarray, row_valid: np.ndarray, s: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floor-repaired, eigen-adjusted covariances for every defined date, plus v(k) and its dates.

    Written over ``f0`` (returned as the first result): each date's matrix is decomposed
    before its adjusted matrix replaces it, so no second (T, m, m) array is needed.
    """
    n_dates, m = available.shape
    out = f0  # every cell is rewritten below (NaN off the available blocks)
    do_eigen = bool(s["eigen_sims"])
    if do_eigen:
        rec_dates, latest = _recompute_schedule(available, s["eigen_every"])
    else:
        rec_dates, latest = np.zeros(0, dtype=np.int64), np.full(n_dates, -1)
    bias = np.full((rec_dates.size, m), np.nan)
    rec_pos = np.full(n_dates, -1)
    rec_pos[rec_dates] = np.arange(rec_dates.size)

    defined = available.any(axis=1)
    out[~defined] = np.nan
    first, group = distinct_rows(available[defined])
    masks = available[defined][first]
    dates_def = np.flatnonzero(defined)
    corr_w = ewma_weights(s["corr_half_life"], s["corr_window"])  # never cut by the panel length: no look-ahead
    iterator = _progress(rec_dates, s["progress"])
    eig = {}
    for g, mask in enumerate(masks):  # a handful of availability patterns
        dates = dates_def[group.ravel() == g]
        cols = np.flatnonzero(mask)
        contiguous = dates[-1] - dates[0] + 1 == dates.size
        if cols.size == m:
            sub = f0[dates[0] : dates[-1] + 1] if contiguous else f0[dates]
        else:
            sub = f0[np.ix_(dates, cols, cols)]
        floor = _EIG_FLOOR * np.trace(sub, axis1=1, axis2=2)
        eig[g] = (dates, cols, np.ascontiguousarray(sub), floor)
    date_group = np.full(n_dates, -1)
    date_pos = np.full(n_dates, -1)
    for g, (dates, _, _, _) in eig.items():
        date_group[dates] = g
        date_pos[dates] = np.arange(dates.size)

    # D₀ on the recompute dates only; the other dates get theirs inside the fused rebuild
    d0_rec = {}
    for g, (_, _, sub, floor) in eig.items():
        pos = date_pos[rec_dates[date_group[rec_dates] == g]]
        d0_rec[g] = dict(zip(pos.tolist(), np.maximum(_eigh(sub[pos])[0], floor[pos, None])))

    for r in iterator:  # recompute dates: ~T/21 passes, each a batched simulation
        d0 = d0_rec[date_group[r]][date_pos[r]]
        nu = _effective_df_at(int(r), row_valid, corr_w, s["corr_lags"])
        rng = np.random.default_rng(np.random.SeedSequence([s["seed"], int(r)]))
        v = _simulated_bias(d0, nu, s["eigen_sims"], rng)
        bias[rec_pos[r], : d0.size] = _smooth_bias(v, s["eigen_fit_exclude"])

    for dates, cols, sub, floor in eig.values():
        gamma2 = np.ones((dates.size, cols.size))
        if do_eigen:
            v = bias[rec_pos[latest[dates]], : cols.size]
            gamma = s["eigen_scale"] * (v - 1.0) + 1.0
            gamma2 = np.where(np.isfinite(gamma), gamma**2, 1.0)
        full_run = cols.size == m and dates[-1] - dates[0] + 1 == dates.size
        adj = out[dates[0] : dates[-1] + 1] if full_run else np.empty_like(sub)
        with one_blas_thread():
            eigen_rebuild_stack(sub, floor, np.ascontiguousarray(gamma2), adj)
        if full_run:
            continue
        if cols.size == m:
            out[dates] = adj
        else:
            out[dates] = np.nan
            out[np.ix_(dates, cols, cols)] = adj
    return out, bias, rec_dates.astype(np.int64)


def _progress(items: np.ndarray, show: bool):
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="eigen adjustment", unit="date")


# --------------------------------------------------------------------------- stage 3: VRA


def _vra(f: np.ndarray, cov: np.ndarray, available: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """``λ_F,t``: root of the EWMA of ``B²_F`` with ``B²_F,t = mean_k (f_kt / σ_k,t|t−1)²``."""
    n_dates = f.shape[0]
    defined = available.any(axis=1)
    lam = np.where(defined, 1.0, np.nan)
    if s["vra_half_life"] is None or n_dates < 2:
        return lam
    sigma = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))  # NaN off the available block
    z2 = (f[1:] / sigma[:-1]) ** 2
    n_z = np.sum(np.isfinite(z2), axis=1)
    with np.errstate(invalid="ignore"):
        b2 = np.where(n_z > 0, np.nansum(z2, axis=1) / np.maximum(n_z, 1), np.nan)
    b = np.concatenate([[np.nan], np.sqrt(b2)])
    b_t = np.ascontiguousarray(b[None, :])
    one = (np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    lam2, count = _nw_series(b_t, one, s["vra_half_life"], 0, s["vra_window"], False)
    ok = defined & (count[0] >= s["vra_min_periods"])
    lam[ok] = np.sqrt(lam2[0, ok])
    return lam


# --------------------------------------------------------------------------- public


def factor_covariance(
    f: np.ndarray,
    *,
    vol_half_life: float = FACTOR_DEFAULTS["vol_half_life"],
    vol_lags: int = FACTOR_DEFAULTS["vol_lags"],
    corr_half_life: float = FACTOR_DEFAULTS["corr_half_life"],
    corr_lags: int = FACTOR_DEFAULTS["corr_lags"],
    corr_standardise: bool = FACTOR_DEFAULTS["corr_standardise"],
    window: int | None = FACTOR_DEFAULTS["window"],
    demean: bool = FACTOR_DEFAULTS["demean"],
    eigen_sims: int | None = FACTOR_DEFAULTS["eigen_sims"],
    eigen_scale: float = FACTOR_DEFAULTS["eigen_scale"],
    eigen_every: int = FACTOR_DEFAULTS["eigen_every"],
    eigen_fit_exclude: int | None = FACTOR_DEFAULTS["eigen_fit_exclude"],
    vra_half_life: float | None = FACTOR_DEFAULTS["vra_half_life"],
    min_periods: int | None = FACTOR_DEFAULTS["min_periods"],
    seed: int = FACTOR_DEFAULTS["seed"],
    progress: bool = False,
) -> FactorCovarianceResult:
    """USE4-style factor covariance forecast for every date (EWMA + Newey–West, eigen, VRA).

    Parameters
    ----------
    f : ndarray (date, factor) float64
        Daily factor returns; NaN allowed (a NaN row: no regression that day; a NaN entry: a
        factor dropped that day, e.g. a thin industry).
    vol_half_life, vol_lags : float, int
        Half-life (dates) and Newey–West lags of the variances (USE4S: 84, 5).
    corr_half_life, corr_lags : float, int
        Half-life and lags of the correlations (USE4S: 504, 2). ``inf`` = equal weights.
    corr_standardise : bool
        Estimate the correlations from the factor returns divided by their own volatility
        known the day before (EWMA, half-life ``vol_half_life``, no lags; from
        ``min(63, vol window // 2)`` observations on), as dynamic conditional correlation
        models do, instead of from the raw returns. With the raw returns a high-volatility
        spell dominates the correlation estimate for as long as the correlation half-life
        remembers it (a 2008 in a 504-day EWMA); standardised, every day weighs alike. The
        variances are those of the raw returns either way. Default ``False`` (USE4).
    window : int, optional
        Window in dates of every EWMA; ``None``: ``3 × half-life`` each (all history when
        the half-life is infinite, which gives the sample covariance).
    demean : bool
        Centre on the weighted means (default ``False``: daily returns are not demeaned).
    eigen_sims : int or None
        Monte-Carlo draws ``M`` of the eigenfactor adjustment; ``0``/``None`` disables it.
        USE4 uses ``M = 1,000`` recomputed monthly (``eigen_sims=1000, eigen_every=21``:
        about 110,000 eigendecompositions over 10 years). The default spends 1/30 of that:
        after the parabola smoothing, ``v(k)`` from 100 draws is within 0.005 of a
        4,000-draw estimate at ``ν ≈ 1,000`` (0.02 at ``ν ≈ 260``), and ``v(k)`` drifts
        slowly, so a quarterly recompute loses little.
    eigen_scale : float
        ``a`` in ``γ(k) = a (v(k) − 1) + 1`` (1.0 for Gaussian data, 1.2–1.4 on real data).
    eigen_every : int
        Recompute ``v(k)`` every this many dates; between recomputes the latest ``v(k)`` is
        applied to the current eigenbasis.
    eigen_fit_exclude : int or None
        Parabola smoothing of ``v(k)`` fitted over eigenfactors ``k ≥ eigen_fit_exclude``
        (ascending variance); ``None`` disables smoothing.
    vra_half_life : float or None
        Half-life of the volatility regime adjustment (window ``3 × H``); ``None`` disables it.
    min_periods : int, optional
        Observations of a factor needed in the correlation window before it is forecast
        (default ``max(3·m, 42)``: METHODS §5 asks for ``T_eff ≥ 3m``, and in a young window
        the weights are nearly flat, so ``T_eff ≈`` the count). The variance window needs
        ``min(min_periods, vol_window // 2)``.
    seed : int
        Root seed of the simulation; the draws of date ``t`` use ``SeedSequence([seed, t])``,
        so they depend on nothing after ``t``.
    progress : bool
        Show a progress bar over the recompute dates.

    Returns
    -------
    FactorCovarianceResult
        ``.cov (date, factor, factor_)``, ``.vra (date,)``, ``.eigen_bias (recompute, k)``,
        ``.dates_recomputed``, ``.available (date, factor)``, ``.settings``.

    Raises
    ------
    DimensionError
        ``f`` is not 2-D.
    NonFiniteError
        ``f`` holds ±inf (named by row and column).
    InvalidParameterError
        A setting is out of range (named).

    Notes
    -----
    *EWMA + Newey–West.* With ``w_s = 2^{−s/H}`` over ``s < W``,
    ``C_l = Σ_s w_s f_{t−s} f_{t−s−l}ᵀ / Σ_s w_s`` (sums over the terms where both values are
    present: pairwise complete) and ``F_NW = C₀ + Σ_{l=1..L} (1 − l/(L+1)) (C_l + C_lᵀ)``.
    Variances ``σ²`` are the diagonal of ``F_NW`` with ``(H_vol, L_vol)`` (lag 0 if the long-run
    variance is not positive), correlations ``ρ`` come from ``F_NW`` with ``(H_corr, L_corr)``
    (``ρ = 0`` for a pair never observed together), ``F⁰ = ρ ∘ σσᵀ``. ``F⁰ = U₀D₀U₀ᵀ`` is made
    positive definite by flooring ``D₀`` at ``1e-12·tr F⁰`` (nearest-PSD repair by
    eigenvalue clipping; simple, and a no-op when the data are complete).

    *Eigenfactor adjustment.* On recompute dates, ``M`` covariances ``F_j`` are simulated
    from ``N(0, D₀)`` with ``ν`` effective observations, ``ν = 1/‖K‖²_F`` the effective
    degrees of freedom of the correlation estimator (its EWMA weights, window, lags and the
    dates present; ``ν = T_eff`` without lags): exactly the sample covariance of ``T_w = ν``
    draws, sampled by the Bartlett decomposition (see :func:`nw_effective_df`). It matches the
    first two moments of re-estimating with the same weights and lags at O(m³) per draw
    instead of O(T_w m²). With ``F_j = U_jD_jU_jᵀ`` and ``D̃_j = diag(U_jᵀD₀U_j)``,
    ``v(k) = √(mean_j D̃_j(k)/D_j(k))``, ``γ(k) = a (v(k) − 1) + 1`` and
    ``F_eig = U₀ diag(γ² D₀) U₀ᵀ``. Between recompute dates the latest ``v(k)`` is applied,
    eigenfactor by eigenfactor in ascending order, to the *current* eigenbasis ``U₀,t, D₀,t``.
    A new run of recompute dates starts whenever the set of available factors changes. The
    variance noise of the shorter vol half-life is not simulated (``v`` targets the
    correlation noise that ruins conditioning; VRA handles the variance level). Dates where
    ``ν ≤ m − 1`` get no adjustment (``v`` = NaN).

    *VRA.* ``B²_t = mean_k (f_kt/σ_k,t|t−1)²`` over the factors present at ``t``, with
    ``σ_t|t−1`` from the eigen-adjusted forecast of ``t − 1``; ``λ²_t = EWMA_{H_VRA}(B²)``
    over ``3·H_VRA`` dates, applied once it holds ``⌈H_VRA/2⌉`` observations (``λ = 1``
    before); ``cov_t = λ²_t F_eig,t``.

    *Look-ahead.* Every row uses ``f[≤ t]`` only, and the recompute grid depends on the past
    only: truncating ``f`` after ``t`` leaves every row ``≤ t`` bit-identical.

    References
    ----------
    Menchero, Orr & Wang, *The Barra US Equity Model (USE4), Methodology Notes*, MSCI 2011.
    Menchero, Wang & Orr, "Improving Risk Forecasts for Optimized Portfolios", FAJ 68(3), 2012.
    Newey & West, *Econometrica* 55 (1987).

    Examples
    --------
    >>> import numpy as np
    >>> from riskmodel.covariance.factor import factor_covariance
    >>> f = np.random.default_rng(0).normal(0.0, 0.01, size=(300, 4))
    >>> res = factor_covariance(f, vol_half_life=42, corr_half_life=84, eigen_sims=50)
    >>> res.cov.shape, bool(np.isnan(res.cov[0]).all()), bool(np.isfinite(res.cov[-1]).all())
    ((300, 4, 4), True, True)
    """
    settings = dict(
        vol_half_life=vol_half_life, vol_lags=vol_lags, corr_half_life=corr_half_life, corr_lags=corr_lags,
        corr_standardise=corr_standardise, window=window, demean=demean, eigen_sims=eigen_sims,
        eigen_scale=eigen_scale, eigen_every=eigen_every, eigen_fit_exclude=eigen_fit_exclude, vra_half_life=vra_half_life, min_periods=min_periods, seed=seed,
    )
    f = _validate_returns(f)
    return _forecast_series(f, _settings(f.shape, settings, progress=progress))


def _forecast_series(f: np.ndarray, settings: dict[str, Any]) -> FactorCovarianceResult:
    """The three stages in order on validated returns and resolved settings."""
    f0, available = _base_covariance(f, settings)
    f_eig, bias, rec_dates = _eigen_adjust(f0, available, _row_valid(f), settings)
    lam = _vra(f, f_eig, available, settings)
    f_eig *= (lam**2)[:, None, None]  # in place: one (T, m, m) array less
    return FactorCovarianceResult(
        cov=f_eig,
        vra=lam,
        eigen_bias=bias,
        dates_recomputed=rec_dates,
        available=available,
        settings=settings,
    )


def _validate_returns(f: Any) -> np.ndarray:
    arr = np.asarray(f, dtype=np.float64)
    if arr.ndim != 2:
        raise DimensionError(
            f"factor returns f must be a 2-D array (date, factor), got shape {arr.shape}; "
            "pass one row per date and one column per factor"
        )
    reject_infinite(arr, "factor returns f", [("date", None), ("factor", None)],
                    hint="use NaN for a missing factor return")
    return arr


def _settings(shape: tuple[int, int], kw: dict[str, Any], *, progress: bool) -> dict[str, Any]:
    """Check the settings against :data:`FACTOR_PARAMETERS`; add the derived windows and counts."""
    check_parameters("factor_covariance", FACTOR_PARAMETERS, kw)
    n_dates, m = shape
    win, mp, vra = kw["window"], kw["min_periods"], kw["vra_half_life"]
    s = dict(kw, progress=progress)
    s["eigen_sims"] = int(kw["eigen_sims"] or 0)
    s["vol_window"] = _window_length(float(kw["vol_half_life"]), win, n_dates)
    s["corr_window"] = _window_length(float(kw["corr_half_life"]), win, n_dates)
    s["vol_half_life"] = float(kw["vol_half_life"])
    s["corr_half_life"] = float(kw["corr_half_life"])
    s["vra_window"] = None if vra is None else _window_length(float(vra), None, n_dates)
    s["vra_min_periods"] = None if vra is None else int(math.ceil(vra / 2.0))
    s["min_periods"] = int(mp) if mp is not None else max(3 * m, 42)
    return s
