"""The real-data tables in the guides are the numbers the example scripts wrote.

The example scripts write their results to ``docs/figures/*.json``; the guides quote them
by hand. These tests compare the two, so a table cannot drift from the run behind it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "portfolio-risk.md"
FIGURES = ROOT / "docs" / "figures" / "real_risk_model.json"
COLUMNS = ("mean_bias", "share_inside", "mrad", "qlike")


def _guide_rows() -> list[tuple[str, str, tuple[float, ...]]]:
    """``(variant letter, family, values)`` of the guide's bias table, in order."""
    rows, variant = [], None
    table = GUIDE.read_text().split("| variant | family | mean bias |", 1)[1].split("\n\n", 1)[0]
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6:
            continue
        if cells[0]:
            variant = re.match(r"\(([a-z])\)", cells[0]).group(1)
        rows.append((variant, cells[1], tuple(float(c) for c in cells[2:])))
    return rows


def test_guide_bias_table_matches_the_example_output():
    table = json.loads(FIGURES.read_text())["table"]
    by_letter = {}
    for key, values in table.items():
        label, family = (part.strip() for part in key.split("|"))
        by_letter[(re.match(r"\(([a-z])\)", label).group(1), family)] = values
    rows = _guide_rows()
    assert len(rows) == len(table), "the guide's table and the JSON list different rows"
    for letter, family, quoted in rows:
        written = by_letter[(letter, family)]
        for column, value in zip(COLUMNS, quoted, strict=True):
            assert value == pytest.approx(written[column], abs=5e-4), (letter, family, column)


def test_guide_sector_table_matches_the_example_output():
    data = json.loads(FIGURES.read_text())
    text = GUIDE.read_text().split("| sector | (a) raw | (d) full |", 1)[1].split("\n\n", 1)[0]
    columns = ("sector_bias_raw", "sector_bias_full", "sector_bias_sector_model")
    n = 0
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for column, value in zip(columns, cells[1:4], strict=True):
            assert float(value) == pytest.approx(data[column][cells[0]], abs=5e-4), (cells[0], column)
        n += 1
    assert n == len(data["sector_bias_full"]) == 11


def _markdown_table(text: str, header: str) -> list[list[str]]:
    """Cell rows of the markdown table that starts with ``header`` (separator row skipped)."""
    body = text.split(header, 1)[1].split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()[2:]]


def test_model_comparison_bias_table_matches_the_example_output():
    guide = (ROOT / "docs" / "guide" / "model-comparison.md").read_text()
    written = json.loads((ROOT / "docs" / "figures" / "model_comparison.json").read_text())["bias"]
    family = None
    rows = _markdown_table(guide, "| family | model | n | mean bias | median bias |")
    for cells in rows:
        family = cells[0].replace(" ", "_") or family
        entry = written[f"{cells[1]} | {family}"]
        assert int(cells[2]) == entry["n"], (family, cells[1])
        for column, value in zip(("mean_bias", "median_bias", "share_inside", "mrad", "qlike"), cells[3:],
                                 strict=True):
            assert float(value.strip("*")) == pytest.approx(entry[column], abs=5e-4), (family, cells[1], column)
    assert len(rows) == len(written)


def test_audit_guide_headline_numbers_match_the_example_output():
    guide = (ROOT / "docs" / "guide" / "auditing.md").read_text()
    data = json.loads((ROOT / "docs" / "figures" / "real_audit.json").read_text())
    plain, ind, energy = data["no_industry"], data["with_industries"], data["energy_cluster"]
    expected = [
        f"MP edge {plain['mp_edge']:.3f}; null edge **{plain['null_edge']:.3f}**",
        f"**{plain['n_significant']} significant components**",
        (f"**{plain['n_clusters']} clusters** (cut ρ ≥ 0.1, size ≥ 5) covering {plain['n_clustered']} stocks, "
         f"{plain['n_flagged']} of them flagged"),
        f"{plain['n_clustered']} clustered stocks: {plain['adjusted_rand']:.3f}.",
        (f"The Energy cluster has {energy['size']} names, {energy['energy_members']} of the "
         f"{energy['energy_audited']} audited Energy stocks (purity {energy['purity']:.2f})"),
        f"correlates {energy['correlation']:.3f} with the daily log change of WTI crude",
        f"On the {energy['n_big_days']} largest oil moves",
        f"move's sign {100 * energy['hit_rate_big_moves']:.0f} % of the time",
        f"Null edge {ind['null_edge']:.3f}; **{ind['n_significant']} significant components**",
        f"**{ind['n_clusters']} clusters** covering {ind['n_clustered']} stocks",
        f"falls to **{ind['adjusted_rand']:.3f}**",
        f"rises from {data['mean_r2_window']['no_industry']:.3f} to {data['mean_r2_window']['with_industries']:.3f}",
    ]
    text = " ".join(guide.split())  # the guide wraps lines; compare on single spaces
    for phrase in expected:
        assert " ".join(phrase.split()) in text, phrase
