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


def test_factor_returns_table_quotes_its_json():
    results = {r["name"]: r for r in _load("factor_returns.json")["results"]}
    base = results["riskmodel (return_clip=None)"]["seconds"]
    for label, name in [
        ("`regression.factor_returns` (no clip)", "riskmodel (return_clip=None)"),
        ("`regression.factor_returns` (clip at 5 robust σ)", "riskmodel (return_clip=5)"),
        ("numpy per-day `lstsq`, 1 BLAS thread (252 days, extrapolated)", "numpy loop (1 BLAS thread)"),
        ("numpy per-day `lstsq`, default threads (extrapolated)", "numpy per-day lstsq loop"),
        ("toraniko `estimate_factor_returns` (10 days, extrapolated)", "toraniko estimate_factor_returns"),
    ]:
        cells = _row(label)
        seconds = results[name]["seconds"]
        _quoted(cells[1], seconds)
        _quoted(cells[2], seconds / base)


def test_full_fit_table_quotes_its_json():
    report = _load("full_fit.json")
    ours, peer = report["results"]
    cells = _row("riskmodel `FactorRiskModel.fit`")
    _quoted(cells[1], ours["seconds"])
    _quoted(cells[3], ours["cpu_seconds"])
    _quoted(cells[4], ours["system_seconds"])
    assert f"{ours['peak_bytes'] / 1e9:.2f} GB" in cells[5]
    assert f"{ours['memory_ratio']:.2f} ×" in cells[5]
    cells = _row("skfolio `CharacteristicsFactorModel.fit` (504 dates × 5)")
    _quoted(cells[1], peer["seconds"])
    _quoted(cells[2], report["speedup_vs_skfolio"])
    _quoted(cells[3], peer["cpu_seconds"])
    _quoted(cells[4], peer["system_seconds"])
    stages = ", ".join(
        f"{label} {ours['stages'][key]:.2f} s"
        for label, key in [("exposures", "build_exposures"), ("factor returns", "factor_returns")]
    )
    assert stages in DOC
    # the README's speed table quotes the same run
    assert f"{ours['seconds']:.1f} s, {ours['memory_ratio']:.2f}× inputs peak" in README
    assert f"{report['speedup_vs_skfolio']:.0f}× faster than skfolio" in README


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
