"""The real-data pipeline, rerun on a slice, gives the committed figures; a planted change does not.

The expected values in ``real_regression_expected.json`` were written by
``python -m tests.project.real_regression`` (not typed by hand), with the tolerance the
comparison uses. A 1 % change of one specific-risk setting (the shrinkage intensity, or the
specific half-life) must move some figure outside it: the check can fail.

The full-size comparison (every example, all stocks and dates, against the committed
``docs/figures/*.json``) is the slow test at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.project import real_regression
from tests.project.test_examples import _script

EXPECTED = json.loads(real_regression.EXPECTED.read_text())


@pytest.fixture(scope="module")
def real_data(request) -> Path:
    """``../shared/data`` (the conftest's fixture), else ``$RISKMODEL_DATA``; skip when neither exists."""
    given = os.environ.get("RISKMODEL_DATA")
    if given and (Path(given) / "us_equities_20070103_20161230.csv.gz").exists():
        return Path(given)
    return request.getfixturevalue("shared_data_dir")


@pytest.fixture(scope="module")
def figures(real_data):
    return real_regression.pipeline(real_data)


def test_expected_values_were_written_by_the_script():
    assert EXPECTED["written_by"] == "python -m tests.project.real_regression"
    assert EXPECTED["settings"] == real_regression.SETTINGS
    assert EXPECTED["slice"]["n_stocks"] == real_regression.N_STOCKS
    assert EXPECTED["tolerance"] == {"rtol": real_regression.RTOL, "atol": real_regression.ATOL}


def test_slice_reproduces_the_committed_figures(figures):
    assert real_regression.compare(figures, EXPECTED) == []


def test_compare_flags_a_one_percent_change_of_any_figure():
    moved = {name: value * 1.01 if value else 0.01 for name, value in EXPECTED["figures"].items()}
    assert len(real_regression.compare(moved, EXPECTED)) == len(EXPECTED["figures"])


@pytest.mark.parametrize(("setting", "default"), [("shrink", 0.1), ("specific_half_life", None)])
def test_planted_one_percent_change_of_a_specific_risk_setting_is_caught(real_data, monkeypatch, setting, default):
    import riskmodel as rm

    if default is None:  # the model's own default, e.g. specific_half_life
        default = getattr(rm.FactorRiskModel(), setting)
    monkeypatch.setitem(real_regression.SETTINGS, setting, default * 1.01)
    problems = real_regression.compare(real_regression.pipeline(real_data), EXPECTED)
    assert problems, f"a 1% change of {setting} went unnoticed"
    assert any(name.startswith("specific_vol") for name in (p.split(":")[0] for p in problems)), problems


# ---------------------------------------------------------------------------------------
# full size: the examples rerun against docs/figures/*.json
# ---------------------------------------------------------------------------------------

FULL_CHECKS = {
    # example: (keys of its JSON compared, absolute tolerance)
    "real_risk_model": (("mean_r2", "n_outcomes", "table", "sector_bias_full", "sector_bias_pooled", "pooled_industries"), 5e-4),
    "real_audit": (("no_industry", "with_industries"), 5e-4),
    "real_signal_research": (("real",), 5e-4),
    "real_model_comparison": (("bias", "mahalanobis", "mahalanobis_gaussian_sd", "rolling_bias_random_median"), 5e-4),
}


def _numbers(value, prefix=""):
    """Flatten nested dicts/lists to ``{path: number}`` (strings and None skipped)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _numbers(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}/{i}").items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {}
    return {prefix: float(value)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_CHECKS))
def test_full_run_reproduces_docs_figures(real_data, tmp_path, name):
    keys, atol = FULL_CHECKS[name]
    facts = _script(name).main(["--data", str(real_data), "--out", str(tmp_path)])
    written = {"real_model_comparison": "model_comparison"}.get(name, name)
    committed = json.loads((real_regression.ROOT / "docs" / "figures" / f"{written}.json").read_text())
    for key in keys:
        got, want = _numbers(facts[key]), _numbers(committed[key])
        assert set(got) == set(want), key
        for path, value in want.items():
            assert np.isclose(got[path], value, rtol=0, atol=atol), (name, key + path, got[path], value)
