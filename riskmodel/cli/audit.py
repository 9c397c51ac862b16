"""``riskmodel audit``: clusters of co-moving residuals of a fitted model
(:func:`riskmodel.audit.residuals.audit_residuals`), with the window, the number of
components, the purity below which a cluster's label is "mixed" and the labels' column
chosen on the command line.

Labels file rule (``--labels FILE``): the stock ids are the column named ``stock``,
``ticker`` or ``symbol`` (any case), else the first column. The labels are the column
named by ``--label-column``; without it, a column named ``label``, else the only text
column besides the ids. A file with several text columns and none chosen is an error
that lists them (a file such as the bundled ``tickers.csv`` has ``name``, ``sector``,
``industry``, ...: using the first would silently audit against company names).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.cli.readers import read_csv, read_input, same_file
from riskmodel.errors import DataQualityWarning, InvalidParameterError, PanelError

#: Names of the stock-id column of a labels file (any case); else the first column is.
ID_COLUMNS = ("stock", "ticker", "symbol")
#: The column used as labels when ``--label-column`` is not given and the file has it.
LABEL_COLUMN = "label"
#: Columns suggested first when the choice is ambiguous.
SUGGESTED = ("sector", "industry")
#: Fewest dates the audit needs (20 to discover, 20 to test).
MIN_WINDOW = 40
#: The API's defaults, repeated so that ``riskmodel --help`` does not import the audit
#: (tests/cli/test_audit.py checks they are :func:`~riskmodel.audit.residuals.audit_residuals`'s).
DEFAULT_WINDOW = 504
MIN_PURITY = 0.5
COMPONENTS = 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``audit`` subcommand and its flags."""
    p = sub.add_parser("audit", help="find clusters of co-moving residuals (missing factors)")
    p.add_argument("model", help="fitted model file")
    p.add_argument("--labels", help="CSV of labels (e.g. sectors) for purity: a stock (or ticker) column and label columns")
    p.add_argument("--label-column", metavar="COL",
                   help="--labels: the column holding the labels (needed when the file has several text columns)")
    p.add_argument("--labels-from", help="use a variable as labels ('industry' or a --panel variable)")
    p.add_argument("--panel", help="panel file holding the --labels-from variable")
    p.add_argument("--window", type=int, metavar="N",
                   help=f"audit the last N trading days (default {DEFAULT_WINDOW}; with --start/--end: all between them)")
    p.add_argument("--start", metavar="DATE", help="first date audited (YYYY-MM-DD)")
    p.add_argument("--end", metavar="DATE", help="last date audited (YYYY-MM-DD; default the model's last)")
    p.add_argument("--components", type=int, metavar="K", default=COMPONENTS,
                   help=f"leading eigenvalues computed and tested (default {COMPONENTS}); raise it when all K are "
                   "significant")
    p.add_argument("--min-purity", type=float, metavar="P", default=MIN_PURITY,
                   help=f"a cluster is named after its most common label only when at least this share of its members "
                   f"carry it, else 'mixed' (default {MIN_PURITY}; 0 always names it)")
    p.add_argument("--report", help="write a self-contained HTML report here")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_audit)


def _check_options(args: argparse.Namespace) -> None:
    """Each flag's range, named by the flag (before any file is read)."""
    if args.labels and args.labels_from:
        raise InvalidParameterError("--labels and --labels-from both give labels; choose one")
    if args.label_column is not None and not args.labels:
        raise InvalidParameterError(f"--label-column {args.label_column}: applies to a --labels file; give --labels FILE")
    if args.window is not None and args.window < MIN_WINDOW:
        raise InvalidParameterError(f"--window {args.window}: the audit needs at least {MIN_WINDOW} dates "
                                    "(20 to discover clusters, 20 to test them)")
    if args.components < 1:
        raise InvalidParameterError(f"--components {args.components}: give at least 1")
    if not 0.0 <= args.min_purity <= 1.0:
        raise InvalidParameterError(f"--min-purity {args.min_purity:g}: give a share between 0 and 1")
    dates = {}
    for flag, text in (("--start", args.start), ("--end", args.end)):
        if text is not None:
            try:
                dates[flag] = pd.Timestamp(text)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"{flag} {text!r}: not a date (write YYYY-MM-DD)") from None
            if dates[flag] is pd.NaT:
                raise InvalidParameterError(f"{flag} {text!r}: not a date (write YYYY-MM-DD)")
    if len(dates) == 2 and dates["--start"] > dates["--end"]:
        raise InvalidParameterError(f"--start {args.start} is after --end {args.end}")


