"""Benchmarks run at toy size so they do not rot (no peers, no timing assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import bench_factor_returns

    yield bench_factor_returns
    sys.modules.pop("bench_factor_returns", None)


def test_bench_factor_returns_quick(bench_module, tmp_path, capsys):
    out = tmp_path / "factor_returns.json"
    report = bench_module.main(["--quick", "--no-peers", "--repeat", "1", "--output", str(out)])
    saved = json.loads(out.read_text())
    assert saved["config"] == report["config"] and saved["config"]["n_stocks"] == 300
    names = [row["name"] for row in saved["results"]]
    assert names == [
        "riskmodel (return_clip=None)",
        "riskmodel (return_clip=5)",
        "riskmodel (1 numba thread)",
        "numpy normal equations + Cholesky",
        "numpy normal equations + Cholesky (1 BLAS thread)",
        "numpy per-day lstsq loop",
        "numpy loop (1 BLAS thread)",
    ]
    assert all(row["seconds"] > 0 and row["cpu_seconds"] > 0 for row in saved["results"])
    # the strong baseline runs on every date; the lstsq loop's extrapolation is recorded
    by_name = {row["name"]: row for row in saved["results"]}
    assert not by_name["numpy normal equations + Cholesky"]["extrapolated"]
    assert by_name["numpy normal equations + Cholesky"]["days_timed"] == 59
    assert by_name["numpy loop (1 BLAS thread)"]["threads"] == "1 BLAS thread"
    # both baselines compute the same estimator
    assert saved["agreement_vs_numpy"]["factor_returns_max_rel"] < 1e-8
    assert saved["agreement_vs_normal_equations"]["factor_returns_max_rel"] < 1e-8
    assert saved["agreement_vs_normal_equations"]["residuals_max_abs"] < 1e-10
    # the run's conditions and the like-with-like ratios are stored
    assert len(saved["conditions"]["load_average_before"]) == 3
    ratios = saved["like_with_like"]
    assert ratios["normal_equations_1thread_vs_riskmodel_1thread"] == pytest.approx(
        by_name["numpy normal equations + Cholesky (1 BLAS thread)"]["seconds"]
        / by_name["riskmodel (1 numba thread)"]["seconds"])
    assert "× riskmodel" in capsys.readouterr().out
