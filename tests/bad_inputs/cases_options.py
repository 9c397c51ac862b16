"""Catalogue cases: options out of range, options that do not apply, and panels that fit to
a useless model (a constant or all-NaN style, one stock, one day, 30 days)."""

from __future__ import annotations

import numpy as np

from _bad_inputs_harness import Case, weights_frame, write_long_csv, write_text

OUT = ("out.nc",)


def _simulate(case_id, extra, expect, names=()):
    return Case(case_id, lambda tmp, env: ["simulate", "-o", tmp / "out.nc", *extra], expect, tuple(names), outputs=OUT)


def _fit(case_id, extra, expect, names=(), outputs=OUT, memory_cap=False):
    return Case(case_id, lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", tmp / "out.nc", "-q", *extra], expect,
                tuple(names), outputs=outputs, memory_cap=memory_cap)


def _risk(case_id, extra, expect, names=()):
    def setup(tmp, env):
        return ["risk", env.copy("model.nc", tmp), "--weights", write_long_csv(tmp, weights_frame(env), "book.csv"), *extra]

    return Case(case_id, setup, expect, tuple(names))


def _alpha(case_id, extra, expect, names=()):
    return Case(case_id, lambda tmp, env: ["alpha", *extra[:1], "--panel", env.copy("panel.nc", tmp), *extra[1:]], expect,
                tuple(names))


def _audit(case_id, extra, expect, names=()):
    return Case(case_id, lambda tmp, env: ["audit", env.copy("model.nc", tmp), *extra], expect, tuple(names))


def _edited_panel_fit(case_id, edit, names, extra=()):
    """``riskmodel fit`` on the session panel after ``edit(panel)``: a useless model is an error."""

    def setup(tmp, env):
        import riskmodel as rm

        rm.save(edit(env.panel.copy(deep=True)), tmp / "panel.nc")
        return ["fit", tmp / "panel.nc", "-o", tmp / "out.nc", "-q", *extra]

    return Case(case_id, setup, "error", tuple(names), outputs=OUT)


def _constant_style(panel):
    panel["value"][:] = 1.5
    return panel


def _nan_style(panel):
    panel["value"][:] = np.nan
    return panel


SIMULATE = [
    _simulate("simulate-stocks-0", ["--stocks", "0", "--days", "60"], "error", ["stocks", "0"]),
    _simulate("simulate-stocks-minus-5", ["--stocks", "-5", "--days", "60"], "error", ["stocks", "-5"]),
    _simulate("simulate-days-1", ["--stocks", "150", "--days", "1"], "error", ["days", "1"]),
    _simulate("simulate-days-0", ["--stocks", "150", "--days", "0"], "error", ["days", "0"]),
    _simulate("simulate-seed-negative", ["--stocks", "150", "--days", "60", "--seed", "-1"], "error", ["seed", "-1"]),
    _simulate("simulate-hidden-negative", ["--stocks", "150", "--days", "60", "--hidden", "-2"], "error", ["hidden", "-2"]),
    _simulate("simulate-hidden-corr-2", ["--stocks", "150", "--days", "60", "--hidden", "1", "--hidden-corr", "2"], "error",
              ["corr", "2"]),
    _simulate("simulate-hidden-members-too-many", ["--stocks", "150", "--days", "60", "--hidden", "1", "--hidden-members",
                                                   "500"], "error", ["500"]),
    _simulate("simulate-stocks-not-an-int", ["--stocks", "many"], "error", ["--stocks", "many"]),
]

