"""The one result API: what every result object a user keeps offers.

A result (a fitted model, a covariance forecast, an audit, a test) subclasses
:class:`Result` and defines three methods and a class attribute:

``kind``
    The name written to ``attrs["riskmodel_kind"]`` of its dataset; ``rm.load`` finds the
    class again through :data:`riskmodel.data.io.KIND_REGISTRY` (kind -> "module:Class").
``to_dataset()``
    Everything needed to rebuild it, as an ``xarray.Dataset`` (labelled arrays as
    variables, scalars and small lists as attributes, which ``rm.save`` stores as JSON).
``from_dataset(ds)``
    The inverse: ``type(r).from_dataset(r.to_dataset())`` equals ``r``.
``summary()``
    A few readable lines: what it is, its size, its headline numbers.

and gets ``repr`` (the summary) from the base. ``rm.save(result, path)`` writes it and
``rm.load(path)`` reads it back.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Result", "check_kind"]


class Result:
    """Base of the result objects: ``summary()``, ``repr``, ``to_dataset()`` /
    ``from_dataset()``."""

    #: ``attrs["riskmodel_kind"]`` of the dataset; the key of ``io.KIND_REGISTRY``.
    kind: ClassVar[str] = ""

    def to_dataset(self) -> Any:  # pragma: no cover - every subclass defines it
        """The object as an ``xarray.Dataset`` with ``attrs["riskmodel_kind"] = kind``."""
        raise NotImplementedError

    @classmethod
    def from_dataset(cls, ds: Any) -> "Result":  # pragma: no cover - every subclass defines it
        """Rebuild the object from :meth:`to_dataset`'s output (or a loaded file)."""
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        """A few readable lines: what it is, its size and its headline numbers."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.summary()


def check_kind(ds: Any, kind: str, what: str) -> None:
    """Raise :class:`~riskmodel.errors.ModelFileError` unless ``ds`` is a Dataset written
    for ``kind`` (``attrs["riskmodel_kind"]``)."""
    import xarray as xr

    from riskmodel.errors import ModelFileError

    if not isinstance(ds, xr.Dataset):
        raise ModelFileError(f"{what}.from_dataset: expected an xarray Dataset, got {type(ds).__name__}")
    found = ds.attrs.get("riskmodel_kind")
    if found != kind:
        raise ModelFileError(
            f"{what}.from_dataset: the dataset holds riskmodel_kind={found!r}, not {kind!r}; "
            "load it with rm.load, which picks the right class"
        )