def cmd_audit(args: argparse.Namespace) -> None:
    import riskmodel as rm

    _check_options(args)
    if args.report:
        _check_report_target(args.report, args.model)
    fit = read_input(args.model, "fitted model")
    labels = _audit_labels(fit, args)
    _check_dates(fit, args)
    try:
        audit = rm.audit_residuals(fit, labels=labels, seed=args.seed, window=args.window, start=args.start,
                                   end=args.end, max_components=args.components, min_purity=args.min_purity)
    except PanelError as exc:
        if args.labels and "labels" in str(exc) and args.labels not in str(exc):
            raise type(exc)(f"{args.labels}: {exc}") from None
        raise
    if args.labels:  # which column was used, always said
        print(f"labels: column {labels.name!r} of {args.labels}")
    print(audit.summary())
    if args.report:
        audit.to_html(args.report)
        print(f"wrote {args.report}")


def _check_dates(fit, args: argparse.Namespace) -> None:
    """``--start`` / ``--end`` that keep fewer than 40 of the model's dates: one line with its span."""
    if args.start is None and args.end is None:
        return
    from riskmodel.audit.residuals import date_position

    dates = pd.DatetimeIndex(np.asarray(fit.dates))
    lo = 0 if args.start is None else date_position(dates, args.start, "left")
    hi = dates.size if args.end is None else date_position(dates, args.end, "right")
    if hi - lo < MIN_WINDOW:
        span = f"{dates[0].date()} .. {dates[-1].date()}" if dates.size else "no dates"
        raise InvalidParameterError(
            f"--start {args.start or '-'} / --end {args.end or '-'}: keep {max(hi - lo, 0)} of the model's dates "
            f"({span}); the audit needs at least {MIN_WINDOW}")


def _check_report_target(report: str, model: str) -> None:
    """The HTML report may replace an earlier report, never the model or another file."""
    target = Path(report)
    if same_file(target, model):
        raise PanelError(f"--report {report}: that is the model file; write the report to an .html path")
    if target.is_dir():
        raise PanelError(f"--report {report}: an existing folder; give a file path ending in .html")
    if target.exists() and target.suffix.lower() not in (".html", ".htm"):
        raise PanelError(f"--report {report}: an existing file that is not an HTML report; refusing to replace it")


def _audit_labels(fit, args: argparse.Namespace):
    import xarray as xr

    if args.labels:
        labels = read_label_file(args.labels, args.label_column)
        known = np.isin(labels["stock"].values, np.asarray(fit.stocks).astype(str))
        if not known.any():
            raise PanelError(f"{args.labels}: none of its stocks ({', '.join(map(str, labels['stock'].values[:3]))}, ...) "
                             "is in the model")
        return labels
    if args.labels_from:
        if args.labels_from == "industry" and getattr(fit, "industry_labels", ()):
            codes = fit.dataset["industry_code"].isel(date=-1).to_numpy()
            names = np.asarray(fit.industry_labels, dtype=object)[np.clip(codes, 0, None)]
            names = np.where(codes >= 0, names, "unknown").astype(str)
            return xr.DataArray(names, coords={"stock": fit.stocks}, dims="stock", name="industry")
        if args.panel is None:
            raise PanelError(f"--labels-from {args.labels_from}: give --panel PANEL holding that variable")
        panel = read_input(args.panel, "panel")
        if args.labels_from not in panel:
            raise PanelError(f"--labels-from: the panel has no variable {args.labels_from!r}")
        var = panel[args.labels_from]
        return var.isel(date=-1) if "date" in var.dims else var
    return None


