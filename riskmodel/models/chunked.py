"""Out-of-core fitting: the fundamental factor model on dask-backed panels (DESIGN.md, Scale).

:func:`fit_chunked` runs the pipeline of :meth:`riskmodel.FactorRiskModel.fit` on a panel
chunked along ``date`` (e.g. ``rm.load("panel.zarr", chunks={"date": 250})``) with
whatever dask scheduler is current — the threaded one, or a ``dask.distributed`` client —
and gives the same numbers as the in-memory fit (the per-date and per-stock kernels are the
same functions; only the slicing differs):

1. **Exposures and regression**, one task per chunk of dates: the chunk's rows plus the
   ``lag`` rows before it (a slice of the previous chunk, not a shifted copy of the panel)
   go through :func:`~riskmodel.exposures.build_exposures` and
   :func:`~riskmodel.regression.factor_returns`; both are per-date, so the rows kept are
   those of the whole-panel fit.
2. **Factor covariance** in memory: the factor returns are ``(T, m)``.
3. **Specific variance** in one pass: the time-series statistics per stock (residuals
   rechunked to all dates × a block of stocks); then one task per chunk of dates runs the
   structural model, the blend and the shrinkage (rechunked back) and gives the chunk's
   ``B_t²`` rows (the first one from the previous chunk's edge rows); the regime multiplier
   ``λ`` of the chunk's dates is the EWMA of ``B²`` up to them (causal: small tasks on the
   ``(T,)`` series), and the chunk's variance is scaled by ``λ²`` and written.

With ``store`` the ``(date, stock)`` outputs are written to a zarr store chunk by chunk
(no process ever holds a ``T × N`` array) and the returned model reads them lazily from
it; the store is built in a temporary sibling and renamed over ``store`` at the end, so a
failed run leaves an existing store untouched (:mod:`riskmodel.data.io`'s pattern). Its float
arrays are not compressed: daily float data shrink by only ~7% at about five times the
write time. Without ``store`` intermediate results are persisted in the scheduler's memory
and the returned model holds ndarrays.

On a ``dask.distributed`` client each computation is submitted with ``retries`` (a task
that raised is re-run; a task whose worker died is re-run by the scheduler in any case).
The store must be on a file system that every worker sees.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from riskmodel._params import ParameterTable, check_parameters, jsonable_settings, nonneg_int, pos_int_or_none
from riskmodel.covariance.specific import (
    SpecificInputs,
    cross_section_stage,
    final_variance,
    specific_settings,
    time_series_stage,
    vra_b2_rows,
    vra_multiplier,
)
from riskmodel.errors import DimensionError, InvalidParameterError, ModelFileError, VariableTypeError
from riskmodel.models.fitted_factor import MODEL_KIND, VARIABLE_ORDER, FittedFactorModel
from riskmodel.models.pipeline import (
    check_fitted_history,
    check_model_settings,
    fundamental_exposures,
    fundamental_regression,
    model_variables,
)
from riskmodel.models.settings import factor_covariance_kwargs, specific_variance_kwargs

__all__ = ["fit_chunked", "is_dask_backed", "DEFAULT_DATE_CHUNK"]

#: dates per chunk when an in-memory panel is chunked by :func:`fit_chunked`
DEFAULT_DATE_CHUNK = 250
#: float64 cells per block of the per-stock time-series pass (about 16 MB per input block)
_TS_BLOCK_CELLS = 2_000_000
#: Checks of :func:`fit_chunked`'s own settings.
_PARAMETERS: ParameterTable = {
    "date_chunk": (pos_int_or_none, "a positive integer (dates per chunk), or None for the panel's chunks"),
    "stock_chunk": (pos_int_or_none, "a positive integer (stocks per block), or None for about 2 million cells"),
    "retries": (nonneg_int, "an integer >= 0"),
}
_BIG_STAGE1 = ("returns", "residuals", "style_exposure", "regression_weight", "market_cap", "imputed")
_SMALL_STAGE1 = ("factor_returns", "factor_se", "r2", "n_obs", "n_clipped")


def is_dask_backed(obj: Any) -> bool:
    """True when a Dataset or DataArray holds at least one dask-backed variable.

    Parameters
    ----------
    obj : Dataset or DataArray
        Typically a panel opened with ``rm.load(path, chunks={"date": 250})``.

    Returns
    -------
    bool
    """
    if isinstance(obj, xr.DataArray):
        return obj.chunks is not None
    if isinstance(obj, xr.Dataset):
        return any(v.chunks is not None for v in obj.variables.values())
    return False


# ---------------------------------------------------------------------------------------
# input layout
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Coordinates and names of one chunked fit."""

    dates: np.ndarray  # (T,) datetime64[ns]
    stocks: np.ndarray  # (N,) str
    date_chunks: tuple[int, ...]
    styles: tuple[str, ...]  # cleaned styles
    fixed: tuple[str, ...]  # fixed styles (used as given)
    industry: str | None
    labels: tuple[str, ...]  # sorted industry labels

    @property
    def style_names(self) -> tuple[str, ...]:
        return (*self.styles, *self.fixed)

    @property
    def factors(self) -> np.ndarray:
        return np.asarray(["market", *self.labels, *self.style_names], dtype=str)


