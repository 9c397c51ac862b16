"""Compile the kernels of the later pipeline stages in a helper process, ahead of need.

A new install compiles its numba kernels on first use: about 35 s for a full fit, one
compilation after another on one core. The command line (``riskmodel demo``, ``riskmodel
fit``) therefore starts a helper process that runs the stages the main process reaches
last (the specific-risk model, then the covariance operator) on a tiny problem. Numba's
on-disk cache hands the helper's compiled kernels to the main process, which compiles the
first stages (exposures, regression, factor covariance) meanwhile: the two halves take
about the same time, so the first fit takes about half as long.

Correctness never depends on the helper: a kernel the main process reaches before the
helper has cached it is compiled by the main process as usual (numba writes cache entries
atomically, so the two never read a partial file). No helper is started when the cache
already holds the kernels, when numba cannot cache, or when ``RISKMODEL_PRECOMPILE=0``.

The helper's calls go through the same stage functions, with the same dtypes and layouts,
as a fit's, so they compile the signatures a fit uses (``tests/cli/test_precompile.py``
checks this). Run it by hand as ``python -m riskmodel.cli.precompile STAGE [STAGE ...]``.

The helper runs no code from the working directory: it is started isolated (``python -I``)
with the parent's import path minus the working directory (:func:`helper_import_path`), so
a ``numpy.py`` in the folder where a fit is run is not imported. It is tied to its parent
(:func:`tie_to_parent`): a parent killed even with SIGKILL takes the helper with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["STAGES", "compiling_ahead", "is_cached"]


def _specific() -> None:
    """The specific-risk model (time series, structural model, shrinkage, VRA)."""
    from riskmodel.covariance.specific import specific_variance

    rng = np.random.default_rng(0)
    T, N, K = 120, 60, 2
    cap = np.exp(rng.standard_normal((T, N)))
    exposures = types.SimpleNamespace(
        styles=rng.standard_normal((T, N, K)),
        industry=np.tile(np.arange(N, dtype=np.int32) % 3, (T, 1)),
        industry_labels=("a", "b", "c"),
        weights=np.sqrt(cap),
        cap=cap,
    )
    specific_variance(0.01 * rng.standard_normal((T, N)), exposures, half_life=20, min_obs=20, full_obs=40)


def _operator() -> None:
    """The covariance operator's fused pass over portfolios (market + industries + styles)."""
    from riskmodel.covariance.structured import StructuredCovariance

    rng = np.random.default_rng(0)
    n_stocks, n_industries, n_styles = 40, 10, 2
    industry = np.zeros((n_stocks, n_industries))
    industry[np.arange(n_stocks), np.arange(n_stocks) % n_industries] = 1.0
    exposures = np.hstack([np.ones((n_stocks, 1)), industry, rng.standard_normal((n_stocks, n_styles))])
    m = exposures.shape[1]
    cov = StructuredCovariance.from_arrays(exposures, np.eye(m) * 1e-4, np.full(n_stocks, 4e-4))
    cov.decompose(rng.standard_normal((3, n_stocks)))


def _specific_kernels() -> list[Any]:
    from riskmodel.kernels import specific
    from riskmodel.kernels._chunks import compiled_bodies

    drivers = [specific.specific_ts_kernel, specific.structural_kernel, specific.shrink_kernel,
               specific.vra_terms_kernel]
    return [body for driver in drivers for body in compiled_bodies(driver)]


def _operator_kernels() -> list[Any]:
    from riskmodel.kernels import operator
    from riskmodel.kernels._chunks import compiled_bodies

    return compiled_bodies(operator.grouped_rows_kernel)


#: Stage name -> (the tiny run that compiles its kernels, the kernels it compiles), in the
#: order a demo reaches them. The kernels are imported on demand (numba dispatchers).
STAGES: dict[str, tuple[Callable[[], None], Callable[[], list[Any]]]] = {
    "specific": (_specific, _specific_kernels),
    "operator": (_operator, _operator_kernels),
}


