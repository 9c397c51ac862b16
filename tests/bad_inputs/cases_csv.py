"""Catalogue cases: every CSV reader of the command line, fed malformed text.

Readers: the long panel CSV (``riskmodel panel``), the weights CSV (``risk --weights``),
the factor-returns CSV (``fit --kind time-series --factors`` and ``alpha --against``) and
the labels CSV (``audit --labels``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from _bad_inputs_harness import Case, factor_frame, panel_argv, weights_frame, write_long_csv, write_text

OUT = ("out.nc",)
STYLE_FLAGS = ("--styles", "size,value,momentum")


# ---------------------------------------------------------------------------------------
# the long panel CSV
# ---------------------------------------------------------------------------------------
def _panel_case(case_id, edit, expect, names=(), extra=(), check=None, name="panel.csv", **csv):
    """A ``riskmodel panel`` case on the session's long frame after ``edit(frame)``."""

    def setup(tmp, env):
        frame = edit(env.long.copy(), env)
        return panel_argv(write_long_csv(tmp, frame, name, **csv), tmp, *STYLE_FLAGS, *extra)

    return Case(case_id, setup, expect, tuple(names), outputs=OUT, check=check)


def _raw_panel_case(case_id, text, expect, names=(), extra=()):
    def setup(tmp, env):
        return panel_argv(write_text(tmp, "panel.csv", text), tmp, *extra)

    return Case(case_id, setup, expect, tuple(names), outputs=OUT)


def _set(column, row, value):
    def edit(frame, env):
        frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame.loc[row, column] = value
        return frame

    return edit


def _percent_low_vol(frame, env):
    """Returns in percent, scaled into (-1, 1): no value <= -1 gives the scale away."""
    r = frame["returns"]
    frame["returns"] = r / np.nanmax(np.abs(r)) * 0.95
    return frame


def _dates_mixed_formats(frame, env):
    d = pd.to_datetime(frame["date"])
    day_first = d.dt.strftime("%d/%m/%Y")
    month_first = d.dt.strftime("%m/%d/%Y")
    frame["date"] = np.where(np.arange(len(frame)) % 2 == 0, day_first, month_first)
    return frame


def _add_future_row(frame, env):
    row = frame.iloc[[0]].copy()
    row["date"] = "2099-12-31"
    return pd.concat([frame, row], ignore_index=True)


def _zero_cap(frame, env):
    frame.loc[frame["stock"] == env.stocks[7], "market_cap"] = 0.0
    return frame


def _padded_ids(frame, env):
    frame["stock"] = frame["stock"].str.replace("S", "", regex=False)  # S0000 -> 0000
    return frame


def _check_padded_ids(tmp, env, result):
    import riskmodel as rm

    stocks = [str(s) for s in rm.load(tmp / "out.nc")["stock"].values]
    assert stocks[:3] == ["0000", "0001", "0002"], stocks[:3]


def _check_sorted(tmp, env, result):
    import riskmodel as rm

    dates = rm.load(tmp / "out.nc")["date"].values
    assert (np.diff(dates.astype("i8")) > 0).all() and dates.size == env.panel.sizes["date"]


def _check_same_panel(tmp, env, result):
    import riskmodel as rm

    out = rm.load(tmp / "out.nc")
    assert out.sizes["stock"] == env.panel.sizes["stock"] and out.sizes["date"] == env.panel.sizes["date"]


ROW = 130  # a row of the long frame with a return (not the first date)
_S, _D = "S0010", "2015-01-06"  # stock and date of ROW: 60 stocks per date, row 130 = date 2, stock 10