def _industry_variable(panel: xr.Dataset, name: str) -> tuple[xr.DataArray, tuple[str, ...]]:
    """The industry as integer codes whose ``labels`` attribute is global to the panel.

    Codes must mean the same industry in every chunk: str labels are coded once here
    (a ``(date, stock)`` str variable is therefore read into memory), integer codes with a
    ``labels`` attribute stay lazy.
    """
    from riskmodel.data.panel import industry_codes

    var = panel[name]
    if set(var.dims) == {"stock"}:
        codes, labels = industry_codes(var.compute(), name)
        return xr.DataArray(codes[0], dims=("stock",), attrs={"labels": list(labels)}), labels
    if set(var.dims) != {"date", "stock"}:
        raise DimensionError(
            f"industry variable {name!r} has dims {tuple(var.dims)}; it must have dims (stock) or "
            "(date, stock)"
        )
    var = var.transpose("date", "stock")
    if var.dtype.kind in "iu":
        _, labels = industry_codes(var.isel(date=slice(0, 1)).compute(), name)
        return var, labels
    codes, labels = industry_codes(var.compute(), name)
    return xr.DataArray(codes, dims=("date", "stock"), attrs={"labels": list(labels)}), labels


def _date_chunks(panel: xr.Dataset, date_chunk: int | None, lag: int) -> tuple[int, ...]:
    """Regular date chunks (zarr needs them), each at least ``lag`` rows long."""
    n_dates = panel.sizes["date"]
    current = panel["returns"].chunksizes.get("date") if panel["returns"].chunks is not None else None
    size = date_chunk if date_chunk is not None else (current[0] if current else DEFAULT_DATE_CHUNK)
    size = max(int(size), lag)
    chunks = [size] * (n_dates // size) + ([n_dates % size] if n_dates % size else [])
    if len(chunks) > 1 and chunks[-1] < lag:  # a last chunk shorter than lag joins the previous one
        chunks[-2] += chunks.pop()
    return tuple(chunks) if chunks else (0,)


def _prepare(model: Any, panel: xr.Dataset, date_chunk: int | None) -> tuple[xr.Dataset, _Layout, dict]:
    """Check the panel against the model, normalise coordinates and chunk it along date."""
    from riskmodel.data.panel import validate_panel

    if not isinstance(panel, xr.Dataset):
        raise VariableTypeError(
            f"fit_chunked: panel must be an xarray Dataset (date, stock), got {type(panel).__name__}"
        )
    settings = model.get_params()
    check_model_settings(settings)
    styles = model_variables(panel, settings, first=("returns",), data_vars_only=True)
    settings["styles"] = styles
    coords = validate_panel(xr.Dataset(coords={"date": panel["date"], "stock": panel["stock"]}), require=())
    numeric = list(dict.fromkeys(["returns", model.cap, *styles, *model.fixed_styles]))
    for name in numeric:
        if set(panel[name].dims) != {"date", "stock"}:
            raise DimensionError(
                f"variable {name!r} has dims {tuple(panel[name].dims)}; fit_chunked needs (date, stock): "
                f"transpose or rename it"
            )
    sub = xr.Dataset(
        {name: panel[name].transpose("date", "stock").variable for name in numeric},
        coords={"date": coords["date"].values, "stock": coords["stock"].values},
    )
    labels: tuple[str, ...] = ()
    if model.industry:
        industry, labels = _industry_variable(panel, model.industry)
        sub[model.industry] = industry.variable
    chunks = _date_chunks(panel, date_chunk, model.lag)
    sub = sub.chunk({"date": chunks, "stock": -1})
    layout = _Layout(
        dates=sub["date"].values.astype("datetime64[ns]"),
        stocks=np.asarray(sub["stock"].values).astype(str),
        date_chunks=chunks,
        styles=tuple(styles),
        fixed=tuple(model.fixed_styles),
        industry=model.industry,
        labels=tuple(labels),
    )
    return sub, layout, settings


# ---------------------------------------------------------------------------------------
# stage 1: exposures and regression per chunk of dates
# ---------------------------------------------------------------------------------------


def _stage1_outputs(layout: _Layout) -> dict[str, tuple[tuple[str, ...], tuple[int, ...], Any]]:
    """Outputs of :func:`_regression_block`: dims, shape after the date axis, dtype."""
    N, m, K = len(layout.stocks), len(layout.factors), len(layout.style_names)
    out: dict[str, tuple[tuple[str, ...], tuple[int, ...], Any]] = {
        "factor_returns": (("date", "factor"), (m,), np.float64),
        "factor_se": (("date", "factor"), (m,), np.float64),
        "residuals": (("date", "stock"), (N,), np.float64),
        "r2": (("date",), (), np.float64),
        "n_obs": (("date",), (), np.int64),
        "n_clipped": (("date",), (), np.int64),
        "style_exposure": (("date", "stock", "style"), (N, K), np.float64),
        "regression_weight": (("date", "stock"), (N,), np.float64),
        "market_cap": (("date", "stock"), (N,), np.float64),
        "imputed": (("date", "stock", "style"), (N, K), np.int8),
    }
    if layout.industry:
        out["industry_code"] = (("date", "stock"), (N,), np.int32)
    return out


def _window_panel(current: dict[str, np.ndarray], earlier: dict[str, np.ndarray], fixed: dict[str, Any],
                  attrs: dict[str, dict], dates: np.ndarray, stocks: np.ndarray) -> xr.Dataset:
    """The chunk's rows preceded by the ``p`` earlier rows in ``earlier`` (p = 0: none), as an
    in-memory panel; ``fixed`` holds the variables without a date axis."""
    data: dict[str, Any] = {}
    for name, values in current.items():
        if name in earlier:
            values = np.concatenate([earlier[name], values], axis=0)
        data[name] = (("date", "stock"), values, attrs[name])
    for name, values in fixed.items():
        data[name] = (("stock",), values, attrs[name])
    return xr.Dataset(data, coords={"date": dates, "stock": stocks})


def _regression_block(current: dict[str, np.ndarray], earlier: dict[str, np.ndarray], fixed: dict[str, Any],
                      *, start: int, layout: _Layout, settings: dict, attrs: dict[str, dict]
                      ) -> dict[str, np.ndarray]:
    """Exposures and WLS of one chunk of dates starting at row ``start`` (the ``lag`` rows
    before it come in ``earlier``): the first two stages of
    :func:`~riskmodel.models.pipeline.fit_fundamental`."""
    p = next((len(v) for v in earlier.values()), 0)
    rows = next(iter(current.values())).shape[0]
    panel = _window_panel(current, earlier, fixed, attrs, layout.dates[start - p: start + rows], layout.stocks)
    exposures = fundamental_exposures(panel, list(layout.styles), settings)
    wls = fundamental_regression(panel, exposures, settings)
    keep = slice(p, None)
    out = {
        "factor_returns": wls.factor_returns[keep],
        "factor_se": wls.se[keep],
        "residuals": wls.residuals[keep],
        "r2": wls.r2[keep],
        "n_obs": np.asarray(wls.n_obs[keep], dtype=np.int64),
        "n_clipped": np.asarray(wls.n_clipped[keep], dtype=np.int64),
        "style_exposure": exposures.styles[keep],
        "regression_weight": exposures.weights[keep],
        "market_cap": exposures.cap[keep],
        "imputed": exposures.imputed[keep].astype(np.int8),
    }
    if layout.industry:
        out["industry_code"] = exposures.industry[keep].astype(np.int32)
    return out


def _regression_stage(sub: xr.Dataset, layout: _Layout, settings: dict) -> xr.Dataset:
    """Lazy stage-1 outputs (date-chunked) plus the panel's returns.

    One task per chunk of dates reads the chunk and only the ``lag`` rows before it (a slice
    of the previous chunk), and runs the in-memory stages on them.
    """
    lag = settings["lag"]
    dc = layout.date_chunks
    attrs = {name: dict(var.attrs) for name, var in sub.data_vars.items()}
    dated = {name: var.data.rechunk({0: dc, 1: -1}) for name, var in sub.data_vars.items() if "date" in var.dims}
    fixed = {name: np.asarray(var.values) for name, var in sub.data_vars.items() if "date" not in var.dims}
    blocks = {name: data.to_delayed().reshape(-1) for name, data in dated.items()}
    task = dask.delayed(_regression_block, pure=True)
    specs = _stage1_outputs(layout)
    parts: dict[str, list[da.Array]] = {name: [] for name in specs}
    start = 0
    for k, rows in enumerate(dc):
        p = min(lag, start)
        earlier = {name: data[start - p: start].to_delayed().reshape(-1)[0] for name, data in dated.items()} if p else {}
        out = task({name: b[k] for name, b in blocks.items()}, earlier, fixed, start=start, layout=layout,
                   settings=settings, attrs=attrs)
        for name, (_, tail, dtype) in specs.items():
            parts[name].append(da.from_delayed(out[name], shape=(rows, *tail), dtype=dtype))
        start += rows
    coords = {"date": layout.dates, "stock": layout.stocks, "factor": layout.factors,
              "style": np.asarray(layout.style_names, dtype=str)}
    result = xr.Dataset({name: (dims, da.concatenate(parts[name], axis=0)) for name, (dims, _, _) in specs.items()},
                        coords=coords)
    result["returns"] = sub["returns"]
    if layout.industry:
        result["industry_code"].attrs["labels"] = json.dumps(list(layout.labels))
    return result


# ---------------------------------------------------------------------------------------
# stage 3: specific variance
# ---------------------------------------------------------------------------------------


def _ts_block(u: np.ndarray, *, s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-2 of the specific variance on a block of stocks over all dates
    (:func:`~riskmodel.covariance.specific.time_series_stage`): ts_var, h (int32), gamma, each
    (T, n); kept apart (no stacked float64 copy) so the rechunk to dates moves 20 bytes a cell."""
    return time_series_stage(np.ascontiguousarray(u, dtype=np.float64), s)


def _structural_block(residuals: np.ndarray, styles: np.ndarray, weights: np.ndarray, cap: np.ndarray,
                      industry: np.ndarray | None, ts_var: np.ndarray, h: np.ndarray, gamma: np.ndarray,
                      *, s: dict, n_industries: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 3-5 of the specific variance on one chunk of dates, all stocks
    (:func:`~riskmodel.covariance.specific.cross_section_stage`, then ``B_t²``).

    Returns ``pre_vra_var`` (the final variance with ``λ = 1``, masked to stocks with a
    residual and complete styles), the chunk's ``B_t²`` rows (:func:`vra_b2_rows`; its first
    row, which needs the previous chunk's last date, NaN) and the edge rows that first row
    needs, stacked ``(1, 4, N)``: this chunk's first residuals and its last shrunk
    volatilities, caps and ESTU (as 0/1). The shrunk volatility and the ESTU never leave the task.
    """
    inputs = SpecificInputs(
        residuals=np.ascontiguousarray(residuals, dtype=np.float64),
        styles=np.ascontiguousarray(styles, dtype=np.float64),
        industry=None if industry is None else np.ascontiguousarray(industry, dtype=np.int32),
        n_industries=n_industries,
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        cap=np.ascontiguousarray(cap, dtype=np.float64),
    )
    ts_var, gamma = np.ascontiguousarray(ts_var), np.ascontiguousarray(gamma)
    cs = cross_section_stage(ts_var, np.ascontiguousarray(h, dtype=np.int32), gamma, inputs, s)
    u = inputs.residuals
    b2 = np.full(u.shape[0], np.nan)
    if u.shape[0] > 1:
        b2[1:] = vra_b2_rows(u[1:], cs.sig_sh[:-1], inputs.cap[:-1], cs.estu[:-1])
    edge = np.stack([u[0], cs.sig_sh[-1], inputs.cap[-1], cs.estu[-1].astype(np.float64)])[None]
    pre = final_variance(u, cs.sig_sh, ts_var if s["shrink"] == 0 else None, gamma,
                         np.ones(u.shape[0]), s["shrink"], cs.complete)
    return pre, b2, edge


def _chunk_b2(rows: np.ndarray, previous_edge: np.ndarray | None, edge: np.ndarray) -> np.ndarray:
    """One chunk's ``B²`` rows with its first row filled: from the chunk's own first residuals
    and the previous chunk's last shrunk volatilities, caps and ESTU (the panel's first date
    has no ``B²``, as in :func:`~riskmodel.covariance.specific.vra_stage`)."""
    b2 = rows.copy()
    if previous_edge is not None and len(b2):
        _, sig_last, cap_last, estu_last = previous_edge[0]
        b2[0] = vra_b2_rows(edge[0, 0][None], sig_last[None], cap_last[None], estu_last[None] > 0)[0]
    return b2


def _scaled_variance(pre: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``var = (σ_SH² masked) · λ²`` row by row."""
    return pre * (lam * lam)[:, None]


def _chunk_lambda(*b2_parts: np.ndarray, half_life: float | None, rows: int) -> np.ndarray:
    """``λ`` of the last ``rows`` dates from the ``B²`` series up to them: the EWMA is causal,
    so :func:`vra_multiplier` of the prefix gives those dates' values bit for bit."""
    series = np.concatenate(b2_parts)
    return vra_multiplier(series, half_life)[len(series) - rows:]


def _stock_chunk(n_dates: int, n_stocks: int, stock_chunk: int | None) -> int:
    """Stocks per block of the time-series pass (multiples of the kernel's 8-stock blocks)."""
    if stock_chunk is None:
        stock_chunk = max(8, (_TS_BLOCK_CELLS // max(n_dates, 1)) // 8 * 8)
    return int(min(stock_chunk, max(n_stocks, 1)))


def _specific_stage(stage1: xr.Dataset, layout: _Layout, s: dict, stock_chunk: int
                    ) -> xr.Dataset:
    """Lazy ``specific_var`` (date-chunked) and ``specific_vra`` in one pass: a chunk's pre-VRA
    variance (:func:`_structural_block`) is scaled by its ``λ`` (:func:`_chunk_lambda`, from the
    ``B²`` rows up to its last date) before it leaves memory: no pre-VRA store, no second pass."""
    u = stage1["residuals"].data
    T, N = u.shape
    dc = layout.date_chunks
    # task-based rechunks (peer-to-peer cancelled whole runs with "lost dependencies" here,
    # dask/distributed#9163), planned by dask's default threshold: forced into one stage
    # (array.rechunk.threshold 1,000) every split piece was alive at once and the large fit
    # of bench_scale spilled to disk (its specific pass 40 -> 341 s)
    with dask.config.set({"array.rechunk.method": "tasks"}):
        u_by_stock = u.rechunk({0: -1, 1: stock_chunk})
        ts_task = dask.delayed(_ts_block, nout=3, pure=True)
        ts_parts: list[list[da.Array]] = [[], [], []]
        for block, width in zip(u_by_stock.to_delayed(optimize_graph=False).reshape(-1), u_by_stock.chunks[1]):
            out = ts_task(block, s=s)
            for i, dtype in enumerate((np.float64, np.int32, np.float64)):
                ts_parts[i].append(da.from_delayed(out[i], shape=(T, width), dtype=dtype))
        # not optimised one by one: each array's own fusion would run the ts task once per array
        ts_blocks = [da.concatenate(p, axis=1).rechunk({0: dc, 1: -1}).to_delayed(optimize_graph=False).reshape(-1)
                     for p in ts_parts]
    names = ["residuals", "style_exposure", "regression_weight", "market_cap"]
    if layout.industry:
        names.append("industry_code")
    blocks = [stage1[name].data.rechunk({0: dc, **{a: -1 for a in range(1, stage1[name].ndim)}}).to_delayed()
              for name in names]
    task = dask.delayed(_structural_block, nout=3, pure=True)
    join, lam_task = dask.delayed(_chunk_b2, pure=True), dask.delayed(_chunk_lambda, pure=True)
    scale = dask.delayed(_scaled_variance, pure=True)
    final, lams, b2, previous_edge = [], [], [], None
    for k, rows in enumerate(dc):
        parts = [b.reshape(-1)[k] for b in blocks]
        industry = parts[4] if layout.industry else None
        out = task(*parts[:4], industry, *(b[k] for b in ts_blocks), s=s, n_industries=len(layout.labels))
        b2.append(join(out[1], previous_edge, out[2]))
        lam = lam_task(*b2, half_life=s["vra_half_life"], rows=rows)
        final.append(da.from_delayed(scale(out[0], lam), shape=(rows, N), dtype=np.float64))
        lams.append(da.from_delayed(lam, shape=(rows,), dtype=np.float64))
        previous_edge = out[2]
    # one Dataset: written (or persisted) in one graph, so each block's tasks run once
    return xr.Dataset({"specific_var": (("date", "stock"), da.concatenate(final, axis=0)),
                       "specific_vra": (("date",), da.concatenate(lams))},
                      coords={"date": layout.dates, "stock": layout.stocks})


# ---------------------------------------------------------------------------------------
# where intermediate results live: a zarr store being built, or the scheduler's memory
# ---------------------------------------------------------------------------------------


def _compute_kwargs(retries: int) -> dict[str, Any]:
    """``retries`` for a distributed client (the local schedulers do not take it)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is optional
        return {}
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    return {"retries": int(retries)} if isinstance(owner, Client) else {}


class _Sink:
    """Materialise lazy Datasets (and compute small results in the same pass).

    With a path, variables are appended to a zarr store (``tmp``) and read back lazily.
    Without, they are persisted in memory.
    """

    def __init__(self, tmp: Path | None, date_chunks: tuple[int, ...], kwargs: dict,
                 timings: dict[str, float] | None = None):
        self.tmp, self.date_chunks, self.kwargs = tmp, date_chunks, kwargs
        self.timings = timings
        self._started: set[Path] = set()

    def timed(self, label: str, started: float) -> None:
        """Record the wall seconds since ``started`` under ``label`` (when timings are kept)."""
        if self.timings is not None:
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - started

    def put(self, ds: xr.Dataset, *small: Any, label: str = "write") -> tuple[xr.Dataset, list[Any]]:
        """Write (or persist) ``ds`` and compute ``small`` in one pass; return lazy ``ds`` and ``small``."""
        started = time.perf_counter()
        try:
            return self._put(ds, *small)
        finally:
            self.timed(label, started)

    def _put(self, ds: xr.Dataset, *small: Any) -> tuple[xr.Dataset, list[Any]]:
        target = self.tmp
        if target is None:
            ds, *small = dask.persist(ds, *small, **self.kwargs)
            return ds, list(dask.compute(*small, **self.kwargs))
        if not ds.data_vars:
            return ds, list(dask.compute(*small, **self.kwargs))
        from riskmodel.data.io import prepare_for_disk

        mode = "a" if target in self._started else "w-"
        prepared = prepare_for_disk(ds)
        # float arrays uncompressed: daily returns, exposures and variances shrink by ~7% at
        # about 5x the write time, and writing is most of an out-of-core fit's work
        encoding = {name: {"compressors": None} for name, var in prepared.data_vars.items() if var.dtype.kind == "f"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zarr v3 "unstable spec" notes
            write = prepared.to_zarr(target, mode=mode, zarr_format=3, consolidated=False, compute=False,
                                     encoding=encoding)
            self._started.add(target)
            _, *small = dask.compute(write, *small, **self.kwargs)
            opened = xr.open_dataset(target, engine="zarr", consolidated=False, chunks={})
        lazy = opened[list(ds.data_vars)].chunk({"date": self.date_chunks})
        return lazy.assign_coords({name: ds[name].values for name in ds.coords}), list(small)


# ---------------------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------------------


def fit_chunked(
    model: Any,
    panel: xr.Dataset,
    *,
    store: str | Path | None = None,
    date_chunk: int | None = None,
    stock_chunk: int | None = None,
    retries: int = 2,
    timings: dict[str, float] | None = None,
) -> Any:
    """Fit a :class:`~riskmodel.FactorRiskModel` on a dask-backed panel, chunk by chunk.

    Parameters
    ----------
    model : FactorRiskModel
        The estimator; its settings are used exactly as :meth:`FactorRiskModel.fit` uses them.
    panel : Dataset (date, stock)
        Dask-backed (e.g. ``rm.load("panel.zarr", chunks={"date": 250})``) or in memory, with
        ``returns``, the cap, the styles and (optionally) the industry. Chunks along ``stock``
        are merged: each task sees every stock of its dates.
    store : str or Path, optional
        A ``.zarr`` path: the fitted model is written there (atomically: built in a
        temporary sibling, then renamed over ``store``) and returned reading lazily from it.
        ``None``: the result is held in memory.
    date_chunk : int, optional
        Dates per chunk; default the panel's ``returns`` chunk along date (or
        :data:`DEFAULT_DATE_CHUNK` for an in-memory panel). Chunks are made regular and at
        least ``model.lag`` long.
    stock_chunk : int, optional
        Stocks per block of the per-stock time-series pass of the specific risk; default
        about 2 million cells per block.
    retries : int, default 2
        Retries of a failed task on a ``dask.distributed`` client.
    timings : dict, optional
        Filled with the wall seconds of each pass over the data (keys ``prepare``,
        ``exposures_regression``, ``specific``, ``factor_covariance``, ``small_outputs``,
        ``finish``), to see where the time goes.

    Returns
    -------
    FittedFactorModel
        Same variables as the in-memory fit and the same numbers (to rounding at most);
        with ``store`` its ``(date, stock)`` variables are dask arrays reading the store.

    Raises
    ------
    MissingVariableError, DimensionError, VariableTypeError
        The panel lacks a variable the model names, or has one with other dims.
    InvalidParameterError
        ``store`` is not a ``.zarr`` path, or a chunk size is not a positive integer.
    ModelFileError
        The folder of ``store`` does not exist.

    Notes
    -----
    Warnings of the per-chunk work (imputation counts, singular dates, thin industries) are
    raised where the chunk runs: on a distributed cluster they stay in the worker logs;
    the fitted ``r2`` / ``n_obs`` show the skipped dates. Whatever fails, an existing
    ``store`` is left as it was and the temporary stores are removed. ``model.progress`` is
    not used: follow the run on the dask dashboard (or ``dask.diagnostics.ProgressBar`` on
    the threaded scheduler).

    On one machine, a ``distributed.LocalCluster(processes=False)`` (one worker, a thread per
    core, in the client's process; the kernels release the GIL) is faster than a cluster of
    worker processes: the rechunks of the specific-risk pass and the chunk edges move between
    tasks without being serialised (``benchmarks/bench_scale.py --compare-processes``,
    ``docs/benchmarks.md``).

    Memory: a task holds one chunk of dates for all stocks (about 20 ``(date_chunk, N)``
    float arrays in the exposures step) or all dates for ``stock_chunk`` stocks; the client
    holds the ``(T, m)`` factor returns and the ``(T, m, m)`` factor covariance, and, only
    when ``store`` is None, the whole result.

    Examples
    --------
    >>> import tempfile, pathlib, riskmodel as rm
    >>> from riskmodel.models.chunked import fit_chunked
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = rm.save(rm.simulate(n_stocks=150, n_days=120, seed=0), folder / "panel.zarr")
    >>> panel = rm.load(folder / "panel.zarr", chunks={"date": 40})
    >>> fit = fit_chunked(rm.FactorRiskModel(covariance=False), panel)
    >>> fit.factor_returns.shape
    (120, 14)
    """
    from riskmodel.data.io import (
        check_target,
        move_into_place,
        remove_path,
        remove_stale_siblings,
        sibling_path,
        storage_format,
    )

    check_parameters("fit_chunked", _PARAMETERS, dict(date_chunk=date_chunk, stock_chunk=stock_chunk, retries=retries))
    target = None if store is None else Path(store)
    if target is not None:
        if storage_format(target) != "zarr":
            raise InvalidParameterError(
                f"fit_chunked: store {str(target)!r} must be a '.zarr' path (written chunk by chunk)"
            )
        if not target.parent.is_dir():
            raise ModelFileError(
                f"cannot write {str(target)!r}: the folder {str(target.parent)!r} does not exist; create it first"
            )
        check_target(target)  # refuse a store riskmodel did not write before the long fit
    if timings is not None and not isinstance(timings, dict):
        raise InvalidParameterError(f"fit_chunked: timings must be a dict or None, got {type(timings).__name__}")
    started = time.perf_counter()
    sub, layout, settings = _prepare(model, panel, date_chunk)
    stock_chunk = _stock_chunk(len(layout.dates), len(layout.stocks), stock_chunk)
    tmp = None
    if target is not None:
        remove_stale_siblings(target)
        tmp = sibling_path(target, "tmp")
    sink = _Sink(tmp, layout.date_chunks, _compute_kwargs(retries), timings)
    sink.timed("prepare", started)
    try:
        ds = _run(model, sub, layout, settings, sink, stock_chunk)
        started = time.perf_counter()
        if target is None:
            fitted = _fitted(ds.compute())
            sink.timed("finish", started)
            return fitted
        move_into_place(tmp, target)
    except BaseException:
        if tmp is not None:
            remove_path(tmp)
        raise
    from riskmodel.data.io import load

    fitted = load(target, chunks={"date": layout.date_chunks[0]})
    sink.timed("finish", started)
    return fitted


def _fitted(ds: xr.Dataset) -> FittedFactorModel:
    return FittedFactorModel.from_dataset(ds)


def _run(model: Any, sub: xr.Dataset, layout: _Layout, settings: dict, sink: _Sink,
         stock_chunk: int) -> xr.Dataset:
    """The three stages; returns the fitted Dataset (lazy where materialised by ``sink``)."""
    attrs = {"riskmodel_kind": MODEL_KIND, "settings": json.dumps(jsonable_settings(settings))}
    stage1 = _regression_stage(sub, layout, settings)
    big = stage1[[*_BIG_STAGE1, *(["industry_code"] if layout.industry else [])]]
    big.attrs = attrs
    big, small = sink.put(big, stage1[list(_SMALL_STAGE1)], label="exposures_regression")
    small = small[0]
    # issue 17: no fitted date, or too few for the covariance forecast, is an error (the
    # factor returns are in memory already; the forecasts are the expensive stage)
    check_fitted_history(np.asarray(small["factor_returns"].values), list(layout.factors), len(layout.dates),
                         settings)
    out = xr.merge([small, big], combine_attrs="override")
    if model.covariance:
        out = _forecasts(model, out, layout, sink, stock_chunk)
    out = out[_variable_order(out)]
    out.attrs = attrs
    if sink.tmp is not None:  # the in-memory results join the (date, stock) ones in the store
        held = [name for name, var in out.data_vars.items() if var.chunks is None]
        rest = out[held]
        rest.attrs = attrs
        sink.put(rest, label="small_outputs")
    return out


def _forecasts(model: Any, fitted: xr.Dataset, layout: _Layout, sink: _Sink, stock_chunk: int
               ) -> xr.Dataset:
    """Add ``factor_cov``, ``factor_vra``, ``specific_var`` and ``specific_vra``."""
    from riskmodel.covariance.factor import factor_covariance

    s = specific_settings(**specific_variance_kwargs(model.get_params()))
    # one pass: the time-series and structural stages run once per block, each chunk's
    # variance is scaled by its λ in memory and written with specific_vra
    spec, _ = sink.put(_specific_stage(fitted, layout, s, stock_chunk), label="specific")
    started = time.perf_counter()
    fcov = factor_covariance(np.ascontiguousarray(fitted["factor_returns"].values), **factor_covariance_kwargs(model.get_params()))
    sink.timed("factor_covariance", started)
    factors = layout.factors
    forecasts = xr.Dataset(
        {
            "factor_cov": (("date", "factor", "factor_"), fcov.cov),
            "factor_vra": (("date",), fcov.vra),
        },
        coords={"date": layout.dates, "factor": factors, "factor_": factors},
    )
    return xr.merge([fitted, forecasts, spec], combine_attrs="override")


def _variable_order(ds: xr.Dataset) -> list[str]:
    """The variable order of ``FittedFactorModel._from_parts``."""
    return [name for name in VARIABLE_ORDER if name in ds.data_vars]
