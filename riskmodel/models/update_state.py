"""The state a fitted fundamental model carries forward for its daily update (issue 20).

:func:`build_state` rebuilds, from a fitted model's stored arrays, everything
:func:`riskmodel.models.update.advance` needs to compute the next dates without the
history: the factor returns and the factor-VRA series ``B_F`` of every date, the
eigen-adjustment run (its first date and the bias ``v(k)`` of its latest recompute date),
the last date's eigen-adjusted factor volatilities, the trailing window of residuals,
returns and caps, the last ``lag`` rows of exposures, the specific VRA's two IIR sums and
the last date's shrunk specific volatilities and estimation universe. Building it re-runs
the forecast stages on the stored history once (about the cost of those stages in a fit)
and checks that the VRA multipliers it finds are bit-identical to the stored ones: a model
written by another release, or edited, is refused rather than extended with different
arithmetic.

The state travels as variables named ``update_*`` (dims ``update_*``, plus ``stock``,
``factor`` and ``style``) of the model's dataset, so ``rm.save`` / ``rm.load`` keep it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import xarray as xr

from riskmodel._params import jsonable_settings
from riskmodel.errors import ModelFileError

__all__ = [
    "STATE_PREFIX",
    "STATE_VERSION",
    "build_state",
    "state_of",
    "strip_state",
    "window_length",
    "factor_stage_settings",
    "vra_b_series",
    "sums_of",
    "factor_vra_rows",
    "specific_iir",
    "make_state",
    "StateArrays",
    "fill_for",
    "state_dataset",
]

#: Prefix of the state's variables and dimensions in a model's dataset.
STATE_PREFIX = "update_"
#: Layout of the state (a different one is rebuilt, never read).
STATE_VERSION = 1
#: Extra dates of residuals kept beyond the specific window and lags: the robust blending
#: statistics are recomputed exactly every 32 dates, so a recomputation must start on that
#: grid and hold a whole window before its refresh date (at most 2 × 32 more dates).
_WINDOW_SLACK = 96


def fill_for(dtype: np.dtype) -> Any:
    """Value of a stock absent from a date: NaN, 0 for flags (int8/bool), -1 for codes, ''."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b" or dtype == np.int8:
        return 0
    if dtype.kind in "iu":
        return -1
    return ""


