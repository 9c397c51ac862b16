"""Saving and loading panels and fitted models: netCDF (h5netcdf) or zarr v3, atomically.

``save`` never writes into the target: it writes a temporary sibling in the same folder
(``.<name>.<pid>-<random>.tmp``) and renames it over the target, so a crash leaves the
previous file intact and never a partial file under the target name. For a zarr
directory, which cannot be renamed over an existing directory, the old store is first
moved aside (``.<name>.<pid>-<random>.old``), the new one moved in, and the old one
deleted. Temporary siblings left by a killed writer are removed by the next ``save`` of
the same target (POSIX: when their writer process no longer exists).

What is stored, and restored by ``load``:

* str coordinates and variables as variable-length UTF-8 strings (no fixed-width
  unicode in zarr v3), loaded back as numpy str arrays (missing = ``""``);
* an ``industry`` variable of str labels as int32 codes (``-1`` = missing) with
  ``attrs["labels"]`` (a JSON list), turned back into str labels on load (integer-coded
  industries stay integer-coded);
* list / tuple / dict / bool / None attributes as JSON, decoded on load;
* a DataArray as a one-variable Dataset, loaded back as the DataArray.

No pickle anywhere.

:func:`prepare_for_disk` and the atomic-file helpers (:func:`sibling_path`,
:func:`move_into_place`, :func:`remove_path`, :func:`remove_stale_siblings`) are shared
with :mod:`riskmodel.models.chunked`, whose out-of-core fit writes its zarr store chunk by chunk;
they are not part of the public API (not in ``__all__``).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel.errors import InvalidParameterError, ModelFileError

__all__ = ["save", "load", "KIND_REGISTRY"]

#: ``attrs["riskmodel_kind"]`` (or ``attrs["riskmodel_object"]``) -> "module:Class" whose
#: ``from_dataset(ds)`` rebuilds the object. Imported lazily; a missing module or class
#: means the Dataset itself is returned.
KIND_REGISTRY: dict[str, str] = {
    "fitted_factor_model": "riskmodel.models.fundamental:FittedFactorModel",
    "fitted_timeseries_model": "riskmodel.models.timeseries:FittedTimeSeriesModel",
    "fitted_statistical_model": "riskmodel.models.statistical:FittedStatisticalModel",
    "StructuredCovariance": "riskmodel.covariance.structured:StructuredCovariance",
    "risk_decomposition": "riskmodel.covariance.structured:RiskDecomposition",
    "wls_result": "riskmodel.regression:WLSResult",
    "residual_audit": "riskmodel.audit.residuals:ResidualAudit",
    "bias_statistics": "riskmodel.audit.bias:BiasStatistics",
    "cluster_refit": "riskmodel.audit.refit:ClusterRefit",
    "signal_factor": "riskmodel.research.factor_from_signal:SignalFactor",
    "quantile_portfolios": "riskmodel.research.portfolios:QuantilePortfolios",
    "alpha_test": "riskmodel.research.alpha:AlphaTest",
    "attribution": "riskmodel.research.alpha:Attribution",
}

_SUFFIXES = {".nc": "netcdf", ".zarr": "zarr"}
_JSON_KEYS_ATTR = "_riskmodel_json_attrs"
_STR_LABELS_ATTR = "_riskmodel_str_labels"
_DATAARRAY_KIND = "dataarray"
_DATAARRAY_NAME_ATTR = "riskmodel_dataarray_name"
_UNNAMED = "__riskmodel_dataarray__"
_INDUSTRY = "industry"


# ----------------------------------------------------------------------------------------
# encoding for disk
# ----------------------------------------------------------------------------------------
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


def _needs_json(value: Any) -> bool:
    if isinstance(value, (list, tuple, dict, bool, np.bool_)) or value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in ("i", "u", "f")
    return not isinstance(value, (str, int, float, np.integer, np.floating))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _encode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    json_keys = []
    for key, value in attrs.items():
        if key == _JSON_KEYS_ATTR:
            continue
        if _needs_json(value):
            out[key] = json.dumps(value, default=_json_default)
            json_keys.append(key)
        else:
            out[key] = value
    if json_keys:
        out[_JSON_KEYS_ATTR] = json.dumps(json_keys)
    return out


def _decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    keys = out.pop(_JSON_KEYS_ATTR, None)
    if keys is None:
        return out
    for key in json.loads(keys):
        if key in out and isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


def _is_str_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in ("U", "S", "O", "T")


def _str_values(values: np.ndarray) -> np.ndarray:
    """Any label array as numpy str ('' for None/NaN)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8")
    obj = arr.astype(object)
    return np.where(pd.isna(obj), "", obj).astype(str)


