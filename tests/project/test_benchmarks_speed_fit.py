"""The speed-to-the-limit benchmark of the full fit runs at toy size so it does not rot
(no timing assertions: only the structure of its JSON and the checks it makes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import bench_speed_fit

    yield bench_speed_fit
    for name in ("bench_speed_fit", "bench_full_fit"):
        sys.modules.pop(name, None)


def test_bench_speed_fit_quick(bench_module, tmp_path, capsys):
    out = tmp_path / "speed_fit.json"
    report = bench_module.main(["--quick", "--rounds", "1", "--repeat", "1", "--output", str(out),
                                "--panel", str(tmp_path / "panel.nc")])
    saved = json.loads(out.read_text())
    assert saved["config"] == report["config"]
    assert (saved["config"]["n_stocks"], saved["config"]["n_dates"]) == (400, 260)
    rows = {r["name"]: r for r in saved["results"]}
    assert list(rows) == ["current", "former panel checks", "eigen_sims=50", "eigen_sims=0"]
    assert rows["former panel checks"]["fit_bit_identical_to_current"] is True  # the checks change no number
    current = rows["current"]
    # the current method repeats itself bit for bit and is its own reference
    assert current["repeats_bit_identical"] is True and current["sigma_f_max_rel_diff"] == 0.0
    assert 0 < rows["eigen_sims=50"]["sigma_f_median_rel_diff"] <= rows["eigen_sims=50"]["sigma_f_max_rel_diff"]
    # the Σ_f settings leave D untouched, and do change Σ_f
    assert all(r["d_bit_identical"] for r in rows.values())
    assert rows["eigen_sims=50"]["sigma_f_max_rel_diff"] > 1e-6
    # eigendecompositions: one per defined date plus (draws + 1) per recompute date
    n_rec = current["n_draws"] // 100
    assert n_rec >= 1 and rows["eigen_sims=50"]["n_draws"] == 50 * n_rec
    assert current["n_eigh"] - rows["eigen_sims=0"]["n_eigh"] == n_rec * 101
    assert rows["eigen_sims=50"]["n_eigh"] == rows["eigen_sims=0"]["n_eigh"] + n_rec * 51
    for r in rows.values():
        assert r["seconds"] > 0 and r["user_seconds"] > 0 and r["peak_bytes"] >= 0
        assert r["memory_ratio"] == pytest.approx(r["peak_bytes"] / saved["input_bytes"])
    assert set(saved["stages_current"]) == {
        "panel_checks_former", "panel_checks",  # the two panel checks timed side by side, former and kernels
        "check_fundamental_data", "validate_panel", "exposures", "regression", "sigma_f_ewma_newey_west", "sigma_f_eigen_monte_carlo",
        "sigma_f_eigen_rebuild", "sigma_f_vra", "d_time_series", "d_cross_section", "d_vra", "d_final"}
    lim, rf = saved["limits"], saved["roofline"]
    assert lim["bandwidth_GBps"] > 0 and lim["eigh71_over_gemm71"] > 0
    assert lim["peak_GFlops"] == pytest.approx(lim["peak_GFlops_per_core"] * lim["cpu_count"])
    assert set(saved["stages_current_user_cpu"]) == set(saved["stages_current"]) - {
        "sigma_f_eigen_monte_carlo", "sigma_f_eigen_rebuild"} | {"sigma_f_eigen"}
    assert rf["fit_cpu_over_roofline"] == pytest.approx(current["user_seconds"] / (rf["roofline_seconds"] * lim["cpu_count"]))
    assert rf["roofline_seconds"] == pytest.approx(max(rf["seconds_at_bandwidth"], rf["seconds_at_peak_flops"]))
    assert rf["fit_over_roofline"] == pytest.approx(current["seconds"] / rf["roofline_seconds"])
    assert rf["flops"] == pytest.approx(sum(rf["flops_by_stage"].values()))
    ws = saved["warm_start"]
    assert ws["dates"] >= 10 and 0 <= ws["strong_pairs_median"] <= ws["pairs"]
    assert len(saved["load_average"]["before"]) == 3
    assert "| current |" in capsys.readouterr().out
