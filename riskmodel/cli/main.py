"""The ``riskmodel`` command line: thin wrappers over the public API.

User errors (a riskmodel ``PanelError``, a missing file, a full disk) print one line and
exit with status 2; Ctrl-C prints one line and exits with 130, SIGTERM / SIGHUP with
128 + the signal's number. Nothing else is caught.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from riskmodel.errors import InvalidParameterError, PanelError
from riskmodel.data.io import check_free_space, check_target
from riskmodel.cli.readers import read_factor_file, read_input, read_weights, same_file
from riskmodel.cli import panel as panel_command
from riskmodel.cli.panel import US_EQUITIES, _descriptor_names, _panel_from_csv, cmd_panel  # noqa: F401 (re-exported)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _industry(value: str) -> str | None:
    return None if value.lower() in {"none", ""} else value


#: FactorRiskModel settings that have their own ``riskmodel fit`` flag.
_FIT_FLAG_SETTINGS = {"styles": "--styles", "industry": "--industry", "covariance": "--factor-returns-only",
                      "statistical_factors": "--kind hybrid --k", "progress": "--quiet", "min_history": "--min-history"}


def _setting_value(raw: str) -> object:
    """``none`` -> None, ``true``/``false`` -> bool, else an int, a float (``inf``) or the text."""
    word = raw.strip().lower()
    if word == "none":
        return None
    if word in {"true", "false"}:
        return word == "true"
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw.strip()


def _fit_settings(pairs: Sequence[str] | None) -> dict[str, object]:
    """``--set NAME=VALUE`` pairs as FactorRiskModel keyword arguments (names checked here,
    values by the model)."""
    import inspect

    import riskmodel as rm

    known = [name for name in inspect.signature(rm.FactorRiskModel).parameters if name not in _FIT_FLAG_SETTINGS]
    settings: dict[str, object] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidParameterError(f"--set {pair!r}: expected NAME=VALUE, e.g. --set vol_half_life=42")
        if name in _FIT_FLAG_SETTINGS:
            raise InvalidParameterError(f"--set {name}: use {_FIT_FLAG_SETTINGS[name]} instead")
        if name not in known:
            raise InvalidParameterError(f"--set {name}: unknown setting; the settings are {', '.join(known)}")
        if name in settings:
            raise InvalidParameterError(f"--set {name}: given twice")
        settings[name] = _split(raw) if name == "fixed_styles" else _setting_value(raw)
    return settings


def _read_input_panel(path: str):
    return read_input(path, "panel")


def _read_input_model(path: str):
    return read_input(path, "fitted model")


# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> None:
    import riskmodel as rm

    check_target(args.output, "panel")  # fail before the long work, not after: format, folder, what is there

    if args.hidden < 0:
        raise InvalidParameterError(f"--hidden {args.hidden}: the number of hidden factors must be >= 0")
    hidden = None
    if args.hidden:
        hidden = [{"name": f"hidden{j}", "n_members": args.hidden_members, "corr": args.hidden_corr} for j in range(args.hidden)]
    panel = rm.simulate(n_stocks=args.stocks, n_days=args.days, seed=args.seed, hidden=hidden, spend=args.spend)
    rm.save(panel, args.output)
    print(f"wrote {args.output}: {panel.sizes['date']} dates x {panel.sizes['stock']} stocks, styles {panel.attrs['styles']}")


def cmd_fit(args: argparse.Namespace) -> None:
    import riskmodel as rm

    if same_file(args.panel, args.output):
        raise PanelError(f"-o {args.output}: the output is the input panel; write the model to another path")
    check_target(args.output, "fitted model")  # fail before the long work, not after: format, folder, what is there
    _check_fit_options(args)
    settings = _fit_settings(args.set)
    if settings and args.kind in ("time-series", "statistical"):
        raise InvalidParameterError(f"--set applies to --kind fundamental or hybrid, not {args.kind}")
    if args.preset and args.kind in ("time-series", "statistical"):
        raise InvalidParameterError(f"--preset applies to --kind fundamental or hybrid, not {args.kind}")
    if args.min_history is not None:
        if args.kind in ("time-series", "statistical"):
            raise InvalidParameterError(f"--min-history applies to --kind fundamental or hybrid, not {args.kind}")
        if args.min_history < 1:
            raise InvalidParameterError(f"--min-history {args.min_history}: give a number of dates >= 1")
        settings["min_history"] = args.min_history
    if args.no_clip:
        if "return_clip" in settings:
            raise InvalidParameterError("--no-clip and --set return_clip=... contradict each other; give one")
        settings["return_clip"] = None
    panel = _read_input_panel(args.panel)
    if "returns" in getattr(panel, "data_vars", ()):  # a model holds at least its residuals
        check_free_space(args.output, int(panel["returns"].nbytes))
    forecasts = {"covariance": not args.factor_returns_only}
    if args.kind == "time-series":
        if not args.factors:
            raise PanelError("--kind time-series needs --factors FILE (CSV: a date column, one column per factor)")
        factors = read_factor_file(args.factors)
        fit = rm.TimeSeriesFactorModel(progress=not args.quiet).fit(panel, factors)
    elif args.kind == "statistical":
        with _option_named("--n-factors", args.n_factors, "n_factors"):
            fit = rm.StatisticalFactorModel(n_factors=args.n_factors, progress=not args.quiet).fit(panel)
    else:
        from riskmodel.cli.precompile import compiling_ahead

        k = (1 if args.k is None else args.k) if args.kind == "hybrid" else 0
        if args.preset == "construction":  # the named setting under the explicit options
            from riskmodel.models.settings import CONSTRUCTION_SETTINGS

            settings = {**CONSTRUCTION_SETTINGS, **settings}
            preset_k = settings.pop("statistical_factors")
            k = preset_k if args.k is None else args.k
        model = rm.FactorRiskModel(
            styles=_split(args.styles),
            industry=_industry(args.industry),
            statistical_factors=k,
            progress=not args.quiet,
            **forecasts,
            **settings,
        )
        with compiling_ahead(*(["specific"] if model.covariance else [])) as helper:  # a first run compiles in two processes
            _first_run_notice(helper)
            with _option_named("--k", args.k, "statistical_factors", "k="):
                fit = model.fit(panel)
    rm.save(fit, args.output)
    print(fit.summary())
    _late_forecast_hint(fit, args)
    print(f"wrote {args.output}")


#: ``riskmodel fit``: a first forecast later than this many dates into the panel gets a hint.
_LATE_FIRST_FORECAST = 252


def _late_forecast_hint(fit, args: argparse.Namespace) -> None:
    """Say how to start the forecasts sooner when the warm-up took more than a year of the data."""
    if args.kind not in ("fundamental", "hybrid") or "factor_cov" not in fit.dataset:
        return
    started = np.isfinite(fit.dataset["factor_cov"].to_numpy()).any(axis=(1, 2))
    if started.any() and int(np.argmax(started)) > _LATE_FIRST_FORECAST:
        print(f"the first forecast comes {int(np.argmax(started))} dates into the panel: for a short history, build the "
              "panel with `riskmodel panel ... --short-history` and fit with --min-history 42 "
              "(docs/guide/real-data-walkthrough.md)")


def _check_fit_options(args: argparse.Namespace) -> None:
    """Options that belong to another --kind are errors, not ignored; sizes are whole numbers."""
    if args.n_factors is not None and args.kind != "statistical":
        raise InvalidParameterError(f"--n-factors applies to --kind statistical, not {args.kind}")
    if args.factors is not None and args.kind != "time-series":
        raise InvalidParameterError(f"--factors applies to --kind time-series, not {args.kind}")
    if args.k is not None and args.kind != "hybrid" and not (args.preset and args.kind == "fundamental"):
        raise InvalidParameterError(f"--k applies to --kind hybrid or --preset construction, not {args.kind}")
    if args.kind == "hybrid" and args.k is not None and args.k < 1:
        raise InvalidParameterError(f"--k {args.k}: a hybrid model adds at least one statistical factor (--k >= 1)")
    if args.n_factors is not None and args.n_factors < 1:
        raise InvalidParameterError(f"--n-factors {args.n_factors}: give a number of factors >= 1 (n_factors)")


@contextlib.contextmanager
def _option_named(option: str, value: object, *settings: str) -> Iterator[None]:
    """An error about one of ``settings`` names the command-line option that set it."""
    try:
        yield
    except (PanelError, InvalidParameterError) as exc:
        if any(setting in str(exc) for setting in settings) and option not in str(exc):
            raise type(exc)(f"{option} {value}: {exc}") from None
        raise


def _first_run_notice(helper: object | None) -> None:
    """Say why a first run is slow (a helper is started only when the kernels are not cached)."""
    if helper is not None:
        print("first run on this machine: compiling the numba kernels (cached for later runs)", file=sys.stderr)


def cmd_risk(args: argparse.Namespace) -> None:
    if args.top < 0:
        raise InvalidParameterError(f"--top {args.top}: the number of contributions to list must be >= 0")
    fit = _read_input_model(args.model)
    cov = fit.covariance(_as_of(fit, args.date))
    weights = read_weights(args.weights)
    weights.columns = weights.columns.astype(str)
    report = _risk_reports(cov.decompose(weights), args.top)  # every portfolio in one batch
    if args.json:
        print(json.dumps({"date": str(pd.Timestamp(cov.date).date()), "portfolios": report}, indent=2))
        return
    print(f"risk forecast for the day after {pd.Timestamp(cov.date).date()} ({cov.n_stocks} stocks, {cov.n_factors} factors)")
    for name, rep in report.items():
        print(f"\n[{name}] volatility {rep['volatility']:.4%}/day ({rep['volatility_annual']:.2%}/yr): "
              f"factor {rep['factor_volatility']:.4%}, specific {rep['specific_volatility']:.4%}")
        width = max(map(len, [*rep["top_factors"], *rep["top_stocks"], "factor"]))
        print("  top factor contributions (to daily vol):")
        for factor, value in rep["top_factors"].items():
            print(f"    {factor:<{width}s}  {value:+.4%}")
        print("  top stock contributions (to daily vol):")
        for stock, value in rep["top_stocks"].items():
            print(f"    {stock:<{width}s}  {value:+.4%}")


#: ``risk --date``: a date at most this many days after the model's last date (a weekend, a
#: holiday stretch) means the last date; a later one is an error (the forecast would be stale).
_AS_OF_DAYS = 7


def _as_of(fit, date: str | None) -> pd.Timestamp | None:
    """``--date``: the model's last trading day on or before it; a day that is not one of the
    model's (a weekend, a holiday) is said in one line on stderr."""
    if date is None:
        return None
    try:
        stamp = pd.Timestamp(date)
    except (TypeError, ValueError):
        raise PanelError(f"--date {date!r} is not a date (write it as YYYY-MM-DD)") from None
    dates = pd.DatetimeIndex(fit.dates)
    position = int(dates.searchsorted(stamp, side="right")) - 1
    if position < 0:
        raise PanelError(f"--date {stamp.date()} is not in the model: before its first date {dates[0].date()}")
    if stamp - dates[-1] > pd.Timedelta(days=_AS_OF_DAYS):
        raise PanelError(f"--date {stamp.date()} is not in the model: more than {_AS_OF_DAYS} days after its last date "
                         f"{dates[-1].date()}; fit the model on data up to that date")
    if dates[position] != stamp:
        late = f" (the model ends on {dates[-1].date()})" if position == len(dates) - 1 else ""
        print(f"riskmodel risk: warning: {stamp.date()} is not a trading day of the model{late}; "
              f"using the last trading day before it, {dates[position].date()}", file=sys.stderr)
    return dates[position]


