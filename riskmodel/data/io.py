"""Saving and loading panels and fitted models: netCDF (h5netcdf) or zarr v3, atomically.

``save`` never writes into the target: it writes a temporary sibling in the same folder
(``.<name>.<pid>-<random>.tmp``), flushes it to disk and renames it over the target, so a
crash leaves the previous file intact and never a partial file under the target name (a
zarr directory is exchanged with the target in one step on Linux; elsewhere the old store
is first moved aside as ``.<name>.<pid>-<random>.old``). Temporaries left by a killed
writer are removed by the next ``save`` of the same target (POSIX: when their writer
process no longer exists); Ctrl-C, SIGTERM and SIGHUP remove them on the way out. The
mechanics live in :mod:`riskmodel._atomic`.

``save`` replaces only a riskmodel file of the suffix's format (:func:`check_replaceable`):
a directory, a foreign file, a zarr store holding anything else, or a read-only target is
refused with a :class:`~riskmodel.errors.ModelFileError` and left as it was.

Every array carries a checksum (HDF5 Fletcher-32 for netCDF, except variable-length
strings and scalars, which HDF5 cannot filter; crc32c for zarr) and ``load`` names the
variable whose bytes do not match. Files of earlier releases, without checksums, load as
before. A zarr store ``save`` wrote holds every chunk, so a missing chunk or variable is
an error on load, not missing values.

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

import errno
import importlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from riskmodel import _atomic
from riskmodel._labels import is_label_dtype, str_ids
from riskmodel.errors import InvalidParameterError, ModelFileError, PanelError
from riskmodel.data.targets import (  # noqa: F401 - the names io has always offered
    _DATAARRAY_NAME_ATTR,
    _JSON_KEYS_ATTR,
    _LAYOUT,
    _LAYOUT_ATTR,
    _STR_LABELS_ATTR,
    _SUFFIXES,
    _VARIABLES_ATTR,
    _format_of,
    _real_target,
    check_free_space,
    check_replaceable,
    check_target,
    storage_format,
    stored_kind,
)

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
    "construction_backtest": "riskmodel.construction.backtest:ConstructionBacktest",
}

_DATAARRAY_KIND = "dataarray"
_UNNAMED = "__riskmodel_dataarray__"
_INDUSTRY = "industry"


# ----------------------------------------------------------------------------------------
# encoding for disk
# ----------------------------------------------------------------------------------------
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


def _industry_to_codes(var: xr.Variable) -> xr.Variable:
    labels_arr = str_ids(np.asarray(var.values))
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
        if name == _INDUSTRY and name in ds.data_vars and is_label_dtype(var.dtype):
            var = _industry_to_codes(var)
        elif is_label_dtype(var.dtype):
            var = xr.Variable(var.dims, str_ids(np.asarray(var.values)).astype(object), var.attrs)
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
# atomic file handling (the names chunked.py imports; the mechanics are riskmodel._atomic)
# ----------------------------------------------------------------------------------------
sibling_path = _atomic.sibling_path
remove_path = _atomic.remove_path
remove_stale_siblings = _atomic.remove_stale_siblings


def glob_escape(name: str) -> str:
    """Escape glob metacharacters of a file name."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` onto ``path``, refusing a target that is not riskmodel's.

    The check (:func:`check_replaceable`) is repeated here, right before the rename, so a
    target that appeared or changed during a long write is not destroyed either.
    """
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is not None:
        check_replaceable(path, fmt)
    _atomic.move_into_place(tmp, path)


def _write(ds: xr.Dataset, tmp: Path, fmt: str) -> None:
    """Write ``ds`` (prepared) to ``tmp`` with the format's checksums.

    A netCDF file is built in memory by HDF5 and then written by Python: HDF5 never meets a
    failing disk. (When HDF5 itself hits a full disk, the h5py/h5netcdf objects of the
    failed file are left half-closed and their clean-up at garbage collection or exit
    crashes the interpreter with a segmentation fault.) Memory: the file's size, once.
    """
    if fmt == "netcdf":
        # HDF5 cannot filter variable-length strings or scalars: labels and scalars go unchecked
        encoding = {name: {"fletcher32": True} for name, var in ds.variables.items()
                    if var.ndim > 0 and var.dtype.kind != "O"}
        image = ds.to_netcdf(engine="h5netcdf", encoding=encoding)
        with open(tmp, "xb") as fh:
            fh.write(image)
        return
    from zarr.codecs import Crc32cCodec, ZstdCodec

    codecs = (ZstdCodec(level=0, checksum=False), Crc32cCodec())
    with warnings.catch_warnings(), _atomic.signals_deferred():  # zarr writes from its own thread
        warnings.simplefilter("ignore", UserWarning)  # zarr v3 "unstable spec" notes
        ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, write_empty_chunks=True,
                   encoding={name: {"compressors": codecs} for name in ds.variables})


def _is_disk_full(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC or "No space left on device" in str(seen) \
                or "errno = 28" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _write_failure(path: Path, exc: BaseException, size: int) -> ModelFileError:
    if _is_disk_full(exc):
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        return ModelFileError(
            f"could not write {str(path)!r}: no space left on the disk of {os.path.abspath(path.parent)!r} "
            f"(about {size / 1e6:.1f} MB needed, {free}); the previous file, if any, is unchanged"
        )
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelFileError(
        f"could not write {str(path)!r} ({type(exc).__name__}: {reason}); the previous file, "
        "if any, is unchanged"
    )


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Write a Dataset, DataArray, fitted model or covariance operator to disk, atomically.

    Parameters
    ----------
    obj : xr.Dataset, xr.DataArray, or an object with ``.to_dataset()``
        What to store (a panel, a fitted model, a :class:`StructuredCovariance`…).
    path : str or path-like
        Target; the suffix chooses the format: ``.nc`` (netCDF4 through h5netcdf) or
        ``.zarr`` (zarr v3 directory store). A symlink is followed: the file it points to
        is replaced.

    Returns
    -------
    pathlib.Path
        The target path.

    Raises
    ------
    InvalidParameterError
        Unknown suffix, or ``obj`` cannot be turned into a Dataset.
    ModelFileError
        The folder does not exist or is not writable; the target exists and is not a
        riskmodel file of the suffix's format, or is read-only (nothing is changed); or
        the write failed, e.g. on a full disk (the previous file is left untouched).

    Notes
    -----
    The data are written to a temporary sibling in the same folder
    (``.<name>.<pid>-<hex>.tmp``), flushed to disk (file and folder), given the previous
    file's permission bits, and renamed over the target (``os.replace``; a zarr store is
    exchanged in one step on Linux). The temporary is removed on any failure, on
    Ctrl-C, and on SIGTERM / SIGHUP (the process then ends as the signal asked); one left
    by a killed writer is removed by the next ``save`` of the same target. Every array
    carries a checksum (HDF5 Fletcher-32 for netCDF, crc32c for zarr) that :func:`load`
    verifies. The caller's object is not modified. Dask-backed data are computed while
    writing.

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
    target = _real_target(path)
    with _atomic.signals_as_exceptions():  # from the writability probe on: SIGTERM cleans up
        _atomic.check_folder_writable(target)
        check_replaceable(target, fmt)
        ds = prepare_for_disk(_as_dataset(obj))
        ds.attrs[_LAYOUT_ATTR] = _LAYOUT
        ds.attrs[_VARIABLES_ATTR] = json.dumps([str(name) for name in ds.variables])
        mode = _atomic.file_mode(target)
        remove_stale_siblings(target)
        tmp = sibling_path(target, "tmp")
        try:
            _write(ds, tmp, fmt)
            _atomic.fsync_tree(tmp)
            if mode is not None:
                os.chmod(tmp, mode)
            move_into_place(tmp, target)
        except BaseException as exc:
            _atomic.clean_up(lambda: _atomic.remove_settled(tmp) if fmt == "zarr" else remove_path(tmp))
            if isinstance(exc, Exception) and not isinstance(exc, PanelError):
                raise _write_failure(path, exc, int(ds.nbytes)) from exc
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
                    _check_complete(ds, path, fmt)
                    return _load_naming_damage(ds, path)
            ds = xr.open_dataset(path, chunks=chunks, **kwargs)
            try:
                _check_complete(ds, path, fmt)
            except BaseException:
                ds.close()
                raise
            return ds
    except ModelFileError:
        raise
    except Exception as exc:  # h5py/zarr raise a zoo of types for damaged files
        raise ModelFileError(
            f"cannot read {str(path)!r}: {type(exc).__name__}: {exc}. The file is truncated, "
            f"damaged, or not a {'netCDF4/HDF5' if fmt == 'netcdf' else 'zarr'} store; re-create "
            "it with riskmodel.save"
        ) from exc


def _load_naming_damage(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds.load()``; a variable whose bytes fail their checksum (or cannot be decoded) is named."""
    try:
        return ds.load()
    except Exception as exc:  # noqa: BLE001 - h5py/zarr/codecs raise many types
        failed = exc
    for name, var in ds.variables.items():
        try:
            var.load()
        except Exception as exc:  # noqa: BLE001
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"cannot read {str(path)!r}: variable {str(name)!r} is damaged (its bytes do not match "
                f"their checksum or cannot be decoded: {detail}); re-create the file with riskmodel.save"
            ) from exc
    raise failed