def _id_column(frame: pd.DataFrame) -> str:
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    for name in ID_COLUMNS:
        if name in by_lower:
            return by_lower[name]
    return frame.columns[0]


def _text_columns(frame: pd.DataFrame, exclude: str) -> list[str]:
    """Columns that hold text (not numbers, not dates), the ids excluded."""
    out = []
    for column in frame.columns:
        if column == exclude:
            continue
        values = frame[column].dropna()
        if not values.size or not pd.to_numeric(values, errors="coerce").isna().any():
            continue
        if not pd.to_datetime(values, format="ISO8601", errors="coerce").isna().any():
            continue  # dates
        out.append(column)
    return out


def label_column(frame: pd.DataFrame, path: str, chosen: str | None) -> tuple[str, str]:
    """The ``(id column, label column)`` of a labels file by the module's rule.

    Raises
    ------
    PanelError
        The chosen column is not in the file, is the id column, or no column is chosen and
        several text columns could be the labels (the message lists them).
    """
    ids = _id_column(frame)
    columns = [str(c) for c in frame.columns]
    if chosen is not None:
        if chosen not in frame.columns:
            raise PanelError(f"{path}: no column {chosen!r} (--label-column); the file has {', '.join(columns)}")
        if chosen == ids:
            raise PanelError(f"{path}: --label-column {chosen} is the stock-id column; choose a column of labels")
        return ids, chosen
    if frame.shape[1] < 2:
        raise PanelError(f"{path}: labels need two columns: stock, label")
    if frame.shape[1] == 2:
        return ids, next(c for c in frame.columns if c != ids)
    if LABEL_COLUMN in frame.columns and LABEL_COLUMN != ids:
        return ids, LABEL_COLUMN
    text = _text_columns(frame, ids)
    if len(text) == 1:
        return ids, text[0]
    shown = ", ".join(map(str, text[:8])) + (", ..." if len(text) > 8 else "")
    example = next((c for c in SUGGESTED if c in text), (text or columns[1:])[0])
    raise PanelError(f"{path}: {len(text) if text else 'no'} columns could be the labels ({shown or 'none is text'}); "
                     f"choose one with --label-column (e.g. --label-column {example})")


def read_label_file(path: str, column: str | None = None):
    """Labels from a CSV: a DataArray (stock) of text named after the label column.

    The stock ids and the label column follow the module's rule (``column`` chooses the
    labels). An empty label is ``"unlabelled"`` (with a warning counting them).
    """
    import xarray as xr

    frame = read_csv(path, "labels file", dtype=str, keep_default_na=False, na_values=[""])
    ids, chosen = label_column(frame, path, column)
    stocks = frame[ids]
    empty = stocks.isna() | (stocks.astype(str).str.strip() == "")
    if empty.any():
        raise PanelError(f"{path}: row {int(np.flatnonzero(empty.to_numpy())[0]) + 2} has an empty stock id")
    stocks = stocks.astype(str).str.strip()
    if stocks.duplicated().any():
        raise PanelError(f"{path}: stock {stocks[stocks.duplicated()].iloc[0]!r} appears twice")
    labels = frame[chosen]
    missing = labels.isna() | (labels.astype(str).str.strip() == "")
    if missing.any():
        warnings.warn(f"{path}: {int(missing.sum())} stock(s) without a {chosen!r} label, e.g. "
                      f"{stocks[missing].iloc[0]!r}; they count as unlabelled", DataQualityWarning, stacklevel=2)
    values = np.where(missing.to_numpy(), "unlabelled", labels.astype(str).str.strip().to_numpy())
    return xr.DataArray(values, coords={"stock": stocks.to_numpy()}, dims="stock", name=str(chosen))
