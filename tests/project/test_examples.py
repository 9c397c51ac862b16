"""The real-data example scripts run end to end (small slice here; full runs marked slow).

Each script is run through its ``main(argv)`` on the 120 largest stocks over two years,
writing into a temporary folder; the checks are properties that hold whatever the data
(JSON written, figures below 200 kB, neutral books exactly neutral, bands consistent),
not golden numbers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SLICE = ["--start", "2013-01-02", "--end", "2014-12-31", "--stocks", "120", "--quick"]


def _script(name: str):
    """Import ``examples/<name>.py`` as a module (the folder is not a package)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def _run(name: str, data: Path, out: Path, extra: list[str]) -> dict:
    facts = _script(name).main([*extra, "--data", str(data), "--out", str(out)])
    written = json.loads((out / f"{name}.json").read_text())
    assert set(written) == set(facts)
    for png in out.glob("*.png"):
        assert png.stat().st_size < 200_000, png
    return written


def test_load_panel_slice(shared_data_dir):
    common = _script("real_data_common")
    panel = common.load_panel("2013-01-02", "2014-12-31", n_stocks=50, data=shared_data_dir)
    assert panel.sizes["stock"] == 50
    assert list(panel.attrs["styles"]) == list(common.STYLES)
    # descriptors come from the full history: 12-1 momentum exists on the first day of the slice
    assert np.isfinite(panel["momentum"].isel(date=0).to_numpy()).mean() > 0.9
    sectors = panel["sector"].to_numpy().astype(str)
    assert (sectors != "").all() and len(np.unique(sectors)) <= 11
    # the largest stocks by median cap over the slice were kept
    full = common.load_panel("2013-01-02", "2014-12-31", data=shared_data_dir)
    median = full["market_cap"].median("date").to_series().sort_values(ascending=False)
    assert set(panel["stock"].to_numpy()) == set(median.index[:50])
    assert panel["industry"].dtype.kind in "UO"


def test_real_risk_model_slice(shared_data_dir, tmp_path):
    facts = _run("real_risk_model", shared_data_dir, tmp_path, SLICE)
    lo, hi = facts["band"]
    assert lo < 1 < hi and np.isclose(hi - 1, np.sqrt(2 / facts["n_outcomes"]), rtol=0.05)
    # six variants x three families, every statistic finite and positive
    assert len(facts["table"]) == 18
    assert all(v["mean_bias"] > 0 and v["qlike"] > 0 for v in facts["table"].values())
    # row (f): the pooling's shares and the pooled model's own R² and sector biases are recorded
    pooled = facts["pooled_industries"]
    assert pooled["n_pooled"] + pooled["n_hosted"] <= pooled["n_cells"]
    assert np.isclose(pooled["share_pooled"], pooled["n_pooled"] / pooled["n_cells"], rtol=1e-5)
    assert np.isclose(pooled["share_hosted"], pooled["n_hosted"] / pooled["n_cells"], rtol=1e-5)
    assert 0 < pooled["mean_r2"] < 1
    assert set(facts["sector_bias_pooled"]) == set(facts["sector_bias_full"])
    assert (tmp_path / "real_risk_model_rolling_bias.png").exists()


def test_real_audit_slice(shared_data_dir, tmp_path):
    facts = _run("real_audit", shared_data_dir, tmp_path, SLICE)
    for key in ("no_industry", "with_industries"):
        audit = facts[key]
        assert audit["n_audited"] <= 120
        assert sum(c["size"] for c in audit["clusters"]) == audit["n_clustered"]
        assert audit["adjusted_rand"] is None or -1 <= audit["adjusted_rand"] <= 1
    assert (tmp_path / "real_audit_spectrum_no_industry.png").exists()


def test_real_signal_research_slice(shared_data_dir, tmp_path):
    facts = _run("real_signal_research", shared_data_dir, tmp_path, SLICE)
    # the neutral book has no exposure to size or industries on any day (to rounding)
    assert facts["real"]["max_control_exposure"] < 1e-10
    assert {k.split(" | ")[1] for k in facts["real"]["alpha"]} >= {"CAPM", "FF3", "Carhart", "FF5", "FF5+mom"}
    assert facts["simulated"]["spend_premium"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["real_risk_model", "real_audit", "real_signal_research"])
def test_full_run(shared_data_dir, tmp_path, name):
    facts = _run(name, shared_data_dir, tmp_path, [])
    assert facts


def test_run_all_reports_what_a_rerun_reproduced():
    """``run_all.compare_with_committed`` finds a planted change and ignores run facts (seconds, load)."""
    run_all = _script("run_all")
    committed = {"table": {"a | random": {"mean_bias": 1.04312, "qlike": 1.609}}, "band": [0.968, 1.032],
                 "seconds": 245.4, "load_average": {"before": [1.0]}, "window": "2007 .. 2016"}
    rerun = json.loads(json.dumps(committed))
    rerun.update(seconds=12.0, load_average={"before": [9.0]})
    rerun["table"]["a | random"]["mean_bias"] = 1.0431200004  # below the 6 digits the JSON keeps
    rerun["table"]["a | sector"], committed["table"]["a | sector"] = {"ratio": float("nan")}, {"ratio": None}  # NaN = null
    same = run_all.compare_with_committed(rerun, committed)
    assert same["numbers_compared"] == 4 and same["numbers_differing"] == 0 and same["max_abs_diff"] == 0
    rerun["table"]["a | random"]["mean_bias"] = 1.04412
    moved = run_all.compare_with_committed(rerun, committed)
    assert moved["numbers_differing"] == 1
    assert np.isclose(moved["max_abs_diff"], 1e-3) and list(moved["largest_diffs"]) == ["/table/a | random/mean_bias"]
    assert run_all.compare_with_committed(rerun, None) == {"committed": False}
