"""The pieces of the simulated world of :func:`riskmodel.data.simulation.simulate`.

Structure (industries, listings, the factor covariance, hidden factors), numerics (AR(1)
recursions, the bounded standardisation of true exposures, specific shocks, industry
weights) and the card-spend block; plus the declared-rule validators that ``simulate``
checks its settings with (:func:`riskmodel._params.check_parameters`). ndarray in,
ndarray out: the labels are put on in :mod:`riskmodel.data.simulation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.signal

from riskmodel._params import check_parameters
from riskmodel.data.flows import yoy_log_growth_array
from riskmodel.errors import InvalidParameterError

_RESERVED = {"returns", "market_cap", "industry", "spend", "market"}
_Z_MAX = 2.95  # every true style exposure satisfies |z| < _Z_MAX < 3 (no winsorising)
_SIZE_COMPRESS = (1.0, 2.5)  # compression x/sqrt(1+(x/c)^2) of the size latent: (left, right) c
_STYLE_COMPRESS = 2.0  # fallback compression of rows that would breach _Z_MAX
_SPECIFIC_BOUND = 0.5  # |u| <= 50% a day: heavy t tails never push a simple return below -100%
_CAP_LEVEL = math.log(2.0e9)  # cap-weighted typical market cap, USD
_AR1_MAX_GAIN = 1e4  # largest phi^-j inside one block of the AR(1) cumulative sum
_SPEND_WINDOW, _SPEND_LAG, _SPEND_MIN_PERIODS = 90, 252, 68


# ------------------------------------------------------------------------ declared rules
Rule = tuple[Callable[[Any], bool], str]


def int_at_least(low: int) -> Rule:
    """The rule "an integer >= low" (not a bool)."""

    def check(value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= low

    return check, f"an integer >= {low}"


def number_in(low: float, high: float, *, open_high: bool = False) -> Rule:
    """The rule "a finite number in [low, high]" (``[low, high)`` with ``open_high``)."""

    def check(value: Any) -> bool:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        return math.isfinite(v) and (low <= v < high if open_high else low <= v <= high)

    return check, f"a number in [{low}, {high}{')' if open_high else ']'}"


def checked_int(name: str, value: Any, rule: Rule) -> int:
    """``int(value)`` after :func:`check_parameters` of the one rule."""
    check_parameters("simulate", {name: rule}, {name: value})
    return int(value)


def checked_float(name: str, value: Any, rule: Rule) -> float:
    """``float(value)`` after :func:`check_parameters` of the one rule."""
    check_parameters("simulate", {name: rule}, {name: value})
    return float(value)


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
        vol = checked_float(f"hidden[{name!r}] vol", spec.get("vol", 0.01), number_in(1e-12, 1.0))
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
            k = checked_int(f"hidden[{name!r}] n_members", spec.get("n_members", min(100, N // 5)), int_at_least(2))
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
            loadings[members, h] = checked_float(f"hidden[{name!r}] loading", spec["loading"], number_in(-1e3, 1e3))
            corr = None
        else:
            corr = checked_float(f"hidden[{name!r}] corr", spec.get("corr", 0.15), number_in(0.0, 1.0, open_high=True))
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