def _industry_to_codes(var: xr.Variable) -> xr.Variable:
    labels_arr = _str_values(np.asarray(var.values))
    uniq, inverse = np.unique(labels_arr, return_inverse=True)
    has_empty = uniq.size > 0 and uniq[0] == ""
    codes = inverse.reshape(labels_arr.shape).astype(np.int32) - (1 if has_empty else 0)
    labels = [str(x) for x in (uniq[1:] if has_empty else uniq)]
    attrs = dict(var.attrs)
    attrs["labels"] = labels
    attrs[_STR_LABELS_ATTR] = 1
    return xr.Variable(var.dims, codes, attrs)


def prepare_for_disk(ds: xr.Dataset) -> xr.Dataset:
    """A copy of ``ds`` ready for disk: strings as vlen objects, industry codes, JSON attrs."""
    variables: dict[Any, xr.Variable] = {}
    for name, var in ds.variables.items():
        if name == _INDUSTRY and name in ds.data_vars and _is_str_dtype(var.dtype):
            var = _industry_to_codes(var)
        elif _is_str_dtype(var.dtype):
            var = xr.Variable(var.dims, _str_values(np.asarray(var.values)).astype(object), var.attrs)
        else:
            var = var.copy(deep=False)
        var.attrs = _encode_attrs(var.attrs)
        var.encoding = {}
        variables[name] = var
    coord_names = set(ds.coords)
    out = xr.Dataset(
        {k: v for k, v in variables.items() if k not in coord_names},
        coords={k: v for k, v in variables.items() if k in coord_names},
        attrs=_encode_attrs(ds.attrs),
    )
    return out


def _as_dataset(obj: Any) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        name = obj.name if obj.name is not None else _UNNAMED
        ds = obj.to_dataset(name=name)
        ds.attrs["riskmodel_kind"] = _DATAARRAY_KIND
        ds.attrs[_DATAARRAY_NAME_ATTR] = str(name)
        return ds
    to_dataset = getattr(obj, "to_dataset", None)
    if callable(to_dataset):
        ds = to_dataset()
        if not isinstance(ds, xr.Dataset):
            raise InvalidParameterError(
                f"{type(obj).__name__}.to_dataset() returned {type(ds).__name__}, not an xarray.Dataset"
            )
        return ds
    raise InvalidParameterError(
        f"cannot save a {type(obj).__name__}: give an xarray Dataset/DataArray or an object "
        "with a .to_dataset() method (a fitted model, a covariance operator)"
    )


