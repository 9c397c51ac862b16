"""Daily update of a fitted fundamental model: the new dates only, from a carried state (issue 20).

:func:`advance` takes the state of :mod:`riskmodel.models.update_state` and a panel whose
dates extend the fitted ones and computes, for the new dates only and with the fit's own
stage functions and kernels, what :func:`~riskmodel.models.pipeline.fit_fundamental`
would compute for them on the whole history:

* exposures of the new dates (cross-sectional: ``build_exposures`` on those
  rows; industry codes mapped to the model's labels);
* their regressions (exposures of ``t − lag`` come from the state's last rows);
* ``Σ_f``: the EWMA + Newey–West moments advanced from the carried windowed sums
  (:mod:`riskmodel.models.update_ewma`; where those cannot reproduce the kernel bit for bit,
  the kernel reruns over the stored factor returns), the eigenfactor adjustment date by date on its own schedule (a run
  starts when the set of available factors changes; ``v(k)`` is re-simulated every
  ``eigen_every`` dates of a run, with the seed of that date, else the run's latest
  ``v(k)`` from the state), and the VRA from the state's ``B_F`` series;
* ``D``: the time series' EWMA sums advanced from the carried ones (the robust blending
  statistics recomputed over the trailing window, started on the 32-date grid on which the
  kernel recomputes them exactly), the structural model and the shrinkage on the new
  dates, and the specific VRA's IIR sums carried from the state.

Every stored array is bit-identical to the full refit's. The carried sums are checked
against the kernels when the state is built; where they would differ (another platform's
rounding of a power, say) the state holds none and the update reruns the factor kernel over
the stored history (same numbers) and the specific one over the trailing window, whose
EWMA sums are windowed recursions that restart there: ``specific_var`` then agrees to about
1e-15 relative, not bit for bit.

:func:`apply_update` is :meth:`FittedFactorModel.update`: the model's arrays with the new
dates appended (the stock axis grows by the new listings) and the new state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import fmt_date
from riskmodel.errors import (
    AlignmentError,
    DimensionError,
    InvalidParameterError,
    MissingVariableError,
    PanelError,
)
from riskmodel.models.update_append import append_rows, pad_stocks
from riskmodel.models.update_state import (
    STATE_PREFIX as P,
    STATE_VERSION,
    StateArrays,
    build_state,
    factor_stage_settings,
    factor_vra_rows,
    make_state,
    specific_iir,
    state_dataset,
    vra_b_series,
    window_length,
)

__all__ = [
    "HistoryMismatchError",
    "SettingsMismatchError",
    "UpdateNotSupportedError",
    "advance",
    "apply_update",
    "check_same_settings",
    "pad_stocks",
]

#: Variables compared on the dates the panel and the stored history share.
CHECKED = ("returns", "market_cap")


class HistoryMismatchError(AlignmentError):
    """The update's panel disagrees with the model's stored history on a date they share."""


class SettingsMismatchError(InvalidParameterError):
    """The update was asked with settings other than those the model was fitted with."""


class UpdateNotSupportedError(PanelError, NotImplementedError):
    """This kind of model (or these settings) cannot be updated date by date."""


# --------------------------------------------------------------------------- helpers


def check_same_settings(model: Mapping[str, Any], given: Mapping[str, Any] | None) -> None:
    """Refuse settings that differ from the model's (compared as the model stores them).

    Raises
    ------
    SettingsMismatchError
        Naming each setting that differs, the model's value and the given one.
    """
    if given is None:
        return
    from riskmodel._params import jsonable_settings

    ours = jsonable_settings(model)
    theirs = jsonable_settings({**model, **given})
    differ = [k for k in sorted(given) if ours.get(k) != theirs.get(k)]
    if differ:
        detail = ", ".join(f"{k}: model {ours.get(k)!r}, given {theirs.get(k)!r}" for k in differ)
        raise SettingsMismatchError(
            f"update: settings differ from the fitted model's ({detail}); an update extends the model with its "
            "own settings: refit on the full panel to change them"
        )


def _check_overlap(state: StateArrays, panel: xr.Dataset, shared: np.ndarray, cap: str) -> None:
    """The panel's values on the dates it shares with the state's window equal the stored ones.

    Raises
    ------
    HistoryMismatchError
        Naming the variable, the date, the stock and both values.
    """
    stocks, in_state, in_panel = np.intersect1d(state["stock"], panel["stock"].to_numpy(), return_indices=True)
    rows_state = np.searchsorted(state[f"{P}window"], shared)
    rows_panel = np.flatnonzero(np.isin(panel["date"].to_numpy(), shared))
    for name, given_name in zip(CHECKED, ("returns", cap)):
        if given_name not in panel:
            continue
        stored = state[f"{P}{name}"][np.ix_(rows_state, in_state)]
        given = panel[given_name].transpose("date", "stock").to_numpy()[np.ix_(rows_panel, in_panel)].astype(np.float64)
        bad = ~((stored == given) | (np.isnan(stored) & np.isnan(given)))
        if bad.any():
            t, n = np.argwhere(bad)[0]
            raise HistoryMismatchError(
                f"update: {given_name} of stock {str(stocks[n])!r} on {fmt_date(shared[t])} is {given[t, n]!r} in the panel "
                f"but {stored[t, n]!r} in the fitted model; an update appends new dates to an unchanged history: "
                "correct the panel, or refit on the full panel if the history was revised"
            )


def _require_variables(panel: xr.Dataset, settings: Mapping[str, Any]) -> None:
    """The panel holds every variable the model was fitted on.

    Raises
    ------
    MissingVariableError
        Naming the first one missing.
    """
    industry = [settings["industry"]] if settings.get("industry") else []
    names = ["returns", *settings["styles"], *(settings.get("fixed_styles") or []), settings["cap"], *industry]
    for name in names:
        if name not in panel.data_vars:
            raise MissingVariableError(
                f"update: the panel has no variable {name!r} (has {sorted(map(str, panel.data_vars))}); the model was "
                "fitted on it"
            )


def _split_dates(state: StateArrays, panel: xr.Dataset, cap: str) -> np.ndarray:
    """The panel's new dates (after the model's last date), after checking the shared ones."""
    window = state[f"{P}window"]
    dates = panel["date"].to_numpy()
    if window.size == 0:  # _EMPTY_STATE: nothing to compute
        return dates[:0]
    last = window[-1]
    old = dates[(dates <= last) & (dates >= window[0])]
    unknown = old[~np.isin(old, window)]
    if unknown.size:
        raise HistoryMismatchError(
            f"update: the panel has the date {fmt_date(unknown[0])}, inside the fitted history but not one of its "
            "dates; an update appends new dates to an unchanged history"
        )
    if old.size:
        _check_overlap(state, panel, old, cap)
    return dates[dates > last]


# --------------------------------------------------------------------------- stages


def _industry_remap(exposures: Any, labels: tuple[str, ...], new_dates: np.ndarray) -> np.ndarray | None:
    """The new rows' industry codes on the model's labels.

    Raises
    ------
    UpdateNotSupportedError
        An industry the model does not have (it would be a new factor).
    """
    if exposures.industry is None:
        return None
    index = {label: i for i, label in enumerate(labels)}
    table = np.full(len(exposures.industry_labels) + 1, -1, dtype=np.int32)
    used = np.unique(exposures.industry[exposures.industry >= 0])
    for code, label in enumerate(exposures.industry_labels):
        if label in index:
            table[code] = index[label]
        elif code in used:
            t, n = np.argwhere(exposures.industry == code)[0]
            raise UpdateNotSupportedError(
                f"update: industry {label!r} (stock {str(exposures.stocks[n])!r} on {fmt_date(new_dates[t])}) is not "
                f"one of the model's {len(labels)} industries; a new industry is a new factor: refit on the full panel"
            )
    return table[exposures.industry]


def _new_exposures(rows: xr.Dataset, settings: Mapping[str, Any], labels: tuple[str, ...], new_dates: np.ndarray):
    """Exposures of the new dates, industry codes on the model's labels."""
    from dataclasses import replace

    from riskmodel.exposures import build_exposures

    # fit_fundamental's stage 1 (riskmodel.models.pipeline.fundamental_exposures), which
    # this module cannot import (the pipeline returns the FittedFactorModel that calls it)
    ex = build_exposures(rows, list(settings["styles"]), industry=settings["industry"], cap=settings["cap"],
                         winsor=settings["winsor"], impute=settings["impute"])
    fixed = list(settings.get("fixed_styles") or [])
    if fixed:
        extra = np.stack([rows[n].transpose("date", "stock").to_numpy().astype(np.float64) for n in fixed], axis=2)
        ex = replace(ex, style_names=(*ex.style_names, *fixed),
                     styles=np.ascontiguousarray(np.concatenate([ex.styles, extra], axis=2)),
                     imputed=np.concatenate([ex.imputed, np.zeros(extra.shape, dtype=bool)], axis=2))
    codes = _industry_remap(ex, labels, new_dates)
    return replace(ex, industry=codes, industry_labels=labels if codes is not None else ())


