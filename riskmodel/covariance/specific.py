"""Specific-variance forecasts ``D`` (METHODS section 4).

Pipeline, all on ndarrays laid out ``(date, stock)``; row t is made at the close of day t
from residuals of days ``<= t`` and exposures / caps at the close of t, and forecasts
the specific variance of day t + 1:

1. **Time series** -- ``sigma_TS^2``: windowed EWMA (half-life H, window 3H) of u^2 with
   Newey-West lags, per stock, NaN-aware (:func:`riskmodel.kernels.specific.specific_ts_kernel`).
2. **Blending weight** -- ``gamma = clip((h - min_obs)/(full_obs - min_obs), 0, 1) *
   clip(exp(1 - Z), 0, 1)``; h and the robust statistic Z are computed by the same kernel
   for **every date** (exact rolling quartiles of the window by rank cursors, no schedule).
3. **Structural model** -- per date, v-weighted regression of ``ln sigma_TS`` of the
   gamma = 1 names on market + industries + styles; ``sigma_STR = E0 exp(X b)`` for every
   name with complete styles; ``sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR``
   (:func:`riskmodel.kernels.specific.structural_kernel`).
4. **Bayesian shrinkage** toward cap-weighted means of ESTU size groups
   (:func:`riskmodel.kernels.specific.shrink_kernel`).
5. **Specific volatility regime adjustment** -- ``lambda_S``, an EWMA of the cross-sectional
   cap-weighted mean of squared standardised residuals.

:func:`specific_variance` runs the five steps on whole arrays. The step functions
(:func:`ts_stats`, :func:`structural_volatility`, :func:`shrink_volatility`,
:func:`vra_b2_rows`, :func:`vra_multiplier`, :func:`final_variance`) and
:func:`check_settings` are the package's internal interface to the same arithmetic:
:mod:`riskmodel.models.chunked` runs them block by block for the out-of-core fit. They are not part
of the public API (not in ``__all__``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import lfilter

from riskmodel.errors import DimensionError, InvalidParameterError, NonFiniteError

__all__ = ["SpecificRiskResult", "specific_variance"]

#: A structural fit needs at least ``K + _EXTRA_FIT_NAMES`` usable names.
_EXTRA_FIT_NAMES = 10


@dataclass(frozen=True)
class SpecificRiskResult:
    """Specific-variance forecast series and diagnostics.

    Attributes
    ----------
    var : ndarray (date, stock) float64
        Row t: forecast of the specific variance of day t + 1 made at the close of t.
        Finite and > 0 for every stock with a residual on day t and complete style
        exposures at t (once a structural fit exists); NaN elsewhere.
    gamma : ndarray (date, stock) float64
        Blending weight of the time-series estimate (0 where the name has no residual
        history), computed for every date.
    vra : ndarray (date,) float64
        Volatility multiplier ``lambda_S`` applied to row t (1 when the VRA is disabled
        and before the first standardised residual).
    n_obs : ndarray (date, stock) int32
        Valid residuals in the window (``h``).
    structural_scale : ndarray (date,) float64
        ``E0`` of each date's structural model (NaN where no fit was possible).
    n_structural : ndarray (date,) int64
        Names in each date's structural regression.
    settings : dict
        The settings used.
    """

    var: np.ndarray
    gamma: np.ndarray
    vra: np.ndarray
    n_obs: np.ndarray
    structural_scale: np.ndarray
    n_structural: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        T, N = self.var.shape
        return (
            f"SpecificRiskResult(dates={T}, stocks={N}, finite={int(np.isfinite(self.var).sum())}, "
            f"mean gamma={np.nanmean(self.gamma) if self.gamma.size else float('nan'):.3f}, "
            f"settings={self.settings})"
        )


@dataclass(frozen=True)
class _Blended:
    """Intermediate results of steps 1-3 (internal)."""

    ts_var: np.ndarray | None  # (T, N) sigma_TS^2 (None once overwritten by sig_hat)
    n_obs: np.ndarray  # (T, N) int32
    gamma: np.ndarray  # (T, N)
    sig_str: np.ndarray | None  # (T, N) structural volatility (None when blended in place)
    sig_hat: np.ndarray  # (T, N) blended volatility
    e0: np.ndarray  # (T,)
    n_fit: np.ndarray  # (T,)
    complete: np.ndarray  # (T, N) bool: all styles finite


def specific_variance(
    residuals: np.ndarray,
    exposures: Any,
    *,
    half_life: float = 84,
    lags: int = 5,
    window: int | None = None,
    min_obs: int = 60,
    full_obs: int = 180,
    blend: bool = True,
    shrink: float = 0.1,
    n_groups: int = 10,
    structural_scale: str | float = "duan",
    vra_half_life: float | None = 42,
    progress: bool = False,
) -> SpecificRiskResult:
    """Forecast specific variances for every date (USE4-style, METHODS section 4).

    Parameters
    ----------
    residuals : ndarray (date, stock) float64
        Specific returns ``u`` of each day (NaN when absent), e.g.
        ``WLSResult.residuals``.
    exposures : Exposures
        Unlagged exposures (``riskmodel.exposures.Exposures``): ``styles (date, stock,
        style)``, ``industry (date, stock)`` int codes or None, ``weights (date, stock)``
        regression weights (sqrt cap, NaN/0 outside the ESTU) and ``cap (date, stock)``.
    half_life : float, default 84
        EWMA half-life (days) of the time-series variance.
    lags : int, default 5
        Newey-West lags of the time-series variance.
    window : int, optional
        Window (days) of the time-series variance and of the blending statistics;
        default ``3 * half_life``.
    min_obs, full_obs : int, default 60, 180
        gamma's history ramp: 0 at ``h <= min_obs``, 1 at ``h >= full_obs``.
    blend : bool, default True
        False: no robust blending, ``gamma = 1`` when ``h >= min_obs``, else 0.
    shrink : float, default 0.1
        Bayesian shrinkage intensity q in [0, 1]; 0 disables the shrinkage.
    n_groups : int, default 10
        Size groups (ESTU cap quantiles) of the shrinkage.
    structural_scale : "duan" or float, default "duan"
        ``E0`` of ``sigma_STR = E0 exp(X b)``: Duan smearing ``mean(exp(e))`` or a fixed
        number (USE4: 1.05).
    vra_half_life : float or None, default 42
        Half-life of the specific volatility regime adjustment; None disables it.
    progress : bool, default False
        Show a progress bar over the pipeline stages.

    Returns
    -------
    SpecificRiskResult
        ``var (date, stock)`` forecasts, ``gamma (date, stock)``, ``vra (date,)`` and
        diagnostics.

    Raises
    ------
    DimensionError
        Arrays whose shapes do not match ``residuals``.
    NonFiniteError
        An infinite residual (the message names the stock and the date).
    InvalidParameterError
        A setting out of range.

    Notes
    -----
    Time series, with EWMA weights ``w_s = 2^(-s/H)`` over the window, renormalised over
    present days: ``C_l = sum_s w_s u_{t-s} u_{t-s-l} / sum_s w_s``,
    ``sigma_TS^2 = C_0 + 2 sum_{l=1..L} (1 - l/(L+1)) C_l`` floored at ``C_0/(L+1)``.
    The first return after a gap is an ordinary missing value here.

    Blending: ``h`` = valid residuals in the window, ``sigma_tilde = IQR(u)/1.35``,
    ``sigma_eq`` = std of u clipped at ``+-10 sigma_tilde``, ``Z = |sigma_eq/sigma_tilde - 1|``,
    ``gamma = min(1, max(0, (h - 60)/120)) min(1, max(0, exp(1 - Z)))``. Computed for every
    date by the kernel (exact rolling order statistics), not on a schedule.

    Structural model: ``ln sigma_TS = a_industry + X_style b + e``, v-weighted, fitted per
    date on the ESTU names with ``gamma = 1`` and complete styles. When fewer than
    ``K + 10`` such names exist (the burn-in of a panel), the sample falls back to ESTU names
    with ``h >= min_obs``, then to ESTU names with ``h >= 1``, then (no ESTU yet) to every
    name with a cap, weighted by sqrt(cap); dates with fewer usable names still have no
    structural model (NaN). Industries with fewer than 5 sample names share a
    pooled intercept; names outside a fitted industry get the market intercept.
    ``sigma_STR = E0 exp(X b)``, ``sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR``.

    Shrinkage: ``sigma_SH = nu sigma_bar(s) + (1 - nu) sigma_hat`` with
    ``nu = q|sigma_hat - sigma_bar| / (Delta(s) + q|sigma_hat - sigma_bar|)``; groups are
    ESTU cap quantiles; names without a cap are not shrunk.

    VRA: ``B_t^2 = sum_n h_n (u_{n,t} / sigma_{SH,n,t-1})^2`` over the ESTU of t - 1 with
    cap weights h normalised over the names present, ``lambda_t^2`` = EWMA (half-life
    ``vra_half_life``, all history, renormalised) of ``B^2`` up to t; ``var = lambda_t^2
    sigma_SH^2``.

    Rows are masked to stocks with a residual on day t and complete styles at t.

    References
    ----------
    Menchero, Orr, Wang (2011), *The Barra US Equity Model (USE4), Methodology Notes*.

    Examples
    --------
    >>> import numpy as np, types
    >>> rng = np.random.default_rng(0)
    >>> T, N = 300, 60
    >>> u = 0.02 * rng.standard_normal((T, N))
    >>> cap = np.exp(rng.standard_normal(N)) * np.ones((T, 1))
    >>> ex = types.SimpleNamespace(styles=rng.standard_normal((T, N, 1)), industry=None,
    ...                            cap=cap, weights=np.sqrt(cap))
    >>> res = specific_variance(u, ex)
    >>> bool(np.all(res.var[-1] > 0))
    True
    """
    T, N, styles, industry, n_industries, weights, cap, names = _validate(residuals, exposures)
    window = check_settings(
        half_life, lags, window, min_obs, full_obs, shrink, n_groups, structural_scale,
        vra_half_life,
    )
    u = np.ascontiguousarray(residuals, dtype=np.float64)
    bar = _progress_bar(progress)
    bl = _blended(u, styles, industry, n_industries, weights, cap, half_life=half_life, lags=lags,
                  window=window, min_obs=min_obs, full_obs=full_obs, blend=blend,
                  structural_scale=structural_scale, bar=bar, keep_structural=False,
                  keep_ts_var=shrink == 0)
    gamma, n_obs, e0, n_fit, complete = bl.gamma, bl.n_obs, bl.e0, bl.n_fit, bl.complete
    ts_var = bl.ts_var  # None with shrinkage: sigma_hat was written over it
    sig_hat = bl.sig_hat
    del bl  # the structural volatilities are no longer needed
    with np.errstate(invalid="ignore"):
        estu = weights > 0
        estu &= np.isfinite(weights)
        estu &= cap > 0
        estu &= np.isfinite(cap)
    sig_sh = shrink_volatility(sig_hat, cap, estu, n_groups=n_groups, q=shrink)
    del sig_hat
    _tick(bar, "shrinkage")
    lam = _vra(u, sig_sh, cap, estu, vra_half_life)
    _tick(bar, "VRA")
    del estu
    var = final_variance(u, sig_sh, ts_var, gamma, lam, shrink, complete)
    if bar is not None:
        bar.close()
    settings = dict(half_life=half_life, lags=lags, window=window, min_obs=min_obs,
                    full_obs=full_obs, blend=blend, shrink=shrink, n_groups=n_groups,
                    structural_scale=structural_scale, vra_half_life=vra_half_life)
    return SpecificRiskResult(var=var, gamma=gamma, vra=lam, n_obs=n_obs,
                              structural_scale=e0, n_structural=n_fit, settings=settings)


# ---------------------------------------------------------------------------------------
# pipeline stages (ndarrays in, ndarrays out)
# ---------------------------------------------------------------------------------------


def ts_stats(u: np.ndarray, *, half_life: float, lags: int, window: int, min_obs: int = 60,
             full_obs: int = 180, blend: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sigma_TS^2 (T, N), h (T, N) int32 and gamma (T, N) from the kernel (the robust
    statistic Z only enters through gamma, so the kernel does not write it out)."""
    from riskmodel.kernels.specific import specific_ts_kernel

    T, N = u.shape
    var = np.empty((T, N))
    h = np.empty((T, N), np.int32)
    gamma = np.empty((T, N))
    specific_ts_kernel(u, float(half_life), int(window), int(lags), int(min_obs),
                       int(full_obs), bool(blend), var, h, np.empty((0, N)), gamma)
    return var, h, gamma