# ----------------------------------------------------------------------------------------
# atomic file handling
# ----------------------------------------------------------------------------------------
def sibling_path(path: Path, tag: str) -> Path:
    """A fresh hidden sibling of ``path`` in the same folder: ``.<name>.<pid>-<random>.<tag>``."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.{tag}")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell cheaply: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def remove_stale_siblings(path: Path) -> None:
    """Delete ``.<name>.<pid>-*.tmp`` left by writers that were killed."""
    prefix = f".{path.name}."
    for entry in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid_part = entry.name[len(prefix):].split("-", 1)[0]
        if pid_part.isdigit() and int(pid_part) != os.getpid() and not _pid_alive(int(pid_part)):
            remove_path(entry)


def glob_escape(name: str) -> str:
    """Escape glob metacharacters of a file name."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def move_into_place(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``; a directory target is moved aside first."""
    if (path.is_dir() and not path.is_symlink()) or (tmp.is_dir() and path.exists()):
        old = sibling_path(path, "old")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)  # put the previous version back
            raise
        remove_path(old)
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Write a Dataset, DataArray, fitted model or covariance operator to disk, atomically.

    Parameters
    ----------
    obj : xr.Dataset, xr.DataArray, or an object with ``.to_dataset()``
        What to store (a panel, a fitted model, a :class:`StructuredCovariance`…).
    path : str or path-like
        Target; the suffix chooses the format: ``.nc`` (netCDF4 through h5netcdf) or
        ``.zarr`` (zarr v3 directory store).

    Returns
    -------
    pathlib.Path
        The target path.

    Raises
    ------
    InvalidParameterError
        Unknown suffix, or ``obj`` cannot be turned into a Dataset.
    ModelFileError
        The target folder does not exist or the write failed (the previous file, if any,
        is left untouched).

    Notes
    -----
    The data are written to a temporary sibling in the same folder, flushed to disk,
    and renamed over the target (``os.replace``, atomic on POSIX and Windows). The
    caller's object is not modified. Dask-backed data are computed while writing.

    Examples
    --------
    >>> import tempfile, pathlib, xarray as xr
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = save(xr.Dataset({"x": ("stock", [1.0, 2.0])}, coords={"stock": ["A", "B"]}), folder / "p.nc")
    >>> load(folder / "p.nc")["stock"].values.tolist()
    ['A', 'B']
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.parent.is_dir():
        raise ModelFileError(
            f"cannot save to {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first"
        )
    ds = prepare_for_disk(_as_dataset(obj))
    remove_stale_siblings(path)
    tmp = sibling_path(path, "tmp")
    try:
        if fmt == "netcdf":
            ds.to_netcdf(tmp, engine="h5netcdf")
            _fsync_file(tmp)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # zarr v3 "unstable spec" notes
                ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
        move_into_place(tmp, path)
    except BaseException as exc:
        remove_path(tmp)
        if isinstance(exc, (OSError, ValueError, TypeError)) and not isinstance(exc, ModelFileError):
            raise ModelFileError(
                f"could not write {str(path)!r} ({type(exc).__name__}: {exc}); the previous "
                "file, if any, is unchanged"
            ) from exc
        raise
    return path


# ----------------------------------------------------------------------------------------
# load
# ----------------------------------------------------------------------------------------
def _missing_file_error(path: Path) -> ModelFileError:
    aside = sorted(path.parent.glob(f".{glob_escape(path.name)}.*.old")) if path.parent.is_dir() else []
    hint = (
        f"; an interrupted save left the previous version at {str(aside[-1])!r}: rename it back"
        if aside
        else ""
    )
    return ModelFileError(f"no such file or directory: {str(path)!r}{hint}")


