"""The model-comparison example (issue #7 item 4) runs end to end on a small real slice.

``examples/real_model_comparison.py`` is run through its ``main(argv)`` with ``--quick`` on
the 120 largest stocks over two years, writing into a temporary folder. The checks are
properties that hold whatever the data, not golden numbers: the JSON matches what
``main`` returned, every model and family is present with finite statistics, the four
models are evaluated over one period, the precision figures are consistent with each
other, and the figures are below 200 kB.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.project.test_examples import SLICE, _script  # one loader of the example scripts, one data slice

MODELS = ("fundamental", "hybrid", "time-series", "statistical")
FAMILIES = ("random", "sector", "optimised", "pure_factors")


@pytest.fixture(scope="module")
def comparison(shared_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    facts = _script("real_model_comparison").main([*SLICE, "--data", str(shared_data_dir), "--out", str(out)])
    return facts, json.loads((out / "model_comparison.json").read_text()), out


def test_json_and_figures(comparison):
    facts, written, out = comparison
    assert set(written) == set(facts)
    assert written["figures"] == ["model_comparison_precision.png", "model_comparison_rolling_bias.png"]
    for name in written["figures"]:
        png = out / name
        assert png.exists() and 0 < png.stat().st_size < 200_000, png


def test_bias_table_complete_and_on_one_period(comparison):
    _, facts, _ = comparison
    lo, hi = facts["band"]
    assert lo < 1 < hi and np.isclose(hi - 1, np.sqrt(2 / facts["n_outcomes"]), rtol=0.05)
    assert set(facts["bias"]) == {f"{m} | {f}" for m in MODELS for f in FAMILIES}
    for key, row in facts["bias"].items():
        assert row["mean_bias"] > 0 and row["qlike"] > 0 and 0 <= row["share_inside"] <= 1, key
    assert facts["bias"]["fundamental | sector"]["n"] == 11
    # the time-series model has exactly the six Fama-French factors as pure factors
    assert facts["bias"]["time-series | pure_factors"]["n"] == 6
    k = facts["statistical_n_factors"]["first"]
    assert facts["bias"]["statistical | pure_factors"]["n"] == k >= 1
    assert facts["bias"]["hybrid | pure_factors"]["n"] == facts["bias"]["fundamental | pure_factors"]["n"] + 2
    # evaluation starts the day after the first common rebuild date
    first = pd.Timestamp(facts["precision"]["first_rebuild"])
    assert pd.Timestamp(facts["evaluation"].split(" .. ")[0]) > first


def test_precision_and_mahalanobis_consistent(comparison):
    _, facts, _ = comparison
    table = facts["precision"]["table"]
    assert set(table) == {*MODELS, "equal weight"}
    for model in MODELS:
        row = table[model]
        assert row["realised_vol"] > 0 and row["predicted_vol"] > 0
        assert np.isclose(row["ratio"], row["realised_vol"] / row["predicted_vol"], rtol=1e-5)
        # long-short weights summing to one: gross exposure at least 1
        assert row["mean_gross"] >= 1 - 1e-9
    assert table["equal weight"]["mean_gross"] == pytest.approx(1.0, abs=1e-9)
    assert table["equal weight"]["predicted_vol"] is None
    # the equal-weighted book of large US stocks moves with the market; the factor part of a prediction is part of it
    assert 0.7 < table["equal weight"]["realised_beta"] < 1.3
    for model in MODELS:
        assert 0 < table[model]["predicted_factor_vol"] <= table[model]["predicted_vol"] * (1 + 1e-6)
    # every model's minimum-variance portfolio beats the equal-weighted book of the same stocks
    assert max(table[m]["realised_vol"] for m in MODELS) < table["equal weight"]["realised_vol"]
    lo, hi = facts["precision"]["common_stocks"]
    assert 0 < lo <= hi <= facts["n_stocks"]
    assert facts["mahalanobis"]["n_days"] == facts["precision"]["n_days"]
    for model in MODELS:
        m = facts["mahalanobis"][model]
        assert 0.3 < m["mean"] < 3 and m["sd"] > 0, (model, m)
    assert table["fundamental"]["t_vs_fundamental"] is None
    assert all(np.isfinite(table[m]["t_vs_fundamental"]) for m in MODELS[1:])
    assert facts["diagnostics"]["time-series"]["first_factor"] == "mkt_rf"
    assert facts["diagnostics"]["fundamental"]["first_factor"] == "market"


def test_newey_west_t_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(7)
    # autocorrelated series with a non-zero mean (overlapping 21-day holds look like this)
    x = np.convolve(rng.standard_normal(620), np.ones(21) / 21, mode="valid") + 0.05
    expected = sm.OLS(x, np.ones(x.size)).fit(cov_type="HAC", cov_kwds={"maxlags": 21}).tvalues[0]
    got = _script("real_model_comparison").newey_west_t(x, 21)
    assert got == pytest.approx(expected, rel=1e-10)
    # lags=0 is the plain t statistic of the mean (ddof 0 variance)
    plain = x.mean() / (x.std() / np.sqrt(x.size))
    assert _script("real_model_comparison").newey_west_t(x, 0) == pytest.approx(plain, rel=1e-12)
