"""``riskmodel audit``: the labels' column chosen (or a clear error when the file has
several), the window by days or dates, the number of components and the purity below
which a cluster is "mixed"; each bad flag is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from riskmodel.cli import EXIT_USER_ERROR, main
from riskmodel.cli import audit as cli_audit


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import riskmodel as rm

    root = tmp_path_factory.mktemp("cli_audit")
    panel, model = root / "panel.nc", root / "model.nc"
    assert main(["simulate", "-o", str(panel), "--stocks", "150", "--days", "420", "--hidden", "1",
                 "--hidden-members", "30", "--seed", "3"]) == 0
    assert main(["fit", str(panel), "-o", str(model), "-q"]) == 0
    stocks = [str(s) for s in rm.load(model).stocks]
    industry = rm.load(panel)["industry"]
    industry = (industry.isel(date=-1) if "date" in industry.dims else industry).sel(stock=stocks).to_numpy()
    return root, model, stocks, industry


def _tickers_file(root, stocks, industry):
    """A file shaped like ../shared/data/tickers.csv: ticker, name, sector, industry, numbers."""
    path = root / "tickers.csv"
    lines = ["ticker,name,sector,industry,shares_est,first_date"]
    codes = {name: k for k, name in enumerate(sorted(set(map(str, industry))))}
    for i, (s, name) in enumerate(zip(stocks, map(str, industry))):
        lines.append(f"{s},Company {i} Inc.,SEC{codes[name] % 3},{name},{1e6 * (i + 1):.1f},2017-01-03")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_defaults_are_the_apis():
    from riskmodel.audit.residuals import DEFAULT_WINDOW, audit_residuals
    from riskmodel.audit.clusters import MIN_PURITY

    signature = inspect.signature(audit_residuals).parameters
    assert cli_audit.DEFAULT_WINDOW == DEFAULT_WINDOW
    assert cli_audit.MIN_PURITY == MIN_PURITY == signature["min_purity"].default
    assert cli_audit.COMPONENTS == signature["max_components"].default


def test_several_text_columns_and_none_chosen_is_an_error(files, tmp_path, capsys):
    root, model, stocks, industry = files
    labels = _tickers_file(tmp_path, stocks, industry)
    report = tmp_path / "audit.html"
    capsys.readouterr()
    assert main(["audit", str(model), "--labels", str(labels), "--report", str(report)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "3 columns could be the labels (name, sector, industry)" in err and "--label-column sector" in err
    assert not report.exists()


def test_label_column_chooses_the_labels(files, tmp_path, capsys):
    root, model, stocks, industry = files
    labels = _tickers_file(tmp_path, stocks, industry)
    capsys.readouterr()
    assert main(["audit", str(model), "--labels", str(labels), "--label-column", "sector", "--min-purity", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"labels: column 'sector' of {labels}\n")
    table = out.split("label / members")[1]
    assert "SEC" in table and "Company" not in table and "IND" not in table
    assert main(["audit", str(model), "--labels", str(labels), "--label-column", "industry", "--min-purity", "0"]) == 0
    assert "IND" in capsys.readouterr().out.split("label / members")[1]


def test_label_file_rule(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("stock,sector\nA,X\nB,Y\n")
    assert cli_audit.read_label_file(str(two)).name == "sector"
    named = tmp_path / "named.csv"
    named.write_text("name,ticker,label,sector\nAlpha Inc.,A,X,S1\nBeta Inc.,B,Y,S2\n")
    lab = cli_audit.read_label_file(str(named))
    assert lab.name == "label" and list(lab["stock"].values) == ["A", "B"] and list(lab.values) == ["X", "Y"]
    one_text = tmp_path / "one_text.csv"
    one_text.write_text("symbol,weight,sector\n0042,0.5,S1\n0043,0.5,S2\n")
    lab = cli_audit.read_label_file(str(one_text))
    assert lab.name == "sector" and list(lab["stock"].values) == ["0042", "0043"]  # ids kept as written
    from riskmodel.errors import PanelError

    with pytest.raises(PanelError, match="no column 'sectr' .*the file has symbol, weight, sector"):
        cli_audit.read_label_file(str(one_text), "sectr")
    with pytest.raises(PanelError, match="stock-id column"):
        cli_audit.read_label_file(str(one_text), "symbol")


def test_window_start_end_and_components(files, capsys):
    root, model, stocks, industry = files
    capsys.readouterr()
    assert main(["audit", str(model), "--window", "120", "--components", "4"]) == 0
    out = capsys.readouterr().out
    assert "(120 dates: 60 discovery + 60 held out)" in out
    eig_line = next(s for s in out.splitlines() if s.startswith("eigenvalues"))
    assert len(eig_line.split()) == 1 + 4
    import riskmodel as rm

    dates = [str(d)[:10] for d in rm.load(model).dates]
    start, end = dates[200], dates[329]
    assert main(["audit", str(model), "--start", start, "--end", end]) == 0
    out = capsys.readouterr().out
    assert f"window            {start} .. {end}  (130 dates" in out


def test_min_purity_mixed(files, tmp_path, capsys):
    root, model, stocks, industry = files
    capsys.readouterr()
    assert main(["audit", str(model), "--labels-from", "industry", "--min-purity", "1"]) == 0
    out = capsys.readouterr().out
    rows = out.split("label / members")[1].strip().splitlines()
    assert rows and all(row.split()[-1] == "mixed" or float(row.split()[-2]) == 1.0 for row in rows)
    assert "label 'mixed' below purity 1.0" in out


@pytest.mark.parametrize("extra, message", [
    (["--window", "10"], "--window 10: the audit needs at least 40 dates"),
    (["--components", "0"], "--components 0: give at least 1"),
    (["--min-purity", "1.5"], "--min-purity 1.5: give a share between 0 and 1"),
    (["--start", "someday"], "--start 'someday': not a date"),
    (["--start", "2020-06-01", "--end", "2020-01-01"], "--start 2020-06-01 is after --end 2020-01-01"),
    (["--start", "2099-01-01"], "keep 0 of the model's dates"),
    (["--label-column", "sector"], "--label-column sector: applies to a --labels file"),
])
def test_bad_flags_are_one_line(files, tmp_path, capsys, extra, message):
    root, model, stocks, industry = files
    report = tmp_path / "audit.html"
    capsys.readouterr()
    assert main(["audit", str(model), "--report", str(report), *extra]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not report.exists()