PANEL_CSV = [
    _raw_panel_case("panel-csv-empty-file", "", "error", ["panel.csv", "empty"]),
    _raw_panel_case("panel-csv-header-only", "date,stock,returns,market_cap,industry\n", "error", ["panel.csv", "rows"]),
    _raw_panel_case("panel-csv-only-blank-lines", "\n\n\n", "error", ["panel.csv", "empty"]),
    _panel_case("panel-csv-missing-date-column", lambda f, e: f.drop(columns="date"), "error", ["'date'", "--date-column"]),
    _panel_case("panel-csv-missing-stock-column", lambda f, e: f.drop(columns="stock"), "error", ["'stock'", "--stock-column"]),
    _panel_case("panel-csv-missing-returns-column", lambda f, e: f.drop(columns="returns"), "error", ["'returns'"]),
    _panel_case("panel-csv-abc-among-returns", _set("returns", ROW, "abc"), "error", ["'abc'", "returns", _S, _D]),
    _panel_case("panel-csv-abc-among-styles", _set("value", ROW, "abc"), "error", ["'abc'", "value", _S, _D]),
    _panel_case("panel-csv-inf-return", _set("returns", ROW, np.inf), "error", ["returns", _S, _D]),
    _panel_case("panel-csv-1e308-return", _set("returns", ROW, 1e308), "error", ["returns", _S, _D]),
    _panel_case("panel-csv-return-of-5", _set("returns", ROW, 5.0), "warning", ["returns", _S, _D]),
    _panel_case("panel-csv-return-minus-1", _set("returns", ROW, -1.0), "error", ["returns", _S, _D]),
    _panel_case("panel-csv-percent-returns-low-vol", _percent_low_vol, "error", ["returns", "percent"]),
    _panel_case("panel-csv-negative-market-cap", _set("market_cap", ROW, -5.0), "error", ["market_cap", _S, _D]),
    _panel_case("panel-csv-zero-market-cap", _zero_cap, "warning", ["market_cap", "S0007"]),
    _panel_case("panel-csv-nan-only-style", lambda f, e: f.assign(value=np.nan), "warning", ["value"]),
    _panel_case("panel-csv-duplicate-rows", lambda f, e: pd.concat([f, f.iloc[[ROW]]]), "error", [_S, _D]),
    _panel_case("panel-csv-empty-stock-id", _set("stock", ROW, np.nan), "error", ["stock", str(ROW)]),
    _panel_case("panel-csv-not-a-date", _set("date", ROW, "notadate"), "error", ["date", "notadate"]),
    _panel_case("panel-csv-impossible-date", _set("date", ROW, "2015-02-30"), "error", ["date", "2015-02-30"]),
    _panel_case("panel-csv-missing-date-cell", _set("date", ROW, np.nan), "error", ["date", str(ROW)]),
    _panel_case("panel-csv-dd-mm-mixed-with-mm-dd", _dates_mixed_formats, "error", ["date"]),
    _panel_case("panel-csv-row-dated-2099", _add_future_row, "error", ["2099-12-31"]),
    _panel_case("panel-csv-unsorted-dates", lambda f, e: f.sample(frac=1.0, random_state=0), "ok", check=_check_sorted),
    _panel_case("panel-csv-ids-kept-as-text", _padded_ids, "ok", check=_check_padded_ids),
    _panel_case("panel-csv-utf8-bom", lambda f, e: f, "ok", check=_check_same_panel, encoding="utf-8-sig"),
    _panel_case("panel-csv-gzip", lambda f, e: f, "ok", check=_check_same_panel, name="panel.csv.gz"),
    _panel_case("panel-csv-semicolon-separator", lambda f, e: f, "error", ["panel.csv", "';'"], sep=";"),
    _panel_case("panel-csv-latin1-industry", lambda f, e: f.assign(industry="Café"), "error", ["panel.csv", "UTF-8"],
                encoding="latin-1"),
    _panel_case("panel-csv-static-varies", lambda f, e: f.assign(industry=np.arange(len(f)).astype(str)), "error",
                ["industry", "S0000"]),
    _panel_case("panel-csv-styles-not-a-column", lambda f, e: f.drop(columns="momentum"), "error", ["momentum"]),
    _panel_case("panel-csv-momentum-descriptor-short-history", lambda f, e: f, "warning", ["momentum"],
                extra=("--descriptors", "momentum")),
    _panel_case("panel-csv-start-after-end", lambda f, e: f, "error", ["--start", "--end"],
                extra=("--start", "2015-05-01", "--end", "2015-02-01")),
    _panel_case("panel-csv-start-not-a-date", lambda f, e: f, "error", ["--start", "soon"], extra=("--start", "soon")),
    _panel_case("panel-csv-window-without-dates", lambda f, e: f, "error", ["--start", "2020-01-01"],
                extra=("--start", "2020-01-01")),
    _panel_case("panel-csv-pool-into-unknown", lambda f, e: f, "error", ["sector"], extra=("--pool-into", "sector")),
    _panel_case("panel-csv-descriptors-unknown", lambda f, e: f, "error", ["--descriptors", "karma"],
                extra=("--descriptors", "karma")),
    _panel_case("panel-csv-data-option-for-csv", lambda f, e: f, "error", ["--data"], extra=("--data", "x")),
    _panel_case("panel-csv-industry-in-a-number-column", _set("market_cap", ROW, "IND01"), "error",
                ["market_cap", "'IND01'", _S, _D]),
    _raw_panel_case("panel-csv-ragged-rows", "date,stock,returns\n2015-01-02,A,0.01\n2015-01-02,B,0.01,7,8\n", "error",
                    ["panel.csv", "line 3"]),
]


