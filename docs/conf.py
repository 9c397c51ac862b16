"""Sphinx configuration of the riskmodel documentation.

Build (from the repository root; ``-W`` turns warnings into errors)::

    pip install -r docs/requirements.txt
    python docs/make_figures.py                                   # figures into docs/_static/
    python -m sphinx -W -b html docs docs/_build/html -d docs/_build/doctrees
    python -m sphinx -W -b doctest docs docs/_build/doctest -d docs/_build/doctrees

``tests/test_docs.py`` runs both builds.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, also when it is not installed
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

import riskmodel  # noqa: E402

project = "riskmodel"
author = "the riskmodel developers"
copyright = "2026, the riskmodel developers"  # noqa: A001
version = release = riskmodel.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "**/.ipynb_checkpoints", "generated/*.md"]
templates_path = ["_templates"]

# --- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# --- API pages ------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc sections carry the types (with dims)
# numpydoc: the class pages list methods and properties through autosummary tables
# of their own docstrings; no per-member stubs (they would need one page per member).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = False
numpydoc_validation_checks: set[str] = set()  # style is checked in review, not at build time
numpydoc_xref_param_type = False
nitpicky = False

# --- doctest (``-b doctest``): the ``{doctest}`` blocks of the pages and the ``>>>``
# examples of the library docstrings shown on the API pages (each page is its own group).
doctest_test_doctest_blocks = "default"
doctest_global_setup = """
import warnings
import numpy as np
import pandas as pd
import xarray as xr
import riskmodel as rm
from riskmodel import *  # the docstring examples use the bare public names
from riskmodel.regression import factor_returns  # the array-level stages, by module
from riskmodel.covariance.factor import factor_covariance
from riskmodel.covariance.specific import specific_variance
warnings.simplefilter("ignore", rm.RiskModelWarning)
np.set_printoptions(precision=4, suppress=True)
"""

# --- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"riskmodel {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False

suppress_warnings: list[str] = []


# --- docstring fix-ups ----------------------------------------------------------------
# The library writes plain text that reST reads as markup: the second factor axis as
# "DataArray (factor, factor_)" (a word ending in "_" is a hyperlink reference) and absolute
# values as "|t| > 2" (a substitution reference). Escape both outside inline literals and
# roles instead of editing the docstrings.
_LITERAL = re.compile(r"(``.*?``|:[a-z:]+:`[^`]*`|`[^`]*`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])_(?=[),\]]|$)")
_ABS_BARS = re.compile(r"\|(?=\S)([^|`]*?\S)\|")


def _escape_plain_text_markup(app, what, name, obj, options, lines):  # noqa: ARG001
    math_indent = None  # indentation of an enclosing ``.. math::`` directive (left as is)
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if math_indent is not None and line.strip() and indent <= math_indent:
            math_indent = None
        if line.lstrip().startswith(".. math::"):
            math_indent = indent
        if math_indent is not None:
            continue
        parts = _LITERAL.split(line)
        parts[::2] = [_ABS_BARS.sub(r"\\|\1\\|", _TRAILING_UNDERSCORE.sub(r"\\_", part)) for part in parts[::2]]
        lines[i] = "".join(parts)


# --- benchmark tables -------------------------------------------------------------------
# benchmarks.md includes generated/benchmark_tables.md: the JSON files of the repository's
# benchmarks/results rendered by riskmodel.cli.bench (the numbers as measured, not copied).
def _write_benchmark_tables(app):  # noqa: ARG001
    from riskmodel.cli.bench import result_tables, results_from_folder

    folder = Path(riskmodel.__file__).resolve().parents[1] / "benchmarks" / "results"
    lines: list[str] = []
    for name, result in results_from_folder(folder) if folder.is_dir() else []:
        machine = result.get("machine", {})
        table = result_tables(name, result)
        table[0] = f"### `{name}.json`"
        env = ", ".join(f"{k} {v}" for k, v in machine.items() if isinstance(v, (str, int, float)))
        lines += [*table[:2], f"Machine: {env}." if env else "", "", *table[2:], ""]
    if not lines:
        lines = [f"No benchmark results found in `{folder}`: run `riskmodel bench` or the scripts."]
    out = DOCS / "generated" / "benchmark_tables.md"
    out.parent.mkdir(exist_ok=True)
    text = "\n".join(lines) + "\n"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", _write_benchmark_tables)
    app.connect("autodoc-process-docstring", _escape_plain_text_markup, priority=400)
