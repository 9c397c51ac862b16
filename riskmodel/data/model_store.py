"""A zarr model store that grows by appended dates, atomically (``riskmodel update``, issue 20).

Layout of ``MODEL.zarr`` once updated: the store :func:`riskmodel.save` wrote (the root,
never modified again except for its ``zarr.json``), then one immutable zarr group per
update, ``_segment_000001 …`` (the new dates' variables, on the stock axis of that
version), and the state of the last update, ``_state_000001 …`` (the ``update_*``
variables of :mod:`riskmodel.models.update_state`). The root's attributes point at the
segments and the state (:data:`riskmodel.data.io.GROWN_ATTR`); :func:`riskmodel.load`
reads that pointer once and assembles that version.

An update writes its segment and state under temporary names, fsyncs every file and folder
of each (several at a time), renames them into place (the store's folder fsynced), then
writes the root's new ``zarr.json`` beside it, fsyncs it and replaces the old one in one
``os.replace`` (the folder fsynced again): a reader sees the
previous version or the new one, never a mix, and a killed update leaves the previous
version loadable (its leftovers, named by no pointer, are removed by the next update).
The states of the two previous versions are kept for readers still assembling them;
older ones are removed. Updates of one store are serialised by a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import xarray as xr

from riskmodel import _atomic
from riskmodel.data import io
from riskmodel.errors import ModelFileError

_fsync_path = _atomic.fsync_file  # one file or folder (a module name, so tests can watch the order)

__all__ = ["read_pointer", "read_state", "append_update"]

_LOCK = ".update.lock"  # beside the store: .MODEL.zarr.update.lock
_KEEP_STATES = 3
_PART = re.compile(r"^_(segment|state)_\d{6}$")


def _root_meta(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a zarr store riskmodel wrote ({exc})") from exc


def read_pointer(path: str | os.PathLike) -> dict[str, Any] | None:
    """The grown store's pointer ``{"segments": [...], "state": name, "states": [...]}``, or
    None for a store no update has touched."""
    value = _root_meta(Path(path)).get("attributes", {}).get(io.GROWN_ATTR)
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def read_state(path: str | os.PathLike) -> tuple[dict[str, Any], xr.Dataset | None]:
    """The root's attributes (decoded) and the last update's state (None before the first update)."""
    path = Path(path)
    attrs = io._decode_attrs(_root_meta(path).get("attributes", {}))
    pointer = read_pointer(path)
    if pointer is None:
        return attrs, None
    return attrs, io._restore(io._open(path / pointer["state"], "zarr", None), None)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.parent / f".{path.name}{_LOCK}", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


#: Threads flushing a new group's files: every file and folder is fsynced as before, but
#: concurrently, so the filesystem commits them together (a group holds a few hundred small
#: files; one by one they cost about a second).
_FSYNC_THREADS = 16


def _fsync_tree_concurrently(path: Path) -> None:
    """fsync every file and folder of the tree ``path`` (as :func:`riskmodel._atomic.fsync_tree`),
    several at a time; returns once all are flushed (an error in any is raised)."""
    from concurrent.futures import ThreadPoolExecutor

    if os.name != "posix":  # folders cannot be opened to flush them
        _atomic.fsync_tree(path)
        return
    entries: list[Path] = []
    for root, _dirs, files in os.walk(path, topdown=False):
        entries.extend(Path(root) / name for name in files)
        entries.append(Path(root))
    with ThreadPoolExecutor(min(_FSYNC_THREADS, max(1, len(entries)))) as pool:
        for _ in pool.map(_fsync_path, entries):
            pass


def _write_group(ds: xr.Dataset, folder: Path, name: str) -> None:
    """``ds`` as the zarr group ``folder/name``: written under a temporary name, every file and
    folder flushed, renamed (and the rename flushed)."""
    ds = io.prepare_for_disk(ds)
    ds.attrs[io._LAYOUT_ATTR] = io._LAYOUT
    ds.attrs[io._VARIABLES_ATTR] = json.dumps([str(v) for v in ds.variables])
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    io._write(ds, tmp, "zarr")
    _fsync_tree_concurrently(tmp)
    os.rename(tmp, folder / name)
    _atomic.fsync_dir(folder)


def _remove_leftovers(path: Path, keep: set[str]) -> None:
    """Segments and states no pointer names, and temporaries of dead updates."""
    for entry in path.iterdir():
        name = entry.name
        if (_PART.match(name) and name not in keep) or (name.startswith("._") and name.endswith(".tmp")):
            _atomic.remove_path(entry)


def append_update(path: str | os.PathLike, rows: xr.Dataset, state: xr.Dataset) -> None:
    """Append the dates ``rows`` to the zarr model at ``path`` and make ``state`` its state.

    Parameters
    ----------
    path : path
        A zarr store :func:`riskmodel.save` wrote (possibly grown before).
    rows : Dataset
        The model's variables on the new dates (stock axis: the previous one, then new stocks).
    state : Dataset
        The ``update_*`` variables after those dates.

    Raises
    ------
    ModelFileError
        ``path`` is not a riskmodel zarr store.
    """
    path = Path(path)
    io.check_replaceable(path, "zarr")
    with _locked(path), _atomic.signals_deferred():
        meta = _root_meta(path)
        pointer = read_pointer(path) or {"segments": [], "state": None, "states": []}
        _remove_leftovers(path, {*pointer["segments"], *pointer["states"]})
        number = len(pointer["segments"]) + 1
        segment, state_name = f"_segment_{number:06d}", f"_state_{number:06d}"
        _write_group(rows, path, segment)
        _write_group(state, path, state_name)
        states = [*pointer["states"], state_name][-_KEEP_STATES:]
        new_pointer = {"segments": [*pointer["segments"], segment], "state": state_name, "states": states}
        meta.setdefault("attributes", {})[io.GROWN_ATTR] = json.dumps(new_pointer)
        tmp = path / f"._zarr.json.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(json.dumps(meta, indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / "zarr.json")  # the switch: one atomic rename
        _atomic.fsync_dir(path)
        _remove_leftovers(path, {*new_pointer["segments"], *states})
