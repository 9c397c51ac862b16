"""The real-data tables in the guides are the numbers the example scripts wrote.

The example scripts write their results to ``docs/figures/*.json``; the guides quote them
by hand. These tests compare the two, so a table cannot drift from the run behind it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    columns = ("sector_bias_raw", "sector_bias_full", "sector_bias_sector_model", "sector_bias_pooled")
    n = 0
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for column, value in zip(columns, cells[1:5], strict=True):
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


# --- docs/guide/signal-research.md against docs/figures/real_signal_research.json -----------------

SIGNAL_GUIDE = ROOT / "docs" / "guide" / "signal-research.md"
SIGNAL_FIGURES = ROOT / "docs" / "figures" / "real_signal_research.json"
BOOKS = ("raw", "neutral (size, industry)", "decile long-short (neutral)")
REGRESSION_BOOKS = BOOKS[:2]  # the books whose alpha is per unit of exposure (the decile book is ±1/n)


def _signal_guide() -> str:
    """The signal-research guide on single spaces (it wraps lines)."""
    return " ".join(SIGNAL_GUIDE.read_text().split())


def _signal_facts() -> dict:
    return json.loads(SIGNAL_FIGURES.read_text())


def _printed_as(quoted: str, value: float) -> tuple[str, str]:
    """``quoted`` (a guide number such as ``−2.50`` or ``+0.31``) and ``value`` rounded to its decimals."""
    quoted = quoted.strip().replace("−", "-").removeprefix("+")
    return quoted, f"{value:.{len(quoted.partition('.')[2])}f}"


def _signed(value: float, spec: str) -> str:
    """``value`` formatted with ``spec`` and the guide's minus sign (U+2212)."""
    return f"{value:{spec}}".replace("-", "−")


def test_signal_guide_book_table_matches_the_example_output():
    real = _signal_facts()["real"]
    rows = _markdown_table(SIGNAL_GUIDE.read_text(), "| book | ann. mean | ann. vol | Sharpe |")
    assert [cells[0].split()[0] for cells in rows] == ["raw", "neutral", "decile"]
    for book, (_, mean, vol, sharpe) in zip(BOOKS, rows, strict=True):
        facts = real["books"][book]
        for quoted, value in ((mean.removesuffix("%"), 100 * facts["mean_annual"]),
                              (vol.removesuffix("%"), 100 * facts["vol_annual"]), (sharpe, real["sharpe"][book])):
            printed, written = _printed_as(quoted, value)
            assert printed == written, (book, quoted, value)


def test_signal_guide_sample_matches_the_example_output():
    real = _signal_facts()["real"]
    sim = _signal_facts()["simulated"]
    books = real["books"].values()
    assert len({(b["n_days"], b["first"], b["last"]) for b in books}) == 1, "the books cover different days"
    book = next(iter(books))
    expected = [
        f"The factor returns run over **{book['n_days']:,} days, {book['first']} .. {book['last']}**",
        f"neutral to size and {real['n_industries']} GICS industries",
        f"Its mean one-way turnover is {real['mean_turnover']:.3f} per day.",
        f"the factor returns cover {sim['n_factor_days']} days",
        f"with {sim['n_factor_days']} days none",
    ]
    text = _signal_guide()
    for phrase in expected:
        assert phrase in text, phrase


REAL_LISTS = ("CAPM", "FF3", "Carhart", "FF5", "FF5+mom", "model: market+styles ex momentum", "model: market+styles")


def _alpha_cells(factor_list: str, book: str) -> list[str]:
    """The guide's ``(α %, t, R²)`` cells of ``book`` on ``factor_list`` in the real-data alpha table."""
    rows = _markdown_table(SIGNAL_GUIDE.read_text(), "| factor list | raw α | t | R² |")
    cells = {row[0].replace(" + ", "+"): row[1:] for row in rows}[factor_list]
    start = 3 * BOOKS.index(book)
    return cells[start:start + 3]


def test_signal_guide_alpha_table_lists_the_example_output_rows():
    rows = _markdown_table(SIGNAL_GUIDE.read_text(), "| factor list | raw α | t | R² |")
    assert [row[0].replace(" + ", "+") for row in rows] == list(REAL_LISTS)
    assert all(len(row) == 10 for row in rows)
    assert sorted(f"{book} | {name}" for book in BOOKS for name in REAL_LISTS) == sorted(
        _signal_facts()["real"]["alpha"])


@pytest.mark.parametrize(
    ("factor_list", "book"),
    [
        (name, book)
        for name in REAL_LISTS for book in BOOKS
    ],
)
def test_signal_guide_alpha_table_matches_the_example_output(factor_list, book):
    entry = _signal_facts()["real"]["alpha"][f"{book} | {factor_list}"]
    a, t, r2 = _alpha_cells(factor_list, book)
    for quoted, value in ((a.removesuffix("%"), 100 * entry["alpha_annual"]), (t, entry["t_alpha"]),
                          (r2, entry["r2"])):
        printed, written = _printed_as(quoted, value)
        assert printed == written, (factor_list, book, quoted, value)


