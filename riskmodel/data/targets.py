"""What a riskmodel file is and what :func:`riskmodel.save` may replace.

The storage format follows the suffix (``.nc`` netCDF, ``.zarr`` zarr v3). A file or store
is riskmodel's when its attributes carry riskmodel's marks; :func:`check_replaceable`
refuses anything else (a folder of the user's, a foreign netCDF, a read-only file) and
:func:`check_target` checks an output path before any long work. :mod:`riskmodel.data.io`
writes and reads the files.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import stat
from pathlib import Path

from riskmodel import _atomic
from riskmodel.errors import InvalidParameterError, ModelFileError

__all__ = ["storage_format", "stored_kind", "check_replaceable", "check_target", "check_free_space"]

_SUFFIXES = {".nc": "netcdf", ".zarr": "zarr"}
_JSON_KEYS_ATTR = "_riskmodel_json_attrs"
_STR_LABELS_ATTR = "_riskmodel_str_labels"
_DATAARRAY_NAME_ATTR = "riskmodel_dataarray_name"


def storage_format(path: str | os.PathLike) -> str:
    """The storage format chosen by a path's suffix: ``"netcdf"`` (.nc) or ``"zarr"`` (.zarr).

    Raises
    ------
    InvalidParameterError
        For any other suffix (callers check an output path before long work).
    """
    return _format_of(Path(path))


def _format_of(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidParameterError(
            f"cannot tell the file format of {str(path)!r} from its suffix {path.suffix!r}; "
            "use '.nc' (netCDF4 via h5netcdf) or '.zarr' (zarr v3 directory)"
        )
    return fmt


# ----------------------------------------------------------------------------------------
# what save may replace
# ----------------------------------------------------------------------------------------
#: Attributes only riskmodel writes: a file or store whose root (or a variable) carries one
#: of them was written by riskmodel (any release).
_MARKS = ("riskmodel_kind", "riskmodel_object", _JSON_KEYS_ATTR, _DATAARRAY_NAME_ATTR, _STR_LABELS_ATTR)
#: Set by :func:`save` (root attributes, removed again by :func:`load`): the layout version
#: (2: Fletcher-32 / crc32c checksums, every zarr chunk written) and the stored variables.
_LAYOUT_ATTR = "_riskmodel_file"
_VARIABLES_ATTR = "_riskmodel_variables"
_LAYOUT = 2
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZARR_ARRAY_ENTRIES = {"zarr.json", "c"}


def _netcdf_marks(path: Path) -> str | None:
    """None when ``path`` is an HDF5 file carrying riskmodel's marks, else what it is instead."""
    with open(path, "rb") as fh:
        if fh.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
            return "it is not a netCDF file"
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            names = set(fh.attrs)
            for item in fh.values():
                names.update(getattr(item, "attrs", {}))
    except Exception as exc:  # noqa: BLE001 - h5py raises many types for damaged files
        return f"it cannot be read ({type(exc).__name__}), so it cannot be told to be a riskmodel file"
    if names.intersection((*_MARKS, _LAYOUT_ATTR)):
        return None
    return "it is a netCDF/HDF5 file that riskmodel did not write (none of its attributes are riskmodel's)"


def _grown_part(member: Path) -> bool:
    """A segment or state group of a grown model (:mod:`riskmodel.data.model_store`), or a
    temporary of an update."""
    name = member.name
    if name.startswith("._") and name.endswith(".tmp"):
        return True
    return bool(re.match(r"^_(segment|state)_\d{6}$", name)) and member.is_dir() and (member / "zarr.json").is_file()


def _zarr_marks(path: Path) -> str | None:
    """None when ``path`` is a zarr v3 store riskmodel wrote and holds nothing else."""
    entries = sorted(entry.name for entry in path.iterdir())
    if "zarr.json" not in entries:
        return f"it is a folder that is not a zarr store (it holds {entries[0]!r})"
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
        attrs = meta.get("attributes", {}) if meta.get("node_type") == "group" else {}
    except (OSError, ValueError, AttributeError):
        return "its zarr.json cannot be read, so it cannot be told to be a riskmodel store"
    if not set(attrs).intersection((*_MARKS, _LAYOUT_ATTR)):
        return "it is a zarr store that riskmodel did not write (none of its attributes are riskmodel's)"
    for name in entries:
        member = path / name
        if name == "zarr.json" or _grown_part(member):
            continue
        if not member.is_dir() or member.is_symlink() or not (member / "zarr.json").is_file():
            return f"it holds {name!r}, which is not part of a zarr array"
        foreign = sorted({entry.name for entry in member.iterdir()} - _ZARR_ARRAY_ENTRIES)
        if foreign:
            return f"it holds {name}/{foreign[0]}, which is not part of a zarr array"
    return None