FIT = [
    _fit("fit-statistical-n-factors-5000", ["--kind", "statistical", "--n-factors", "5000"], "error",
         ["n-factors", "5000"], memory_cap=True),
    _fit("fit-statistical-n-factors-0", ["--kind", "statistical", "--n-factors", "0"], "error", ["n_factors", "0"]),
    _fit("fit-hybrid-k-0", ["--kind", "hybrid", "--k", "0"], "error", ["--k", "0"]),
    _fit("fit-hybrid-k-negative", ["--kind", "hybrid", "--k", "-2"], "error", ["--k", "-2"]),
    _fit("fit-hybrid-k-too-many", ["--kind", "hybrid", "--k", "500"], "error", ["--k", "500"]),
    _fit("fit-n-factors-with-fundamental", ["--n-factors", "3"], "error", ["--n-factors"]),
    _fit("fit-factors-with-fundamental", ["--factors", "f.csv"], "error", ["--factors"]),
    _fit("fit-time-series-without-factors", ["--kind", "time-series"], "error", ["--factors"]),
    _fit("fit-set-unknown", ["--set", "unknown=1"], "error", ["unknown"]),
    _fit("fit-set-half-life-negative", ["--set", "vol_half_life=-3"], "error", ["vol_half_life", "-3"]),
    _fit("fit-set-half-life-text", ["--set", "vol_half_life=abc"], "error", ["vol_half_life", "abc"]),
    _fit("fit-set-without-equals", ["--set", "vol_half_life"], "error", ["vol_half_life"]),
    _fit("fit-set-given-twice", ["--set", "eigen_sims=0", "--set", "eigen_sims=0"], "error", ["eigen_sims"]),
    _fit("fit-set-with-statistical", ["--kind", "statistical", "--set", "eigen_sims=0"], "error", ["--set"]),
    _fit("fit-no-clip-and-return-clip", ["--no-clip", "--set", "return_clip=5"], "error", ["--no-clip"]),
    _fit("fit-styles-unknown", ["--styles", "size,karma"], "error", ["karma"]),
    _fit("fit-industry-unknown", ["--industry", "sector"], "error", ["sector"]),
    _fit("fit-industry-is-a-style", ["--industry", "value"], "error", ["value"]),
    _fit("fit-industry-none-ok", ["--industry", "none"], "ok"),
    _fit("fit-min-history-0", ["--min-history", "0"], "error", ["--min-history", "0"]),
    _fit("fit-min-history-text", ["--min-history", "soon"], "error", ["--min-history", "soon"]),
    _fit("fit-min-history-with-statistical", ["--kind", "statistical", "--min-history", "42"], "error",
         ["--min-history", "statistical"]),
    _fit("fit-set-min-history", ["--set", "min_history=42"], "error", ["--min-history"]),
    _fit("fit-min-history-ok", ["--min-history", "42"], "ok"),
    _fit("fit-factor-returns-only-ok", ["--factor-returns-only"], "ok"),
    _edited_panel_fit("fit-constant-style", _constant_style, ["value"]),
    _edited_panel_fit("fit-all-nan-style", _nan_style, ["value"]),
    _edited_panel_fit("fit-single-stock", lambda p: p.isel(stock=[0]), ["stock"]),
    _edited_panel_fit("fit-single-day", lambda p: p.isel(date=[5]), ["date"]),
    _edited_panel_fit("fit-30-days", lambda p: p.isel(date=slice(0, 30)), ["30"]),
    _edited_panel_fit("fit-returns-all-nan", lambda p: p.assign(returns=p["returns"] * np.nan), ["returns"]),
    _edited_panel_fit("fit-no-returns-variable", lambda p: p.drop_vars("returns"), ["returns"]),
    _edited_panel_fit("fit-no-market-cap", lambda p: p.drop_vars("market_cap"), ["market_cap"]),
]

RISK = [
    _risk("risk-top-minus-1", ["--top", "-1"], "error", ["--top", "-1"]),
    _risk("risk-top-0-ok", ["--top", "0"], "ok"),
    _risk("risk-date-not-a-date", ["--date", "notadate"], "error", ["notadate"]),
    _risk("risk-date-impossible", ["--date", "2015-02-30"], "error", ["2015-02-30"]),
    # issue 19: a day that is not a trading day means the last trading day before it, said in one line
    _risk("risk-date-non-trading-day", ["--date", "2015-03-07"], "warning", ["2015-03-07", "2015-03-06"]),
    _risk("risk-date-sunday-as-of", ["--date", "2015-03-08"], "warning", ["2015-03-08", "not a trading day"]),
    _risk("risk-date-before-first-forecast", ["--date", "2015-01-02"], "error", ["2015-01-02"]),
    _risk("risk-date-before-the-data", ["--date", "1990-01-02"], "error", ["1990-01-02"]),
    _risk("risk-date-after-the-last", ["--date", "2030-01-02"], "error", ["2030-01-02"]),
    _risk("risk-date-trading-day-ok", ["--date", "2015-05-04"], "ok"),
]

