"""Every figure the README and the docs quote is checked against the committed JSON behind it.

:data:`QUOTES` is the registry: for each quoted figure, the document, a piece of text that
picks the one line quoting it, how it is written there (``"{:.2f} s"``), and where it comes
from (a JSON file written by a benchmark or example script, and the key path inside it).
:func:`check` renders each figure from its JSON and looks for it on its line; in the
README's speed table it also requires every number of every row to be a registered figure,
so a number typed by hand — new, or an old one edited — fails. The last tests run
:func:`check` on edited copies of the README to show that it does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FR = "benchmarks/results/factor_returns.json"
FF = "benchmarks/results/full_fit.json"
PR = "benchmarks/results/portfolio_risk.json"
PR1 = "benchmarks/results/portfolio_risk_1thread.json"
AU = "benchmarks/results/audit.json"
TS = "benchmarks/results/timeseries.json"
SC = "benchmarks/results/scale.json"
RISK = "docs/figures/real_risk_model.json"
AUDIT = "docs/figures/real_audit.json"
DEMO = "docs/figures/demo.json"
GS = "docs/getting-started.md"
SPEED = ("README.md", "## Speed", "`benchmarks/` has the scripts")  # every number in here is registered


@dataclass(frozen=True)
class Quote:
    """One quoted figure: ``text.format(value)`` appears on the one line of ``doc`` holding ``line``."""

    doc: str
    line: str
    text: str
    source: str
    key: tuple
    scale: float = 1.0  # JSON value x scale is quoted (seconds -> ms, share -> %)
    minus: bool = False  # the text writes negative numbers with the typographic minus "−"
    offset: float = 0.0  # (JSON value - offset) x scale is quoted (a bias of 1.065 as "6.5 %" under-prediction)
    # a figure the text derives from the JSON values (a difference, a ratio): derive(*values) is quoted, the
    # values are read from the JSON (never stored twice); it may return a tuple for several figures
    derive: Callable | None = None


def Q(doc: str, line: str, text: str, source: str, *key, scale: float = 1.0, minus: bool = False,  # noqa: N802
      offset: float = 0.0, derive: Callable | None = None) -> Quote:
    return Quote(doc, line, text, source, tuple(key), scale, minus, offset, derive)


R = "README.md"
FR_ROW, FF_ROW, PR_ROW, WB_ROW = "| daily factor returns", "| full fit", "| risk + full decomposition", "| Woodbury"
AU_ROW, TS_ROW, SC_ROW = "| residual audit", "| time-series loadings", "| out-of-core fit"
RM = "name=riskmodel (return_clip=None)"
QUOTES: list[Quote] = [
    # the heading: the size every row is measured at
    Q(R, "## Speed", "{:,} stocks", FR, "config", "n_stocks"),
    Q(R, "## Speed", "× {:,} days", FR, "config", "n_days"),
    Q(R, "## Speed", "{} shared cores", FR, "machine", "cpu_count"),
    # daily factor returns: CPU against CPU (robust to the load), then wall against wall
    Q(R, FR_ROW, "{} factors", FR, "config", "n_factors"),
    Q(R, FR_ROW, "{:.2f} s on", FR, "results", RM, "seconds"),
    Q(R, FR_ROW, "on {} threads", FR, "machine", "numba_threads"),
    Q(R, FR_ROW, "({:.2f} s of CPU)", FR, "results", RM, "cpu_seconds"),
    Q(R, FR_ROW, "{:.2f}× inputs peak", FR, "riskmodel_peak_over_inputs"),
    Q(R, FR_ROW, "{:.1f}× a plain numpy", FR, "like_with_like", "normal_equations_1thread_cpu_vs_riskmodel_1thread"),
    Q(R, FR_ROW, "{:.0f}× the per-day `lstsq` loop", FR, "like_with_like", "lstsq_loop_1thread_cpu_vs_riskmodel_1thread"),
    Q(R, FR_ROW, "({} of", FR, "results", "name=numpy loop (1 BLAS thread)", "days_timed"),
    Q(R, FR_ROW, "of {:,} dates", FR, "results", "name=numpy normal equations + Cholesky", "days_timed"),
    Q(R, FR_ROW, "{:,.0f}× toraniko", FR, "like_with_like", "toraniko_cpu_vs_riskmodel_default_threads"),
    Q(R, FR_ROW, "numpy {}", FR, "results", "name=toraniko estimate_factor_returns", "numpy"),
    Q(R, FR_ROW, "extrapolated from {} dates", FR, "results", "name=toraniko estimate_factor_returns", "days_timed"),
    Q(R, FR_ROW, "wall, one thread each: {:.1f}×", FR, "like_with_like", "normal_equations_1thread_vs_riskmodel_1thread"),
    Q(R, FR_ROW, "and {:.0f}×", FR, "like_with_like", "lstsq_loop_1thread_vs_riskmodel_1thread"),
    Q(R, FR_ROW, "default threads: {:.0f}×", FR, "like_with_like", "normal_equations_vs_riskmodel_default_threads"),
    Q(R, FR_ROW, "load {:.1f}", FR, "conditions", "load_average_before", 0),
    Q(R, FR_ROW, "best of {} alternating rounds", FR, "conditions", "repeat"),
    # full fit
    Q(R, FF_ROW, "{:.1f} s", FF, "results", "name=riskmodel FactorRiskModel.fit", "seconds"),
    Q(R, FF_ROW, "{:.2f}× inputs peak", FF, "results", "name=riskmodel FactorRiskModel.fit", "memory_ratio"),
    Q(R, FF_ROW, "the same last {} dates", FF, "like_with_like", "dates"),
    Q(R, FF_ROW, "{:.0f}× less user CPU than skfolio", FF, "like_with_like", "user_cpu_ratio"),
    Q(R, FF_ROW, "{:.0f}× faster in wall time", FF, "like_with_like", "wall_ratio"),
    Q(R, FF_ROW, "cold skfolio fit: {:.0f}×", FF, "like_with_like", "cold_wall_ratio"),
    Q(R, FF_ROW, "to {:,} dates", FF, "config", "n_days"),
    Q(R, FF_ROW, "{:.0f}× wall", FF, "speedup_vs_skfolio"),
    Q(R, FF_ROW, "load {:.1f}", FF, "conditions", "load_average_before", 0),
    # portfolio risk
    Q(R, PR_ROW, "{:,} portfolios", PR, "settings", "n_portfolios", 1),
    Q(R, PR_ROW, "{:.1f} ms", PR, "rows", "task=decompose&n_portfolios=1000", "structured_s", scale=1e3),
    Q(R, PR_ROW, "({:.1f} ms on one core)", PR1, "rows", "task=decompose&n_portfolios=1000", "structured_s", scale=1e3),
    Q(R, PR_ROW, "{:.1f}× the dense", PR, "rows", "task=decompose&n_portfolios=1000", "speedup"),
    Q(R, PR_ROW, "{:.1f}× on one", PR1, "rows", "task=decompose&n_portfolios=1000", "speedup"),
    Q(R, PR_ROW, "best of {}", PR, "settings", "repeat"),
    Q(R, PR_ROW, "load {:.1f}", PR, "conditions", "load_average_before", 0),
    Q(R, PR_ROW, "({:.1f} for the one-core run)", PR1, "conditions", "load_average_before", 0),
    Q(R, PR_ROW, "on {} cores", PR, "machine", "cpu_count"),
    Q(R, PR_ROW, "m = {} factors", PR, "settings", "n_factors"),
    # Woodbury solve
    Q(R, WB_ROW, "{:.2f} ms", PR, "rows", "task=solve&n_portfolios=1", "structured_s", scale=1e3),
    Q(R, WB_ROW, "{:.0f}× a Cholesky", PR, "rows", "task=solve&n_portfolios=1", "speedup"),
    # residual audit
    Q(R, AU_ROW, "T = {:,}", AU, "rows", 1, "n_dates"),
    Q(R, AU_ROW, "{:.1f} s", AU, "rows", 1, "audit_seconds"),
    Q(R, AU_ROW, "{:.2f}× residuals peak", AU, "rows", 1, "audit_peak_x_matrix"),
    Q(R, AU_ROW, "{:.1f}× the dense", AU, "rows", 1, "dense_over_audit_time"),
    # time-series loadings
    Q(R, TS_ROW, "{} factors", TS, "size", "n_factors"),
    Q(R, TS_ROW, "{:.2f} s", TS, "timeseries", "riskmodel_s"),
    Q(R, TS_ROW, "{:.0f}× a per-stock", TS, "timeseries", "speedup"),
    Q(R, TS_ROW, "from {:,} of", TS, "timeseries", "lstsq_stocks_timed"),
    Q(R, TS_ROW, "of {:,} stocks", TS, "size", "n_stocks"),
    Q(R, TS_ROW, "one thread too: {:.0f}×", TS, "timeseries", "speedup_1thread"),
    Q(R, TS_ROW, "load {:.1f}", TS, "conditions", "load_average_before", 0),
    # out-of-core
    Q(R, SC_ROW, "**{:,}** ×", SC, "config", "n_stocks"),
    Q(R, SC_ROW, "× {:,}", SC, "config", "n_days"),
    Q(R, SC_ROW, "({:.1f} GB panel", SC, "config", "panel_gb_uncompressed"),
    Q(R, SC_ROW, "cluster of {} × {}", SC, "config", ("workers", "memory_limit_per_worker")),
    Q(R, SC_ROW, "{:.0f} s", SC, "results", "name=fit_chunked on the cluster (50,000 stocks)", "seconds"),
    Q(R, SC_ROW, "{:.2f} GB peak per worker", SC, "peak_rss_mb_per_worker_large_fit", 0, scale=1 / 1e3),
    Q(R, SC_ROW, "{:.2f}× the in-memory", SC, "results", "name=fit_chunked on the cluster (50,000 stocks)",
      "ratio_to_in_memory"),
    Q(R, SC_ROW, "{} threads in process", SC, "config", "threads_per_worker"),
    Q(R, SC_ROW, "processes × {} in the same run: {:.2f}×", SC, "results",
      "name=fit_chunked on 2 processes x 1 thread (50,000 stocks)", ("memory_limit_per_worker", "ratio_to_in_memory")),
    Q(R, SC_ROW, "load {:.1f} at the start", SC, "conditions", "load_average_before", 0),
    Q(R, SC_ROW, "{:.1f} before the large fit", SC, "conditions", "load_average_large_fit", "before", 0),
    # the real-data figures the tutorial and the guides quote
    Q("docs/tutorial.md", "predicts the risk of optimised", "fitted on {} S&P 500", RISK, "n_stocks"),
    Q("docs/tutorial.md", "well out of sample", "mean bias **{:.3f}**", RISK, "table",
      "(d) +shrink (full) | optimised", "mean_bias"),
    Q("docs/tutorial.md", "well out of sample", "{:.0f} % inside", RISK, "table",
      "(d) +shrink (full) | optimised", "share_inside", scale=100),
    Q("docs/tutorial.md", "well out of sample", "over {:,} days", RISK, "n_outcomes"),
    Q("docs/tutorial.md", "0.723), and its Energy", "{:.3f}), and", AUDIT, "no_industry", "adjusted_rand"),
    Q("docs/tutorial.md", "0.723), and its Energy", "correlates **{:.3f}**", AUDIT, "energy_cluster", "correlation"),
    Q("docs/guide/auditing.md", "the 310 clustered stocks", "the {} clustered stocks: {:.3f}", AUDIT,
      "no_industry", ("n_clustered", "adjusted_rand")),
    Q("docs/guide/auditing.md", "equal-weight mean residual) **correlates", "correlates {:.3f} with", AUDIT,
      "energy_cluster", "correlation"),
    Q("docs/guide/auditing.md", "The Energy cluster has", "has {} names, {} of the {} audited Energy stocks (purity {:.2f})",
      AUDIT, "energy_cluster", ("size", "energy_members", "energy_audited", "purity")),
    Q("docs/guide/auditing.md", "largest oil moves", "On the {} largest oil moves", AUDIT, "energy_cluster", "n_big_days"),
    Q("docs/guide/auditing.md", "move's sign", "sign {:.0f} % of the time", AUDIT, "energy_cluster", "hit_rate_big_moves",
      scale=100),
    Q("docs/guide/auditing.md", "MP edge 3.916", "MP edge {:.3f}; null edge **{:.3f}**; **{} significant", AUDIT,
      "no_industry", ("mp_edge", "null_edge", "n_significant")),
    Q("docs/guide/auditing.md", "clusters** (cut", "**{} clusters** (cut ρ ≥ 0.1, size ≥ 5) covering {} stocks, {} of",
      AUDIT, "no_industry", ("n_clusters", "n_clustered", "n_flagged")),
    # docs/benchmarks.md: the scale-out paragraph
    Q("docs/benchmarks.md", "--compare-processes`, one command", "one command, {:.0f} min", SC, "conditions",
      "run_seconds", scale=1 / 60),
    Q("docs/benchmarks.md", "client's process (`processes=False`) ×", "(`processes=False`) × {}, zarr", SC, "config",
      "memory_limit_per_worker"),
    Q("docs/benchmarks.md", "client's process (`processes=False`) ×", "{}-date chunks", SC, "config", "date_chunk"),
    Q("docs/benchmarks.md", "3 styles; load average", "load average {:.1f} at the start", SC, "conditions",
      "load_average_before", 0),
    Q("docs/benchmarks.md", "3 styles; load average", "start, {:.1f} at the end", SC, "conditions", "load_average_after", 0),
    Q("docs/benchmarks.md", "3 styles; load average", "end, {:.1f} before the large fit", SC,
      "conditions", "load_average_large_fit", "before", 0),
    Q("docs/benchmarks.md", "3 styles; load average", "and {:.1f} after it", SC,
      "conditions", "load_average_large_fit", "after", 0),
    Q("docs/benchmarks.md", "of two processes × 1 thread ×", "load {:.1f} before it", SC, "results",
      "name=fit_chunked on 2 processes x 1 thread (50,000 stocks)", "load_average", "before", 0),
    Q("docs/benchmarks.md", "of two processes × 1 thread ×", "{:.1f} after)", SC, "results",
      "name=fit_chunked on 2 processes x 1 thread (50,000 stocks)", "load_average", "after", 0),
    Q("docs/benchmarks.md", "panel (4.7 GB, more than", "({:.1f} GB, more than the cluster's {:.0f} GB) fits in", SC,
      "config", ("panel_gb_uncompressed", "cluster_memory_gb")),
    Q("docs/benchmarks.md", "panel (4.7 GB, more than", "fits in {:.0f} s", SC, "results",
      "name=fit_chunked on the cluster (50,000 stocks)", "seconds"),
    Q("docs/benchmarks.md", "panel (4.7 GB, more than", "({:.2f} million", SC, "results",
      "name=fit_chunked on the cluster (50,000 stocks)", "stock_days_per_s", scale=1e-6),
    Q("docs/benchmarks.md", "the in-memory throughput at 5,000", "{:.2f}× the in-memory", SC, "results",
      "name=fit_chunked on the cluster (50,000 stocks)", "ratio_to_in_memory"),
    Q("docs/benchmarks.md", "the in-memory throughput at 5,000", "whose fit took {:.1f} s", SC, "results",
      "name=in-memory fit (5,000 stocks)", "seconds"),
    Q("docs/benchmarks.md", "for the one process that holds the worker", "peak of {:.2f} GB", SC,
      "peak_rss_mb_per_worker_large_fit", 0, scale=1e-3),
    Q("docs/benchmarks.md", "of two processes × 1 thread ×", "× {} took {:.0f} s ({:.2f}×;", SC, "results",
      "name=fit_chunked on 2 processes x 1 thread (50,000 stocks)",
      ("memory_limit_per_worker", "seconds", "ratio_to_in_memory")),
    Q("docs/benchmarks.md", "5,000-stock panel agree exactly (largest", "largest relative difference {:.0f} for", SC,
      "agreement_chunked_vs_in_memory_max_rel", "specific_var"),
    # docs/benchmarks.md: the out-of-core roofline
    Q("docs/benchmarks.md", "Roofline: it must read the", "read the {:.2f} GB panel and write the {:.2f} GB", SC,
      "sizes_gb_on_disk", ("panel", "fit_store")),
    Q("docs/benchmarks.md", "Roofline: it must read the", "store, {:.2f} GB", SC, "roofline_large_fit", "bytes_min_gb"),
    Q("docs/benchmarks.md", "at the copy bandwidth measured in the same run", "same run ({:.1f} GB/s): {:.2f} s", SC,
      "roofline_large_fit", ("bandwidth_gb_s", "memory_seconds")),
    Q("docs/benchmarks.md", "and the out-of-core fit runs at", "is {:.1f} s, and", SC, "roofline_large_fit",
      "in_memory_kernels_seconds"),
    Q("docs/benchmarks.md", "and the out-of-core fit runs at", "runs at {:.2f}× that bound", SC, "roofline_large_fit",
      "measured_over_kernels"),
    Q("docs/benchmarks.md", "the in-memory throughput against the target", "({:.2f}× the in-memory throughput", SC,
      "results", "name=fit_chunked on the cluster (50,000 stocks)", "ratio_to_in_memory"),
    Q("docs/benchmarks.md", "the pass of exposures and regression took", "took {:.1f} s, the", SC,
      "stage_seconds_large_fit", "exposures_regression"),
    Q("docs/benchmarks.md", "specific-risk pass", "specific-risk pass {:.1f} s", SC, "stage_seconds_large_fit", "specific"),
    Q("docs/benchmarks.md", "the regression tasks took", "tasks took {:.1f}, the", SC,
      "task_thread_seconds_large_fit", "regression_block"),
    Q("docs/benchmarks.md", "time-series tasks", "time-series tasks {:.1f} and its cross-section tasks {:.1f};", SC,
      "task_thread_seconds_large_fit", ("ts_block", "structural_block")),
    # the demo's facts (examples/run_all.py runs the demo at its default size)
    Q(GS, "the numbers below are from", "`seed={}`, {} stocks", DEMO, "settings", ("seed", "n_stocks")),
    Q(GS, "× 1,000 days; other seeds", "× {:,} days;", DEMO, "settings", "n_days"),
    Q(GS, "**A simulated world**", "— {} stocks", DEMO, "settings", "n_stocks"),
    Q(GS, "**A simulated world**", "× {:,} days, ", DEMO, "settings", "n_days"),
    Q(GS, "**A simulated world**", "{} industries, styles", DEMO, "n_industries"),
    Q(GS, "**Factor returns** — the fitted", "({} factors: market, {} industries,", DEMO, ("n_factors", "n_industries")),
    Q(GS, "styles; mean R²", "{} styles; mean R² ≈ {:.2f}", DEMO, ("n_styles", "mean_r2")),
    Q(GS, "the true ones (≈", "(≈ {:.2f}–", DEMO, "style_return_correlation", "min"),
    Q(GS, "the true ones (≈", "–{:.2f})", DEMO, "style_return_correlation", "max"),
    Q(GS, "the factor return to ~", "to ~{:.0e}", DEMO, "mimicking_identity_error"),
    Q(GS, "split into factor and specific parts", "(≈ {:.1f} %/yr", DEMO, "book_volatility_annual", scale=100),
    Q(GS, "factor 17.4 %", "factor {:.1f} %, specific {:.1f} %", DEMO, ("book_factor_vol_pct", "book_specific_vol_pct")),
    Q(GS, "the largest cluster holds", "holds {} names, all {} among", DEMO, ("largest_cluster", "largest_cluster_oil")),
]


# docs/guide/construction.md: the study's prose (its table is tests/project/test_construction_study_table.py),
# the eigen-adjustment check and the speed table of bench_construction.py
EACH = "each"  # key marker: the figures of one quote come from several key paths
CS = "examples/results/construction_study.json"
EAC = "examples/results/eigen_adjustment_check.json"
CB = "benchmarks/results/construction.json"
UP = "benchmarks/results/update.json"
C = "docs/guide/construction.md"
PROD = "docs/guide/production.md"


def V(field: str, *labels: str) -> tuple:  # noqa: N802
    """Key paths of ``field`` in the study's rows ``riskmodel: <label>`` (or a peer's row, ``=label``)."""
    return tuple(("rows", f"label={lab[1:]}" if lab.startswith("=") else f"label=riskmodel: {lab}", field)
                 for lab in labels)


def CQ(line: str, text: str, field: str, *labels: str, scale: float = 100) -> Quote:  # noqa: N802
    """Figures of the construction study's rows quoted in construction.md (volatilities in %)."""
    return Q(C, line, text, CS, EACH, *V(field, *labels), scale=scale)