def _check_complete(ds: xr.Dataset, path: Path, fmt: str) -> None:
    """A file :func:`save` wrote must hold every variable it listed, and (zarr) every chunk."""
    listed = ds.attrs.get(_VARIABLES_ATTR)
    if isinstance(listed, str):
        missing = [name for name in json.loads(listed) if name not in ds.variables]
        if missing:
            raise ModelFileError(
                f"{str(path)!r} is incomplete: variable(s) {', '.join(map(repr, missing))} were saved in "
                "it but are missing (a partial copy or a damaged store); re-create it with riskmodel.save"
            )
    if fmt != "zarr" or ds.attrs.get(_LAYOUT_ATTR, 0) < _LAYOUT:
        return  # earlier files did not store chunks that hold only missing values
    import zarr

    group = zarr.open_group(str(path), mode="r", zarr_format=3)
    for name, array in group.arrays():
        stored, expected = array.nchunks_initialized, array.nchunks
        if stored < expected:
            raise ModelFileError(
                f"{str(path)!r} is incomplete: variable {name!r} has {stored} of its {expected} chunks "
                "(a partial copy or a damaged store); re-create it with riskmodel.save"
            )


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
        elif is_label_dtype(var.dtype):
            var = xr.Variable(var.dims, str_ids(np.asarray(var.values)), attrs)
        else:
            var = var.copy(deep=False)
            var.attrs = attrs
        variables[name] = var
    coord_names = set(ds.coords)
    out = xr.Dataset(
        {k: v for k, v in variables.items() if k not in coord_names},
        coords={k: v for k, v in variables.items() if k in coord_names},
        attrs={k: v for k, v in _decode_attrs(ds.attrs).items() if k not in (_LAYOUT_ATTR, _VARIABLES_ATTR)},
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
    for attempt in range(3):  # a grown store's old state may be removed under a slow reader
        ds = _restore(_open(path, fmt, chunks), chunks)
        if fmt != "zarr" or GROWN_ATTR not in ds.attrs:
            break
        try:
            ds = _grown(ds, path)
            break
        except ModelFileError:
            if attempt == 2:
                raise
    return _dispatch(ds, path)


# ----------------------------------------------------------------------------------------
# a zarr model that grows (riskmodel.data.model_store writes it): the root store, then
# the segments of dates appended by `riskmodel update`, then the state of the last one
# ----------------------------------------------------------------------------------------
#: Root attribute of a grown store: JSON ``{"segments": [...], "state": name}``.
GROWN_ATTR = "riskmodel_grown"
_STATE_PREFIX = "update_"


def _fill_value(dtype: np.dtype) -> Any:
    """A stock absent from a segment: NaN, 0 for flags (int8/bool), -1 for codes."""
    if dtype.kind == "f":
        return np.nan
    return 0 if dtype.kind == "b" or dtype == np.int8 else -1


def _grown(root: xr.Dataset, path: Path) -> xr.Dataset:
    """The root's dates followed by each segment's, on the last segment's stock axis, with
    the last state (read once from the root's pointer, so one consistent version)."""
    pointer = root.attrs.pop(GROWN_ATTR)
    pointer = json.loads(pointer) if isinstance(pointer, str) else pointer
    # the state first, read into memory at once: it is the one part an update may remove
    # (segments are immutable and kept), so the window for a race is this read alone, not
    # the assembly of every segment, which grows with the store
    state = _restore(_open(path / pointer["state"], "zarr", None), None).load()
    parts = [root] + [_restore(_open(path / name, "zarr", None), None) for name in pointer["segments"]]
    stocks = parts[-1]["stock"].to_numpy()
    parts = [p.drop_vars([n for n in p.variables if str(n).startswith(_STATE_PREFIX)]) for p in parts]
    dated = [n for n in root.data_vars if "date" in root[n].dims]
    data = {}
    for name in dated:
        blocks = []
        for part in parts:
            da = part[name]
            if "stock" in da.dims and da.sizes["stock"] != stocks.size:
                da = da.reindex(stock=stocks, fill_value=_fill_value(da.dtype)).astype(da.dtype)
            blocks.append(da.to_numpy())
        data[name] = xr.Variable(root[name].dims, np.concatenate(blocks), root[name].attrs)
    coords = {c: root[c].to_numpy() for c in root.coords
              if "date" not in root[c].dims and c != "stock" and not str(c).startswith(_STATE_PREFIX)}
    coords.update(date=np.concatenate([p["date"].to_numpy() for p in parts]), stock=stocks)
    out = xr.Dataset(data, coords=coords, attrs=root.attrs)
    for name in root.data_vars:
        if name not in dated and not str(name).startswith(_STATE_PREFIX):
            out[name] = root[name]
    return out.merge(state.drop_vars(["stock", "factor", "style"], errors="ignore"), join="override")