# ---------------------------------------------------------------------------------------
# the weights CSV (risk --weights)
# ---------------------------------------------------------------------------------------
def _weights_case(case_id, edit, expect, names=(), text=None, extra=(), **csv):
    def setup(tmp, env):
        model = env.copy("model.nc", tmp)
        if text is not None:
            book = write_text(tmp, "book.csv", text)
        else:
            frame = weights_frame(env).rename(columns={"a": "port1", "b": "port2"})
            book = write_long_csv(tmp, edit(frame, env), "book.csv", **csv)
        return ["risk", model, "--weights", book, *extra]

    return Case(case_id, setup, expect, tuple(names))


def _wset(column, row, value):
    def edit(frame, env):
        if isinstance(value, str) or value is None:
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


WEIGHTS_CSV = [
    _weights_case("weights-empty-file", None, "error", ["book.csv", "empty"], text=""),
    _weights_case("weights-header-only", None, "error", ["book.csv", "rows"], text="stock,port1\n"),
    _weights_case("weights-missing-stock-column", lambda f, e: f.drop(columns="stock"), "error", ["book.csv", "'stock'"]),
    _weights_case("weights-only-stock-column", lambda f, e: f[["stock"]], "error", ["book.csv"]),
    _weights_case("weights-abc", _wset("port1", 3, "abc"), "error", ["'abc'", "S0003", "port1"]),
    _weights_case("weights-inf", _wset("port1", 3, np.inf), "error", ["S0003", "port1"]),
    _weights_case("weights-nan-only-column", lambda f, e: f.assign(port2=np.nan), "error", ["port2"]),
    _weights_case("weights-duplicate-stock", lambda f, e: pd.concat([f, f.iloc[[3]]]), "error", ["S0003", "twice"]),
    _weights_case("weights-empty-stock-cell", _wset("stock", 3, None), "error", ["book.csv", "empty"]),
    _weights_case("weights-unknown-stock", _wset("stock", 3, "ZZZZ"), "error", ["ZZZZ"]),
    _weights_case("weights-utf8-bom", lambda f, e: f, "ok", encoding="utf-8-sig"),
    _weights_case("weights-semicolon-separator", lambda f, e: f, "error", ["book.csv", "';'"], sep=";"),
    _weights_case("weights-sum-to-100", lambda f, e: f.assign(port1=f["port1"] * 100, port2=f["port2"]), "warning",
                  ["port1", "100"]),
    _weights_case("weights-1e12", lambda f, e: f.assign(port1=1e12), "warning", ["port1", "weights"]),
    _weights_case("weights-all-zero-column", lambda f, e: f.assign(port2=0.0), "ok"),
    _weights_case("weights-numeric-ids", lambda f, e: f.assign(stock=np.arange(len(f))), "error", ["'0'"]),
    _weights_case("weights-top-minus-1", lambda f, e: f, "error", ["--top"], extra=("--top", "-1")),
    _weights_case("weights-json-ok", lambda f, e: f, "ok", extra=("--json",)),
]


# ---------------------------------------------------------------------------------------
# the factor-returns CSV: fit --kind time-series --factors and alpha --against
# ---------------------------------------------------------------------------------------
def _factor_text(env, edit):
    frame = edit(factor_frame(env).reset_index().astype({"date": str}), env)
    return frame.to_csv(index=False)


def _ts_case(case_id, edit, expect, names=(), text=None, text_edit=lambda t: t):
    def setup(tmp, env):
        panel = env.copy("panel.nc", tmp)
        factors = write_text(tmp, "factors.csv", text_edit(text if text is not None else _factor_text(env, edit)))
        return ["fit", panel, "-o", tmp / "out.nc", "--kind", "time-series", "--factors", factors, "-q"]

    return Case(case_id, setup, expect, tuple(names), outputs=OUT)