GMV, LO, GMV12, RB = "gmv 2010-2016", "long-only 2010-2016", "gmv 2010-2012", "random bias"
NAMED = "hybrid_10_no_eigen_corr_std_vol_42_vra_21"
QUOTES += [
    CQ("LW = Ledoit–Wolf (", "LW = Ledoit–Wolf ({:.2f} % unconstrained", GMV, "=Ledoit-Wolf"),
    CQ("NLS = nonlinear shrinkage (", "{:.2f} % long-only", LO, "=Ledoit-Wolf"),
    CQ("NLS = nonlinear shrinkage (", "NLS = nonlinear shrinkage ({:.2f} %", GMV, "=nonlinear shrinkage"),
    CQ("NLS = nonlinear shrinkage (", ", {:.2f} %)", LO, "=nonlinear shrinkage"),
    CQ("bring the GMV from", "from {:.2f} % to {:.2f}, {:.2f}, {:.2f}, {:.2f} %", GMV,
       "baseline", "hybrid_2", "hybrid_5", "hybrid_10", "hybrid_20"),
    CQ("bring the GMV from", "long-only GMV from {:.2f} %", LO, "baseline"),
    CQ("every step in both halves", "to {:.2f}, {:.2f}, {:.2f}, {:.2f} %", LO, "hybrid_2", "hybrid_5", "hybrid_10", "hybrid_20"),
    CQ("from 2007: 9.84 to", "from {:.2f} to {:.2f} %, the hybrid", GMV, "baseline", "no_eigen"),
    CQ("from 2007: 9.84 to", "from {:.2f} to {:.2f} % (from 2007: {:.2f} to", GMV,
       "hybrid_10", "hybrid_10_no_eigen", "hybrid_10@2007"),
    CQ("and the random portfolios' bias from", "{:.2f} %), and", GMV, "hybrid_10_no_eigen@2007"),
    CQ("and the random portfolios' bias from", "bias from {:.2f}–{:.2f} to {:.2f}–{:.2f}", RB,
       "hybrid_10", "baseline", "hybrid_10_no_eigen", "no_eigen", scale=1),
    # v(k): the smallest of the three groups' smallest eigenfactors' biases (group "last") to the largest ("first")
    Q(C, "for the smallest eigenfactors of", "is {:.2f}–{:.2f} for the smallest", EAC, EACH,
      ("v_k", "last", "smallest_three", 1), ("v_k", "first", "smallest_three", 0)),
    Q(C, "0.95–0.98 for the largest", "{:.2f}–{:.2f} for the largest", EAC, EACH,
      ("v_k", "first", "largest_three", 0), ("v_k", "middle", "largest_three", 2)),
    Q(C, "ratio 0.92, range", "ratio {:.2f}, range {:.2f}–{:.2f}", EAC, "market_variance_ratio", ("median", "min", "max")),
    Q(C, "in the lowest fifth without", "bias {:.2f} in the lowest fifth", EAC, "without (eigen_sims=0)",
      "eigenfactor_bias_by_quintile_smallest_first", 0),
    Q(C, "adjustment, 1.12 with it", "adjustment, {:.2f} with it", EAC, "with adjustment (default)",
      "eigenfactor_bias_by_quintile_smallest_first", 0),
    CQ("(hybrid: 9.30 %", "(hybrid: {:.2f} % against {:.2f} %)", GMV, "hybrid_10_one_sided_eigen", "hybrid_10"),
    CQ("(hybrid: 9.30 %", "random bias high ({:.2f})", RB, "hybrid_10_one_sided_eigen", scale=1),
    CQ("without eigen adjustment realises", "realises {:.2f} % in 2010-2012", GMV12, "hybrid_10_no_eigen@2007"),
    CQ("from 2007 against 9.05 %", "against {:.2f} % from 2009", GMV12, "hybrid_10_no_eigen"),
    CQ("from 2007 against 9.05 %", "({:.2f} against {:.2f} % over", GMV, "hybrid_10_no_eigen@2007", "hybrid_10_no_eigen"),
    CQ("narrows the gap (252:", "(252: {:.2f} % against {:.2f} %)", GMV,
       "hybrid_10_corr_252_no_eigen@2007", "hybrid_10_corr_252_no_eigen"),
    CQ("closes it: 9.10 %", "closes it: {:.2f} %", GMV, "hybrid_10_no_eigen_corr_std@2007"),
    CQ("from 2007, 9.08 % from 2009", "{:.2f} % from 2009", GMV, "hybrid_10_no_eigen_corr_std"),
    CQ("from 2007, 9.08 % from 2009", "long-only {:.2f} % and {:.2f} %", LO,
       "hybrid_10_no_eigen_corr_std@2007", "hybrid_10_no_eigen_corr_std"),
    CQ("standardised from the second day", "worse from 2009, {:.2f} %", GMV, "hybrid_10_no_eigen_std_corr"),
    CQ("→ 9.18 % from 2009", "({:.2f} → {:.2f} % from 2009, {:.2f} → {:.2f} % from 2007)", GMV,
       "hybrid_10_no_eigen_corr_std", NAMED, "hybrid_10_no_eigen_corr_std@2007", NAMED + "@2007"),
    CQ("the baseline GMV (9.74 %", "({:.2f} % against {:.2f} %), dropping beta raises it ({:.2f} %)", GMV,
       "sectors", "baseline", "no_beta"),
    CQ("is the worst (10.56 %)", "is the worst ({:.2f} %)", GMV, "issue_set"),
    CQ("sectors are worse than industries", "(no eigen: {:.2f} % against {:.2f} %)", GMV,
       "hybrid_10_sectors_no_eigen", "hybrid_10_no_eigen"),
    CQ("blend, no specific VRA:", "VRA: {:.2f}–{:.2f} % (baseline {:.2f} %)", GMV, "shrink_0", "shrink_0.3", "baseline"),
    CQ("correlation half-life 126 (", "126 ({:.2f} %, random bias", GMV, "hybrid_10_corr_126"),
    CQ("correlation half-life 126 (", "random bias {:.2f};", RB, "hybrid_10_corr_126", scale=1),
    CQ("20 statistical factors instead of 10 (no", "{:.2f} %); 20", GMV, "hybrid_10_corr_126@2007"),
    CQ("20 statistical factors instead of 10 (no", "(no better: {:.2f} % against {:.2f} %", GMV,
       "hybrid_20_corr_252_no_eigen", "hybrid_10_corr_252_no_eigen"),
    CQ("the one-sided eigen adjustment; sectors", "2007 {:.2f} % against {:.2f} %)", GMV,
       "hybrid_20_corr_252_no_eigen@2007", "hybrid_10_corr_252_no_eigen@2007"),
    CQ("against NLS 8.68 % and EWMA", "{:.2f}–{:.2f} % against NLS {:.2f} % and EWMA {:.2f} %", GMV,
       NAMED + "@2007", NAMED, "=nonlinear shrinkage", "=EWMA (hl 60) shrunk 50% to diagonal"),
    CQ("it is ahead of both shrinkage estimators", "({:.2f}–{:.2f} % against {:.2f}–{:.2f} %)", LO,
       NAMED, NAMED + "@2007", "=Ledoit-Wolf", "=nonlinear shrinkage"),
    # the speed section (benchmarks/bench_construction.py)
    Q(C, "`benchmarks/results/construction.json`, load average", "load average {:.1f} at the end", CB,
      "machine", "load_average_1min"),
    Q(C, "(one BLAS thread; simulated", "`N = {:,}`, `m = {}`", CB, "gmv", ("n", "m")),
    Q(C, "Unconstrained GMV from the operator at", "N = {:,}, m = {}: {:.1f} ms", CB, "gmv", ("n", "m", "cold_ms")),
    Q(C, "ms with the factorisation", "{:.2f} ms with the factorisation", CB, "gmv", "warm_ms"),
    Q(C, "cached (target", "(target ≤ {:.0f} ms", CB, "targets", "gmv_ms"),
    Q(C, "Long-only GMV at N = 5,000: the", "OSQP takes {:.2f} s", CB, "long_only", "n=5000", "factor_s"),
    Q(C, "(target 2 s: met),", "(target {:.0f} s: met), {:.0f}× faster than the dense problem ({:.0f} s)", CB, EACH,
      ("targets", "long_only_s"), ("long_only", "n=5000", "speedup"), ("long_only", "n=5000", "dense_s")),
    Q(C, "; the active set (`long_only_min_variance`)", "{:.0e}; the active set", CB, "long_only", "n=5000", "max_abs_weight_diff"),
    Q(C, "; the active set (`long_only_min_variance`)", "takes {:.3f} s", CB, "long_only", "n=5000", "active_set_s"),
    Q(C, "  the factor form to", "form to {:.0e}", CB, "long_only", "n=5000",
      "max_abs_diff_active_set_vs_factor"),
]
for _n, _fmt in [(300, ("{:.3f}", "{:.3f}", "{:.1f}×", "{:.0f}×")), (1000, ("{:.3f}", "{:.3f}", "{:.1f}×", "{:.0f}×")),
                 (2000, ("{:.3f}", "{:.2f}", "{:.0f}×", "{:.0f}×")), (5000, ("{:.2f}", "{:.1f}", "{:.0f}×", "{:,.0f}×"))]:
    QUOTES.append(Q(C, f"| {_n:,} | ", "| {:,} | " + " | ".join((_fmt[0], _fmt[1], _fmt[2], "{:.1e}", "{:.3f}", _fmt[3]))
                    + " |", CB, "long_only", f"n={_n}", ("n", "factor_s", "dense_s", "speedup", "max_abs_weight_diff",
                                                            "active_set_s", "speedup_active_set")))

# docs/guide/production.md: the update benchmark (benchmarks/bench_update.py)
QUOTES += [
    Q(PROD, "Measured by `benchmarks/bench_update.py` on the", "on the {:,} stocks × {:,} dates", UP, "panel",
      ("stocks", "dates")),
    Q(PROD, "(71 factors), everything in one run", "({} factors)", UP, "panel", "factors"),
    Q(PROD, "python benchmarks/bench_update.py` reruns it", "this run took {:.1f} minutes", UP, "run_seconds",
      scale=1 / 60),
    Q(PROD, "nearly idle apart from the run itself (load average", "load average {:.1f} at the start, {:.1f} before the in-memory updates, {:.1f} "
      "before the command-line runs and {:.1f} at the end, on {} cores", UP, EACH,
      ("conditions", "load_average_before", 0), ("conditions", "load_average_before_api_updates", 0),
      ("conditions", "load_average_before_cli_updates", 0), ("conditions", "load_average_after", 0),
      ("conditions", "cpus")),
    Q(PROD, "| full refit on", "| full refit on {:,} dates | {:.1f} |", UP, EACH, ("panel", "dates"), ("refit_seconds",)),
    Q(PROD, "median of 250 |", "median of {} | {:.3f} |", UP, "daily_updates", ("days", "median_seconds")),
    Q(PROD, "the same, 90th percentile / slowest (an eigen", "| {:.2f} / {:.2f} |", UP, "daily_updates",
      ("p90_seconds", "max_seconds")),
    Q(PROD, "consecutive daily updates |", "| {} consecutive daily updates | {:.1f} |", UP, "daily_updates",
      ("days", "total_seconds")),
    Q(PROD, "| building the state once", "| {:.1f} |", UP, "build_state_seconds"),
    Q(PROD, "(a branch: every array copied", "| {:.1f} |", UP, "api_update_with_model_copy_seconds"),
    Q(PROD, "in memory on a model an update returned", "median of {} consecutive days | {:.3f} |", UP,
      "api_update_seconds", ("n", "median")),
    Q(PROD, "the in-memory updates' 90th percentile", "| {:.3f} / {:.3f} |", UP, "api_update_seconds", ("p90", "max")),
    Q(PROD, "through the API about 1/", "through the API about 1/{:.0f}", UP, "api_update_seconds", "refit_over_median"),
    Q(PROD, "first-touches its memory", "first-touches its memory: {:.1f} s)", UP, "refit_first_in_process_seconds"),
    Q(PROD, "a new process, grown store, median of", "median of {} consecutive days | {:.1f} |", UP, "cli",
      ("runs", "next_update_seconds")),
    Q(PROD, "CPU seconds of those processes", "| {:.1f} |", UP, "cli", "next_update_cpu_seconds"),
    Q(PROD, "a model saved with its state (", "| {:.1f} |", UP, "cli", "update_of_a_saved_model_with_its_state_seconds"),
    Q(PROD, "first update of a store without a state", "| {:.1f} |", UP, "cli", "first_update_seconds_builds_state"),
    Q(PROD, "The 250 updated dates equal", "The {} updated dates", UP, "daily_updates", "days"),
    Q(PROD, "So one day costs about", "about 1/{:.0f} of a refit", UP, "daily_updates", "refit_over_median_update"),
]


