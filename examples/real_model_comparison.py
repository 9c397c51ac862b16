"""Issue #7 item 4: the fundamental, hybrid, time-series and statistical models compared on real data.

Four risk models are fitted on the real S&P 500 panel with the **same forecast settings**
(factor covariance, eigen adjustment, VRA, specific risk), and differ only in how they
find the factors and exposures:

(1) fundamental : market + GICS industries (68) + the six styles, cross-sectional WLS
(2) hybrid      : (1) plus ``k`` statistical factors of its residuals (rolling PCA)
(3) time series : per-stock rolling regressions on the Fama-French five factors + momentum
(4) statistical : rolling PCA of the returns, number of factors by Bai-Ng IC_p2

Each is evaluated over the same out-of-sample period after the burn-in:

* :func:`riskmodel.bias_statistics` on random long-only portfolios, optimised portfolios
  ``w ∝ Σ⁻¹α``, the model's own pure factors, and the 11 cap-weighted GICS sector portfolios;
* *precision* (METHODS §6, Engle-Colacito): every ``rebalance`` days the global
  minimum-variance portfolio ``w ∝ Σ⁻¹1`` (weights sum to 1, long-short allowed) of each
  model, over the stocks **all four** models cover that day, held for ``rebalance`` days;
  the lower its realised volatility, the better the model's Σ; plus its predicted against
  realised volatility;
* the Mahalanobis statistic ``rᵀΣ⁻¹r / N`` of each day's returns against the forecast of
  the day before (same common stocks), expected 1 with sd ``√(2/N)`` for a calibrated Σ.

Returns: all four models are fitted on the panel's raw total returns (not in excess of
the risk-free rate), so that every model forecasts the same quantity and the evaluation
uses the same outcomes. The time-series regressions have an intercept that absorbs the
average risk-free rate; its day-to-day variation (daily sd about 3e-5 in 2007-2016) is
negligible next to stock risk. The Fama-French columns are decimal returns already.

Run ``python examples/real_model_comparison.py`` (about 5 minutes on 2 busy cores) or
with ``--quick``. Writes ``docs/figures/model_comparison_precision.png``,
``model_comparison_rolling_bias.png`` and ``model_comparison.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import load_panel, parser, quiet_fit_warnings, save_figure, write_json  # noqa: E402
from real_risk_model import sector_portfolios  # noqa: E402

NAME = "model_comparison"
FF_COLUMNS = ["mkt_rf", "smb", "hml", "rmw", "cma", "mom"]
FAMILIES = ("random", "sector", "optimised", "pure_factors")
HYBRID_K = 2
REBALANCE = 21


def forecast_settings(eigen_sims: int) -> dict[str, Any]:
    """The forecast settings shared by the four models (the full model of ``real_risk_model.py``)."""
    return dict(eigen_sims=eigen_sims, eigen_scale=1.2, vra_half_life=42, specific_vra_half_life=42, shrink=0.1)


def model_builders(panel: xr.Dataset, ff: pd.DataFrame, burn: int, eigen_sims: int) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Label -> (description, zero-argument fit function) of the four models.

    Parameters
    ----------
    panel : Dataset (date, stock)
        From :func:`real_data_common.load_panel`.
    ff : DataFrame (date x factor)
        :func:`riskmodel.load_ff_factors` (decimal returns).
    burn : int
        Burn-in in trading days; the statistical model's first extraction needs at most
        half of it, so short test windows still have forecasts when the evaluation starts.
    eigen_sims : int

    Returns
    -------
    dict
    """
    import riskmodel as rm

    common = forecast_settings(eigen_sims)
    styles = list(panel.attrs["styles"])
    stat_min_obs = min(252, burn // 2)
    stat_window = min(504, burn)
    factors = ff[FF_COLUMNS]
    return {
        "fundamental": (
            f"market + {len(np.unique(panel['industry'].values))} GICS industries + {len(styles)} styles (WLS)",
            lambda: rm.FactorRiskModel(styles=styles, progress=False, **common).fit(panel),
        ),
        "hybrid": (
            f"fundamental + {HYBRID_K} statistical factors of its residuals (window 252, refit 21)",
            lambda: rm.FactorRiskModel(styles=styles, statistical_factors=HYBRID_K, progress=False, **common).fit(panel),
        ),
        "time-series": (
            "FF5 + momentum, rolling 504-day OLS per stock with intercept (refit 21)",
            lambda: rm.TimeSeriesFactorModel(window=504, min_obs=126, refit_every=REBALANCE, progress=False, **common).fit(panel, factors),
        ),
        "statistical": (
            f"PCA of the returns, Bai-Ng IC_p2 (max 15), window {stat_window}, refit 21",
            lambda: rm.StatisticalFactorModel(criterion="bai_ng", window=stat_window, min_obs=stat_min_obs,
                                              refit_every=REBALANCE, progress=False, **common).fit(panel),
        ),
    }


def family_table(bias: Any, label: str) -> pd.DataFrame:
    """``BiasStatistics.by_family`` with the user family renamed ``sector`` and a model column."""
    table = bias.by_family().rename(index={"user": "sector"}).loc[list(FAMILIES)]
    table.insert(0, "model", label)
    return table.reset_index()


def _first_common_forecast(fits: dict[str, Any], start_row: int) -> int:
    """First row ``≥ start_row`` at which every model has a factor covariance forecast."""
    ok = np.ones(len(next(iter(fits.values())).dates), dtype=bool)
    for fit in fits.values():
        diag = np.diagonal(fit.factor_cov.to_numpy(), axis1=1, axis2=2)
        ok &= np.isfinite(diag).any(axis=1)
    rows = np.flatnonzero(ok[start_row:])
    if rows.size == 0:
        import riskmodel as rm

        raise rm.errors.InsufficientDataError(
            f"no date from {fits[next(iter(fits))].dates[start_row].date()} on has a forecast from every model; "
            "pass a longer window (--start earlier)"
        )
    return start_row + int(rows[0])


def _common_covariances(fits: dict[str, Any], date: pd.Timestamp, stock_index: pd.Index, extra: np.ndarray | None = None):
    """Each model's covariance at ``date`` restricted to the stocks all of them cover (panel order).

    ``extra`` (N,) bool further restricts the stocks (e.g. those with a return the next day).
    Returns ``(positions in the panel, {label: StructuredCovariance})``.
    """
    covs = {label: fit.covariance(date) for label, fit in fits.items()}
    keep = np.ones(len(stock_index), dtype=bool) if extra is None else extra.copy()
    for cov in covs.values():
        covered = np.zeros(len(stock_index), dtype=bool)
        covered[stock_index.get_indexer(np.asarray(cov.stocks).astype(str))] = True
        keep &= covered
    positions = np.flatnonzero(keep)
    ids = stock_index[positions].to_numpy().astype(str)
    return positions, {label: cov.subset(ids) for label, cov in covs.items()}


def precision(fits: dict[str, Any], returns: np.ndarray, dates: pd.DatetimeIndex, stocks: np.ndarray,
              first_row: int, rebalance: int = REBALANCE) -> dict[str, Any]:
    """Minimum-variance portfolios of each model, rebuilt every ``rebalance`` days and held.

    Parameters
    ----------
    fits : dict of fitted models (fitted-model protocol)
    returns : ndarray (date, stock)
        The panel's returns (NaN: no return; a held stock without a return that day
        contributes 0).
    dates : DatetimeIndex (date,)
    stocks : ndarray (stock,) str
    first_row : int
        The first portfolio is built at the close of this row.
    rebalance : int

    Returns
    -------
    dict
        ``realised`` DataFrame (date x model) of daily portfolio returns (plus the
        equal-weighted portfolio of the same stocks as a reference), ``predicted``
        DataFrame (date x model) of the daily volatility forecast at the last rebuild,
        ``predicted_factor`` its factor part, ``gross`` and ``n_stocks`` per rebuild.
    """
    index = pd.Index(stocks)
    labels = [*fits, "equal weight"]
    out_rows = np.arange(first_row + 1, len(dates))
    realised = np.full((out_rows.size, len(labels)), np.nan)
    predicted = np.full((out_rows.size, len(labels)), np.nan)
    factor_part = np.full((out_rows.size, len(labels)), np.nan)
    gross, n_common, rebuilds = [], [], []
    for b0 in range(0, out_rows.size, rebalance):
        t = out_rows[b0] - 1
        hold = out_rows[b0 : b0 + rebalance]
        positions, covs = _common_covariances(fits, dates[t], index)
        r = np.nan_to_num(returns[np.ix_(hold, positions)])
        weights = {label: np.asarray(cov.min_variance_weights()) for label, cov in covs.items()}
        weights["equal weight"] = np.full(positions.size, 1.0 / positions.size)
        for j, label in enumerate(labels):
            realised[b0 : b0 + hold.size, j] = r @ weights[label]
            if label in covs:
                parts = covs[label].decompose(weights[label])
                predicted[b0 : b0 + hold.size, j] = float(parts.total_vol)
                factor_part[b0 : b0 + hold.size, j] = float(parts.factor_vol)
        gross.append([float(np.abs(weights[label]).sum()) for label in labels])
        n_common.append(positions.size)
        rebuilds.append(dates[t])
    out_dates = dates[out_rows]
    return {
        "realised": pd.DataFrame(realised, index=out_dates, columns=labels),
        "predicted": pd.DataFrame(predicted, index=out_dates, columns=labels),
        "predicted_factor": pd.DataFrame(factor_part, index=out_dates, columns=labels),
        "gross": pd.DataFrame(gross, index=pd.DatetimeIndex(rebuilds), columns=labels),
        "n_stocks": np.asarray(n_common),
    }


def newey_west_t(x: np.ndarray, lags: int) -> float:
    """t statistic of the mean of ``x`` (T,) with a Newey-West (Bartlett) long-run variance."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    e = x - x.mean()
    long_run = e @ e / x.size
    for lag in range(1, lags + 1):
        long_run += 2.0 * (1.0 - lag / (lags + 1)) * (e[lag:] @ e[:-lag]) / x.size
    return float(x.mean() / np.sqrt(long_run / x.size))


def precision_table(result: dict[str, Any], market: pd.Series, reference: str = "fundamental") -> pd.DataFrame:
    """Annualised realised and predicted volatility of the min-variance portfolios, ratio and bias.

    ``realised vol`` = sd of the daily returns x √252; ``predicted vol`` = √(mean predicted
    daily variance) x √252; ``ratio`` = realised / predicted (> 1: risk under-forecast);
    ``bias`` = sd of ``R_t / σ_pred`` over the days (forecast of the last rebuild);
    ``predicted factor vol`` = the factor part of the prediction, annualised likewise;
    ``realised beta`` = OLS slope of the daily returns on ``market`` (Series (date,), the
    Fama-French market excess return) over the same days; ``t vs <reference>`` = the
    Engle-Colacito comparison: Newey-West t statistic (lags = the holding period) of the mean
    of ``R_model² − R_reference²`` (negative: lower realised variance than the reference).
    """
    realised, predicted = result["realised"], result["predicted"]
    table = pd.DataFrame({
        "realised vol": realised.std() * np.sqrt(252),
        "predicted vol": np.sqrt((predicted**2).mean()) * np.sqrt(252),
        "predicted factor vol": np.sqrt((result["predicted_factor"]**2).mean()) * np.sqrt(252),
        "bias": (realised / predicted).std(),
        "mean gross": result["gross"].mean(),
    })
    m = market.reindex(realised.index)
    both = m.notna().to_numpy()
    x = m.to_numpy()[both] - m.to_numpy()[both].mean()
    y = realised.to_numpy()[both]
    table["realised beta"] = (x @ (y - y.mean(axis=0))) / (x @ x)
    base = realised[reference].to_numpy() ** 2
    table[f"t vs {reference}"] = [
        np.nan if label == reference else newey_west_t(realised[label].to_numpy() ** 2 - base, REBALANCE)
        for label in realised.columns
    ]
    table.insert(2, "ratio", table["realised vol"] / table["predicted vol"])
    return table


def mahalanobis(fits: dict[str, Any], returns: np.ndarray, dates: pd.DatetimeIndex, stocks: np.ndarray,
                first_row: int, every: int = 1) -> pd.DataFrame:
    """Daily ``rᵀΣ⁻¹r / N`` of each model on the stocks all models cover and that have a return.

    Parameters
    ----------
    fits, returns, dates, stocks, first_row :
        As in :func:`precision`; outcome days are rows ``first_row + 1 …`` (every ``every``-th).
    every : int
        Stride over the outcome days (1: every day).

    Returns
    -------
    DataFrame (date x model)
        The statistic on each outcome day, with the forecast of the day before.
    """
    index = pd.Index(stocks)
    rows = np.arange(first_row + 1, len(dates), every)
    values = np.full((rows.size, len(fits)), np.nan)
    for i, t in enumerate(rows):
        has_return = np.isfinite(returns[t])
        positions, covs = _common_covariances(fits, dates[t - 1], index, has_return)
        r = returns[t, positions]
        for j, cov in enumerate(covs.values()):
            values[i, j] = float(r @ np.asarray(cov.solve(r))) / positions.size
    return pd.DataFrame(values, index=dates[rows], columns=list(fits))


def _date_axis(ax: Any) -> None:
    """Concise date ticks (years on long windows, months on short ones)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def plot_precision(result: dict[str, Any], table: pd.DataFrame, window: int = 252):
    """Bars of realised vs predicted annualised min-variance volatility, and its rolling realised vol."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_bar, ax_roll = fig.subplots(1, 2, width_ratios=[1, 1.6])
    labels = list(table.index)
    x = np.arange(len(labels))
    ax_bar.bar(x - 0.2, 100 * table["realised vol"], width=0.4, label="realised", color="C0")
    ax_bar.bar(x + 0.2, 100 * table["predicted vol"].fillna(0.0), width=0.4, label="predicted", color="C1")
    for xi, v in zip(x, table["realised vol"]):
        ax_bar.text(xi - 0.2, 100 * v, f"{100 * v:.1f}", ha="center", va="bottom", fontsize=7)
    ax_bar.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax_bar.set_ylabel("annualised volatility, %")
    ax_bar.set_title("Minimum-variance portfolios (lower = better)", fontsize=9)
    ax_bar.legend(fontsize=8, frameon=False)
    rolling = result["realised"].rolling(window, min_periods=window // 2).std() * np.sqrt(252) * 100
    for j, label in enumerate(rolling.columns):
        ax_roll.plot(rolling.index, rolling[label], lw=1.2 if label != "equal weight" else 0.8,
                     ls="-" if label != "equal weight" else ":", color=f"C{j + 2}", label=label)
    ax_roll.set_ylabel(f"realised vol, % (trailing {window} days)")
    ax_roll.set_title("Realised volatility of each model's minimum-variance portfolio", fontsize=9)
    ax_roll.legend(fontsize=8, frameon=False, ncol=2)
    _date_axis(ax_roll)
    return fig


def plot_rolling_bias(biases: dict[str, Any], families: tuple[str, ...] = ("random", "optimised")):
    """Median (and 10-90 % range) rolling bias of each family, one line per model, with the band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4 * len(families)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(families), 1, sharex=True))
    for ax, family in zip(axes, families):
        window = 252
        for j, (label, bias) in enumerate(biases.items()):
            window = bias.settings.get("window", 252)
            block = bias.rolling.to_pandas().loc[:, bias.family.to_numpy() == family]
            ax.plot(block.index, block.median(axis=1), lw=1.2, color=f"C{j + 2}", label=label)
            ax.fill_between(block.index, block.quantile(0.1, axis=1), block.quantile(0.9, axis=1),
                            color=f"C{j + 2}", alpha=0.12, lw=0)
        half = np.sqrt(2.0 / window)
        ax.axhspan(1 - half, 1 + half, color="0.85", zorder=0, label=f"95% band (T={window})")
        ax.axhline(1, color="0.4", lw=0.8)
        ax.set_ylabel("rolling bias statistic")
        ax.set_title(f"{family} portfolios: median rolling {window}-day bias (10-90 % shaded)", fontsize=9)
        ax.legend(fontsize=8, frameon=False, ncol=5)
        _date_axis(ax)
    return fig


