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
        "numpy per-day lstsq loop",
        "numpy loop (1 BLAS thread)",
    ]
    assert all(row["seconds"] > 0 for row in saved["results"])
    # the baseline computes the same estimator
    assert saved["agreement_vs_numpy"]["factor_returns_max_rel"] < 1e-8
    assert "× riskmodel" in capsys.readouterr().out
