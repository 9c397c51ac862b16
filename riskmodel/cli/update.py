"""``riskmodel update MODEL --panel PANEL``: append a panel's new dates to a fitted model.

A zarr model grows in place (:mod:`riskmodel.data.model_store`: the new dates as one more
immutable segment, the state replaced, the switch one atomic rename); a netCDF model is
rewritten (``rm.save``: a temporary file renamed over the old one). Either way a reader
sees the previous version or the new one, and a killed update leaves the previous one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from riskmodel.errors import ModelFileError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("update", help="append a panel's new dates to a fitted fundamental model (.zarr grows in place)")
    p.add_argument("model", help="fitted fundamental model (.zarr: appended atomically; .nc: rewritten)")
    p.add_argument("--panel", required=True, help="panel with the new dates (dates already in the model are checked)")
    p.set_defaults(func=cmd_update)


def _saved_state(path: Path):
    """The state a zarr model saved with one (``rm.save`` of an updated model) holds, read
    without the model's (date, stock) arrays; None when it holds none."""
    import xarray as xr

    from riskmodel.data import io
    from riskmodel.models.update_state import STATE_PREFIX, state_of

    with xr.open_dataset(path, engine="zarr", consolidated=False) as ds:
        names = [n for n in ds.data_vars if str(n).startswith(STATE_PREFIX)]
        if not names:
            return None
        io._check_complete(ds, path, "zarr")
        state = io._load_naming_damage(ds[names], path)
    return state_of(io._restore(state, None))


def _zarr_update(path: Path, panel):
    """Append to a zarr store; returns (rows, state) written, or None when nothing was new."""
    import riskmodel as rm
    from riskmodel._params import settings_from_json
    from riskmodel.data.model_store import append_update, read_state
    from riskmodel.models.fitted_factor import MODEL_KIND
    from riskmodel.models.update import advance
    from riskmodel.models.update_state import build_state, state_of

    attrs, state = read_state(path)
    if attrs.get("riskmodel_kind") != MODEL_KIND:
        raise ModelFileError(
            f"{str(path)!r} holds {attrs.get('riskmodel_kind')!r}, not a fitted fundamental model "
            f"({MODEL_KIND}); only FactorRiskModel fits can be updated"
        )
    settings = attrs["settings"]
    settings = settings_from_json(settings if isinstance(settings, dict) else json.loads(settings))
    if state is None:
        state = _saved_state(path)  # a saved updated model: its state alone, not its history
    if state is None:
        fit = rm.load(path)
        state = state_of(fit.dataset) or build_state(fit)
    result = advance(state, panel, settings)
    if result is not None:
        append_update(path, *result)
    return result


def cmd_update(args: argparse.Namespace) -> None:
    import riskmodel as rm
    from riskmodel.cli.readers import read_input
    from riskmodel.data.targets import storage_format
    from riskmodel.models.fitted_factor import FittedFactorModel

    path = Path(args.model)
    fmt = storage_format(path)
    if not path.exists():
        raise ModelFileError(f"{args.model!r} does not exist; fit a model first (riskmodel fit ... -o {args.model})")
    panel = read_input(args.panel, "panel")
    if fmt == "zarr":
        result = _zarr_update(path, panel)
        rows, state = result if result is not None else (None, None)
        n_dates = None if state is None else int(state["update_n_dates"])
        n_stocks = None if state is None else state.sizes["stock"]
    else:
        fit = read_input(args.model, "fitted model")
        if not isinstance(fit, FittedFactorModel):
            raise ModelFileError(f"{args.model!r} is a {type(fit).__name__}; only FactorRiskModel fits can be updated")
        new = fit.update(panel)
        rows = None if new is fit else new.dataset.isel(date=slice(fit.dataset.sizes["date"], None))
        if rows is not None:
            rm.save(new, path)
        n_dates, n_stocks = new.dataset.sizes["date"], new.dataset.sizes["stock"]
    if rows is None:
        print(f"{args.model}: the panel has no date after the model's last one; nothing written")
        return
    dates = rows["date"].to_numpy()
    print(f"{args.model}: appended {dates.size} date(s), {str(dates[0])[:10]} .. {str(dates[-1])[:10]}; "
          f"now {n_dates} dates x {n_stocks} stocks")
