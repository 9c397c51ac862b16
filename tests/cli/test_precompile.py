"""The helper process that compiles the later stages' kernels ahead of need."""

from __future__ import annotations

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.cli import precompile as pc


@pytest.fixture(scope="module")
def kernels_after_a_fit() -> dict[str, dict[object, set]]:
    """Every stage kernel's compiled signatures after a real fit and a decomposition."""
    panel = rm.simulate(n_stocks=150, n_days=260, seed=3)
    fit = rm.FactorRiskModel(styles=["size", "value"], eigen_sims=20, progress=False).fit(panel)
    cov = fit.covariance()
    cov.decompose(np.full((2, cov.n_stocks), 1.0 / cov.n_stocks))
    return {stage: {k: set(k.signatures) for k in kernels()} for stage, (_, kernels) in pc.STAGES.items()}


@pytest.mark.parametrize("stage", sorted(pc.STAGES))
def test_helper_runs_compile_the_signatures_a_fit_uses(kernels_after_a_fit, stage):
    # a helper run with other dtypes or layouts would compile a signature the fit never
    # asks for (and leave the fit's to compile); it must add none
    for kernel, signatures in kernels_after_a_fit[stage].items():
        assert signatures, f"the fit did not use {kernel.py_func.__name__}"
    pc.STAGES[stage][0]()
    for kernel, signatures in kernels_after_a_fit[stage].items():
        assert set(kernel.signatures) == signatures, kernel.py_func.__name__


def test_compiled_kernels_are_cached_and_no_helper_starts(kernels_after_a_fit):
    for _, kernels in pc.STAGES.values():
        assert all(pc.is_cached(k) for k in kernels())
    with pc.compiling_ahead(*pc.STAGES) as helper:
        assert helper is None


def test_a_helper_runs_and_is_stopped_with_the_body(monkeypatch):
    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    with pc.compiling_ahead("operator") as helper:
        assert helper is not None and helper.args[-1] == "operator"
        assert helper.wait(timeout=120) == 0  # the stage ran to its end in the helper
    with pc.compiling_ahead("specific", "operator") as helper:
        pass
    assert helper.poll() is not None  # stopped (or done) when the body ended


def test_helper_can_be_switched_off_and_stages_are_checked(monkeypatch):
    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    monkeypatch.setenv("RISKMODEL_PRECOMPILE", "0")
    with pc.compiling_ahead("specific") as helper:
        assert helper is None
    with pytest.raises(ValueError, match="unknown stage"):
        with pc.compiling_ahead("exposures"):
            pass


def test_is_cached_is_false_for_a_function_numba_does_not_cache():
    assert not pc.is_cached(len)


def test_no_helper_when_a_process_cannot_start(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    monkeypatch.setattr(pc.subprocess, "Popen", refuse)
    with pc.compiling_ahead("specific") as helper:  # the command goes on without a helper
        assert helper is None


# ---------------------------------------------------------------------------------------
# the helper runs no code from the working directory and dies with its parent
# ---------------------------------------------------------------------------------------
_PLANTED = "import pathlib\npathlib.Path(__file__).with_name('PLANTED_NUMPY_RAN').write_text('ran')\nraise SystemExit(7)\n"


def test_a_numpy_py_in_the_working_directory_is_not_run_by_the_helper(tmp_path, monkeypatch):
    import subprocess
    import sys

    (tmp_path / "numpy.py").write_text(_PLANTED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), *sys.path])  # as `python -m` / `-c` start
    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    assert str(tmp_path) not in pc.helper_import_path() and "" not in pc.helper_import_path()
    with pc.compiling_ahead("operator") as helper:
        assert helper is not None and "-I" in helper.args
        assert helper.wait(timeout=300) == 0  # it imported the real numpy and compiled
    assert not (tmp_path / "PLANTED_NUMPY_RAN").exists()
    # the control: the former command (`python -m`) does run the planted file
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    former = subprocess.run([sys.executable, "-m", "riskmodel.cli.precompile"], cwd=tmp_path,
                            capture_output=True, timeout=120, env=env)
    assert former.returncode == 7 and (tmp_path / "PLANTED_NUMPY_RAN").exists()


_PARENT = """
import os, signal, sys
from riskmodel.cli import precompile as pc
pc.is_cached = lambda kernel: False
with pc.compiling_ahead("specific", "operator") as helper:
    print(helper.pid, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_the_helper_ends_when_its_parent_is_killed():
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "RISKMODEL_PRECOMPILE": "1"}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    helper_pid = int(parent.stdout.readline())
    assert _running(helper_pid)
    parent.stdin.write("go\n")
    parent.stdin.flush()
    assert parent.wait(timeout=60) == -9
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(helper_pid):
        time.sleep(0.05)
    assert not _running(helper_pid), "the helper outlived its SIGKILLed parent"


def test_tie_to_parent_exits_when_the_parent_is_already_gone(monkeypatch):
    import os

    exits = []
    monkeypatch.setattr(pc.os, "_exit", lambda code: exits.append(code))
    monkeypatch.setattr(pc, "_parent_gone", lambda pid: True)
    monkeypatch.setattr(pc.threading, "Thread", lambda **kwargs: type("T", (), {"start": lambda self: None})())
    pc.tie_to_parent(os.getppid())
    assert exits == [0]


# ---------------------------------------------------------------------------------------
# a numba cache that cannot be written
# ---------------------------------------------------------------------------------------
def test_no_writable_numba_cache_is_found_and_a_private_one_is_used(tmp_path, monkeypatch):
    import os

    from riskmodel import _atomic

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _atomic.numba_cache_problem() is None  # this checkout can cache
    monkeypatch.setattr(_atomic, "_kernels_folder", lambda: blocker / "kernels")
    monkeypatch.setattr(_atomic, "_user_cache_folder", lambda: blocker / "user")
    monkeypatch.setattr(_atomic, "_configured_cache_dir", lambda: str(blocker / "numba"))
    problem = _atomic.numba_cache_problem()
    assert problem is not None and "numba cannot write its cache" in problem and str(blocker) in problem
    monkeypatch.setattr(_atomic, "_PRIVATE_CACHE", [])
    monkeypatch.setenv("NUMBA_CACHE_DIR", "unchanged")
    folder = _atomic.use_private_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == folder and os.path.isdir(folder)
    assert _atomic.use_private_numba_cache() == folder  # once per process


def test_cli_says_one_line_and_falls_back_when_numba_cannot_cache(tmp_path, monkeypatch, capsys):
    from riskmodel import _atomic
    from riskmodel.cli.main import main

    monkeypatch.setattr(_atomic, "numba_cache_problem", lambda: "numba cannot write its cache (tried /ro)")
    used = []
    monkeypatch.setattr(_atomic, "use_private_numba_cache", lambda: used.append(1) or "/tmp/x")
    assert main(["simulate", "-o", str(tmp_path / "p.nc"), "--stocks", "150", "--days", "30"]) == 0
    err = capsys.readouterr().err
    assert used == [1]
    assert err.count("numba cannot write its cache") == 1 and "compiling without a lasting cache" in err
    assert "Traceback" not in err