def structural_volatility(ts_var: np.ndarray, h: np.ndarray, gamma: np.ndarray, styles: np.ndarray,
                          industry: np.ndarray | None, n_industries: int, weights: np.ndarray,
                          cap: np.ndarray, *, min_obs: int, structural_scale: str | float,
                          blend: bool = False, complete: np.ndarray | None = None,
                          out: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structural volatility (T, N), E0 (T,) and fit counts (T,) from the kernel.

    With ``blend`` the first array is the blended volatility ``sigma_hat`` instead (the
    kernel blends each name as it predicts it, see :func:`_blend`). ``complete`` (T, N)
    bool, when given, receives the style-completeness mask of every name. ``out`` (T, N)
    float64 C-ordered, when given, receives the volatilities and is returned; it may be
    ``ts_var`` itself (the kernel reads a date's row before it writes it), which saves a
    (T, N) array when ``sigma_TS^2`` is not needed afterwards.
    """
    from riskmodel.kernels.specific import structural_kernel

    T, N, K = styles.shape
    has_ind = industry is not None
    ind = industry if has_ind else np.zeros((1, 1), np.int32)
    duan = isinstance(structural_scale, str)
    scale = 1.0 if duan else float(structural_scale)
    sig = np.empty((T, N)) if out is None else out
    e0 = np.empty(T)
    nfit = np.empty(T, np.int64)
    if complete is None:
        complete = np.empty((T, N), np.bool_)
    if out is not None and not (out.shape == (T, N) and out.dtype == np.float64 and out.flags.c_contiguous):
        raise ValueError(f"out must be a C-ordered float64 ({T}, {N}) array")
    structural_kernel(np.ascontiguousarray(ts_var), np.ascontiguousarray(h, dtype=np.int32),
                      np.ascontiguousarray(gamma), styles, ind, has_ind, int(n_industries),
                      weights, np.ascontiguousarray(cap), int(min_obs), int(K + _EXTRA_FIT_NAMES),
                      duan, scale, bool(blend), sig, e0, nfit, complete)
    return sig, e0, nfit


def _blend(gamma: np.ndarray, ts_var: np.ndarray, sig_str: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR, using only the terms with weight.

    ``sigma_TS`` where gamma >= 1, ``sigma_STR`` where gamma <= 0 (so a NaN in the other
    term does not leak). With ``inplace`` the result overwrites ``sig_str``.
    """
    out = sig_str if inplace else sig_str.copy()
    full = gamma >= 1.0
    mid = gamma > 0.0
    mid &= ~full
    g = gamma[mid]
    out[mid] = g * np.sqrt(ts_var[mid]) + (1.0 - g) * out[mid]
    out[full] = np.sqrt(ts_var[full])
    return out


def _blended(u: np.ndarray, styles: np.ndarray, industry: np.ndarray | None,
             n_industries: int, weights: np.ndarray, cap: np.ndarray, *, half_life: float, lags: int,
             window: int, min_obs: int, full_obs: int, blend: bool,
             structural_scale: str | float, bar: Any = None, keep_structural: bool = True,
             keep_ts_var: bool = True) -> _Blended:
    """Steps 1-3: time series, blending weight, structural model, blended volatility.

    ``keep_structural=False`` lets the structural kernel blend each name as it predicts it
    (``sig_str`` is then None), saving a (T, N) array and a pass. With it,
    ``keep_ts_var=False`` has the kernel write ``sigma_hat`` over ``sigma_TS^2``
    (``ts_var`` is then None), saving another.
    """
    ts_var, h, gamma = ts_stats(u, half_life=half_life, lags=lags, window=window,
                                min_obs=min_obs, full_obs=full_obs, blend=blend)
    _tick(bar, "time series")
    complete = np.empty(u.shape, np.bool_)
    sig, e0, nfit = structural_volatility(ts_var, h, gamma, styles, industry, n_industries, weights,
                                          cap, min_obs=min_obs, structural_scale=structural_scale,
                                          blend=not keep_structural, complete=complete,
                                          out=None if keep_structural or keep_ts_var else ts_var)
    _tick(bar, "structural model")
    if keep_structural:
        sig_str, sig_hat = sig, _blend(gamma, ts_var, sig)
    else:
        sig_str, sig_hat = None, sig
        if not keep_ts_var:
            ts_var = None
    return _Blended(ts_var=ts_var, n_obs=h, gamma=gamma, sig_str=sig_str,
                    sig_hat=sig_hat, e0=e0, n_fit=nfit, complete=complete)


def final_variance(u: np.ndarray, sig_sh: np.ndarray, ts_var: np.ndarray | None,
                   gamma: np.ndarray, lam: np.ndarray, q: float, complete: np.ndarray) -> np.ndarray:
    """``lambda_t^2 sigma_SH^2`` where the stock has a residual and complete styles, else NaN.

    Without shrinkage (``q == 0``, ``ts_var`` given) the gamma = 1 names keep
    ``sigma_TS^2`` bit for bit. Built in place in ``sig_sh`` when that array is not
    ``sig_hat`` itself. ``complete`` (T, N) bool is the style-completeness mask the
    structural kernel returns.
    """
    var = np.multiply(sig_sh, sig_sh, out=sig_sh if q != 0 else None)
    if q == 0 and ts_var is not None:
        full = gamma >= 1.0
        var[full] = ts_var[full]
    var *= (lam * lam)[:, None]
    present = np.isfinite(u)
    present &= complete
    np.copyto(var, np.nan, where=~present)
    return var


def shrink_volatility(sig_hat: np.ndarray, cap: np.ndarray, estu: np.ndarray, *, n_groups: int,
                      q: float) -> np.ndarray:
    """Bayesian shrinkage toward size-group means (identity when ``q == 0``).

    In place: ``sig_hat`` is overwritten and returned (the kernel finishes a date's group
    statistics before it rewrites the date's volatilities).
    """
    if q == 0:
        return sig_hat
    from riskmodel.kernels.specific import shrink_kernel

    group = np.empty(sig_hat.shape, np.int8)
    shrink_kernel(sig_hat, np.ascontiguousarray(cap), np.ascontiguousarray(estu),
                  int(n_groups), float(q), sig_hat, group)
    return sig_hat


def vra_b2_rows(u: np.ndarray, sig_prev: np.ndarray, cap_prev: np.ndarray, estu_prev: np.ndarray) -> np.ndarray:
    """``B_t²`` per row: cap-weighted mean of ``(u_t / σ_{t-1})²`` over the ESTU of t − 1
    (NaN without one); the rows of ``*_prev`` are those of t − 1."""
    from riskmodel.kernels.specific import vra_terms_kernel

    R = u.shape[0]
    num = np.empty(R)
    wsum = np.empty(R)
    vra_terms_kernel(np.ascontiguousarray(u, dtype=np.float64), np.ascontiguousarray(sig_prev, dtype=np.float64),
                     np.ascontiguousarray(cap_prev, dtype=np.float64), np.ascontiguousarray(estu_prev, dtype=np.bool_),
                     num, wsum)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, num / wsum, np.nan)


def _vra(u: np.ndarray, sig: np.ndarray, cap: np.ndarray, estu: np.ndarray,
         half_life: float | None) -> np.ndarray:
    """lambda_S (T,): sqrt of the EWMA of the cap-weighted mean squared standardised residual.

    ``B_t^2`` uses ``u_t / sig_{t-1}`` over the ESTU of t - 1; dates without any such name
    are skipped (weights renormalised). lambda = 1 before the first ``B``.
    """
    T = u.shape[0]
    if half_life is None or T < 2:
        return np.ones(T)
    b2 = np.full(T, np.nan)
    b2[1:] = vra_b2_rows(u[1:], sig[:-1], cap[:-1], estu[:-1])
    return vra_multiplier(b2, half_life)


def vra_multiplier(b2: np.ndarray, half_life: float | None) -> np.ndarray:
    """``lambda_S`` (T,) from the ``B_t^2`` series: sqrt of its EWMA over all history.

    NaN entries of ``b2`` (dates without a standardised residual) are skipped, the weights
    renormalised over the dates present; lambda = 1 before the first ``B^2`` and everywhere
    when ``half_life`` is None.
    """
    T = b2.shape[0]
    if half_life is None or T < 2:
        return np.ones(T)
    have = np.isfinite(b2)
    a = 2.0 ** (-1.0 / half_life)
    num = lfilter([1.0], [1.0, -a], np.where(have, b2, 0.0))
    den = lfilter([1.0], [1.0, -a], have.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        lam2 = num / den
    return np.where(den > 0, np.sqrt(lam2), 1.0)


# ---------------------------------------------------------------------------------------
# validation and helpers
# ---------------------------------------------------------------------------------------


def _validate(residuals: Any, exposures: Any):
    """Check shapes and values; return contiguous arrays and labels for messages."""
    u = np.asarray(residuals)
    if u.ndim != 2:
        raise DimensionError(
            f"residuals must be a 2-D (date, stock) array, got shape {u.shape}; pass the "
            "(T, N) specific returns, e.g. WLSResult.residuals."
        )
    if not np.issubdtype(u.dtype, np.floating):
        raise DimensionError(f"residuals must be float, got dtype {u.dtype}; cast with "
                             ".astype(float) and use NaN for missing returns.")
    T, N = u.shape
    dates = getattr(exposures, "dates", None)
    stocks = getattr(exposures, "stocks", None)
    names = (dates, stocks)
    bad = np.isinf(u)
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise NonFiniteError(
            f"residuals holds {int(bad.sum())} infinite value(s); first at stock "
            f"{_label(stocks, n)} on date {_label(dates, t)}. Use NaN for missing returns."
        )
    styles = np.ascontiguousarray(exposures.styles, dtype=np.float64)
    if styles.ndim != 3 or styles.shape[:2] != (T, N):
        raise DimensionError(
            f"exposures.styles must have shape (date, stock, style) = ({T}, {N}, K) to match "
            f"residuals, got {styles.shape}; build both from the same panel."
        )
    arrays = {}
    for name in ("weights", "cap"):
        arr = np.ascontiguousarray(getattr(exposures, name), dtype=np.float64)
        if arr.shape != (T, N):
            raise DimensionError(
                f"exposures.{name} must have shape (date, stock) = ({T}, {N}) to match "
                f"residuals, got {arr.shape}; build both from the same panel."
            )
        arrays[name] = arr
    industry = getattr(exposures, "industry", None)
    n_industries = 0
    if industry is not None:
        industry = np.ascontiguousarray(industry)
        if industry.shape != (T, N) or not np.issubdtype(industry.dtype, np.integer):
            raise DimensionError(
                f"exposures.industry must be an integer (date, stock) array of shape "
                f"({T}, {N}) with -1 for missing, got {industry.dtype} {industry.shape}."
            )
        industry = industry.astype(np.int32, copy=False)
        labels = getattr(exposures, "industry_labels", None)
        n_industries = len(labels) if labels else int(industry.max(initial=-1)) + 1
    return T, N, styles, industry, n_industries, arrays["weights"], arrays["cap"], names


def check_settings(half_life, lags, window, min_obs, full_obs, shrink, n_groups,
                   structural_scale, vra_half_life) -> int:
    """Validate the settings by name; return the window length."""
    if not (isinstance(half_life, (int, float)) and half_life > 0 and math.isfinite(half_life)):
        raise InvalidParameterError(f"half_life must be a positive finite number of days, "
                                    f"got {half_life!r}.")
    if not (isinstance(lags, (int, np.integer)) and lags >= 0):
        raise InvalidParameterError(f"lags must be an integer >= 0, got {lags!r}.")
    if window is None:
        window = max(int(round(3 * half_life)), int(lags) + 2)
    if not (isinstance(window, (int, np.integer)) and window > lags + 1):
        raise InvalidParameterError(
            f"window must be an integer > lags + 1 = {lags + 1}, got {window!r}; "
            "use None for 3 * half_life."
        )
    if not (isinstance(min_obs, (int, np.integer)) and isinstance(full_obs, (int, np.integer))
            and 0 <= min_obs < full_obs):
        raise InvalidParameterError(
            f"min_obs and full_obs must be integers with 0 <= min_obs < full_obs, got "
            f"min_obs={min_obs!r}, full_obs={full_obs!r}."
        )
    if not (isinstance(shrink, (int, float)) and 0 <= shrink <= 1):
        raise InvalidParameterError(f"shrink must be in [0, 1] (0 disables), got {shrink!r}.")
    if not (isinstance(n_groups, (int, np.integer)) and 1 <= n_groups <= 100):
        raise InvalidParameterError(f"n_groups must be an integer in [1, 100], got {n_groups!r}.")
    if isinstance(structural_scale, str):
        if structural_scale != "duan":
            raise InvalidParameterError(
                f"structural_scale must be 'duan' or a positive number (USE4: 1.05), got "
                f"{structural_scale!r}."
            )
    elif not (isinstance(structural_scale, (int, float)) and structural_scale > 0
              and math.isfinite(structural_scale)):
        raise InvalidParameterError(
            f"structural_scale must be 'duan' or a positive number (USE4: 1.05), got "
            f"{structural_scale!r}."
        )
    if vra_half_life is not None and not (isinstance(vra_half_life, (int, float))
                                          and vra_half_life > 0):
        raise InvalidParameterError(
            f"vra_half_life must be a positive number of days or None (no VRA), got "
            f"{vra_half_life!r}."
        )
    return int(window)


def _label(labels: Any, i: int) -> str:
    """Label ``i`` of ``labels`` for a message (the index when there are no labels)."""
    if labels is None:
        return f"#{int(i)}"
    return str(np.asarray(labels)[int(i)])


def _progress_bar(progress: bool) -> Any:
    """A tqdm bar over the pipeline stages, or None."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=4, desc="specific risk", unit="stage")


def _tick(bar: Any, stage: str) -> None:
    """Advance the progress bar past ``stage``."""
    if bar is not None:
        bar.set_postfix_str(stage)
        bar.update(1)
