"""Issue 19, friction 1: descriptors with a short start, flagged low-confidence until full."""

from __future__ import annotations

import json

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.data.descriptors import LOW_CONFIDENCE, SHORT_HISTORY, add_descriptors


@pytest.fixture(scope="module")
def panel():
    world = rm.simulate(n_stocks=150, n_days=300, seed=5)
    return world[["returns", "market_cap", "industry"]].assign_attrs(styles=[])


def _first_day(values) -> int:
    return int(np.flatnonzero(np.isfinite(values).any(axis=1))[0])


def test_the_short_start_gives_values_earlier_and_says_so(panel):
    default = add_descriptors(panel, ["momentum", "beta", "volatility", "size"])
    short = add_descriptors(panel, ["momentum", "beta", "volatility", "size"], short_history=True)
    first_return = _first_day(panel["returns"].values)
    for name, (_, min_history) in SHORT_HISTORY.items():
        early, late = _first_day(short[name].values), _first_day(default[name].values)
        assert early < late, name
        assert early - first_return <= min_history, name  # the documented minimum history
        assert short[name].attrs["min_history"] == min_history
        # the same value wherever the default has one: only cells with fewer returns change
        known = np.isfinite(default[name].values)
        np.testing.assert_array_equal(short[name].values[known], default[name].values[known])
        assert np.isfinite(short[name].values[known]).all()
    np.testing.assert_array_equal(short["size"].values, default["size"].values)
    assert LOW_CONFIDENCE not in default


def test_low_confidence_is_flagged_until_the_full_window(panel):
    short = add_descriptors(panel, ["momentum"], short_history=True)
    flag = short[LOW_CONFIDENCE].values
    mom = short["momentum"].values
    # flagged exactly where momentum exists but the default would have no value yet
    default = add_descriptors(panel, ["momentum"])["momentum"].values
    np.testing.assert_array_equal(flag, np.isfinite(mom) & ~np.isfinite(default))
    first = _first_day(mom)
    assert flag[first][np.isfinite(mom[first])].all()  # the first values are all short-window ones
    assert flag[-1].mean() < 0.1  # a year later only late listings are
    summary = json.loads(short.attrs["short_history"])
    mostly = flag.sum(axis=1) > 0.5 * np.isfinite(mom).sum(axis=1)
    last_flagged = short["date"].values[np.flatnonzero(mostly)[-1]]
    assert summary["momentum"]["low_confidence_until"] == str(np.datetime64(last_flagged, "D"))
    assert summary["momentum"]["min_history"] == 126


def test_a_short_start_panel_fits_from_its_first_half_year(panel):
    short = add_descriptors(panel, ["size", "momentum", "volatility"], short_history=True)
    fit = rm.FactorRiskModel(covariance=False, progress=False).fit(short)
    first_fit = _first_day(fit.factor_returns.values)
    assert first_fit <= SHORT_HISTORY["momentum"][1] + 3
