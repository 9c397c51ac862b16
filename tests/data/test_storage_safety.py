"""What ``save`` refuses to replace, what it keeps, checksums on load, full disks, stale
temporaries, and a scan of the package for unsafe calls."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
import riskmodel.data.io as rio
from riskmodel import _atomic
from riskmodel.errors import ModelFileError
from riskmodel.data.io import load, save

FORMATS = ["nc", "zarr"]
ROOT = Path(__file__).resolve().parents[2]


def _panel(seed: int = 0, n_days: int = 40, n_stocks: int = 6) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {"returns": (("date", "stock"), rng.normal(0, 0.02, (n_days, n_stocks))),
         "specific_var": (("date", "stock"), rng.uniform(1e-4, 4e-4, (n_days, n_stocks))),
         "industry": ("stock", np.array(["A", "B", "C", "A", "B", "C"][:n_stocks]))},
        coords={"date": pd.bdate_range("2020-01-01", periods=n_days).values, "stock": [f"S{i}" for i in range(n_stocks)]},
        attrs={"styles": ["size"]},
    )


def _tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) with its bytes."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "RISKMODEL_PRECOMPILE": "0"}
    return subprocess.run([sys.executable, "-m", "riskmodel.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------------------
# what save refuses to replace
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_folder_of_files_under_the_target_name_is_refused_and_untouched(tmp_path, fmt):
    target = tmp_path / f"important.{fmt}"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("precious\n")
    (target / "sub" / "more.txt").write_text("also precious\n")
    before = _tree(target)
    with pytest.raises(ModelFileError, match=r"refusing to replace .*important\.%s.*nothing was changed" % fmt):
        save(_panel(), target)
    assert _tree(target) == before
    assert _siblings(target) == []


def test_cli_simulate_refuses_a_folder_named_nc_with_exit_2(tmp_path):
    target = tmp_path / "d" / "important.nc"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("precious\n")
    result = _cli("simulate", "-o", "d/important.nc", "--stocks", "150", "--days", "60", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "refusing to replace 'd/important.nc'" in result.stderr and "directory" in result.stderr
    assert (target / "notes.txt").read_text() == "precious\n" and (target / "sub").is_dir()


@pytest.mark.parametrize("content, reason", [
    (b"this is my thesis\n", "not a netCDF file"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "cannot be read"),
])
def test_a_foreign_file_named_nc_is_refused(tmp_path, content, reason):
    target = tmp_path / "thesis.nc"
    target.write_bytes(content)
    with pytest.raises(ModelFileError, match=reason):
        save(_panel(), target)
    assert target.read_bytes() == content


def test_a_netcdf_file_riskmodel_did_not_write_is_refused(tmp_path):
    target = tmp_path / "theirs.nc"
    xr.Dataset({"x": ("t", [1.0, 2.0])}).to_netcdf(target, engine="h5netcdf")
    before = target.read_bytes()
    with pytest.raises(ModelFileError, match="riskmodel did not write"):
        save(_panel(), target)
    assert target.read_bytes() == before


def test_a_zarr_store_riskmodel_did_not_write_or_with_extra_files_is_refused(tmp_path):
    theirs = tmp_path / "theirs.zarr"
    xr.Dataset({"x": ("t", [1.0, 2.0])}).to_zarr(theirs, zarr_format=3, consolidated=False)
    before = _tree(theirs)
    with pytest.raises(ModelFileError, match="riskmodel did not write"):
        save(_panel(), theirs)
    assert _tree(theirs) == before
    ours = tmp_path / "ours.zarr"
    save(_panel(seed=1), ours)
    (ours / "README.txt").write_text("my notes about this run\n")
    with pytest.raises(ModelFileError, match="README.txt"):
        save(_panel(seed=2), ours)
    assert (ours / "README.txt").exists()
    (ours / "README.txt").unlink()
    (ours / "returns" / "notes.md").write_text("x")
    with pytest.raises(ModelFileError, match=r"returns/notes\.md"):
        save(_panel(seed=2), ours)


def test_a_file_named_zarr_is_refused(tmp_path):
    target = tmp_path / "x.zarr"
    target.write_text("not a store")
    with pytest.raises(ModelFileError, match="is a file, not a zarr"):
        save(_panel(), target)
    assert target.read_text() == "not a store"


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file_or_folder_is_replaced(tmp_path, fmt):
    target = tmp_path / f"empty.{fmt}"
    target.mkdir() if fmt == "zarr" else target.touch()
    save(_panel(seed=3), target)
    np.testing.assert_array_equal(load(target)["returns"].values, _panel(seed=3)["returns"].values)


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_only_target_is_refused_and_keeps_its_mode(tmp_path, fmt):
    target = tmp_path / f"frozen.{fmt}"
    save(_panel(seed=1), target)
    os.chmod(target, 0o444 if fmt == "nc" else 0o555)
    before = _tree(target)
    with pytest.raises(ModelFileError, match=r"read-only \(mode 0[45]{3}\)"):
        save(_panel(seed=2), target)
    assert _tree(target) == before
    assert stat.S_IMODE(target.stat().st_mode) in (0o444, 0o555)
    assert _siblings(target) == []
    os.chmod(target, 0o755)


@pytest.mark.parametrize("fmt", FORMATS)
def test_replacing_keeps_the_targets_mode(tmp_path, fmt):
    target = tmp_path / f"shared.{fmt}"
    save(_panel(seed=1), target)
    mode = 0o640 if fmt == "nc" else 0o750
    os.chmod(target, mode)
    save(_panel(seed=2), target)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    np.testing.assert_array_equal(load(target)["returns"].values, _panel(seed=2)["returns"].values)


def test_a_symlink_target_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / "real" / "model.nc"
    real.parent.mkdir()
    save(_panel(seed=1), real)
    link = tmp_path / "link.nc"
    link.symlink_to(real)
    save(_panel(seed=2), link)
    assert link.is_symlink()
    np.testing.assert_array_equal(load(real)["returns"].values, _panel(seed=2)["returns"].values)


def test_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_atomic.os, "open", refuse)
    with pytest.raises(ModelFileError, match="is not writable"):
        rio.check_target(tmp_path / "m.nc")


def test_check_free_space(tmp_path):
    rio.check_free_space(tmp_path / "m.nc", 1)
    with pytest.raises(ModelFileError, match="not enough space.*MB free"):
        rio.check_free_space(tmp_path / "m.nc", 10**18)


# ----------------------------------------------------------------------------------------
# earlier files still load and may be replaced
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_files_of_the_previous_release_load_and_are_replaced(tmp_path, fmt):
    old = rio.prepare_for_disk(_panel(seed=5))  # the previous release: no checksums, no layout marks
    target = tmp_path / f"old.{fmt}"
    if fmt == "nc":
        old.to_netcdf(target, engine="h5netcdf")
    else:
        old.to_zarr(target, zarr_format=3, consolidated=False)
    loaded = load(target)
    np.testing.assert_array_equal(loaded["returns"].values, _panel(seed=5)["returns"].values)
    assert "_riskmodel_file" not in loaded.attrs
    save(_panel(seed=6), target)
    np.testing.assert_array_equal(load(target)["returns"].values, _panel(seed=6)["returns"].values)


# ----------------------------------------------------------------------------------------
# checksums and completeness
# ----------------------------------------------------------------------------------------
def test_checksums_are_on_disk(tmp_path):
    import h5py

    save(_panel(), tmp_path / "p.nc")
    with h5py.File(tmp_path / "p.nc", "r") as fh:
        assert fh["returns"].fletcher32 and fh["specific_var"].fletcher32
    save(_panel(), tmp_path / "p.zarr")
    codecs = json.loads((tmp_path / "p.zarr" / "returns" / "zarr.json").read_text())["codecs"]
    assert codecs[-1]["name"] == "crc32c"
    attrs = load(tmp_path / "p.zarr").attrs
    assert "_riskmodel_file" not in attrs and "_riskmodel_variables" not in attrs


def test_random_bytes_inside_a_netcdf_model_name_the_variable(tmp_path):
    path = tmp_path / "model.nc"
    panel = _panel(n_days=2000, n_stocks=6)
    save(panel, path)
    import h5py

    with h5py.File(path, "r") as fh:  # the first chunk of specific_var
        offset = fh["specific_var"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 16: offset + 16 + 2000] = np.random.default_rng(0).bytes(2000)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.nc.*variable 'specific_var' is damaged"):
        load(path)


def test_twenty_kb_of_random_bytes_in_a_fitted_model_is_an_error(tmp_path):
    fit = rm.FactorRiskModel(progress=False, eigen_sims=0).fit(rm.simulate(n_stocks=150, n_days=120, seed=0))
    path = tmp_path / "model.nc"
    save(fit, path)
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start: start + 20_000] = np.random.default_rng(1).bytes(20_000)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.nc"):
        load(path)


def test_a_damaged_zarr_chunk_names_the_variable(tmp_path):
    path = tmp_path / "model.zarr"
    save(_panel(n_days=400), path)
    chunk = next(p for p in (path / "specific_var" / "c").rglob("*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.zarr.*variable 'specific_var' is damaged"):
        load(path)


def test_a_zarr_missing_a_variable_or_a_chunk_is_a_named_error(tmp_path):
    path = tmp_path / "model.zarr"
    save(_panel(n_days=400), path)
    shutil.rmtree(path / "specific_var")
    with pytest.raises(ModelFileError, match=r"incomplete: variable\(s\) 'specific_var' were saved"):
        load(path)
    save(_panel(n_days=400), tmp_path / "panel.zarr")
    chunk = next(p for p in (tmp_path / "panel.zarr" / "returns" / "c").rglob("*") if p.is_file())
    chunk.unlink()
    with pytest.raises(ModelFileError, match=r"incomplete: variable 'returns' has \d+ of its \d+ chunks"):
        load(tmp_path / "panel.zarr")
    with pytest.raises(ModelFileError, match="incomplete"):
        load(tmp_path / "panel.zarr", chunks={"date": 100})


def test_all_missing_chunks_are_written_so_missing_values_round_trip(tmp_path):
    panel = _panel(n_days=400)
    panel["returns"][:] = np.nan
    save(panel, tmp_path / "nan.zarr")
    assert np.isnan(load(tmp_path / "nan.zarr")["returns"].values).all()


# ----------------------------------------------------------------------------------------
# disk full
# ----------------------------------------------------------------------------------------
class _FullDisk:
    """A file object whose writes stop after ``room`` bytes with ENOSPC."""

    def __init__(self, path, mode, room=1000):
        self._fh = open(path, mode)  # noqa: SIM115 - closed in __exit__
        self._room = room

    def write(self, data):
        self._fh.write(bytes(memoryview(data)[: self._room]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _open_on_a_full_disk(path, mode="r", *args, **kwargs):
    if "w" in mode or "x" in mode:
        return _FullDisk(path, mode)
    return open(path, mode, *args, **kwargs)  # noqa: SIM115 - the caller closes it


def test_simulated_full_disk_netcdf(tmp_path, monkeypatch):
    path = tmp_path / "m.nc"
    save(_panel(seed=1), path)
    monkeypatch.setattr(rio, "open", _open_on_a_full_disk, raising=False)
    with pytest.raises(ModelFileError, match=r"no space left.*previous file, if any, is unchanged"):
        save(_panel(seed=2, n_days=400), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["returns"].values, _panel(seed=1)["returns"].values)
    assert _siblings(path) == []


def test_simulated_full_disk_zarr(tmp_path, monkeypatch):
    from zarr.storage import _local

    path = tmp_path / "m.zarr"
    save(_panel(seed=1), path)
    real_put = _local._put
    calls = []

    def put(path_, value, *args, **kwargs):
        calls.append(path_)
        if len(calls) > 5:
            Path(path_).parent.mkdir(parents=True, exist_ok=True)
            Path(path_).write_bytes(b"\0" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(path_, value, *args, **kwargs)

    monkeypatch.setattr(_local, "_put", put)
    with pytest.raises(ModelFileError, match="no space left"):
        save(_panel(seed=2, n_days=400), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["returns"].values, _panel(seed=1)["returns"].values)
    assert _siblings(path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (root only; skipped where mounting is impossible)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_real_full_disk_exit_2_old_file_intact_no_temporary(tiny_disk, fmt):
    first = _cli("simulate", "-o", f"p.{fmt}", "--stocks", "150", "--days", "60", cwd=tiny_disk)
    assert first.returncode == 0, first.stderr
    before = _tree(tiny_disk / f"p.{fmt}")
    second = _cli("simulate", "-o", f"p.{fmt}", "--stocks", "150", "--days", "900", cwd=tiny_disk)
    assert second.returncode == 2, (second.returncode, second.stderr)  # not 139 (segfault)
    assert "Traceback" not in second.stderr and "no space left" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert _tree(tiny_disk / f"p.{fmt}") == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == [f"p.{fmt}"]
    assert load(tiny_disk / f"p.{fmt}").sizes["date"] == 60


# ----------------------------------------------------------------------------------------
# stale temporaries
# ----------------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_our_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    path = tmp_path / "m.nc"
    save(_panel(seed=1), path)
    dead, alive = _dead_pid(), os.getppid()
    stale_file = tmp_path / f".m.nc.{dead}-0123456789ab.tmp"
    stale_file.write_bytes(b"x" * 1000)
    stale_store = tmp_path / f".m.nc.{dead}-0123456789ac.tmp"
    stale_store.mkdir()
    (stale_store / "zarr.json").write_text("{}")
    live = tmp_path / f".m.nc.{alive}-0123456789ab.tmp"
    live.write_bytes(b"a live writer")
    not_ours = [tmp_path / f".m.nc.{dead}-notours.tmp", tmp_path / ".m.nc.backup", tmp_path / f".other.nc.{dead}-0123456789ab.tmp"]
    for p in not_ours:
        p.write_bytes(b"keep")
    save(_panel(seed=2), path)
    assert not stale_file.exists() and not stale_store.exists()
    assert live.exists() and all(p.exists() for p in not_ours)


def test_an_old_sibling_is_kept_while_it_is_the_only_copy(tmp_path):
    path = tmp_path / "m.zarr"
    save(_panel(seed=1), tmp_path / "aside.zarr")
    old = tmp_path / f".m.zarr.{_dead_pid()}-0123456789ab.old"
    (tmp_path / "aside.zarr").rename(old)
    with pytest.raises(ModelFileError, match="rename it back"):
        load(path)
    assert _atomic.stale_siblings(path) == []
    save(_panel(seed=2), path)
    assert old.exists()  # the target did not exist: the .old was the previous version
    save(_panel(seed=3), path)
    assert not old.exists()


def test_sibling_names_are_recognised_exactly(tmp_path):
    target = tmp_path / "a.b.nc"
    name = _atomic.sibling_path(target, "tmp")
    assert re.fullmatch(r"\.a\.b\.nc\.\d+-[0-9a-f]{12}\.tmp", name.name)
    assert _atomic.parse_sibling(name, target) == (os.getpid(), "tmp")
    assert _atomic.parse_sibling(name, tmp_path / "b.nc") is None
    with pytest.raises(ValueError):
        _atomic.sibling_path(target, "bak")


# ----------------------------------------------------------------------------------------
# the package runs no stranger's code
# ----------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"\bimport pickle\b|\bfrom pickle\b|\bpickle\.|\bcPickle\b|\bdill\b|(?<![\w.])eval\(|"
                     r"(?<![\w.])exec\(|shell\s*=\s*True|os\.system\(|allow_pickle\s*=\s*True")


def test_the_package_has_no_pickle_eval_exec_or_shell():
    hits = []
    for path in sorted((ROOT / "riskmodel").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if _UNSAFE.search(code):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == []


def test_the_scan_finds_what_it_looks_for():
    for bad in ("import pickle", "x = eval(text)", "exec(code)", "run(cmd, shell=True)", "np.load(f, allow_pickle=True)"):
        assert _UNSAFE.search(bad), bad
    for fine in ("model.evaluate(x)", "executor.submit(f)", "ds.eval_metric", "shell=False"):
        assert not _UNSAFE.search(fine), fine
