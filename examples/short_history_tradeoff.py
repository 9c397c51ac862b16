"""What a short warm-up costs: calibration of the first forecasts with the default warm-up
and with the short one (issue 19), on four-year windows of the real data.

For each window (default 2009-2012 and 2013-2016, every stock, sectors as the industry
factor, as in docs/guide/real-data-walkthrough.md) the panel is built from that window's
data only (as a user with four years of data has it) and fitted twice:

* ``default``: the descriptors' default minimum histories (momentum from 221 days) and the
  covariance's default warm-up (``max(3 x factors, 42)`` dates of factor returns);
* ``short``: ``add_descriptors(short_history=True)`` (momentum from 126 days) and
  ``FactorRiskModel(min_history=42)``.

The bias statistics (random long-only portfolios and pure factor portfolios, one-day
outcomes) are computed over (a) the *early* dates only the short set-up forecasts, (b) the
*common* dates both forecast, (c) for the short set-up, its whole span. A bias near 1 is a
calibrated forecast; the band is ``1 ± √(2/T)``. Writes ``short_history_tradeoff.json``.

    python examples/short_history_tradeoff.py --data ../shared/data --out examples/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FAMILIES = ["random", "pure_factors"]
WINDOWS = [("2009-01-01", "2012-12-31"), ("2013-01-01", "2016-12-31")]


def _first_forecast(fit) -> pd.Timestamp:
    ok = np.isfinite(fit.dataset["factor_cov"].to_numpy()).any(axis=(1, 2))
    return pd.Timestamp(fit.dates[int(np.argmax(ok))])


def _bias(fit, start, end) -> dict:
    import riskmodel as rm

    stats = rm.bias_statistics(fit, FAMILIES, start=start, end=end, n_random=100, window=63, seed=0)
    table = stats.by_family()
    out = {"outcomes": int(stats.z.sizes["date"]), "band": [round(float(b), 4) for b in stats.band],
           "mrad": None if not np.isfinite(stats.mrad) else round(float(stats.mrad), 4)}
    for family in FAMILIES:
        if family in table.index:
            row = table.loc[family]
            out[family] = {col: round(float(row[col]), 4) for col in table.columns if np.isfinite(row[col])}
    return out


def run_window(data: Path, start: str, end: str) -> dict:
    import riskmodel as rm
    from riskmodel.data.descriptors import add_descriptors

    raw = rm.load_us_equities(data, start=start, end=end)
    result: dict = {"start": start, "end": end, "n_stocks": int(raw.sizes["stock"]), "n_dates": int(raw.sizes["date"])}
    fits = {}
    for name, short in (("default", False), ("short", True)):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            panel = add_descriptors(raw, short_history=short)
            model = rm.FactorRiskModel(industry="sector", min_history=42 if short else None, progress=False)
            fits[name] = model.fit(panel)
        result[name] = {"first_forecast": str(_first_forecast(fits[name]).date()),
                        "fit_seconds": round(time.perf_counter() - started, 1)}
    first = pd.Timestamp(raw["date"].values[0])
    for name in fits:
        result[name]["days_to_first_forecast"] = int((pd.Timestamp(result[name]["first_forecast"]) - first).days)
    short_first, default_first = (pd.Timestamp(result[n]["first_forecast"]) for n in ("short", "default"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        day_after = fits["short"].dates[fits["short"].dates > short_first][0]
        result["short"]["early"] = _bias(fits["short"], day_after, default_first)
        result["short"]["common"] = _bias(fits["short"], default_first + pd.Timedelta(days=1), None)
        result["default"]["common"] = _bias(fits["default"], default_first + pd.Timedelta(days=1), None)
        result["short"]["whole"] = _bias(fits["short"], day_after, None)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--windows", nargs="*", help="START:END pairs (default 2009-2012 and 2013-2016)")
    args = parser.parse_args(argv)
    windows = [tuple(w.split(":")) for w in args.windows] if args.windows else WINDOWS
    started = time.perf_counter()
    record = {
        "what": "bias statistics of forecasts with the default warm-up vs the short one "
                "(short_history descriptors + min_history=42), sectors as industry, every stock",
        "families": FAMILIES, "rolling_window": 63, "n_random": 100,
        "windows": [run_window(Path(args.data), start, end) for start, end in windows],
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": list(os.getloadavg()),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "short_history_tradeoff.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
