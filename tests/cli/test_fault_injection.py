"""Fault injection: SIGKILL at random moments of a save, SIGINT / SIGTERM during a save and
during a command-line fit. The previous file must load every time and no temporary may
outlive the next save."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.data.io import load, save

FORMATS = ["nc", "zarr"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_versions() -> tuple[xr.Dataset, xr.Dataset]:
    """A small fitted model's Dataset, and a second version with other specific variances."""
    panel = rm.simulate(n_stocks=150, n_days=120, seed=0)
    first = rm.FactorRiskModel(progress=False, eigen_sims=0).fit(panel).to_dataset()
    second = first.copy()
    second["specific_var"] = first["specific_var"] * 2.0
    return first, second


def _siblings(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]


def _save_forever(versions: tuple[xr.Dataset, xr.Dataset], path: Path, slow_disk: bool = False) -> None:
    """The forked child: save the two versions in turn until killed. ``slow_disk``: every
    fsync takes 50 ms more (a slow disk), so that a kill lands while the temporary exists
    however fast this machine writes it."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if slow_disk:
            real_fsync = os.fsync
            os.fsync = lambda fd: (time.sleep(0.05), real_fsync(fd))[1]
        k = 0
        while True:
            save(versions[k % 2], path)
            k += 1
    finally:
        os._exit(3)


def _which_version(path: Path, versions: tuple[xr.Dataset, xr.Dataset]) -> int:
    loaded = load(path)
    specific = loaded.dataset["specific_var"].values if hasattr(loaded, "dataset") else loaded["specific_var"].values
    for k, version in enumerate(versions):
        if np.array_equal(specific, version["specific_var"].values, equal_nan=True):
            return k
    return -1


def _wait_for_temporary(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not [p for p in _siblings(path) if p.name.endswith(".tmp")]:
        time.sleep(0.0005)


def kill_trials(tmp_path: Path, fmt: str, versions: tuple[xr.Dataset, xr.Dataset], trials: int,
                seed: int) -> dict[str, float]:
    """SIGKILL a forked saver ``trials`` times at random moments; check after each kill."""
    rng = random.Random(seed)
    path = tmp_path / f"model.{fmt}"
    save(versions[0], path)
    started = time.monotonic()
    save(versions[1], path)
    save_seconds = time.monotonic() - started
    loadable = with_temporary = left_after_next_save = 0
    for trial in range(trials):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _save_forever(versions, path, slow_disk=trial % 2 == 0)
        if trial % 2:  # a uniformly random moment of the save loop
            time.sleep(rng.uniform(0.0, 2.5 * save_seconds))
        else:  # a random moment while the temporary is being written, flushed or renamed
            _wait_for_temporary(path, timeout=10 * save_seconds + 5)
            time.sleep(0.0 if trial == 0 else rng.uniform(0.0, 0.02))  # the first one at once
        os.kill(pid, signal.SIGSTOP)  # frozen first: what is on disk now is what the kill leaves
        os.waitpid(pid, os.WUNTRACED)  # (counting, then killing, raced a busy machine's saver)
        with_temporary += bool([p for p in _siblings(path) if p.name.endswith(".tmp")])
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        loadable += _which_version(path, versions) in (0, 1)
        save(versions[0], path)  # the next save sweeps the killed writer's temporary
        left_after_next_save += len(_siblings(path))
    return {"trials": trials, "previous_file_loadable_pct": 100.0 * loadable / trials,
            "killed_with_a_temporary_present": with_temporary, "temporaries_left": left_after_next_save}


def _run_kill_trials(tmp_path, fmt, two_versions, trials):
    figures = kill_trials(tmp_path, fmt, two_versions, trials, seed=trials)
    (Path(os.environ.get("RISKMODEL_FAULT_FIGURES", tmp_path)) / f"fault_{fmt}_{trials}.json").write_text(
        json.dumps(figures))
    assert figures["previous_file_loadable_pct"] == 100.0, figures
    assert figures["temporaries_left"] == 0, figures
    assert figures["killed_with_a_temporary_present"] > 0, figures  # the kills did land mid-write


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_at_random_moments_of_a_save(tmp_path, fmt, two_versions):
    _run_kill_trials(tmp_path, fmt, two_versions, trials=10)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_at_random_moments_of_a_save_50_trials(tmp_path, fmt, two_versions):
    _run_kill_trials(tmp_path, fmt, two_versions, trials=50)


# ----------------------------------------------------------------------------------------
# SIGINT and SIGTERM: the writer cleans up on its way out
# ----------------------------------------------------------------------------------------
def _signal_mid_save(tmp_path: Path, fmt: str, versions, signum: int) -> int:
    """Fork a saver, send ``signum`` while a temporary exists; return the child's wait status."""
    path = tmp_path / f"model.{fmt}"
    save(versions[0], path)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                save(versions[1], path)
        except KeyboardInterrupt:
            os._exit(130)
        finally:
            os._exit(4)
    _wait_for_temporary(path, timeout=60)
    os.kill(pid, signum)
    _, status = os.waitpid(pid, 0)
    assert _siblings(path) == [], "the interrupted writer left a temporary"
    assert _which_version(path, versions) in (0, 1)
    return status


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigint_during_save_leaves_no_temporary(tmp_path, fmt, two_versions):
    status = _signal_mid_save(tmp_path, fmt, two_versions, signal.SIGINT)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 130


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigterm_during_save_cleans_up_then_ends_by_sigterm(tmp_path, fmt, two_versions):
    status = _signal_mid_save(tmp_path, fmt, two_versions, signal.SIGTERM)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "RISKMODEL_PRECOMPILE": "0"}
    return subprocess.Popen([sys.executable, "-m", "riskmodel.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_terminal(leader: int) -> str:
    """What is left on a terminal's leader side until the follower side is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the process ended and its terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_fit_interrupted_prints_one_line(tmp_path, signum, code):
    import fcntl
    import pty
    import struct
    import termios

    panel = tmp_path / "panel.nc"
    save(rm.simulate(n_stocks=300, n_days=600, seed=1), panel)
    # stderr on a terminal, as where Ctrl-C is pressed: the progress bar is drawn only there
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "RISKMODEL_PRECOMPILE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "riskmodel.cli", "fit", str(panel), "-o", "model.nc"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    try:
        seen = ""
        while "exposures" not in seen:  # the progress bar: the fit has started
            try:
                chunk = os.read(leader, 1).decode(errors="replace")
            except OSError:
                chunk = ""
            assert chunk, f"the fit ended before it started: {seen}"
            seen += chunk
        proc.send_signal(signum)
        rest = _read_terminal(leader)
        proc.communicate(timeout=120)
    finally:
        os.close(leader)
    err = seen + rest
    if proc.returncode == 0:  # pragma: no cover - a very fast machine finished first
        pytest.skip("the fit finished before the signal")
    assert proc.returncode == code, err
    assert "Traceback" not in err
    messages = [line for line in err.replace("\r", "\n").splitlines()
                if "riskmodel fit: " in line and "warning" not in line]  # maybe after a bar's last state
    others = [line for line in err.replace("\r", "\n").splitlines()  # besides the progress bar
              if any(word in line for word in ("Error", "Exception", "Interrupt", "File \""))]
    assert len(messages) == 1 and others == [], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.nc"]  # no model, no temporary