class StateArrays:
    """A state's variables (``xarray.Variable`` by name, as in a model's ``variables``) read
    as numpy arrays; ``state[name]`` is on the stock axis ``stocks`` once it is set (new
    stocks absent, see :func:`fill_for`)."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.stocks: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}

    def on_stocks(self, stocks: np.ndarray) -> np.ndarray:
        """Read the stock-axis variables on ``stocks`` (the model's axis, then new stocks) from now on."""
        self.stocks = stocks
        self._cache.clear()
        return stocks

    def __contains__(self, name: str) -> bool:
        return name in self.variables

    def attrs(self, name: str) -> Mapping[str, Any]:
        return self.variables[name].attrs

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._cache:
            return self._cache[name]
        var = self.variables[name]
        values = var.values
        if self.stocks is not None and "stock" in var.dims and name != "stock":
            axis = var.dims.index("stock")
            if values.shape[axis] != len(self.stocks):
                shape = list(values.shape)
                shape[axis] = len(self.stocks)
                padded = np.full(shape, fill_for(values.dtype), dtype=values.dtype)
                padded[(slice(None),) * axis + (slice(0, values.shape[axis]),)] = values
                values = padded
        self._cache[name] = values
        return values


def strip_state(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the ``update_*`` variables and coordinates."""
    names = [n for n in ds.variables if str(n).startswith(STATE_PREFIX)]
    return ds.drop_vars(names)


def state_of(ds: xr.Dataset) -> xr.Dataset | None:
    """The state held in a model's dataset (None when absent or of another layout)."""
    names = [n for n in ds.variables if str(n).startswith(STATE_PREFIX)]
    if f"{STATE_PREFIX}n_dates" not in names:
        return None
    state = ds[names]
    if int(state[f"{STATE_PREFIX}n_dates"].attrs.get("version", 0)) != STATE_VERSION:
        return None
    return state


def window_length(settings: Mapping[str, Any], n_dates: int) -> int:
    """Dates of residuals, returns and caps the state keeps (the specific window, its lags
    and the refresh slack, at most all dates)."""
    from riskmodel.covariance.specific import specific_settings
    from riskmodel.models.settings import specific_variance_kwargs

    s = specific_settings(**specific_variance_kwargs(settings))
    return int(min(n_dates, s["window"] + s["lags"] + _WINDOW_SLACK))


def factor_stage_settings(settings: Mapping[str, Any], n_dates: int, n_factors: int) -> dict[str, Any]:
    """The factor covariance stage's resolved settings for a series of ``n_dates`` dates."""
    from riskmodel.covariance.factor import _settings
    from riskmodel.covariance.settings import FACTOR_DEFAULTS
    from riskmodel.models.settings import factor_covariance_kwargs

    kw = {**FACTOR_DEFAULTS, **factor_covariance_kwargs(settings)}
    return _settings((n_dates, n_factors), kw, progress=False)


def sums_of(state: Mapping[str, Any], s: Mapping[str, Any], m: int) -> dict[str, Any] | None:
    """The carried EWMA sums of a state (a Dataset, or its arrays by name:
    :mod:`riskmodel.models.update_ewma`), or None."""
    from riskmodel.models.update_ewma import SPECS, EwmaSums

    if f"{STATE_PREFIX}ewma_cov_c_sxy" not in state:
        return None
    out = {}
    for name, (kind, hl, lags, win) in SPECS.items():
        sums = EwmaSums.empty(kind, m, s[lags] if lags else 0, s[hl], s[win])
        sums.s_xy = np.array(state[f"{STATE_PREFIX}ewma_{name}_sxy"], dtype=np.float64)
        sums.s_w = np.array(state[f"{STATE_PREFIX}ewma_{name}_sw"], dtype=np.float64)
        sums.n_w = np.array(state[f"{STATE_PREFIX}ewma_{name}_nw"], dtype=np.int64)
        out[name] = sums
    return out


def vra_b_series(f_rows: np.ndarray, sigma_prev_rows: np.ndarray) -> np.ndarray:
    """``B_F,t`` of the factor VRA for rows of factor returns and the eigen-adjusted
    volatilities of the date before each (NaN where no factor is present), as
    :func:`riskmodel.covariance.factor._vra` forms it."""
    z2 = (f_rows / sigma_prev_rows) ** 2
    n_z = np.sum(np.isfinite(z2), axis=1)
    with np.errstate(invalid="ignore"):
        b2 = np.where(n_z > 0, np.nansum(z2, axis=1) / np.maximum(n_z, 1), np.nan)
    return np.sqrt(b2)


def specific_iir(b2: np.ndarray, half_life: float, zi_num: float, zi_den: float) -> tuple[np.ndarray, np.ndarray]:
    """The specific VRA's running sums ``(num, den)`` over ``b2`` started from the sums of
    the date before (0, 0 at the first date), as
    :func:`riskmodel.covariance.specific.vra_multiplier` carries them."""
    have = np.isfinite(b2)
    a = 2.0 ** (-1.0 / half_life)
    x_num, x_den = np.where(have, b2, 0.0), have.astype(np.float64)
    num, den = np.empty(b2.shape), np.empty(b2.shape)
    for i in range(b2.size):  # scipy.signal.lfilter([1], [1, -a]): y_i = a y_(i-1) + x_i, operation for operation
        zi_num = num[i] = a * zi_num + x_num[i]
        zi_den = den[i] = a * zi_den + x_den[i]
    return num, den


def factor_vra_rows(b: np.ndarray, defined: np.ndarray, s: Mapping[str, Any], n_total: int) -> np.ndarray:
    """``λ_F`` of the last ``defined.size`` dates from the ``B_F`` series ``b`` ending there
    (at least its VRA window long, or all of it), as :func:`riskmodel.covariance.factor._vra`."""
    from riskmodel.covariance.factor import _nw_series

    lam = np.where(defined, 1.0, np.nan)
    if s["vra_half_life"] is None or n_total < 2:
        return lam
    one = (np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    lam2, count = _nw_series(np.ascontiguousarray(b[None, :]), one, s["vra_half_life"], 0, s["vra_window"], False)
    k = defined.size
    ok = defined & (count[0, -k:] >= s["vra_min_periods"])
    lam[ok] = np.sqrt(lam2[0, -k:][ok])
    return lam



def _factor_part(f: np.ndarray, stored_vra: np.ndarray, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Eigen run, bias, last volatilities and the ``B_F`` series, from the whole history."""
    from riskmodel.covariance.factor import _base_covariance, _eigen_adjust, _recompute_schedule, _row_valid

    n_dates, m = f.shape
    s = factor_stage_settings(settings, n_dates, m)
    f0, available = _base_covariance(f, s)
    f_eig, bias, rec_dates = _eigen_adjust(f0, available, _row_valid(f), s)
    sigma = np.sqrt(np.diagonal(f_eig, axis1=1, axis2=2))
    b = np.concatenate([[np.nan], vra_b_series(f[1:], sigma[:-1])]) if n_dates > 1 else np.full(n_dates, np.nan)
    run_start, latest_bias = -1, np.full(m, np.nan)
    defined = available.any(axis=1)
    if defined[-1]:
        same = np.all(available == available[-1], axis=1) & defined
        breaks = np.flatnonzero(~same)
        run_start = int(breaks[-1] + 1) if breaks.size else 0
        if s["eigen_sims"]:
            _, latest = _recompute_schedule(available, s["eigen_every"])
            latest_bias = bias[int(np.searchsorted(rec_dates, latest[-1]))].copy()
    lam = factor_vra_rows(b, defined, s, n_dates)
    if not np.array_equal(lam, stored_vra, equal_nan=True):
        raise ModelFileError(
            "the model's factor VRA multipliers cannot be reproduced from its stored factor returns (written by "
            "another release, or edited): refit it on the full panel instead of updating it"
        )
    from riskmodel.models.update_ewma import carried_sums

    return dict(b=b, sigma_prev=sigma[-1], avail_prev=available[-1], run_start=run_start, bias=latest_bias,
                sums=carried_sums(f, s))


def _specific_part(fitted: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The specific VRA's sums and the last date's shrunk volatilities and ESTU."""
    from riskmodel.covariance.specific import (
        cross_section_stage,
        specific_inputs,
        specific_settings,
        time_series_stage,
        vra_b2_rows,
    )
    from riskmodel.models.settings import specific_variance_kwargs

    s = specific_settings(**specific_variance_kwargs(settings))
    inputs = specific_inputs(fitted.dataset["residuals"].to_numpy(), fitted._exposures())
    u = inputs.residuals
    ts_var, n_obs, gamma = time_series_stage(u, s)
    from riskmodel.models.update_ewma import carried_specific_sums

    ts_sums = carried_specific_sums(u, ts_var[-40:].copy(), s["lags"], s["half_life"], s["window"])
    cs = cross_section_stage(ts_var, n_obs, gamma, inputs, s, overwrite_ts_var=s["shrink"] != 0)
    n_dates = u.shape[0]
    num = den = 0.0
    lam = np.ones(n_dates)
    if s["vra_half_life"] is not None and n_dates >= 2:
        b2 = np.full(n_dates, np.nan)
        b2[1:] = vra_b2_rows(u[1:], cs.sig_sh[:-1], inputs.cap[:-1], cs.estu[:-1])
        nums, dens = specific_iir(b2, s["vra_half_life"], 0.0, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            lam = np.where(dens > 0, np.sqrt(nums / dens), 1.0)
        num, den = float(nums[-1]), float(dens[-1])
    if not np.array_equal(lam, fitted.dataset["specific_vra"].to_numpy(), equal_nan=True):
        raise ModelFileError(
            "the model's specific VRA multipliers cannot be reproduced from its stored residuals and exposures "
            "(written by another release, or edited): refit it on the full panel instead of updating it"
        )
    return dict(num=num, den=den, sig_prev=cs.sig_sh[-1].copy(), estu_prev=cs.estu[-1].copy(), ts_sums=ts_sums)


def build_state(fitted: Any) -> xr.Dataset:
    """The update state of a fitted fundamental model, from its stored arrays.

    Parameters
    ----------
    fitted : FittedFactorModel

    Returns
    -------
    Dataset
        The ``update_*`` variables (see the module docstring).

    Raises
    ------
    ModelFileError
        The stored forecasts cannot be reproduced bit for bit from the stored history.
    """
    ds = strip_state(fitted.dataset)
    settings = fitted.settings
    lag = int(settings.get("lag", 1))
    n_dates = ds.sizes["date"]
    n_win = window_length(settings, n_dates)
    forecast = "factor_cov" in ds
    f = np.ascontiguousarray(ds["factor_returns"].to_numpy(), dtype=np.float64)
    fac = _factor_part(f, ds["factor_vra"].to_numpy(), settings) if forecast else None
    spec = _specific_part(fitted, settings) if forecast else None
    labels = ds["industry_code"].attrs["labels"] if "industry_code" in ds else None
    window = {name: ds[name].to_numpy()[n_dates - n_win:].copy() for name in _WINDOW}  # the state's own rows
    last = {name: ds[name].to_numpy()[n_dates - lag:].copy() for name in _LAST if name in ds}
    coords = {name: ds[name].to_numpy() for name in ("stock", "factor", "style")}
    variables = make_state(window, ds["date"].to_numpy()[n_dates - n_win:], last, labels, settings, f, coords,
                           n_dates, lag, fac, spec)
    return state_dataset(variables)


#: The model's variables whose trailing window the state keeps, and those of the last ``lag`` dates.
_WINDOW = ("residuals", "returns", "market_cap")
_LAST = ("style_exposure", "regression_weight", "market_cap", "imputed", "industry_code")


def make_state(window: Mapping[str, np.ndarray], window_dates: np.ndarray, last: Mapping[str, np.ndarray],
               labels: Any, settings: Mapping[str, Any], f: np.ndarray, coords: Mapping[str, np.ndarray],
               n_dates: int, lag: int, fac: dict[str, Any] | None, spec: dict[str, Any] | None) -> dict[str, Any]:
    """The state's variables (``xarray.Variable`` by name, its coordinates included) from its
    parts: the trailing rows of ``window``'s residuals, returns and caps (the last
    :func:`window_length` of them are kept; ``window_dates`` their dates), the last ``lag``
    rows of ``last``'s exposures (both on the model's stock axis ``coords["stock"]``), the
    factor returns ``f`` of every date and the forecast parts. Arrays are used as given (no
    copy): the caller hands over arrays no model holds. :func:`state_dataset` makes the
    Dataset."""
    p = STATE_PREFIX
    n_win = window_length(settings, n_dates)
    win = (f"{p}window", "stock")
    lagged = (f"{p}lag", "stock")
    rows = {name: values[values.shape[0] - n_win:] for name, values in window.items()}
    last = {name: values[values.shape[0] - lag:] for name, values in last.items()}
    out: dict[str, Any] = {
        f"{p}factor_returns": ((f"{p}date", "factor"), f),
        f"{p}residuals": (win, rows["residuals"]),
        f"{p}returns": (win, rows["returns"]),
        f"{p}market_cap": (win, rows["market_cap"]),
        f"{p}style_exposure": ((*lagged, "style"), last["style_exposure"]),
        f"{p}regression_weight": (lagged, last["regression_weight"]),
        f"{p}lag_cap": (lagged, last["market_cap"]),
        f"{p}imputed": ((*lagged, "style"), last["imputed"]),
        f"{p}n_dates": ((), np.int64(n_dates), {"version": STATE_VERSION,
                                                 "settings": json.dumps(jsonable_settings(settings))}),
    }
    if labels is not None:
        out[f"{p}industry_code"] = (lagged, last["industry_code"], {"labels": labels})
    if fac is not None:
        out[f"{p}vra_b"] = ((f"{p}date",), fac["b"])
        out[f"{p}sigma_prev"] = (("factor",), fac["sigma_prev"])
        out[f"{p}avail_prev"] = (("factor",), fac["avail_prev"].astype(np.int8))
        out[f"{p}eigen_bias"] = (("factor",), fac["bias"])
        out[f"{p}eigen_run_start"] = ((), np.int64(fac["run_start"]))
        for name, sums in (fac.get("sums") or {}).items():
            dims = (f"{p}{name}_pair", f"{p}{name}_term")
            out[f"{p}ewma_{name}_sxy"] = (dims, sums.s_xy)
            out[f"{p}ewma_{name}_sw"] = (dims, sums.s_w)
            out[f"{p}ewma_{name}_nw"] = (dims, sums.n_w)
    if spec is not None:
        out[f"{p}specific_num"] = ((), np.float64(spec["num"]))
        out[f"{p}specific_den"] = ((), np.float64(spec["den"]))
        out[f"{p}sig_prev"] = (("stock",), spec["sig_prev"])
        out[f"{p}estu_prev"] = (("stock",), spec["estu_prev"].astype(np.int8))
        sums = spec.get("ts_sums")
        if sums is not None:
            out[f"{p}ts_num"] = ((f"{p}ts_lag", "stock"), sums.num)
            out[f"{p}ts_den"] = ((f"{p}ts_lag", "stock"), sums.den)
            out[f"{p}ts_npair"] = ((f"{p}ts_lag", "stock"), sums.npair)
            out[f"{p}ts_cnt"] = (("stock",), sums.cnt)
    variables = {name: xr.Variable(*spec_) for name, spec_ in out.items()}
    variables[f"{p}window"] = xr.Variable((f"{p}window",), np.asarray(window_dates)[len(window_dates) - n_win:])
    for name in ("stock", "factor", "style"):
        variables[name] = xr.Variable((name,), np.asarray(coords[name]))
    return variables


#: The state's coordinates (dimension coordinates with an index).
STATE_COORDS = (f"{STATE_PREFIX}window", "stock", "factor", "style")


def state_dataset(variables: Mapping[str, Any]) -> xr.Dataset:
    """The state's variables (:func:`make_state`) as a Dataset."""
    data = {name: var for name, var in variables.items() if name not in STATE_COORDS}
    return xr.Dataset(data, coords={name: variables[name] for name in STATE_COORDS})
