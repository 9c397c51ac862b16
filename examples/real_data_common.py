"""Shared loading and output helpers for the real-data example scripts.

The panel is the S&P 500 (April 2021 members) daily file in ``../shared/data`` read by
:func:`riskmodel.load_us_equities`, with six style descriptors added by
:func:`riskmodel.data.descriptors.add_descriptors` **on the full 2007-2016 history** (so a
late ``--start`` still has its 12-month momentum and 252-day beta), then cut to the
requested window.  ``industry`` is the GICS industry (68 labels), ``sector`` the GICS
sector (11); both are one 2023 snapshot applied to every date (see the data README).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
STYLES = ("size", "momentum", "reversal", "volatility", "liquidity", "beta")
FIRST_DATE = "2007-01-03"
LAST_DATE = "2016-12-30"

os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))


def parser(description: str, *, start: str, end: str = LAST_DATE) -> argparse.ArgumentParser:
    """The common command line: ``--start``, ``--end``, ``--quick``, ``--stocks``, ``--data``, ``--out``.

    Parameters
    ----------
    description : str
        Shown by ``--help``.
    start, end : str
        Default window (ISO dates, inclusive).

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--start", default=start, help=f"first date of the window (default {start})")
    p.add_argument("--end", default=end, help=f"last date of the window (default {end})")
    p.add_argument("--quick", action="store_true", help="fewer simulations and portfolios (a smoke run)")
    p.add_argument("--stocks", type=int, default=None, help="keep the N largest stocks by median cap (default all)")
    p.add_argument("--data", default=None, help="folder of the real data (default $RISKMODEL_DATA or ../shared/data)")
    p.add_argument("--out", default=str(FIGURES), help=f"folder for figures and the JSON of key numbers (default {FIGURES})")
    return p


def load_panel(
    start: str | None = None,
    end: str | None = None,
    *,
    n_stocks: int | None = None,
    data: str | os.PathLike | None = None,
) -> xr.Dataset:
    """The real panel with style descriptors, GICS industry and sector labels.

    Parameters
    ----------
    start, end : str, optional
        Window kept (inclusive).  Descriptors are computed on the whole file first.
    n_stocks : int, optional
        Keep the ``n_stocks`` largest stocks by median market cap over the window
        (deterministic; used by the small test runs).  Default: all stocks with at least
        one return in the window.
    data : path-like, optional
        Folder or file of the data (default of :func:`riskmodel.load_us_equities`).

    Returns
    -------
    xr.Dataset (date, stock)
        ``returns``, ``market_cap``, ``dollar_volume``, the six styles of
        :data:`STYLES` (listed in ``attrs["styles"]``), ``industry`` (GICS industry, str),
        ``sector`` (GICS sector, str), ``market_cap_is_proxy`` (stock).
    """
    import riskmodel as rm
    from riskmodel.data.descriptors import add_descriptors

    panel = rm.load_us_equities(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.errors.RiskModelWarning)
        panel = add_descriptors(panel, STYLES)
    panel = panel.sel(date=slice(pd.Timestamp(start or FIRST_DATE), pd.Timestamp(end or LAST_DATE)))
    if panel.sizes["date"] < 2:
        raise rm.errors.InvalidParameterError(f"window {start} .. {end} holds fewer than 2 trading days")
    has_return = np.isfinite(panel["returns"].to_numpy()).any(axis=0)
    panel = panel.isel(stock=np.flatnonzero(has_return))
    if n_stocks is not None and n_stocks < panel.sizes["stock"]:
        median_cap = np.nanmedian(panel["market_cap"].to_numpy(), axis=0)
        keep = np.sort(np.argsort(-np.nan_to_num(median_cap, nan=-np.inf), kind="stable")[:n_stocks])
        panel = panel.isel(stock=keep)
    panel = panel.assign_coords(stock=panel["stock"].to_numpy().astype(str))
    panel.attrs["styles"] = list(STYLES)
    panel.attrs["window"] = f"{pd.Timestamp(panel['date'].values[0]).date()} .. {pd.Timestamp(panel['date'].values[-1]).date()}"
    return panel


def sector_labels(panel: xr.Dataset) -> xr.DataArray:
    """DataArray (stock,) of GICS sector names (str)."""
    return panel["sector"].astype(str)


@contextlib.contextmanager
def quiet_fit_warnings() -> Iterator[None]:
    """Hide the library's expected real-data warnings (thin industries, imputation, data errors).

    The counts behind them are reported by the scripts themselves (or in the guide pages),
    so the console keeps the tables readable.
    """
    import riskmodel as rm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.errors.RiskModelWarning)
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        warnings.filterwarnings("ignore", message="Degrees of freedom <= 0")
        yield


def save_figure(fig: Any, out: Path, name: str, *, dpi: int = 90, max_bytes: int = 200_000) -> Path:
    """Write ``fig`` as ``out/name.png``, lowering the resolution until it is below ``max_bytes``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    for d in (dpi, 72, 60, 50):
        fig.savefig(path, dpi=d)
        if path.stat().st_size < max_bytes:
            break
    return path


def write_json(out: Path, name: str, facts: dict[str, Any]) -> Path:
    """Write the key numbers of a script as ``out/name.json`` (floats to 6 significant
    digits, NaN written as null)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return None if not np.isfinite(v) else float(f"{float(v):.6g}")
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.bool_):
            return bool(v)
        return v

    path.write_text(json.dumps(clean(facts), indent=2) + "\n")
    return path