def _risk_reports(dec, top: int) -> dict[str, dict]:
    """Totals and the ``top`` factor and stock contributions (by size) of each portfolio of a
    batched decomposition, keyed by portfolio."""
    factor_contrib = dec.factor_contributions.transpose("portfolio", "factor")
    stock_contrib = dec.component_contributions.transpose("portfolio", "stock")
    factors, stocks = factor_contrib["factor"].values, stock_contrib["stock"].values
    vol, factor_vol, specific_vol = (np.asarray(v.values) for v in (dec.total_vol, dec.factor_vol, dec.specific_vol))

    def largest(labels: np.ndarray, row: np.ndarray) -> dict[str, float]:
        order = np.argsort(-np.abs(row), kind="stable")[:top]
        return {str(labels[k]): float(row[k]) for k in order}

    return {
        str(name): {
            "volatility": float(vol[i]),
            "volatility_annual": float(vol[i]) * np.sqrt(252),
            "factor_volatility": float(factor_vol[i]),
            "specific_volatility": float(specific_vol[i]),
            "top_factors": largest(factors, factor_contrib.values[i]),
            "top_stocks": largest(stocks, stock_contrib.values[i]),
        }
        for i, name in enumerate(factor_contrib["portfolio"].values)
    }


def cmd_alpha(args: argparse.Namespace) -> None:
    import riskmodel as rm

    panel = _read_input_panel(args.panel)
    if args.signal not in panel:
        raise PanelError(f"the panel has no signal variable {args.signal!r} (has {sorted(map(str, panel.data_vars))})")
    signal = panel[args.signal]
    if set(signal.dims) != {"date", "stock"} or signal.dtype.kind not in "fiub":
        raise PanelError(f"signal {args.signal!r}: a signal is a numeric (date, stock) variable; {args.signal!r} has dims "
                         f"{tuple(signal.dims)} and dtype {signal.dtype}")
    controls = _split(args.controls) or []
    industry = "industry" if "industry" in controls else None
    controls = [c for c in controls if c != "industry"]
    sig = rm.factor_from_signal(panel[args.signal], panel, controls=controls, industry=industry)
    lists = {}
    for path in args.against or []:
        lists[_list_name(path)] = read_factor_file(path)
    if not lists:
        model = rm.FactorRiskModel(covariance=False, industry=industry if industry else None, progress=False)
        lists["full model"] = model.fit(panel).factor_returns
    result = rm.alpha_test(sig.returns, lists, lags=args.lags)
    print(f"signal {args.signal!r} neutralised to {controls + ([industry] if industry else [])}")
    print(result.summary())