def _alpha_case(case_id, edit, expect, names=(), text=None, text_edit=lambda t: t):
    def setup(tmp, env):
        panel = env.copy("panel.nc", tmp)
        factors = write_text(tmp, "capm.csv", text_edit(text if text is not None else _factor_text(env, edit)))
        return ["alpha", "value", "--panel", panel, "--controls", "size", "--against", factors]

    return Case(case_id, setup, expect, tuple(names))


def _fset(column, row, value):
    def edit(frame, env):
        if isinstance(value, str):
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


def _factor_cases(make, prefix, file):
    bom = lambda tmp_text: "\ufeff" + tmp_text  # noqa: E731
    return [
        make(f"{prefix}-utf8-bom", lambda f, e: f, "ok", text_edit=bom),
        make(f"{prefix}-empty-file", None, "error", [file, "empty"], text=""),
        make(f"{prefix}-header-only", None, "error", [file, "rows"], text="date,market,size\n"),
        make(f"{prefix}-date-column-only", lambda f, e: f[["date"]], "error", [file]),
        make(f"{prefix}-abc", _fset("market", 4, "abc"), "error", ["'abc'", "market", "2015-01-09"]),
        make(f"{prefix}-inf", _fset("market", 4, np.inf), "error", ["market", "2015-01-09"]),
        make(f"{prefix}-nan-only-column", lambda f, e: f.assign(size=np.nan), "error", ["size"]),
        make(f"{prefix}-duplicate-dates", lambda f, e: pd.concat([f, f.iloc[[4]]]), "error", ["2015-01-09"]),
        make(f"{prefix}-bad-date", _fset("date", 4, "notadate"), "error", ["notadate"]),
        make(f"{prefix}-impossible-date", _fset("date", 4, "2015-02-30"), "error", ["2015-02-30"]),
        make(f"{prefix}-unsorted-dates", lambda f, e: f.iloc[::-1], "ok"),
        make(f"{prefix}-semicolon-separator", None, "error", [file, "';'"], text="date;market\n2015-01-05;0.01\n"),
    ]


FACTOR_CSV = _factor_cases(_ts_case, "ts-factors", "factors.csv") + _factor_cases(_alpha_case, "alpha-against", "capm.csv")


# ---------------------------------------------------------------------------------------
# the labels CSV (audit --labels)
# ---------------------------------------------------------------------------------------
def _labels_case(case_id, text_of, expect, names=()):
    def setup(tmp, env):
        model = env.copy("model.nc", tmp)
        labels = write_text(tmp, "labels.csv", text_of(env))
        return ["audit", model, "--labels", labels]

    return Case(case_id, setup, expect, tuple(names))


def _labels(env, rows=None, header="stock,sector\n", sep=","):
    rows = rows if rows is not None else [(s, f"SEC{i % 3}") for i, s in enumerate(env.stocks)]
    return header + "".join(f"{s}{sep}{lab}\n" for s, lab in rows)


LABELS_CSV = [
    _labels_case("labels-empty-file", lambda e: "", "error", ["labels.csv", "empty"]),
    _labels_case("labels-header-only", lambda e: "stock,sector\n", "error", ["labels.csv", "rows"]),
    _labels_case("labels-one-column", lambda e: "stock\n" + "".join(f"{s}\n" for s in e.stocks), "error", ["labels.csv"]),
    _labels_case("labels-duplicate-stock", lambda e: _labels(e) + f"{e.stocks[0]},SEC9\n", "error",
                 ["labels.csv", "S0000"]),
    _labels_case("labels-unknown-stocks-only", lambda e: _labels(e, [("ZZZ1", "A"), ("ZZZ2", "B")]), "error",
                 ["labels.csv", "ZZZ1"]),
    _labels_case("labels-empty-label-cell", lambda e: _labels(e, [(s, "" if i == 2 else "A") for i, s in
                                                                 enumerate(e.stocks)]), "warning", ["labels.csv", "S0002"]),
    _labels_case("labels-empty-stock-id", lambda e: _labels(e, [("" if i == 2 else s, "A") for i, s in
                                                               enumerate(e.stocks)]), "error", ["labels.csv", "empty"]),
    _labels_case("labels-utf8-bom", lambda e: "\ufeff" + _labels(e), "ok"),
    _labels_case("labels-semicolon-separator", lambda e: _labels(e, header="stock;sector\n", sep=";"), "error",
                 ["labels.csv", "';'"]),
]