# docs/guide/signal-research.md: examples/real_signal_research.py
SR, SRD = "docs/figures/real_signal_research.json", "docs/guide/signal-research.md"
BOOKS = ("raw", "neutral (size, industry)", "decile long-short (neutral)")
QUOTES += [
    Q(SRD, "Script: `python examples/real_signal_research.py`", "{} stocks", SR, "real", "n_stocks"),
    Q(SRD, "The factor returns run over", "**{:,} days, {} .. {}**", SR, "real", "books", "raw", ("n_days", "first", "last")),
    Q(SRD, "the neutral book's exposure to size and to each", "at most **{:.1e}**", SR, "real", "max_control_exposure"),
    Q(SRD, "Its mean one-way turnover", "turnover is {:.3f} per day", SR, "real", "mean_turnover"),
    Q(SRD, "negative alpha against Carhart (t", "(t = {:.2f} for the raw book)", SR, "real", "alpha",
      "raw | Carhart", "t_alpha", minus=True),
    # the R² ranges of the raw and neutral books (the entries holding the minimum and the maximum)
    Q(SRD, "FF5, the R² is", "the R² is {:.2f}–{:.2f}", SR, EACH, ("real", "alpha", "neutral (size, industry) | CAPM", "r2"),
      ("real", "alpha", "raw | FF5", "r2")),
    Q(SRD, "jumps to 0.79–0.89", "jumps to {:.2f}–{:.2f}", SR, EACH, ("real", "alpha", "neutral (size, industry) | Carhart", "r2"),
      ("real", "alpha", "raw | FF5+mom", "r2")),
    Q(SRD, "without** momentum, the R² is only", "only {:.2f}–{:.2f}", SR, EACH,
      ("real", "alpha", "neutral (size, industry) | model: market+styles ex momentum", "r2"),
      ("real", "alpha", "raw | model: market+styles ex momentum", "r2")),
    Q(SRD, "momentum style it is", "it is {:.2f}–{:.2f}", SR, EACH, ("real", "alpha", "raw | model: market+styles", "r2"),
      ("real", "alpha", "neutral (size, industry) | model: market+styles", "r2")),
    Q(SRD, "exposure on every day (", "every day ({:.1e})", SR, "real", "max_control_exposure"),
    Q(SRD, "**SMB exposure of", "**SMB exposure of {:.4f} (t = {:.2f})**, next to momentum {:.3f}", SR, EACH,
      ("real", "attribution_ff", "exposures", "smb"), ("real", "attribution_ff", "t", "smb"),
      ("real", "attribution_ff", "exposures", "mom")),
    Q(SRD, "(t = 34.4). On the model's own", "(t = {:.1f}).", SR, "real", "attribution_ff", "t", "mom"),
    Q(SRD, "(t = 34.4). On the model's own", "size exposure is {:.3f}", SR, "real", "attribution_model", "exposures", "size"),
    Q(SRD, "insignificant (t =", "(t = {:.2f}). The significant exposures there are volatility {:.2f}", SR, EACH,
      ("real", "attribution_model", "t", "size"), ("real", "attribution_model", "exposures", "volatility"), minus=True),
    Q(SRD, "(t = −8.9) and beta", "(t = {:.1f}) and beta {:.2f} (t = {:.1f})", SR, EACH,
      ("real", "attribution_model", "t", "volatility"), ("real", "attribution_model", "exposures", "beta"),
      ("real", "attribution_model", "t", "beta"), minus=True),
    Q(SRD, "`rm.simulate(n_stocks=", "n_stocks={}", SR, "simulated", "n_stocks"),
    Q(SRD, "n_days=1000, seed=0", "n_days={}", SR, "simulated", "n_days"),
    Q(SRD, "% per year**", "**{:.2f} % per year**", SR, "simulated", "spend_premium", scale=100),
    Q(SRD, "the factor returns cover", "cover {} days", SR, "simulated", "n_factor_days"),
    Q(SRD, "but with 680 days none", "with {} days", SR, "simulated", "n_factor_days"),
    Q(SRD, "The raw book has R²", "R² {:.2f} on market + size", SR, "simulated", "alpha", "raw | market+size", "r2"),
    Q(SRD, "Neutralising removes this", "(R² {:.4f})", SR, "simulated", "alpha", "neutral (size, industry) | market+size", "r2"),
]
for _label, _book in [("| raw (centred", "raw"), ("| neutral to size and", "neutral (size, industry)"),
                      ("| decile long-short of", "decile long-short (neutral)")]:
    QUOTES += [
        Q(SRD, _label, "| {:.2f} % | {:.2f} % |", SR, EACH, ("real", "books", _book, "mean_annual"),
          ("real", "books", _book, "vol_annual"), scale=100, minus=True),
        Q(SRD, _label, "% | {:.2f} |", SR, "real", "sharpe", _book, minus=True),
    ]
for _label, _list in [("| CAPM |", "CAPM"), ("| FF3 |", "FF3"), ("| Carhart |", "Carhart"), ("| FF5 |", "FF5"),
                      ("| FF5 + mom |", "FF5+mom"), ("| model: market + styles ex momentum |", "model: market+styles ex momentum"),
                      ("| model: market + styles |", "model: market+styles")]:
    for _book in BOOKS:
        QUOTES += [Q(SRD, _label, "| {:+.2f} % |", SR, "real", "alpha", f"{_book} | {_list}", "alpha_annual", scale=100, minus=True),
                   Q(SRD, _label, "% | {:+.2f} | {:.3f} |", SR, "real", "alpha", f"{_book} | {_list}", ("t_alpha", "r2"),
                     minus=True)]
for _label, _list in [("| market |", "market"), ("| market + size |", "market+size"), ("| market + styles |", "market+styles"),
                      ("| true factors |", "true factors")]:
    for _book, _fmt in zip(BOOKS, ("{:.2f}", "{:.2f}", "{:.1f}")):
        QUOTES += [Q(SRD, _label, f"| {_fmt} % (", SR, "simulated", "alpha", f"{_book} | {_list}", "alpha_annual", scale=100),
                   Q(SRD, _label, "% ({:.2f}) |", SR, "simulated", "alpha", f"{_book} | {_list}", "t_alpha")]


# construction.md: the named setting's table and prose, and the regime response (examples/regime_response.py)
RG = "examples/results/regime_response.json"
SIX = ("gmv 2010-2016", "gmv 2010-2012", "gmv 2013-2016", "long-only 2010-2016", "long-only 2010-2012", "long-only 2013-2016")
YEARS = [str(year) for year in range(2010, 2017)]
for _row, _label in [("| 2007 |", NAMED + "@2007"), ("| 2009 |", NAMED), ("| Ledoit–Wolf |", "=Ledoit-Wolf")]:
    _paths = sum((V(field, _label) for field in SIX), ())
    QUOTES.append(Q(C, _row, " | ".join(["{:.2f}"] * 6) + " |", CS, EACH, *_paths, scale=100))
    if not _label.startswith("="):
        QUOTES.append(Q(C, _row, "| {:.2f} | {:.2f} | " + " ".join(["{:.2f}"] * 7) + " |", CS, EACH,
                        ("variants", _label, "bias", "random", "median_bias"),
                        ("variants", _label, "bias", "optimised", "median_bias"),
                        *[("variants", _label, "bias", "yearly_random", year) for year in YEARS]))
QUOTES += [
    CQ("half except long-only 2013-2016 from 2007", "({:.2f} % against {:.2f} %)", "long-only 2013-2016",
       NAMED + "@2007", "=Ledoit-Wolf"),
    Q(C, "year in [0.9, 1.1] (2011", "(2011 {:.2f}, 2012 {:.2f};", CS, EACH, ("variants", NAMED + "@2007", "bias",
      "yearly_random", "2011"), ("variants", NAMED + "@2007", "bias", "yearly_random", "2012")),
    Q(C, "forecasts, 0.66, a burn-in", "forecasts, {:.2f}, a burn-in artefact that the 2007 start does not show: {:.2f})",
      CS, EACH, ("variants", NAMED, "bias", "yearly_random", "2010"), ("variants", NAMED + "@2007", "bias", "yearly_random", "2010")),
    CQ("(0.72–0.74 % against", "({:.2f}–{:.2f} % against {:.2f}–{:.2f} %", "alpha vol", NAMED + "@2007", NAMED,
       "=EWMA (hl 60) shrunk 50% to diagonal", "=OAS"),
]
# construction.md: the sampling spread of one year's random bias (examples/yearly_bias_noise.py)
YB = "examples/results/yearly_bias_noise.json"
QUOTES += [
    Q(C, "In 2011 the statistic's bootstrap", "standard error is {:.3f} and its 95 % range {:.3f}–{:.3f}", YB, EACH,
      ("years", "2011", "bootstrap_se"), ("years", "2011", "bootstrap_95", 0), ("years", "2011", "bootstrap_95", 1)),
    Q(C, "2012 it is 0.", "2012 it is {:.3f} and {:.3f}–{:.3f}", YB, EACH, ("years", "2012", "bootstrap_se"),
      ("years", "2012", "bootstrap_95", 0), ("years", "2012", "bootstrap_95", 1)),
    Q(C, "the calm years' kurtosis (", "kurtosis ({:.2f}, 2013–2014), a chance of {:.2f} in", YB, EACH, ("calm_kurtosis",),
      ("years", "2011", "outside_chance_calm_kurtosis")),
    Q(C, "bootstrap's standard error, a chance", "a chance of {:.2f} in 2011", YB, "years", "2011", "outside_chance_bootstrap"),
    Q(C, "All seven years would then land", "a chance between {:.2f} and {:.2f}", YB, EACH,
      ("chance_all_years_inside_if_calibrated", "bootstrap"), ("chance_all_years_inside_if_calibrated", "calm_kurtosis")),
    Q(C, "Two or more years outside, as here", "has a chance between {:.2f} and {:.2f}", YB, EACH,
      ("chance_two_or_more_years_outside_if_calibrated", "calm_kurtosis"),
      ("chance_two_or_more_years_outside_if_calibrated", "bootstrap")),
]


def test_every_year_bootstrap_range_contains_one() -> None:
    """The guide's claim: each year's 95 % bootstrap range of the random bias contains 1."""
    years = json.loads((ROOT / YB).read_text())["years"]
    assert len(years) == 7
    assert all(lo <= 1.0 <= hi for lo, hi in (v["bootstrap_95"] for v in years.values()))


_DEFAULT, _FAST, _LONG = "default (vol 84, VRA 42)", "vol 42, VRA 21", "horizon='long' (vol 252, VRA 168)"
_NAMED_RG, _OFF = "FactorRiskModel.for_construction()", "vol 42, VRA 21, eigen adjustment off"
EVENTS = ("flash crash", "US downgrade", "China sell-off")


def RQ(line: str, text: str, *paths: tuple) -> Quote:  # noqa: N802
    """Regime-response figures: each path is (setting, event, field) or (setting, "yearly_random_bias", year)."""
    return Q(C, line, text, RG, EACH, *[("settings", *path) if path[1] == "yearly_random_bias"
                                         else ("settings", path[0], "events", *path[1:]) for path in paths])


QUOTES += [
    RQ("followed in 3 days instead of 11", "followed in {} days instead of {}", (_FAST, "US downgrade", "catch_up_days"),
       (_DEFAULT, "US downgrade", "catch_up_days")),
    RQ("The default (vol 84, VRA 42) takes", "takes {}, {} and {} days", *[(_DEFAULT, e, "catch_up_days") for e in EVENTS]),
    RQ("under-forecasts the 63 days after the onset", "(bias {:.2f}–{:.2f})", (_DEFAULT, "China sell-off", "bias_0_63"),
       (_DEFAULT, "US downgrade", "bias_0_63")),
    RQ("is slower still (", "({} days after the 2011 downgrade, bias {:.2f})", (_LONG, "US downgrade", "catch_up_days"),
       (_LONG, "US downgrade", "bias_0_63")),
    RQ("with VRA 21 follows in", "follows in {}, {} and {} days (bias {:.2f}–{:.2f})",
       *[(_FAST, e, "catch_up_days") for e in EVENTS], (_FAST, "China sell-off", "bias_0_63"), (_FAST, "flash crash", "bias_0_63")),
    # over-forecast days of the three fastest settings (min: vol 42, VRA 21; max: the named setting) and of the default
    RQ("of the 126 days (", "on {}–{} of the 126 days ({}–{} with the default)", (_FAST, "China sell-off", "over_days"),
       (_NAMED_RG, "flash crash", "over_days"), (_DEFAULT, "China sell-off", "over_days"), (_DEFAULT, "US downgrade", "over_days")),
    RQ("and 2012 (the calm after it)", "{:.2f}–{:.2f} and 2012 (the calm after it) {:.2f}–{:.2f}",
       (_OFF, "yearly_random_bias", "2011"), (_FAST, "yearly_random_bias", "2011"),
       (_OFF, "yearly_random_bias", "2012"), (_FAST, "yearly_random_bias", "2012")),
    RQ("is inside except 2012 at", "except 2012 at {:.3f} (the JSON's {:.4f}; 2016 is {:.3f})",
       *[("vol 21, VRA 21, eigen adjustment off, standardised corr", "yearly_random_bias", y)
         for y in ("2012", "2012", "2016")]),
    RQ("(last row:", "(last row: {}, {} and {} days)", *[(_NAMED_RG, e, "catch_up_days") for e in EVENTS]),
]


QUOTES += [
    Q(C, "random-portfolio bias from 2007 narrows", "narrows from {:.2f}–{:.2f} to {:.2f}–{:.2f}", CS, EACH,
      *[("variants", name, "bias", "yearly_random", end) for name in ("hybrid_10_no_eigen_corr_std@2007", NAMED + "@2007")
        for end in ("min", "max")]),
    CQ("with the EWMA (10.12 %)", "with the EWMA ({:.2f} %)", LO, "=EWMA (hl 60) shrunk 50% to diagonal"),
    CQ("it realises (bias", "(bias {:.1f}–{:.1f})", "gmv bias", "=EWMA (hl 60) shrunk 50% to diagonal", "=OAS", scale=1),
    CQ("it realises (bias", "GMV bias is {:.2f}–{:.2f}", "gmv bias", NAMED + "@2007", NAMED, scale=1),
]


# docs/guide/portfolio-risk.md: the prose (its tables: test_portfolio_risk_tables_match_their_json)
PRD = "docs/guide/portfolio-risk.md"
VARIANTS = ("(a) raw", "(b) +eigen", "(c) +VRA", "(d) +shrink (full)", "(e) full, sectors as industries",
            "(f) full, thin industries pooled")


def T(variant: str, family: str, field: str) -> tuple:  # noqa: N802
    return ("table", f"{variant} | {family}", field)


A, B, CV, D, E, F = VARIANTS
QUOTES += [
    Q(PRD, "Script: `python examples/real_risk_model.py`", "Data: {} stocks", RISK, "n_stocks"),
    Q(PRD, "Script: `python examples/real_risk_model.py`", "load average {:.1f} at the start", RISK, "load_average", "before",
      0),
    Q(PRD, "plus the six styles above; mean cross-sectional", "R² {:.3f}", RISK, "mean_r2"),
    Q(PRD, "daily outcomes, 2009-01-02", "**{:,} daily outcomes, 2009-01-02 .. 2016-12-30**", RISK, "n_outcomes"),
    Q(PRD, "band **0.968 .. 1.032**", "band **{:.3f} .. {:.3f}**", RISK, "band", (0, 1)),
    Q(PRD, "Families: 100 random long-only", "Families: {} random long-only portfolios, {} optimised", RISK, "settings",
      ("n_random", "n_optimised")),
    Q(PRD, "under-predict their risk by", "(only {:.0f} % of them", RISK, *T(A, "optimised", "share_inside"), scale=100),
    Q(PRD, "bring the mean bias to", "to {:.3f} with", RISK, *T(D, "optimised", "mean_bias")),
    Q(PRD, "bring the mean bias to", "with {:.0f} % inside", RISK, *T(D, "optimised", "share_inside"), scale=100),
    Q(PRD, "cut MRAD from", "from {:.3f} to {:.3f}", RISK, EACH, T(A, "optimised", "mrad"), T(D, "optimised", "mrad")),
    Q(PRD, "(1.071 → 1.068)", "({:.3f} → {:.3f})", RISK, EACH, T(A, "optimised", "mean_bias"), T(B, "optimised", "mean_bias")),
    Q(PRD, "raw (1.007, all inside", "raw ({:.3f}, all inside the band) and end at {:.3f}", RISK, EACH,
      T(A, "random", "mean_bias"), T(D, "random", "mean_bias")),
    Q(PRD, "scale 1.2 moves them from", "from {:.3f} to {:.3f};", RISK, EACH, T(A, "random", "mean_bias"), T(B, "random", "mean_bias")),
    Q(PRD, "The factor VRA multiplier averages", "averages **{:.3f}**", RISK, "mean_vra_after_burn_in", CV, "factor"),
    Q(PRD, "lowers the factor forecasts these books", "({:.3f} → {:.3f})", RISK, EACH, T(B, "random", "mean_bias"),
      T(CV, "random", "mean_bias")),
    Q(PRD, "averages 1.037 (1.027 with shrinkage)", "averages {:.3f} ({:.3f} with shrinkage)", RISK, EACH,
      ("mean_vra_after_burn_in", CV, "specific"), ("mean_vra_after_burn_in", D, "specific")),
    Q(PRD, "the adjustments make it worse (mean", "(mean {:.3f} → {:.3f}; Real Estate {:.3f} → {:.3f})", RISK, EACH,
      T(A, "sector", "mean_bias"), T(D, "sector", "mean_bias"), ("sector_bias_raw", "Real Estate"),
      ("sector_bias_full", "Real Estate")),
    Q(PRD, "as independent specific risk.", "risk. {}", RISK, "factors_with_missing_returns_after_burn_in"),
    Q(PRD, "falls to 1.008 (9 of 11", "falls to {:.3f}", RISK, *T(E, "sector", "mean_bias")),
    Q(PRD, "falls to 1.008 (9 of 11", "from {:.3f} to {:.3f}.", RISK, EACH, ("sector_bias_full", "Real Estate"),
      ("sector_bias_sector_model", "Real Estate")),
]

