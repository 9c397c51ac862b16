"""The settings of :func:`riskmodel.data.simulation.simulate`: declared once
(:data:`PARAMETERS`, :data:`SPEND_PARAMETERS`), checked by
:func:`riskmodel._params.check_parameters`, and converted into one :class:`_Settings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodel._params import ParameterTable, check_parameters
from riskmodel.data._simulation_world import _RESERVED, checked_float, checked_int, int_at_least, number_in
from riskmodel.errors import InvalidParameterError

_SPEND_DEFAULTS: dict[str, float] = {
    "premium_vol": 0.03,  # annualised sd of the daily spend premium p_t
    "size_corr": -0.40,  # corr of the latent growth rate with the size latent
    "coverage": 0.8,  # fraction of stocks with card-spending data
    "gap_rate": 0.02,  # probability that a covered stock-day is missing
    "growth_mean": 0.04,  # mean annual spend growth
    "growth_sd": 0.15,  # cross-sectional sd of annual spend growth
    "noise_sd": 0.2,  # daily log-spend noise
}

#: The scalar settings of :func:`simulate`, declared once: ``{name: (check, expected)}``.
PARAMETERS: ParameterTable = {
    "n_stocks": int_at_least(2),
    "n_days": int_at_least(2),
    "n_industries": int_at_least(1),
    "min_industry_size": int_at_least(1),
    "seed": int_at_least(0),
    "listing_rate": number_in(0.0, 1.0),
    "delisting_rate": number_in(0.0, 1.0),
    "missing_rate": number_in(0.0, 1.0, open_high=True),
    "specific_scale": number_in(0.0, 1e3),
    "specific_tails": (lambda v: v in ("t", "gaussian"), "'t' or 'gaussian'"),
    "t_dof": number_in(2.0 + 1e-9, 1e6),
    "market_vol": number_in(0.0, 1.0),
    "industry_vol": number_in(0.0, 1.0),
    "style_vol": number_in(0.0, 1.0),
    "specific_vol_median": number_in(1e-8, 1.0),
    "size_dispersion": number_in(1e-6, 5.0),
    "style_persistence": number_in(0.0, 1.0, open_high=True),
    "spend_premium": number_in(-10.0, 10.0),
}
#: The checked entries of ``simulate(spend={...})``.
SPEND_PARAMETERS: ParameterTable = {
    "size_corr": number_in(-1.0, 1.0),
    "coverage": number_in(0.0, 1.0),
    "gap_rate": number_in(0.0, 1.0, open_high=True),
}


# ------------------------------------------------------------------------ validation
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
        start = checked_int("regime start_index", start, int_at_least(0))
        if start >= n_days:
            raise InvalidParameterError(
                f"simulate: regime start_index {start} is beyond the last day (n_days={n_days})."
            )
        out.append((start, checked_float("regime multiplier", mult, number_in(1e-6, 1e6))))
    return sorted(out)


def _spend_settings(spend: bool | Mapping[str, float]) -> tuple[bool, dict[str, float]]:
    """``(spend wanted, its settings)``: the defaults updated by a dict, checked."""
    spend_opts = dict(_SPEND_DEFAULTS)
    if isinstance(spend, Mapping):
        unknown = set(spend) - set(_SPEND_DEFAULTS)
        if unknown:
            raise InvalidParameterError(
                f"simulate: unknown spend settings {sorted(unknown)}; allowed {sorted(_SPEND_DEFAULTS)}."
            )
        spend_opts.update({k: float(v) for k, v in spend.items()})
        spend = True
    check_parameters("simulate: spend", SPEND_PARAMETERS, spend_opts)
    return bool(spend), spend_opts


@dataclass(frozen=True)
class _Settings:
    """The checked settings of one :func:`simulate` call (ints and floats converted)."""

    N: int
    T: int
    P: int
    min_size: int
    seed: int
    style_names: tuple[str, ...]
    listing_rate: float
    delisting_rate: float
    missing_rate: float
    regimes: list[tuple[int, float]]
    regime_specific: bool
    spend: bool
    spend_opts: dict[str, float]
    spend_premium: float
    dates: pd.DatetimeIndex
    dtype: np.dtype
    specific_scale: float
    specific_tails: str
    t_dof: float
    market_vol: float
    industry_vol: float
    style_vol: float
    specific_vol_median: float
    size_dispersion: float
    style_persistence: float

    @property
    def K(self) -> int:
        return len(self.style_names)


_INTS = ("n_stocks", "n_days", "n_industries", "min_industry_size", "seed")


def _settings(values: dict[str, Any], *, styles: Sequence[str], regimes: Any, regime_specific: bool,
              spend: bool | Mapping[str, float], start: str, dtype: Any) -> _Settings:
    """Check every setting by its declared rule; :class:`InvalidParameterError` names the first bad one."""
    check_parameters("simulate", PARAMETERS, values)
    v = {name: (int(x) if name in _INTS else x if name == "specific_tails" else float(x)) for name, x in values.items()}
    if v["n_stocks"] < v["min_industry_size"] * v["n_industries"]:
        raise InvalidParameterError(
            f"simulate: n_stocks={v['n_stocks']} < min_industry_size * n_industries = "
            f"{v['min_industry_size'] * v['n_industries']}; use more stocks or fewer industries."
        )
    style_names = _check_styles(styles)
    regime_list = _check_regimes(regimes, v["n_days"])
    spend, spend_opts = _spend_settings(spend)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidParameterError(f"simulate: dtype must be a float dtype, got {dtype}.")
    try:
        dates = pd.bdate_range(pd.Timestamp(start), periods=v["n_days"])
    except (TypeError, ValueError):
        raise InvalidParameterError(f"simulate: start={start!r} is not a date.") from None
    return _Settings(
        N=v["n_stocks"], T=v["n_days"], P=v["n_industries"], min_size=v["min_industry_size"], seed=v["seed"],
        style_names=style_names, listing_rate=v["listing_rate"], delisting_rate=v["delisting_rate"],
        missing_rate=v["missing_rate"], regimes=regime_list, regime_specific=regime_specific, spend=spend,
        spend_opts=spend_opts, spend_premium=v["spend_premium"], dates=dates, dtype=dtype,
        specific_scale=v["specific_scale"], specific_tails=v["specific_tails"], t_dof=v["t_dof"],
        market_vol=v["market_vol"], industry_vol=v["industry_vol"], style_vol=v["style_vol"],
        specific_vol_median=v["specific_vol_median"], size_dispersion=v["size_dispersion"],
        style_persistence=v["style_persistence"],
    )
