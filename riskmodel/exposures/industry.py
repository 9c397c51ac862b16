"""Industry membership of a characteristic's cells as integer codes (the input side of
industry dummies in :func:`~riskmodel.exposures.neutralise` and
:func:`~riskmodel.exposures.build_exposures`)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from riskmodel._labels import check_aligned, codes_from_values
from riskmodel.data.panel import industry_codes
from riskmodel.errors import DimensionError, VariableTypeError


def industry_array(industry: xr.DataArray, like: xr.DataArray, name: str = "industry") -> tuple[np.ndarray, tuple[str, ...]]:
    """Industry of ``like``'s cells as (T, N) int32 codes (-1 missing) and the labels.

    Accepts a DataArray (stock) or (date, stock) of str labels or integer codes. Labels
    and integer codes carrying a ``labels`` attribute go through
    :func:`riskmodel.data.panel.industry_codes` (sorted labels, as everywhere in the library);
    bare integer codes (no ``labels``) and whole-number floats (NaN = missing) are mapped to
    their sorted distinct values, labelled by ``str(code)``
    (:func:`riskmodel._labels.codes_from_values`).
    """
    if not isinstance(industry, xr.DataArray):
        raise VariableTypeError(
            f"{name}: expected a DataArray (stock) or (date, stock), got {type(industry).__name__}."
        )
    T = like.sizes["date"]
    if set(industry.dims) == {"stock"}:
        check_aligned(like, industry, "the characteristic", name, ("stock",))
    elif set(industry.dims) == {"date", "stock"}:
        industry = industry.transpose("date", "stock")
        check_aligned(like, industry, "the characteristic", name, ("date", "stock"))
    else:
        raise DimensionError(
            f"{name}: dims {tuple(industry.dims)}; an industry must have dims (stock) or (date, stock)."
        )
    kind = industry.dtype.kind
    if kind in "USOT" or (kind in "iu" and industry.attrs.get("labels") is not None):
        codes, labels = industry_codes(industry.rename(name), name)
    else:
        codes, labels = codes_from_values(np.asarray(industry.values), industry.attrs.get("labels"), name)
    codes = np.asarray(codes, dtype=np.int32)
    if codes.ndim == 1 or codes.shape[0] != T:
        codes = np.broadcast_to(codes.reshape(-1, codes.shape[-1])[-1], (T, codes.shape[-1]))
    return np.ascontiguousarray(codes, dtype=np.int32), tuple(labels)


def drop_unused_labels(codes: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels without the labels no cell holds (a factor without members).

    A pooled classification (:func:`riskmodel.pool_thin_industries`) lists one
    ``"<parent> (other)"`` label per parent, members or not, and an integer-coded
    variable's ``attrs["labels"]`` may list industries absent from this panel: such a label
    would be a factor with no member on any date, an empty column in every regression and
    in the forecasts. The kept labels keep their order; the codes are renumbered. When every
    label has a member the inputs are returned as they are.
    """
    n_labels = len(labels)
    if n_labels == 0:
        return codes, labels
    flat = np.asarray(codes).reshape(-1)
    used = np.bincount(flat[flat >= 0], minlength=n_labels)[:n_labels] > 0
    if used.all():
        return codes, labels
    new_code = np.full(n_labels + 1, -1, dtype=np.int32)  # the last slot maps -1 to -1
    new_code[:n_labels][used] = np.arange(int(used.sum()), dtype=np.int32)
    renumbered = new_code[np.where(codes >= 0, codes, n_labels)]
    return np.ascontiguousarray(renumbered, dtype=np.int32), tuple(label for label, keep in zip(labels, used) if keep)
