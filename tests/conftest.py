"""Shared fixtures. Numba's cache is kept in one folder so test processes reuse kernels."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache"))

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_PANEL_FILE = SHARED_DATA / "us_equities_20070103_20161230.csv.gz"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data folder ``../shared/data``; tests using it skip when it is absent."""
    if not _PANEL_FILE.exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
