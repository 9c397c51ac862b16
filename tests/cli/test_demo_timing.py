"""The README's timing of ``riskmodel demo`` is the committed first-run measurement
(benchmarks/demo_first_run.py: fresh venv, empty numba cache, a first and a second run)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quotes_the_first_run_measurement():
    record = json.loads((ROOT / "benchmarks" / "results" / "demo_first_run.json").read_text())
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    first, second = record["first_run"], record["second_run"]
    assert record["cache_files_removed_before_first_run"] > 0 or record["cache_files_after_first_run"] > 0
    assert f"needed {first['cpu_seconds']:.0f} CPU-seconds, the second run {second['cpu_seconds']:g}" in readme
    assert f"that was {first['wall_seconds']:.0f} s and {second['wall_seconds']:.0f} s of wall time" in readme
    assert f"load average about {round(first['load_average_before'][0])}" in readme
    assert "benchmarks/results/demo_first_run.json" in readme
    assert record["machine"]["cores"] == 2 and "2-core machine" in readme
