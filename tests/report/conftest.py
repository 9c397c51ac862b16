"""A small demo run once for the report tests (its index.html, audit.html, demo.json)."""

from __future__ import annotations

import contextlib
import io

import pytest


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory):
    from riskmodel.cli.demo import run_demo

    folder = tmp_path_factory.mktemp("demo") / "out"
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        facts = run_demo(folder, n_stocks=200, n_days=500, seed=0)
    return folder, facts, console.getvalue()