def _refusal(path: Path, fmt: str) -> str | None:
    """Why :func:`save` must not replace ``path`` (None: it may, or nothing is there)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_IMODE(st.st_mode) & 0o222 == 0 or not os.access(path, os.W_OK):
        return f"it is read-only (mode {stat.S_IMODE(st.st_mode):04o}); make it writable to replace it"
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return None  # an empty file holds nothing to lose
    if fmt == "netcdf":
        if stat.S_ISDIR(st.st_mode):
            return "it is a directory, not a netCDF file"
        if not stat.S_ISREG(st.st_mode):
            return "it is not a regular file"
        return _netcdf_marks(path)
    if not stat.S_ISDIR(st.st_mode):
        return "it is a file, not a zarr directory store"
    if not any(path.iterdir()):
        return None  # an empty folder holds nothing to lose
    return _zarr_marks(path)


def check_replaceable(path: str | os.PathLike, fmt: str | None = None) -> None:
    """Raise :class:`ModelFileError` unless ``path`` is absent or a riskmodel file ``save`` may replace.

    ``save`` replaces only what riskmodel itself wrote: a netCDF file (``.nc``) or a zarr
    v3 store (``.zarr``) whose attributes carry riskmodel's marks (every file
    :func:`save` writes does, and so did the files of earlier releases), and a zarr store
    only when it holds nothing but its arrays. An empty file or empty folder may be
    replaced; a read-only one may not. Nothing is changed when the answer is no.
    """
    path = Path(path)
    reason = _refusal(path, fmt or _format_of(path))
    if reason is not None:
        raise ModelFileError(f"refusing to replace {str(path)!r}: {reason}; nothing was changed")


def stored_kind(path: str | os.PathLike) -> str | None:
    """The ``riskmodel_kind`` a riskmodel file or store declares (None: a panel or another
    plain Dataset, or nothing readable there). Reads the root attributes only."""
    path = Path(path)
    try:
        if path.is_dir():
            meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
            kind = meta.get("attributes", {}).get("riskmodel_kind")
        else:
            import h5py

            with h5py.File(path, "r") as fh:
                kind = fh.attrs.get("riskmodel_kind")
    except Exception:  # noqa: BLE001 - not ours or unreadable: check_replaceable says which
        return None
    if isinstance(kind, bytes):
        kind = kind.decode("utf-8", "replace")
    return None if kind is None else str(kind)


def _describe_kind(kind: str | None) -> str:
    return "a panel (or another dataset)" if kind is None else f"a {kind.replace('_', ' ')}"


def check_target(path: str | os.PathLike, writes: str | None = None) -> str:
    """Check, before any long work, that :func:`save` can write ``path``; return its format.

    ``writes`` (``"panel"`` or ``"fitted model"``, for the command line): an existing
    riskmodel file of the other kind is not replaced either, so that ``-o`` given the
    wrong path cannot swap a model for a panel.

    Raises :class:`InvalidParameterError` for an unknown suffix and
    :class:`ModelFileError` when the folder is missing or not writable or the target may
    not be replaced (:func:`check_replaceable`).
    """
    target = _real_target(Path(path))
    fmt = _format_of(Path(path))
    _atomic.check_folder_writable(target)
    check_replaceable(target, fmt)
    if writes is not None and target.exists() and not (target.is_file() and target.stat().st_size == 0):
        kind = stored_kind(target)
        same = kind is None if writes == "panel" else (kind or "").startswith("fitted_")
        if not same and not (target.is_dir() and not any(target.iterdir())):
            raise ModelFileError(
                f"refusing to replace {str(path)!r}: it holds {_describe_kind(kind)}, and this command writes a "
                f"{writes}; choose another path (or delete that file yourself); nothing was changed"
            )
    return fmt


def check_free_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`ModelFileError` when the folder of ``path`` has less than ``needed`` bytes free."""
    folder = _real_target(Path(path)).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise ModelFileError(
            f"not enough space to write {str(path)!r}: {free / 1e6:.1f} MB free in {str(folder)!r}, "
            f"about {needed / 1e6:.1f} MB needed"
        )


def _real_target(path: Path) -> Path:
    """A symlink's target (the file it points to is what is replaced), else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path