PI = "pooled_industries"
QUOTES += [
    Q(PRD, "Bias per sector portfolio (band", "(band {:.3f} .. {:.3f}):", RISK, "band", (0, 1)),
    Q(PRD, "under-predict their risk by", "by {:.1f} % (only", RISK, *T(A, "optimised", "mean_bias"), offset=1, scale=100),
    # row (f): the pooling itself and the pooled model's figures, recorded by real_risk_model.py
    Q(PRD, "(`rm.pool_thin_industries`;", "(`rm.pool_thin_industries`; {:.0f} % of the", RISK, PI, "share_pooled", scale=100),
    Q(PRD, "stock-days pooled,", "pooled, {:.0f} % hosted)", RISK, PI, "share_hosted", scale=100),
    Q(PRD, "stock-days pooled,", "go from {:.3f} to {:.3f}", RISK, EACH, T(D, "sector", "mean_bias"),
      T(F, "sector", "mean_bias")),
    Q(PRD, "stock-days pooled,", "({} of {} inside", RISK, EACH, T(F, "sector", "share_inside"), ("sector_bias_pooled",),
      derive=lambda share, sectors: (round(share * len(sectors)), len(sectors))),
    Q(PRD, "the band instead of", "instead of {};", RISK, EACH, T(D, "sector", "share_inside"), ("sector_bias_full",),
      derive=lambda share, sectors: round(share * len(sectors))),
    Q(PRD, "the band instead of", "MRAD {:.3f} → {:.3f}, QLIKE {:.3f} → {:.3f}", RISK, EACH, T(D, "sector", "mrad"),
      T(F, "sector", "mrad"), T(D, "sector", "qlike"), T(F, "sector", "qlike")),
    Q(PRD, "the band instead of", "Energy {:.3f} → {:.3f}),", RISK, EACH, ("sector_bias_full", "Energy"),
      ("sector_bias_pooled", "Energy")),
    Q(PRD, "and the mean R² goes from", "goes from {:.3f} to {:.3f};", RISK, EACH, ("mean_r2",), (PI, "mean_r2")),
    Q(PRD, "and the mean R² goes from", "calibrated ({:.3f} → {:.3f})", RISK, EACH, T(D, "optimised", "mean_bias"),
      T(F, "optimised", "mean_bias")),
    Q(PRD, "random books move a little", "little ({:.3f} → {:.3f})", RISK, EACH, T(D, "random", "mean_bias"),
      T(F, "random", "mean_bias")),
    Q(PRD, "random books move a little", "Real Estate ({:.3f} → {:.3f}) and Materials", RISK, EACH,
      ("sector_bias_full", "Real Estate"), ("sector_bias_pooled", "Real Estate")),
    Q(PRD, "stay high: their REIT", "({:.3f} → {:.3f}) stay high", RISK, EACH, ("sector_bias_full", "Materials"),
      ("sector_bias_pooled", "Materials")),
    Q(PRD, "improves a little with VRA and shrinkage", "(sector {:.3f} → {:.3f}, optimised {:.3f} →", RISK, EACH,
      T(A, "sector", "qlike"), T(D, "sector", "qlike"), T(A, "optimised", "qlike")),
    Q(PRD, "  1.392).", "{:.3f}).", RISK, *T(D, "optimised", "qlike")),
]


# docs/guide/real-data-walkthrough.md: examples/short_history_tradeoff.py and examples/real_data_walkthrough.py
WT, SHT, WTD = "examples/results/real_data_walkthrough.json", "examples/results/short_history_tradeoff.json", \
    "docs/guide/real-data-walkthrough.md"
for _i, _row in enumerate(("| 2009-2012 |", "| 2013-2016 |")):
    QUOTES += [
        Q(WTD, _row, "| {} ({} days", SHT, "windows", _i, "default", ("first_forecast", "days_to_first_forecast")),
        Q(WTD, _row, "| {} ({} days) |", SHT, "windows", _i, "short", ("first_forecast", "days_to_first_forecast")),
        Q(WTD, _row, "| {:.3f} ({} outcomes, band {:.3f}..{:.3f}) | {:.3f} / {:.3f} |", SHT, EACH,
          *[("windows", _i, "short", "early", *k) for k in (("random", "mean_bias"), ("outcomes",), ("band", 0), ("band", 1))],
          ("windows", _i, "default", "common", "random", "mean_bias"), ("windows", _i, "short", "common", "random", "mean_bias")),
    ]
QUOTES += [
    Q(WTD, "early median bias is", "is {:.2f} and {:.2f}", SHT, EACH, ("windows", 0, "short", "early", "pure_factors", "median_bias"),
      ("windows", 1, "short", "early", "pure_factors", "median_bias")),
    Q(WTD, "(18 portfolios, 107 outcomes)", "({:.0f} portfolios, {} outcomes)", SHT, EACH,
      ("windows", 0, "short", "early", "pure_factors", "n"), ("windows", 0, "short", "early", "outcomes")),
    Q(WTD, "the book equally weighted over the", "over the {} stocks", WT, "n_portfolio"),
    Q(WTD, "the first date of the data is", "is {} and the first forecast {}, {} days later", WT,
      ("first_date", "first_forecast", "days_to_first_forecast")),
    Q(WTD, "so the last three of the four years", "--date {}`", WT, "one_year_in"),
    Q(WTD, "(398 days in the trade-off run above)", "({} days in the trade-off", SHT, "windows", 1, "default",
      "days_to_first_forecast"),
]


# docs/guide/auditing.md: the rest of the audit's figures (docs/figures/real_audit.json)
AUD = "docs/guide/auditing.md"
QUOTES += [
    Q(AUD, "  eigenvalues: 24.35", "eigenvalues: " + ", ".join(["{:.2f}"] * 8) + ".", AUDIT, EACH,
      *[("no_industry", "eigenvalues", i) for i in range(8)]),
    Q(AUD, "14.74. Mean R² over the window", "rises from {:.3f} to {:.3f}", AUDIT, "mean_r2_window",
      ("no_industry", "with_industries")),
    Q(AUD, "* Null edge 4.128;", "Null edge {:.3f}; **{} significant components** ({} without", AUDIT, EACH,
      ("with_industries", "null_edge"), ("with_industries", "n_significant"), ("no_industry", "n_significant")),
    Q(AUD, "  eigenvalues 14.74, 9.34", "eigenvalues " + ", ".join(["{:.2f}"] * 5) + ", …", AUDIT, EACH,
      *[("with_industries", "eigenvalues", i) for i in range(5)]),
    Q(AUD, "  eigenvalues 14.74, 9.34", "falls from {:.2f} to", AUDIT, "no_industry", "eigenvalues", 0),
    Q(AUD, "14.74. Mean R² over the window", "{:.2f}. Mean", AUDIT, "with_industries", "eigenvalues", 0),
    Q(AUD, "* **14 clusters** covering", "**{} clusters** covering {} stocks ({} without industries), {} flagged ({}",
      AUDIT, EACH, ("with_industries", "n_clusters"), ("with_industries", "n_clustered"), ("no_industry", "n_clustered"),
      ("with_industries", "n_flagged"), ("no_industry", "n_flagged")),
    Q(AUD, "Adjusted Rand index vs sector falls to", "falls to **{:.3f}**", AUDIT, "with_industries", "adjusted_rand"),
    Q(AUD, "components even goes up (15 → 17)", "({} → {})", AUDIT, EACH, ("no_industry", "n_significant"),
      ("with_industries", "n_significant")),
]
_WI = ("with_industries", "clusters")
QUOTES += [
    Q(AUD, "What remains flagged: Real Estate (", "Real Estate ({} names, purity {:.2f}, held-out bias {:.2f})", AUDIT,
      *_WI, "dominant_sector=Real Estate&flagged=True", ("size", "purity", "bias_out")),
    Q(AUD, "  Energy (15 names, purity", "Energy ({} names, purity {:.2f}, bias {:.2f}), Financials ({} names, {:.2f}, {:.2f})",
      AUDIT, EACH, *[(*_WI, f"dominant_sector={sector}&flagged=True", k) for sector in ("Energy", "Financials")
                     for k in ("size", "purity", "bias_out")]),
    Q(AUD, "Industrials groups (11 names each", "({} names each, bias {:.2f} and {:.2f})", AUDIT, EACH,
      (*_WI, "dominant_sector=Industrials&flagged=True&size=11&purity=0.454545", "size"),
      (*_WI, "dominant_sector=Industrials&flagged=True&size=11&purity=0.454545", "bias_out"),
      (*_WI, "dominant_sector=Industrials&flagged=True&size=11&purity=0.545455", "bias_out")),
    Q(AUD, "  group (9 names, bias", "group ({} names, bias {:.2f})", AUDIT, *_WI,
      "dominant_sector=Communication Services&flagged=True", ("size", "bias_out")),
]
for _sector, _size in [("Financials", 48), ("Health Care", 46), ("Utilities", 28), ("Real Estate", 25), ("Industrials", 22),
                       ("Information Technology", 21), ("Energy", 20)]:
    QUOTES.append(Q(AUD, f"| {_size} | ", "| {} | {:.3f} | {:.2f} | {:.2f} | {} |", AUDIT, "no_industry", "clusters",
                    f"dominant_sector={_sector}&size={_size}", ("size", "mean_corr", "bias_out", "purity", "dominant_sector")))


# docs/tutorial.md: the rest of its real-data and simulated figures
TUT = "docs/tutorial.md"
QUOTES += [
    Q(TUT, "under-predicts cap-weighted sector portfolios by", "by {:.1f} %**", RISK, *T(D, "sector", "mean_bias"),
      offset=1, scale=100),
    Q(TUT, "with sector factors the under-prediction falls to", "falls to {:.1f} %", RISK, *T(E, "sector", "mean_bias"),
      offset=1, scale=100),
    Q(TUT, "exposure 1.2e-16) still has", "exposure {:.1e})", SR, "real", "max_control_exposure"),
    Q(TUT, "exposure 1.2e-16) still has", "**{:.4f} (t = {:.2f})**", SR, EACH, ("real", "attribution_ff", "exposures", "smb"),
      ("real", "attribution_ff", "t", "smb")),
    Q(TUT, "In the larger simulated world of the example script", "({} × {:,}, a true", SR, "simulated", ("n_stocks", "n_days")),
    Q(TUT, "of 5.00 %/yr), the neutral", "of {:.2f} %/yr)", SR, "simulated", "spend_premium", scale=100),
    Q(TUT, "of 5.00 %/yr), the neutral", "alpha is {:.1f}–{:.1f} %/yr", SR, EACH,
      ("simulated", "alpha", "neutral (size, industry) | market+styles", "alpha_annual"),
      ("simulated", "alpha", "neutral (size, industry) | market+size", "alpha_annual"), scale=100),
    Q(TUT, "of 5.00 %/yr), the neutral", "t ≈ {:.1f}–{:.1f}", SR, EACH,
      ("simulated", "alpha", "neutral (size, industry) | market+styles", "t_alpha"),
      ("simulated", "alpha", "neutral (size, industry) | true factors", "t_alpha")),
    Q(TUT, "significant\" over 680 days", "over {} days", SR, "simulated", "n_factor_days"),
    Q(TUT, "real panel, 12-1 momentum has R²", "R² {:.2f}–{:.2f} against", SR, EACH,
      ("real", "alpha", "neutral (size, industry) | CAPM", "r2"), ("real", "alpha", "raw | FF5", "r2")),
    Q(TUT, "once the Fama–French momentum factor", "{:.2f}–{:.2f} once", SR, EACH,
      ("real", "alpha", "neutral (size, industry) | Carhart", "r2"), ("real", "alpha", "raw | FF5+mom", "r2")),
    # auditing.md's pointer to the risk-model page
    Q(AUD, "by 6.5 % on average with GICS industries", "by {:.1f} % on average", RISK, *T(D, "sector", "mean_bias"),
      offset=1, scale=100),
    Q(AUD, "by 6.5 % on average with GICS industries", "(up to {:.0f} % for Real Estate)", RISK, "sector_bias_full",
      "Real Estate", offset=1, scale=100),
]


# docs/benchmarks.md: the portfolio-risk table (bench_portfolio_risk.py, default threads and --threads 1)
BM = "docs/benchmarks.md"


# docs/benchmarks.md: distance to the machine's limits, the full fit (bench_speed_fit.py, issue 21)
BMF = "docs/benchmarks.md"
SF = "benchmarks/results/speed_fit.json"


def _sigma_f_row(label: str, name: str) -> list[Quote]:
    """The five columns every row of docs/benchmarks.md's Σ_f-levers table shares."""
    return [Q(BMF, f"| {label} |", fmt, SF, "results", f"name={name}", field)
            for fmt, field in (("{:,}", "n_eigh"), ("{:.2f}", "seconds"), ("{:.2f}", "user_seconds"),
                               ("{:.2f}", "system_seconds"), ("{:.2f}", "memory_ratio"))]


