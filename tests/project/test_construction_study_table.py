"""The construction study's table in docs/guide/construction.md is the one the script writes.

``python examples/construction_study.py --part report`` builds the table from the committed
result files of its ``peers`` and ``variants`` parts. The test reruns that part on copies of
those files in a temporary folder (so nothing in the repository is rewritten) and requires
the regenerated table to equal both the committed ``examples/results/construction_study_table.md``
and the table quoted in the guide, and the regenerated ``construction_study.json`` to equal
the committed one. The regime table of the same guide is the one ``regime_response.py --table``
prints from ``examples/results/regime_response.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "guide" / "construction.md"
HEADER = "| covariance | gmv 2010-2016 |"


def guide_table(text: str, header: str = HEADER) -> str:
    """The block of table lines starting at the line that begins with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    pytest.importorskip("matplotlib")
    work = tmp_path_factory.mktemp("construction_study")
    (work / "examples" / "results").mkdir(parents=True)
    for script in ("construction_study.py", "real_data_common.py"):
        shutil.copy(EXAMPLES / script, work / "examples" / script)
    inputs = [EXAMPLES / "results" / "construction_study_peers.json",
              *sorted((EXAMPLES / "results").glob("construction_study_variants*.json"))]
    assert len(inputs) > 1
    for path in inputs:
        shutil.copy(path, work / "examples" / "results" / path.name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(work / "examples" / "construction_study.py"), "--part", "report"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return work / "examples" / "results"


def test_report_part_reproduces_the_committed_table_and_json(regenerated):
    table = (regenerated / "construction_study_table.md").read_text(encoding="utf-8")
    assert table == (EXAMPLES / "results" / "construction_study_table.md").read_text(encoding="utf-8")
    assert table.count("\n") > 10
    fresh = json.loads((regenerated / "construction_study.json").read_text(encoding="utf-8"))
    committed = json.loads((EXAMPLES / "results" / "construction_study.json").read_text(encoding="utf-8"))
    assert fresh == committed


def test_guide_quotes_the_regenerated_table(regenerated):
    table = (regenerated / "construction_study_table.md").read_text(encoding="utf-8")
    assert guide_table(GUIDE.read_text(encoding="utf-8")) == table


def test_an_edited_cell_in_the_guide_is_caught():
    committed = (EXAMPLES / "results" / "construction_study_table.md").read_text(encoding="utf-8")
    text = GUIDE.read_text(encoding="utf-8")
    assert guide_table(text) == committed
    edited = text.replace("| riskmodel: baseline | 10.16 |", "| riskmodel: baseline | 10.15 |", 1)
    assert edited != text
    assert guide_table(edited) != committed


def test_guide_quotes_the_regime_table_of_its_json():
    """``examples/regime_response.py --table`` prints the regime table from its committed JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "regime_response.py"), "--table"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.strip() + "\n"
    assert printed.startswith("| setting | flash crash")
    assert printed.count("\n") >= 10
    assert guide_table(GUIDE.read_text(encoding="utf-8"), "| setting | flash crash") == printed
