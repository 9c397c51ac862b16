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
import pandas as pd
import scipy.linalg
import scipy.signal
import xarray as xr

from riskmodel.errors import InvalidParameterError
from riskmodel.data.flows import yoy_log_growth_array

__all__ = ["simulate"]

_RESERVED = {"returns", "market_cap", "industry", "spend", "market"}
_Z_MAX = 2.95  # every true style exposure satisfies |z| < _Z_MAX < 3 (no winsorising)
_SIZE_COMPRESS = (1.0, 2.5)  # compression x/sqrt(1+(x/c)^2) of the size latent: (left, right) c
_STYLE_COMPRESS = 2.0  # fallback compression of rows that would breach _Z_MAX
_SPECIFIC_BOUND = 0.5  # |u| <= 50% a day: heavy t tails never push a simple return below -100%
_CAP_LEVEL = math.log(2.0e9)
_AR1_MAX_GAIN = 1e4  # largest phi^-j inside one block of the AR(1) cumulative sum  # cap-weighted typical market cap, USD
_SPEND_WINDOW, _SPEND_LAG, _SPEND_MIN_PERIODS = 90, 252, 68
_SPEND_DEFAULTS: dict[str, float] = {
    "premium_vol": 0.03,  # annualised sd of the daily spend premium p_t
    "size_corr": -0.40,  # corr of the latent growth rate with the size latent
    "coverage": 0.8,  # fraction of stocks with card-spending data
    "gap_rate": 0.02,  # probability that a covered stock-day is missing
    "growth_mean": 0.04,  # mean annual spend growth
    "growth_sd": 0.15,  # cross-sectional sd of annual spend growth
    "noise_sd": 0.2,  # daily log-spend noise
}


# ------------------------------------------------------------------------ validation
def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidParameterError(f"simulate: {name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, *, open_high: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"simulate: {name} must be a number, got {value!r}.") from None
    ok = low <= v < high if open_high else low <= v <= high
    if not (math.isfinite(v) and ok):
        bracket = ")" if open_high else "]"
        raise InvalidParameterError(
            f"simulate: {name} must lie in [{low}, {high}{bracket}, got {value!r}."
        )
    return v


def _check_styles(styles: Sequence[str]) -> tuple[str, ...]:
    if isinstance(styles, str):
        styles = (styles,)
    names = tuple(styles)
    for s in names:
        if not isinstance(s, str) or not s or s in _RESERVED or s.startswith("true_"):
            raise InvalidParameterError(
                f"simulate: style name {s!r} is not allowed (names must be non-empty str, not "
                f"one of {sorted(_RESERVED)} and not start with 'true_')."
            )
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"simulate: styles {names} hold duplicates; give each style once.")
    return names


def _check_regimes(regimes: Any, n_days: int) -> list[tuple[int, float]]:
    if regimes is None:
        return []
    out = []
    for item in regimes:
        try:
            start, mult = item
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"simulate: each regime must be (start_index, multiplier), got {item!r}."
            ) from None
        start = _check_int("regime start_index", start, 0)
        if start >= n_days:
            raise InvalidParameterError(
                f"simulate: regime start_index {start} is beyond the last day (n_days={n_days})."
            )
        out.append((start, _check_float("regime multiplier", mult, 1e-6, 1e6)))
    return sorted(out)


# ------------------------------------------------------------------------ structure
def _stock_ids(n: int) -> np.ndarray:
    width = max(4, len(str(n - 1)))
    return np.array([f"S{i:0{width}d}" for i in range(n)])


