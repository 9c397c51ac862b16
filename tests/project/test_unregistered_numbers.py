"""No figure in the repository's Markdown pages escapes the registry of ``test_quoted_numbers.py``.

A *figure* is a number with a decimal point (``1.005``), a percentage (``80 %``) or a ratio
(``26.9×``). Every figure on every line of README.md, the other Markdown pages at the root
(CONTRIBUTING.md), docs/**/*.md, benchmarks/**/*.md (the benchmarks' notes) and examples/**/*.md
(the tables the examples write) must be one of:

* rendered by a registered quote on that line (``test_quoted_numbers.QUOTES``: the text is
  filled from a committed JSON);
* inside a table that another test checks cell by cell against its JSON
  (:data:`CHECKED_TABLES`, naming the test);
* inside a fenced code block (code and its inputs: settings the reader types, not results);
* on the short allow-list :data:`ALLOW`, one reason per entry (a setting's default, a formula
  constant, a definition);
* on the to-do list :data:`PENDING`: figures known not to be registered yet (issue 22, left
  open). It is not an allow-list: an entry is removed when its figure is registered, and a
  figure that is on none of these lists fails the test, so a number typed by hand, or an old
  one edited, is caught.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.project import test_quoted_numbers as registry

ROOT = Path(__file__).resolve().parents[2]
# the docs build writes docs/generated/ and docs/_build/ (ignored by git): rendered from the JSON, not typed
BUILT = ("docs/generated/", "docs/_build/")
# the README, the other pages at the root (CONTRIBUTING.md), the docs, the benchmarks' notes (benchmarks/README*.md)
# and what the examples write as Markdown (examples/results/*.md)
DOCS = ("README.md", *sorted(p.name for p in ROOT.glob("*.md") if p.name != "README.md"),
        *sorted(name for folder in ("docs", "benchmarks", "examples") for p in (ROOT / folder).rglob("*.md")
                if not (name := str(p.relative_to(ROOT))).startswith(BUILT)))
# a decimal number, a percentage, or a ratio written with "×" or an attached "x" (not a size "600 × 1,000")
FIGURE = re.compile(r"(?<![\w.\-/])(\d[\d,]*(?:\.\d+)?(?:e[−-]?\d+)?)(\s?%|\s?×(?!\s?\d)|x(?![\w]))?")

CHECKED_TABLES = {  # (doc, the header line's start): the test that checks every cell
    ("examples/results/construction_study_table.md", "| covariance | gmv 2010-2016 |"):
        "test_construction_study_table.py::test_report_part_reproduces_the_committed_table_and_json",
    ("docs/guide/construction.md", "| covariance | gmv 2010-2016 |"):
        "test_construction_study_table.py::test_guide_quotes_the_regenerated_table",
    ("docs/guide/construction.md", "| setting | flash crash"):
        "test_construction_study_table.py::test_guide_quotes_the_regime_table_of_its_json",
    ("docs/guide/model-comparison.md", "| family | model |"):
        "test_quoted_numbers.py::test_model_comparison_tables_match_their_json",
    ("docs/guide/model-comparison.md", "| model | first factor |"):
        "test_quoted_numbers.py::test_model_comparison_tables_match_their_json",
    ("docs/guide/model-comparison.md", "| model | realised vol |"):
        "test_quoted_numbers.py::test_model_comparison_tables_match_their_json",
    ("docs/guide/model-comparison.md", "| model | mean | sd | median |"):
        "test_quoted_numbers.py::test_model_comparison_tables_match_their_json",
    ("docs/guide/portfolio-risk.md", "| variant | family |"):
        "test_quoted_numbers.py::test_portfolio_risk_tables_match_their_json",
    ("docs/guide/portfolio-risk.md", "| sector | (a) raw |"):
        "test_quoted_numbers.py::test_portfolio_risk_tables_match_their_json",
    ("docs/guide/signal-research.md", "| book | ann. mean |"):
        "test_docs_figures.py::test_signal_guide_book_table_matches_the_example_output",
    ("docs/guide/signal-research.md", "| factor list | raw α | t |"):
        "test_docs_figures.py::test_signal_guide_alpha_table_matches_the_example_output",
    ("docs/guide/signal-research.md", "| factor list | raw α (t) |"):
        "test_docs_figures.py::test_signal_guide_simulated_table_matches_the_example_output",
}

ALLOW = {  # (doc, figure as written, spaces dropped): why it needs no JSON
    ("docs/getting-started.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/methods.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/methods.md", "2.885"): "a formula constant: 2/ln 2",
    ("docs/methods.md", "1.4826"): "a formula constant: the MAD-to-sd factor of a normal",
    ("docs/methods.md", "0.1"): "a setting's default (shrinkage intensity q; the audit's cluster cut)",
    ("docs/methods.md", "1.27"): "a formula constant: QLIKE of a calibrated Gaussian forecast",
    ("docs/methods.md", "99%"): "a setting's default (the Tracy–Widom level)",
    ("docs/guide/portfolio-risk.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/guide/portfolio-risk.md", "1.2"): "a setting (eigen_scale of the run)",
    ("docs/guide/portfolio-risk.md", "0.036"): "a formula constant: MRAD of a calibrated forecast at 252 days",
    ("docs/guide/portfolio-risk.md", "1.2704"): "a formula constant: QLIKE of a calibrated Gaussian forecast",
    ("docs/guide/model-comparison.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/guide/model-comparison.md", "1.2"): "a setting (eigen_scale of the run)",
    ("docs/guide/model-comparison.md", "0.1"): "a setting (shrink of the run)",
    ("docs/guide/model-comparison.md", "80%"): "a setting (the statistical model's coverage rule)",
    ("docs/guide/model-comparison.md", "0.036"): "a formula constant: MRAD of a calibrated forecast at 252 days",
    ("docs/guide/model-comparison.md", "1.2704"): "a formula constant: QLIKE of a calibrated Gaussian forecast",
    ("docs/guide/model-comparison.md", "5%"): "a significance level (a definition)",
    ("docs/guide/construction.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/guide/construction.md", "0.3"): "a setting (a shrinkage intensity tried)",
    ("docs/guide/construction.md", "0.8"): "a definition of the regime table (σ̂ ≥ 0.8 RV)",
    ("docs/guide/construction.md", "1.2"): "a definition of the regime table (σ̂ > 1.2 RV)",
    ("docs/guide/construction.md", "80%"): "a definition of the regime table (σ̂ ≥ 0.8 RV)",
    ("docs/guide/construction.md", "20%"): "a definition of the regime table (σ̂ > 1.2 RV)",
    ("docs/guide/construction.md", "0.9"): "the target range [0.9, 1.1] of a yearly bias (a definition)",
    ("docs/guide/construction.md", "1.1"): "the target range [0.9, 1.1] of a yearly bias (a definition)",
    ("docs/guide/signal-research.md", "5%"): "the premium the simulation plants (a setting)",
    ("docs/guide/auditing.md", "10%"): "a definition (the top 10 % of oil moves)",
    ("docs/figures.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/figures.md", "90%"): "a definition (the 10–90 % band of the figure)",
    ("docs/figures.md", "99%"): "a setting's default (the Tracy–Widom level)",
    ("docs/figures.md", "0.15"): "a setting of the simulated world (the planted residual correlation)",
    ("docs/tutorial.md", "95%"): "the confidence level of the bias band (a definition)",
    ("docs/tutorial.md", "0.88%"): "arithmetic on the five typed returns of the code block above it (no data, no run)",
    ("docs/guide/auditing.md", "0.51"): "quoted from the data's README (its sanity_dev.json ships with the data, not here)",
    ("docs/guide/auditing.md", "81%"): "quoted from the data's README (its sanity_dev.json ships with the data, not here)",
    ("docs/guide/construction.md", "1e-7"): "a solver setting (OSQP's tolerance)",
    ("docs/guide/production.md", "1e-15"): "the order of float64 rounding, an expectation stated as such, not a measurement",
    ("docs/guide/real-data-walkthrough.md", "3×"): "a formula: max(3 × factors, 42)",
    ("docs/guide/real-data-walkthrough.md", "1e6"): "a unit conversion (USD millions)",
    ("docs/guide/reports.md", "0.5"): "a setting's default (--min-purity)",
    ("docs/methods.md", "1.0"): "a setting's default (eigen_scale)",
    ("docs/methods.md", "1.2"): "a suggested setting (eigen_scale on real data)",
    ("docs/methods.md", "1.4"): "a suggested setting (eigen_scale on real data)",
    ("docs/benchmarks.md", "30×"): "a target (the decomposition of 1,000 portfolios against the dense path), not a measurement",
    ("docs/benchmarks.md", "2%"): "a setting of bench_timeseries.py's simulated panel (the share of missing returns)",
    ("docs/benchmarks.md", "1.5"): "issue 21's target for the full fit (≤ 1.5 s), not a measurement",
    ("docs/benchmarks.md", "3.0"): "issue 21's target in CPU seconds: 2 cores × 1.5 s (a definition)",
    ("docs/benchmarks.md", "1.4×"): "issue 21's target for the fit's peak memory (≤ 1.4× the inputs), not a measurement",
    ("docs/benchmarks.md", "0.1"): "a definition: a strongly coupled pair, |a_ij| > 0.1 |a_ii − a_jj|",
    ("docs/benchmarks.md", "0.7"): "issue 21's target for the residual audit (≤ 0.7 s), not a measurement",
    ("docs/benchmarks.md", "1e-12"): "a test's tolerance (test_chunked.py: 1e-12 of each variable's scale), a definition",
    ("docs/benchmarks.md", "0.6×"): "issue 21's target for the out-of-core throughput (≥ 0.6× in-memory), not a measurement",
    ("docs/benchmarks.md", "5%"): "a test's tolerance (the null's median and edge within 5 % of σ), a definition",
    # the pages outside docs/ (issue 22: every page that quotes figures is scanned)
    ("CONTRIBUTING.md", "5.0"): "a setting's default (return_clip in factor_returns' signature)",
    ("CONTRIBUTING.md", "1e-12"): "a test's tolerance (both operator paths against the dense reference), a definition",
    ("benchmarks/README.md", "0.5"): "a target of the factor-returns benchmark (≤ 0.5 s on 2 cores), not a measurement",
    ("benchmarks/README.md", "6×"): "a target of the factor-returns benchmark (≥ 6× the numpy loop), not a measurement",
    ("benchmarks/README.md", "300×"): "a target of the factor-returns benchmark (≥ 300× toraniko), not a measurement",
    ("benchmarks/README.md", "2×"): "a target of the factor-returns benchmark (peak ≤ 2× the inputs), not a measurement",
    ("benchmarks/README_portfolio_risk.md", "0.2"): "a setting's default (--settle, seconds)",
    ("benchmarks/README_portfolio_risk.md", "30×"): "issue 3's target (≥ 30× the dense path), not a measurement",
}

PENDING: dict[str, str] = {  # doc: figures not registered yet, as written, spaces dropped (empty: every
    # figure of README.md and docs/ is registered, checked by a named table test, or allowed above)
}


def table_blocks(lines: list[str], doc: str) -> set[int]:
    """Indices of the lines of the tables :data:`CHECKED_TABLES` names in ``doc``."""
    covered: set[int] = set()
    for table_doc, header in CHECKED_TABLES:
        if table_doc != doc:
            continue
        starts = [i for i, line in enumerate(lines) if line.startswith(header)]
        assert len(starts) == 1, f"{doc}: {len(starts)} tables start with {header!r}"
        i = starts[0]
        while i < len(lines) and lines[i].startswith("|"):
            covered.add(i)
            i += 1
    return covered


def figures(line: str) -> list[str]:
    """The figures of a line (decimal numbers, percentages, ratios), spaces dropped."""
    found = []
    for match in FIGURE.finditer(line):
        number, unit = match.group(1), match.group(2) or ""
        if "." in number or unit or "e" in number:
            found.append(number + unit.strip().replace("x", "×"))
    return found


def unregistered(texts: dict[str, str]) -> dict[str, list[str]]:
    """Per doc, the figures none of the lists above accounts for (with their line numbers)."""
    rendered: dict[tuple[str, str], list[str]] = {}
    for quote in registry.QUOTES:
        if quote.doc in texts and (line := registry._line(texts[quote.doc], quote.line)) is not None:
            rendered.setdefault((quote.doc, line), []).append(registry.render(quote))
    found: dict[str, list[str]] = {}
    for doc, text in texts.items():
        lines = text.splitlines()
        tables, fence = table_blocks(lines, doc), False
        pending = Counter(PENDING.get(doc, "").split())
        for i, line in enumerate(lines):
            if line.startswith("```"):
                fence = not fence
            if fence or i in tables:
                continue
            covered = registry.NUMBER.findall(" ".join(rendered.get((doc, line), [])))
            for figure in figures(line):
                if registry.NUMBER.findall(figure)[0] in covered or (doc, figure) in ALLOW:
                    continue
                if pending[figure] > 0:
                    pending[figure] -= 1
                    continue
                found.setdefault(doc, []).append(f"{i + 1}: {figure}")
    return found


def _texts() -> dict[str, str]:
    return {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in DOCS}


def test_every_figure_in_the_readme_and_the_docs_is_registered():
    assert unregistered(_texts()) == {}


def _assert_each_addition_is_caught(additions: list[tuple[str, str, str]]) -> None:
    """Each (doc, anchor, added): ``added`` appended to the line holding ``anchor`` is reported."""
    texts = _texts()
    for doc, anchor, added in additions:
        edited = dict(texts)
        line = next(line for line in texts[doc].splitlines() if anchor in line)
        edited[doc] = texts[doc].replace(line, line + added, 1)
        assert doc in unregistered(edited), f"{doc}: {added!r} went unnoticed"


def test_a_figure_typed_into_the_prose_by_hand_fails():
    _assert_each_addition_is_caught([("README.md", "The first command installs the package", " (about 2.5× faster)"),
                                     ("docs/guide/portfolio-risk.md", "* The 11 sector portfolios", " (0.091 each)"),
                                     ("docs/guide/model-comparison.md", "Mahalanobis", " (12 %)")])


def test_every_markdown_page_of_the_repository_is_scanned():
    """The root pages, the benchmarks' notes and the examples' written Markdown are scanned, not only docs/."""
    for page in ("CONTRIBUTING.md", "benchmarks/README.md", "benchmarks/README_portfolio_risk.md",
                 "examples/results/construction_study_table.md"):
        assert page in DOCS
    tracked = {str(p.relative_to(ROOT)) for pattern in ("*.md", "benchmarks/**/*.md", "examples/**/*.md")
               for p in ROOT.glob(pattern)}
    assert tracked <= set(DOCS)


def test_a_figure_typed_into_the_benchmark_notes_by_hand_fails():
    """A measured time typed into benchmarks/*.md (as the quick suite's per-script times were) is caught."""
    _assert_each_addition_is_caught([("benchmarks/README.md", "Each run's own `results.json` records", " (audit 8.8 s)"),
                                     ("benchmarks/README.md", "Per date the kernel reads", " (about 0.21 ms)"),
                                     ("benchmarks/README_portfolio_risk.md", "Peak memory of the P = 1,000", " (1.7× less)"),
                                     ("CONTRIBUTING.md", "Small shared kernels", " (12 % faster)")])


def test_an_edited_figure_of_the_portfolio_notes_fails():
    """The portfolio notes' figures are rendered from their JSON: an old figure put back by hand is caught."""
    texts = _texts()
    doc = "benchmarks/README_portfolio_risk.md"
    line = next(line for line in texts[doc].splitlines() if line.startswith("- The solve:"))
    texts[doc] = texts[doc].replace(line, line.replace("0.43 ms", "0.33 ms"), 1)
    assert doc in unregistered(texts)
    assert any(doc in problem for problem in registry.check(texts))


def test_a_registered_figure_edited_by_hand_fails():
    """Editing a registered figure leaves a figure no list accounts for."""
    texts = _texts()
    quote = next(q for q in registry.QUOTES if q.doc == "docs/guide/portfolio-risk.md" and "1.005" in registry.render(q))
    line = registry._line(texts[quote.doc], quote.line)
    texts[quote.doc] = texts[quote.doc].replace(line, line.replace("1.005", "1.006"), 1)
    assert quote.doc in unregistered(texts)


def test_the_lists_hold_no_stale_entries():
    """Every allow-list entry and every checked table is still used."""
    texts = _texts()
    for (doc, figure), reason in ALLOW.items():
        assert reason
        lines = texts[doc].splitlines()
        assert any(figure in figures(line) for line in lines), f"{doc}: {figure!r} ({reason}) is no longer quoted"
    for (doc, _header), test in CHECKED_TABLES.items():
        assert table_blocks(texts[doc].splitlines(), doc) and "::" in test
    for doc, pending in PENDING.items():
        quoted = Counter(f for line in texts[doc].splitlines() for f in figures(line))
        assert not Counter(pending.split()) - quoted, f"{doc}: PENDING lists figures the page no longer quotes"


if __name__ == "__main__":  # list what is unregistered, PENDING aside (to register it, or to review the to-do list)
    PENDING.clear()
    for _doc, _found in unregistered(_texts()).items():
        print(f"{_doc}: {len(_found)}")
        print("    " + ", ".join(_found))
