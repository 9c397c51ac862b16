"""The command line: the user's path end to end, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import EXIT_USER_ERROR, main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    panel, model = root / "panel.nc", root / "model.nc"
    assert main(["simulate", "-o", str(panel), "--stocks", "150", "--days", "420", "--hidden", "1", "--hidden-members", "30", "--spend"]) == 0
    assert main(["fit", str(panel), "-o", str(model), "-q"]) == 0
    return root, panel, model


def _weights(root, model_stocks, name="book.csv", extra=None):
    frame = pd.DataFrame({"stock": model_stocks[:20], "a": 0.05, "b": [0.1] * 10 + [0.0] * 10})
    if extra:
        frame = pd.concat([frame, pd.DataFrame({"stock": [extra], "a": [0.1], "b": [0.0]})])
    path = root / name
    frame.to_csv(path, index=False)
    return path


def test_fit_and_risk(files, capsys):
    import riskmodel as rm

    root, panel, model = files
    stocks = list(rm.load(model).covariance().stocks)
    capsys.readouterr()
    assert main(["risk", str(model), "--weights", str(_weights(root, stocks))]) == 0
    out = capsys.readouterr().out
    assert "[a] volatility" in out and "top factor contributions" in out
    assert main(["risk", str(model), "--weights", str(_weights(root, stocks)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    a = report["portfolios"]["a"]
    assert a["volatility"] ** 2 == pytest.approx(a["factor_volatility"] ** 2 + a["specific_volatility"] ** 2, rel=1e-12)
    # each column's report is that portfolio's own decomposition (the file is decomposed as one batch)
    cov = rm.load(model).covariance()
    for name in ("a", "b"):
        book = pd.read_csv(root / "book.csv").set_index("stock")[name]
        dec = cov.decompose(book)
        rep = report["portfolios"][name]
        assert rep["volatility"] == pytest.approx(float(dec.total_vol), rel=1e-12)
        contrib = dec.component_contributions.to_pandas()
        top = contrib.abs().sort_values(ascending=False, kind="stable").index[:5]
        assert list(rep["top_stocks"]) == list(top)
        assert [rep["top_stocks"][k] for k in top] == pytest.approx(contrib[top].to_numpy(), rel=1e-12)


def test_audit_and_report(files, capsys, tmp_path):
    root, panel, model = files
    report = tmp_path / "audit.html"
    assert main(["audit", str(model), "--labels-from", "industry", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "Residual audit" in out
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_alpha(files, capsys, tmp_path):
    import riskmodel as rm

    root, panel, model = files
    assert main(["alpha", "spend", "--panel", str(panel), "--controls", "size,industry"]) == 0
    out = capsys.readouterr().out
    assert "alpha_annual" in out and "full model" in out
    # known factor lists from CSV files (compressed or not), each named by its file
    factors = rm.load(model).factor_returns.sel(factor=["market", "size"]).to_pandas()
    factors[["market"]].to_csv(tmp_path / "capm.csv")
    factors.to_csv(tmp_path / "two_factor.csv.gz")
    assert main(["alpha", "spend", "--panel", str(panel), "--against", str(tmp_path / "capm.csv"),
                 str(tmp_path / "two_factor.csv.gz")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert any(line.startswith("capm ") for line in table) and any(line.startswith("two_factor ") for line in table)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.nc", "-o", "x.nc"], "no such file"),
        (["risk", "{model}", "--weights", "nope.csv"], "no such weights file"),
        (["risk", "{model}", "--weights", "{unknown}"], "ZZZZ"),
        (["risk", "{model}", "--weights", "{book}", "--date", "1990-01-02"], "not in the model"),
        (["risk", "{panel}", "--weights", "{book}"], "not a fitted model"),
        (["alpha", "nosuch", "--panel", "{panel}"], "no signal variable 'nosuch'"),
        (["fit", "{panel}", "-o", "{root}/m.txt"], "suffix"),
    ],
)
def test_user_errors_are_one_line(files, capsys, argv, message):
    import riskmodel as rm

    root, panel, model = files
    stocks = list(rm.load(model).covariance().stocks)
    values = {
        "model": model,
        "panel": panel,
        "root": root,
        "book": _weights(root, stocks),
        "unknown": _weights(root, stocks, "unknown.csv", extra="ZZZZ"),
    }
    argv = [a.format(**values) for a in argv]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "riskmodel.cli", "risk", str(tmp_path / "none.nc"), "--weights", "x.csv"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_warnings_print_as_one_line(capsys):
    from riskmodel.cli import one_line_warnings
    from riskmodel.errors import RiskModelWarning

    with one_line_warnings("fit"):
        warnings.warn("stock 'A' on 2020-01-02: thin industry", RiskModelWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "riskmodel fit: warning: stock 'A' on 2020-01-02: thin industry\n"
    with warnings.catch_warnings(record=True) as seen:  # the handler is restored on exit
        warnings.simplefilter("always")
        warnings.warn("after", RiskModelWarning, stacklevel=1)
    assert len(seen) == 1 and capsys.readouterr().err == ""


def test_fit_kinds(files, tmp_path, capsys):
    import riskmodel as rm

    root, panel, model = files
    factors = rm.load(model).factor_returns.sel(factor=["market", "size"]).to_pandas()
    factor_file = tmp_path / "factors.csv"
    factors.to_csv(factor_file)
    runs = {
        "time-series": ["--factors", str(factor_file)],
        "statistical": ["--n-factors", "3"],
        "hybrid": ["--k", "1"],
    }
    for kind, extra in runs.items():
        out = tmp_path / f"{kind}.nc"
        assert main(["fit", str(panel), "-o", str(out), "-q", "--kind", kind, *extra]) == 0, kind
        fit = rm.load(out)
        assert np.isfinite(fit.covariance().variance(np.ones(fit.covariance().n_stocks))), kind
    assert main(["fit", str(panel), "-o", str(tmp_path / "x.nc"), "--kind", "time-series"]) == EXIT_USER_ERROR
    assert "needs --factors" in capsys.readouterr().err


def test_fit_settings_from_the_command_line(files, tmp_path):
    import riskmodel as rm

    _, panel, _ = files
    out = tmp_path / "tuned.nc"
    args = ["fit", str(panel), "-o", str(out), "-q", "--set", "vol_half_life=42", "--set", "eigen_sims=0",
            "--set", "vra_half_life=none", "--set", "corr_half_life=inf", "--set", "blend=false", "--no-clip"]
    assert main(args) == 0
    settings = rm.load(out).settings
    assert settings["vol_half_life"] == 42 and settings["eigen_sims"] == 0 and settings["vra_half_life"] is None
    # an infinite half-life survives the file (stored as the text "inf" in strict JSON)
    assert settings["corr_half_life"] == float("inf") and settings["blend"] is False and settings["return_clip"] is None
    default = rm.load(files[2]).settings
    assert default["vol_half_life"] != 42 and default["eigen_sims"] > 0 and default["return_clip"] == 5.0


@pytest.mark.filterwarnings("ignore::riskmodel.errors.SingularDateWarning")
def test_fit_preset_construction_is_the_named_setting_under_explicit_options(files, tmp_path):
    import riskmodel as rm
    from riskmodel.models.settings import CONSTRUCTION_SETTINGS

    _, panel, _ = files
    out = tmp_path / "construction.nc"
    assert main(["fit", str(panel), "-o", str(out), "-q", "--preset", "construction", "--k", "2",
                 "--set", "vol_half_life=63"]) == 0
    fit = rm.load(out)
    settings = fit.settings
    assert [str(f) for f in fit.factors][-2:] == ["stat1", "stat2"] and "stat3" not in [str(f) for f in fit.factors]
    assert settings["vol_half_life"] == 63  # --set overrides the preset
    for name in ("corr_standardise", "eigen_sims", "vra_half_life", "specific_vra_half_life"):
        assert settings[name] == CONSTRUCTION_SETTINGS[name], name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "statistical", "--preset", "construction"], "--preset applies to --kind fundamental or hybrid"),
        (["--set", "half_life=42"], "--set half_life: unknown setting; the settings are"),
        (["--set", "eigen_sims=-1"], "eigen_sims=-1 is invalid; expected an integer >= 0"),
        (["--set", "vol_half_life"], "expected NAME=VALUE"),
        (["--set", "styles=value"], "--set styles: use --styles instead"),
        (["--set", "lag=1", "--set", "lag=2"], "--set lag: given twice"),
        (["--set", "return_clip=3", "--no-clip"], "contradict each other"),
        (["--kind", "statistical", "--set", "lag=1"], "--set applies to --kind fundamental or hybrid"),
    ],
)
def test_fit_setting_errors_are_one_line(files, tmp_path, capsys, extra, message):
    _, panel, _ = files
    out = tmp_path / "bad.nc"
    capsys.readouterr()
    assert main(["fit", str(panel), "-o", str(out), "-q", *extra]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_first_run_says_it_compiles_and_stops_its_helper(files, tmp_path, capsys, monkeypatch):
    from riskmodel.cli import precompile as _precompile

    started = []
    real = _precompile.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    _, panel, _ = files
    monkeypatch.setattr(_precompile, "is_cached", lambda kernel: False)  # as on a new install
    monkeypatch.setattr(_precompile.subprocess, "Popen", popen)
    capsys.readouterr()
    assert main(["fit", str(panel), "-o", str(tmp_path / "m.nc"), "-q"]) == 0
    assert "first run on this machine: compiling the numba kernels" in capsys.readouterr().err
    assert len(started) == 1 and started[0].args[-1] == "specific"
    assert started[0].poll() is not None  # the helper does not outlive the command
    # with the kernels cached, nothing is started and nothing is said
    monkeypatch.undo()
    assert main(["fit", str(panel), "-o", str(tmp_path / "m2.nc"), "-q"]) == 0
    assert "first run" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# riskmodel panel: a long CSV or the bundled real data into a panel file
# ---------------------------------------------------------------------------------------


def _long_csv(panel_path, path, n_stocks=40):
    """A long CSV (one row per date and stock, rows shuffled) of part of the simulated panel."""
    import riskmodel as rm

    panel = rm.load(panel_path).isel(stock=slice(0, n_stocks))
    frame = panel[["returns", "market_cap", "value", "momentum"]].to_dataframe().reset_index()
    frame["industry"] = np.asarray(panel["industry"].values)[pd.Index(panel["stock"].values).get_indexer(frame["stock"])]
    frame = frame.sample(frac=1.0, random_state=0).rename(columns={"stock": "ticker", "date": "day"})
    frame.to_csv(path, index=False)
    return panel


def test_panel_from_a_long_csv(files, tmp_path, capsys):
    import riskmodel as rm
    from riskmodel.data.descriptors import add_descriptors

    _, panel_path, _ = files
    csv = tmp_path / "long.csv.gz"
    source = _long_csv(panel_path, csv)
    out = tmp_path / "from_csv.nc"
    capsys.readouterr()
    argv = ["panel", str(csv), "-o", str(out), "--date-column", "day", "--stock-column", "ticker",
            "--static", "industry", "--styles", "value,momentum", "--descriptors", "size,reversal"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "420 dates" in printed and "40 stocks" in printed
    built = rm.load(out)
    assert list(built.attrs["styles"]) == ["value", "momentum", "size", "reversal"]
    for name in ("returns", "market_cap", "value", "momentum"):  # cell for cell, whatever the row order
        np.testing.assert_array_equal(built[name].transpose("date", "stock").values,
                                      source[name].transpose("date", "stock").values, err_msg=name)
    assert built["industry"].dims == ("stock",)
    np.testing.assert_array_equal(built["industry"].values.astype(str), source["industry"].values.astype(str))
    expected = add_descriptors(source[["returns", "market_cap"]], ["size", "reversal"])
    np.testing.assert_allclose(built["reversal"].values, expected["reversal"].values, rtol=0, atol=0, equal_nan=True)
    # a later --start keeps the descriptors of the whole history (21-day reversal on the first kept day)
    cut = tmp_path / "cut.nc"
    start = str(pd.Timestamp(source["date"].values[100]).date())
    assert main([*argv[:3], str(cut), *argv[4:], "--start", start]) == 0
    late = rm.load(cut)
    assert late.sizes["date"] == 320
    np.testing.assert_array_equal(late["reversal"].values, expected["reversal"].isel(date=slice(100, None)).values)
    assert np.isfinite(late["reversal"].isel(date=0).values).all()
    # and the panel fits from the command line
    assert main(["fit", str(out), "-o", str(tmp_path / "m.nc"), "-q", "--set", "eigen_sims=0"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["panel", "{root}/none.csv", "-o", "{out}"], "no such file"),
        (["panel", "{empty}", "-o", "{out}"], "the panel CSV is empty"),
        (["panel", "{csv}", "-o", "{out}"], "no column 'date' (name it with --date-column)"),
        (["panel", "{csv}", "-o", "{out}", "--stock-column", "ticker", "--date-column", "day", "--styles", "nope"], "--styles ['nope']: not columns"),
        (["panel", "{csv}", "-o", "{out}", "--stock-column", "ticker", "--date-column", "day", "--descriptors", "size,quality"], "--descriptors ['quality']: unknown"),
        (["panel", "{csv}", "-o", "{out}", "--stock-column", "ticker", "--date-column", "day", "--end", "1999-01-01"], "--end 1999-01-01 keeps 0 date(s)"),
        (["panel", "{csv}", "-o", "{out}", "--stock-column", "ticker", "--date-column", "day", "--start", "tomorrowish"], "--start 'tomorrowish': not a date"),
        (["panel", "{csv}", "-o", "{out}", "--data", "{root}"], "--data applies to the 'us-equities' source"),
        (["panel", "{csv}", "-o", "{root}/p.txt"], "suffix"),
        (["risk", "{model}", "--weights", "{empty}"], "the weights file is empty"),
        (["risk", "{model}", "--weights", "{broken}"], "not a readable CSV weights file"),
        (["risk", "{model}", "--weights", "{text_weight}"], "weight 'abc' of stock 'S0001' in column 'a' is not a number"),
        (["fit", "{panel}", "-o", "{out}", "--kind", "time-series", "--factors", "{text_return}"], "return 'x' of date 2020-01-03 in column 'mkt' is not a number"),
        (["audit", "{model}", "--labels", "{empty}"], "the labels file is empty"),
        (["fit", "{panel}", "-o", "{out}", "--kind", "time-series", "--factors", "{int_dates}"], "in row 2 of the first column is not a date"),
        (["panel", "us-equities", "-o", "{out}", "--styles", "value"], "--styles applies to a CSV source"),
        (["panel", "us-equities", "-o", "{out}", "--static", "industry", "--date-column", "day"], "--static, --date-column apply to a CSV source"),
    ],
)
def test_csv_input_errors_are_one_line(files, tmp_path, capsys, argv, message):
    root, panel, model = files
    csv = tmp_path / "long.csv"
    _long_csv(panel, csv, n_stocks=5)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.csv").write_text('stock,a\nS0000,1\n"S0001,2\n')
    (tmp_path / "text_weight.csv").write_text("stock,a\nS0000,0.5\nS0001,abc\n")
    (tmp_path / "text_return.csv").write_text("date,mkt\n2020-01-02,0.01\n2020-01-03,x\n")
    (tmp_path / "int_dates.csv").write_text("day,mkt\n0,0.01\n1,0.02\n")
    values = {"root": tmp_path, "out": tmp_path / "out.nc", "csv": csv, "model": model, "panel": panel,
              **{name: tmp_path / f"{name}.csv" for name in ("empty", "broken", "text_weight", "text_return", "int_dates")}}
    capsys.readouterr()
    assert main([a.format(**values) for a in argv]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.nc").exists()


def test_panel_from_the_real_data(shared_data_dir, tmp_path, capsys):
    import riskmodel as rm

    out = tmp_path / "sp500.nc"
    capsys.readouterr()
    assert main(["panel", "us-equities", "-o", str(out), "--data", str(shared_data_dir), "--start", "2016-07-01",
                 "--pool-into", "sector"]) == 0
    assert "x 491 stocks" in capsys.readouterr().out
    panel = rm.load(out)
    assert list(panel.attrs["styles"]) == ["size", "momentum", "reversal", "volatility", "liquidity", "beta"]
    assert str(pd.Timestamp(panel["date"].values[0]).date()) >= "2016-07-01"
    # 12-month momentum on the first kept day: the descriptors were computed on the whole history
    assert np.isfinite(panel["momentum"].isel(date=0).values).mean() > 0.9
    pooled = panel["industry_pooled"]
    assert pooled.dims == ("date", "stock") and pooled.attrs["n_pooled"] > 0
    assert any(label.endswith("(other)") for label in pooled.attrs["labels"])
    assert main(["panel", "us-equities", "-o", str(tmp_path / "x.nc"), "--data", str(tmp_path)]) == EXIT_USER_ERROR
    assert "riskmodel panel: error:" in capsys.readouterr().err