QUOTES += [
    Q(BMF, 'load average at the start of that run', '{}', SF, 'date'),
    Q(BMF, 'load average at the start of that run', '{:.1f}', SF, 'load_average', 'before', 0),
    Q(BMF, 'load average at the start of that run', '{:.1f}', SF, 'load_average', 'after', 0),
    Q(BMF, 'the two panel checks took', '{:.2f} s', SF, 'panel_checks', 'former_seconds'),
    Q(BMF, 'the two panel checks took', '{:.2f} CPU s', SF, 'panel_checks', 'former_user_cpu'),
    Q(BMF, 'former way and', '{:.2f} s', SF, 'panel_checks', 'new_seconds'),
    Q(BMF, 'former way and', '{:.2f} CPU s', SF, 'panel_checks', 'new_user_cpu'),
    Q(BMF, 'former way and', '{:.1f}× faster', SF, 'panel_checks', 'speedup_wall'),
    Q(BMF, 'with the former checks and', '{:.2f} s', SF, 'panel_checks', 'fit_former_seconds'),
    Q(BMF, 'with the former checks and', '{:.2f} s', SF, 'panel_checks', 'fit_new_seconds'),
    Q(BMF, 'with the former checks and', '{:.2f} and', SF, 'panel_checks', 'fit_former_user_cpu'),
    Q(BMF, 'with the former checks and', '{:.2f} user CPU s', SF, 'panel_checks', 'fit_new_user_cpu'),
    Q(BMF, 'checks save', '{:.2f} CPU s', SF, 'panel_checks', 'cpu_saved'),
    Q(BMF, 'Without any eigen adjustment the fit still takes', 'takes {:.2f} s and {:.2f} CPU s', SF, EACH,
      ('results', 'name=eigen_sims=0', 'seconds'), ('results', 'name=eigen_sims=0', 'user_seconds')),
    Q(BMF, 'Without any eigen adjustment the fit still takes', "{:.1f}× the", SF, 'results', 'name=eigen_sims=0',
      'seconds', derive=lambda s: s / 1.5),
    Q(BMF, "3 of the 71 eigenfactors (median", "{} of the {} eigenfactors (median {:.2f})",
      "benchmarks/results/experiments/eigen_control_variate.json", EACH, ("eigenfactors_with_gain_above_2",), ("m",),
      ("median_gain",)),
    Q(BMF, "row's 1.5 s and", "and {:.1f}× its CPU budget", SF, 'results', 'name=eigen_sims=0', 'user_seconds',
      derive=lambda u: u / 3.0),
    Q(BMF, 'Measured per CPU second in the same run', '{:.1f} GB/s', SF, 'limits', 'bandwidth_GBps'),
    Q(BMF, 'wall), a one-thread 1,024²', '{:.1f} GB/s wall', SF, 'limits', 'bandwidth_GBps_wall'),
    Q(BMF, 'wall), a one-thread 1,024²', '{:.1f} GFlop/s', SF, 'limits', 'peak_GFlops_per_core'),
    Q(BMF, 'on the two cores. The fit reads', '{:.1f} GFlop/s', SF, 'limits', 'peak_GFlops'),
    Q(BMF, 'on the two cores. The fit reads', '{:.2f} GB of inputs', SF, 'input_bytes', scale=1e-09),
    Q(BMF, 'its fitted arrays:', '{:.2f} GB', SF, 'roofline', 'bytes', scale=1e-09),
    Q(BMF, 'its fitted arrays:', '{:.2f} s at that bandwidth', SF, 'roofline', 'seconds_at_bandwidth'),
    Q(BMF, 'GFlop (regression', '{:.1f} GFlop', SF, 'roofline', 'flops', scale=1e-09),
    Q(BMF, 'GFlop (regression', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'regression', scale=1e-09),
    Q(BMF, 'GFlop (regression', '{:,} eigendecompositions', SF, 'results', 'name=current', 'n_eigh'),
    Q(BMF, 'GFlop (regression', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'sigma_f_eigh', scale=1e-09),
    Q(BMF, '; the formulas are in', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'sigma_f_gemm', scale=1e-09),
    Q(BMF, '; the formulas are in', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'specific', scale=1e-09),
    Q(BMF, '; the formulas are in', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'exposures', scale=1e-09),
    Q(BMF, '; the formulas are in', '{:.1f}', SF, 'roofline', 'flops_by_stage', 'sigma_f_ewma', scale=1e-09),
    Q(BMF, '`fit_flops`),', '{:.2f} s at peak', SF, 'roofline', 'seconds_at_peak_flops'),
    Q(BMF, '`fit_flops`),', '{:.2f} s', SF, 'roofline', 'roofline_seconds'),
    Q(BMF, 'of user CPU (and', '{:.1f} s', SF, 'results', 'name=current', 'user_seconds'),
    Q(BMF, 'of user CPU (and', '{:.1f} s', SF, 'results', 'name=current', 'system_seconds'),
    Q(BMF, 'the roofline on both cores', '{:.0f}× the roofline on both cores', SF, 'roofline', 'fit_cpu_over_roofline'),
    Q(BMF, 'user CPU seconds per stage, same process', '{:.2f}', SF, 'stages_current_user_cpu', 'panel_checks'),
    Q(BMF, 'which runs inside the exposures', '{:.2f}', SF, 'stages_current_user_cpu', 'check_fundamental_data'),
    Q(BMF, 'which runs inside the exposures', '{:.2f}', SF, 'stages_current_user_cpu', 'validate_panel'),
    Q(BMF, 'exposures with it', '{:.2f}', SF, 'stages_current_user_cpu', 'exposures'),
    Q(BMF, 'exposures with it', '{:.2f}', SF, 'stages_current_user_cpu', 'regression'),
    Q(BMF, 'exposures with it', '{:.2f}', SF, 'stages_current_user_cpu', 'sigma_f_ewma_newey_west'),
    Q(BMF, '(the Monte Carlo and the per-date rebuild)', '{:.2f}', SF, 'stages_current_user_cpu', 'sigma_f_eigen'),
    Q(BMF, '(the Monte Carlo and the per-date rebuild)', '{:.2f}', SF, 'stages_current_user_cpu', 'd_time_series'),
    Q(BMF, 'One 71 × 71 LAPACK `eigh` takes', '{:.2f}', SF, 'stages_current_user_cpu', 'd_cross_section'),
    Q(BMF, 'One 71 × 71 LAPACK `eigh` takes', '{:.2f}', SF, 'stages_current_user_cpu', 'd_vra'),
    Q(BMF, 'One 71 × 71 LAPACK `eigh` takes', '{:.2f}', SF, 'stages_current_user_cpu', 'd_final'),
    Q(BMF, 'ms of CPU,', '{:.2f} ms', SF, 'limits', 'eigh71_ms_cpu'),
    Q(BMF, 'ms of CPU,', '{:.0f}× a 71 × 71 `gemm`', SF, 'limits', 'eigh71_over_gemm71'),
    Q(BMF, 'ms of CPU,', '{:.1f} GFlop/s', SF, 'limits', 'eigh71_GFlops'),
    Q(BMF, "numpy's `eigh` over the stacked", '{:.2f} ms', SF, 'limits', 'eigh71_numpy_stacked_ms_cpu'),
    Q(BMF, 'the per-matrix kernel', '{:.2f}× the per-matrix kernel', SF, 'limits', 'eigh71_numpy_stacked_over_kernel'),
    *_sigma_f_row('current (100 draws every 63 dates)', 'current'),
    *_sigma_f_row('former panel checks', 'former panel checks'),
    *_sigma_f_row('50 draws', 'eigen_sims=50'),
    Q(BMF, '| 50 draws |', '{:.1e}', SF, 'results', 'name=eigen_sims=50', 'sigma_f_max_rel_diff'),
    Q(BMF, '| 50 draws |', '{:.1e}', SF, 'results', 'name=eigen_sims=50', 'sigma_f_median_rel_diff'),
    *_sigma_f_row('no eigen adjustment', 'eigen_sims=0'),
    Q(BMF, '| no eigen adjustment |', '{:.2f}', SF, 'results', 'name=eigen_sims=0', 'sigma_f_max_rel_diff'),
    Q(BMF, '| no eigen adjustment |', '{:.2f}', SF, 'results', 'name=eigen_sims=0', 'sigma_f_median_rel_diff'),
    Q(BMF, 'of the top eigenvalue (median;', '{:.2%}', SF, 'warm_start', 'offdiag_over_top_median'),
    Q(BMF, 'of the top eigenvalue (median;', '{:.2%}', SF, 'warm_start', 'offdiag_over_top_p90'),
    Q(BMF, 'of the 2,485 pairs', '{:.0f}', SF, 'warm_start', 'strong_pairs_median'),
    Q(BMF, 'of the 2,485 pairs', '{:.0f}', SF, 'warm_start', 'strong_pairs_max'),
    Q(BMF, 'and the largest', '{:.1f}', SF, 'warm_start', 'max_angle_ratio_median'),
    Q(BMF, 'there (numba, in the benchmark) needs', '{:.0f} sweeps', SF, 'warm_start', 'jacobi_sweeps_median'),
    Q(BMF, 'there (numba, in the benchmark) needs', '{:.0f} at most', SF, 'warm_start', 'jacobi_sweeps_max'),
    Q(BMF, 'there (numba, in the benchmark) needs', '{:.1f}×', SF, 'warm_start', 'jacobi_jacobi_over_lapack'),
    Q(BMF, 'agreeing with it', '{:.1e}', SF, 'warm_start', 'jacobi_rebuild_max_rel_diff'),
]
for _label, _src, _task, _p, (_t, _r, _m) in [
    ("| build the operator vs form Σ |", PR, "build", 0, ("| {:.1f} ms | {:.0f} ms |", "| {:.1f}× |", "| {:.0f} MB | {:.0f} MB |")),
    ("| decompose (Σ already formed) |", PR, "decompose", 1, ("| {:.2f} ms | {:.1f} ms |", "| {:.1f}× |", "| {:.1f} MB | {:.1f} MB |")),
    ("| form + decompose |", PR, "form+decompose", 1, ("| {:.2f} ms | {:.0f} ms |", "| {:.0f}× |", "| {:.1f} MB | {:.0f} MB |")),
    ("| decompose, every part materialised |", PR, "decompose", 1000,
     ("| {:.1f} ms | {:.0f} ms |", "| {:.1f}× |", "| {:.0f} MB | {:.0f} MB |")),
    ("| the same on one core (`--threads 1`) |", PR1, "decompose", 1000,
     ("| {:.1f} ms | {:.0f} ms |", "| {:.1f}× |", "| {:.0f} MB | {:.0f} MB |")),
    ("| solve (factorisation cached) |", PR, "solve", 1, ("| {:.2f} ms | {:.0f} ms |", "| {:.0f}× |", "| {:.1f} MB | {:.1f} MB |")),
    ("| set-up + solve |", PR, "setup+solve", 1, ("| {:.1f} ms | {:,.0f} ms |", "| {:.0f}× |", "| {:.0f} MB | {:.0f} MB |")),
]:
    _row = ("rows", f"task={_task}&n_portfolios={_p}")
    QUOTES += [Q(BM, _label, _t, _src, *_row, ("structured_s", "dense_s"), scale=1e3),
               Q(BM, _label, _r, _src, *_row, "speedup"),
               Q(BM, _label, _m, _src, *_row, ("structured_peak_bytes", "dense_peak_bytes"), scale=1e-6)]

PRD_ = "benchmarks/results/portfolio_risk_dense.json"
QUOTES += [
    Q(BM, "the structure of a fitted model; load average", "load average {:.1f} at the start", PR, "conditions",
      "load_average_before", 0),
    Q(BM, "(2.7 for the `--threads 1` run), best of", "({:.1f} for the `--threads 1` run), best of {}", PR1, EACH,
      ("conditions", "load_average_before", 0), ("settings", "repeat")),
    Q(BM, "Both paths agree to", "agree to {:.1e} (relative)", PR, "rows", "task=solve&n_portfolios=1", "max_rel_diff"),
    Q(BM, "decomposition is 26.9× the dense path", "is {:.1f}× the dense path on two cores", PR,
      "rows", "task=decompose&n_portfolios=1000", "speedup"),
    Q(BM, "decomposition is 26.9× the dense path", "two cores ({:.1f} ms)", PR, "rows", "task=decompose&n_portfolios=1000",
      "structured_s", scale=1e3),
    Q(BM, "decomposition is 26.9× the dense path", "and {:.1f}× on one", PR1, "rows", "task=decompose&n_portfolios=1000",
      "speedup"),
    Q(BM, "decomposition is 26.9× the dense path", "on one ({:.1f} ms)", PR1, "rows", "task=decompose&n_portfolios=1000",
      "structured_s", scale=1e3),
    Q(BM, "two GEMMs and a blocked pass:", "pass: {:.0f} ms", PRD_, "rows", "task=decompose&n_portfolios=1000",
      "structured_s", scale=1e3),
    Q(BM, "two GEMMs and a blocked pass:", "ms, {:.1f}×", PRD_, "rows", "task=decompose&n_portfolios=1000", "speedup"),
]

QUOTES += [
    Q(BM, "100-name block; load average", "load average {:.1f} at the start, {:.1f} at the end", AU, EACH,
      ("conditions", "load_average_before", 0), ("conditions", "load_average_after", 0)),
    Q(BM, "at the end, best of", "best of {}):", AU, "conditions", "repeat"),
    Q(BM, "| 504 | ", "| {:,} | {:.2f} s | {:.2f} s | {:.1f} s | {:.0f}× | {:.2f} × residuals | {:.1f} × residuals |", AU,
      "rows", 0, ("n_dates", "audit_seconds", "spectrum_seconds", "dense_seconds", "dense_over_audit_time",
                  "audit_peak_x_matrix", "dense_peak_x_matrix")),
    Q(BM, "| 2,520 | ", "| {:,} | {:.2f} s | {:.2f} s | {:.1f} s | {:.1f}× | {:.2f} × residuals | {:.1f} × residuals |", AU,
      "rows", 1, ("n_dates", "audit_seconds", "spectrum_seconds", "dense_seconds", "dense_over_audit_time",
                  "audit_peak_x_matrix", "dense_peak_x_matrix")),
    Q(BM, "The eigenvalues agree with the dense path to", "to {:.0e} ({} dates", AU, "rows", 0,
      ("max_abs_eigenvalue_diff_vs_dense", "n_dates")),
    Q(BM, "dates: float32 Gram start refined", "({:,} dates: float32", AU, "rows", 1, "n_dates"),
    Q(BM, "The eigenvalues agree with the dense path to", "and {:.0e}", AU, "rows", 1, "max_abs_eigenvalue_diff_vs_dense"),
    Q(BM, "surrogate null is a", "The {}-surrogate null", AU, "rows", 1, "n_null"),
    Q(R, AU_ROW, "load {:.1f}", AU, "conditions", "load_average_before", 0),
    Q(R, AU_ROW, "({:.1f} at the end)", AU, "conditions", "load_average_after", 0),
]

# docs/benchmarks.md: the audit and decomposition against the machine's limits (bench_speed_audit.py, issue 21)
SA = "benchmarks/results/speed_audit.json"
_NC = ("audit", "null_convergence")
_BD = ("decomposition", "breakdown")
QUOTES += [
    Q(BM, "The speed-audit run's load average", "load average: {:.1f} before and {:.1f} after", SA, EACH,
      ("load_average_before", 0), ("load_average_after", 0)),
    Q(BM, "Limits measured in the speed-audit run", "copy bandwidth {:.1f} GB/s ({:.1f} GB/s per CPU second)", SA, EACH,
      ("limits", "bandwidth_gb_s"), ("limits", "bandwidth_gb_s_per_cpu_second")),
    Q(BM, "GFLOP/s (two cores: the larger of the all-thread figure and", "{:.1f} GFLOP/s and sgemm {:.1f} GFLOP/s", SA,
      EACH, ("limits", "dgemm_gflop_s"), ("limits", "sgemm_gflop_s")),
    Q(BM, "twice the one-thread figure,", "figure, {:.1f} and {:.1f} GFLOP/s)", SA, EACH,
      ("limits", "dgemm_gflop_s_one_thread"), ("limits", "sgemm_gflop_s_one_thread")),
    Q(BM, "loop on BLAS's threads, interleaved: null", "null {:.2f} s → {:.2f} s (best of {})", SA, EACH,
      ("audit", "null", "former", "best_s"), ("audit", "null", "new", "best_s"), ("audit", "null", "new", "runs")),
    Q(BM, "The pooled null equals the", "to end {:.2f} s → {:.2f} s, CPU seconds {:.1f} → {:.1f}", SA, EACH,
      ("audit", "audit", "former", "best_s"), ("audit", "audit", "new", "best_s"),
      ("audit", "audit", "former", "cpu_s"), ("audit", "audit", "new", "cpu_s")),
    Q(BM, "the significant components", "components {} and {}, the clusters {} and {}", SA, EACH,
      ("audit", "agreement", "n_significant", 0), ("audit", "agreement", "n_significant", 1),
      ("audit", "agreement", "n_clusters", 0), ("audit", "agreement", "n_clusters", 1)),
    Q(BM, "spectrum alone took", "took {:.2f} s in this run", SA, "audit", "spectrum_s"),
    Q(BM, "How many Lanczos steps the null needs", "first {} surrogates", SA, *_NC, "surrogates"),
    Q(BM, "(the plan and start vectors of the null timed above)", "for {} steps", SA, *_NC, "max_steps"),
    Q(BM, "Tracy-Widom units σ. Against those converged", "last 10 steps is {:.1e} Tracy-Widom", SA, *_NC,
      "converged_change_tw"),
    Q(BM, "steps the median error is", "default {} steps the median error is {:.1e} σ and the edge error {:.1e} σ", SA,
      EACH, (*_NC, "default_steps"), (*_NC, "by_steps", "steps=47", "median_abs_error_tw"),
      (*_NC, "by_steps", "steps=47", "edge_error_tw"), minus=True),
    Q(BM, "one slow surrogate", "is still {:.2f} σ off", SA, *_NC, "by_steps", "steps=47", "worst_error_tw", minus=True),
    Q(BM, "hold from", "hold from {} steps on; every surrogate within 0.25 σ only from {}", SA, EACH,
      (*_NC, "fewest_steps_median_and_edge"), (*_NC, "fewest_steps_all_bounds")),
    Q(BM, "The null's flops alone", "take {:.2f} s at the default", SA, *_NC, "null_floor_s_default_steps"),
    Q(BM, "at the fewest steps the median and edge allow", "({:.2f} s at the fewest", SA, *_NC,
      "null_floor_s_fewest_central"),
    Q(BM, "matrix alone", "matrix alone {:.2f} s", SA, *_NC, "spectrum_gram_floor_s"),
    Q(BM, "at 0.53× the in-memory throughput, and with", "at {:.2f}× the in-memory",
      "benchmarks/results/experiments/scale_quiet_rerun.json", "results", 2, "ratio_to_in_memory"),
    Q(BM, "less; the benchmark's in-process worker has no nanny) at", "at {:.2f}×: no gain",
      "benchmarks/results/experiments/scale_malloc_trim.json", "results", 2, "ratio_to_in_memory"),
    Q(BM, "large fit's spill reads", "took {:.1f} and", "benchmarks/results/experiments/scale_quiet_rerun.json",
      "task_thread_seconds_large_fit", "(disk-read)"),
    Q(BM, "large fit's spill reads", "and {:.1f} thread-seconds", "benchmarks/results/experiments/scale_malloc_trim.json",
      "task_thread_seconds_large_fit", "(disk-read)"),
    Q(BM, "cores together copy", "copy {:.1f} GB/s against {:.1f} GB/s on one", SA, EACH,
      ("limits", "bandwidth_gb_s_all_cores"), ("limits", "bandwidth_gb_s_one_thread")),
    Q(BM, "with the specific variance fused into the first sweep take", "take {:.2f}× the kernel's way",
      "benchmarks/results/experiments/decomposition_row_sums.json", "fused_over_kernel_way"),
    Q(BM, "sorted by group take", "take {:.2f}× the scatter", "benchmarks/results/experiments/decomposition_row_sums.json",
      "gather_over_scatter"),
    Q(BM, "at peak (the roofline table below). The 0.7 s target", "take {:.2f} s at peak", SA, "audit", "roofline",
      "workload=audit end to end", "flop_time_s"),
    Q(BM, "at this run's", "take {:.0f} ms at this run's", SA, "decomposition", "roofline",
      "workload=decomposition, 1,000 portfolios", "memory_time_s", scale=1e3),
    Q(BM, "portfolios × 5,000 stocks.** Unchanged:", "Unchanged: {:.1f} ms best", SA, "decomposition", "current",
      "best_s", scale=1e3),
    Q(BM, "ms median of", "{:.1f} ms median", SA, "decomposition", "current", "median_s", scale=1e3),
    Q(BM, "ms median of", "of {} runs", SA, "decomposition", "current", "runs"),
    Q(BM, "with fresh outputs as a call makes them", "faulted in {:.1f} ms, with fresh outputs as a call makes them {:.1f} ms",
      SA, *_BD, ("kernel_one_thread_cpu_ms", "kernel_fresh_outputs_one_thread_cpu_ms")),
    Q(BM, "for a fill of touched ones", "costs {:.1f} ms against {:.1f} ms", SA, *_BD,
      ("fresh_outputs_fill_cpu_ms", "touched_outputs_fill_cpu_ms")),
]
for _label, _part, _measured, _scale in [
    ("| audit null (float32 GEMMs) |", "audit", "| {:.2f} s |", 1.0),
    ("| audit spectrum (float32 Gram + float64 refinement) |", "audit", "| {:.2f} s |", 1.0),
    ("| audit end to end |", "audit", "| {:.2f} s |", 1.0),
    ("| decomposition, 1,000 portfolios |", "decomposition", "| {:.1f} ms |", 1e3),
]:
    _line_key = (_part, "roofline", "workload=" + _label.strip("| "))
    QUOTES += [Q(BM, _label, _measured, SA, *_line_key, "measured_s", scale=_scale),
               Q(BM, _label, "| {:.1f} GFLOP | {:.2f} GB |", SA, *_line_key, ("flops", "bytes"), scale=1e-9),
               Q(BM, _label, "| {:.0f} ms | {:.0f} ms |", SA, *_line_key, ("flop_time_s", "memory_time_s"), scale=1e3),
               Q(BM, _label, "| {:.1f}× |", SA, *_line_key, "x_limit")]