def _list_name(path: str) -> str:
    """A factor list's name: its file name without ``.csv`` / ``.csv.gz``."""
    name = Path(path).name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return name


def cmd_demo(args: argparse.Namespace) -> None:
    from riskmodel.cli.precompile import compiling_ahead
    from riskmodel.cli.demo import run_demo

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise PanelError(f"-o {args.output}: an existing file; the demo writes a folder of figures and a report")
    for option, value, least in (("--stocks", args.stocks, 1), ("--days", args.days, 2)):
        if value < least:
            raise InvalidParameterError(f"{option} {value}: must be at least {least}")
    with compiling_ahead("specific", "operator") as helper:  # a first run compiles in two processes
        _first_run_notice(helper)
        run_demo(Path(args.output), n_stocks=args.stocks, n_days=args.days, seed=args.seed)


def cmd_bench(args: argparse.Namespace) -> None:
    from riskmodel.cli.bench import run_benchmarks

    run_benchmarks(quick=args.quick, output=Path(args.output),
                   directory=None if args.scripts is None else Path(args.scripts))


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riskmodel", description="Structured equity risk models: Σ = B Σ_f Bᵀ + D.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the whole story on a simulated world; writes a report folder")
    p.add_argument("-o", "--output", default="riskmodel-demo", help="output folder (default: riskmodel-demo)")
    p.add_argument("--stocks", type=int, default=600)
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="write a simulated panel with known truth")
    p.add_argument("-o", "--output", required=True, help="panel file (.nc or .zarr)")
    p.add_argument("--stocks", type=int, default=500)
    p.add_argument("--days", type=int, default=750)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=0, help="number of hidden factors")
    p.add_argument("--hidden-members", type=int, default=100)
    p.add_argument("--hidden-corr", type=float, default=0.15)
    p.add_argument("--spend", action="store_true", help="add a simulated card-spend variable")
    p.set_defaults(func=cmd_simulate)

    panel_command.add_parser(sub)

    p = sub.add_parser("fit", help="fit a factor risk model on a panel")
    p.add_argument("panel", help="panel file (.nc or .zarr)")
    p.add_argument("-o", "--output", required=True, help="model file (.nc or .zarr)")
    p.add_argument(
        "--kind",
        choices=["fundamental", "time-series", "statistical", "hybrid"],
        default="fundamental",
        help="fundamental (characteristics), time-series (given factor returns), statistical (PCA), "
        "hybrid (fundamental + PCA of its residuals)",
    )
    p.add_argument("--factors", help="time-series: CSV of factor returns (date column, one column per factor)")
    p.add_argument("--n-factors", type=int, help="statistical: number of factors (default: Bai-Ng IC_p2)")
    p.add_argument("--k", type=int, default=None, help="hybrid: statistical factors to add (default 1)")
    p.add_argument("--styles", help="comma-separated style variables (default: panel attrs 'styles')")
    p.add_argument("--industry", default="industry",
                   help="the categorical variable whose labels are the industry factors, per stock or per date and "
                   "stock (e.g. industry, sector, industry_pooled), or 'none'")
    p.add_argument("--min-history", type=int, metavar="N",
                   help="dates of factor returns before the first forecast (default max(3 x factors, 42)); "
                   "shorter gives forecasts sooner on a short history, noisier at first")
    p.add_argument("--factor-returns-only", action="store_true", help="skip the covariance forecasts")
    p.add_argument("--no-clip", action="store_true", help="no robust clipping of returns in the fit")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a FactorRiskModel setting (repeatable), e.g. --set vol_half_life=42 --set eigen_sims=0 "
        "--set vra_half_life=none; see help(riskmodel.FactorRiskModel)",
    )
    p.add_argument("--preset", choices=["construction"],
                   help="construction: the setting recommended as an optimiser's input (FactorRiskModel.for_construction: "
                   "10 statistical factors, no eigen adjustment, standardised correlations, vol 42, VRA 21); --k and --set "
                   "override it")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("risk", help="portfolio risk from a fitted model")
    p.add_argument("model", help="fitted model file")
    p.add_argument("--weights", required=True, help="CSV: a 'stock' column and one column of weights per portfolio")
    p.add_argument("--date", help="forecast made at the close of this date (default: the last); a day that is not "
                   "a trading day of the model means the last trading day before it")
    p.add_argument("--top", type=int, default=5, help="contributions to list")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_risk)

    from riskmodel.cli import audit

    audit.add_parser(sub)

    p = sub.add_parser("alpha", help="manufacture a signal's factor and test its alpha")
    p.add_argument("signal", help="signal variable in the panel")
    p.add_argument("--panel", required=True, help="panel file")
    p.add_argument("--controls", default="size,industry", help="comma-separated controls; 'industry' for industry dummies")
    p.add_argument("--against", nargs="*", help="CSV files of known factor returns (date index), one list each")
    p.add_argument("--lags", type=int, help="Newey–West lags (default: 4(T/100)^(2/9))")
    p.set_defaults(func=cmd_alpha)

    from riskmodel.cli import backtest

    backtest.add_parser(sub)
    from riskmodel.cli import update as update_cli
    update_cli.add_parser(sub)

    p = sub.add_parser("bench", help="run the benchmarks and write a Markdown table and JSON")
    p.add_argument("--quick", action="store_true", help="small sizes only (about a minute)")
    p.add_argument("-o", "--output", default="benchmark-results", help="output folder")
    p.add_argument("--scripts", metavar="DIR", default=None,
                   help="folder of bench_<name>.py scripts (default: the source checkout's benchmarks/)")
    p.set_defaults(func=cmd_bench)
    return parser


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Print each warning as one ``riskmodel COMMAND: warning: ...`` line on stderr.

    The library's warnings name the stock, date and variable at fault; the file, line and
    source text that Python adds are noise to a command-line user.
    """

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        print(f"riskmodel {command}: warning: {message}", file=sys.stderr if file is None else file)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _numba_cache_or_fallback(command: str) -> None:
    """A numba that cannot write its cache would fail at the first kernel import: give it a
    private cache for this run instead, and say so in one line."""
    from riskmodel import _atomic

    problem = _atomic.numba_cache_problem()
    if problem is not None:
        _atomic.use_private_numba_cache()
        print(f"riskmodel {command}: warning: {problem}; compiling without a lasting cache "
              "(set NUMBA_CACHE_DIR to a writable folder to keep the compiled kernels)", file=sys.stderr)


#: Ends a progress bar's line on a terminal before an interrupt's message.
_END_BAR = "\r\033[K" if sys.stderr is not None and sys.stderr.isatty() else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``riskmodel`` console script.

    Exit status: 0 done, 2 a user error (one line on stderr), 130 interrupted by Ctrl-C
    (SIGINT), 128 + n ended by signal n (SIGTERM, SIGHUP); an interrupted command leaves no
    temporary file behind and the previous output file as it was.
    """
    from riskmodel import _atomic

    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        with one_line_warnings(args.command), _atomic.signals_as_exceptions(own_process=True):
            _numba_cache_or_fallback(args.command)
            func(args)
    except (PanelError, InvalidParameterError) as exc:
        print(f"riskmodel {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # a missing or unreadable file, a full disk, a read-only folder
        print(f"riskmodel {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{_END_BAR}riskmodel {args.command}: interrupted (Ctrl-C); no partial file was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _atomic.Terminated as exc:
        print(f"{_END_BAR}riskmodel {args.command}: {exc}; no partial file was left", file=sys.stderr)
        return 128 + exc.signum
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
