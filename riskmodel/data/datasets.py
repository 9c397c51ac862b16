"""Real daily US equity data for tests and examples (``../shared/data``).

The files are not shipped with the library (the prices are Alpha Vantage's, the factors
Ken French's; see the data folder's README). They are looked up, in this order, at the
``path`` argument, at the folder (or file) named by the environment variable
``RISKMODEL_DATA``, and at ``<repo>/../shared/data``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.errors import (
    AlignmentError,
    DuplicateLabelError,
    ModelFileError,
    SingularDateWarning,
)
from riskmodel.data.panel import date_window, validate_panel

__all__ = ["load_us_equities", "load_ff_factors", "load_wti", "data_dir", "describe_span", "PANEL_FILE", "FF_FILE", "WTI_FILE"]

PANEL_FILE = "us_equities_20070103_20161230.csv.gz"
FF_FILE = "ff_factors_daily_20070103_20161230.csv.gz"
WTI_FILE = "wti_daily_20070103_20161230.csv.gz"
ENV_VAR = "RISKMODEL_DATA"

#: rolling window (trading days) and minimum count of the dollar-volume median behind the
#: market-cap proxy
PROXY_WINDOW = 60
PROXY_MIN_OBS = 20


def data_dir() -> Path:
    """The default data folder: ``$RISKMODEL_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        return p if p.is_dir() or not p.suffix else p.parent
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _resolve(path: str | os.PathLike | None, filename: str) -> Path:
    if path is None:
        env = os.environ.get(ENV_VAR)
        path = env if env else data_dir()
        source = f"${ENV_VAR}" if env else "the default data folder"
    else:
        source = "the path argument"
    p = Path(path)
    if p.is_dir() or (not p.exists() and not p.suffix):
        p = _file_in_folder(p, filename)
    if not p.is_file():
        raise ModelFileError(
            f"data file not found: {str(p)!r} (from {source}). Pass path=<folder or file>, or set "
            f"{ENV_VAR} to the folder holding {filename!r}"
        )
    return p


