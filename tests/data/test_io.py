"""Round trips, atomic writes under SIGKILL, damaged files, dispatch by kind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import InvalidParameterError, ModelFileError
from riskmodel.data.io import load, save

FORMATS = ["nc", "zarr"]


def _panel(seed: int = 0, n_days: int = 30, n_stocks: int = 7) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    stocks = np.array([f"S{i:03d}" for i in range(n_stocks)])
    returns = rng.normal(0, 0.02, (n_days, n_stocks))
    returns[rng.random(returns.shape) < 0.1] = np.nan
    industry = np.array(["Banks", "Energy", "Ünicode & Co", "", "Banks", "Energy", "Media"][:n_stocks])
    return xr.Dataset(
        {
            "returns": (("date", "stock"), returns, {"units": "decimal", "tags": ["a", "b"]}),
            "market_cap": (("date", "stock"), rng.uniform(1e8, 1e11, (n_days, n_stocks)).astype(np.float32)),
            "count": (("date",), rng.integers(0, 100, n_days).astype(np.int64)),
            "in_estu": (("date", "stock"), rng.random((n_days, n_stocks)) > 0.3),
            "industry": (("stock",), industry),
            "sector": (("stock",), np.array(["Fin", "En", "X", "Y", "Fin", "En", "Com"][:n_stocks], dtype=object)),
        },
        coords={"date": pd.bdate_range("2015-06-01", periods=n_days).values.astype("datetime64[ns]"), "stock": stocks},
        attrs={"styles": ["size", "value"], "settings": {"lag": 1, "clip": None}, "flag": True, "note": "hi"},
    )


def _assert_roundtrip(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.variables:
        va, vb = a[name], b[name]
        assert va.dims == vb.dims, name
        if va.dtype.kind in "UO":
            assert vb.dtype.kind == "U", name
            np.testing.assert_array_equal(va.values.astype(str), vb.values)
        else:
            assert va.dtype == vb.dtype, name
            np.testing.assert_array_equal(va.values, vb.values)
    assert a.attrs == b.attrs
    assert a["returns"].attrs == b["returns"].attrs


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_values_dtypes_labels_attrs(tmp_path, fmt):
    ds = _panel()
    path = tmp_path / f"panel.{fmt}"
    assert save(ds, path) == path
    out = load(path)
    _assert_roundtrip(ds, out)
    assert out["stock"].dtype.kind == "U"
    assert out["industry"].values.tolist()[2] == "Ünicode & Co"
    assert out["industry"].values.tolist()[3] == ""  # missing label
    assert out.attrs["styles"] == ["size", "value"]
    assert out.attrs["settings"] == {"lag": 1, "clip": None}
    assert out.attrs["flag"] is True
    # the caller's object is untouched
    assert ds["industry"].dtype.kind == "U" and "labels" not in ds["industry"].attrs


@pytest.mark.parametrize("fmt", FORMATS)
def test_industry_stored_as_int_codes_on_disk(tmp_path, fmt):
    path = tmp_path / f"panel.{fmt}"
    save(_panel(), path)
    engine = {"nc": "h5netcdf", "zarr": "zarr"}[fmt]
    kwargs = {"consolidated": False} if fmt == "zarr" else {}
    with xr.open_dataset(path, engine=engine, **kwargs) as raw:
        assert raw["industry"].dtype == np.int32
        labels = raw["industry"].attrs["labels"]
        assert labels == '["Banks", "Energy", "Media", "\\u00dcnicode & Co"]'
        assert raw["industry"].values.tolist() == [0, 1, 3, -1, 0, 1, 2]


@pytest.mark.parametrize("fmt", FORMATS)
def test_int_coded_industry_stays_int(tmp_path, fmt):
    ds = _panel()
    ds["industry"] = ("stock", np.array([0, 1, -1, 2, 0, 1, 2], dtype=np.int32), {"labels": ["a", "b", "c"]})
    path = tmp_path / f"p.{fmt}"
    save(ds, path)
    out = load(path)
    assert out["industry"].dtype == np.int32
    assert out["industry"].attrs["labels"] == ["a", "b", "c"]
    rm.validate_panel(out, styles=())


@pytest.mark.parametrize("fmt", FORMATS)
def test_chunks_gives_dask_and_same_values(tmp_path, fmt):
    ds = _panel()
    path = tmp_path / f"p.{fmt}"
    save(ds, path)
    lazy = load(path, chunks={"date": 10})
    try:
        assert lazy["returns"].chunks is not None
        assert lazy["returns"].chunks[0] == (10, 10, 10)
        np.testing.assert_array_equal(lazy["returns"].values, ds["returns"].values)
        assert lazy["stock"].dtype.kind == "U"
    finally:
        lazy.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_dataarray_roundtrip(tmp_path, fmt):
    da = _panel()["returns"]
    path = tmp_path / f"r.{fmt}"
    save(da, path)
    out = load(path)
    assert isinstance(out, xr.DataArray) and out.name == "returns"
    xr.testing.assert_identical(out.drop_vars(list(out.coords)), da.drop_vars(list(da.coords)))
    save(da.rename(None), path)
    assert load(path).name is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_overwrite_replaces_and_leaves_no_siblings(tmp_path, fmt):
    path = tmp_path / f"p.{fmt}"
    save(_panel(seed=1), path)
    save(_panel(seed=2), path)
    np.testing.assert_array_equal(load(path)["returns"].values, _panel(seed=2)["returns"].values)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_loaded_file_not_held_open(tmp_path):
    """Default load reads into memory: the file can be replaced/deleted right after."""
    path = tmp_path / "p.nc"
    save(_panel(seed=1), path)
    ds = load(path)
    save(_panel(seed=3), path)
    path.unlink()
    np.testing.assert_array_equal(ds["returns"].values, _panel(seed=1)["returns"].values)


def test_object_with_to_dataset(tmp_path):
    class Holder:
        def to_dataset(self):
            return _panel(seed=4)

    save(Holder(), tmp_path / "h.nc")
    _assert_roundtrip(_panel(seed=4), load(tmp_path / "h.nc"))


def test_dispatch_to_registered_kind(tmp_path, monkeypatch):
    import riskmodel.data.io as rio

    class Fake:
        @classmethod
        def from_dataset(cls, ds):
            obj = cls()
            obj.ds = ds
            return obj

    module = type(sys)("fake_riskmodel_kind_module")
    module.Fake = Fake
    monkeypatch.setitem(sys.modules, "fake_riskmodel_kind_module", module)
    monkeypatch.setitem(rio.KIND_REGISTRY, "fake_kind", "fake_riskmodel_kind_module:Fake")
    monkeypatch.setitem(rio.KIND_REGISTRY, "absent_kind", "riskmodel.no_such_module:Nope")
    ds = _panel()
    ds.attrs["riskmodel_kind"] = "fake_kind"
    save(ds, tmp_path / "k.nc")
    obj = load(tmp_path / "k.nc")
    assert isinstance(obj, Fake) and obj.ds.attrs["riskmodel_kind"] == "fake_kind"
    ds.attrs["riskmodel_kind"] = "absent_kind"
    save(ds, tmp_path / "k.nc")
    assert isinstance(load(tmp_path / "k.nc"), xr.Dataset)


def test_wrong_suffix(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"suffix '\.pkl'.*'\.nc'.*'\.zarr'"):
        save(_panel(), tmp_path / "p.pkl")
    with pytest.raises(InvalidParameterError, match="suffix '.h5'"):
        load(tmp_path / "p.h5")
    with pytest.raises(InvalidParameterError, match="Dataset/DataArray"):
        save(np.zeros(3), tmp_path / "p.nc")


def test_truncated_netcdf(tmp_path):
    path = tmp_path / "p.nc"
    save(_panel(n_days=400), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"cannot read .*p\.nc.*truncated"):
        load(path)


def test_truncated_zarr_chunk(tmp_path):
    path = tmp_path / "p.zarr"
    save(_panel(n_days=400), path)
    chunk = max((p for p in (path / "returns").rglob("*") if p.is_file() and p.name != "zarr.json"),
                key=lambda p: p.stat().st_size)
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(ModelFileError, match=r"cannot read .*p\.zarr"):
        load(path)


def test_wrong_kind_files(tmp_path):
    (tmp_path / "text.nc").write_text("this is not netCDF\n")
    with pytest.raises(ModelFileError, match=r"text\.nc.*not a netCDF4/HDF5"):
        load(tmp_path / "text.nc")
    (tmp_path / "file.zarr").write_text("not a directory")
    with pytest.raises(ModelFileError, match=r"file\.zarr' is a file, expected a zarr"):
        load(tmp_path / "file.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ModelFileError, match=r"empty\.zarr"):
        load(tmp_path / "empty.zarr")
    with pytest.raises(ModelFileError, match=r"no such file.*absent\.nc"):
        load(tmp_path / "absent.nc")


def test_missing_folder(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        save(_panel(), tmp_path / "nope" / "p.nc")


# ----------------------------------------------------------------------------------------
# crash safety
# ----------------------------------------------------------------------------------------
_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, xarray as xr
    from riskmodel.data.io import save
    n_days, n_stocks = 7_500, 5_000          # 7,500 x 5,000 float64 = 300 MB
    x = np.random.default_rng(1).standard_normal((n_days, n_stocks))
    ds = xr.Dataset({"returns": (("date", "stock"), x)},
                    coords={"stock": np.array([f"S{i}" for i in range(n_stocks)])})
    print("ready", flush=True)
    save(ds, sys.argv[1])
    print("done", flush=True)
    """
)