def _open(path: Path, fmt: str, chunks: Any) -> xr.Dataset:
    if fmt == "netcdf":
        if path.is_dir():
            raise ModelFileError(f"{str(path)!r} is a directory, expected a netCDF (.nc) file")
        kwargs: dict[str, Any] = {"engine": "h5netcdf"}
    else:
        if not path.is_dir():
            raise ModelFileError(f"{str(path)!r} is a file, expected a zarr (.zarr) directory store")
        kwargs = {"engine": "zarr", "consolidated": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if chunks is None:
                with xr.open_dataset(path, **kwargs) as ds:
                    return ds.load()
            return xr.open_dataset(path, chunks=chunks, **kwargs)
    except ModelFileError:
        raise
    except Exception as exc:  # h5py/zarr raise a zoo of types for damaged files
        raise ModelFileError(
            f"cannot read {str(path)!r}: {type(exc).__name__}: {exc}. The file is truncated, "
            f"damaged, or not a {'netCDF4/HDF5' if fmt == 'netcdf' else 'zarr'} store; re-create "
            "it with riskmodel.save"
        ) from exc


def _restore(ds: xr.Dataset, chunks: Any) -> xr.Dataset:
    variables: dict[Any, xr.Variable] = {}
    for name, var in ds.variables.items():
        attrs = _decode_attrs(var.attrs)
        str_labels = attrs.pop(_STR_LABELS_ATTR, None) is not None
        if str_labels and chunks is not None and "date" in var.dims:
            # a lazy (date, stock) industry stays int32 codes + attrs["labels"]: decoding it
            # would load a dates x stocks array of strings (industry_codes reads either form)
            var = var.copy(deep=False)
            var.attrs = attrs
        elif str_labels:
            labels = np.asarray([str(x) for x in attrs.pop("labels", [])] + [""])
            codes = np.asarray(var.values).astype(np.int64)
            var = xr.Variable(var.dims, labels[codes], attrs)  # -1 -> "" (last entry)
        elif _is_str_dtype(var.dtype):
            var = xr.Variable(var.dims, _str_values(np.asarray(var.values)), attrs)
        else:
            var = var.copy(deep=False)
            var.attrs = attrs
        variables[name] = var
    coord_names = set(ds.coords)
    out = xr.Dataset(
        {k: v for k, v in variables.items() if k not in coord_names},
        coords={k: v for k, v in variables.items() if k in coord_names},
        attrs=_decode_attrs(ds.attrs),
    )
    if chunks is not None:
        out.set_close(ds.close)  # the lazy arrays read from the still-open file
    return out


def _dispatch(ds: xr.Dataset, path: Path) -> Any:
    kind = ds.attrs.get("riskmodel_kind", ds.attrs.get("riskmodel_object"))
    if kind == _DATAARRAY_KIND:
        name = ds.attrs.get(_DATAARRAY_NAME_ATTR, _UNNAMED)
        if name not in ds.data_vars:
            raise ModelFileError(f"{str(path)!r} claims to hold DataArray {name!r} but has no such variable")
        da = ds[name]
        return da.rename(None) if name == _UNNAMED else da
    target = KIND_REGISTRY.get(kind) if isinstance(kind, str) else None
    if target is None:
        return ds
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return ds  # that part of the library does not exist (yet)
        raise
    cls = getattr(module, class_name, None)
    if cls is None or not hasattr(cls, "from_dataset"):
        return ds
    return cls.from_dataset(ds)


def load(path: str | os.PathLike, chunks: Any = None) -> Any:
    """Read what :func:`save` wrote.

    Parameters
    ----------
    path : str or path-like
        A ``.nc`` file or ``.zarr`` directory.
    chunks : None, dict, int or "auto"
        ``None`` (default): read everything into memory and close the file (no handle is
        left open; safe to overwrite or delete the file afterwards, also on Windows).
        Otherwise passed to :func:`xarray.open_dataset` and the data stay dask-backed
        (chunk along ``date``, e.g. ``{"date": 250}``).

    Returns
    -------
    object
        A :class:`FittedFactorModel` (or another registered kind, see
        :data:`KIND_REGISTRY`) when the file says so in ``attrs["riskmodel_kind"]``; the
        DataArray when a DataArray was saved; otherwise the Dataset with str coordinates,
        str industry labels and decoded attributes.

    Raises
    ------
    InvalidParameterError
        Unknown suffix.
    ModelFileError
        Missing, truncated, damaged or wrong-kind file (the path and the problem are named).

    Examples
    --------
    >>> import tempfile, pathlib, xarray as xr
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.zarr"
    >>> _ = save(xr.DataArray([1.0, 2.0], dims="date", name="r"), p)
    >>> load(p).name
    'r'
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise _missing_file_error(path)
    ds = _restore(_open(path, fmt, chunks), chunks)
    return _dispatch(ds, path)