def is_cached(kernel: Any) -> bool:
    """True when numba's on-disk cache holds a current entry for ``kernel`` (a dispatcher).

    Reads numba's cache index, which is empty when the kernel's source or numba changed
    since it was written; False whenever that cannot be told (no cache, another numba).
    """
    try:
        return bool(kernel._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - numba internals: any failure means "not known"
        return False


#: What the isolated helper interpreter (``python -I -c``) runs: take the parent's import
#: path (the working directory left out), tie itself to the parent, compile the stages.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from riskmodel.cli.precompile import helper_main; "
    "sys.exit(helper_main(int(sys.argv[2]), sys.argv[3:]))"
)


def helper_import_path() -> list[str]:
    """The helper's ``sys.path``: the parent's, without the working directory.

    ``python -m`` and ``python -c`` put the working directory (``""``) first on the path,
    so a ``numpy.py`` lying there would be imported in their place. The helper runs
    isolated (``-I``: no working directory, no ``PYTHON*`` variables, no user site) and
    gets the parent's absolute path entries instead, minus the working directory (kept
    only when riskmodel itself was imported from there), with riskmodel's own folder first
    when it is not on the path already.
    """
    cwd = os.path.realpath(os.getcwd())
    package_parent = str(Path(__file__).resolve().parents[2])
    paths: list[str] = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue  # relative to the working directory
        if os.path.realpath(entry) == cwd and os.path.realpath(entry) != os.path.realpath(package_parent):
            continue
        if entry not in paths:
            paths.append(entry)
    if not any(os.path.realpath(entry) == os.path.realpath(package_parent) for entry in paths):
        paths.insert(0, package_parent)
    return paths


def _helper_command(stages: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-I", "-c", _BOOTSTRAP, json.dumps(helper_import_path()), str(os.getpid()), *stages]


def _parent_gone(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def tie_to_parent(parent_pid: int, poll_seconds: float = 0.25) -> None:
    """End this process when ``parent_pid`` (its parent) ends, however it ends.

    On Linux the kernel sends SIGTERM when the parent dies (``PR_SET_PDEATHSIG``); everywhere
    a daemon thread checks the parent every ``poll_seconds`` and exits when it was
    re-parented. A parent already gone ends the process at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread alone
            pass
    if _parent_gone(parent_pid):
        os._exit(0)

    def watch() -> None:
        while not _parent_gone(parent_pid):
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="riskmodel-precompile-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def helper_main(parent_pid: int, stages: list[str]) -> int:
    """The helper process: tied to ``parent_pid``, it compiles ``stages`` (see :func:`main`)."""
    tie_to_parent(parent_pid)
    return main(stages)


@contextmanager
def compiling_ahead(*stages: str) -> Iterator[subprocess.Popen | None]:
    """Run the body while a helper process compiles the kernels of ``stages``.

    The helper is stopped when the body ends (what it has cached by then stays cached).

    Parameters
    ----------
    *stages : str
        Keys of :data:`STAGES`, in the order the helper should compile them.

    Yields
    ------
    subprocess.Popen or None
        The helper, or None when none was needed or wanted.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known: {sorted(STAGES)}")
    proc = None
    if os.environ.get("RISKMODEL_PRECOMPILE", "1") != "0":
        needed = tuple(s for s in stages if not all(is_cached(k) for k in STAGES[s][1]()))
        if needed:
            try:
                proc = subprocess.Popen(
                    _helper_command(needed),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:  # no interpreter to start (embedded Python) or no processes left
                proc = None
    try:
        yield proc
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck helper
                proc.kill()
                proc.wait()


def main(argv: list[str]) -> int:
    """Run the tiny problem of each stage named in ``argv``, in order."""
    import warnings

    warnings.simplefilter("ignore")
    for stage in argv:
        STAGES[stage][0]()
    return 0


if __name__ == "__main__":  # pragma: no cover - the helper process
    sys.exit(main(sys.argv[1:]))