def _tmp_siblings(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.") and p.name.endswith(".tmp")]


def _size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_mid_save_keeps_previous_file(tmp_path, fmt):
    path = tmp_path / f"model.{fmt}"
    previous = _panel(seed=7)
    save(previous, path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 120
        killed_mid_write = False
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = _tmp_siblings(path)
            try:
                if tmps and _size(tmps[0]) > 20_000_000:  # well into the 300 MB write
                    proc.send_signal(signal.SIGKILL)
                    killed_mid_write = True
                    break
            except FileNotFoundError:  # a file vanished while we measured it
                pass
            time.sleep(0.002)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed_mid_write, "the writer finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    # the target is the previous file, complete and loadable
    _assert_roundtrip(previous, load(path))
    # the partial write lives only in a temporary sibling, never under the target name
    stale = _tmp_siblings(path)
    assert len(stale) == 1 and stale[0] != path
    # the next save cleans up the dead writer's temporary sibling
    save(_panel(seed=8), path)
    assert _tmp_siblings(path) == []
    _assert_roundtrip(_panel(seed=8), load(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_write_keeps_previous_and_cleans_up(tmp_path, fmt, monkeypatch):
    path = tmp_path / f"p.{fmt}"
    previous = _panel(seed=11)
    save(previous, path)

    def broken_writer(self, target=None, *args, **kwargs):
        # a netCDF file is built in memory (target None), then written: see
        # tests/data/test_storage_safety.py for a write that fails half-way through the file
        if target is not None:
            Path(target).mkdir() if fmt == "zarr" else Path(target).write_bytes(b"\x89HDF partial")
        raise OSError("disk full")

    method = "to_zarr" if fmt == "zarr" else "to_netcdf"
    monkeypatch.setattr(xr.Dataset, method, broken_writer)
    with pytest.raises(ModelFileError, match=r"could not write .*disk full.*previous file.*unchanged"):
        save(_panel(seed=12), path)
    monkeypatch.undo()
    _assert_roundtrip(previous, load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
