"""The catalogue's machinery: a case, the shared input files, a disk snapshot, the checks.

A :class:`Case` writes its inputs into ``tmp_path`` (``setup``) and returns either an
argv for ``riskmodel.cli.main`` or a zero-argument callable for the API. The expected
outcome is one of

* ``"error"``: exit 2 and exactly one ``riskmodel <command>: error:`` line on stderr
  naming every substring in ``names`` (API: the exception is ``exc`` and its message
  names them); nothing on disk changed (no output, no temporary);
* ``"warning"``: exit 0 and a ``riskmodel <command>: warning:`` line naming ``names``
  (API: a warning of class ``exc`` naming them); only ``outputs`` changed;
* ``"ok"``: exit 0, no error line; only ``outputs`` changed; ``check`` (if given) passes.

This module is loaded by ``tests/test_bad_inputs.py`` (importlib import mode: it is not
a package); the case tables in ``cases_*.py`` import it as ``_bad_inputs_harness``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

#: The styles of the simulated panel.
STYLES = ("size", "value", "momentum")


@dataclass(frozen=True)
class Case:
    """One bad input, fault or misuse and the outcome issue 17 asks for."""

    id: str
    setup: Callable[[Path, "Env"], Any]  # -> argv (list of str) or an API callable
    expect: str  # "error" | "warning" | "ok"
    names: tuple[str, ...] = ()  # substrings the message must contain
    exc: type | None = None  # API: the exception / warning class
    outputs: tuple[str, ...] = ()  # paths under tmp_path that a success may write
    check: Callable[[Path, "Env", Any], None] | None = None  # extra check of a success
    memory_cap: bool = False  # run under an address-space limit (a case that may try to allocate tens of GiB)

    def __post_init__(self) -> None:
        assert self.expect in ("error", "warning", "ok"), self.expect


@dataclass
class Env:
    """Session-wide inputs (written once) and the per-case monkeypatch."""

    root: Path
    panel: Any  # the simulated xr.Dataset (60 stocks x 120 days)
    fit: Any  # its FittedFactorModel
    long: pd.DataFrame  # the panel as a long frame (date, stock, returns, market_cap, industry, styles)
    monkeypatch: Any = None
    extra: dict = field(default_factory=dict)

    # -- copies of the session files into a case's folder -----------------------------
    def copy(self, name: str, tmp: Path, as_name: str | None = None) -> str:
        """Copy the session file or store ``name`` into ``tmp``; return its path."""
        src, dst = self.root / name, tmp / (as_name or name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
        return str(dst)

    @property
    def stocks(self) -> list[str]:
        return [str(s) for s in self.panel["stock"].values]


def write_long_csv(tmp: Path, frame: pd.DataFrame, name: str = "panel.csv", **kwargs) -> str:
    """Write a long frame as CSV (no index) into ``tmp``."""
    path = tmp / name
    frame.to_csv(path, index=False, **kwargs)
    return str(path)


def write_text(tmp: Path, name: str, text: str | bytes) -> str:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def weights_frame(env: Env, n: int = 20) -> pd.DataFrame:
    """Two portfolios over the first ``n`` stocks, fully invested."""
    stocks = env.stocks[:n]
    return pd.DataFrame({"stock": stocks, "a": 1.0 / n, "b": [2.0 / n] * (n // 2) + [0.0] * (n - n // 2)})


def factor_frame(env: Env, factors=("market", "size")) -> pd.DataFrame:
    """The fitted model's factor returns for ``factors`` (date index), NaN rows dropped."""
    frame = env.fit.factor_returns.sel(factor=list(factors)).to_pandas().dropna()
    frame.index.name = "date"
    return frame


def panel_argv(csv: str, tmp: Path, *extra: str, out: str = "out.nc") -> list[str]:
    """``riskmodel panel CSV -o tmp/out.nc --static industry`` plus ``extra``."""
    return ["panel", csv, "-o", str(tmp / out), "--static", "industry", *extra]


# ---------------------------------------------------------------------------------------
# disk snapshot
# ---------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: files by (bytes, mode, mtime_ns), folders and links by
    mode (a folder's mtime moves when a temporary is made and removed inside it; that a
    temporary is left is caught by the entry itself)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                out[rel] = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            else:
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
    return out


def changed_paths(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))


def outside_outputs(paths: list[str], outputs: tuple[str, ...]) -> list[str]:
    """The changed paths that are not an allowed output (or inside one)."""
    def allowed(p: str) -> bool:
        return any(p == o or p.startswith(o.rstrip("/") + "/") for o in outputs)

    return [p for p in paths if not allowed(p)]


def restore_permissions(root: Path) -> None:
    """Make everything under ``root`` writable again so that pytest can remove it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR * path.is_dir())
    root.chmod(root.stat().st_mode | stat.S_IWUSR)


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def is_noise(line: str, command: str) -> bool:
    """stderr lines allowed beside the one error line: warnings, argparse's usage block,
    the first-run compile notice."""
    return (
        line.startswith(f"riskmodel {command}: warning:")
        or line.startswith("usage: ")
        or line.startswith(" ")
        or line.startswith("first run on this machine")
    )


@contextlib.contextmanager
def address_space_cap(extra_bytes: int = 4 << 30) -> Iterator[None]:
    """Limit this process's address space to its current size plus ``extra_bytes`` so that
    an oversized allocation is a MemoryError (a failing case), not the kernel's OOM killer."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as fh:
        size_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    limit = size_kb * 1024 + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def random_bytes(n: int, seed: int = 17) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