def _file_in_folder(folder: Path, filename: str) -> Path:
    """``folder/filename``, else the one file of the folder named like it whatever its years
    (``us_equities_20170103_20211231.csv.gz`` for ``us_equities_20070103_20161230.csv.gz``).

    Raises
    ------
    ModelFileError
        Several such files (named): the folder does not say which to read.
    """
    exact = folder / filename
    if exact.is_file() or not folder.is_dir():
        return exact
    stem = filename.split("_2")[0]  # "us_equities", "ff_factors_daily", "wti_daily"
    found = sorted(p for p in folder.glob(f"{stem}_*.csv*") if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if len(found) > 1:
        raise ModelFileError(f"{str(folder)!r} holds {len(found)} files named {stem}_*: "
                             f"{', '.join(p.name for p in found)}; pass the file itself")
    return found[0] if found else exact


def describe_span(panel: xr.Dataset) -> xr.Dataset:
    """The panel with ``attrs["first_date"]``, ``attrs["last_date"]`` and ``attrs["n_dates"]``
    of its dates, and a loader's ``title`` ending in the span it actually covers."""
    if panel.sizes.get("date", 0) == 0:
        return panel
    first, last = (str(pd.Timestamp(panel["date"].values[i]).date()) for i in (0, -1))
    attrs = dict(panel.attrs)
    attrs.update(first_date=first, last_date=last, n_dates=int(panel.sizes["date"]))
    title = attrs.get("title")
    if isinstance(title, str) and title.startswith(_TITLE):
        attrs["title"] = f"{_TITLE} {first} .. {last}"
    return panel.assign_attrs(attrs)


_TITLE = "S&P 500 (April 2021 members) daily panel"


def _stock_codes(tickers: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique tickers (numpy str) and each row's code (``tickers`` categorical)."""
    cat = tickers.cat.remove_unused_categories()
    cats = np.asarray(cat.cat.categories.astype(str), dtype=str)
    order = np.argsort(cats, kind="stable")
    rank = np.empty(cats.size, dtype=np.int64)
    rank[order] = np.arange(cats.size)
    return cats[order], rank[cat.cat.codes.to_numpy()]


def _place(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.full(shape, np.nan)
    out[rows, cols] = values
    return out


def _simple_returns(price: np.ndarray) -> np.ndarray:
    """Day-on-day change on the full grid; NaN when either day has no price."""
    r = np.full(price.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[1:] = price[1:] / price[:-1] - 1.0
    return r


def _cap_proxy(cap: np.ndarray, dollar_volume: np.ndarray, traded: np.ndarray) -> np.ndarray:
    """Cap proxy for every cell: rolling 60-day median dollar volume × the day's median cap/DV ratio.

    The ratio is the cross-sectional median over stocks that have an estimated cap and a
    positive median dollar volume that day; all of it uses data up to and including t.
    """
    med = pd.DataFrame(dollar_volume).rolling(PROXY_WINDOW, min_periods=PROXY_MIN_OBS).median().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where((med > 0) & np.isfinite(cap), cap / med, np.nan)
    has_ratio = np.isfinite(ratio).any(axis=1)
    k = np.full(cap.shape[0], np.nan)
    k[has_ratio] = np.nanmedian(ratio[has_ratio], axis=1)
    proxy = med * k[:, None]
    proxy[~traded] = np.nan
    return proxy


def load_us_equities(
    path: str | os.PathLike | None = None,
    *,
    start: str | np.datetime64 | pd.Timestamp | None = None,
    end: str | np.datetime64 | pd.Timestamp | None = None,
    tickers: list[str] | None = None,
) -> xr.Dataset:
    """Load the real S&P 500 (2021 members) daily panel (the shipped file: 2007-01-03 .. 2016-12-30).

    Parameters
    ----------
    path : str or path-like, optional
        The ``us_equities_*.csv.gz`` file or its folder (which holds
        ``us_equities_20070103_20161230.csv.gz`` or one other ``us_equities_*.csv[.gz]``
        of the same schema, whatever its years). Default: ``$RISKMODEL_DATA`` or
        ``<repo>/../shared/data``. ``attrs["title"]``, ``first_date`` and ``last_date``
        give the dates actually read.
    start, end : date-like, optional
        Keep dates in ``[start, end]`` (inclusive). Returns are computed on the full
        file first, so the first kept day has its return from the day before.
    tickers : list of str, optional
        Keep these stocks only (unknown tickers raise).

    Returns
    -------
    xr.Dataset (date, stock)
        ``returns`` (date, stock)
            Simple total return: day-on-day change of ``adj_close`` on the full date grid
            (every date on which any stock has a price). NaN where the stock has no
            price that day *or the day before*: the first return after a gap (halts,
            the 8 internal one-day gaps) and the first day of a listing are excluded,
            never spanning the gap (METHODS §1). The file's first date therefore has no
            return at all (its SingularDateWarning is silenced here).
        ``market_cap`` (date, stock)
            USD: ``mcap_est × 1e6`` (an estimate from a 2018 share count carried through
            splits). For the 61 tickers without an estimate, a proxy: the 60-day rolling
            median (≥ 20 obs) of ``close × volume`` times that day's cross-sectional
            median of ``cap / median dollar volume`` over stocks with an estimate.
        ``market_cap_is_proxy`` (stock) bool
            True for the stocks whose cap is the proxy.
        ``dollar_volume`` (date, stock)
            ``close × volume`` (USD traded that day; both as traded).
        ``sector``, ``industry``, ``sub_industry`` (stock) str
            GICS levels 1, 3 and 4, one 2023 snapshot applied to all dates.

        ``attrs`` carry the provenance (source file, upstream repositories, caveats).

    Raises
    ------
    ModelFileError
        The file is absent (the path tried is named) or unreadable.
    AlignmentError
        ``tickers`` holds ids not in the file (named).
    InvalidParameterError
        ``start`` after ``end``, or no date left.

    Notes
    -----
    Known data errors are kept as-is (GNRC 2010-02-12 −68 %, TRMB 2007-02-23 +100 %,
    MSI 2011-01-04 −38 %): the library's winsorising and return clipping must cope.
    Vectorised: one ``read_csv`` and integer-coded placement (about 2–3 s).

    Examples
    --------
    >>> panel = load_us_equities(start="2016-01-01", tickers=["AAPL", "XOM"])  # doctest: +SKIP
    >>> panel["returns"].dims  # doctest: +SKIP
    ('date', 'stock')
    """
    file = _resolve(path, PANEL_FILE)
    df, dates_raw = _read_panel_csv(file)
    if tickers is not None:
        df, dates_raw = _keep_tickers(df, dates_raw, tickers, file)
    dates, date_codes, stocks, stock_codes = _grid(df, dates_raw, file)
    ds = xr.Dataset(
        {
            **_price_variables(df, date_codes, stock_codes, (dates.size, stocks.size)),
            **{col: (("stock",), labels) for col, labels in _stock_labels(df, stock_codes, stocks.size).items()},
        },
        coords={"date": dates, "stock": stocks},
    )
    ds = _select_dates(ds, start, end)
    _describe(ds, file)
    ds = describe_span(ds)
    with warnings.catch_warnings():
        # the first date of the file has no return by construction (no previous price)
        warnings.simplefilter("ignore", SingularDateWarning)
        return validate_panel(ds, styles=(), require=("returns", "market_cap"))


#: The GICS label columns of the panel file, kept as (stock) variables.
_LABEL_COLUMNS = ("sector", "industry", "sub_industry")


def _read_panel_csv(file: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The panel file's rows (tickers and labels categorical) and their dates."""
    label_cols = list(_LABEL_COLUMNS)
    try:
        df = pd.read_csv(
            file,
            usecols=["date", "ticker", "close", "adj_close", "volume", "mcap_est", *label_cols],
            dtype={"ticker": "category", **{c: "category" for c in label_cols}, "volume": "float64"},
        )
        dates_raw = pd.to_datetime(df["date"], format="%Y-%m-%d").to_numpy(dtype="datetime64[ns]")
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise ModelFileError(f"cannot read {str(file)!r}: {type(exc).__name__}: {exc}") from exc
    return df, dates_raw


def _keep_tickers(
    df: pd.DataFrame, dates_raw: np.ndarray, tickers: list[str], file: Path
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``tickers`` only; an unknown ticker is an :class:`AlignmentError`."""
    wanted = np.asarray([str(t) for t in tickers])
    known = np.asarray(df["ticker"].cat.categories.astype(str), dtype=str)
    unknown = np.setdiff1d(wanted, known)
    if unknown.size:
        raise AlignmentError(
            f"ticker(s) not in {file.name}: {', '.join(unknown.tolist())}; "
            f"{known.size} tickers are available (e.g. {', '.join(known[:5].tolist())})"
        )
    keep = df["ticker"].isin(wanted).to_numpy()
    return df.loc[keep].reset_index(drop=True), dates_raw[keep]


def _grid(df: pd.DataFrame, dates_raw: np.ndarray, file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(dates, date code of each row, stocks, stock code of each row)``; a (date, ticker)
    pair given twice is a :class:`DuplicateLabelError`."""
    dates, date_codes = np.unique(dates_raw, return_inverse=True)
    stocks, stock_codes = _stock_codes(df["ticker"])
    key = date_codes.astype(np.int64) * stocks.size + stock_codes
    counts = np.bincount(key, minlength=dates.size * stocks.size)
    if (counts > 1).any():
        k = int(np.flatnonzero(counts > 1)[0])
        raise DuplicateLabelError(
            f"{file.name} has {int((counts > 1).sum())} duplicated (date, ticker) rows, e.g. "
            f"({pd.Timestamp(dates[k // stocks.size]).date()}, {stocks[k % stocks.size]})"
        )
    return dates, date_codes, stocks, stock_codes


def _price_variables(
    df: pd.DataFrame, date_codes: np.ndarray, stock_codes: np.ndarray, shape: tuple[int, int]
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Returns, market cap (with the proxy where the file has no estimate), dollar volume."""
    adj = _place(df["adj_close"].to_numpy(float), date_codes, stock_codes, shape)
    close = _place(df["close"].to_numpy(float), date_codes, stock_codes, shape)
    volume = _place(df["volume"].to_numpy(float), date_codes, stock_codes, shape)
    cap = _place(df["mcap_est"].to_numpy(float) * 1e6, date_codes, stock_codes, shape)
    traded = np.isfinite(close)

    returns = _simple_returns(adj)
    dollar_volume = close * volume
    is_proxy = ~np.isfinite(cap).any(axis=0)
    if is_proxy.any():
        proxy = _cap_proxy(cap, dollar_volume, traded)
        cap[:, is_proxy] = proxy[:, is_proxy]
    return {
        "returns": (("date", "stock"), returns),
        "market_cap": (("date", "stock"), cap),
        "dollar_volume": (("date", "stock"), dollar_volume),
        "market_cap_is_proxy": (("stock",), is_proxy),
    }


def _stock_labels(df: pd.DataFrame, stock_codes: np.ndarray, n_stocks: int) -> dict[str, np.ndarray]:
    """Each label column as one str per stock (its first row; ``""`` when missing)."""
    first_row = pd.DataFrame({"s": stock_codes}).drop_duplicates("s").index.to_numpy()
    labels = {}
    for col in _LABEL_COLUMNS:
        out = np.full(n_stocks, "", dtype=object)
        out[stock_codes[first_row]] = df[col].iloc[first_row].astype(object).to_numpy()
        labels[col] = np.where(pd.isna(out), "", out).astype(str)
    return labels


def _describe(ds: xr.Dataset, file: Path) -> None:
    """Units and definitions of the variables, provenance of the panel (in place)."""
    ds["returns"].attrs = {"units": "decimal", "definition": "adj_close_t / adj_close_{t-1} - 1 on the full date grid; NaN after a missing day"}
    ds["market_cap"].attrs = {
        "units": "USD",
        "definition": (
            f"mcap_est * 1e6; proxy where market_cap_is_proxy: {PROXY_WINDOW}-day rolling median "
            f"(>= {PROXY_MIN_OBS} obs) of close*volume times the day's cross-sectional median "
            "ratio of estimated cap to that median"
        ),
    }
    ds["dollar_volume"].attrs = {"units": "USD", "definition": "close * volume (as traded)"}
    ds.attrs = {
        "title": _TITLE,
        "source_file": str(file),
        "prices": "github.com/Pooksoft/PooksoftSP500EquityPriceDataSet @19a3f02 (Alpha Vantage TIME_SERIES_DAILY_ADJUSTED)",
        "classification": "github.com/datasets/s-and-p-500-companies (PDDL-1.0) + github.com/bluealba/gics (ISC); one 2023 snapshot for all dates",
        "market_cap_source": "shares from github.com/datasets/s-and-p-500-companies-financials (2018-02-08 snapshot) carried through splits",
        "n_market_cap_proxy": int(ds["market_cap_is_proxy"].sum()),
        "caveats": "survivorship (2021 members carried back); known adj_close errors kept: GNRC 2010-02-12, TRMB 2007-02-23, MSI 2011-01-04",
        "readme": "see the README.md next to the source file",
    }


def _select_dates(ds: xr.Dataset, start, end) -> xr.Dataset:
    if start is None and end is None:
        return ds
    out = date_window(ds, start, end)
    # stocks with no price at all in the window (listed later) are dropped
    has_data = np.isfinite(out["dollar_volume"].values).any(axis=0) | np.isfinite(out["returns"].values).any(axis=0)
    return out.isel(stock=np.flatnonzero(has_data))


def _read_dated_csv(file: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(file)
        df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d")
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise ModelFileError(f"cannot read {str(file)!r}: {type(exc).__name__}: {exc}") from exc
    index = pd.DatetimeIndex(df.pop("date"), name="date").as_unit("ns")
    df.index = index
    return df


def load_ff_factors(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Daily Fama–French 5 factors (2x3), momentum and the risk-free rate, 2007–2016.

    Parameters
    ----------
    path : str or path-like, optional
        The ``ff_factors_daily_*.csv.gz`` file or its folder (default as
        :func:`load_us_equities`).

    Returns
    -------
    pandas.DataFrame (date × factor)
        Columns ``mkt_rf, smb, hml, rmw, cma, rf, mom`` in **decimal** returns
        (0.01 = 1 %), DatetimeIndex ``date`` (datetime64[ns]), 2,518 rows.

    Raises
    ------
    ModelFileError
        The file is absent (path named) or unreadable.
    """
    return _read_dated_csv(_resolve(path, FF_FILE)).astype(float)


def load_wti(path: str | os.PathLike | None = None) -> pd.Series:
    """WTI crude spot price (FRED DCOILWTICO), USD per barrel, 2007–2016.

    Parameters
    ----------
    path : str or path-like, optional
        The ``wti_daily_*.csv.gz`` file or its folder (default as :func:`load_us_equities`).

    Returns
    -------
    pandas.Series (date,)
        Named ``"wti"``, DatetimeIndex ``date``; NaN on US holidays (no fixing).

    Raises
    ------
    ModelFileError
        The file is absent (path named) or unreadable.
    """
    df = _read_dated_csv(_resolve(path, WTI_FILE))
    return df["wti"].astype(float).rename("wti")