# docs/guide/model-comparison.md: the prose (its tables: test_model_comparison_tables_match_their_json)
MC, MCD = "docs/figures/model_comparison.json", "docs/guide/model-comparison.md"
_MODELS = ("fundamental", "hybrid", "time-series", "statistical")


def MB(model: str, family: str, field: str) -> tuple:  # noqa: N802
    return ("bias", f"{model} | {family}", field)


def MP(model: str, field: str) -> tuple:  # noqa: N802
    return ("precision", "table", model, field)


def _under(*biases: float) -> tuple:
    """Biases as the under-forecast in %, the smallest and the largest."""
    return ((min(biases) - 1) * 100, (max(biases) - 1) * 100)


def _span(*values: float) -> tuple:
    return (min(values), max(values))


QUOTES += [
    Q(MCD, "95% band **0.967", "band **{:.3f} .. {:.3f}**", MC, "band", (0, 1)),
    Q(MCD, "it has mean bias 1.012, all", "mean bias {:.3f}, all {} inside the band and MRAD {:.3f}", MC, EACH,
      MB("time-series", "random", "mean_bias"), MB("time-series", "random", "n"), MB("time-series", "random", "mrad")),
    Q(MCD, "under-forecast these books by", "by {:.0f}–{:.0f}%, with none", MC, EACH,
      MB("fundamental", "random", "mean_bias"), MB("hybrid", "random", "mean_bias"), derive=_under),
    Q(MCD, "the band, and the statistical model by", "model by {:.1f}%.", MC, *MB("statistical", "random", "mean_bias"),
      offset=1, scale=100),
    Q(MCD, "factor: mkt_rf 1.032 < pc1", "mkt_rf {:.3f} < pc1 {:.3f}", MC, EACH,
      ("diagnostics", "time-series", "first_factor_bias"), ("diagnostics", "statistical", "first_factor_bias")),
    Q(MCD, "< market 1.075 < hybrid market", "< market {:.3f} < hybrid market {:.3f}.", MC, EACH,
      ("diagnostics", "fundamental", "first_factor_bias"), ("diagnostics", "hybrid", "first_factor_bias")),
    Q(MCD, "averages below 1 (", "below 1 ({:.3f}, {:.3f})", MC, EACH, ("diagnostics", "fundamental", "factor_vra"),
      ("diagnostics", "hybrid", "factor_vra")),
    Q(MCD, "With 6 or 4 factors it averages", "averages {:.3f} and {:.3f}.", MC, EACH,
      ("diagnostics", "time-series", "factor_vra"), ("diagnostics", "statistical", "factor_vra")),
    Q(MCD, "All four under-forecast by", "by {:.0f}–{:.0f}%.", MC, EACH, *[MB(m, "sector", "mean_bias") for m in _MODELS],
      derive=_under),
    Q(MCD, "help only at the margin (", "margin ({:.3f} → {:.3f})", MC, EACH, MB("fundamental", "sector", "mean_bias"),
      MB("hybrid", "sector", "mean_bias")),
    # "there": portfolio-risk.md's row (e), the full model with the 11 sectors as industries
    Q(MCD, "the fundamental model's sector bias falls to", "falls to {:.3f} there", RISK,
      "table", "(e) full, sectors as industries | sector", "mean_bias"),
    # the rolling-bias figure's median random book: its largest bias in 2010-2012, its smallest in 2012-2013
    Q(MCD, "(the time-series model's by up to", "{:.0f}–{:.0f}% in 2010–2012 (the time-series model's by up to {:.0f}%)", MC,
      EACH, *[("rolling_bias_random_median", m, "max_2010_2012") for m in ("fundamental", "hybrid", "statistical",
                                                                        "time-series")],
      derive=lambda *top: ((min(top[:3]) - 1) * 100, (max(top[:3]) - 1) * 100, (top[3] - 1) * 100)),
    Q(MCD, "over-forecast in the calm of 2012–2013", "down to {:.2f}–{:.2f})", MC, EACH,
      *[("rolling_bias_random_median", m, "min_2012_2013") for m in _MODELS], derive=_span),
    Q(MCD, "√(2/N) =", "√(2/N) = {:.3f}.", MC, "mahalanobis_gaussian_sd"),
    Q(MCD, "against 0.066, and the medians", "against {:.3f}, and", MC, "mahalanobis_gaussian_sd"),
    Q(MCD, "time-series model is worst (", "worst ({:.3f}) and the statistical model next ({:.3f})", MC, EACH,
      MB("time-series", "sector", "mean_bias"), MB("statistical", "sector", "mean_bias")),
    Q(MCD, "is between 0.981 and", "between {:.3f} and {:.3f}", MC, EACH, *[MB(m, "optimised", "mean_bias") for m in _MODELS],
      derive=_span),
    Q(MCD, "is between 0.981 and", "MRAD is between {:.3f} and {:.3f}", MC, EACH,
      *[MB(m, "optimised", "mrad") for m in _MODELS], derive=_span),
    Q(MCD, "The statistical model is closest (", "closest ({:.3f}, {:.0f}% inside)", MC, EACH,
      MB("statistical", "optimised", "mean_bias"), MB("statistical", "optimised", "share_inside"),
      derive=lambda bias, share: (bias, share * 100)),
    Q(MCD, "the only one that over-forecasts (", "over-forecasts ({:.3f})", MC, *MB("time-series", "optimised", "mean_bias")),
    Q(MCD, "are right on average (", "The fundamental model's {} are right on average ({:.3f}), but only {:.0f}%", MC, EACH,
      MB("fundamental", "pure_factors", "n"), MB("fundamental", "pure_factors", "mean_bias"),
      MB("fundamental", "pure_factors", "share_inside"), derive=lambda n, bias, share: (n, bias, share * 100)),
    Q(MCD, "volatility** (", "({:.1f}% against {:.1f}% for", MC, EACH, MP("statistical", "realised_vol"),
      MP("fundamental", "realised_vol"), scale=100),
    Q(MCD, "HAC t = ", "HAC t = {:.2f}", MC, *MP("statistical", "t_vs_fundamental"), minus=True),
    Q(MCD, "indistinguishable from the fundamental model (", "model ({:.1f}%, t = {:.2f})", MC, EACH,
      MP("hybrid", "realised_vol"), MP("hybrid", "t_vs_fundamental"), derive=lambda vol, t: (vol * 100, t)),
    Q(MCD, "model is a little worse (", "worse ({:.1f}%, t = {:.2f}, not", MC, EACH,
      MP("time-series", "realised_vol"), MP("time-series", "t_vs_fundamental"), derive=lambda vol, t: (vol * 100, t)),
    Q(MCD, "(16.9%) by", "({:.1f}%) by {:.0f}–{:.0f}%.", MC, EACH, MP("equal weight", "realised_vol"),
      *[MP(m, "realised_vol") for m in _MODELS],
      derive=lambda ew, *vols: (ew * 100, (1 - max(vols) / ew) * 100, (1 - min(vols) / ew) * 100)),
    Q(MCD, "They predict 4.4% and", "predict {:.1f}% and {:.1f}% against a realised {:.1f}%", MC, EACH,
      MP("statistical", "predicted_vol"), MP("time-series", "predicted_vol"), MP("statistical", "realised_vol"), scale=100),
    Q(MCD, "(ratios 2.2 and", "and {:.1f}% (ratios {:.1f} and {:.1f})", MC, EACH, MP("time-series", "realised_vol"),
      MP("statistical", "ratio"), MP("time-series", "ratio"), derive=lambda vol, a, b: (vol * 100, a, b)),
    Q(MCD, "(ratios 2.2 and", "predicts {:.1f}% for {:.1f}% (ratio", MC, EACH, MP("fundamental", "predicted_vol"),
      MP("fundamental", "realised_vol"), scale=100),
    Q(MCD, "), and the hybrid 8.7%", "{:.2f}), and the hybrid {:.1f}% for {:.1f}%.", MC, EACH, MP("fundamental", "ratio"),
      MP("hybrid", "predicted_vol"), MP("hybrid", "realised_vol"), derive=lambda r, p, v: (r, p * 100, v * 100)),
    Q(MCD, "(predicted factor vol 1.7", "vol {:.1f}–{:.1f}%)", MC, EACH, MP("time-series", "predicted_factor_vol"),
      MP("statistical", "predicted_factor_vol"), scale=100),
    Q(MCD, "realises a market beta of", "beta of {:.2f}–{:.2f}", MC, EACH, MP("time-series", "realised_beta"),
      MP("statistical", "realised_beta")),
    Q(MCD, "cannot hedge the market (", "(predicted factor vol {:.1f}%)", MC, *MP("fundamental", "predicted_factor_vol"),
      scale=100),
    Q(MCD, "The daily bias column (", "column ({:.2f} for", MC, *MP("fundamental", "bias")),
    Q(MCD, "(1.13) because the forecast", "({:.2f}) because", MC, *MP("fundamental", "ratio")),
    Q(MCD, "(means 0.947", "(means {:.3f}–{:.3f})", MC, EACH, *[("mahalanobis", m, "mean") for m in _MODELS], derive=_span),
    Q(MCD, "against 0.066, and the medians", "{:.2f}–{:.2f} against", MC, EACH, *[("mahalanobis", m, "sd") for m in _MODELS],
      derive=_span),
    Q(MCD, "against 0.066, and the medians", "medians are {:.2f}–{:.2f}.", MC, EACH,
      *[("mahalanobis", m, "median") for m in _MODELS], derive=_span),
    Q(MCD, "has the lowest mean (", "lowest mean ({:.3f})", MC, "mahalanobis", "time-series", "mean"),
    Q(MCD, "slightly improve the sector portfolios (", "portfolios ({:.3f} → {:.3f})", MC, EACH,
      MB("fundamental", "sector", "mean_bias"), MB("hybrid", "sector", "mean_bias")),
    Q(MCD, "ones (1.057", "ones ({:.3f} → {:.3f}), and leave precision unchanged (t = {:.2f})", MC, EACH,
      MB("fundamental", "random", "mean_bias"), MB("hybrid", "random", "mean_bias"), MP("hybrid", "t_vs_fundamental")),
    Q(MCD, "| a calibrated risk number", "(realised {:.2f}× its minimum-variance forecast, against {:.1f}–{:.1f}×", MC, EACH,
      MP("fundamental", "ratio"), MP("statistical", "ratio"), MP("time-series", "ratio")),
]


# derived figures of the construction study (differences of the JSON's GMV volatilities, in points of %)
def _points(*pairs: float) -> tuple:
    """|a - b| x 100 of consecutive pairs (a, b), the smallest and the largest."""
    diffs = [abs(a - b) * 100 for a, b in zip(pairs[::2], pairs[1::2])]
    return (min(diffs), max(diffs))


QUOTES += [
    Q(C, "start moved the hybrid by up to", "by up to {:.1f} points", CS, EACH, *V(GMV, "hybrid_10@2007", "hybrid_10"),
      derive=lambda a, b: (a - b) * 100),
    Q(C, "for (their bias rises by", "rises by {:.2f})", CS, EACH, *V(RB, "baseline", "no_eigen"), derive=lambda a, b: a - b),
    Q(C, "* **Faster volatility and regime half-lives", "cost the GMV {:.1f}–{:.1f} points", CS, EACH,
      *V(GMV, NAMED, "hybrid_10_no_eigen_corr_std", NAMED + "@2007", "hybrid_10_no_eigen_corr_std@2007"), derive=_points),
    Q(C, "* **The factor set moved it by", "moved it by {:.1f}–{:.1f} points", CS, EACH,
      *V(GMV, "sectors", "baseline", "no_beta", "baseline", "issue_set", "baseline"), derive=_points),
    Q(C, "against NLS 8.68 % and EWMA", "({:.1f}–{:.1f} and", CS, EACH,
      *V(GMV, NAMED, "=nonlinear shrinkage", NAMED + "@2007", "=nonlinear shrinkage"), derive=_points),
    Q(C, "against NLS 8.68 % and EWMA", "and {:.1f}–{:.1f} points)", CS, EACH,
      *V(GMV, NAMED, "=EWMA (hl 60) shrunk 50% to diagonal", NAMED + "@2007", "=EWMA (hl 60) shrunk 50% to diagonal"),
      derive=_points),
    Q(C, "under-forecasts the 63 days after the onset", "by {:.0f}–{:.0f} %", RG, EACH,
      *[("settings", _DEFAULT, "events", event, "bias_0_63") for event in ("China sell-off", "US downgrade")],
      derive=lambda a, b: ((a - 1) * 100, (b - 1) * 100)),
    RQ("sell-off's first quarter (bias", "(bias {:.2f})", ("vol 21, VRA 21, eigen adjustment off, standardised corr",
                                                           "China sell-off", "bias_0_63")),
    # production.md: what many updates cost against one refit
    Q(PROD, "Many days at once are cheaper refitted", "{} updates cost {:.1f} refits", UP, EACH, ("daily_updates", "days"),
      ("daily_updates", "total_seconds"), ("refit_seconds",), derive=lambda days, updates, refit: (days, updates / refit)),
    Q(PROD, "`riskmodel update` takes", "takes {:.1f} s wall ({:.1f} s of CPU", UP, "cli",
      ("next_update_seconds", "next_update_cpu_seconds")),
    Q(PROD, "included. An update through the API takes", "takes {:.1f} ms (median), inside", UP, "api_update_seconds",
      "median", scale=1000),
    # auditing.md: sector factors' residual under-prediction; figures.md: make_figures.py's run
    Q(AUD, "by 6.5 % on average with GICS industries", "and by about {:.0f} %", RISK, *T(E, "sector", "mean_bias"), offset=1, scale=100),
    Q(AUD, "(held-out bias >", "(held-out bias > {:.3f})", AUDIT, "no_industry", "flag_threshold"),
    Q(AUD, "Random equal-weight portfolios of the same sizes", "median held-out bias of {:.2f}–{:.2f}.", AUDIT, EACH,
      ("no_industry", "clusters"), derive=lambda clusters: (min(c["random_bias_median"] for c in clusters),
                                                             max(c["random_bias_median"] for c in clusters))),
    Q(AUD, "A Financials cluster portfolio is under-predicted", "a factor of {:.1f}.", AUDIT, "no_industry", "clusters",
      "dominant_sector=Financials&size=48", "bias_out"),
    Q("docs/figures.md", "mean biases are", "are {:.2f} (pure factors), {:.2f} (eigenfactors), {:.2f} (random) and {:.2f}",
      "docs/_static/figures.json", "mean_bias_by_family", ("pure_factors", "eigenfactors", "random", "optimised")),
    Q("docs/figures.md", "One eigenvalue (≈", "(≈ {:.1f}) stands", "docs/_static/figures.json", "top_eigenvalue"),
    Q("docs/figures.md", "the null edge (≈", "(≈ {:.2f})", "docs/_static/figures.json", "null_edge"),
    Q(R, "measured in a fresh venv it needed", "needed {:.0f} CPU-seconds,", "benchmarks/results/demo_first_run.json",
      "first_run", "cpu_seconds"),
    Q(R, "the second run 7.9;", "(load average about {:.0f})", "benchmarks/results/demo_first_run.json", "first_run",
      "load_average_before", 0),
    Q(R, "s of wall time (`benchmarks/results/demo_first_run.json`)", "that was {:.0f} s and {:.0f} s of wall time",
      "benchmarks/results/demo_first_run.json", EACH, ("first_run", "wall_seconds"), ("second_run", "wall_seconds")),
    Q(R, "the second run 7.9;", "the second run {:.1f};", "benchmarks/results/demo_first_run.json", "second_run",
      "cpu_seconds"),
]


