"""The full-fit benchmark runs at toy size so it does not rot (no peers, no timing assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import bench_full_fit

    yield bench_full_fit
    sys.modules.pop("bench_full_fit", None)


def test_bench_full_fit_quick(bench_module, tmp_path, capsys):
    out = tmp_path / "full_fit.json"
    panel = tmp_path / "panel.nc"
    report = bench_module.main(["--quick", "--no-peers", "--repeat", "1", "--output", str(out),
                                "--panel", str(panel)])
    saved = json.loads(out.read_text())
    assert saved["config"] == report["config"]
    assert (saved["config"]["n_stocks"], saved["config"]["n_days"]) == (400, 260)
    assert [r["name"] for r in saved["results"]] == ["riskmodel FactorRiskModel.fit"]
    row = saved["results"][0]
    assert row["seconds"] > 0 and row["peak_bytes"] > 0 and row["n_days_fitted"] == 260
    assert row["user_seconds"] > 0 and row["system_seconds"] >= 0 and row["page_faults"] >= 0
    assert row["cpu_seconds"] == pytest.approx(row["user_seconds"] + row["system_seconds"], abs=0.05)
    assert set(row["stages"]) == {"build_exposures", "factor_returns", "factor_covariance", "specific_variance"}
    assert saved["input_bytes"] == (2 + 4) * 400 * 260 * 8
    assert row["memory_ratio"] == pytest.approx(row["peak_bytes"] / saved["input_bytes"])
    assert saved["machine"]["cpu_count"] >= 1 and "numpy" in saved["versions"]
    text = capsys.readouterr().out
    assert "| riskmodel FactorRiskModel.fit |" in text and "memory / inputs" in text and "of which system" in text
    # the saved panel is reused (same shape) rather than simulated again
    mtime = panel.stat().st_mtime
    bench_module.make_panel(dict(bench_module.QUICK), panel)
    assert panel.stat().st_mtime == mtime


def test_make_panel_never_replaces_a_panel_of_another_shape(bench_module, tmp_path):
    """A quick run pointed at the cached full-size panel (or at any other file) leaves it alone."""
    panel = tmp_path / "panel.nc"
    small = dict(bench_module.QUICK, n_stocks=120, n_days=40)
    bench_module.make_panel(small, panel)
    before = panel.read_bytes()
    with pytest.raises(SystemExit, match=r"120 stocks x 40 days, not the 400 x 260 panel asked for"):
        bench_module.make_panel(dict(bench_module.QUICK), panel)
    assert panel.read_bytes() == before
    foreign = tmp_path / "notes.nc"
    foreign.write_text("a user's file")
    with pytest.raises(SystemExit, match="not a riskmodel panel"):
        bench_module.make_panel(small, foreign)
    assert foreign.read_text() == "a user's file"
