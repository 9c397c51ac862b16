"""``riskmodel panel``: a panel file from a long CSV (of returns or of raw prices) or from the
bundled S&P 500 data.

A CSV with a ``returns`` column is read as it is. A CSV of prices (the schema of
``../shared/data``: ``date, ticker, close, adj_close, volume, mcap_est, sector, industry,
sub_industry``) gets its returns, caps and dollar volume computed
(:func:`riskmodel.data.prices.panel_from_prices`), the columns named by flags whose
defaults are that schema's names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.cli.readers import read_csv, same_file
from riskmodel.data.io import check_target
from riskmodel.errors import InvalidParameterError, PanelError

#: The ``riskmodel panel`` source that names the bundled real data (``rm.load_us_equities``).
US_EQUITIES = "us-equities"

#: Label columns of the real data's schema, read as (stock) variables of a price CSV when
#: present and no --static is given.
LABEL_COLUMNS = ("sector", "industry", "sub_industry")

#: Flags that only apply to a CSV source.
_CSV_FLAGS = ("styles", "static", "date_column", "stock_column", "price_column", "close_column", "volume_column",
              "cap_column", "shares_column", "cap_scale")


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def cmd_panel(args: argparse.Namespace) -> None:
    import riskmodel as rm
    from riskmodel.data.datasets import describe_span
    from riskmodel.data.descriptors import add_descriptors

    if same_file(args.source, args.output):
        raise PanelError(f"-o {args.output}: the output is the source file; write the panel to another path")
    check_target(args.output, "panel")  # fail before the long work, not after: format, folder, what is there
    if args.source == US_EQUITIES:
        given = [_flag(name) for name in _CSV_FLAGS if getattr(args, name, None) is not None]
        if given:
            raise InvalidParameterError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to a CSV source, "
                                        f"not {US_EQUITIES!r} (its styles are the descriptors: use --descriptors)")
        panel = rm.load_us_equities(args.data)
        styles: list[str] = []
    else:
        if args.data:
            raise InvalidParameterError(f"--data applies to the {US_EQUITIES!r} source; a CSV source is its own file")
        panel = _panel_from_csv(args)
        styles = _split(args.styles) or []
        absent = [name for name in styles if name not in panel.data_vars]
        if absent:
            raise PanelError(f"--styles {absent}: not columns of {args.source} (it has {sorted(map(str, panel.data_vars))})")
    panel.attrs["styles"] = styles
    descriptors = _descriptor_names(args.descriptors or ("all" if args.source == US_EQUITIES or _is_price_csv(panel) else "none"))
    if getattr(args, "short_history", False) and not descriptors:
        raise InvalidParameterError("--short-history shortens the descriptors' windows; give --descriptors too")
    if descriptors:  # on the whole history, so that a later --start keeps its 12-month momentum
        panel = add_descriptors(panel, descriptors, short_history=bool(getattr(args, "short_history", False)))
    panel = rm.date_window(panel, args.start, args.end, names=("--start", "--end"), min_dates=2)
    panel = describe_span(panel)
    pooled = ""
    if args.pool_into:
        panel["industry_pooled"] = rm.pool_thin_industries(panel, "industry", args.pool_into, min_size=args.min_industry_size)
        pooled = f"; industry_pooled ({panel['industry_pooled'].attrs['n_pooled']} thin (date, stock) cells pooled)"
    rm.save(panel, args.output)
    no_return = ""
    if "returns" in panel:
        n_empty = int((~np.isfinite(panel["returns"].to_numpy())).all(axis=0).sum())
        no_return = f" ({n_empty} without a return)" if n_empty else ""
    first, last = (pd.Timestamp(panel["date"].values[i]).date() for i in (0, -1))
    print(f"wrote {args.output}: {panel.sizes['date']} dates ({first} .. {last}) x {panel.sizes['stock']} stocks"
          f"{no_return}; styles {list(panel.attrs['styles'])}{pooled}{_short_start(panel)}")


def _short_start(panel) -> str:
    """``--short-history``: the descriptors flagged low-confidence, and until when."""
    import json

    if not isinstance(panel.attrs.get("short_history"), str):
        return ""
    until = {name: info["low_confidence_until"] for name, info in json.loads(panel.attrs["short_history"]).items()
             if info.get("low_confidence_until")}
    listed = ", ".join(f"{name} until {date}" for name, date in until.items())
    return f"; short start, low-confidence: {listed}" if listed else ""


def _is_price_csv(panel) -> bool:
    return bool(panel.attrs.get("from_prices"))


def _panel_from_csv(args: argparse.Namespace):
    """A panel from a long CSV: of returns (a ``returns`` column), or of prices."""
    import riskmodel as rm
    from riskmodel.data.prices import PRICE_DEFAULTS, panel_from_prices

    path = Path(args.source)
    if not path.exists():
        raise PanelError(f"{path}: no such file (give a long CSV, one row per date and stock, or {US_EQUITIES!r})")
    date = getattr(args, "date_column", None) or "date"
    columns = _header(path)
    stock = getattr(args, "stock_column", None) or ("ticker" if "stock" not in columns and "ticker" in columns else "stock")
    frame = read_csv(path, "panel CSV", ids=stock)
    columns = list(map(str, frame.columns))
    for flag, column in (("--date-column", date), ("--stock-column", stock)):
        if column not in frame.columns:
            raise PanelError(f"{path}: no column {column!r} (name it with {flag}); the columns are {columns}")
    price = getattr(args, "price_column", None)
    from_prices = price is not None or "returns" not in frame.columns
    if not from_prices:
        price_only = [_flag(name) for name in ("close_column", "volume_column", "cap_column", "shares_column", "cap_scale")
                      if getattr(args, name, None) is not None]
        if price_only:
            raise InvalidParameterError(f"{', '.join(price_only)} appl{'y' if len(price_only) > 1 else 'ies'} to a CSV of "
                                        f"prices; {path} has a 'returns' column (give --price-column to use prices)")
        return rm.panel_from_long(frame, date=date, stock=stock, static=_split(getattr(args, "static", None)))
    price = price or PRICE_DEFAULTS["price"]
    if price not in frame.columns:
        raise PanelError(f"{path}: no column 'returns' (simple daily returns) and no price column {price!r} "
                         f"(name it with --price-column); the columns are {columns}")
    static = _split(getattr(args, "static", None))
    if static is None:
        static = [c for c in LABEL_COLUMNS if c in frame.columns]
    close = getattr(args, "close_column", None) or (PRICE_DEFAULTS["close"] if PRICE_DEFAULTS["close"] in columns else price)
    volume = getattr(args, "volume_column", None) or (PRICE_DEFAULTS["volume"] if PRICE_DEFAULTS["volume"] in columns else None)
    shares = getattr(args, "shares_column", None)
    cap = getattr(args, "cap_column", None)
    cap_scale = getattr(args, "cap_scale", None)
    if cap is None and shares is None and "market_cap" not in columns:
        cap = PRICE_DEFAULTS["cap"] if PRICE_DEFAULTS["cap"] in columns else None
        if cap_scale is None and cap == PRICE_DEFAULTS["cap"]:
            cap_scale = 1e6  # the real data's estimated cap is in USD millions
    if cap_scale is not None and cap is None:
        raise InvalidParameterError("--cap-scale applies to a --cap-column")
    if cap_scale is not None and not (np.isfinite(cap_scale) and cap_scale > 0):
        raise InvalidParameterError(f"--cap-scale {cap_scale}: give a positive number (e.g. 1e6 for caps in millions)")
    for flag, column in (("--close-column", close), ("--volume-column", volume), ("--cap-column", cap),
                         ("--shares-column", shares)):
        if column is not None and column not in frame.columns:
            raise PanelError(f"{path}: no column {column!r} ({flag}); the columns are {columns}")
    panel = rm.panel_from_long(frame, date=date, stock=stock, static=static)
    try:
        panel = panel_from_prices(panel, price=price, close=close, volume=volume, cap=cap, shares=shares,
                                  cap_scale=1.0 if cap_scale is None else cap_scale)
    except PanelError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    panel.attrs["from_prices"] = 1
    return panel


def _header(path: Path) -> list[str]:
    """The CSV's column names (empty when unreadable: :func:`read_csv` then names the fault)."""
    try:
        return list(map(str, pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns))
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError):
        return []


