"""Time toraniko's ``estimate_factor_returns`` on data saved by ``bench_factor_returns.py``.

Runs inside a separate virtual environment (toraniko pins numpy 1.26), e.g.::

    python -m venv /tmp/venv_toraniko && /tmp/venv_toraniko/bin/pip install toraniko
    /tmp/venv_toraniko/bin/python benchmarks/_toraniko_runner.py data.npz

The npz holds, for the return dates to time, ``returns (D, N)``, the exposures already
aligned to those dates (lagged by the caller): ``styles (D, N, K)``, ``industry (D, N)``
codes, ``cap (D, N)``. Building the polars frames is not timed; only the estimation call
is, warm: a first call on the first two dates runs before (imports, polars set-up), then the
call on every saved date is timed. Prints one JSON line: wall and CPU seconds, days, peak
RSS (MB) of this process, the numpy and toraniko versions.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from importlib.metadata import version

import numpy as np
import polars as pl
from toraniko.model import estimate_factor_returns


def _frames(path: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, int, int]:
    data = np.load(path)
    returns, styles, industry, cap = data["returns"], data["styles"], data["industry"], data["cap"]
    n_days, n_stocks, n_styles = styles.shape
    n_ind = int(industry.max()) + 1
    dates = np.repeat(np.arange(n_days), n_stocks)
    symbols = np.tile(np.array([f"S{n:05d}" for n in range(n_stocks)]), n_days)
    key = {"date": dates, "symbol": symbols}
    returns_df = pl.DataFrame({**key, "asset_returns": returns.ravel()})
    cap_df = pl.DataFrame({**key, "market_cap": cap.ravel()})
    codes = industry.ravel()
    sector_df = pl.DataFrame({**key, **{f"ind{p:03d}": (codes == p).astype(np.float64) for p in range(n_ind)}})
    style_df = pl.DataFrame({**key, **{f"sty{k:02d}": styles[:, :, k].ravel() for k in range(n_styles)}})
    return returns_df, cap_df, sector_df, style_df, n_days, n_stocks


def main() -> None:
    returns_df, cap_df, sector_df, style_df, n_days, n_stocks = _frames(sys.argv[1])
    first = [frame.filter(pl.col("date") < 2) for frame in (returns_df, cap_df, sector_df, style_df)]
    estimate_factor_returns(*first, winsor_factor=None)  # warm-up
    cpu0 = time.process_time()
    start = time.perf_counter()
    factor_df, _ = estimate_factor_returns(returns_df, cap_df, sector_df, style_df, winsor_factor=None)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "days": n_days, "stocks": n_stocks,
                      "peak_rss_mb": peak_mb, "n_factor_rows": factor_df.height,
                      "state": "warm (a first call on two dates before)", "numpy": np.__version__,
                      "toraniko": version("toraniko")}))


if __name__ == "__main__":
    main()
