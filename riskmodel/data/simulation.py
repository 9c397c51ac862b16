"""Simulated panels with known truth: ``rm.simulate``.

The world (``lag = 1``: exposures at the close of t-1 explain the returns of t)::

    r_{n,t} = f_market,t + f_ind(n),t + sum_s z_{n,s,t-1} f_s,t + sum_h L_{n,h} f_h,t
              [+ p_t g~_{n,t-1}]  (spend=True)  + u_{n,t}

* ``f`` are stationary Gaussian factor returns (optionally scaled by volatility regimes),
  stored in the **constrained** parameterisation ``sum_p c_{p,t} f_{p,t} = 0`` with
  ``c_{p,t}`` = cap weight (caps at t-1) of industry p among the stocks that have a return
  on day t: the same constraint the cross-sectional regression imposes, so a noise-free
  world is recovered exactly.
* ``z`` are the true style exposures, built so that ``rm.clean(raw, cap=market_cap)`` returns
  them exactly (see :func:`simulate`, Notes).
* ``u`` are Student-t (or Gaussian) specific returns with lognormal vols that fall with size.

Everything is vectorised over stocks and dates (AR(1) recursions by ``scipy.signal.lfilter``,
group sums by ``np.bincount``); the only Python loops run over styles, hidden factors and
a few standardisation passes. Industries are integer codes throughout: no dense
(date, stock, factor) cube of dummies is ever formed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from riskmodel.data._simulation_settings import _Settings, _settings
from riskmodel.data._simulation_world import (  # noqa: F401  (_ar1 is imported from here by tests)
    _CAP_LEVEL,
    _SIZE_COMPRESS,
    _SPECIFIC_BOUND,
    _SPEND_LAG,
    _SPEND_MIN_PERIODS,
    _SPEND_WINDOW,
    _STYLE_COMPRESS,
    _ar1,
    _assign_industries,
    _bounded_standardise,
    _compress,
    _factor_covariance,
    _industry_weights,
    _lifetimes,
    _resolve_hidden,
    _specific_shocks,
    _spend_block,
    _stock_ids,
)
from riskmodel.errors import InvalidParameterError

__all__ = ["simulate"]

# ------------------------------------------------------------------------ public
def simulate(
    n_stocks: int = 500,
    n_days: int = 750,
    seed: int = 0,
    *,
    n_industries: int = 10,
    styles: Sequence[str] = ("size", "value", "momentum"),
    hidden: int | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    listing_rate: float = 0.1,
    delisting_rate: float = 0.1,
    missing_rate: float = 0.005,
    regimes: Sequence[tuple[int, float]] | None = None,
    regime_specific: bool = False,
    spend: bool | Mapping[str, float] = False,
    spend_premium: float = 0.05,
    start: str = "2015-01-02",
    dtype: Any = np.float64,
    specific_scale: float = 1.0,
    specific_tails: str = "t",
    t_dof: float = 5.0,
    market_vol: float = 0.01,
    industry_vol: float = 0.005,
    style_vol: float = 0.003,
    specific_vol_median: float = 0.02,
    size_dispersion: float = 1.5,
    style_persistence: float = 0.998,
    min_industry_size: int = 12,
) -> xr.Dataset:
    """Simulate a daily equity panel whose factor structure is known exactly.

    Parameters
    ----------
    n_stocks, n_days : int
        Panel size. ``n_stocks >= min_industry_size * n_industries``.
    seed : int
        Seed of ``np.random.default_rng``; the same arguments and seed give an identical panel.
    n_industries : int, default 10
        Industries ``"IND00"``, ``"IND01"``, ... with uneven (Dirichlet) sizes.
    styles : sequence of str, default ("size", "value", "momentum")
        Style characteristics, one raw (date, stock) variable each. ``"size"`` is special:
        its raw variable is ``ln(market_cap)`` exactly. Any other name is a generic style.
    hidden : int, dict or list of dict, optional
        Factors that drive returns but are not characteristics. Each dict may hold
        ``name`` (default ``"hidden<i>"``), ``n_members`` (default ``min(100, n_stocks // 5)``)
        or ``members`` (stock ids), ``vol`` (daily, default 0.01) and either ``loading``
        (the same loading for every member) or ``corr`` (default 0.15): the target mean
        within-block correlation of specific + hidden returns. ``hidden=k`` gives k default
        factors.
    listing_rate, delisting_rate : float, default 0.1
        Fraction of stocks that list after day 0 / delist before the last day (each listed
        for >= min(60, n_days // 3) days). Outside its listing a stock is NaN in every variable.
    missing_rate : float, default 0.005
        Probability of a missing return on a listed day (a halt / data gap). On such days
        market cap and characteristics stay known; only the return is NaN.
    regimes : list of (start_index, multiplier), optional
        From row ``start_index`` on, every factor volatility is multiplied by ``multiplier``
        (piecewise constant; later entries override). ``regime_specific=True`` applies the same
        multipliers to specific volatilities.
    spend : bool or dict, default False
        Add daily card spending (``spend``) and its priced signal; a dict overrides the
        settings ``premium_vol``, ``size_corr``, ``coverage``, ``gap_rate``, ``growth_mean``,
        ``growth_sd``, ``noise_sd``.
    spend_premium : float, default 0.05
        Mean annual premium of the neutralised spend signal (per unit exposure).
    start : str, default "2015-01-02"
        First date; dates are business days.
    dtype : numpy float dtype, default float64
        dtype of the float variables (exact identities hold to 1e-12 only for float64).
    specific_scale : float, default 1.0
        Multiplies every specific volatility; 0 gives a noise-free world (returns are exactly
        the structured sum).
    specific_tails : {"t", "gaussian"}
        Student-t with ``t_dof`` degrees of freedom scaled to unit variance, or Gaussian.
        The specific return ``u`` (shock times vol) is truncated at ``+-50%`` a day, so a
        simple return stays above -100% even for the t tails of a large panel (a 40-sigma
        t(5) draw occurs about once in 5,000 x 2,520 cells).
    t_dof : float, default 5
    market_vol, industry_vol, style_vol : float
        Typical daily factor vols (industry and style vols are spread by x[0.7, 1.4] / x[0.7, 1.3]).
    specific_vol_median : float, default 0.02
        Median daily specific vol; ``ln sigma_n`` has sd 0.4 and correlation -0.6 with the
        initial size latent.
    size_dispersion : float, default 1.5
        ``b`` in ``ln cap = A_t + b u_size`` (cross-sectional sd of ln cap ~ 1.1).
    style_persistence : float, default 0.998
        Daily AR(1) coefficient of the non-size style latents (stability over 21 days ~ 0.96).
    min_industry_size : int, default 12
        Every industry has at least this many members listed and with a return every day
        t >= 1 (these anchors list on day 0, never delist and are never halted). The default
        keeps the √cap-weighted effective member count ``(Σv)²/Σv²`` above the regression's
        thin-industry threshold of 5 on almost every day.

    Returns
    -------
    xr.Dataset
        Dims ``date``, ``stock``, ``style``, ``true_factor``, ``true_factor_``, ``hidden``.

        * ``returns`` (date, stock): NaN on day 0, on a stock's listing day (no previous
          close), outside its listing and on missing days.
        * ``market_cap`` (date, stock), ``industry`` (stock) str labels.
        * one raw variable per style (date, stock), names in ``attrs["styles"]``.
        * ``spend`` (date, stock) when ``spend`` is requested.
        * ``true_style_exposures`` (date, stock, style): z, unlagged (row t = close of t).
        * ``true_factor_returns`` (date, true_factor): ``["market", *industries, *styles,
          *hidden]``, industries in the constrained parameterisation.
        * ``true_factor_cov`` (true_factor, true_factor_): covariance of the constrained
          factor returns at multiplier 1, averaged over dates (the constraint weights c_t
          drift slowly with caps).
        * ``true_factor_vol_multiplier`` (date): the regime multiplier of factor vols.
        * ``true_specific_var`` (date, stock): variance of u (varies only with regimes).
        * ``true_hidden_loadings`` (stock, hidden): L, zero for non-members.
        * with spend: ``true_spend_exposure`` (date, stock) g~ and ``true_spend_premium``
          (date) p_t.

    Raises
    ------
    InvalidParameterError
        A setting out of range (named in the message).

    Notes
    -----
    **Style exposures.** Each non-size style has a latent ``x = rho_k x_size + sqrt(1-rho_k^2) e``
    (``e`` a unit AR(1), ``rho_k`` ~ U(-0.35, 0.35) recorded in ``attrs``). Per date, over the
    listed stocks, ``z = (x - sum_n h_n x_n) / std_eq(x)`` with ``h`` the cap weights of that
    date and ``std_eq`` the population (ddof=0) standard deviation about the equal-weighted mean;
    so ``sum_n h_n z_n = 0`` and ``std_eq(z) = 1`` exactly. A date on which some ``|z|`` would reach
    2.95 is compressed (``x <- z / sqrt(1 + (z/2)^2)``) and standardised again (counted in
    ``attrs["rows_compressed"]``), so ``|z| < 2.95`` everywhere and cleaning never winsorises.
    The raw characteristic is ``a_k + b_k z`` (``b_k > 0``, constants in ``attrs``). Hence
    ``rm.clean(raw, cap=market_cap)`` returns ``z`` provided it uses that same standardisation.

    **Size and market cap.** ``x_size`` is a unit AR(1) (``phi ~ 0.99989``) whose innovations
    are the stock's own standardised returns excluding the style and spend terms (including
    them would make the simulation recursive), so caps drift with returns and size moves
    slowly. ``u = x / sqrt(1 + (x/c)^2)`` (c = 1 below 0, 2.5 above: a bounded, right-skewed
    ln cap),
    ``ln cap = A_t + b u`` with ``A_t`` = a level plus the cumulative log market return; the
    raw ``size`` is ``ln(market_cap)`` and ``z_size`` its standardisation as above.

    **Industry constraint.** Returns are generated from unconstrained market ``m`` and
    industry returns ``g``; the stored truth is ``f_market = m + c_t.g``,
    ``f_p = g_p - c_t.g`` with ``c_t`` as in the module docstring: the returns are identical
    and ``sum_p c_p,t f_p,t = 0``.

    **Hidden factors.** With ``corr``, member loadings are ``L_n = sigma_n sqrt(rho/(1-rho))/vol``
    (``sigma_n`` at ``specific_scale=1``), so every within-block pair of specific + hidden
    returns has correlation ``vol^2 L^2 / (vol^2 L^2 + sigma^2) = rho`` (at multiplier 1).

    **Spend.** Log spend = level + cumulative latent growth (annual growth ``y = growth_mean +
    growth_sd (size_corr x_size + sqrt(1-size_corr^2) w)``, ``w`` a persistent AR(1)) +
    seasonality with a 252-row period + day-of-week effect + noise; missing for uncovered
    stocks and on random gap days. The signal ``g = rm.yoy_log_growth(spend)`` (window 90,
    lag 252, min_periods 68) is NaN for the first 319 rows of a stock's history (the first
    value uses a shortened 68-day window; full 90-day windows from row 341). It is cleaned
    (cap-weighted mean 0 / eq std 1, clip at +-3, standardised again) and neutralised per date
    by sqrt(cap)-weighted least squares on industry dummies and ``z_size`` (stocks with a
    signal): the residual is ``g~`` (``true_spend_exposure``). Returns add ``p_t g~_{t-1}``
    (zero for stocks without a signal), ``p_t ~ N(spend_premium/252, premium_vol^2/252)``.

    Examples
    --------
    >>> import riskmodel as rm
    >>> panel = rm.simulate(n_stocks=60, n_days=30, seed=1, n_industries=4)
    >>> panel.attrs["styles"]
    ['size', 'value', 'momentum']
    >>> panel["returns"].dims, panel["true_factor_returns"].sizes["true_factor"]
    (('date', 'stock'), 8)
    """
    s = _settings(
        dict(n_stocks=n_stocks, n_days=n_days, n_industries=n_industries, min_industry_size=min_industry_size,
             seed=seed, listing_rate=listing_rate, delisting_rate=delisting_rate, missing_rate=missing_rate,
             specific_scale=specific_scale, specific_tails=specific_tails, t_dof=t_dof, market_vol=market_vol,
             industry_vol=industry_vol, style_vol=style_vol, specific_vol_median=specific_vol_median,
             size_dispersion=size_dispersion, style_persistence=style_persistence, spend_premium=spend_premium),
        styles=styles, regimes=regimes, regime_specific=regime_specific, spend=spend, start=start, dtype=dtype,
    )
    # the steps take their random draws in this order: the same seed gives the same panel
    rng = np.random.default_rng(s.seed)
    world = _universe(rng, s)
    _specific_vols(rng, s, world, hidden)
    _factor_returns(rng, s, world)
    _non_style_returns(rng, s, world)
    _size_and_caps(s, world)
    _styles(rng, s, world)
    if s.spend:
        _spend(rng, s, world)
    world.r[~world.has_ret] = np.nan
    _constrained_truth(s, world)
    return _dataset(s, world)


# ------------------------------------------------------------------------ steps
class _World:
    """The arrays the steps of :func:`simulate` build, in the order they build them."""

    stocks: np.ndarray
    codes: np.ndarray  # industry code of each stock
    labels: list[str]  # industry labels
    first: np.ndarray  # first and last listed row of each stock
    last: np.ndarray
    alive: np.ndarray  # (T, N) listed
    halted: np.ndarray  # (T, N) a missing return on a listed day
    has_ret: np.ndarray  # (T, N) a return on day t
    x0_size: np.ndarray  # initial size latent
    hidden_specs: list[dict[str, Any]]
    loadings: np.ndarray  # (N, H) hidden-factor loadings
    sigma: np.ndarray  # specific vols at multiplier 1
    cov_gen: np.ndarray  # generating factor covariance (market, industries, styles, hidden)
    vol_mult: np.ndarray  # (T,) factor-vol regime multiplier
    spec_mult: np.ndarray  # (T,) specific-vol regime multiplier
    F: np.ndarray  # (T, m) unconstrained factor returns
    r: np.ndarray  # (T, N) returns, completed step by step
    x_size: np.ndarray  # size latent
    z_size: np.ndarray  # true size exposure
    phi_size: float
    log_cap: np.ndarray
    cap: np.ndarray
    Z: np.ndarray  # (T, N, K) true style exposures
    raw: dict[str, np.ndarray]  # raw style characteristics
    style_size_corr: list[float]
    style_affine: dict[str, list[float]]
    rows_compressed: dict[str, int]
    spend_panel: np.ndarray
    g_tilde: np.ndarray
    p_spend: np.ndarray
    f_true: np.ndarray  # constrained factor returns
    cov_true: np.ndarray  # their covariance at multiplier 1


def _universe(rng: np.random.Generator, s: _Settings) -> _World:
    """Stock ids, industries (with their anchors), listings, halts and the return mask."""
    w = _World()
    T, N = s.T, s.N
    w.stocks = _stock_ids(N)
    w.codes, anchor, w.labels = _assign_industries(rng, N, s.P, s.min_size)
    if set(s.style_names) & set(w.labels):
        raise InvalidParameterError(f"simulate: style names {s.style_names} clash with industry labels.")
    w.first, w.last = _lifetimes(rng, T, N, anchor, s.listing_rate, s.delisting_rate)
    t_idx = np.arange(T)
    w.alive = (t_idx[:, None] >= w.first[None, :]) & (t_idx[:, None] <= w.last[None, :])
    w.halted = (rng.random((T, N)) < s.missing_rate) & w.alive & ~anchor[None, :]
    w.has_ret = np.zeros((T, N), dtype=bool)
    w.has_ret[1:] = w.alive[1:] & w.alive[:-1] & ~w.halted[1:]
    return w


def _specific_vols(rng: np.random.Generator, s: _Settings, w: _World, hidden: Any) -> None:
    """Specific vols (falling with the initial size latent) and the hidden factors' loadings."""
    w.x0_size = rng.standard_normal(s.N)
    base_sigma = s.specific_vol_median * np.exp(
        0.4 * (-0.6 * w.x0_size + 0.8 * rng.standard_normal(s.N))
    )
    w.hidden_specs, w.loadings = _resolve_hidden(
        hidden, rng, s.N, w.stocks, base_sigma, {"market", *w.labels, *s.style_names}
    )
    w.sigma = base_sigma * s.specific_scale


def _factor_returns(rng: np.random.Generator, s: _Settings, w: _World) -> None:
    """Gaussian factor returns (market, industries, styles, hidden), scaled by the regimes."""
    w.cov_gen = _factor_covariance(
        rng, s.P, s.K, np.array([h["vol"] for h in w.hidden_specs]), s.market_vol, s.industry_vol, s.style_vol
    )
    m = w.cov_gen.shape[0]
    w.vol_mult = np.ones(s.T)
    for s0, mult in s.regimes:
        w.vol_mult[s0:] = mult
    w.spec_mult = w.vol_mult if s.regime_specific else np.ones(s.T)
    chol = np.linalg.cholesky(w.cov_gen + 1e-300 * np.eye(m)) if m else np.zeros((0, 0))
    w.F = (rng.standard_normal((s.T, m)) @ chol.T) * w.vol_mult[:, None]


def _non_style_returns(rng: np.random.Generator, s: _Settings, w: _World) -> None:
    """Specific returns (truncated at ±50%) plus the market, industry and hidden terms."""
    P, K = s.P, s.K
    r = _specific_shocks(rng, (s.T, s.N), s.specific_tails, s.t_dof)
    r *= w.sigma[None, :]
    r *= w.spec_mult[:, None]
    np.clip(r, -_SPECIFIC_BOUND, _SPECIFIC_BOUND, out=r)
    r += w.F[:, 0][:, None]
    r += w.F[:, 1 + w.codes]
    for h in range(len(w.hidden_specs)):
        r += np.outer(w.F[:, 1 + P + K + h], w.loadings[:, h])
    w.r = r


def _size_and_caps(s: _Settings, w: _World) -> None:
    """The size latent (driven by the non-style returns), its true exposure and the caps."""
    P, K, codes, cov_gen = s.P, s.K, w.codes, w.cov_gen
    hid_var = np.diag(cov_gen)[1 + P + K:]
    sd_ns = np.sqrt(
        cov_gen[0, 0] + cov_gen[1 + codes, 1 + codes] + 2.0 * cov_gen[0, 1 + codes]
        + (w.loadings**2) @ hid_var + w.sigma**2
    )
    kappa_size = min(0.02 / s.size_dispersion, 0.5)
    w.phi_size = math.sqrt(1.0 - kappa_size**2)
    w.x_size = _ar1(w.r / sd_ns[None, :], w.phi_size, kappa_size, w.x0_size)
    level = _CAP_LEVEL + np.cumsum(np.log1p(np.maximum(w.F[:, 0], -0.99)))
    b = s.size_dispersion
    alive = w.alive

    def size_weights(u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        expo = np.where(alive[rows], b * u, -np.inf)
        expo -= expo.max(axis=1, keepdims=True)
        return np.exp(expo, out=expo)

    u_size = _compress(w.x_size, *_SIZE_COMPRESS)
    w.z_size, size_rows_compressed = _bounded_standardise(
        u_size, alive, size_weights, "size", keep_u=True
    )
    w.rows_compressed = {"size": size_rows_compressed}
    log_cap = u_size
    log_cap *= b
    log_cap += level[:, None]
    log_cap[~alive] = np.nan
    w.cap = np.exp(log_cap)
    np.log(w.cap, out=log_cap)  # raw size is ln(market_cap) to the last bit
    w.log_cap = log_cap


def _styles(rng: np.random.Generator, s: _Settings, w: _World) -> None:
    """True exposures and raw characteristics of every style, and their return terms."""
    T, N, K, P = s.T, s.N, s.K, s.P
    capw = np.nan_to_num(w.cap, nan=0.0)
    w.Z = np.empty((T, N, K))
    w.raw = {}
    w.style_size_corr = []
    w.style_affine = {}
    kappa_style = math.sqrt(1.0 - s.style_persistence**2)
    buf = np.empty((T - 1, N))
    for k, name in enumerate(s.style_names):
        if name == "size":
            z = w.z_size
            w.raw[name] = w.log_cap
            w.style_size_corr.append(1.0)
        else:
            rho = float(rng.uniform(-0.35, 0.35))
            innov = rng.standard_normal((T, N), dtype=np.float32)
            e = _ar1(innov, s.style_persistence, kappa_style, rng.standard_normal(N))
            del innov
            e *= math.sqrt(1.0 - rho**2)
            np.multiply(w.x_size[1:], rho, out=buf)
            e[1:] += buf
            e[0] += rho * w.x_size[0]
            _compress(e, _STYLE_COMPRESS, _STYLE_COMPRESS, inplace=True)
            z, n_comp = _bounded_standardise(
                e, w.alive, lambda u, rows: capw[rows], name, keep_u=False
            )
            a_k, b_k = float(rng.uniform(-1.0, 1.0)), float(rng.uniform(0.5, 2.0))
            w.raw[name] = z * b_k
            w.raw[name] += a_k
            w.style_size_corr.append(rho)
            w.style_affine[name] = [a_k, b_k]
            w.rows_compressed[name] = n_comp
        w.Z[:, :, k] = z
        np.multiply(z[:-1], w.F[1:, 1 + P + k][:, None], out=buf)
        w.r[1:] += buf
        del z


def _spend(rng: np.random.Generator, s: _Settings, w: _World) -> None:
    """Card spending, its neutralised signal and the premium it earns in the returns."""
    w.spend_panel, _, w.g_tilde, w.p_spend = _spend_block(
        rng, s.spend_opts, s.spend_premium, w.alive, w.x_size, w.z_size, w.cap, w.codes, s.P, s.dates
    )
    w.r[1:] += w.p_spend[1:, None] * np.nan_to_num(w.g_tilde[:-1], nan=0.0)


def _constrained_truth(s: _Settings, w: _World) -> None:
    """Factor returns in the constrained parameterisation and their mean covariance."""
    T, N, P = s.T, s.N, s.P
    cov_gen = w.cov_gen
    m = cov_gen.shape[0]
    onehot = np.zeros((N, P))
    onehot[np.arange(N), w.codes] = 1.0
    c = _industry_weights(w.cap, w.has_ret, w.alive, onehot)
    cg = (c * w.F[:, 1:1 + P]).sum(axis=1)
    f_true = w.F.copy()
    f_true[:, 0] += cg
    f_true[:, 1:1 + P] -= cg[:, None]
    # mean_t A_t S A_t' with A_t = I + v c~_t', v = e_market - 1_industries
    v = np.zeros(m)
    v[0], v[1:1 + P] = 1.0, -1.0
    c_emb = np.zeros((T, m))
    c_emb[:, 1:1 + P] = c
    c_rows = c_emb[1:] if T > 1 else c_emb
    c_bar = c_rows.mean(axis=0)
    q_bar = np.einsum("ti,ij,tj->", c_rows, cov_gen, c_rows) / c_rows.shape[0]
    sc = cov_gen @ c_bar
    cov_true = cov_gen + np.outer(sc, v) + np.outer(v, sc) + q_bar * np.outer(v, v)
    w.f_true = f_true
    w.cov_true = 0.5 * (cov_true + cov_true.T)


def _dataset(s: _Settings, w: _World) -> xr.Dataset:
    """The labelled panel: observed variables, the truth (``true_*``) and the settings as attrs."""
    dtype = s.dtype
    hidden_names = [h["name"] for h in w.hidden_specs]
    factor_names = ["market", *w.labels, *s.style_names, *hidden_names]
    spec_var = np.where(w.alive, (w.sigma[None, :] * w.spec_mult[:, None]) ** 2, np.nan)
    ds_vars: dict[str, Any] = {
        "returns": (("date", "stock"), w.r.astype(dtype, copy=False)),
        "market_cap": (("date", "stock"), w.cap.astype(dtype, copy=False)),
        "industry": (("stock",), np.array(w.labels)[w.codes]),
    }
    for name in s.style_names:
        ds_vars[name] = (("date", "stock"), w.raw[name].astype(dtype, copy=False))
    if s.spend:
        ds_vars["spend"] = (("date", "stock"), w.spend_panel.astype(dtype, copy=False))
    ds_vars.update({
        "true_style_exposures": (("date", "stock", "style"), w.Z.astype(dtype, copy=False)),
        "true_factor_returns": (("date", "true_factor"), w.f_true.astype(dtype, copy=False)),
        "true_factor_cov": (("true_factor", "true_factor_"), w.cov_true.astype(dtype, copy=False)),
        "true_factor_vol_multiplier": (("date",), w.vol_mult.astype(dtype, copy=False)),
        "true_specific_var": (("date", "stock"), spec_var.astype(dtype, copy=False)),
        "true_hidden_loadings": (("stock", "hidden"), w.loadings.astype(dtype, copy=False)),
    })
    if s.spend:
        ds_vars["true_spend_exposure"] = (("date", "stock"), w.g_tilde.astype(dtype, copy=False))
        ds_vars["true_spend_premium"] = (("date",), w.p_spend.astype(dtype, copy=False))
    return xr.Dataset(
        ds_vars,
        coords={
            "date": s.dates.values.astype("datetime64[ns]"),
            "stock": w.stocks,
            "style": np.array(s.style_names, dtype=str),
            "true_factor": np.array(factor_names, dtype=str),
            "true_factor_": np.array(factor_names, dtype=str),
            "hidden": np.array(hidden_names, dtype=str),
        },
        attrs=_attrs(s, w, hidden_names),
    )


def _attrs(s: _Settings, w: _World, hidden_names: list[str]) -> dict[str, Any]:
    """The panel's attributes: the settings, the realised rates and the constants of the truth."""
    n_alive = w.alive.sum()
    T = s.T
    return {
        "description": _description(s.spend),
        "styles": list(s.style_names),
        "seed": s.seed,
        "n_stocks": s.N,
        "n_days": T,
        "n_industries": s.P,
        "industry_labels": list(w.labels),
        "hidden": json.dumps(w.hidden_specs),
        "hidden_names": list(hidden_names),
        "listing_rate": s.listing_rate,
        "delisting_rate": s.delisting_rate,
        "missing_rate": s.missing_rate,
        "realised_listing_fraction": float((w.first > 0).mean()),
        "realised_delisting_fraction": float((w.last < T - 1).mean()),
        "realised_missing_fraction": float(w.halted.sum() / max(n_alive, 1)),
        "regimes": json.dumps(s.regimes),
        "regime_specific": int(bool(s.regime_specific)),
        "spend": int(s.spend),
        "spend_premium": s.spend_premium,
        "spend_settings": json.dumps(s.spend_opts),
        "spend_signal": json.dumps({"window": _SPEND_WINDOW, "lag": _SPEND_LAG,
                                    "min_periods": _SPEND_MIN_PERIODS}),
        "start": str(s.dates[0].date()),
        "dtype": s.dtype.name,
        "specific_scale": s.specific_scale,
        "specific_tails": s.specific_tails,
        "t_dof": s.t_dof,
        "market_vol": s.market_vol,
        "industry_vol": s.industry_vol,
        "style_vol": s.style_vol,
        "specific_vol_median": s.specific_vol_median,
        "size_dispersion": s.size_dispersion,
        "size_persistence": w.phi_size,
        "style_persistence": s.style_persistence,
        "style_size_corr": w.style_size_corr,
        "style_affine": json.dumps(w.style_affine),
        "rows_compressed": json.dumps(w.rows_compressed),
        "min_industry_size": s.min_size,
        "lag": 1,
        "industry_constraint": "sum_p c_p,t f_p,t = 0, c_p,t = cap weight (caps at t-1) of "
                               "industry p among stocks with a return on day t",
    }


def _description(spend: bool) -> str:
    text = (
        "Simulated daily equity panel with known truth (riskmodel.simulate). "
        "r_t = f_market,t + f_ind(n),t + sum_s z_{n,s,t-1} f_s,t + sum_h L_{n,h} f_h,t + u_{n,t}"
    )
    if spend:
        text += " + p_t g~_{n,t-1}"
    text += (
        ". Exposures are unlagged (row t = close of t); industry factor returns satisfy "
        "sum_p c_p,t f_p,t = 0 with c_p,t the cap weight (caps at t-1) of industry p among "
        "stocks with a return on t. true_style_exposures = rm.clean(raw, cap=market_cap): "
        "cap-weighted mean 0, equal-weighted std (ddof 0) 1, |z| < 2.95. Specific returns: "
        "unit-variance Student-t (or Gaussian) times sigma_n; true_specific_var = sigma_n^2. "
        "Variables starting with true_ are the truth."
    )
    return text