def _descriptor_names(text: str) -> list[str]:
    """``--descriptors``: names, ``all`` or ``none``."""
    from riskmodel.data.descriptors import DESCRIPTORS

    if text.strip().lower() == "none":
        return []
    if text.strip().lower() == "all":
        return list(DESCRIPTORS)
    names = _split(text) or []
    unknown = [name for name in names if name not in DESCRIPTORS]
    if unknown:
        raise InvalidParameterError(f"--descriptors {unknown}: unknown; choose among {', '.join(DESCRIPTORS)}, all or none")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``panel`` sub-command's options."""
    p = sub.add_parser("panel", help="write a panel file from a long CSV (returns or prices) or the bundled S&P 500 data")
    p.add_argument(
        "source",
        help=f"a long CSV, one row per date and stock (.csv or .csv.gz) with a 'returns' column or prices, or "
        f"{US_EQUITIES!r}: the real S&P 500 daily data of --data (returns, caps, GICS sectors and industries; "
        "the dates are those of the file read)",
    )
    p.add_argument("-o", "--output", required=True, help="panel file (.nc or .zarr)")
    p.add_argument("--data", help=f"{US_EQUITIES}: the data file, or its folder holding one us_equities_*.csv.gz "
                   "(default $RISKMODEL_DATA or ../shared/data)")
    p.add_argument("--date-column", help="CSV: the date column (default: date)")
    p.add_argument("--stock-column", help="CSV: the stock-id column (default: stock, else ticker)")
    p.add_argument("--static", help="CSV: comma-separated columns constant per stock, e.g. industry,sector "
                   f"(default for prices: those of {', '.join(LABEL_COLUMNS)} present)")
    p.add_argument("--styles", help="CSV: comma-separated columns that are style characteristics")
    p.add_argument("--price-column", help="CSV of prices: the adjusted price whose change is the return "
                   "(default adj_close; used when the CSV has no 'returns' column)")
    p.add_argument("--close-column", help="CSV of prices: the price as traded, for dollar volume and shares x price "
                   "(default close, else the adjusted price)")
    p.add_argument("--volume-column", help="CSV of prices: shares traded (default volume)")
    p.add_argument("--cap-column", help="CSV of prices: market caps given (default mcap_est, in USD millions)")
    p.add_argument("--cap-scale", type=float, help="CSV of prices: multiplies --cap-column (default 1; 1e6 for mcap_est)")
    p.add_argument("--shares-column", help="CSV of prices: shares outstanding; market cap = shares x close")
    p.add_argument(
        "--descriptors",
        help="comma-separated style descriptors to compute from returns, caps and dollar volume "
        "(size, momentum, reversal, volatility, liquidity, beta), 'all' or 'none' "
        f"(default: all for {US_EQUITIES} and a CSV of prices, none for a CSV of returns); computed on the whole history",
    )
    p.add_argument("--short-history", action="store_true",
                   help="start the long-window descriptors early: momentum from 126 days of history, beta 63, "
                   "volatility 21; flagged in 'descriptor_low_confidence' until their full windows")
    p.add_argument("--start", help="first date to keep (inclusive)")
    p.add_argument("--end", help="last date to keep (inclusive)")
    p.add_argument(
        "--pool-into",
        metavar="PARENT",
        help="add 'industry_pooled': each date's thin industries pooled into their PARENT group (e.g. "
        "sector); fit it with --industry industry_pooled",
    )
    p.add_argument("--min-industry-size", type=int, default=5,
                   help="--pool-into: an industry with fewer members on a date is thin (default 5, the model's)")
    p.set_defaults(func=cmd_panel)
