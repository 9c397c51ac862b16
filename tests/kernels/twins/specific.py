"""Twins of :mod:`riskmodel.kernels.specific` (and the ``specific_ts`` and ``structural``
modules it re-exports): direct windowed sums, dense per-date lstsq, quantile groups."""

from __future__ import annotations

import numpy as np

from riskmodel.kernels.specific import (
    MIN_INDUSTRY_NAMES,
    shrink_kernel,
    specific_ts_kernel,
    structural_kernel,
    vra_terms_kernel,
)
from tests.kernels.twins import KernelTwin


def gamma_twin(h, z, min_obs, full_obs, blend):
    """gamma from h and Z by the METHODS formula."""
    if not blend:
        return (h >= min_obs).astype(float)
    ramp = np.clip((h - min_obs) / (full_obs - min_obs), 0, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        robust = np.minimum(1.0, np.maximum(0.0, np.exp(1.0 - z)))
    return np.where(np.isnan(z), 0.0, ramp * robust)


def ts_twin(u, half_life, window, lags):
    """Direct windowed sums: sigma_TS^2, h and Z for every (date, stock)."""
    T, N = u.shape
    var = np.full((T, N), np.nan)
    h = np.zeros((T, N), np.int32)
    z = np.full((T, N), np.nan)
    for n in range(N):
        for t in range(T):
            lo = max(0, t - window + 1)
            x = u[lo : t + 1, n]
            valid = x[np.isfinite(x)]
            h[t, n] = valid.size
            if valid.size == 0:
                continue
            c = np.zeros(lags + 1)
            for l in range(lags + 1):
                # pairs (tau, tau - l) with both inside the window; weight by the age of tau
                taus = np.arange(max(lo + l, l), t + 1)
                if taus.size == 0:
                    continue
                w = 2.0 ** (-(t - taus) / half_life)
                prod = u[taus, n] * u[taus - l, n]
                ok = np.isfinite(prod)
                if ok.any():
                    c[l] = (w[ok] * prod[ok]).sum() / w[ok].sum()
            v = c[0] + 2.0 * sum((1 - l / (lags + 1)) * c[l] for l in range(1, lags + 1))
            var[t, n] = max(v, c[0] / (lags + 1))
            if valid.size < 2:
                continue
            q25, q75 = np.quantile(valid, [0.25, 0.75])
            st = (q75 - q25) / 1.35
            if st <= 0:
                z[t, n] = np.inf
                continue
            s_eq = np.std(np.clip(valid, -10 * st, 10 * st), ddof=1)
            z[t, n] = abs(s_eq / st - 1.0)
    return var, h, z


def structural_twin(log_sig, tier, styles, industry, n_industries, weights, fallback,
                    min_names, duan, scale):
    """Per date dense weighted lstsq with industry / pooled dummies + styles."""
    T, N, K = styles.shape
    P = n_industries if industry is not None else 0
    sig = np.full((T, N), np.nan)
    e0 = np.full(T, np.nan)
    nfit = np.zeros(T, np.int64)
    for t in range(T):
        complete = np.isfinite(styles[t]).all(axis=1)
        usable = complete & (weights[t] > 0) & np.isfinite(weights[t]) & np.isfinite(log_sig[t])
        fb = complete & (fallback[t] > 0) & np.isfinite(fallback[t]) & np.isfinite(log_sig[t])
        candidates = [usable & (tier[t] <= k) for k in range(3)] + [fb & (tier[t] <= 2)]
        use = next((k for k, c in enumerate(candidates) if c.sum() >= min_names), None)
        if use is None:
            continue
        fit = candidates[use]
        w_t = weights[t] if use < 3 else fallback[t]
        ind = industry[t] if industry is not None else np.full(N, -1)
        fitted = [p for p in range(P) if ((ind == p) & fit).sum() >= MIN_INDUSTRY_NAMES]
        grp = np.full(N, len(fitted))
        for i, p in enumerate(fitted):
            grp[ind == p] = i
        G = len(fitted) + 1
        D = np.zeros((N, G))
        D[np.arange(N), grp] = 1.0
        pooled_used = (grp[fit] == G - 1).any()
        cols = list(range(G)) if pooled_used else list(range(G - 1))
        X = np.hstack([D[:, cols], styles[t]])
        sw = np.sqrt(w_t[fit])
        coef = np.linalg.lstsq(X[fit] * sw[:, None], log_sig[t, fit] * sw, rcond=None)[0]
        b = coef[len(cols):]
        icpt = coef[: len(cols)]
        resid_style = log_sig[t, fit] - styles[t, fit] @ b
        a0 = np.average(resid_style, weights=w_t[fit])
        e = log_sig[t, fit] - X[fit] @ coef
        e0[t] = np.mean(np.exp(e)) if duan else scale
        nfit[t] = fit.sum()
        a = np.full(N, a0)
        infit = grp < G - 1
        a[infit] = icpt[grp[infit]]
        sig[t, complete] = e0[t] * np.exp(a[complete] + styles[t, complete] @ b)
    return sig, e0, nfit


def blend_twin(gamma, ts_var, sig_str):
    """sigma_hat = gamma sigma_TS + (1 - gamma) sigma_STR, only the terms with weight."""
    with np.errstate(invalid="ignore"):
        mid = gamma * np.sqrt(ts_var) + (1 - gamma) * sig_str
    return np.where(gamma >= 1, np.sqrt(ts_var), np.where(gamma > 0, mid, sig_str))


def structural_inputs(log_sig, tier, fallback, min_obs):
    """The kernel's inputs (ts_var, h, gamma, cap) for given ln sigma_TS, tiers and fallback
    weights, and the twin's (log_sig, fallback) recomputed from them as the kernel does."""
    ts_var = np.exp(2.0 * log_sig)
    h = np.select([tier == 0, tier == 1, tier == 2], [3 * min_obs, 2 * min_obs, min_obs // 2], 0)
    gamma = np.where(tier == 0, 1.0, 0.5)
    cap = fallback**2
    with np.errstate(divide="ignore", invalid="ignore"):
        twin_log = np.where(ts_var > 0, 0.5 * np.log(ts_var), np.nan)
        twin_fb = np.where(cap > 0, np.sqrt(cap), np.nan)
    return ts_var, h.astype(np.int32), gamma, cap, twin_log, twin_fb


def run_structural(ts_var, h, gamma, styles, industry, P, weights, cap, min_obs, min_names,
                    duan, scale, blend):
    T, N, K = styles.shape
    sig = np.empty((T, N))
    e0 = np.empty(T)
    nfit = np.empty(T, np.int64)
    complete = np.empty((T, N), np.bool_)
    has_ind = industry is not None
    structural_kernel(ts_var, h, gamma, styles, industry if has_ind else np.zeros((1, 1), np.int32),
                      has_ind, P, weights, cap, min_obs, min_names, duan, scale, blend, sig, e0,
                      nfit, complete)
    return sig, e0, nfit, complete


def shrink_twin(sig, cap, estu, n_groups, q):
    """Per date: np.quantile breakpoints, group means, nu."""
    T, N = sig.shape
    out = sig.copy()
    for t in range(T):
        if not estu[t].any():
            continue
        bp = np.quantile(cap[t, estu[t]], np.arange(1, n_groups) / n_groups)
        fin = np.isfinite(cap[t])
        grp = np.full(N, -1)
        grp[fin] = np.searchsorted(bp, cap[t, fin], side="right")
        for g in range(n_groups):
            mem = (grp == g) & estu[t] & np.isfinite(sig[t])
            if not mem.any() or cap[t, mem].sum() <= 0:
                continue
            mean = np.average(sig[t, mem], weights=cap[t, mem])
            delta = np.sqrt(np.mean((sig[t, mem] - mean) ** 2))
            tgt = (grp == g) & np.isfinite(sig[t])
            d = np.abs(sig[t, tgt] - mean)
            den = delta + q * d
            nu = np.where(den > 0, q * d / np.where(den > 0, den, 1.0), 0.0)
            out[t, tgt] = nu * mean + (1 - nu) * sig[t, tgt]
    return out


def gappy_returns(rng, T, N):
    u = 0.02 * rng.standard_normal((T, N)) * np.exp(0.5 * rng.standard_normal(N))
    u[rng.random((T, N)) < 0.1] = np.nan  # scattered missing days
    u[: T // 3, 0] = np.nan  # late listing
    u[T // 2 :, 1] = np.nan  # delisting
    u[5:60, 2] = np.nan  # long halt
    u[:, 3] = np.nan  # never traded
    u[::7, 4] = 0.0  # ties
    u[10, 5] = 0.9  # jump beyond the clip bound
    u[11, 5] = -0.8
    u[:, 6] = np.where(np.isfinite(u[:, 6]), 0.0, np.nan)  # zero IQR
    return u


def run_ts(u, half_life, window, lags, min_obs=60, full_obs=180, blend=True):
    T, N = u.shape
    var = np.empty((T, N))
    h = np.empty((T, N), np.int32)
    z = np.empty((T, N))
    g = np.empty((T, N))
    specific_ts_kernel(u, half_life, window, lags, min_obs, full_obs, blend, var, h, z, g)
    return var, h, z, g


def vra_terms_twin(u, sig_prev, cap_prev, estu_prev):
    """The plain masked sums ``(sum cap z^2, sum cap)`` over the ESTU names with a finite ``z^2``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = (u / sig_prev) ** 2
        ok = np.isfinite(z2) & estu_prev
        w = np.where(ok, cap_prev, 0.0)
        return np.where(ok, w * z2, 0.0).sum(axis=1), w.sum(axis=1)


# ---------------------------------------------------------------------------------------
# registry entries
# ---------------------------------------------------------------------------------------

_TS = dict(half_life=40.0, window=120, lags=3, min_obs=20, full_obs=60, blend=True)


def _ts_inputs(rng, T, N):
    return dict(u=gappy_returns(rng, T, N), **_TS)


def _ts_run(inp):
    var, h, z, g = run_ts(inp["u"], inp["half_life"], inp["window"], inp["lags"], inp["min_obs"], inp["full_obs"],
                           inp["blend"])
    return dict(var=var, h=h, z=z, gamma=g)


def _ts_twin(inp):
    var, h, z = ts_twin(inp["u"], inp["half_life"], inp["window"], inp["lags"])
    return dict(var=var, h=h, z=z, gamma=gamma_twin(h, z, inp["min_obs"], inp["full_obs"], inp["blend"]))


def _structural_world(rng, T, N, K, P):
    """Styles with holes, industries (one thin), ESTU weights, ln sigma_TS, tiers and caps."""
    styles = rng.standard_normal((T, N, K))
    styles[0, :5, 1] = np.nan
    industry = rng.integers(-1, P, (T, N)).astype(np.int32)
    industry[:, : N - 20][industry[:, : N - 20] == P - 1] = 0  # the last industry thin: pooled
    weights = np.sqrt(np.exp(rng.standard_normal((T, N))))
    weights[:, -10:] = np.nan
    log_sig = -4 + 0.3 * styles[..., 0] + 0.2 * rng.standard_normal((T, N))
    log_sig[1, ::3] = np.nan
    tier = rng.integers(0, 4, (T, N)).astype(np.int8)
    fallback = np.sqrt(np.exp(rng.standard_normal((T, N))))
    ts_var, h, gamma, cap, twin_log, twin_fb = structural_inputs(log_sig, tier, fallback, 60)
    return dict(ts_var=ts_var, h=h, gamma=gamma, styles=styles, industry=industry, P=P, weights=weights, cap=cap,
                min_obs=60, min_names=K + 10, duan=True, scale=1.05, tier=tier, twin_log=twin_log, twin_fb=twin_fb)


def _structural_run(inp):
    sig, e0, nfit, _ = run_structural(inp["ts_var"], inp["h"], inp["gamma"], inp["styles"], inp["industry"],
                                       inp["P"], inp["weights"], inp["cap"], inp["min_obs"], inp["min_names"],
                                       inp["duan"], inp["scale"], False)
    return dict(sig=sig, e0=e0, nfit=nfit)


def _structural_twin(inp):
    sig, e0, nfit = structural_twin(inp["twin_log"], inp["tier"], inp["styles"], inp["industry"], inp["P"],
                                    inp["weights"], inp["twin_fb"], inp["min_names"], inp["duan"], inp["scale"])
    return dict(sig=sig, e0=e0, nfit=nfit)


def _shrink_inputs(rng, T, N, G):
    cap = np.exp(2 * rng.standard_normal((T, N)))
    cap[0, :7] = np.nan
    sig = 0.02 * np.exp(0.5 * rng.standard_normal((T, N)))
    sig[1, ::11] = np.nan
    estu = np.isfinite(cap) & (rng.random((T, N)) < 0.8)
    return dict(sig=sig, cap=cap, estu=estu, G=G, q=0.1)


def _shrink_run(inp):
    T, N = inp["sig"].shape
    out, grp = np.empty((T, N)), np.empty((T, N), np.int8)
    shrink_kernel(inp["sig"], inp["cap"], inp["estu"], inp["G"], inp["q"], out, grp)
    return dict(sig=out)


def _shrink_twin(inp):
    return dict(sig=shrink_twin(inp["sig"], inp["cap"], inp["estu"], inp["G"], inp["q"]))


def _vra_inputs(rng, R, N):
    u = rng.standard_normal((R, N)) * 0.02
    u[rng.random((R, N)) < 0.1] = np.nan
    sig = rng.uniform(0.01, 0.03, (R, N))
    sig[0, :5] = 0.0
    return dict(u=u, sig=sig, cap=rng.uniform(1.0, 5.0, (R, N)), estu=rng.random((R, N)) < 0.8)


def _vra_run(inp):
    R = inp["u"].shape[0]
    num, wsum = np.empty(R), np.empty(R)
    vra_terms_kernel(inp["u"], inp["sig"], inp["cap"], inp["estu"], num, wsum)
    return dict(num=num, wsum=wsum)


def _vra_twin(inp):
    num, wsum = vra_terms_twin(inp["u"], inp["sig"], inp["cap"], inp["estu"])
    return dict(num=num, wsum=wsum)


ENTRIES = [
    KernelTwin(
        "specific.specific_ts_kernel", specific_ts_kernel, _ts_run, _ts_twin, _ts_inputs,
        sizes={"test": dict(T=260, N=12), "quick": dict(T=260, N=16), "full": dict(T=504, N=100)},
        rtol=1e-12, atol=1e-12,
        # Z: when every value of a window is clipped (a young window: two values beyond
        # 10 IQR/1.35 of each other), the clipped variance is 0 exactly but the running sums
        # leave a rounding residue of ~eps c^2, whose square root moves Z ~ 1e-7 off 1 (gamma
        # is 1 either way)
        tolerances={"z": (1e-10, 1e-6)},
    ),
    KernelTwin(
        "specific.structural_kernel", structural_kernel, _structural_run, _structural_twin, _structural_world,
        sizes={"test": dict(T=6, N=150, K=3, P=6), "quick": dict(T=20, N=1000, K=5, P=20),
               "full": dict(T=252, N=5000, K=10, P=60)},
        rtol=1e-10, atol=1e-10,
    ),
    KernelTwin(
        "specific.shrink_kernel", shrink_kernel, _shrink_run, _shrink_twin, _shrink_inputs,
        sizes={"test": dict(T=5, N=300, G=10), "quick": dict(T=60, N=1000, G=10),
               "full": dict(T=504, N=5000, G=10)},
        rtol=1e-13, atol=0.0,
    ),
    KernelTwin(
        "specific.vra_terms_kernel", vra_terms_kernel, _vra_run, _vra_twin, _vra_inputs,
        sizes={"test": dict(R=9, N=37), "quick": dict(R=500, N=1000), "full": dict(R=2520, N=5000)},
        rtol=1e-12, atol=0.0,
    ),
]
