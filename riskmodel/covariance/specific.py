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

:func:`specific_variance` runs the five steps on whole arrays, in three stages:
:func:`time_series_stage` (steps 1-2, per stock), :func:`cross_section_stage` (steps 3-4,
per date) and :func:`vra_stage` (step 5: :func:`vra_b2_rows`, then :func:`vra_multiplier`),
then :func:`final_variance`, on the inputs of :func:`specific_inputs` and the settings of
:func:`specific_settings` (defaults and checks declared in
:mod:`riskmodel.covariance.settings`). The out-of-core fit (:mod:`riskmodel.models.chunked`)
runs the same stage functions block by block: the time series on blocks of stocks, the
cross section and the final variance (with ``lambda = 1``) on blocks of dates, ``B^2`` on
blocks of dates and its EWMA on the whole ``(date,)`` series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskmodel._labels import reject_infinite
from riskmodel._params import check_parameters
from riskmodel.covariance.settings import SPECIFIC_DEFAULTS, SPECIFIC_PARAMETERS
from riskmodel.errors import DimensionError, InvalidParameterError

__all__ = [
    "SpecificRiskResult",
    "specific_variance",
    "SpecificInputs",
    "CrossSection",
    "specific_inputs",
    "specific_settings",
    "time_series_stage",
    "cross_section_stage",
    "vra_stage",
    "ts_stats",
    "structural_volatility",
    "shrink_volatility",
    "vra_b2_rows",
    "vra_multiplier",
    "final_variance",
]

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
class SpecificInputs:
    """The validated arrays of a specific-variance run, or of one block of its dates.

    Attributes
    ----------
    residuals : ndarray (date, stock) float64, C-ordered
        Specific returns; NaN when absent.
    styles : ndarray (date, stock, style) float64
    industry : ndarray (date, stock) int32 or None
        Industry codes, ``-1`` for missing.
    n_industries : int
    weights : ndarray (date, stock) float64
        Regression weights (sqrt cap; NaN/0 outside the ESTU).
    cap : ndarray (date, stock) float64
    """

    residuals: np.ndarray
    styles: np.ndarray
    industry: np.ndarray | None
    n_industries: int
    weights: np.ndarray
    cap: np.ndarray

    @property
    def estu(self) -> np.ndarray:
        """ndarray (date, stock) bool: the estimation universe, a positive finite weight and cap."""
        with np.errstate(invalid="ignore"):
            estu = self.weights > 0
            estu &= np.isfinite(self.weights)
            estu &= self.cap > 0
            estu &= np.isfinite(self.cap)
        return estu


@dataclass(frozen=True)
class CrossSection:
    """Steps 3 and 4 on a block of dates (:func:`cross_section_stage`).

    Attributes
    ----------
    sig_sh : ndarray (date, stock)
        Shrunk volatility ``sigma_SH`` (the blended ``sigma_hat`` when ``shrink == 0``).
    estu : ndarray (date, stock) bool
        The estimation universe (the VRA weights of the next date).
    complete : ndarray (date, stock) bool
        Complete style exposures.
    structural_scale : ndarray (date,)
        ``E0`` of each date's structural model.
    n_structural : ndarray (date,) int64
        Names in each date's structural regression.
    """

    sig_sh: np.ndarray
    estu: np.ndarray
    complete: np.ndarray
    structural_scale: np.ndarray
    n_structural: np.ndarray