# construction.md's set-up: the panel, the window, the factor counts, the stocks per rebuild, the band
_CS_VARIANTS = tuple(json.loads((ROOT / CS).read_text(encoding="utf-8"))["variants"])


def _industries(n_factors: int, styles: list) -> int:
    """Industry (or sector) factors of a fundamental model: all factors but the market and the styles."""
    return n_factors - 1 - len(styles)


QUOTES += [
    Q(C, "**Set-up.** The S&P 500 panel", "({} April-2021 members", CS, "peers", "n_stocks_panel"),
    Q(C, "styles size, momentum, reversal, volatility", "; {} GICS industries, {}", CS, EACH,
      ("variants", "baseline", "n_factors"), ("variants", "baseline", "settings", "styles"),
      ("variants", "sectors", "n_factors"),
      derive=lambda n, styles, n_sectors: (_industries(n, styles), _industries(n_sectors, styles))),
    Q(C, "sectors), models fitted on", "models fitted on {} (rows", CS, "peers", "window"),
    Q(C, "row is the baseline (`FactorRiskModel` defaults:", "market + {} industries + the six styles", CS, EACH,
      ("variants", "baseline", "n_factors"), ("variants", "baseline", "settings", "styles"), derive=_industries),
    Q(C, "460 for the peers,", "{} for the peers", CS, "peers", "n_stocks_median"),
    Q(C, "460 for the peers,", "{}–{} across the model rows", CS, EACH,
      *[("variants", name, "n_stocks_median") for name in _CS_VARIANTS], derive=lambda *n: (min(n), max(n))),
    Q(C, "portfolios over 2010-2016 (95 % band", "(95 % band {:.3f} .. {:.3f})", CS, "variants", "baseline", "bias", "band",
      (0, 1)),
    Q(C, "optimised-portfolio bias are inside the 95 % band", "band ({:.3f}–{:.3f} from 2007;", CS, "variants", NAMED + "@2007",
      "bias", "band", (0, 1)),
    Q(C, "optimised-portfolio bias are inside the 95 % band", "; {:.3f}–{:.3f} from", CS, "variants", NAMED,
      "bias", "band", (0, 1)),
]

# docs/benchmarks.md: the factor-returns section (bench_factor_returns.py), every cell of its table
def _minor(version: str) -> str:
    """'3.11.7' -> '3.11' (the page names versions to the minor release)."""
    return ".".join(version.split()[-1].split(".")[:2])


TOR_NAME = "toraniko estimate_factor_returns"
TOR = f"name={TOR_NAME}"
QUOTES += [
    Q(BM, "peer toraniko pins numpy", "pins numpy {}", FR, "results", TOR, "numpy", derive=_minor),
    Q(BM, "Full size, from the JSON files in `benchmarks/results/` (2-core VM", "(2-core VM, Python {}, numpy {},", FR, EACH,
      ("machine", "python"), ("machine", "numpy"), derive=lambda py, npy: (_minor(py), _minor(npy))),
    Q(BM, "numba 0.68, OpenBLAS", "numba {}, OpenBLAS {};", FR, EACH, ("machine", "numba"), ("machine", "blas"),
      derive=lambda numba, blas: (_minor(numba), blas.split(",")[0].split()[-1].rsplit(".", 2)[0])),
    Q(BM, "10 styles, m = 71; run of", "load average {:.1f} at", FR, "conditions", "load_average_before", 0),
    Q(BM, "the start and 3.7 at the end on 2 cores, so the seconds are inflated", "the start and {:.1f} at the end", FR,
      "conditions", "load_average_after", 0),
    Q(BM, "styles fitted on sector residuals), runs under numpy", "runs under numpy {} in", FR, "results", TOR, "numpy"),
    Q(BM, "riskmodel agrees with the normal-equation baseline to", "baseline to {:.0e} and", FR, "agreement_vs_normal_equations",
      "factor_returns_max_rel"),
    Q(BM, "5e-15 (relative, factor returns)", "{:.0e} (relative", FR, "agreement_vs_numpy", "factor_returns_max_rel"),
]
for _label, _name, _base, _fmt in [
    ("| `regression.factor_returns` (no clip) |", "riskmodel (return_clip=None)", "riskmodel (return_clip=None)",
     "| {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:,} | {:.0f} MB ({:.2f} × the {:,.0f} MB of inputs) |"),
    ("| `regression.factor_returns` (clip at 5 robust σ) |", "riskmodel (return_clip=5)", "riskmodel (return_clip=None)",
     "| {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:,} |"),
    ("| `regression.factor_returns`, one thread |", "riskmodel (1 numba thread)", "riskmodel (1 numba thread)",
     "| {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:,} |"),
    ("| numpy normal equations + Cholesky |", "numpy normal equations + Cholesky", "riskmodel (return_clip=None)",
     "| {:.1f} | {:.1f} | {:.0f} | {:.0f} | {:,} | {:.0f} MB |"),
    ("| numpy normal equations + Cholesky, one thread |", "numpy normal equations + Cholesky (1 BLAS thread)",
     "riskmodel (1 numba thread)", "| {:.2f} | {:.2f} | {:.1f} | {:.1f} | {:,} |"),
    ("| numpy per-day `lstsq` loop, one thread |", "numpy loop (1 BLAS thread)", "riskmodel (1 numba thread)",
     "| {:.1f} | {:.1f} | {:.0f} | {:.0f} | {:,}, extrapolated | {:.0f} MB |"),
    ("| numpy per-day `lstsq` loop |", "numpy per-day lstsq loop", "riskmodel (return_clip=None)",
     "| {:.1f} | {:.1f} | {:.0f} | {:.0f} | {:,}, extrapolated |"),
    ("| toraniko `estimate_factor_returns` |", TOR_NAME, "riskmodel (return_clip=None)",
     "| {:.0f} | {:.0f} | {:.0f} | {:,.0f} | {:,}, extrapolated | {:.1f} GB peak RSS |"),
]:
    _paths = [("results", f"name={_name}", k) for k in ("seconds", "cpu_seconds")]
    _paths += [("results", f"name={_base}", k) for k in ("seconds", "cpu_seconds")] + [("results", f"name={_name}", "days_timed")]
    if _fmt.count("{") == 8:  # riskmodel's peak and the inputs
        _paths += [("results", f"name={_name}", "peak_mb"), ("riskmodel_peak_over_inputs",), ("inputs_mb",)]
    elif _name == TOR_NAME:
        _paths += [("results", f"name={_name}", "peak_mb")]
    elif _fmt.count("{") == 6:
        # the lstsq loop's memory row is the default-threads run's (one table cell for both loops)
        _paths += [("results", "name=numpy per-day lstsq loop" if "loop" in _name else f"name={_name}", "peak_mb")]
    QUOTES.append(Q(BM, _label, _fmt, FR, EACH, *_paths, derive=lambda s, c, bs, bc, days, *peak, _tor=_name == TOR_NAME: (
        s, c, s / bs, c / bc, days, *((peak[0] / 1e3,) if _tor else peak))))


# docs/benchmarks.md: the time-series and statistical section (bench_timeseries.py), every cell of its table
_TS_ROW = "| time-series loadings (expanding OLS per stock"
QUOTES += [
    Q(BM, "10 factors, 2 % missing returns; run of", "load average {:.1f} at", TS, "conditions", "load_average_before", 0),
    Q(BM, "the start and 4.4 at the end on 2 cores (recorded", "the start and {:.1f} at the end", TS, "conditions",
      "load_average_after", 0),
    Q(BM, "inflated. riskmodel is timed warm, best of", "best of {}, first", TS, "conditions", "repeat"),
    Q(BM, _TS_ROW, "| {:.2f} s | {:.0f} s (per-stock `lstsq`, {:,} of {:,} stocks timed) | {:.0f}× |", TS, EACH,
      ("timeseries", "riskmodel_s"), ("timeseries", "lstsq_loop_s"), ("timeseries", "lstsq_stocks_timed"),
      ("size", "n_stocks"), ("timeseries", "speedup")),
    Q(BM, "| the same, riskmodel on one thread (like the baseline) |", "| {:.2f} s | | {:.0f}× |", TS, "timeseries",
      ("riskmodel_1thread_s", "speedup_1thread")),
    Q(BM, "| statistical model (rolling 504-day PCA,", "{} refits, fixed k) | {:.2f} s | {:.0f} s (full `svd` per refit, {} timed) | "
      "{:.0f}× |", TS, "statistical", ("refits", "riskmodel_fixed_k_s", "numpy_svd_baseline_s", "baseline_refits_timed", "speedup")),
    Q(BM, "| statistical model, k chosen by Bai–Ng |", "| {:.2f} s |", TS, "statistical", "riskmodel_bai_ng_s"),
    Q(BM, "The loadings agree with the `lstsq` loop to", "loop to {:.1e} with", TS, "timeseries", "max_abs_diff_vs_lstsq"),
    Q(BM, "of the process 867 MB.", "of the process {:.0f} MB.", TS, "peak_rss_mb"),
]


# docs/benchmarks.md: the full-fit section (bench_full_fit.py): its table, every cell, and its prose, from this run's
# JSON and from the quiet run of 2026-11-25 kept beside it; the compile-time paragraph (demo_first_run.py)
FF_QUIET = "benchmarks/results/full_fit_2026-11-25.json"
DFR = "benchmarks/results/demo_first_run.json"
CT = "benchmarks/results/compile_time.json"
ED = "benchmarks/results/eigh_drivers.json"
_OURS, _SAME = "name=riskmodel FactorRiskModel.fit", "name=riskmodel FactorRiskModel.fit (the same 504 dates)"
_SKF = "name=skfolio CharacteristicsFactorModel.fit"
QUOTES += [
    Q(BM, "at the end on 2 cores; glibc", "load average {:.1f} at the start and {:.1f} at the end", FF,
      EACH, ("conditions", "load_average_before", 0), ("conditions", "load_average_after", 0)),
    Q(BM, "| riskmodel `FactorRiskModel.fit` |",
      "| {:,} | {:.1f} | {:.1f} | {:.2f} | {:.1f} | {:.1f} | {:.2f} GB ({:.2f} × the {:.2f} GB of inputs) |", FF, EACH,
      *[("results", _OURS, k) for k in ("n_days_fitted", "seconds", "user_seconds", "system_seconds", "peak_bytes",
                                        "memory_ratio")], ("input_bytes",),
      derive=lambda days, s, user, system, peak, ratio, inputs: (days, s, s / s, user, user / user, system, peak / 1e9,
                                                                  ratio, inputs / 1e9)),
    Q(BM, "| riskmodel `FactorRiskModel.fit` (the same", "dates) | {:,} | {:.2f} | {:.1f} | {:.2f} | {:.1f} | {:.1f} | {:.2f} GB |",
      FF, EACH, *[("results", _SAME, k) for k in ("n_days_fitted", "seconds", "user_seconds", "system_seconds", "peak_bytes")],
      derive=lambda days, s, user, system, peak: (days, s, s / s, user, user / user, system, peak / 1e9)),
    Q(BM, "| skfolio `CharacteristicsFactorModel.fit`, warm", "warm ({} dates) | {:,} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | "
      "{:.1f} | {:.1f} GB |", FF, EACH, ("like_with_like", "dates"), ("results", _SKF, "n_days_fitted"),
      ("results", _SKF, "measured_seconds"), ("like_with_like", "wall_ratio"), ("results", _SKF, "all_fits", 1, "user_seconds"),
      ("like_with_like", "user_cpu_ratio"), ("results", _SKF, "all_fits", 1, "system_seconds"),
      ("results", _SKF, "peak_bytes"), derive=lambda *v: (*v[:-1], v[-1] / 1e9)),
    Q(BM, "| skfolio, cold (its first fit,", "fit, {} dates) | {:,} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} |", FF, EACH,
      ("like_with_like", "dates"), ("results", _SKF, "n_days_fitted"), ("results", _SKF, "cold", "seconds"),
      ("like_with_like", "cold_wall_ratio"), ("results", _SKF, "cold", "user_seconds"), ("results", _SAME, "user_seconds"),
      ("results", _SKF, "cold", "system_seconds"),
      derive=lambda dates, days, s, ratio, user, same_user, system: (dates, days, s, ratio, user, user / same_user, system)),
    Q(BM, "| skfolio warm, scaled to", "scaled to {:,} dates (× {:.0f}) | {:,}, extrapolated | {:.1f} | {:.1f} | {:.1f} | "
      "{:.1f} | {:.1f} |", FF, EACH, ("config", "n_days"), ("like_with_like", "dates"), ("results", _SKF, "seconds"), ("speedup_vs_skfolio",), ("results", _SKF, "user_seconds"),
      ("like_with_like", "extrapolated_user_cpu_ratio"), ("results", _SKF, "system_seconds"),
      derive=lambda days, dates, *v: (days, days / dates, days, *v)),
    Q(BM, "Stages (this run): exposures", "exposures {:.2f} s, factor returns {:.2f} s, Σ_f {:.2f} s", FF, "results", _OURS,
      "stages", ("build_exposures", "factor_returns", "factor_covariance")),
    Q(BM, "plus one per date), D", "D {:.2f} s.", FF, "results", _OURS, "stages", "specific_variance"),
    Q(BM, "s, stages", "{:.2f} s, stages {:.2f}, {:.2f}, {:.2f} and {:.2f} s", FF_QUIET, EACH,
      ("results", _OURS, "seconds"),
      *[("results", _OURS, "stages", k) for k in ("build_exposures", "factor_returns", "factor_covariance",
                                                  "specific_variance")]),
    Q(BM, "In the quiet run the best of 2 fits", "took {:.2f} and {:.2f} s", FF_QUIET, "results", _OURS, "rounds_seconds",
      (0, 1)),
    Q(BM, "of the faster round", "of the faster round {:.2f} s)", FF_QUIET, "results", _OURS, "all_seconds", 0),
    Q(BM, "in the best fit of the quiet run and", "system time {:.2f} s in the best fit of the quiet run and "
      "{:.2f} s in the other,", FF_QUIET, EACH, ("results", _OURS, "system_seconds"),
      ("results", _OURS, "all_system_seconds", 0)),
    Q(BM, "in the best fit of the quiet run and", "other, {:.2f} s and", FF, "results", _OURS, "system_seconds"),
    Q(BM, "s in this run. Run with glibc told", "{:.2f} s in this run.", FF, "results", _OURS, "all_system_seconds", 0),
    Q(BM, "huge pages:", "{:.1f} s of system time beside {:.1f} s of user time in its warm fit", FF, "results", _SKF,
      "all_fits", 1, ("system_seconds", "user_seconds")),
    Q(BM, "both warm, skfolio takes", "skfolio takes {:.1f}× riskmodel's time", FF, "like_with_like", "user_cpu_ratio"),
    # the portfolio-risk run's pause between timed calls
    Q(BM, "s after the previous call so that", "{:.1f} s after the previous call", PR, "settings", "settle_s"),
    # compile time: riskmodel demo's first run (empty cache) and second run, in a fresh venv
    Q(BM, "so the wall times are inflated)", "average {:.1f} at the start on {} cores", DFR, EACH,
      ("first_run", "load_average_before", 0), ("machine", "cores")),
    Q(BM, "most of it compiling, the second", "{:.1f} s of wall time and {:.1f} CPU s, most of it compiling, the second {:.1f} s "
      "and {:.1f} CPU s.", DFR, EACH, ("first_run", "wall_seconds"), ("first_run", "cpu_seconds"),
      ("second_run", "wall_seconds"), ("second_run", "cpu_seconds")),
    # compile time of a fit alone (compile_time.py): a fresh process with an empty cache, then with the cache it left
    Q(BM, "). The first fit took", "run of {} UTC, load average {:.1f} at the start on {} cores", CT,
      EACH, ("date",), ("conditions", "load_average_before", 0), ("machine", "cpu_count"),
      derive=lambda date, load, cores: (date[:16], load, cores)),
    Q(BM, "kernels, the second", "{:.1f} s ({:.1f} CPU s) and cached {} kernels, the second {:.1f} s ({:.1f} CPU s).",
      CT, EACH, ("first_run", "fit_wall_seconds"), ("first_run", "fit_cpu_seconds"), ("first_run", "cached_kernels_after"),
      ("second_run", "fit_wall_seconds"), ("second_run", "fit_cpu_seconds")),
    # LAPACK's eigensolvers at m = 71 (eigh_drivers.py)
    Q(BM, "one BLAS thread, the solvers interleaved round by round", "(load average {:.1f} at the start on", ED,
      "conditions", "load_average_before", 0),
    Q(BM, "in CPU milliseconds per call: numpy's `eigh`", "`dsyevd`) {:.3f}, of which", ED, "cpu_ms", "dsyevd (numpy eigh)"),
    Q(BM, "to tridiagonal form (`dsytrd`)", "(`dsytrd`) {:.3f};", ED, "cpu_ms", "dsytrd (reduction only)"),
    Q(BM, "), `dsyevr` ", "{:.3f} ({:.2f}×), `dsyevr` {:.3f} ({:.2f}×), `dsyev` {:.3f} ({:.2f}×);", ED, EACH,
      *[(part, name) for name in ("dsyevd (LAPACK wrapper)", "dsyevr (LAPACK wrapper)", "dsyev (LAPACK wrapper)")
        for part in ("cpu_ms", "over_dsyevd")]),
    Q(BM, "before the back-transformation, `dstemr` already takes", "takes {:.3f} and `dstein` {:.3f} after `dsterf`", ED,
      EACH, ("cpu_ms", "dstemr (tridiagonal, vectors)"), ("cpu_ms", "dstein after dsterf (tridiagonal, vectors)")),
    Q(BM, "No double-precision driver is faster", "{:.3f}. No double-precision", ED, "cpu_ms",
      "dsterf (tridiagonal eigenvalues only)"),
    Q(BM, "No double-precision driver is faster", "takes {:.2f}× `dsyevd`'s time", ED, "over_dsyevd",
      "ssyevd (float32, LAPACK wrapper)"),
    # the Lanczos-steps table of bench_speed_audit.py (its header: the null's quantile)
    Q(BM, "| Lanczos steps |", "{:.0f} % edge", SA, *_NC, "quantile", scale=100),
]
for _steps in (15, 20, 25, 30, 35, 40, 47, 60):
    QUOTES.append(Q(BM, f"| {_steps} steps |", "| {} steps | {:.2g} σ | {:.2g} σ | {:.2g} σ | {:.2f} s |", SA, *_NC,
                    "by_steps", f"steps={_steps}",
                    ("steps", "median_abs_error_tw", "worst_error_tw", "edge_error_tw", "null_floor_s"), minus=True))


