"""The chunked (dask) fit against the in-memory fit, on threads and on a dask.distributed cluster.

Reference: ``FactorRiskModel.fit`` on the same panel read into memory. Every variable of the
fitted Dataset must agree to 1e-12 (relative to the variable's scale), with NaN exactly in
the same cells. The cluster tests share one module-scoped ``LocalCluster`` (2 worker
processes with a memory limit): a worker killed mid-run (a task calls ``os._exit`` the first
time it runs) and a task that always raises (the existing output store must survive).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import InvalidParameterError, MissingVariableError, ModelFileError
from riskmodel.models.chunked import fit_chunked, is_dask_backed

TOL = 1e-12
CHUNK = 50


@pytest.fixture(autouse=True)
def _quiet():
    # the pipeline warns about imputed cells and early thin industries, in both paths alike
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.fixture(scope="module")
def panel_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dask_panel")
    path = folder / "panel.zarr"
    rm.save(rm.simulate(n_stocks=160, n_days=330, seed=3), path)
    return path


@pytest.fixture(scope="module")
def reference(panel_path):
    """In-memory fits (default settings, and a second set of settings) of the stored panel."""
    panel = rm.load(panel_path)
    return {
        "default": rm.FactorRiskModel().fit(panel),
        "other": rm.FactorRiskModel(**OTHER).fit(panel),
    }


OTHER = dict(lag=2, shrink=0.0, blend=False, return_clip=None, fixed_styles=["true_specific_var"],
             eigen_sims=0, specific_vra_half_life=None)


def assert_same_fit(fit, ref, tol=TOL):
    """Every variable, dim, dtype and attribute of two fitted models agree (values to ``tol``)."""
    a, b = ref.dataset, fit.dataset
    assert set(a.data_vars) == set(b.data_vars)
    assert a.attrs["settings"] == b.attrs["settings"]
    assert b.attrs["riskmodel_kind"] == a.attrs["riskmodel_kind"]
    for dim in ("date", "stock", "factor", "style"):
        np.testing.assert_array_equal(a[dim].values, b[dim].values)
    for name in a.data_vars:
        x, y = a[name], b[name].transpose(*a[name].dims)
        assert x.dtype == y.dtype, name
        xv, yv = x.values, np.asarray(y.values)
        if xv.dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(xv), np.isnan(yv), err_msg=name)
            scale = max(float(np.nanmax(np.abs(xv))), 1e-300) if np.isfinite(xv).any() else 1.0
            np.testing.assert_allclose(yv, xv, rtol=0, atol=tol * scale, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(yv, xv, err_msg=name)
    assert a["industry_code"].attrs["labels"] == b["industry_code"].attrs["labels"]


# ---------------------------------------------------------------------------------------
# threaded scheduler
# ---------------------------------------------------------------------------------------


def test_threaded_in_memory_result_matches(panel_path, reference):
    panel = rm.load(panel_path, chunks={"date": CHUNK})
    assert is_dask_backed(panel) and not is_dask_backed(reference["default"].dataset)
    fit = fit_chunked(rm.FactorRiskModel(), panel)
    assert not is_dask_backed(fit.dataset)
    assert_same_fit(fit, reference["default"])


def test_threaded_store_other_settings_and_uneven_chunks(panel_path, reference, tmp_path):
    # lag 2 across chunk boundaries, a last chunk of 330 - 8 * 37 = 34 dates, fixed styles,
    # no shrinkage, no blending, no VRA
    panel = rm.load(panel_path, chunks={"date": 37})
    fit = fit_chunked(rm.FactorRiskModel(**OTHER), panel, store=tmp_path / "fit.zarr")
    assert is_dask_backed(fit.dataset)
    assert fit.dataset["residuals"].chunks[0][0] == 37
    assert_same_fit(fit, reference["other"])
    assert not list(tmp_path.glob(".fit.zarr.*")), "temporary stores left behind"
    # the store is a fitted model for rm.load, lazily
    again = rm.load(tmp_path / "fit.zarr", chunks={"date": 100})
    assert_same_fit(again, reference["other"])


@pytest.mark.parametrize("store", [False, True], ids=["in-memory", "store"])
def test_each_stage_runs_once_per_block(panel_path, tmp_path, monkeypatch, store):
    """The time-series pass runs once per stock block, the exposures and regression and the
    structural model once per date chunk: B² must not recompute them in a graph of its own,
    nor the write of the stage-1 outputs and the factor returns each in theirs."""
    import riskmodel.models.chunked as scale

    calls = {"_ts_block": 0, "_structural_block": 0, "_regression_block": 0}
    for name in calls:
        original = getattr(scale, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(scale, name, counted)
    panel = rm.load(panel_path, chunks={"date": CHUNK})
    with dask.config.set(scheduler="synchronous"):
        fit_chunked(rm.FactorRiskModel(), panel, store=tmp_path / "fit.zarr" if store else None, stock_chunk=64)
    n_stock_blocks = -(-panel.sizes["stock"] // 64)
    n_date_chunks = -(-panel.sizes["date"] // CHUNK)
    assert calls == {"_ts_block": n_stock_blocks, "_structural_block": n_date_chunks,
                     "_regression_block": n_date_chunks}


def test_in_memory_panel_is_chunked_and_covariance_false(panel_path, reference):
    panel = rm.load(panel_path)
    fit = fit_chunked(rm.FactorRiskModel(covariance=False), panel, date_chunk=64)
    assert "specific_var" not in fit.dataset
    for name in ("factor_returns", "residuals", "style_exposure", "n_obs"):
        np.testing.assert_array_equal(fit.dataset[name].values, reference["default"].dataset[name].values)


def test_errors_name_what_is_wrong(panel_path, tmp_path):
    panel = rm.load(panel_path, chunks={"date": CHUNK})
    model = rm.FactorRiskModel(covariance=False)
    with pytest.raises(InvalidParameterError, match=r"fit\.nc.*'\.zarr'"):
        fit_chunked(model, panel, store=tmp_path / "fit.nc")
    with pytest.raises(ModelFileError, match="does not exist"):
        fit_chunked(model, panel, store=tmp_path / "nowhere" / "fit.zarr")
    with pytest.raises(MissingVariableError, match="'quality'"):
        fit_chunked(rm.FactorRiskModel(styles=["size", "quality"]), panel)
    with pytest.raises(InvalidParameterError, match="date_chunk=0"):
        fit_chunked(model, panel, date_chunk=0)
    with pytest.raises(InvalidParameterError, match="retries=-1"):
        fit_chunked(model, panel, retries=-1)


# ---------------------------------------------------------------------------------------
# dask.distributed
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    # the fault-injection functions below must reach the worker processes by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit="1.5GiB", dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _die_once(block: np.ndarray, marker: str, block_info=None) -> np.ndarray:
    """Kill the worker process the first time the block holding date 100 is read."""
    start, stop = block_info[0]["array-location"][0]
    if start <= 100 < stop:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return block
        os._exit(1)
    return block


def _always_fail(block: np.ndarray, block_info=None) -> np.ndarray:
    start, stop = block_info[0]["array-location"][0]
    if start <= 200 < stop:
        raise RuntimeError("injected failure in the chunk holding date 200")
    return block


def _with_returns(panel: xr.Dataset, func, **kwargs) -> xr.Dataset:
    data = da.map_blocks(func, panel["returns"].data, dtype=panel["returns"].dtype, **kwargs)
    return panel.assign(returns=panel["returns"].copy(data=data))


def test_distributed_store_matches(client, panel_path, reference, tmp_path):
    panel = rm.load(panel_path, chunks={"date": CHUNK})
    fit = fit_chunked(rm.FactorRiskModel(), panel, store=tmp_path / "fit.zarr")
    assert_same_fit(fit, reference["default"])


def test_distributed_worker_killed_mid_run(client, panel_path, reference, tmp_path):
    marker = tmp_path / "died"
    pids = set(client.run(os.getpid).values())
    panel = _with_returns(rm.load(panel_path, chunks={"date": CHUNK}), _die_once, marker=str(marker))
    fit = fit_chunked(rm.FactorRiskModel(), panel, store=tmp_path / "fit.zarr", retries=2)
    assert marker.exists(), "the fault was not injected"
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != pids, "no worker process was replaced"
    assert_same_fit(fit, reference["default"])


def test_distributed_failure_leaves_existing_store_intact(client, panel_path, reference, tmp_path):
    store = tmp_path / "fit.zarr"
    model = rm.FactorRiskModel(covariance=False)
    fit_chunked(model, rm.load(panel_path, chunks={"date": CHUNK}), store=store)
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    bad = _with_returns(rm.load(panel_path, chunks={"date": CHUNK}), _always_fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        fit_chunked(rm.FactorRiskModel(), bad, store=store, retries=1)
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".fit.zarr.*")), "temporary stores left behind"
    kept = rm.load(store)
    np.testing.assert_array_equal(kept.factor_returns.values, reference["default"].factor_returns.values)


def test_public_fit_dispatches_to_the_chunked_path(tmp_path):
    """``FactorRiskModel.fit`` takes a dask-backed panel or a ``store`` and gives the same model."""
    panel = rm.simulate(n_stocks=150, n_days=200, seed=9)
    rm.save(panel, tmp_path / "panel.zarr")
    lazy = rm.load(tmp_path / "panel.zarr", chunks={"date": 50})
    model = rm.FactorRiskModel(eigen_sims=20, progress=False)
    eager = model.fit(panel)
    for fitted in (model.fit(lazy), model.fit(panel, store=str(tmp_path / "model.zarr"))):
        for name in ["factor_returns", "residuals", "factor_cov", "specific_var"]:
            np.testing.assert_array_equal(np.asarray(fitted.dataset[name].values), eager.dataset[name].values)


def test_a_foreign_store_is_refused_before_the_fit(tmp_path, monkeypatch):
    """fit_chunked checks its target first: a folder riskmodel did not write stays as it is
    and no fitting work starts."""
    import riskmodel as rm
    from riskmodel.errors import ModelFileError
    from riskmodel.models import chunked

    store = tmp_path / "theirs.zarr"
    store.mkdir()
    (store / "notes.txt").write_text("precious")
    started = []
    monkeypatch.setattr(chunked, "_prepare", lambda *a, **k: started.append(1))
    panel = rm.simulate(n_stocks=60, n_days=40, seed=1, n_industries=3)
    with pytest.raises(ModelFileError):
        rm.fit_chunked(rm.FactorRiskModel(progress=False), panel, store=store)
    assert started == [] and (store / "notes.txt").read_text() == "precious"


def test_a_chunked_fit_without_a_usable_forecast_is_an_error(tmp_path):
    """Issue 17 on the out-of-core path: too few days for the covariance forecast, or no
    fitted date, stop before the forecasts; a store target is left absent."""
    panel = rm.simulate(n_stocks=60, n_days=120, seed=3, n_industries=4)
    with pytest.raises(rm.InsufficientDataError, match=r"needs 42 dates.*has 30 days"):
        rm.FactorRiskModel(progress=False).fit(panel.isel(date=slice(0, 30)).chunk({"date": 20}))
    empty = panel.assign(returns=panel["returns"] * np.nan).chunk({"date": 40})
    with pytest.raises(rm.InsufficientDataError, match="no date of the 120 could be fitted"):
        rm.FactorRiskModel(progress=False).fit(empty, store=str(tmp_path / "m.zarr"))
    assert not (tmp_path / "m.zarr").exists()


def test_timings_name_each_pass(panel_path, tmp_path):
    """``timings`` gets the wall seconds of every pass (the specific risk is one pass now:
    no pre-VRA store is written and read back); a non-dict is refused before any work."""
    panel = rm.load(panel_path, chunks={"date": CHUNK})
    timings: dict[str, float] = {}
    fit_chunked(rm.FactorRiskModel(), panel, store=tmp_path / "fit.zarr", timings=timings)
    assert set(timings) == {"prepare", "exposures_regression", "specific", "factor_covariance", "small_outputs",
                            "finish"}
    assert all(seconds >= 0 for seconds in timings.values())
    assert timings["exposures_regression"] > 0 and timings["specific"] > 0
    with pytest.raises(InvalidParameterError, match="timings"):
        fit_chunked(rm.FactorRiskModel(), panel, timings=[])