def rolling_extremes(biases: dict[str, Any], family: str = "random") -> dict[str, dict[str, float]]:
    """Per model, the extremes of the rolling-bias figure's median line for ``family``.

    The largest median rolling bias over 2010-2012 (the under-forecast episodes) and the
    smallest over 2012-2013 (the calm), as the rolling-bias figure draws them.
    """
    out = {}
    for label, bias in biases.items():
        block = bias.rolling.to_pandas().loc[:, bias.family.to_numpy() == family]
        median = block.median(axis=1)
        out[label] = {"max_2010_2012": float(median.loc["2010":"2012"].max()),
                      "min_2012_2013": float(median.loc["2012":"2013"].min())}
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parser(__doc__.splitlines()[0], start="2007-01-03").parse_args(argv)
    args.burn_in = 504
    import riskmodel as rm

    out = Path(args.out)
    started = time.perf_counter()
    panel = load_panel(args.start, args.end, n_stocks=args.stocks, data=args.data)
    ff = rm.load_ff_factors(args.data)
    dates = pd.DatetimeIndex(panel["date"].values)
    stocks = panel["stock"].to_numpy().astype(str)
    returns = panel["returns"].transpose("date", "stock").to_numpy()
    burn = min(args.burn_in, len(dates) // 2)
    n_random, n_opt, sims = (30, 10, 100) if args.quick else (100, 100, 1000)
    print(f"panel {panel.attrs['window']}: {panel.sizes['stock']} stocks x {panel.sizes['date']} dates; "
          f"burn-in {burn} days (to {dates[burn - 1].date()}); evaluation from the first later day on which every model "
          f"had a forecast the day before, to {dates[-1].date()}")
    print(f"forecast settings shared by all models: {forecast_settings(sims)}")
    print(f"bias families: {n_random} random, {n_opt} optimised (rebuilt every 21 days), the model's pure factors, "
          f"11 cap-weighted sector portfolios (caps of {dates[burn - 1].date()})")

    sectors = sector_portfolios(panel, dates[burn - 1])
    fits, described, seconds = {}, {}, {}
    for label, (description, fit_model) in model_builders(panel, ff, burn, sims).items():
        t0 = time.perf_counter()
        with quiet_fit_warnings():
            fits[label] = fit_model()
        described[label] = f"{description}; {len(fits[label].factors)} factors"
        seconds[label] = time.perf_counter() - t0
        print(f"  {label:<12} {described[label]}: fitted in {seconds[label]:5.1f} s")
    chosen = fits["statistical"].n_factors_chosen.to_numpy()
    chosen = chosen[chosen >= 0]
    print(f"statistical model: Bai-Ng chose {int(chosen[0])} factors on the first extraction "
          f"(range {int(chosen.min())}..{int(chosen.max())} over {chosen.size} extractions; the first is used throughout)")

    # one evaluation period for every model: from the first day all four have a forecast the day before
    first_row = _first_common_forecast(fits, burn - 1)
    eval_start = dates[first_row + 1]
    biases, tables = {}, []
    for label, fit in fits.items():
        with quiet_fit_warnings():
            biases[label] = rm.bias_statistics(fit, ["random", "optimised", "pure_factors", sectors], start=eval_start,
                                               n_random=n_random, n_optimised=n_opt, seed=0)
        tables.append(family_table(biases[label], label))
    table = pd.concat(tables, ignore_index=True)
    lo, hi = biases["fundamental"].band
    print(f"\nBias statistics from {eval_start.date()}, {biases['fundamental'].z.sizes['date']} daily outcomes, 95% band {lo:.3f}..{hi:.3f} "
          f"(calibrated: MRAD ~0.036 at a 252-day window, QLIKE 1.2704)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    after = np.asarray(dates >= eval_start)
    diagnostics = {
        label: {
            "first_factor": fit.factors[0],
            "first_factor_bias": float(biases[label].bias.sel(portfolio=fit.factors[0])),
            "factor_vra": float(np.nanmean(fit.dataset["factor_vra"].to_numpy()[after])),
            "specific_vra": float(np.nanmean(fit.dataset["specific_vra"].to_numpy()[after])),
        }
        for label, fit in fits.items()
    }
    print("\nPer model over the evaluation: bias of the first (market-like) pure factor, mean factor and specific VRA")
    print(pd.DataFrame(diagnostics).T.to_string(float_format=lambda v: f"{v:.3f}"))

    t0 = time.perf_counter()
    prec = precision(fits, returns, dates, stocks, first_row)
    ptable = precision_table(prec, ff["mkt_rf"])
    print(f"\nPrecision: global minimum-variance portfolios (sum 1, long-short) rebuilt every {REBALANCE} days from "
          f"{dates[first_row].date()} ({len(prec['n_stocks'])} rebuilds, {prec['n_stocks'].min()}..{prec['n_stocks'].max()} "
          f"common stocks), held; {len(prec['realised'])} daily outcomes ({time.perf_counter() - t0:.0f} s)")
    print(ptable.to_string(float_format=lambda v: f"{v:.3f}"))

    t0 = time.perf_counter()
    maha = mahalanobis(fits, returns, dates, stocks, first_row)
    n_maha = len(maha)
    mtable = pd.DataFrame({"mean": maha.mean(), "sd": maha.std(), "median": maha.median()})
    print(f"\nMahalanobis r'S^-1 r / N on {n_maha} days (common stocks with a return; calibrated mean 1, "
          f"sd about sqrt(2/N) = {np.sqrt(2 / prec['n_stocks'].mean()):.3f}) ({time.perf_counter() - t0:.0f} s)")
    print(mtable.to_string(float_format=lambda v: f"{v:.3f}"))

    path_prec = save_figure(plot_precision(prec, ptable), out, f"{NAME}_precision")
    path_bias = save_figure(plot_rolling_bias(biases), out, f"{NAME}_rolling_bias")
    facts = {
        "window": panel.attrs["window"],
        "evaluation": f"{eval_start.date()} .. {dates[-1].date()}",
        "n_stocks": panel.sizes["stock"],
        "n_outcomes": int(biases["fundamental"].z.sizes["date"]),
        "band": [lo, hi],
        "settings": {"n_random": n_random, "n_optimised": n_opt, "burn_in": burn, "rebalance": REBALANCE,
                     "hybrid_k": HYBRID_K, "forecast": forecast_settings(sims), "ff_columns": FF_COLUMNS,
                     "returns": "raw total returns for every model (not excess of rf)"},
        "models": described,
        "diagnostics": diagnostics,
        "statistical_n_factors": {"first": int(chosen[0]), "min": int(chosen.min()), "max": int(chosen.max())},
        "bias": {f"{r.model} | {r.family}": {"n": r.n, "mean_bias": r.mean_bias, "median_bias": r.median_bias,
                                              "share_inside": r.share_inside, "mrad": r.mrad, "qlike": r.qlike}
                 for r in table.itertuples()},
        "precision": {
            "first_rebuild": str(dates[first_row].date()),
            "n_rebuilds": len(prec["n_stocks"]),
            "n_days": len(prec["realised"]),
            "common_stocks": [int(prec["n_stocks"].min()), int(prec["n_stocks"].max())],
            "table": {label: {"realised_vol": r["realised vol"], "predicted_vol": r["predicted vol"], "ratio": r["ratio"],
                              "predicted_factor_vol": r["predicted factor vol"], "realised_beta": r["realised beta"],
                              "t_vs_fundamental": r["t vs fundamental"],
                              "bias": r["bias"], "mean_gross": r["mean gross"]} for label, r in ptable.iterrows()},
        },
        "mahalanobis": {"n_days": n_maha, **{label: {"mean": r["mean"], "sd": r["sd"], "median": r["median"]}
                                             for label, r in mtable.iterrows()}},
        # sd of a calibrated Gaussian forecast's statistic, sqrt(2/N) at the mean number of common stocks
        "mahalanobis_gaussian_sd": float(np.sqrt(2 / prec["n_stocks"].mean())),
        "rolling_bias_random_median": rolling_extremes(biases),
        "fit_seconds": seconds,
        "figures": [path_prec.name, path_bias.name],
        "seconds": time.perf_counter() - started,
    }
    write_json(out, NAME, facts)
    print(f"\nwrote {path_prec}, {path_bias} and {out / (NAME + '.json')} in {facts['seconds']:.0f} s")
    return facts


if __name__ == "__main__":
    main()
