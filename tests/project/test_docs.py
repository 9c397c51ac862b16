"""The documentation builds without warnings and its code examples run.

* ``python -m sphinx -W -b html docs <out>``: any warning (a broken reference, a docstring
  that is not valid reST, a missing page) fails the build;
* ``python -m sphinx -W -b doctest docs <out>``: the ``{doctest}`` blocks of the pages and
  the ``>>>`` examples of the docstrings on the API pages run and their output is compared;
* the tutorial's ``python`` blocks run top to bottom in one namespace;
* the numbers quoted by ``figures.md`` are those ``make_figures.py`` wrote.

Skipped when the documentation packages (``docs/requirements.txt``) are not installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

for _pkg in ("sphinx", "numpydoc", "myst_parser", "pydata_sphinx_theme"):
    pytest.importorskip(_pkg)

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: pages whose ``python`` blocks form one runnable script (the guides hold fragments)
RUNNABLE_PAGES = ("tutorial.md",)
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def _sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    env.setdefault("NUMBA_CACHE_DIR", str(DOCS.parent / ".numba_cache"))
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, str(DOCS), str(out), "-d", str(doctrees)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    proc = _sphinx("html", root / "html", root / "doctrees")
    return root, proc


def test_toctree_pages_exist():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    block = re.search(r"```\{toctree\}\n(.*?)```", index, re.S).group(1)
    pages = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")]
    assert "api" in pages and "methods" in pages
    missing = [p for p in pages if not any((DOCS / f"{p}{ext}").exists() for ext in (".md", ".rst"))]
    assert not missing, f"toctree pages missing: {missing}"


def test_html_build_has_no_warnings(build):
    root, proc = build
    assert proc.returncode == 0, f"sphinx -W failed:\n{proc.stderr[-4000:]}"
    html = root / "html"
    # the API pages are generated, with the methods of the classes
    cov_page = (html / "generated" / "riskmodel.StructuredCovariance.html").read_text(encoding="utf-8")
    for member in ("decompose", "solve", "logdet", "as_linear_operator"):
        assert f'id="riskmodel.StructuredCovariance.{member}"' in cov_page, member
    for name in ("simulate", "FactorRiskModel", "audit_residuals", "alpha_test", "load_us_equities"):
        assert (html / "generated" / f"riskmodel.{name}.html").exists(), name
    # plain-text markup in docstrings is escaped, not turned into broken references
    assert "factor, factor_)" in cov_page
    # maths is rendered by MathJax from the MyST dollar syntax
    methods = (html / "methods.html").read_text(encoding="utf-8")
    assert "mathjax" in methods.lower() and r"\Sigma" in methods
    # the benchmark tables are rendered from the committed JSON
    bench_page = (html / "benchmarks.html").read_text(encoding="utf-8")
    for path in (DOCS.parent / "benchmarks" / "results").glob("*.json"):
        assert f"{path.stem}.json" in bench_page, path.name
    for name in ("fig_factor_returns", "fig_rolling_bias", "fig_audit_spectrum", "fig_cluster_corr"):
        assert (html / "_images" / f"{name}.png").exists(), name


def test_doctest_examples_run(build):
    root, proc = build
    assert proc.returncode == 0, "the html build failed first"
    doctest = _sphinx("doctest", root / "doctest", root / "doctrees")
    report = (root / "doctest" / "output.txt").read_text(encoding="utf-8")
    assert doctest.returncode == 0, report[-4000:] + doctest.stderr[-2000:]
    n_tests = int(re.search(r"Doctest summary\s*=+\s*(\d+) tests", report).group(1))
    assert n_tests >= 50 and "0 failures in tests" in report  # pages + docstring examples
    assert "getting-started" in report and "riskmodel.StructuredCovariance" in report


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_page_python_blocks_run(page, tmp_path, monkeypatch):
    blocks = _FENCE.findall((DOCS / page).read_text(encoding="utf-8"))
    assert blocks, f"{page} has no python blocks"
    monkeypatch.chdir(tmp_path)  # blocks that write files write here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, code in enumerate(blocks):
            exec(compile(code, f"{page} block {i + 1}", "exec"), namespace)  # noqa: S102


def test_figures_page_quotes_the_numbers_make_figures_wrote():
    facts = json.loads((DOCS / "_static" / "figures.json").read_text(encoding="utf-8"))
    page = (DOCS / "figures.md").read_text(encoding="utf-8")
    settings = facts["settings"]
    assert f"{settings['n_stocks']} stocks × {settings['n_days']}" in page
    assert f"≈ {facts['top_eigenvalue']:.1f}" in page and f"≈ {facts['null_edge']:.2f}" in page
    assert f"has {facts['largest_cluster_size']} names, all {facts['largest_cluster_oil_names']}" in page
    for family, value in facts["mean_bias_by_family"].items():
        assert f"{value:.2f}" in page, family
