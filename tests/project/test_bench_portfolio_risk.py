"""Toy-size run of benchmarks/bench_portfolio_risk.py so the script does not rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_portfolio_risk.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_portfolio_risk", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_toy_size_agrees_with_dense(bench):
    result = bench.run(n_stocks=60, n_factors=5, n_portfolios=(1, 7), repeat=1, settle=0.0)
    tasks = [(r["task"], r["n_portfolios"]) for r in result["rows"]]
    assert tasks == [("build", 0), ("decompose", 1), ("form+decompose", 1), ("decompose", 7),
                     ("form+decompose", 7), ("solve", 1), ("setup+solve", 1)]
    for row in result["rows"]:
        assert row["max_rel_diff"] <= 1e-10, row  # the two paths compute the same numbers
        assert row["structured_s"] > 0 and row["dense_s"] > 0
        assert row["structured_peak_bytes"] > 0 and row["dense_peak_bytes"] > 0
        assert np.isclose(row["speedup"], row["dense_s"] / row["structured_s"])
    assert "speedup" in bench.format_table(result)


def test_dense_reference_decomposition_is_consistent(bench):
    B, F, d = bench.make_world(40, 4, seed=3)
    W = np.random.default_rng(0).normal(size=(3, 40))
    vol, fvol, svol, fc, sc, mcr, cr = bench.dense_decompose(bench.dense_sigma(B, F, d), B, F, d, W)
    np.testing.assert_allclose(fc.sum(1) + sc, vol, rtol=1e-12)
    np.testing.assert_allclose(cr.sum(1), vol, rtol=1e-12)
    np.testing.assert_allclose(fvol**2 + svol**2, vol**2, rtol=1e-12)


def test_main_writes_json(bench, tmp_path, capsys):
    out = tmp_path / "portfolio_risk.json"
    assert bench.main(["--n-stocks", "50", "--n-factors", "3", "--n-portfolios", "1", "4",
                       "--repeat", "1", "--threads", "1", "--settle", "0", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["n_stocks"] == 50 and data["settings"]["n_portfolios"] == [1, 4]
    assert len(data["rows"]) == 7
    assert "form+decompose" in capsys.readouterr().out


@pytest.mark.parametrize("exposures, grouped", [("barra", True), ("dense", False)])
def test_exposure_structures_reach_their_path(bench, exposures, grouped):
    """Barra-shaped exposures (market, 7 industries, 4 styles) run the grouped kernel, dense
    ones the GEMMs; both agree with the dense path."""
    result = bench.run(n_stocks=80, n_factors=12, n_portfolios=(5,), repeat=1, settle=0.0, exposures=exposures)
    assert result["settings"]["grouped_kernel"] is grouped
    assert all(row["max_rel_diff"] <= 1e-10 for row in result["rows"])
    B, _, _ = bench.make_world(80, 12, exposures=exposures)
    assert bool(np.all(B[:, 0] == 1.0)) is grouped  # the market column is exactly ones only for barra