def _stacked(state: StateArrays, ex_new: Any):
    """The state's last ``lag`` exposure rows followed by the new ones (an Exposures)."""
    from dataclasses import replace

    styles = np.concatenate([state[f"{P}style_exposure"], ex_new.styles])
    industry = None
    if ex_new.industry is not None:
        industry = np.ascontiguousarray(np.concatenate([state[f"{P}industry_code"], ex_new.industry]))
    lag_dates = np.full(state[f"{P}style_exposure"].shape[0], np.datetime64("NaT"), dtype="datetime64[ns]")
    return replace(
        ex_new,
        dates=np.concatenate([lag_dates, ex_new.dates]),
        styles=np.ascontiguousarray(styles),
        industry=industry,
        weights=np.ascontiguousarray(np.concatenate([state[f"{P}regression_weight"], ex_new.weights])),
        cap=np.ascontiguousarray(np.concatenate([state[f"{P}lag_cap"], ex_new.cap])),
        imputed=np.concatenate([state[f"{P}imputed"].astype(bool), ex_new.imputed]),
    )


@dataclass
class _EigenRun:
    """The eigen adjustment's carried state: the run's first date, its latest ``v(k)`` and
    the availability of the date before."""

    start: int
    bias: np.ndarray
    avail_prev: np.ndarray