ALPHA = [
    _alpha("alpha-unknown-signal", ["karma"], "error", ["karma"]),
    _alpha("alpha-unknown-control", ["value", "--controls", "size,karma"], "error", ["karma"]),
    _alpha("alpha-signal-is-returns-ok", ["returns", "--controls", "size"], "ok"),
    _alpha("alpha-lags-negative", ["value", "--controls", "size", "--lags", "-1"], "error", ["lags", "-1"]),
    _alpha("alpha-signal-is-industry", ["industry", "--controls", "size"], "error", ["industry"]),
]

AUDIT = [
    _audit("audit-labels-from-without-panel", ["--labels-from", "sector"], "error", ["--labels-from", "--panel"]),
    _audit("audit-labels-from-missing-variable", ["--labels-from", "sector", "--panel", "{panel}"], "error", ["sector"]),
    _audit("audit-labels-and-labels-from", ["--labels", "{labels}", "--labels-from", "industry"], "error",
           ["--labels", "--labels-from"]),
    _audit("audit-label-column-without-labels", ["--label-column", "sector"], "error", ["--label-column", "--labels"]),
    _audit("audit-label-column-missing", ["--labels", "{labels}", "--label-column", "industry"], "error",
           ["labels.csv", "industry", "stock, sector"]),
    _audit("audit-label-column-is-ids", ["--labels", "{labels}", "--label-column", "stock"], "error",
           ["stock", "stock-id column"]),
    _audit("audit-labels-ambiguous", ["--labels", "{wide_labels}"], "error", ["wide_labels.csv", "name, sector", "--label-column"]),
    _audit("audit-label-column-chosen-ok", ["--labels", "{wide_labels}", "--label-column", "sector"], "ok"),
    _audit("audit-window-short", ["--window", "39"], "error", ["--window", "39", "40"]),
    _audit("audit-window-zero", ["--window", "0"], "error", ["--window", "0"]),
    _audit("audit-components-zero", ["--components", "0"], "error", ["--components", "0"]),
    _audit("audit-min-purity-above-one", ["--min-purity", "1.2"], "error", ["--min-purity", "1.2"]),
    _audit("audit-min-purity-nan", ["--min-purity", "nan"], "error", ["--min-purity", "nan"]),
    _audit("audit-start-not-a-date", ["--start", "yesterday-ish"], "error", ["--start", "yesterday-ish"]),
    _audit("audit-start-after-end", ["--start", "2021-01-01", "--end", "2020-01-01"], "error", ["--start", "--end"]),
    _audit("audit-start-after-data", ["--start", "2999-01-01"], "error", ["--start", "0 of the model's dates"]),
    _audit("audit-window-and-components-ok", ["--window", "60", "--components", "3", "--min-purity", "0"], "ok"),
]


def _audit_with_panel(case):
    def setup(tmp, env):
        argv = case.setup(tmp, env)
        labels = "stock,sector\n" + "".join(f"{s},SEC{i % 3}\n" for i, s in enumerate(env.stocks))
        wide = "ticker,name,sector\n" + "".join(f"{s},Company {i},SEC{i % 3}\n" for i, s in enumerate(env.stocks))
        files = {"{panel}": lambda: env.copy("panel.nc", tmp), "{labels}": lambda: write_text(tmp, "labels.csv", labels),
                 "{wide_labels}": lambda: write_text(tmp, "wide_labels.csv", wide)}
        return [files[a]() if a in files else a for a in argv]

    return Case(case.id, setup, case.expect, case.names)


AUDIT = [_audit_with_panel(c) for c in AUDIT]

DEMO = [
    Case("demo-stocks-0", lambda tmp, env: ["demo", "-o", tmp / "demo", "--stocks", "0"], "error", ("stocks", "0")),
    Case("demo-days-minus-1", lambda tmp, env: ["demo", "-o", tmp / "demo", "--days", "-1"], "error", ("days", "-1")),
]

CASES = SIMULATE + FIT + RISK + ALPHA + AUDIT + DEMO