def specific_variance(
    residuals: np.ndarray,
    exposures: Any,
    *,
    half_life: float = SPECIFIC_DEFAULTS["half_life"],
    lags: int = SPECIFIC_DEFAULTS["lags"],
    window: int | None = SPECIFIC_DEFAULTS["window"],
    min_obs: int = SPECIFIC_DEFAULTS["min_obs"],
    full_obs: int = SPECIFIC_DEFAULTS["full_obs"],
    blend: bool = SPECIFIC_DEFAULTS["blend"],
    shrink: float = SPECIFIC_DEFAULTS["shrink"],
    n_groups: int = SPECIFIC_DEFAULTS["n_groups"],
    structural_scale: str | float = SPECIFIC_DEFAULTS["structural_scale"],
    vra_half_life: float | None = SPECIFIC_DEFAULTS["vra_half_life"],
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
    inputs = specific_inputs(residuals, exposures)
    s = specific_settings(half_life=half_life, lags=lags, window=window, min_obs=min_obs, full_obs=full_obs,
                          blend=blend, shrink=shrink, n_groups=n_groups, structural_scale=structural_scale,
                          vra_half_life=vra_half_life)
    u = inputs.residuals
    bar = _progress_bar(progress)
    ts_var, n_obs, gamma = time_series_stage(u, s)
    _tick(bar, "time series")
    # with shrinkage sigma_TS^2 is not needed afterwards: sigma_hat is written over it
    cs = cross_section_stage(ts_var, n_obs, gamma, inputs, s, overwrite_ts_var=shrink != 0)
    if shrink != 0:
        ts_var = None
    _tick(bar, "structural model")
    _tick(bar, "shrinkage")
    lam = vra_stage(u, cs.sig_sh, inputs.cap, cs.estu, vra_half_life)
    _tick(bar, "VRA")
    var = final_variance(u, cs.sig_sh, ts_var, gamma, lam, shrink, cs.complete)
    if bar is not None:
        bar.close()
    return SpecificRiskResult(var=var, gamma=gamma, vra=lam, n_obs=n_obs, structural_scale=cs.structural_scale,
                              n_structural=cs.n_structural, settings=s)


# ---------------------------------------------------------------------------------------
# the stages (ndarrays in, ndarrays out), in their order: specific_variance runs them on
# whole arrays, riskmodel.models.chunked block by block (steps 1-2 by block of stocks,
# 3-4 and the final variance by block of dates, 5 as a (date,) series)
# ---------------------------------------------------------------------------------------


def time_series_stage(u: np.ndarray, settings: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1 and 2 on a block of stocks (every date): :func:`ts_stats` with the settings of
    :func:`specific_settings`."""
    s = settings
    return ts_stats(u, half_life=s["half_life"], lags=s["lags"], window=s["window"], min_obs=s["min_obs"],
                    full_obs=s["full_obs"], blend=s["blend"])


def cross_section_stage(ts_var: np.ndarray, h: np.ndarray, gamma: np.ndarray, inputs: SpecificInputs,
                        settings: dict[str, Any], *, overwrite_ts_var: bool = False) -> CrossSection:
    """Steps 3 and 4 on a block of dates (every stock): the structural model blended with the
    time series (:func:`structural_volatility`), then the shrinkage (:func:`shrink_volatility`).

    ``overwrite_ts_var`` writes the blended volatility over ``ts_var`` (one (T, N) array
    less when ``sigma_TS^2`` is not needed afterwards).
    """
    complete = np.empty(ts_var.shape, np.bool_)
    sig_hat, e0, nfit = structural_volatility(
        ts_var, h, gamma, inputs.styles, inputs.industry, inputs.n_industries, inputs.weights, inputs.cap,
        min_obs=settings["min_obs"], structural_scale=settings["structural_scale"], blend=True,
        complete=complete, out=ts_var if overwrite_ts_var else None,
    )
    estu = inputs.estu
    sig_sh = shrink_volatility(sig_hat, inputs.cap, estu, n_groups=settings["n_groups"], q=settings["shrink"])
    return CrossSection(sig_sh=sig_sh, estu=estu, complete=complete, structural_scale=e0, n_structural=nfit)


def ts_stats(u: np.ndarray, *, half_life: float, lags: int, window: int, min_obs: int = 60,
             full_obs: int = 180, blend: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1 and 2: sigma_TS^2 (T, N), h (T, N) int32 and gamma (T, N) from the kernel (the
    robust statistic Z only enters through gamma, so the kernel does not write it out)."""
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
    """Step 3: structural volatility (T, N), E0 (T,) and fit counts (T,) from the kernel.

    With ``blend`` the first array is the blended volatility
    ``sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR`` instead (the kernel blends each
    name as it predicts it, using only the terms with weight). ``complete`` (T, N)
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


def vra_stage(u: np.ndarray, sig: np.ndarray, cap: np.ndarray, estu: np.ndarray,
              half_life: float | None) -> np.ndarray:
    """Step 5, lambda_S (T,): sqrt of the EWMA of the cap-weighted mean squared standardised
    residual (:func:`vra_b2_rows`, then :func:`vra_multiplier`).

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
    from scipy.signal import lfilter  # imported here: scipy.signal takes about a second to import

    num = lfilter([1.0], [1.0, -a], np.where(have, b2, 0.0))
    den = lfilter([1.0], [1.0, -a], have.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        lam2 = num / den
    return np.where(den > 0, np.sqrt(lam2), 1.0)


# ---------------------------------------------------------------------------------------
# validation and helpers
# ---------------------------------------------------------------------------------------


def specific_inputs(residuals: Any, exposures: Any) -> SpecificInputs:
    """Check the shapes and values of :func:`specific_variance`'s inputs; the arrays it computes on.

    Raises
    ------
    DimensionError
        ``residuals`` is not a 2-D float array, or an exposure array does not match it.
    NonFiniteError
        An infinite residual (named by stock and date when ``exposures`` has ``stocks``
        and ``dates``).
    """
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
    labels = [("date", getattr(exposures, "dates", None)), ("stock", getattr(exposures, "stocks", None))]
    reject_infinite(u, "residuals", labels, hint="use NaN for a missing return")
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
    return SpecificInputs(residuals=np.ascontiguousarray(u, dtype=np.float64), styles=styles, industry=industry,
                          n_industries=n_industries, weights=arrays["weights"], cap=arrays["cap"])


def specific_settings(**settings: Any) -> dict[str, Any]:
    """:func:`specific_variance`'s settings, defaults filled in, checked, with the window resolved.

    Each setting is checked against :data:`~riskmodel.covariance.settings.SPECIFIC_PARAMETERS`,
    then ``window > lags + 1`` and ``min_obs < full_obs``; ``window=None`` becomes
    ``max(round(3 * half_life), lags + 2)``.

    Raises
    ------
    InvalidParameterError
        Naming the first setting out of range (or an unknown name).
    """
    unknown = sorted(set(settings) - set(SPECIFIC_DEFAULTS))
    if unknown:
        raise InvalidParameterError(
            f"specific_variance: unknown setting(s) {unknown}; accepted: {', '.join(SPECIFIC_DEFAULTS)}"
        )
    s = {**SPECIFIC_DEFAULTS, **settings}
    check_parameters("specific_variance", SPECIFIC_PARAMETERS, s)
    lags, window = s["lags"], s["window"]
    if window is None:
        window = max(int(round(3 * s["half_life"])), int(lags) + 2)
    if window <= lags + 1:
        raise InvalidParameterError(
            f"specific_variance: window={window!r} is invalid; expected an integer > lags + 1 = {lags + 1} "
            "(None for 3 x half_life)"
        )
    if s["min_obs"] >= s["full_obs"]:
        raise InvalidParameterError(
            f"specific_variance: min_obs={s['min_obs']!r} is invalid; expected an integer below "
            f"full_obs={s['full_obs']!r} (gamma ramps from 0 at min_obs to 1 at full_obs)"
        )
    s["window"] = int(window)
    return s


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
