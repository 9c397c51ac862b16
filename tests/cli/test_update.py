"""``riskmodel update`` and the growing zarr store (issue 20): the command line equals the
API; a reader loading in a loop during updates always gets one whole version; SIGKILL at
random moments of updates leaves the previous or the new version loadable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.data.model_store import append_update, read_pointer
from riskmodel.models.update import advance
from riskmodel.models.update_state import build_state

ROOT = Path(__file__).resolve().parents[2]
N_DAYS, FIRST = 330, 300


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "riskmodel.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def world():
    panel = rm.simulate(n_stocks=60, n_days=N_DAYS, seed=4, n_industries=4, min_industry_size=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = rm.FactorRiskModel(progress=False).fit(panel.isel(date=slice(0, FIRST)))
    return panel, first


@pytest.fixture(scope="module")
def versions(world):
    """The (rows, state) of each daily update after the first fit, computed once."""
    panel, first = world
    state, out = build_state(first), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(FIRST, N_DAYS):
            rows, state = advance(state, panel.isel(date=[t]), first.settings)
            out.append((rows, state))
    return out


@pytest.mark.parametrize("suffix", ["zarr", "nc"])
def test_the_command_line_equals_the_api(tmp_path, world, suffix):
    panel, first = world
    model = tmp_path / f"m.{suffix}"
    rm.save(first, model)
    rm.save(panel.isel(date=slice(FIRST - 3, FIRST + 2)), tmp_path / "p.nc")
    done = _run("update", str(model), "--panel", str(tmp_path / "p.nc"))
    assert done.returncode == 0, done.stderr
    assert "appended 2 date(s)" in done.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = first.update(panel.isel(date=slice(FIRST, FIRST + 2)))
    got = rm.load(model)
    for name in expected.dataset.data_vars:
        assert np.array_equal(got.dataset[name].values, expected.dataset[name].values, equal_nan=True), name
    again = _run("update", str(model), "--panel", str(tmp_path / "p.nc"))
    assert again.returncode == 0 and "nothing written" in again.stdout


def test_a_disagreeing_panel_is_one_line_and_nothing_is_written(tmp_path, world):
    panel, first = world
    model = tmp_path / "m.zarr"
    rm.save(first, model)
    bad = panel.isel(date=slice(FIRST - 2, FIRST + 1)).copy(deep=True)
    bad["returns"].values[0, 3] = 0.5
    rm.save(bad, tmp_path / "bad.nc")
    before = sorted(p.name for p in model.iterdir())
    done = _run("update", str(model), "--panel", str(tmp_path / "bad.nc"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "returns of stock" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in model.iterdir()) == before
    assert read_pointer(model) is None


def _check_version(model: Path, versions, first_dates: int) -> int:
    """Load the model; it must be exactly one version: returns how many updates it holds."""
    fit = rm.load(model)
    ds = fit.dataset
    n = ds.sizes["date"] - first_dates
    assert int(ds["update_n_dates"]) == ds.sizes["date"] if n else True
    if n:
        rows, _ = versions[n - 1]
        assert np.array_equal(ds["specific_var"].values[-1], rows["specific_var"].values[0], equal_nan=True)
        assert np.array_equal(ds["factor_returns"].values[-1], rows["factor_returns"].values[0], equal_nan=True)
    return n


def _reader_loop(model: Path, versions, first_dates: int, stop: Path, log: Path) -> None:
    """The forked reader: load in a loop until ``stop`` exists; one line per load."""
    try:
        with open(log, "w") as out:
            while not stop.exists():
                try:
                    out.write(f"ok {_check_version(model, versions, first_dates)}\n")
                except BaseException as exc:  # noqa: BLE001 - every failure is reported
                    out.write(f"fail {type(exc).__name__}: {exc}\n".replace("\n", " ") + "\n")
                out.flush()
    finally:
        os._exit(0)


def reader_during_updates(tmp_path: Path, world, versions, n_updates: int) -> dict[str, int]:
    _, first = world
    model, stop, log = tmp_path / "m.zarr", tmp_path / "stop", tmp_path / "reads.log"
    rm.save(first, model)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _reader_loop(model, versions, FIRST, stop, log)
    for k in range(n_updates):
        append_update(model, *versions[k])
        time.sleep(0.01)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and f"ok {n_updates}" not in log.read_text():
        time.sleep(0.05)  # until the reader has loaded the last version
    stop.touch()
    os.waitpid(pid, 0)
    lines = log.read_text().splitlines()
    seen = [int(line.split()[1]) for line in lines if line.startswith("ok")]
    failures = [line for line in lines if not line.startswith("ok")]
    assert not failures, failures[:3]
    assert seen == sorted(seen)  # versions only move forward
    assert len(set(seen)) >= 2 and seen[-1] == n_updates
    return {"loads": len(seen), "versions_seen": len(set(seen))}


def test_a_reader_in_a_loop_sees_whole_versions(tmp_path, world, versions):
    reader_during_updates(tmp_path, world, versions, n_updates=15)


def daily_versions(first, n_updates: int) -> list:
    """``(rows, state)`` of ``n_updates`` consecutive daily updates of ``first`` (the world's
    fit) on a longer simulation of the same world."""
    state, many = build_state(first), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        longer = rm.simulate(n_stocks=60, n_days=FIRST + n_updates, seed=4, n_industries=4, min_industry_size=6)
        for t in range(FIRST, FIRST + n_updates):
            rows, state = advance(state, longer.isel(date=[t]), first.settings)
            many.append((rows, state))
    return many


@pytest.mark.slow
def test_a_reader_in_a_loop_sees_whole_versions_100_updates(tmp_path, world):
    reader_during_updates(tmp_path, world, daily_versions(world[1], 100), n_updates=100)


def kill_trials(tmp_path: Path, world, versions, trials: int, seed: int) -> dict[str, int]:
    """SIGKILL a forked updater at random moments; after each kill the model must load as
    exactly the previous or the next version; the next update then continues from it."""
    _, first = world
    rng = random.Random(seed)
    model = tmp_path / "m.zarr"
    rm.save(first, model)
    started = time.monotonic()
    append_update(model, *versions[0])
    one_update = time.monotonic() - started
    current, moved = 1, 0
    for _ in range(trials):
        if current >= len(versions):
            break
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                for k in range(current, len(versions)):
                    append_update(model, *versions[k])
            finally:
                os._exit(3)
        time.sleep(rng.uniform(0.0, 1.5 * one_update))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        now = _check_version(model, versions, FIRST)
        assert now >= current
        moved += now > current
        current = now
    return {"trials": trials, "kills_after_progress": moved}


def test_sigkill_at_random_moments_of_updates(tmp_path, world, versions):
    figures = kill_trials(tmp_path, world, versions, trials=12, seed=1)
    assert figures["trials"] == 12


@pytest.mark.slow
def test_sigkill_at_random_moments_of_50_updates(tmp_path, world):
    kill_trials(tmp_path, world, daily_versions(world[1], 120), trials=50, seed=2)


def test_a_grown_store_saved_again_is_compacted_and_keeps_updating(tmp_path, world, versions):
    panel, first = world
    model = tmp_path / "m.zarr"
    rm.save(first, model)
    for k in range(3):
        append_update(model, *versions[k])
    rm.save(rm.load(model), model)  # one plain store again, the state inside it
    assert read_pointer(model) is None and not [p for p in model.iterdir() if p.name.startswith("_")]
    rm.save(panel.isel(date=[FIRST + 3]), tmp_path / "day.nc")
    done = _run("update", str(model), "--panel", str(tmp_path / "day.nc"))
    assert done.returncode == 0, done.stderr
    assert _check_version(model, versions, FIRST) == 4


def test_a_saved_updated_model_is_updated_from_its_state_alone(tmp_path, world, versions, monkeypatch):
    """A zarr model saved with its state (rm.save of fit.update(...)) is updated without
    loading its history (rm.load is not called), to the API's numbers."""
    from riskmodel.cli import update as cli_update

    panel, first = world
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        updated = first.update(panel.isel(date=[FIRST]))
        want = updated.update(panel.isel(date=[FIRST + 1]))
    model = tmp_path / "m.zarr"
    rm.save(updated, model)

    def no_full_load(*args, **kwargs):
        raise AssertionError("the whole model was loaded")

    monkeypatch.setattr(rm, "load", no_full_load)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows, _ = cli_update._zarr_update(model, panel.isel(date=[FIRST + 1]))
    monkeypatch.undo()
    got = rm.load(model).dataset
    for name in rows.data_vars:
        assert np.array_equal(got[name].to_numpy()[-1], want.dataset[name].to_numpy()[-1], equal_nan=True), name


