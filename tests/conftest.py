"""Shared fixtures. Numba's cache is kept in one folder so test processes reuse kernels."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache"))

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_PANEL_FILE = SHARED_DATA / "us_equities_20070103_20161230.csv.gz"
_HELPER = pytest.StashKey[object]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """On a cold numba cache (a fresh CI machine) a helper process compiles the specific-risk
    and operator kernels while the first tests compile the early stages' kernels."""
    from riskmodel.cli.precompile import compiling_ahead

    helper = compiling_ahead("specific", "operator")
    helper.__enter__()
    session.config.stash[_HELPER] = helper


def pytest_sessionfinish(session: pytest.Session) -> None:
    helper = session.config.stash.get(_HELPER, None)
    if helper is not None:
        helper.__exit__(None, None, None)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data folder ``../shared/data``; tests using it skip when it is absent."""
    if not _PANEL_FILE.exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("name")``: the module ``benchmarks/name.py``, loaded from its file
    (the benchmarks are scripts, not a package)."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