# ---------------------------------------------------------------------------------------
# issue 19: the long CSV of raw prices (returns, caps and dollar volume computed)
# ---------------------------------------------------------------------------------------
def _prices(frame, env):
    """The session's long frame as prices: adjusted = close, volume, shares (no returns, no caps)."""
    frame = frame.sort_values(["stock", "date"]).copy()
    growth = (1.0 + frame["returns"].fillna(0.0)).groupby(frame["stock"]).cumprod()
    frame["adj_close"] = 50.0 * growth
    frame["close"] = frame["adj_close"]
    frame["volume"] = 1e5
    frame["shares"] = frame["market_cap"] / frame["close"]
    return frame.drop(columns=["returns", "market_cap", "size", "value", "momentum"]).sort_values(["date", "stock"])


def _price_case(case_id, edit, expect, names=(), extra=("--shares-column", "shares"), check=None):
    def setup(tmp, env):
        frame = edit(_prices(env.long.copy(), env), env)
        return panel_argv(write_long_csv(tmp, frame, "prices.csv"), tmp, "--descriptors", "size,reversal", *extra)

    return Case(case_id, setup, expect, tuple(names), outputs=OUT, check=check)


def _check_prices_panel(tmp, env, result):
    import riskmodel as rm

    out = rm.load(tmp / "out.nc")
    assert {"returns", "market_cap", "dollar_volume", "size", "reversal"} <= set(out.data_vars)
    assert "adj_close" not in out and "shares" not in out
    got, want = out["returns"].values, env.panel["returns"].values
    both = np.isfinite(got) & np.isfinite(want)  # a missing return is a 0 % day in these prices
    assert both.sum() >= 0.95 * np.isfinite(want).sum()
    np.testing.assert_allclose(got[both], want[both], rtol=1e-9, atol=1e-12)


def _price_at(column, value):
    def edit(frame, env):
        at = (frame["stock"] == _S) & (frame["date"] == _D)
        frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame.loc[at, column] = value
        return frame

    return edit


PRICES_CSV = [
    _price_case("panel-prices-ok", lambda f, e: f, "ok", check=_check_prices_panel),
    _price_case("panel-prices-negative-price", _price_at("adj_close", -3.0), "error", ["adj_close", _S, _D]),
    _price_case("panel-prices-zero-close", _price_at("close", 0.0), "error", ["close", _S, _D]),
    _price_case("panel-prices-text-price", _price_at("adj_close", "abc"), "error", ["'abc'", "adj_close", _S, _D]),
    _price_case("panel-prices-negative-shares", _price_at("shares", -1.0), "error", ["shares", _S, _D]),
    _price_case("panel-prices-no-cap-nor-shares", lambda f, e: f, "error", ["--cap-column", "--shares-column"], extra=()),
    _price_case("panel-prices-cap-and-shares", lambda f, e: f.assign(cap=1e9), "error", ["--cap-column", "--shares-column"],
                extra=("--shares-column", "shares", "--cap-column", "cap")),
    _price_case("panel-prices-unknown-price-column", lambda f, e: f, "error", ["'px'", "--price-column"],
                extra=("--shares-column", "shares", "--price-column", "px")),
    _price_case("panel-prices-unknown-volume-column", lambda f, e: f, "error", ["'vol'", "--volume-column"],
                extra=("--shares-column", "shares", "--volume-column", "vol")),
    _price_case("panel-prices-cap-scale-negative", lambda f, e: f.assign(cap=1e3), "error", ["--cap-scale", "-5"],
                extra=("--cap-column", "cap", "--cap-scale", "-5")),
    _price_case("panel-prices-cap-scale-without-cap-column", lambda f, e: f, "error", ["--cap-scale"],
                extra=("--shares-column", "shares", "--cap-scale", "1e6")),
    _price_case("panel-prices-ticker-column-ok", lambda f, e: f.rename(columns={"stock": "ticker"}), "ok"),
    _panel_case("panel-returns-csv-with-price-flag", lambda f, e: f, "error", ["--close-column", "returns"],
                extra=("--close-column", "close")),
    _panel_case("panel-short-history-without-descriptors", lambda f, e: f, "error", ["--short-history", "--descriptors"],
                extra=("--short-history",)),
]

CASES = PANEL_CSV + WEIGHTS_CSV + FACTOR_CSV + LABELS_CSV + PRICES_CSV