def test_every_new_file_and_folder_is_fsynced_before_its_rename(tmp_path, world, versions, monkeypatch):
    """append_update flushes each new group's files and folders (several at a time) before
    renaming it into place, and the new zarr.json before the os.replace that switches."""
    import riskmodel.data.model_store as store

    _, first = world
    model = tmp_path / "model.zarr"
    rm.save(first, model)
    synced: set[str] = set()
    events: list[tuple[str, str]] = []
    real_fsync_path, real_rename, real_replace, real_fsync = store._fsync_path, os.rename, os.replace, os.fsync

    def fsync_path(path):
        real_fsync_path(path)
        synced.add(str(path))

    def rename(src, dst):
        if Path(dst).parent == model:  # a new group into place (zarr renames its own files too)
            entries = [str(src)] + [str(p) for p in Path(src).rglob("*")]
            events.append(("rename", str(dst)))
            assert not [e for e in entries if e not in synced], "renamed before every entry was fsynced"
        return real_rename(src, dst)

    def replace(src, dst):
        if Path(dst) == model / "zarr.json":  # the switch
            events.append(("replace", str(dst)))
            assert ("fsync", str(src)) in events, "zarr.json replaced before the new one was fsynced"
        return real_replace(src, dst)

    monkeypatch.setattr(store, "_fsync_path", fsync_path)
    monkeypatch.setattr(store.os, "rename", rename)
    monkeypatch.setattr(store.os, "replace", replace)
    tmp_json = model / f"._zarr.json.{os.getpid()}.tmp"

    def fsync(fd):
        if tmp_json.exists() and os.path.samestat(os.fstat(fd), os.stat(tmp_json)):
            events.append(("fsync", str(tmp_json)))
        return real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", fsync)
    rows, state = versions[0]
    append_update(model, rows, state)
    assert [kind for kind, _ in events if kind != "fsync"] == ["rename", "rename", "replace"]
    assert len(synced) > 20  # the segment's and the state's files and folders
    assert read_pointer(model)["segments"] == ["_segment_000001"]
