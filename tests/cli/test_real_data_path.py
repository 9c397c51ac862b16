"""Issue 19: the real-data path from the command line (frictions 1, 2, 5, 6, 7, 8)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.cli.main import build_parser, main


@pytest.fixture(scope="module")
def world():
    return rm.simulate(n_stocks=150, n_days=320, seed=11)


def _price_frame(world, start="2017-01-03") -> pd.DataFrame:
    """The simulated world as a long CSV in the real data's schema (a user's own prices)."""
    dates = pd.bdate_range(start, periods=world.sizes["date"])
    returns = np.nan_to_num(world["returns"].to_numpy())
    adj = 40.0 * np.cumprod(1.0 + returns, axis=0)
    industry = world["industry"].to_numpy()
    sector = np.array([f"SEC{int(label[3:]) % 3}" for label in industry])
    cap = world["market_cap"].to_numpy() / 1e6
    t, n = np.meshgrid(np.arange(len(dates)), np.arange(world.sizes["stock"]), indexing="ij")
    return pd.DataFrame({
        "date": dates[t.ravel()].strftime("%Y-%m-%d"), "ticker": world["stock"].to_numpy()[n.ravel()],
        "close": adj.ravel(), "adj_close": adj.ravel(), "volume": 1e5, "split": 1.0, "mcap_est": cap.ravel(),
        "sector": sector[n.ravel()], "industry": industry[n.ravel()], "sub_industry": industry[n.ravel()],
    })


def test_data_folder_finds_the_file_whatever_its_years_and_says_its_span(world, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    frame = _price_frame(world)
    frame.to_csv(folder / "us_equities_20170103_20180314.csv.gz", index=False)
    out = tmp_path / "panel.nc"
    assert main(["panel", "us-equities", "--data", str(folder), "-o", str(out), "--descriptors", "size"]) == 0
    panel = rm.load(out)
    first, last = frame["date"].iloc[0], frame["date"].iloc[-1]
    assert panel.attrs["title"].endswith(f"{first} .. {last}") and "2007" not in panel.attrs["title"]
    assert (panel.attrs["first_date"], panel.attrs["last_date"]) == (first, last)
    # two candidate files: the folder does not say which, so it is an error naming both
    frame.to_csv(folder / "us_equities_20190102_20200101.csv.gz", index=False)
    assert main(["panel", "us-equities", "--data", str(folder), "-o", str(tmp_path / "p2.nc")]) == 2
    err = capsys.readouterr().err
    assert "us_equities_20170103_20180314.csv.gz" in err and "us_equities_20190102_20200101.csv.gz" in err


def test_help_does_not_claim_the_years_of_the_shipped_file():
    parser = build_parser()
    panel_help = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "panel")[1].format_help()
    assert "2007" not in panel_help and "2016" not in panel_help


def test_price_csv_to_panel_then_sector_model(world, tmp_path, capsys):
    csv = tmp_path / "prices.csv"
    frame = _price_frame(world)
    frame.to_csv(csv, index=False)
    assert main(["panel", str(csv), "-o", str(tmp_path / "panel.nc"), "--short-history"]) == 0
    panel = rm.load(tmp_path / "panel.nc")
    until = json.loads(panel.attrs["short_history"])["momentum"]["low_confidence_until"]
    assert f"short start, low-confidence: momentum until {until}" in capsys.readouterr().out
    # returns from adjusted prices, caps from mcap_est (USD millions) x 1e6, dollar volume close x volume
    want = frame.pivot(index="date", columns="ticker", values="adj_close").pct_change().to_numpy()
    np.testing.assert_allclose(panel["returns"].to_numpy()[1:], want[1:], rtol=1e-12)
    np.testing.assert_allclose(panel["market_cap"].to_numpy(), world["market_cap"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(panel["dollar_volume"].to_numpy(),
                               frame.pivot(index="date", columns="ticker", values="close").to_numpy() * 1e5)
    assert panel["sector"].dims == ("stock",) and "descriptor_low_confidence" in panel
    assert json.loads(panel.attrs["short_history"])["momentum"]["min_history"] == 126
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "panel.nc"), "-o", str(tmp_path / "model.nc"), "--industry", "sector",
                 "--min-history", "42", "-q"]) == 0
    model = rm.load(tmp_path / "model.nc")
    assert model.industry_labels == ("SEC0", "SEC1", "SEC2")
    assert model.settings["min_history"] == 42
    # the summary says when the forecasts start and which descriptors were on their short start
    printed = capsys.readouterr().out
    assert f"first forecast at the close of {model._first_forecast_date()}" in printed
    until = json.loads(panel.attrs["short_history"])["momentum"]["low_confidence_until"]
    assert f"momentum until {until}" in printed and "low-confidence descriptors" in printed


def test_min_history_starts_the_forecasts_sooner_and_the_default_is_unchanged(world):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = rm.FactorRiskModel(eigen_sims=0, progress=False).fit(world)
        same = rm.FactorRiskModel(eigen_sims=0, min_history=None, progress=False).fit(world)
        short = rm.FactorRiskModel(eigen_sims=0, min_history=20, progress=False).fit(world)
    np.testing.assert_array_equal(default.dataset["factor_cov"].values, same.dataset["factor_cov"].values)
    first = {name: pd.Timestamp(fit._first_forecast_date()) for name, fit in (("default", default), ("short", short))}
    assert first["short"] < first["default"]
    fitted = np.flatnonzero(np.isfinite(short.factor_returns.values).any(axis=1))
    assert pd.Timestamp(short.dates[fitted[0]]) + pd.Timedelta(days=40) >= first["short"]  # 20 fitted dates + slack
    with pytest.raises(rm.InvalidParameterError, match="min_history"):
        rm.FactorRiskModel(min_history=0)


def test_the_thin_industry_warning_is_a_summary_and_knows_about_pooling(world):
    panel = world.copy()
    industry = panel["industry"].to_numpy().copy()
    industry[:3] = "tiny"  # a thin industry on every date
    industry[3:5] = "tinier"
    panel["industry"] = ("stock", industry)
    panel["sector"] = ("stock", np.where(np.isin(industry, ["tiny", "tinier"]), "S1", "S0"))
    with pytest.warns(rm.ThinIndustryWarning) as caught:
        rm.FactorRiskModel(covariance=False, progress=False).fit(panel)
    message = str(caught[0].message)
    assert "in 2 of" in message and "tiny on" in message and "dates to" in message
    assert message.count(" on ") <= 6 and "pool_thin_industries" in message
    # pooled labels: no advice to pool again
    pooled = rm.pool_thin_industries(panel, "industry", "sector")
    codes = pooled.to_numpy()
    codes[:, :5] = pooled.attrs["labels"].index("S1 (other)")  # the pool itself is thin (5 < 6 members)
    panel["industry_pooled"] = pooled.copy(data=codes)
    with pytest.warns(rm.ThinIndustryWarning) as caught:
        rm.FactorRiskModel(industry="industry_pooled", covariance=False, min_industry_size=6, progress=False).fit(panel)
    message = str(caught[0].message)
    assert "already pooled" in message and "rm.pool_thin_industries(panel)" not in message


def test_mrad_na_is_explained(world):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = rm.FactorRiskModel(eigen_sims=0, progress=False).fit(world)
        stats = rm.bias_statistics(fit, ["pure_factors"], window=252, start=world["date"].values[-40])
    assert not np.isfinite(stats.mrad)
    assert "MRAD n/a: fewer than 126 outcomes for the 252-outcome rolling bias" in stats.summary()


def test_risk_date_on_a_weekend_is_as_of_the_friday(world, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = rm.FactorRiskModel(eigen_sims=0, progress=False).fit(world)
    rm.save(fit, tmp_path / "m.nc")
    pd.DataFrame({"stock": world["stock"].values[:10], "book": 0.1}).to_csv(tmp_path / "w.csv", index=False)
    day = pd.Timestamp(world["date"].values[-10])
    saturday = day + pd.Timedelta(days=(5 - day.day_of_week) % 7 or 7)
    assert saturday not in pd.DatetimeIndex(fit.dates)
    last_before = pd.Timestamp(fit.dates[fit.dates <= saturday][-1])
    capsys.readouterr()
    assert main(["risk", str(tmp_path / "m.nc"), "--weights", str(tmp_path / "w.csv"), "--date", str(saturday.date()),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["date"] == str(last_before.date())
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(saturday.date()) in lines[0] and str(last_before.date()) in lines[0]


def test_fit_says_how_to_start_sooner_when_the_warm_up_took_a_year(world, tmp_path, capsys):
    frame = _price_frame(world)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    assert main(["panel", str(tmp_path / "prices.csv"), "-o", str(tmp_path / "p.nc"), "--descriptors", "size,momentum"]) == 0
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "p.nc"), "-o", str(tmp_path / "m.nc"), "--industry", "sector", "-q",
                 "--set", "eigen_sims=0"]) == 0
    late = capsys.readouterr().out
    assert "--short-history" in late and "--min-history 42" in late
    assert main(["fit", str(tmp_path / "p.nc"), "-o", str(tmp_path / "m2.nc"), "--industry", "sector", "-q",
                 "--set", "eigen_sims=0", "--min-history", "20"]) == 0
    assert "--short-history" not in capsys.readouterr().out