@pytest.mark.parametrize(
    ("template", "factor_lists"),
    [
        ("Against CAPM, FF3 and FF5, the R² is {lo}–{hi}.", ("CAPM", "FF3", "FF5")),
        ("(Carhart, FF5 + mom) the R² jumps to {lo}–{hi}:", ("Carhart", "FF5+mom")),
        ("**without** momentum, the R² is only {lo}–{hi}.", ("model: market+styles ex momentum",)),
        ("With the model's momentum style it is {lo}–{hi}.", ("model: market+styles",)),
    ],
    ids=["capm-ff3-ff5", "carhart-ff5mom", "model-ex-momentum", "model-with-momentum"],
)
def test_signal_guide_r2_ranges_match_the_example_output(template, factor_lists):
    alpha = _signal_facts()["real"]["alpha"]
    r2 = [alpha[f"{book} | {name}"]["r2"] for book in REGRESSION_BOOKS for name in factor_lists]
    phrase = template.format(lo=f"{min(r2):.2f}", hi=f"{max(r2):.2f}")
    assert phrase in _signal_guide(), phrase


def test_signal_guide_headline_numbers_match_the_example_output():
    data = _signal_facts()
    real = data["real"]
    carhart = real["alpha"]["raw | Carhart"]["t_alpha"]
    ff, model = real["attribution_ff"], real["attribution_model"]
    expected = [
        f"({data['seconds']:.0f} s). {real['n_stocks']} stocks, {real['panel']}.",
        f"negative alpha against Carhart (t = {_signed(carhart, '.2f')} for the raw book)",
        (f"time-averaged **SMB exposure of {ff['exposures']['smb']:.4f} (t = {ff['t']['smb']:.2f})**, next to "
         f"momentum {ff['exposures']['mom']:.3f} (t = {ff['t']['mom']:.1f})"),
        (f"size exposure is {model['exposures']['size']:.3f} but insignificant "
         f"(t = {model['t']['size']:.2f})"),
        (f"volatility {_signed(model['exposures']['volatility'], '.2f')} "
         f"(t = {_signed(model['t']['volatility'], '.1f')}) and beta {_signed(model['exposures']['beta'], '.2f')} "
         f"(t = {_signed(model['t']['beta'], '.1f')})"),
    ]
    text = _signal_guide()
    for phrase in expected:
        assert phrase in text, phrase
    # "No |t| reaches the Harvey–Liu–Zhu hurdle of 3": true of every alpha t in the table.
    assert "No |t| reaches the Harvey–Liu–Zhu hurdle of 3" in text
    assert max(abs(entry["t_alpha"]) for entry in real["alpha"].values()) < 3


def test_signal_guide_neutrality_bound_matches_the_example_output():
    """The quoted max |exposure to controls| (two significant digits) and its claim of exactness."""
    written = _signal_facts()["real"]["max_control_exposure"]
    assert written < 1e-14, "the neutral book is not exactly neutral"
    text = _signal_guide()
    quoted = re.findall(r"at most \*\*(\S+)\*\* \(exact neutrality\)|size exposure on every day \((\S+)\)\.", text)
    assert len(quoted) == 2, quoted
    for value in ("".join(q) for q in quoted):
        assert value == f"{written:.1e}", (value, written)


def test_signal_guide_simulated_table_matches_the_example_output():
    alpha = _signal_facts()["simulated"]["alpha"]
    rows = _markdown_table(SIGNAL_GUIDE.read_text(), "| factor list | raw α (t) | neutral α (t) | decile α (t) |")
    for cells in rows:
        factor_list = cells[0].replace(" + ", "+")
        for book, cell in zip(BOOKS, cells[1:], strict=True):
            entry = alpha[f"{book} | {factor_list}"]
            a, t = re.fullmatch(r"(\S+) % \((\S+)\)", cell).groups()
            for quoted, value in ((a, 100 * entry["alpha_annual"]), (t, entry["t_alpha"])):
                printed, written = _printed_as(quoted, value)
                assert printed == written, (factor_list, book, quoted, value)
    assert 3 * len(rows) == len(alpha), "the guide's simulated table and the JSON list different rows"


def test_signal_guide_simulated_prose_matches_the_example_output():
    sim = _signal_facts()["simulated"]
    alpha = sim["alpha"]
    expected = [
        f"rm.simulate(n_stocks={sim['n_stocks']}, n_days={sim['n_days']}, seed=0, spend=True)",
        f"earns a known premium of **{100 * sim['spend_premium']:.2f} % per year**",
        f"The raw book has R² {alpha['raw | market+size']['r2']:.2f} on market + size",
        f"Neutralising removes this (R² {alpha['neutral (size, industry) | market+size']['r2']:.4f})",
        f"Every estimate is within one standard error of {100 * sim['spend_premium']:.0f} %",
        "none clears t = 2 for the regression-weighted book",
    ]
    text = _signal_guide()
    for phrase in expected:
        assert phrase in text, phrase
    regression = [v for k, v in alpha.items() if k.split(" | ")[0] in REGRESSION_BOOKS]
    assert len(regression) == 8
    for entry in regression:
        standard_error = entry["alpha_annual"] / entry["t_alpha"]
        assert abs(entry["alpha_annual"] - sim["spend_premium"]) < standard_error, entry
        assert abs(entry["t_alpha"]) < 2, entry


@pytest.mark.parametrize(
    ("guide", "figures"),
    [
        ("portfolio-risk.md", "real_risk_model.json"),
        ("auditing.md", "real_audit.json"),
        ("model-comparison.md", "model_comparison.json"),
    ],  # the signal-research guide's runtime is checked with its headline numbers
)
def test_guide_quotes_the_runtime_of_the_run_behind_its_numbers(guide, figures):
    text = (ROOT / "docs" / "guide" / guide).read_text()
    quoted = re.search(r"Script: `python examples/\S+\.py` \((\d+) s[ );]", text)
    assert quoted, guide
    seconds = json.loads((ROOT / "docs" / "figures" / figures).read_text())["seconds"]
    assert int(quoted.group(1)) == round(seconds), (guide, quoted.group(1), seconds)
