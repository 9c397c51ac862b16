"""The real-data walkthrough (docs/guide/real-data-walkthrough.md) with command-line calls only.

A user's own four years of daily prices, as a long CSV in the schema of ``../shared/data``
(``date, ticker, close, adj_close, volume, split, mcap_est, sector, industry,
sub_industry``), go through::

    riskmodel panel prices.csv.gz -o panel.nc --short-history
    riskmodel fit panel.nc -o model.nc --industry sector --min-history 42
    riskmodel risk model.nc --weights weights.csv --date <a Sunday>
    riskmodel audit model.nc --labels-from sector --panel panel.nc

Every step is the ``riskmodel`` command (``riskmodel.cli.main``, run in this process, as
the console script runs it). This script first writes the price CSV from the real data
(``--start/--end`` and ``--per-sector`` stocks per GICS sector; default: every stock of
2013-2016), then runs the commands and writes ``real_data_walkthrough.json``: the
commands, their exit codes and seconds, the first forecast date and the days from the
first date of the data to it.

    python examples/real_data_walkthrough.py --data ../shared/data --out walkthrough-out
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import pandas as pd


def write_price_csv(data: Path, out: Path, start: str, end: str, per_sector: int | None) -> list[str]:
    """A four-year price CSV in the real data's schema: ``per_sector`` stocks per sector (the
    first by ticker among those with a cap estimate and a price every day), or every stock.

    Returns the portfolio's stocks: those with a cap estimate and a price every day (a
    stock without a cap has no forecast, one listed later none before its listing).
    """
    source = data if data.is_file() else next(iter(sorted(data.glob("us_equities_*.csv.gz"))))
    frame = pd.read_csv(source)
    frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
    days = frame.groupby("ticker")["date"].count()
    with_cap = frame.groupby("ticker")["mcap_est"].count() > 0
    complete = days.index[(days == days.max()) & with_cap.reindex(days.index).to_numpy()]
    if per_sector is not None:
        sector = frame.drop_duplicates("ticker").set_index("ticker")["sector"].loc[complete].sort_index()
        frame = frame[frame["ticker"].isin(sector.groupby(sector).head(per_sector).index)]
    frame.to_csv(out, index=False)
    return sorted(set(frame["ticker"].unique()) & set(complete))


def riskmodel(*argv: str) -> tuple[int, str, str, float]:
    """Run ``riskmodel ARGV...`` (the console script's entry point) in this process."""
    from riskmodel.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


def run_walkthrough(folder: Path, prices: Path, stocks: list[str]) -> dict:
    """The four commands on ``prices``; their record and the first forecast."""
    weights = folder / "weights.csv"
    pd.DataFrame({"stock": stocks, "equal": 1.0 / len(stocks)}).to_csv(weights, index=False)
    panel, model = folder / "panel.nc", folder / "model.nc"
    steps = {
        "panel": ["panel", str(prices), "-o", str(panel), "--short-history"],
        "fit": ["fit", str(panel), "-o", str(model), "--industry", "sector", "--min-history", "42", "--quiet"],
    }
    record: dict = {"commands": {}}

    def run(name: str, argv: list[str]) -> tuple[str, str]:
        code, out, err, seconds = riskmodel(*argv)
        shown = [arg.replace(str(folder) + "/", "") for arg in argv]  # paths relative to the output folder
        record["commands"][name] = {"argv": ["riskmodel", *shown], "exit_code": code, "seconds": round(seconds, 2),
                                    "stderr_lines": len(err.splitlines())}
        if code != 0:
            raise SystemExit(f"riskmodel {' '.join(argv)} failed ({code}): {err.strip()}")
        return out, err

    for name, argv in steps.items():
        run(name, argv)
    first_date = pd.read_csv(prices, usecols=["date"])["date"].min()
    # a forecast exists one year after the first date of the data (the user's check) ...
    one_year = pd.Timestamp(first_date) + pd.DateOffset(years=1)
    out, _ = run("risk_one_year_in", ["risk", str(model), "--weights", str(weights), "--date", str(one_year.date()),
                                      "--json"])
    record["one_year_in"] = json.loads(out)["date"]
    # ... and the first one, measured on the model file (a record for the docs, not a user step)
    import riskmodel as rm

    first_forecast = rm.load(model)._first_forecast_date()
    sunday = pd.Timestamp(first_date) + pd.offsets.Week(weekday=6) * 60
    out, err = run("risk", ["risk", str(model), "--weights", str(weights), "--date", str(sunday.date())])
    record["risk_as_of_note"] = err.strip()
    record["risk_headline"] = out.splitlines()[0]
    out, _ = run("audit", ["audit", str(model), "--labels-from", "sector", "--panel", str(panel)])
    record["audit_lines"] = len(out.splitlines())
    record.update(first_date=str(first_date), first_forecast=first_forecast,
                  days_to_first_forecast=int((pd.Timestamp(first_forecast) - pd.Timestamp(first_date)).days))
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                        help="the real data folder or its us_equities_*.csv.gz")
    parser.add_argument("--out", default="real-data-walkthrough", help="output folder")
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2016-12-31")
    parser.add_argument("--per-sector", type=int, default=None, help="stocks per sector (default: all)")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    prices = folder / "prices.csv.gz"
    started = time.perf_counter()
    stocks = write_price_csv(Path(args.data), prices, args.start, args.end, args.per_sector)
    record = run_walkthrough(folder, prices, stocks)
    record.update(n_stocks=int(pd.read_csv(prices, usecols=["ticker"])["ticker"].nunique()), n_portfolio=len(stocks),
                  start=args.start, end=args.end, per_sector=args.per_sector,
                  total_seconds=round(time.perf_counter() - started, 1))
    try:
        import os

        record["load_average"] = list(os.getloadavg())
    except OSError:
        pass
    (folder / "real_data_walkthrough.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
