"""benchmarks/compile_time.py: the committed record is a real first run (an empty cache that the
fit filled) and a real second one (nothing left to compile); the script's timed fit reports
what it did to the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "benchmarks" / "results" / "compile_time.json"



def test_the_committed_record_is_a_first_and_a_second_run():
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    first, second = record["first_run"], record["second_run"]
    assert first["cached_kernels_before"] == 0 < first["cached_kernels_after"]
    assert second["cached_kernels_before"] == second["cached_kernels_after"] == first["cached_kernels_after"]
    assert first["fit_wall_seconds"] > second["fit_wall_seconds"] > 0
    assert first["fit_cpu_seconds"] > second["fit_cpu_seconds"] > 0
    for run in (first, second):  # the fit is part of its process
        assert run["process_wall_seconds"] >= run["fit_wall_seconds"]
        assert len(run["load_average_before"]) == len(run["load_average_after"]) == 3
    assert record["compile_seconds_estimate"] == pytest.approx(first["fit_wall_seconds"] - second["fit_wall_seconds"])
    assert record["conditions"]["load_average_before"] == first["load_average_before"]
    assert record["panel"]["n_stocks"] * record["panel"]["n_days"] < 2**20  # the panel checks compile nothing


@pytest.mark.slow
def test_a_fit_with_a_warm_cache_compiles_nothing(tmp_path, benchmark_script):
    """A first fit fills an empty cache; a second, in a fresh process, finds every kernel cached."""
    script = benchmark_script("compile_time")
    import riskmodel as rm

    panel = rm.simulate(60, 120, seed=1, n_industries=4, styles=["size"])
    path = tmp_path / "panel.nc"
    rm.save(panel, path)
    cache = tmp_path / "cache"
    cache.mkdir()
    first = script.timed_fit(path, cache)
    assert first["cached_kernels_before"] == 0 < first["cached_kernels_after"]
    second = script.timed_fit(path, cache)
    assert second["cached_kernels_before"] == second["cached_kernels_after"] == first["cached_kernels_after"]
    assert second["fit_cpu_seconds"] < first["fit_cpu_seconds"]
