"""The headline tables of docs/benchmarks.md and the README quote the committed result JSONs.

A benchmark rerun that changes a JSON without the docs (or an edit that loses a table)
fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
DOC = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _row(label: str) -> list[str]:
    """Cells of the docs/benchmarks.md table row whose first cell is ``label``."""
    rows = [line for line in DOC.splitlines() if line.startswith(f"| {label} |")]
    assert len(rows) == 1, f"{label!r}: {len(rows)} rows in docs/benchmarks.md"
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def _quoted(cell: str, value: float) -> None:
    """``cell`` shows ``value`` at the precision it is written with."""
    text = re.search(r"-?\d[\d,]*\.?\d*", cell).group().replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert float(text) == pytest.approx(round(value, decimals), abs=0.51 * 10**-decimals), (cell, value)


FR_ROWS = [
    # table label, JSON row, the riskmodel row it is compared with (the same threads)
    ("`regression.factor_returns` (no clip)", "riskmodel (return_clip=None)", "riskmodel (return_clip=None)"),
    ("`regression.factor_returns` (clip at 5 robust σ)", "riskmodel (return_clip=5)", "riskmodel (return_clip=None)"),
    ("`regression.factor_returns`, one thread", "riskmodel (1 numba thread)", "riskmodel (1 numba thread)"),
    ("numpy normal equations + Cholesky", "numpy normal equations + Cholesky", "riskmodel (return_clip=None)"),
    ("numpy normal equations + Cholesky, one thread", "numpy normal equations + Cholesky (1 BLAS thread)",
     "riskmodel (1 numba thread)"),
    ("numpy per-day `lstsq` loop, one thread", "numpy loop (1 BLAS thread)", "riskmodel (1 numba thread)"),
    ("numpy per-day `lstsq` loop", "numpy per-day lstsq loop", "riskmodel (return_clip=None)"),
    ("toraniko `estimate_factor_returns`", "toraniko estimate_factor_returns", "riskmodel (return_clip=None)"),
]


@pytest.mark.parametrize(("label", "name", "base"), FR_ROWS)
def test_factor_returns_table_quotes_its_json(label, name, base):
    report = _load("factor_returns.json")
    results = {r["name"]: r for r in report["results"]}
    row = results[name]
    cells = _row(label)
    _quoted(cells[2], row["seconds"])
    _quoted(cells[3], row["cpu_seconds"])
    _quoted(cells[4], row["seconds"] / results[base]["seconds"])
    _quoted(cells[5], row["cpu_seconds"] / results[base]["cpu_seconds"])
    _quoted(cells[6], row["days_timed"])
    assert ("extrapolated" in cells[6]) == row["extrapolated"], cells[6]
    assert f"load average {report['conditions']['load_average_before'][0]:.1f}" in DOC


def test_full_fit_table_quotes_its_json():
    report = _load("full_fit.json")
    ours, peer, same = report["results"]
    like = report["like_with_like"]
    scale = report["config"]["n_days"] / like["dates"]
    rows = [
        # label, dates, seconds, wall ratio, user CPU, user-CPU ratio, system
        ("riskmodel `FactorRiskModel.fit`", report["config"]["n_days"], ours["seconds"], 1.0,
         ours["user_seconds"], 1.0, ours["system_seconds"]),
        (f"riskmodel `FactorRiskModel.fit` (the same {like['dates']} dates)", like["dates"], same["seconds"], 1.0,
         same["user_seconds"], 1.0, same["system_seconds"]),
        (f"skfolio `CharacteristicsFactorModel.fit`, warm ({like['dates']} dates)", like["dates"],
         peer["measured_seconds"], like["wall_ratio"], peer["user_seconds"] / scale, like["user_cpu_ratio"],
         peer["system_seconds"] / scale),
        (f"skfolio, cold (its first fit, {like['dates']} dates)", like["dates"], peer["cold"]["seconds"],
         like["cold_wall_ratio"], peer["cold"]["user_seconds"], peer["cold"]["user_seconds"] / same["user_seconds"],
         peer["cold"]["system_seconds"]),
        (f"skfolio warm, scaled to {report['config']['n_days']:,} dates (× {scale:.0f})", report["config"]["n_days"],
         peer["seconds"], report["speedup_vs_skfolio"], peer["user_seconds"], like["extrapolated_user_cpu_ratio"],
         peer["system_seconds"]),
    ]
    for label, *values in rows:
        cells = _row(label)
        for cell, value in zip(cells[1:7], values, strict=True):
            _quoted(cell, value)
    assert f"{ours['peak_bytes'] / 1e9:.2f} GB" in _row("riskmodel `FactorRiskModel.fit`")[7]
    assert f"{ours['memory_ratio']:.2f} ×" in _row("riskmodel `FactorRiskModel.fit`")[7]
    # like with like: the same dates, both warm; the ratios are what the JSON derives from its rows
    assert peer["n_days_fitted"] == same["n_days_fitted"] == like["dates"]
    assert like["wall_ratio"] == pytest.approx(peer["measured_seconds"] / same["seconds"])
    assert like["user_cpu_ratio"] == pytest.approx(peer["user_seconds"] / scale / same["user_seconds"])
    stages = ", ".join(
        f"{label} {ours['stages'][key]:.2f} s"
        for label, key in [("exposures", "build_exposures"), ("factor returns", "factor_returns")]
    )
    assert stages in DOC
    assert f"load average {report['conditions']['load_average_before'][0]:.1f}" in DOC
    # the README's speed table quotes the same run
    assert f"{ours['seconds']:.1f} s, {ours['memory_ratio']:.2f}× inputs peak" in README
    assert f"{like['user_cpu_ratio']:.0f}× less user CPU than skfolio" in README
    assert f"{like['wall_ratio']:.0f}× faster in wall time" in README


@pytest.mark.parametrize("index", [0, 1])
def test_audit_table_quotes_its_json(index):
    row = _load("audit.json")["rows"][index]
    cells = _row(f"{row['n_dates']:,}")
    _quoted(cells[1], row["audit_seconds"])
    _quoted(cells[2], row["spectrum_seconds"])
    _quoted(cells[3], row["dense_seconds"])
    _quoted(cells[4], row["dense_over_audit_time"])
    _quoted(cells[5], row["audit_peak_x_matrix"])
    _quoted(cells[6], row["dense_peak_x_matrix"])


def test_timeseries_table_quotes_its_json():
    report = _load("timeseries.json")
    ts, st = report["timeseries"], report["statistical"]
    cells = _row("time-series loadings (expanding OLS per stock, refit every 21 days, daily residuals)")
    _quoted(cells[1], ts["riskmodel_s"])
    _quoted(cells[2], ts["lstsq_loop_s"])
    assert f"{ts['lstsq_stocks_timed']:,} of 5,000 stocks timed" in cells[2]
    _quoted(cells[3], ts["speedup"])
    cells = _row("the same, riskmodel on one thread (like the baseline)")
    _quoted(cells[1], ts["riskmodel_1thread_s"])
    _quoted(cells[3], ts["speedup_1thread"])
    cells = _row(f"statistical model (rolling 504-day PCA, {st['refits']} refits, fixed k)")
    _quoted(cells[1], st["riskmodel_fixed_k_s"])
    _quoted(cells[2], st["numpy_svd_baseline_s"])
    _quoted(cells[3], st["speedup"])
    _quoted(_row("statistical model, k chosen by Bai–Ng")[1], st["riskmodel_bai_ng_s"])
    assert f"load average {report['conditions']['load_average_before'][0]:.1f}" in DOC


@pytest.mark.parametrize(
    ("label", "task", "n_portfolios", "source"),
    [
        ("build the operator vs form Σ", "build", 0, "portfolio_risk.json"),
        ("decompose (Σ already formed)", "decompose", 1, "portfolio_risk.json"),
        ("form + decompose", "form+decompose", 1, "portfolio_risk.json"),
        ("decompose, every part materialised", "decompose", 1000, "portfolio_risk.json"),
        ("the same on one core (`--threads 1`)", "decompose", 1000, "portfolio_risk_1thread.json"),
        ("solve (factorisation cached)", "solve", 1, "portfolio_risk.json"),
        ("set-up + solve", "setup+solve", 1, "portfolio_risk.json"),
    ],
)
def test_portfolio_risk_table_quotes_its_json(label, task, n_portfolios, source):
    (row,) = [r for r in _load(source)["rows"] if r["task"] == task and r["n_portfolios"] == n_portfolios]
    cells = _row(label)
    for cell, seconds in ((cells[2], row["structured_s"]), (cells[3], row["dense_s"])):
        _quoted(cell, seconds * 1e3)  # ms
    _quoted(cells[4], row["speedup"])
