"""The panel checks' numba path (issue 21): from ``_KERNEL_MIN_CELLS`` cells on, the
plausibility checks of ``validate_panel`` and the style check of ``check_fundamental_data``
run as parallel kernels (``riskmodel.kernels.panel_checks``). With the threshold at 0 the
behaviour tests of ``test_plausibility.py`` pass unchanged, and on a panel with holes,
percent returns, cap jumps and flat styles both paths give the same figures, bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import riskmodel.kernels.panel_checks as panel_checks
from riskmodel.data import validation
from riskmodel.models import pipeline
from tests.data import test_plausibility as behaviour

BEHAVIOUR = [
    "test_clean_panel_passes_silently",
    "test_return_above_100_percent_warns_with_stock_and_date",
    "test_percent_returns_are_refused_from_the_spread",
    "test_percent_returns_of_a_low_volatility_universe_are_refused_from_the_caps",
    "test_caps_that_do_not_follow_returns_do_not_judge_the_scale",
    "test_percent_returns_of_a_few_stocks_are_refused_from_the_pooled_spread",
    "test_zero_market_cap_warns_naming_the_stocks",
    "test_market_cap_jump_without_a_return_warns",
    "test_market_cap_jump_with_its_return_is_fine",
    "test_dask_backed_panel_gets_the_same_checks",
]


@pytest.fixture
def calls(monkeypatch):
    """Kernels on every panel, and the number of calls of each kernel."""
    counted: dict[str, int] = {}
    for name in panel_checks.__all__:
        kernel = getattr(panel_checks, name)

        def counting(*args, _kernel=kernel, _name=name):
            counted[_name] = counted.get(_name, 0) + 1
            return _kernel(*args)

        monkeypatch.setattr(panel_checks, name, counting)
    monkeypatch.setattr(validation, "_KERNEL_MIN_CELLS", 0)
    monkeypatch.setattr(pipeline, "_KERNEL_MIN_CELLS", 0)
    return counted


@pytest.mark.parametrize("name", BEHAVIOUR)
def test_behaviour_is_kept_on_the_kernel_path(name, calls):
    if name == "test_dask_backed_panel_gets_the_same_checks":
        pytest.importorskip("dask")
    getattr(behaviour, name)()
    assert calls.get("robust_spread_kernel", 0) >= 1


def _messy_panel(scale: float = 1.0):
    ds = behaviour._panel(n_days=600, seed=4, scale=scale)
    rng = np.random.default_rng(5)
    for var in ("returns", "market_cap", "value"):
        ds[var].values[rng.random(ds[var].shape) < 0.07] = np.nan
    ds["market_cap"].values[300:, 2] *= 1000.0  # a jump
    ds["market_cap"].values[400:, 8] /= 50.0  # another
    ds["returns"].values[10:20] = np.nan  # empty dates
    ds["returns"].values[30, :3] = 0.0
    return ds


def _both_paths(monkeypatch, fn):
    monkeypatch.setattr(validation, "_KERNEL_MIN_CELLS", 1 << 62)
    monkeypatch.setattr(pipeline, "_KERNEL_MIN_CELLS", 1 << 62)
    numpy_result = fn()
    monkeypatch.setattr(validation, "_KERNEL_MIN_CELLS", 0)
    monkeypatch.setattr(pipeline, "_KERNEL_MIN_CELLS", 0)
    return numpy_result, fn()


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_kernel_path_gives_the_numpy_figures(monkeypatch, scale):
    ds = _messy_panel(scale)
    r, caps = ds["returns"], ds["market_cap"]
    former, new = _both_paths(monkeypatch, lambda: (validation._return_spread(r),
                                                     validation._cap_return_scale(r, caps)))
    assert former == new
    assert former[0][1] == 589 and former[1][2] > 5000  # dates used: 600 less the first and 10 empty ones

    def jump_messages():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            validation._warn_cap_jumps(caps, r)
        return [str(w.message) for w in caught]

    former, new = _both_paths(monkeypatch, jump_messages)
    assert former == new and len(former) == 1 and "stock S02" in former[0]


def test_style_fault_is_the_same_on_both_paths(monkeypatch):
    rng = np.random.default_rng(0)
    varied = rng.standard_normal((50, 30))
    varied[rng.random(varied.shape) < 0.3] = np.nan
    flat = np.where(rng.random((50, 30)) < 0.5, 2.5, np.nan)
    flat[7] = np.nan
    flat[9, 4] = np.inf  # not a value: the row stays flat
    for values, expected in ((varied, None), (flat, "constant"), (np.full((50, 30), np.nan), "no value")):
        former, new = _both_paths(monkeypatch, lambda v=values: pipeline._style_fault(v))
        assert former == new
        assert (former is None) if expected is None else (expected in former)