def _eigen_rows(f0: np.ndarray, available: np.ndarray, t0: int, row_valid: np.ndarray,
                s: Mapping[str, Any], run: _EigenRun) -> np.ndarray:
    """Eigen-adjusted ``F`` of the rows ``t0, t0 + 1, …`` as
    :func:`riskmodel.covariance.factor._eigen_adjust` makes them (updates ``run``)."""
    from riskmodel._blas import one_blas_thread
    from riskmodel.covariance.factor import (
        _EIG_FLOOR,
        _effective_df_at,
        _eigh,
        _simulated_bias,
        _smooth_bias,
        ewma_weights,
    )
    from riskmodel.kernels.ewma import eigen_rebuild_stack

    k, m = available.shape
    out = np.full((k, m, m), np.nan)
    corr_w = ewma_weights(s["corr_half_life"], s["corr_window"])
    for i in range(k):
        t, av = t0 + i, available[i]
        if not av.any():
            run.start, run.avail_prev = -1, av
            continue
        if run.start < 0 or not np.array_equal(av, run.avail_prev):
            run.start = t
        cols = np.flatnonzero(av)
        sub = np.ascontiguousarray((f0[i] if cols.size == m else f0[i][np.ix_(cols, cols)])[None])
        floor = _EIG_FLOOR * np.trace(sub, axis1=1, axis2=2)
        gamma2 = np.ones((1, cols.size))
        if s["eigen_sims"]:
            if (t - run.start) % s["eigen_every"] == 0:
                d0 = np.maximum(_eigh(sub)[0], floor[:, None])[0]
                nu = _effective_df_at(t, row_valid, corr_w, s["corr_lags"])
                rng = np.random.default_rng(np.random.SeedSequence([s["seed"], t]))
                run.bias = np.full(m, np.nan)
                run.bias[: d0.size] = _smooth_bias(_simulated_bias(d0, nu, s["eigen_sims"], rng), s["eigen_fit_exclude"])
            gamma = s["eigen_scale"] * (run.bias[: cols.size] - 1.0) + 1.0
            gamma2 = np.ascontiguousarray(np.where(np.isfinite(gamma), gamma**2, 1.0)[None])
        adj = np.empty_like(sub)
        with one_blas_thread():
            eigen_rebuild_stack(sub, floor, gamma2, adj)
        out[i][np.ix_(cols, cols)] = adj[0]
        run.avail_prev = av
    return out