def _assign_industries(
    rng: np.random.Generator, n_stocks: int, n_industries: int, min_size: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Uneven (Dirichlet) industry sizes, each >= min_size; the first min_size members are anchors."""
    probs = rng.dirichlet(np.full(n_industries, 1.0))
    extra = rng.multinomial(n_stocks - min_size * n_industries, probs)
    sizes = min_size + extra
    perm = rng.permutation(n_stocks)
    codes = np.empty(n_stocks, dtype=np.int32)
    codes[perm] = np.repeat(np.arange(n_industries, dtype=np.int32), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    anchor = np.zeros(n_stocks, dtype=bool)
    anchor[perm[(starts[:, None] + np.arange(min_size)[None, :]).ravel()]] = True
    labels = [f"IND{p:02d}" for p in range(n_industries)]
    return codes, anchor, labels


def _lifetimes(
    rng: np.random.Generator, T: int, N: int, anchor: np.ndarray, listing_rate: float, delisting_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """First and last listed row of each stock (anchors are listed throughout)."""
    min_life = max(2, min(60, T // 3))
    first = np.zeros(N, dtype=np.int64)
    last = np.full(N, T - 1, dtype=np.int64)
    u_list, u_del, u_day1, u_day2 = rng.random((4, N))
    if T - 1 - 2 * min_life < 1:  # too short a panel for listings and delistings
        return first, last
    lists = (u_list < listing_rate) & ~anchor
    delists = (u_del < delisting_rate) & ~anchor
    first[lists] = 1 + np.floor(u_day1[lists] * (T - 1 - 2 * min_life)).astype(np.int64)
    room = T - 1 - (first + min_life)
    last[delists] = (first + min_life + np.floor(u_day2 * room).astype(np.int64))[delists]
    return first, last


def _factor_covariance(
    rng: np.random.Generator, P: int, K: int, hidden_vols: np.ndarray, market_vol: float,
    industry_vol: float, style_vol: float,
) -> np.ndarray:
    """Generating covariance of (market, industries, styles, hidden): D C D, C = QQ' + diag."""
    H = hidden_vols.size
    m = 1 + P + K + H
    ind, sty = slice(1, 1 + P), slice(1 + P, 1 + P + K)
    q = np.zeros((m, 3))
    q[0, 0] = 0.6
    q[ind, 0] = rng.uniform(0.3, 0.6, P)  # macro: industries co-move with the market
    q[ind, 1] = rng.uniform(-0.4, 0.4, P)  # cyclical vs defensive
    q[sty, 0] = rng.uniform(-0.3, 0.3, K)
    q[sty, 1] = rng.uniform(-0.3, 0.3, K)
    q[sty, 2] = rng.uniform(-0.4, 0.4, K)  # style-style correlations
    corr = q @ q.T
    corr[np.diag_indices(m)] = 1.0
    vols = np.concatenate([
        [market_vol],
        industry_vol * rng.uniform(0.7, 1.4, P),
        style_vol * rng.uniform(0.7, 1.3, K),
        hidden_vols,
    ])
    return corr * vols[:, None] * vols[None, :]


def _resolve_hidden(
    hidden: Any, rng: np.random.Generator, N: int, stocks: np.ndarray, base_sigma: np.ndarray,
    taken: set[str],
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Hidden-factor specs -> (resolved specs, loadings (N, H))."""
    if hidden is None or hidden == 0:
        specs: list[Any] = []
    elif isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        if hidden < 0:
            raise InvalidParameterError(f"simulate: hidden must be >= 0, got {hidden!r}.")
        specs = [{"name": f"hidden{i}"} for i in range(int(hidden))]
    elif isinstance(hidden, Mapping):
        specs = [hidden]
    else:
        specs = list(hidden)
    allowed = {"name", "n_members", "vol", "loading", "corr", "members"}
    resolved: list[dict[str, Any]] = []
    loadings = np.zeros((N, len(specs)))
    id_pos = {s: i for i, s in enumerate(stocks)}
    for h, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise InvalidParameterError(f"simulate: hidden[{h}] must be a dict, got {spec!r}.")
        bad = set(spec) - allowed
        if bad:
            raise InvalidParameterError(
                f"simulate: hidden[{h}] has unknown keys {sorted(bad)}; allowed {sorted(allowed)}."
            )
        name = str(spec.get("name", f"hidden{h}"))
        if name in taken or name in _RESERVED or name.startswith("true_"):
            raise InvalidParameterError(
                f"simulate: hidden factor name {name!r} clashes with another factor or variable."
            )
        taken.add(name)
        vol = _check_float(f"hidden[{name!r}] vol", spec.get("vol", 0.01), 1e-12, 1.0)
        if "members" in spec:
            ids = [str(s) for s in spec["members"]]
            unknown = [s for s in ids if s not in id_pos]
            if unknown:
                raise InvalidParameterError(
                    f"simulate: hidden[{name!r}] members {unknown[:5]} are not simulated stock ids "
                    f"({stocks[0]}..{stocks[-1]})."
                )
            members = np.array(sorted({id_pos[s] for s in ids}), dtype=np.int64)
        else:
            k = _check_int(f"hidden[{name!r}] n_members", spec.get("n_members", min(100, N // 5)), 2)
            if k > N:
                raise InvalidParameterError(
                    f"simulate: hidden[{name!r}] n_members={k} exceeds n_stocks={N}."
                )
            members = np.sort(rng.choice(N, size=k, replace=False))
        if "corr" in spec and "loading" in spec:
            raise InvalidParameterError(
                f"simulate: hidden[{name!r}] gives both 'corr' and 'loading'; give one."
            )
        if "loading" in spec:
            loadings[members, h] = _check_float(f"hidden[{name!r}] loading", spec["loading"], -1e3, 1e3)
            corr = None
        else:
            corr = _check_float(f"hidden[{name!r}] corr", spec.get("corr", 0.15), 0.0, 1.0, open_high=True)
            # L_n = lambda sigma_n makes every within-block pair correlation equal to
            # lambda^2 vol^2 / (lambda^2 vol^2 + 1) = corr.
            loadings[members, h] = base_sigma[members] * math.sqrt(corr / (1.0 - corr)) / vol
        resolved.append({
            "name": name, "n_members": int(members.size), "vol": vol, "corr": corr,
            "loading": spec.get("loading"),
        })
    return resolved, loadings


# ------------------------------------------------------------------------ numerics
def _ar1(innov: np.ndarray, phi: float, kappa: float, x0: np.ndarray) -> np.ndarray:
    """x_t = phi x_{t-1} + kappa e_t over axis 0, x_{-1} = x0 (float64).

    For ``phi >= 0.5`` the recursion runs in blocks of dates as a scaled cumulative sum,
    ``x_{t0+j} = phi^j (phi x_{t0-1} + kappa sum_{i<=j} phi^-i e_{t0+i})``, with blocks short
    enough that ``phi^-i <= _AR1_MAX_GAIN`` (rounding stays ~1e-15 relative); contiguous row
    operations instead of a strided filter down every column (5-10x faster than
    ``lfilter(axis=0)`` at 5,000 x 2,520). Smaller ``phi`` uses ``scipy.signal.lfilter``.
    """
    T = innov.shape[0]
    if phi < 0.5 or T == 0:
        out, _ = scipy.signal.lfilter([kappa], [1.0, -phi], innov, axis=0, zi=(phi * x0)[None, :])
        return out
    B = T if phi >= 1.0 else max(1, min(T, int(math.log(_AR1_MAX_GAIN) / -math.log(phi))))
    out = np.empty(innov.shape, dtype=np.float64)
    prev = np.asarray(x0, dtype=np.float64)
    for t0 in range(0, T, B):  # a handful of blocks (one for phi >= 0.996)
        nb = min(B, T - t0)
        j = np.arange(nb, dtype=np.float64)
        block = out[t0:t0 + nb]
        np.multiply(innov[t0:t0 + nb], (kappa * phi ** -j)[:, None], out=block)
        np.cumsum(block, axis=0, out=block)
        block += phi * prev[None, :]
        block *= (phi ** j)[:, None]
        prev = block[-1]
    return out


def _compress(x: np.ndarray, lo: float, hi: float, *, inplace: bool = False) -> np.ndarray:
    """Monotone bounded transform ``x / sqrt(1 + (x/c)^2)`` (|result| < c), c = lo below 0, hi above."""
    c = np.where(x < 0.0, lo, hi) if lo != hi else lo
    work = x / c
    np.square(work, out=work)
    work += 1.0
    np.sqrt(work, out=work)
    if inplace:
        x /= work
        return x
    np.divide(x, work, out=work)
    return work


def _standardise(
    u: np.ndarray, alive: np.ndarray, w: np.ndarray, *, inplace: bool = False
) -> np.ndarray:
    """Per row over ``alive``: (u - sum(w u)/sum(w)) / std_eq(u), std with ddof=0 about the eq mean.

    ``w`` is zero outside ``alive``. The equal-weighted std is shift invariant, so the result
    has w-weighted mean 0 and equal-weighted std 1 exactly (to rounding). NaN outside ``alive``.
    """
    dead = ~alive
    z = u if inplace else u.copy()
    z[dead] = 0.0
    n = alive.sum(axis=1)
    mean_eq = z.sum(axis=1) / n
    var = np.einsum("ij,ij->i", z, z) / n - mean_eq * mean_eq
    mu_w = np.einsum("ij,ij->i", w, z) / w.sum(axis=1)
    z -= mu_w[:, None]
    z /= np.sqrt(var)[:, None]
    z[dead] = np.nan
    return z


def _row_absmax(z: np.ndarray) -> np.ndarray:
    """max_n |z_tn| per row, ignoring NaN, without an |z| temporary."""
    return np.maximum(np.fmax.reduce(z, axis=1), -np.fmin.reduce(z, axis=1))


def _bounded_standardise(
    u: np.ndarray, alive: np.ndarray, weights_of: Any, label: str, *, keep_u: bool
) -> tuple[np.ndarray, int]:
    """Standardise; rows breaching |z| < _Z_MAX are compressed (u <- z/sqrt(1+(z/2)^2)) and redone.

    Returns (z, number of rows compressed). ``weights_of(u, rows)`` gives the centring
    weights for those rows (cap weights; for size they depend on u itself). With
    ``keep_u`` the compressed rows are written back into ``u`` and ``z`` is a new array;
    otherwise ``u`` is overwritten by ``z``.
    """
    z = _standardise(u, alive, weights_of(u, np.arange(u.shape[0])), inplace=not keep_u)
    compressed = np.zeros(u.shape[0], dtype=bool)
    for _ in range(40):
        bad = np.flatnonzero(_row_absmax(z) >= _Z_MAX)
        if bad.size == 0:
            return z, int(compressed.sum())
        compressed[bad] = True
        new_u = _compress(z[bad], _STYLE_COMPRESS, _STYLE_COMPRESS)
        if keep_u:
            u[bad] = new_u
        z[bad] = _standardise(new_u, alive[bad], weights_of(new_u, bad))
    raise InvalidParameterError(
        f"simulate: could not keep the true {label!r} exposures inside |z| < {_Z_MAX} on "
        f"{bad.size} dates (first {bad[0]}); use more stocks or a smaller size_dispersion."
    )


def _specific_shocks(
    rng: np.random.Generator, shape: tuple[int, int], tails: str, dof: float
) -> np.ndarray:
    """Unit-variance specific shocks: Student-t(dof) scaled by sqrt((dof-2)/dof), or Gaussian.

    Drawn in float32 (for speed) and returned as float64; t = Z / sqrt(2 G / dof) with
    G ~ Gamma(dof/2, 1).
    """
    out = rng.standard_normal(shape, dtype=np.float32).astype(np.float64)
    if tails == "t":
        chi = rng.standard_gamma(dof / 2.0, size=shape, dtype=np.float32)
        chi *= np.float32(2.0 / (dof - 2.0))  # E[chi] = dof/(dof-2): t / sqrt(chi) has unit var
        np.sqrt(chi, out=chi)
        out /= chi
    return out


def _industry_weights(
    cap: np.ndarray, has_ret: np.ndarray, alive: np.ndarray, onehot: np.ndarray
) -> np.ndarray:
    """c_{p,t}: cap weight (caps at t-1) of industry p among stocks with a return on day t.

    Row 0 (no returns) uses the caps of day 0 over the listed stocks (a convention).
    """
    capz = np.where(alive, cap, 0.0)
    w = np.empty_like(capz)
    w[0] = capz[0]
    w[1:] = np.where(has_ret[1:], capz[:-1], 0.0)
    c = w @ onehot
    return c / c.sum(axis=1, keepdims=True)


def _neutralise_industry_size(
    g: np.ndarray, zsize: np.ndarray, codes: np.ndarray, P: int, v: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Per date, v-weighted LS residual of g on industry dummies + size (Frisch-Waugh, vectorised).

    Residuals satisfy sum_n v g~ = 0 within each industry and sum_n v g~ zsize = 0 per date.
    """
    T, _ = g.shape
    key = (np.arange(T, dtype=np.int64)[:, None] * P + codes[None, :])[valid]
    vv = v[valid]
    vsum = np.bincount(key, weights=vv, minlength=T * P)
    safe = np.where(vsum > 0, vsum, 1.0)
    gm = np.bincount(key, weights=vv * g[valid], minlength=T * P) / safe
    sm = np.bincount(key, weights=vv * zsize[valid], minlength=T * P) / safe
    gd = np.zeros_like(g)
    sd = np.zeros_like(g)
    gd[valid] = g[valid] - gm[key]
    sd[valid] = zsize[valid] - sm[key]
    vw = np.where(valid, v, 0.0)
    num = (vw * gd * sd).sum(axis=1)
    den = (vw * sd * sd).sum(axis=1)
    beta = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.where(valid, gd - beta[:, None] * sd, np.nan)


def _spend_block(
    rng: np.random.Generator, opts: dict[str, float], premium: float, alive: np.ndarray,
    x_size: np.ndarray, z_size: np.ndarray, cap: np.ndarray, codes: np.ndarray, P: int,
    dates: pd.DatetimeIndex,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Card spending -> (spend, raw signal g, neutralised exposure g~, daily premium p)."""
    T, N = alive.shape
    covered = rng.random(N) < opts["coverage"]
    w0 = rng.standard_normal(N)
    w = _ar1(rng.standard_normal((T, N)), 0.995, math.sqrt(1 - 0.995**2), w0)
    rho = opts["size_corr"]
    growth = opts["growth_mean"] + opts["growth_sd"] * (rho * x_size + math.sqrt(1 - rho**2) * w)
    level = 11.5 + 0.8 * x_size[0] + 0.5 * rng.standard_normal(N)
    amp = rng.uniform(0.0, 0.25, N)
    phase = rng.uniform(0, 2 * np.pi)
    season = amp[None, :] * np.sin(2 * np.pi * np.arange(T)[:, None] / _SPEND_LAG + phase)
    dow = np.array([-0.05, -0.03, 0.0, 0.02, 0.08])[np.asarray(dates.day_of_week) % 5]
    log_spend = (level[None, :] + np.cumsum(growth / _SPEND_LAG, axis=0) + season + dow[:, None]
                 + opts["noise_sd"] * rng.standard_normal((T, N)))
    observed = alive & covered[None, :] & (rng.random((T, N)) >= opts["gap_rate"])
    spend = np.where(observed, np.exp(log_spend), np.nan)
    g = yoy_log_growth_array(spend, _SPEND_WINDOW, _SPEND_LAG, _SPEND_MIN_PERIODS)
    # clean: cap-weighted mean 0 / eq std 1 over stocks with a signal, clip +-3, again
    has_g = np.isfinite(g) & alive
    capw = np.where(has_g, cap, 0.0)
    rows = has_g.sum(axis=1) >= 2
    g_clean = np.full_like(g, np.nan)
    if rows.any():
        zc = _standardise(g[rows], has_g[rows], capw[rows])
        zc = _standardise(np.clip(zc, -3.0, 3.0), has_g[rows], capw[rows])
        g_clean[rows] = zc
    valid = np.isfinite(g_clean)
    g_tilde = _neutralise_industry_size(
        np.where(valid, g_clean, 0.0), np.where(valid, z_size, 0.0), codes, P,
        np.sqrt(np.where(valid, cap, 0.0)), valid,
    )
    p = premium / 252.0 + opts["premium_vol"] / math.sqrt(252.0) * rng.standard_normal(T)
    return spend, g, g_tilde, p


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
    # ---------------------------------------------------------------- settings
    N = _check_int("n_stocks", n_stocks, 2)
    T = _check_int("n_days", n_days, 2)
    P = _check_int("n_industries", n_industries, 1)
    min_size = _check_int("min_industry_size", min_industry_size, 1)
    if N < min_size * P:
        raise InvalidParameterError(
            f"simulate: n_stocks={N} < min_industry_size * n_industries = {min_size * P}; "
            "use more stocks or fewer industries."
        )
    seed = _check_int("seed", seed, 0)
    style_names = _check_styles(styles)
    K = len(style_names)
    listing_rate = _check_float("listing_rate", listing_rate, 0.0, 1.0)
    delisting_rate = _check_float("delisting_rate", delisting_rate, 0.0, 1.0)
    missing_rate = _check_float("missing_rate", missing_rate, 0.0, 1.0, open_high=True)
    regime_list = _check_regimes(regimes, T)
    specific_scale = _check_float("specific_scale", specific_scale, 0.0, 1e3)
    if specific_tails not in ("t", "gaussian"):
        raise InvalidParameterError(
            f"simulate: specific_tails must be 't' or 'gaussian', got {specific_tails!r}."
        )
    t_dof = _check_float("t_dof", t_dof, 2.0 + 1e-9, 1e6)
    market_vol = _check_float("market_vol", market_vol, 0.0, 1.0)
    industry_vol = _check_float("industry_vol", industry_vol, 0.0, 1.0)
    style_vol = _check_float("style_vol", style_vol, 0.0, 1.0)
    specific_vol_median = _check_float("specific_vol_median", specific_vol_median, 1e-8, 1.0)
    size_dispersion = _check_float("size_dispersion", size_dispersion, 1e-6, 5.0)
    style_persistence = _check_float("style_persistence", style_persistence, 0.0, 1.0, open_high=True)
    spend_premium = _check_float("spend_premium", spend_premium, -10.0, 10.0)
    spend_opts = dict(_SPEND_DEFAULTS)
    if isinstance(spend, Mapping):
        unknown = set(spend) - set(_SPEND_DEFAULTS)
        if unknown:
            raise InvalidParameterError(
                f"simulate: unknown spend settings {sorted(unknown)}; allowed {sorted(_SPEND_DEFAULTS)}."
            )
        spend_opts.update({k: float(v) for k, v in spend.items()})
        spend = True
    spend = bool(spend)
    _check_float("spend size_corr", spend_opts["size_corr"], -1.0, 1.0)
    _check_float("spend coverage", spend_opts["coverage"], 0.0, 1.0)
    _check_float("spend gap_rate", spend_opts["gap_rate"], 0.0, 1.0, open_high=True)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidParameterError(f"simulate: dtype must be a float dtype, got {dtype}.")
    try:
        dates = pd.bdate_range(pd.Timestamp(start), periods=T)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"simulate: start={start!r} is not a date.") from None

    rng = np.random.default_rng(seed)
    stocks = _stock_ids(N)
    t_idx = np.arange(T)

    # ---------------------------------------------------------------- universe
    codes, anchor, labels = _assign_industries(rng, N, P, min_size)
    if set(style_names) & set(labels):
        raise InvalidParameterError(f"simulate: style names {style_names} clash with industry labels.")
    first, last = _lifetimes(rng, T, N, anchor, listing_rate, delisting_rate)
    alive = (t_idx[:, None] >= first[None, :]) & (t_idx[:, None] <= last[None, :])
    halted = (rng.random((T, N)) < missing_rate) & alive & ~anchor[None, :]
    has_ret = np.zeros((T, N), dtype=bool)
    has_ret[1:] = alive[1:] & alive[:-1] & ~halted[1:]

    # ---------------------------------------------------------------- specific vols
    x0_size = rng.standard_normal(N)
    base_sigma = specific_vol_median * np.exp(
        0.4 * (-0.6 * x0_size + 0.8 * rng.standard_normal(N))
    )
    hidden_specs, loadings = _resolve_hidden(
        hidden, rng, N, stocks, base_sigma, {"market", *labels, *style_names}
    )
    H = len(hidden_specs)
    hidden_names = [s["name"] for s in hidden_specs]
    sigma = base_sigma * specific_scale

    # ---------------------------------------------------------------- factor returns
    cov_gen = _factor_covariance(
        rng, P, K, np.array([s["vol"] for s in hidden_specs]), market_vol, industry_vol, style_vol
    )
    m = cov_gen.shape[0]
    vol_mult = np.ones(T)
    for s0, mult in regime_list:
        vol_mult[s0:] = mult
    spec_mult = vol_mult if regime_specific else np.ones(T)
    chol = np.linalg.cholesky(cov_gen + 1e-300 * np.eye(m)) if m else np.zeros((0, 0))
    F = (rng.standard_normal((T, m)) @ chol.T) * vol_mult[:, None]

    # ---------------------------------------------------------------- non-style returns
    r = _specific_shocks(rng, (T, N), specific_tails, t_dof)
    r *= sigma[None, :]
    r *= spec_mult[:, None]
    np.clip(r, -_SPECIFIC_BOUND, _SPECIFIC_BOUND, out=r)
    r += F[:, 0][:, None]
    r += F[:, 1 + codes]
    for h in range(H):
        r += np.outer(F[:, 1 + P + K + h], loadings[:, h])

    # ---------------------------------------------------------------- size and caps
    hid_var = np.diag(cov_gen)[1 + P + K:]
    sd_ns = np.sqrt(
        cov_gen[0, 0] + cov_gen[1 + codes, 1 + codes] + 2.0 * cov_gen[0, 1 + codes]
        + (loadings**2) @ hid_var + sigma**2
    )
    kappa_size = min(0.02 / size_dispersion, 0.5)
    phi_size = math.sqrt(1.0 - kappa_size**2)
    x_size = _ar1(r / sd_ns[None, :], phi_size, kappa_size, x0_size)
    level = _CAP_LEVEL + np.cumsum(np.log1p(np.maximum(F[:, 0], -0.99)))
    b = size_dispersion

    def size_weights(u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        expo = np.where(alive[rows], b * u, -np.inf)
        expo -= expo.max(axis=1, keepdims=True)
        return np.exp(expo, out=expo)

    u_size = _compress(x_size, *_SIZE_COMPRESS)
    z_size, size_rows_compressed = _bounded_standardise(
        u_size, alive, size_weights, "size", keep_u=True
    )
    log_cap = u_size
    log_cap *= b
    log_cap += level[:, None]
    log_cap[~alive] = np.nan
    cap = np.exp(log_cap)
    np.log(cap, out=log_cap)  # raw size is ln(market_cap) to the last bit
    capw = np.nan_to_num(cap, nan=0.0)
    del u_size

    # ---------------------------------------------------------------- styles (+ their returns)
    Z = np.empty((T, N, K))
    raw: dict[str, np.ndarray] = {}
    style_size_corr: list[float] = []
    style_affine: dict[str, list[float]] = {}
    rows_compressed = {"size": size_rows_compressed}
    kappa_style = math.sqrt(1.0 - style_persistence**2)
    buf = np.empty((T - 1, N))
    for k, name in enumerate(style_names):
        if name == "size":
            z = z_size
            raw[name] = log_cap
            style_size_corr.append(1.0)
        else:
            rho = float(rng.uniform(-0.35, 0.35))
            innov = rng.standard_normal((T, N), dtype=np.float32)
            e = _ar1(innov, style_persistence, kappa_style, rng.standard_normal(N))
            del innov
            e *= math.sqrt(1.0 - rho**2)
            np.multiply(x_size[1:], rho, out=buf)
            e[1:] += buf
            e[0] += rho * x_size[0]
            _compress(e, _STYLE_COMPRESS, _STYLE_COMPRESS, inplace=True)
            z, n_comp = _bounded_standardise(
                e, alive, lambda u, rows: capw[rows], name, keep_u=False
            )
            a_k, b_k = float(rng.uniform(-1.0, 1.0)), float(rng.uniform(0.5, 2.0))
            raw[name] = z * b_k
            raw[name] += a_k
            style_size_corr.append(rho)
            style_affine[name] = [a_k, b_k]
            rows_compressed[name] = n_comp
        Z[:, :, k] = z
        np.multiply(z[:-1], F[1:, 1 + P + k][:, None], out=buf)
        r[1:] += buf
        del z
    del buf

    # ---------------------------------------------------------------- spend
    if spend:
        spend_panel, _, g_tilde, p_spend = _spend_block(
            rng, spend_opts, spend_premium, alive, x_size, z_size, cap, codes, P, dates
        )
        r[1:] += p_spend[1:, None] * np.nan_to_num(g_tilde[:-1], nan=0.0)
    r[~has_ret] = np.nan

    # ---------------------------------------------------------------- constrained truth
    onehot = np.zeros((N, P))
    onehot[np.arange(N), codes] = 1.0
    c = _industry_weights(cap, has_ret, alive, onehot)
    cg = (c * F[:, 1:1 + P]).sum(axis=1)
    f_true = F.copy()
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
    cov_true = 0.5 * (cov_true + cov_true.T)

    spec_var = np.where(alive, (sigma[None, :] * spec_mult[:, None]) ** 2, np.nan)

    # ---------------------------------------------------------------- dataset
    factor_names = ["market", *labels, *style_names, *hidden_names]
    ds_vars: dict[str, Any] = {
        "returns": (("date", "stock"), r.astype(dtype, copy=False)),
        "market_cap": (("date", "stock"), cap.astype(dtype, copy=False)),
        "industry": (("stock",), np.array(labels)[codes]),
    }
    for name in style_names:
        ds_vars[name] = (("date", "stock"), raw[name].astype(dtype, copy=False))
    if spend:
        ds_vars["spend"] = (("date", "stock"), spend_panel.astype(dtype, copy=False))
    ds_vars.update({
        "true_style_exposures": (("date", "stock", "style"), Z.astype(dtype, copy=False)),
        "true_factor_returns": (("date", "true_factor"), f_true.astype(dtype, copy=False)),
        "true_factor_cov": (("true_factor", "true_factor_"), cov_true.astype(dtype, copy=False)),
        "true_factor_vol_multiplier": (("date",), vol_mult.astype(dtype, copy=False)),
        "true_specific_var": (("date", "stock"), spec_var.astype(dtype, copy=False)),
        "true_hidden_loadings": (("stock", "hidden"), loadings.astype(dtype, copy=False)),
    })
    if spend:
        ds_vars["true_spend_exposure"] = (("date", "stock"), g_tilde.astype(dtype, copy=False))
        ds_vars["true_spend_premium"] = (("date",), p_spend.astype(dtype, copy=False))

    n_alive = alive.sum()
    attrs: dict[str, Any] = {
        "description": _description(spend),
        "styles": list(style_names),
        "seed": seed,
        "n_stocks": N,
        "n_days": T,
        "n_industries": P,
        "industry_labels": list(labels),
        "hidden": json.dumps(hidden_specs),
        "hidden_names": list(hidden_names),
        "listing_rate": listing_rate,
        "delisting_rate": delisting_rate,
        "missing_rate": missing_rate,
        "realised_listing_fraction": float((first > 0).mean()),
        "realised_delisting_fraction": float((last < T - 1).mean()),
        "realised_missing_fraction": float(halted.sum() / max(n_alive, 1)),
        "regimes": json.dumps(regime_list),
        "regime_specific": int(bool(regime_specific)),
        "spend": int(spend),
        "spend_premium": spend_premium,
        "spend_settings": json.dumps(spend_opts),
        "spend_signal": json.dumps({"window": _SPEND_WINDOW, "lag": _SPEND_LAG,
                                    "min_periods": _SPEND_MIN_PERIODS}),
        "start": str(dates[0].date()),
        "dtype": dtype.name,
        "specific_scale": specific_scale,
        "specific_tails": specific_tails,
        "t_dof": t_dof,
        "market_vol": market_vol,
        "industry_vol": industry_vol,
        "style_vol": style_vol,
        "specific_vol_median": specific_vol_median,
        "size_dispersion": size_dispersion,
        "size_persistence": phi_size,
        "style_persistence": style_persistence,
        "style_size_corr": style_size_corr,
        "style_affine": json.dumps(style_affine),
        "rows_compressed": json.dumps(rows_compressed),
        "min_industry_size": min_size,
        "lag": 1,
        "industry_constraint": "sum_p c_p,t f_p,t = 0, c_p,t = cap weight (caps at t-1) of "
                               "industry p among stocks with a return on day t",
    }
    ds = xr.Dataset(
        ds_vars,
        coords={
            "date": dates.values.astype("datetime64[ns]"),
            "stock": stocks,
            "style": np.array(style_names, dtype=str),
            "true_factor": np.array(factor_names, dtype=str),
            "true_factor_": np.array(factor_names, dtype=str),
            "hidden": np.array(hidden_names, dtype=str),
        },
        attrs=attrs,
    )
    return ds


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
