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
