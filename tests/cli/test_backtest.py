"""``riskmodel backtest``: a fitted model and the shrinkage peers side by side, as a user runs it."""

from __future__ import annotations

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.cli import EXIT_USER_ERROR, main
from riskmodel.construction.backtest import ConstructionBacktest


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backtest")
    panel = rm.simulate(n_stocks=80, n_days=260, seed=4, n_industries=4)
    fit = rm.FactorRiskModel(eigen_sims=0, progress=False).fit(panel)
    rm.save(panel, folder / "panel.nc")
    rm.save(fit, folder / "model.nc")
    return folder


def test_backtest_prints_saves_and_draws(files, tmp_path, capsys):
    out, png = tmp_path / "bt.nc", tmp_path / "bt.png"
    argv = ["backtest", str(files / "model.nc"), "--panel", str(files / "panel.nc"), "--peers", "ledoit-wolf,equal",
            "--window", "60", "--every", "10", "-o", str(out), "--figure", str(png)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("ConstructionBacktest: 3 estimators x 3 portfolios")
    for name in ("riskmodel", "Ledoit-Wolf", "1/N", "gmv_long_only"):
        assert name in printed
    result = rm.load(out)
    assert isinstance(result, ConstructionBacktest) and result.estimators == ["riskmodel", "Ledoit-Wolf", "1/N"]
    table = result.table()
    assert np.isfinite(table["realised vol"]).all() and (table.loc["gmv_long_only", "gross"] <= 1 + 1e-9).all()
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--peers", "ledoit,oas"], "--peers 'ledoit,oas': choose among"),
        (["--portfolios", "none"], "--portfolios none"),
        (["--every", "0"], "--every 0"),
        (["-o", "{tmp}/bt.txt"], "bt.txt"),
    ],
)
def test_bad_backtest_options_are_one_line(files, tmp_path, capsys, extra, says):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = ["backtest", str(files / "model.nc"), "--panel", str(files / "panel.nc"), *extra]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("riskmodel backtest: error:") and says in err[0]
    assert list(tmp_path.iterdir()) == []


def test_backtest_refuses_a_panel_as_the_model(files, capsys):
    assert main(["backtest", str(files / "panel.nc"), "--panel", str(files / "panel.nc")]) == EXIT_USER_ERROR
    assert "not a fitted model" in capsys.readouterr().err
