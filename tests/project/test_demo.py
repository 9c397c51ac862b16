"""`riskmodel demo`, the README's first command, end to end at a small size.

Run as a user runs it (``python -m riskmodel.cli demo``, a subprocess) on 300 stocks × 400
days. The checks are the facts docs/getting-started.md states about the demo's five
sections, at this size: the world it describes, the 14 factors, estimated style returns
close to the true ones, the mimicking-portfolio identity to rounding, a volatility split
whose parts add up, bias statistics of the four families, and an audit whose largest
cluster is made of the hidden "oil" names only; plus the files it writes.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STOCKS, DAYS = 300, 400


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "riskmodel-demo"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "riskmodel.cli", "demo", "-o", str(out), "--stocks", str(STOCKS), "--days", str(DAYS)],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = {key: _parse(value) for key, value in json.loads((out / "demo.json").read_text()).items()}
    return out, proc.stdout, facts


def _parse(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def test_files_written(demo):
    out, stdout, _ = demo
    for name in ("index.html", "audit.html", "demo.json", "factor_returns.png", "rolling_bias.png"):
        assert (out / name).stat().st_size > 0, name
    assert f"wrote {out}/index.html" in stdout


def test_the_world_and_the_factors(demo):
    _, stdout, facts = demo
    assert f"{STOCKS} stocks x {DAYS} days, 10 industries, styles ['size', 'value', 'momentum'], " \
           "one hidden 'oil' factor on 60 names" in stdout
    assert "14 factors (1 market, 10 industries, 3 styles)" in stdout
    # estimated style factor returns follow the true ones (0.91-0.96 at the docs' size)
    assert set(facts["style_return_correlation"]) == {"size", "value", "momentum"}
    assert all(0.85 < c < 1 for c in facts["style_return_correlation"].values()), facts
    # a factor is a portfolio, to rounding (~1e-17 in the docs)
    assert 0 <= facts["mimicking_identity_error"] < 1e-14


def test_the_volatility_split_adds_up(demo):
    _, stdout, facts = demo
    total, factor, specific = map(float, re.search(
        r"volatility ([\d.]+)%/yr\s+\(factor ([\d.]+)%, specific ([\d.]+)%\)", stdout).groups())
    assert total == pytest.approx(100 * facts["book_volatility_annual"], abs=0.005)
    assert total**2 == pytest.approx(factor**2 + specific**2, abs=0.01 * total)  # printed to 0.01 %
    assert 5 < total < 40 and specific < factor


def test_bias_statistics_of_four_families(demo):
    _, _, facts = demo
    assert set(facts["bias_by_family"]) == {"pure_factors", "eigenfactors", "random", "optimised"}
    assert all(0.7 < b < 1.4 for b in facts["bias_by_family"].values()), facts["bias_by_family"]


def test_the_audit_finds_the_hidden_oil_names(demo):
    _, stdout, facts = demo
    size, oil, others = map(int, re.search(
        r"largest cluster: (\d+) names, (\d+) of the 60 true 'oil' names \((\d+) others\)", stdout).groups())
    assert oil == facts["oil_found"] == size and others == 0  # every name of the cluster is an oil name
    assert size >= 20
    assert facts["clusters_after_refit"] == 0  # adding the cluster as a factor leaves nothing flagged


def test_run_all_reads_the_figures_the_demo_prints(demo):
    """examples/run_all.py keeps these figures in docs/figures/demo.json; its parser reads this run's report."""
    from tests.project.test_examples import _script

    _, stdout, facts = demo
    kept = _script("run_all").demo_facts(stdout, facts)
    assert (kept["n_factors"], kept["n_industries"], kept["n_styles"]) == (14, 10, 3)
    assert kept["book_volatility_pct"] == pytest.approx(100 * facts["book_volatility_annual"], abs=0.005)
    assert kept["book_volatility_pct"] ** 2 == pytest.approx(
        kept["book_factor_vol_pct"] ** 2 + kept["book_specific_vol_pct"] ** 2, abs=0.01 * kept["book_volatility_pct"])
    assert kept["largest_cluster_oil"] == facts["oil_found"] and kept["largest_cluster_others"] == 0
    assert 0 < kept["mean_r2"] < 1