# benchmarks/README.md: the factor-returns notes (bench_factor_returns.py); benchmarks/README_portfolio_risk.md:
# the portfolio-risk notes (bench_portfolio_risk.py, default threads, --threads 1, --exposures dense)
BR, PRM = "benchmarks/README.md", "benchmarks/README_portfolio_risk.md"
_K1000, _SOLVE = ("rows", "task=decompose&n_portfolios=1000"), ("rows", "task=solve&n_portfolios=1")


def _ms_ms_ratio(structured_s: float, dense_s: float, ratio: float) -> tuple:
    """Seconds of both paths as milliseconds, their ratio as it is."""
    return (structured_s * 1e3, dense_s * 1e3, ratio)


QUOTES += [
    Q(BR, "(it pins numpy", "(it pins numpy {}:", FR, "results", TOR, "numpy", derive=_minor),
    Q(BR, "recorded as `agreement_vs_numpy`", "factor returns to {:.1e} relative", FR, "agreement_vs_numpy",
      "factor_returns_max_rel"),
    Q(BR, "run the whole call took", "took {:.0f} µs of CPU per date", FR, "results", "name=riskmodel (1 numba thread)",
      ("cpu_seconds", "days_timed"), derive=lambda cpu, days: cpu / days * 1e6),
    Q(BR, "bracket + quickselect) adds", "adds {:.0f} % to the wall time", FR, "results", "name=riskmodel (return_clip=5)",
      "ratio_vs_riskmodel", offset=1.0, scale=100),
    Q(BR, "| `bench_speed_audit.py` |", "{:.0f} min in the committed run at load average {:.1f})", SA, EACH,
      ("wall_seconds",), ("load_average_before", 0), derive=lambda wall, load: (wall / 60, load)),
    Q(PRM, "- The decomposition of 1,000 portfolios, two cores:", "{:.1f} ms against {:.0f} ms dense ({:.1f}×)", PR,
      *_K1000, ("structured_s", "dense_s", "speedup"), derive=_ms_ms_ratio),
    Q(PRM, "- The same on one core (`--threads 1`):", "{:.1f} ms against {:.0f} ms ({:.1f}×)", PR1,
      *_K1000, ("structured_s", "dense_s", "speedup"), derive=_ms_ms_ratio),
    Q(PRM, "- The solve:", "{:.2f} ms against {:.1f} ms for `cho_solve` ({:.0f}×)", PR,
      *_SOLVE, ("structured_s", "dense_s", "speedup"), derive=_ms_ms_ratio),
    Q(PRM, "- `--exposures dense`, 1,000 portfolios:", "{:.1f} ms against {:.0f} ms ({:.1f}×)", PRD_,
      *_K1000, ("structured_s", "dense_s", "speedup"), derive=_ms_ms_ratio),
    Q(PRM, "- `--exposures dense`, 1,000 portfolios:", "the solve {:.2f} ms", PRD_, *_SOLVE, "structured_s", scale=1e3),
    Q(PRM, "on two cores 18.8 ms, on one core", "on two cores {:.1f} ms", PR, *_K1000, "structured_s", scale=1e3),
    Q(PRM, "on two cores 18.8 ms, on one core", "on one core {:.1f} ms", PR1, *_K1000, "structured_s", scale=1e3),
    Q(PRM, "the dense path: met on one core", "met on one core ({:.1f}×)", PR1, *_K1000, "speedup"),
    Q(PRM, "on two cores not in the committed run", "committed run ({:.1f}×)", PR, *_K1000, "speedup"),
    Q(PRM, "- With dense B:", "dense B: {:.1f}×", PRD_, *_K1000, "speedup"),
    Q(PRM, "Peak memory of the P = 1,000", "decomposition ({:.0f} MB)", PR, *_K1000, "structured_peak_bytes", scale=1e-6),
]


@cache
def _json(source: str) -> dict:
    return json.loads((ROOT / source).read_text(encoding="utf-8"))


def _pick(node, step):
    """One step of a key path: a dict key, a list index, or ``field=value[&field=value]`` in a list."""
    if isinstance(node, dict) and step in ("min", "max") and step not in node:  # over the dict's values
        return min(node.values()) if step == "min" else max(node.values())
    if isinstance(node, list) and isinstance(step, str) and "=" in step:
        conditions = [part.split("=", 1) for part in step.split("&")]
        hits = [item for item in node if all(str(item.get(f)) == v for f, v in conditions)]
        assert len(hits) == 1, f"{step}: {len(hits)} matches"
        return hits[0]
    return node[step]


def _read(quote: Quote):
    """The JSON value(s) a quote names (a tuple for several key paths or a tuple of last keys)."""
    if quote.key[0] == EACH:  # several figures, each from its own key path
        return tuple(_follow(_json(quote.source), path) for path in quote.key[1:])
    node = _json(quote.source)
    *path, last = quote.key
    for step in path:
        node = _pick(node, step)
    return tuple(_pick(node, k) for k in last) if isinstance(last, tuple) else _pick(node, last)


def value(quote: Quote):
    """The figure(s) ``quote`` renders, read from its JSON (a tuple for several on one line)."""
    got = _read(quote)
    if quote.derive is not None:
        got = quote.derive(*got) if isinstance(got, tuple) else quote.derive(got)
    if isinstance(got, tuple):
        return got if quote.scale == 1.0 else tuple(g * quote.scale for g in got)
    if quote.offset:
        got = got - quote.offset
    return got * quote.scale if quote.scale != 1.0 else got


def _follow(node, path: tuple):
    for step in path:
        node = _pick(node, step)
    return node


def render(quote: Quote) -> str:
    figure = value(quote)
    text = quote.text.format(*figure) if isinstance(figure, tuple) else quote.text.format(figure)
    return text.replace("-", "−") if quote.minus else text


def _line(text: str, anchor: str) -> str | None:
    lines = [line for line in text.splitlines() if anchor in line]
    if len(lines) > 1:  # a table row's label: the one line that starts with it
        lines = [line for line in lines if line.startswith(anchor)]
    return lines[0] if len(lines) == 1 else None


NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def check(texts: dict[str, str]) -> list[str]:
    """Problems found (empty when every registered figure is quoted as its JSON says)."""
    problems = []
    rendered: dict[str, list[str]] = {}
    for quote in QUOTES:
        if quote.doc not in texts:
            continue
        line = _line(texts[quote.doc], quote.line)
        if line is None:
            problems.append(f"{quote.doc}: no single line holds {quote.line!r}")
            continue
        want = render(quote)
        rendered.setdefault(line, []).append(want)
        if want not in line:
            problems.append(f"{quote.doc}: {want!r} ({quote.source} {quote.key}) not on the line {line.strip()!r}")
    doc, start, end = SPEED
    if doc in texts:
        lines = texts[doc].splitlines()
        first = next(i for i, line in enumerate(lines) if start in line)
        last = next(i for i, line in enumerate(lines) if end in line and i > first)
        for line in lines[first:last]:
            covered = " ".join(rendered.get(line, []))
            loose = [n for n in NUMBER.findall(line) if n not in NUMBER.findall(covered)]
            if loose:
                problems.append(f"{doc}: unregistered number(s) {loose} on {line.strip()[:80]!r}")
    return problems


def _texts() -> dict[str, str]:
    return {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in {q.doc for q in QUOTES}}


def test_every_quoted_figure_matches_its_json():
    assert check(_texts()) == []


def test_speed_table_quotes_only_benchmark_results():
    """Every number of the README's speed table is a figure of a JSON in benchmarks/results."""
    speed = [q for q in QUOTES if q.doc == "README.md"]
    assert len(speed) >= 40
    assert all(q.source.startswith("benchmarks/results/") for q in speed)


README_QUOTES = [q for q in QUOTES if q.doc == "README.md"]


@pytest.mark.parametrize("quote", README_QUOTES, ids=lambda q: f"{q.line.strip('| ')[:20]}:{q.text}")
def test_a_hand_edited_readme_figure_fails(quote):
    texts = _texts()
    want = render(quote)
    line = _line(texts["README.md"], quote.line)
    digits = NUMBER.findall(want)[-1].rstrip(",")
    bumped = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    edited_line = line.replace(want, want.replace(digits, bumped), 1)
    assert edited_line != line
    texts["README.md"] = texts["README.md"].replace(line, edited_line)
    assert check(texts), f"editing {want!r} to {bumped!r} went unnoticed"


def test_a_number_added_by_hand_to_the_speed_table_fails():
    texts = _texts()
    line = _line(texts["README.md"], "| Woodbury")
    texts["README.md"] = texts["README.md"].replace(line, line.replace(" |", " (about 3× less memory) |", 1))
    assert any("unregistered" in p for p in check(texts))


DOC_QUOTES = [q for q in QUOTES if q.doc != "README.md"]


@pytest.mark.parametrize("quote", DOC_QUOTES, ids=lambda q: f"{q.doc.split('/')[-1]}:{q.text[:30]}")
def test_a_hand_edited_docs_figure_fails(quote):
    """The same for every figure the guides, the tutorial and getting-started quote."""
    texts = _texts()
    want = render(quote)
    line = _line(texts[quote.doc], quote.line)
    digits = NUMBER.findall(want)[-1].rstrip(",")
    bumped = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    edited_line = line.replace(want, want.replace(digits, bumped), 1)
    assert edited_line != line
    texts[quote.doc] = texts[quote.doc].replace(line, edited_line)
    assert check(texts), f"{quote.doc}: editing {want!r} to {bumped!r} went unnoticed"


# docs/guide/model-comparison.md: its four tables, row for row, rendered from docs/figures/model_comparison.json
MODELS = ("fundamental", "hybrid", "time-series", "statistical")


def _cell(value, fmt: str = "{:.3f}") -> str:
    return "—" if value is None else fmt.format(value).replace("-", "−")


def model_comparison_rows() -> list[str]:
    """Every row of the bias, first-factor and precision tables, as the guide must write it (bold aside)."""
    facts, rows = _json(MC), []
    for family, key in [("random", "random"), ("sector", "sector"), ("optimised", "optimised"), ("pure factors", "pure_factors")]:
        for i, model in enumerate(MODELS):
            b = facts["bias"][f"{model} | {key}"]
            cells = [family if i == 0 else "", model, str(b["n"]),
                     *[_cell(b[k]) for k in ("mean_bias", "median_bias", "share_inside", "mrad", "qlike")]]
            rows.append("| " + " | ".join(cells) + " |")
    for model in MODELS:
        d = facts["diagnostics"][model]
        rows.append(f"| {model} | {d['first_factor']} | " + " | ".join(
            _cell(d[k]) for k in ("first_factor_bias", "factor_vra", "specific_vra")) + " |")
    for model, p in facts["precision"]["table"].items():
        rows.append(f"| {model} | " + " | ".join(_cell(p[k]) for k in (
            "realised_vol", "predicted_vol", "ratio", "predicted_factor_vol", "bias", "mean_gross", "realised_beta",
            "t_vs_fundamental")) + " |")
    for model in MODELS:
        m = facts["mahalanobis"][model]
        rows.append(f"| {model} | " + " | ".join(_cell(m[k]) for k in ("mean", "sd", "median")) + " |")
    return [" ".join(row.split()) for row in rows]


def missing_model_comparison_rows(text: str) -> list[str]:
    lines = {" ".join(line.replace("**", "").split()) for line in text.splitlines()}
    return [row for row in model_comparison_rows() if row not in lines]


def test_model_comparison_tables_match_their_json():
    rows = model_comparison_rows()
    assert len(rows) == 16 + 4 + 5 + 4
    assert missing_model_comparison_rows((ROOT / MCD).read_text(encoding="utf-8")) == []


def test_a_hand_edited_model_comparison_cell_fails():
    text = (ROOT / MCD).read_text(encoding="utf-8")
    for old, new in [("| 1.057 | 1.057 | 0.000 | 0.109", "| 1.058 | 1.057 | 0.000 | 0.109"), ("| 1.013 | 1.023 |", "| 1.013 | 1.024 |"),
                     ("**−2.267**", "**−2.266**")]:
        assert old in text, old
        assert missing_model_comparison_rows(text.replace(old, new, 1)), f"{old} -> {new} went unnoticed"


# docs/guide/portfolio-risk.md: the variant table and the per-sector bias table, from docs/figures/real_risk_model.json
SECTOR_COLUMNS = ("sector_bias_raw", "sector_bias_full", "sector_bias_sector_model", "sector_bias_pooled")  # (a), (d)-(f)


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each data row of the table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2
    rows = []
    while start < len(lines) and lines[start].startswith("|"):
        rows.append([cell.strip().replace("**", "") for cell in lines[start].strip().strip("|").split("|")])
        start += 1
    return rows


def portfolio_risk_problems(text: str) -> list[str]:
    facts, problems = _json(RISK), []
    rows = _table_rows(text, "| variant | family |")
    want = [(v, fam) for v in VARIANTS for fam in ("random", "sector", "optimised")]
    if len(rows) != len(want):
        return [f"variant table: {len(rows)} rows, the JSON has {len(want)}"]
    for cells, (variant, family) in zip(rows, want):
        t = facts["table"][f"{variant} | {family}"]
        expected = [family, *(f"{t[k]:.3f}" for k in ("mean_bias", "share_inside", "mrad", "qlike"))]
        if cells[1:] != expected or (family == "random" and not cells[0].startswith(variant[:3])):
            problems.append(f"variant table {variant} | {family}: {cells} != {expected}")
    for cells in _table_rows(text, "| sector | (a) raw |"):
        expected = [f"{facts[column][cells[0]]:.3f}" for column in SECTOR_COLUMNS]
        if cells[1:5] != expected:
            problems.append(f"sector table {cells[0]}: {cells[1:5]} != {expected}")
    return problems


def test_portfolio_risk_tables_match_their_json():
    text = (ROOT / PRD).read_text(encoding="utf-8")
    assert len(_table_rows(text, "| sector | (a) raw |")) == len(_json(RISK)["sector_bias_full"])
    assert portfolio_risk_problems(text) == []


def test_a_hand_edited_portfolio_risk_cell_fails():
    text = (ROOT / PRD).read_text(encoding="utf-8")
    for old, new in [("| optimised | 1.005 | 0.800 |", "| optimised | 1.005 | 0.810 |"),
                     ("| Real Estate | 1.167 | 1.187 |", "| Real Estate | 1.167 | 1.186 |")]:
        assert old in text, old
        assert portfolio_risk_problems(text.replace(old, new, 1)), f"{old} -> {new} went unnoticed"