def _moments(f: np.ndarray, s: Mapping[str, Any], k: int, sums: dict | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four EWMA moment series of the last ``k`` dates of ``f (date, factor)``: from the
    carried sums (advanced in place) or, without them, the kernel over the whole series."""
    from riskmodel.models.update_ewma import SPECS, _kernel_moments

    f_t = np.ascontiguousarray(f.T)
    n_dates = f.shape[0]
    out = {}
    for name, (kind, _, _, _) in SPECS.items():
        if sums is None:
            moment, count = _kernel_moments(f_t, kind, s, name)
            out[name] = (moment[:, n_dates - k:], count[:, n_dates - k:])
            continue
        steps = [sums[name].step(f_t, t) for t in range(n_dates - k, n_dates)]
        out[name] = (np.stack([m for m, _ in steps], axis=1), np.stack([c for _, c in steps], axis=1))
    return out


def _base_covariance_rows(f: np.ndarray, s: Mapping[str, Any], k: int,
                          sums: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`riskmodel.covariance.factor._base_covariance` of the last ``k`` dates only,
    from :func:`_moments`; the ``(date, m, m)`` assembly on those dates only."""
    from riskmodel.kernels.ewma import assemble_covariance

    m = f.shape[1]
    upper = tuple(a.astype(np.int64) for a in np.triu_indices(m))
    is_diag = upper[0] == upper[1]
    mom = _moments(f, s, k, sums)
    (var_nw, n_vol), (var_c0, _), (corr_c0, _) = mom["var_nw"], mom["var_c0"], mom["corr_c0"]
    cov_c, n_corr = (np.ascontiguousarray(a) for a in mom["cov_c"])
    var = np.where(var_nw > 0, var_nw, var_c0)
    corr_var = np.where(cov_c[is_diag] > 0, cov_c[is_diag], corr_c0)
    vol_min = min(s["min_periods"], max(1, s["vol_window"] // 2))
    with np.errstate(invalid="ignore"):
        available = (n_corr[is_diag] >= s["min_periods"]) & (n_vol >= vol_min) & (var > 0) & (corr_var > 0)
    sd_c = np.ascontiguousarray(np.sqrt(np.where(corr_var > 0, corr_var, np.nan)))
    sd = np.ascontiguousarray(np.sqrt(np.where(var > 0, var, np.nan)))
    available = np.ascontiguousarray(available.T)
    f0 = np.empty((k, m, m))
    assemble_covariance(cov_c, upper[0], upper[1], sd, sd_c, available, f0)
    return f0, available


def _factor_forecast(state: StateArrays, f_all: np.ndarray, settings: Mapping[str, Any]):
    """``factor_cov`` and ``factor_vra`` of the new rows of the factor returns ``f_all`` (every
    date), and the factor part of the new state."""
    from riskmodel.covariance.factor import _row_valid
    from riskmodel.models.update_append import grow_rows
    from riskmodel.models.update_state import sums_of

    n_old, (n_all, m) = int(state[f"{P}n_dates"]), f_all.shape
    f_new = f_all[n_old:]
    k = n_all - n_old
    s = factor_stage_settings(settings, n_all, m)
    sums = sums_of(state, s, m)  # None: the kernel reruns over the stored history (same numbers)
    f0, available = _base_covariance_rows(f_all, s, k, sums)
    run = _EigenRun(int(state[f"{P}eigen_run_start"]), state[f"{P}eigen_bias"].copy(),
                    state[f"{P}avail_prev"].astype(bool))
    f_eig = _eigen_rows(f0, available, n_old, _row_valid(f_all), s, run)
    sigma = np.sqrt(np.diagonal(f_eig, axis1=1, axis2=2))
    sigma_prev = np.concatenate([state[f"{P}sigma_prev"][None], sigma[:-1]])
    b_all = grow_rows(state[f"{P}vra_b"], vra_b_series(f_new, sigma_prev))
    lam = factor_vra_rows(b_all, available.any(axis=1), s, n_all)
    cov = f_eig * (lam**2)[:, None, None]
    part = dict(b=b_all, sigma_prev=sigma[-1], avail_prev=available[-1], run_start=run.start, bias=run.bias,
                sums=sums)
    return cov, lam, part, k


def _specific_sums(state: StateArrays, sp: Mapping[str, Any]):
    """The state's carried specific sums on its stock axis (new stocks: none yet), or None."""
    from riskmodel.models.update_ewma import SpecificSums

    if f"{P}ts_num" not in state:
        return None
    sums = SpecificSums.empty(len(state.stocks), sp["lags"], sp["half_life"], sp["window"])
    sums.num = np.nan_to_num(state[f"{P}ts_num"], nan=0.0)
    sums.den = np.nan_to_num(state[f"{P}ts_den"], nan=0.0)
    sums.npair = np.maximum(state[f"{P}ts_npair"].astype(np.int64), 0)
    sums.cnt = np.maximum(state[f"{P}ts_cnt"].astype(np.int64), 0)
    return sums


def _specific_slice_start(n_old: int, window: int, lags: int) -> int:
    """First row of the time-series recomputation: on the 32-date grid of the exact
    recomputation of the robust statistics, a whole window before the latest such date at or
    before ``n_old`` and a whole window plus lags before ``n_old``."""
    refresh = ((n_old + 1) // 32) * 32 - 1
    limit = min(refresh - window + 1, n_old - window - lags - 1)
    return max(0, (limit // 32) * 32)


def _specific_forecast(state: StateArrays, rows: np.ndarray, ex_new: Any, settings: Mapping[str, Any], n_all: int):
    """``specific_var`` and ``specific_vra`` of the new rows and the specific part of the new state
    (``rows``: the state's residual window followed by the new dates' residuals)."""
    from riskmodel.covariance.specific import (
        cross_section_stage,
        final_variance,
        specific_inputs,
        specific_settings,
        time_series_stage,
        vra_b2_rows,
    )
    from riskmodel.models.settings import specific_variance_kwargs
    from riskmodel.models.update_robust import carried_sums, robust_rows

    sp = specific_settings(**specific_variance_kwargs(settings))
    n_old = int(state[f"{P}n_dates"])
    k = n_all - n_old
    resid_new = rows[rows.shape[0] - k:]
    base = n_old - (rows.shape[0] - k)  # rows: dates base .. n_all - 1
    s0 = _specific_slice_start(n_old, sp["window"], sp["lags"])
    if s0 < base:  # pragma: no cover - the state keeps enough rows (window_length)
        raise RuntimeError(f"update state keeps {rows.shape[0] - k} dates of residuals, {n_old - s0} needed")
    u = rows[s0 - base:]  # C-contiguous: a slice of rows
    ts_sums = _specific_sums(state, sp)
    robust: dict = {}
    if ts_sums is None:
        ts_var, h, gamma = time_series_stage(u, sp)
        ts_var, h, gamma = (np.ascontiguousarray(a[-k:]) for a in (ts_var, h, gamma))
    else:  # the carried sums: bit-identical to the fit's σ²_TS (the slice's are not); γ in numpy
        ts_var = np.ascontiguousarray(np.stack([ts_sums.step(rows, t - base) for t in range(n_old, n_old + k)]))
        carried = carried_sums(state[f"{P}residuals"], n_old)  # None after a copy (a fresh process, new stocks)
        h, gamma, cols = robust_rows(u, s0, n_old, sp["window"], sp["min_obs"], sp["full_obs"], sp["blend"],
                                     carried=carried, out=robust)
        if cols.size:  # an empty window at the refresh after earlier returns: the kernel's residue
            _, h_k, gamma_k = time_series_stage(np.ascontiguousarray(u[:, cols]), sp)
            h[:, cols], gamma[:, cols] = h_k[-k:], gamma_k[-k:]
    inputs = specific_inputs(resid_new, ex_new)
    cs = cross_section_stage(ts_var, h, gamma, inputs, sp, overwrite_ts_var=sp["shrink"] != 0)
    cap_prev = state[f"{P}lag_cap"][-1]
    sig_prev = np.concatenate([state[f"{P}sig_prev"][None], cs.sig_sh[:-1]])
    estu_prev = np.concatenate([state[f"{P}estu_prev"].astype(bool)[None], cs.estu[:-1]])
    cap_prev = np.concatenate([cap_prev[None], inputs.cap[:-1]])
    num, den = float(state[f"{P}specific_num"]), float(state[f"{P}specific_den"])
    lam = np.ones(k)
    if sp["vra_half_life"] is not None and n_all >= 2:
        b2 = vra_b2_rows(resid_new, sig_prev, cap_prev, estu_prev)
        nums, dens = specific_iir(b2, sp["vra_half_life"], num, den)
        with np.errstate(invalid="ignore", divide="ignore"):
            lam = np.where(dens > 0, np.sqrt(nums / dens), 1.0)
        num, den = float(nums[-1]), float(dens[-1])
    part = dict(num=num, den=den, sig_prev=cs.sig_sh[-1].copy(), estu_prev=cs.estu[-1].copy(), ts_sums=ts_sums,
                robust=robust)
    var = final_variance(resid_new, cs.sig_sh, None if sp["shrink"] != 0 else ts_var, gamma, lam, sp["shrink"],
                         cs.complete)
    return var, lam, part


# --------------------------------------------------------------------------- public


def _panel_rows(panel: xr.Dataset, new_dates: np.ndarray, stocks: np.ndarray) -> xr.Dataset:
    """The panel's new dates on the model's (grown) stock axis."""
    dates = panel["date"].to_numpy()
    rows = panel.isel(date=np.flatnonzero(np.isin(dates, new_dates))) if dates.size != new_dates.size else panel
    if np.array_equal(rows["stock"].to_numpy(), stocks):
        return rows
    fills = {name: ("" if rows[name].dtype.kind in "USO" else np.nan) for name in rows.data_vars}
    return rows.reindex(stock=stocks, fill_value=fills)


def _grown_stocks(old_stocks: np.ndarray, panel: xr.Dataset) -> np.ndarray:
    """The model's stock axis, then the panel's stocks it does not have (in the panel's order)."""
    given = panel["stock"].to_numpy()
    if given.shape == old_stocks.shape and np.array_equal(given, old_stocks):
        return old_stocks
    extra = given[~np.isin(given, old_stocks)]
    if not extra.size:
        return old_stocks
    return np.asarray([*old_stocks.tolist(), *extra.astype(str).tolist()], dtype=str)  # wider names fit


def _refuse_kind(settings: Mapping[str, Any], panel: xr.Dataset) -> None:
    """Models whose method has no date-by-date update."""
    if not isinstance(panel, xr.Dataset):
        raise DimensionError(f"update: the panel must be an xarray Dataset (date, stock), got {type(panel).__name__}; "
                             "read one with rm.load(path)")
    hybrid = [n for n in settings.get("fixed_styles") or [] if re.match(r"^stat\d+$", n) and n not in panel]
    if int(settings.get("statistical_factors", 0) or 0) or hybrid:
        raise UpdateNotSupportedError(
            "update: a hybrid model (statistical_factors > 0) re-extracts its statistical factors from the whole "
            "residual history each fit; it cannot be updated date by date: refit it"
        )
    if settings.get("corr_standardise"):
        raise UpdateNotSupportedError(
            "update: corr_standardise=True estimates the correlations from standardised returns, whose sums the "
            "model's state does not carry yet: refit"
        )
    _require_variables(panel, settings)


def _advance(state: StateArrays, panel: xr.Dataset, settings: Mapping[str, Any]) -> tuple[dict, dict] | None:
    """:func:`advance` on numpy arrays: the new rows' variables and the new state's (by name)."""
    from riskmodel.models.update_append import grow_rows
    from riskmodel.models.update_robust import remember_sums
    from riskmodel.regression import factor_returns

    _refuse_kind(settings, panel)
    new_dates = _split_dates(state, panel, settings["cap"])
    if new_dates.size == 0:
        return None
    stocks = state.on_stocks(_grown_stocks(state["stock"], panel))
    rows = _panel_rows(panel, new_dates, stocks)
    labels_attr = state.attrs(f"{P}industry_code")["labels"] if f"{P}industry_code" in state else None
    labels = tuple(json.loads(labels_attr)) if isinstance(labels_attr, str) else tuple(labels_attr or ())
    ex_new = _new_exposures(rows, settings, labels, new_dates)
    lag = int(settings.get("lag", 1))
    returns_new = np.ascontiguousarray(rows["returns"].transpose("date", "stock").to_numpy(), dtype=np.float64)
    returns_old = state[f"{P}returns"][-lag:]
    wls = factor_returns(np.ascontiguousarray(np.concatenate([returns_old, returns_new])), _stacked(state, ex_new),
                         lag=lag, return_clip=settings["return_clip"], min_industry_size=settings["min_industry_size"])
    factors = state["factor"]
    if tuple(wls.factor_names) != tuple(factors.astype(str)):
        raise UpdateNotSupportedError(
            f"update: the new dates give the factors {list(wls.factor_names)}, the model has "
            f"{list(factors.astype(str))}: refit on the full panel"
        )
    f_new, resid_new = wls.factor_returns[lag:], np.ascontiguousarray(wls.residuals[lag:])
    n_old = int(state[f"{P}n_dates"])
    n_all = n_old + new_dates.size
    out = _rows_variables(rows, new_dates, stocks, state, ex_new, wls, lag)
    f_all = grow_rows(state[f"{P}factor_returns"], f_new)
    residuals = grow_rows(state[f"{P}residuals"], resid_new)  # the stored window, then the new dates
    fac = spec = None
    if f"{P}vra_b" in state:
        cov, lam_f, fac, _ = _factor_forecast(state, f_all, settings)
        var, lam_s, spec = _specific_forecast(state, residuals, ex_new, settings, n_all)
        out["factor_cov"] = xr.Variable(("date", "factor", "factor_"), cov)
        out["factor_vra"] = xr.Variable(("date",), lam_f)
        out["specific_var"] = xr.Variable(("date", "stock"), var)
        out["specific_vra"] = xr.Variable(("date",), lam_s)
        out["factor_"] = xr.Variable(("factor_",), factors)
    n_win = window_length(settings, n_all)
    window = {"residuals": residuals, **{name: grow_rows(state[f"{P}{name}"], out[name].values, n_win)
                                         for name in ("returns", "market_cap")}}
    window_dates = np.concatenate([state[f"{P}window"], new_dates.astype(state[f"{P}window"].dtype)])
    last = {name: out[name].values for name in ("style_exposure", "regression_weight", "market_cap", "imputed",
                                                "industry_code") if name in out}
    if lag > new_dates.size:  # pragma: no cover - lag > 1 with one new date
        old = {"market_cap": f"{P}lag_cap"}
        last = {name: np.concatenate([state[old.get(name, f"{P}{name}")], values]) for name, values in last.items()}
    coords = {"stock": stocks, "factor": factors, "style": state["style"]}
    new_state = make_state(window, window_dates, last, labels_attr, settings, f_all, coords, n_all, lag, fac, spec)
    if spec is not None and spec["robust"]:  # the robust statistic's running sums, for the next update in memory
        remember_sums(new_state[f"{P}residuals"].values, spec["robust"]["key"], spec["robust"]["sums"])
    return out, new_state


def advance(state: xr.Dataset, panel: xr.Dataset, settings: Mapping[str, Any]) -> tuple[xr.Dataset, xr.Dataset] | None:
    """The new dates of ``panel`` as a fitted model computes them, and the state after them.

    Parameters
    ----------
    state : Dataset
        The ``update_*`` variables (:func:`riskmodel.models.update_state.build_state`).
    panel : Dataset (date, stock)
        Dates after the model's last one (earlier dates are checked against the stored
        window and otherwise ignored); stocks not in the model are appended to its axis.
    settings : mapping
        The model's settings.

    Returns
    -------
    (rows, state) or None
        ``rows``: the model's variables on the new dates (stock axis: the model's, then the
        new stocks); ``state``: the state after them. None when the panel has no new date.
    """
    result = _advance(StateArrays(state.variables), panel, settings)
    if result is None:
        return None
    rows, new_state = result
    coords = [name for name in ("date", "stock", "factor", "style", "factor_") if name in rows]
    rows_ds = xr.Dataset({n: v for n, v in rows.items() if n not in coords}, coords={n: rows[n] for n in coords})
    return rows_ds, state_dataset(new_state)


def _rows_variables(rows, new_dates, stocks, state: StateArrays, ex_new, wls, lag) -> dict[str, xr.Variable]:
    """The regression's and the exposures' variables of the new dates, and their coordinates."""
    def var(dims, values):
        return xr.Variable(dims, values)

    out = {
        "returns": var(("date", "stock"), rows["returns"].transpose("date", "stock").to_numpy()),
        "factor_returns": var(("date", "factor"), wls.factor_returns[lag:]),
        "factor_se": var(("date", "factor"), wls.se[lag:]),
        "residuals": var(("date", "stock"), wls.residuals[lag:]),
        "r2": var(("date",), wls.r2[lag:]),
        "n_obs": var(("date",), np.asarray(wls.n_obs[lag:], dtype=np.int64)),
        "n_clipped": var(("date",), np.asarray(wls.n_clipped[lag:], dtype=np.int64)),
        "style_exposure": var(("date", "stock", "style"), ex_new.styles),
        "regression_weight": var(("date", "stock"), ex_new.weights),
        "market_cap": var(("date", "stock"), ex_new.cap),
        "imputed": var(("date", "stock", "style"), np.ascontiguousarray(ex_new.imputed).view(np.int8)),
    }
    if ex_new.industry is not None:
        out["industry_code"] = xr.Variable(("date", "stock"), ex_new.industry.astype(np.int32, copy=False),
                                           {"labels": state.attrs(f"{P}industry_code")["labels"]})
    out["date"] = var(("date",), pd.DatetimeIndex(new_dates).to_numpy())
    out["stock"] = var(("stock",), stocks)
    out["factor"] = var(("factor",), state["factor"])
    out["style"] = var(("style",), state["style"])
    return out


#: A state with no date: :func:`advance` on it only checks the panel and the settings.
_EMPTY_STATE = {f"{P}n_dates": xr.Variable((), np.int64(0)), f"{P}window": xr.Variable((f"{P}window",),
                                                                                        np.zeros(0, "datetime64[ns]"))}


def _carried_state(ds: xr.Dataset, settings: Mapping[str, Any]) -> StateArrays | None:
    """The state a model's dataset carries, when of this layout and built under its settings."""
    variables = ds.variables
    n_dates = variables.get(f"{P}n_dates")
    if n_dates is None or int(n_dates.attrs.get("version", 0)) != STATE_VERSION:
        return None
    if n_dates.attrs.get("settings") != _settings_json(settings):
        return None  # built under other settings: rebuild from the stored arrays
    return StateArrays(variables)


def apply_update(fitted: Any, panel: xr.Dataset, settings: Mapping[str, Any] | None = None) -> Any:
    """:meth:`FittedFactorModel.update`: the model with the panel's new dates appended.

    Raises
    ------
    SettingsMismatchError, HistoryMismatchError, UpdateNotSupportedError
        See :meth:`FittedFactorModel.update`.
    """
    check_same_settings(fitted.settings, settings)
    state = _carried_state(fitted.dataset, fitted.settings)
    if state is None:
        _advance(StateArrays(_EMPTY_STATE), panel, fitted.settings)  # the refusals that need no state
        state = StateArrays(build_state(fitted).variables)
    result = _advance(state, panel, fitted.settings)
    if result is None:
        return fitted
    rows, new_state = result
    return type(fitted)(dataset=append_rows(fitted.dataset, rows, new_state), settings=fitted.settings)


def _settings_json(settings: Mapping[str, Any]) -> str:
    from riskmodel._params import jsonable_settings

    return json.dumps(jsonable_settings(settings))
