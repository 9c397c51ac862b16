"""The real-data walkthrough (docs/guide/real-data-walkthrough.md) on a small slice, with
command-line calls only: a four-year CSV of prices -> panel -> fit --industry sector ->
risk -> audit; the first forecast comes at most a year after the first date."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _real_data() -> Path:
    env = os.environ.get("RISKMODEL_DATA")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    if not any(folder.glob("us_equities_*.csv.gz")):
        pytest.skip(f"real data not found at {folder}")
    return folder


def _walkthrough():
    spec = importlib.util.spec_from_file_location("examples_real_data_walkthrough", EXAMPLES / "real_data_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_four_years_of_prices_to_forecasts_with_the_command_line_only(tmp_path):
    walk = _walkthrough()
    prices = tmp_path / "prices.csv.gz"
    stocks = walk.write_price_csv(_real_data(), prices, "2013-01-01", "2016-12-31", per_sector=8)
    assert 60 <= len(stocks) <= 100
    frame = pd.read_csv(prices, nrows=5)
    assert "returns" not in frame and {"adj_close", "close", "volume", "mcap_est", "sector"} <= set(frame.columns)

    record = walk.run_walkthrough(tmp_path, prices, stocks)

    assert all(step["exit_code"] == 0 for step in record["commands"].values())
    assert record["commands"]["fit"]["argv"][-5:-1] == ["--industry", "sector", "--min-history", "42"]
    assert record["days_to_first_forecast"] <= 365
    assert pd.Timestamp(record["one_year_in"]) <= pd.Timestamp(record["first_date"]) + pd.DateOffset(years=1)
    # forecasts for at least the last three of the four years
    assert pd.Timestamp(record["first_forecast"]) <= pd.Timestamp("2014-01-02")
    # --date on a Sunday: the last trading day before it, said in one line
    assert "is not a trading day" in record["risk_as_of_note"] and "using the last trading day" in record["risk_as_of_note"]
    assert record["risk_as_of_note"].count("\n") == 0
    assert record["audit_lines"] > 5
