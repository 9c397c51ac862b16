"""``riskmodel backtest``: rebuild minimum-variance and Σ⁻¹α portfolios from a fitted model
and the shrinkage estimators side by side (:func:`riskmodel.construction.backtest.construction_backtest`)."""

from __future__ import annotations

import argparse

from riskmodel.cli.readers import read_input
from riskmodel.data.io import check_target
from riskmodel.errors import InvalidParameterError, PanelError

#: ``--peers`` words -> the names :func:`~riskmodel.construction.estimators.default_estimators` gives them.
PEERS = {"ledoit-wolf": "Ledoit-Wolf", "oas": "OAS", "nonlinear": "nonlinear shrinkage",
         "ewma": "EWMA (hl 60) shrunk 50% to diagonal", "equal": "1/N"}
PORTFOLIO_WORDS = ("gmv", "gmv_long_only", "alpha")


def _choose(text: str, options: tuple[str, ...] | list[str], option: str) -> list[str]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return list(options)
    if words == ["none"]:
        return []
    unknown = [w for w in words if w not in options]
    if unknown or not words:
        raise InvalidParameterError(f"{option} {text!r}: choose among {', '.join(options)}, all or none")
    return words


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="minimum-variance portfolios from a model and shrinkage peers, side by side")
    p.add_argument("model", help="fitted model file")
    p.add_argument("--panel", required=True, help="the panel the model was fitted on (its returns are held)")
    p.add_argument("--peers", default="all", help=f"comma-separated among {', '.join(PEERS)}; all (default) or none")
    p.add_argument("--portfolios", default="all", help=f"comma-separated among {', '.join(PORTFOLIO_WORDS)}; default all")
    p.add_argument("--every", type=int, default=21, help="trading days between rebuilds (default 21)")
    p.add_argument("--window", type=int, default=252, help="trailing days of returns the peers use (default 252)")
    p.add_argument("--start", help="first rebuild date (default: the first with a forecast and a window)")
    p.add_argument("--end", help="last rebuild date")
    p.add_argument("-o", "--output", help="write the result (.nc or .zarr) for rm.load")
    p.add_argument("--figure", help="write the figure (PNG)")
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> None:
    import riskmodel as rm
    from riskmodel.construction.backtest import construction_backtest
    from riskmodel.construction.estimators import default_estimators

    if args.every < 1 or args.window < 2:
        raise InvalidParameterError(f"--every {args.every} / --window {args.window}: need --every >= 1 and --window >= 2")
    peers = _choose(args.peers, list(PEERS), "--peers")
    portfolios = _choose(args.portfolios, PORTFOLIO_WORDS, "--portfolios")
    if not portfolios:
        raise InvalidParameterError("--portfolios none: choose at least one portfolio")
    if args.output:
        check_target(args.output)  # before the long work
    fit = read_input(args.model, "fitted model")
    panel = read_input(args.panel, "panel")
    if "returns" not in panel.data_vars:
        raise PanelError(f"{args.panel}: no variable 'returns' to hold the portfolios over")
    available = default_estimators(args.window)
    estimators = {"riskmodel": fit, **{PEERS[w]: available[PEERS[w]] for w in peers}}
    result = construction_backtest(panel["returns"], estimators, start=args.start, end=args.end,
                                   rebalance=args.every, window=args.window, portfolios=portfolios)
    print(result.summary())
    if args.output:
        rm.save(result, args.output)
        print(f"wrote {args.output}")
    if args.figure:
        result.plot(path=args.figure)
        print(f"wrote {args.figure}")
