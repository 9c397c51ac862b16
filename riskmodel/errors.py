"""Exceptions and warnings of riskmodel.

Every error a user can cause derives from :class:`PanelError` (a ``ValueError``) and its
message names the variable, the stock and the date at fault and says what to do.
Warnings have their own classes so that they can be filtered one by one.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "PanelError",
    "DimensionError",
    "DuplicateLabelError",
    "DateOrderError",
    "NonFiniteError",
    "VariableTypeError",
    "MissingVariableError",
    "AlignmentError",
    "InvalidParameterError",
    "InsufficientDataError",
    "ModelFileError",
    "RiskModelWarning",
    "SingularDateWarning",
    "ThinIndustryWarning",
    "ImputationWarning",
    "DataQualityWarning",
]


class PanelError(ValueError):
    """Root of every riskmodel error caused by the input (a ``ValueError``)."""


class DimensionError(PanelError):
    """A variable has missing, extra or misnamed dimensions."""


class DuplicateLabelError(PanelError):
    """A coordinate (stock ids, dates, factor names) holds duplicates."""


class DateOrderError(PanelError):
    """Dates are not strictly increasing."""


class NonFiniteError(PanelError):
    """A variable holds +inf or -inf (NaN means missing and is allowed)."""


class VariableTypeError(PanelError):
    """A variable has the wrong dtype (e.g. a non-numeric characteristic)."""


class MissingVariableError(PanelError):
    """A variable the call needs is not in the panel."""


class AlignmentError(PanelError):
    """Two labelled inputs do not share the same ids (stocks, dates or factors)."""


class InvalidParameterError(PanelError):
    """A setting is out of its declared range."""


class InsufficientDataError(PanelError):
    """Too few dates, stocks or observations for the computation asked."""


class ModelFileError(PanelError):
    """A file is unreadable, truncated, or not of the kind expected."""


class RiskModelWarning(UserWarning):
    """Root of riskmodel warnings."""


class SingularDateWarning(RiskModelWarning):
    """A date's cross-section is rank deficient or empty; its outputs are NaN."""


class ThinIndustryWarning(RiskModelWarning):
    """An industry has too few members on a date; its factor is dropped that day."""


class ImputationWarning(RiskModelWarning):
    """Missing exposures were imputed; the imputed cells are flagged."""


class DataQualityWarning(RiskModelWarning):
    """Suspicious values (data errors beyond the hard winsor bound) were set to NaN."""


@contextlib.contextmanager
def warnings_at_caller() -> Iterator[None]:
    """Issue the warnings raised inside the block at the line that called the public function.

    Use it through :func:`warns_at_caller` on a public entry point: a warning from deep
    inside the pipeline then shows the user's own line instead of a library file, and the
    user's filters (``"error"``, ``"ignore"``, ``"once"``) apply to it as usual. Warnings
    are issued in order when the block ends, also when it raises.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for record in caught:
            # frames: this generator, contextlib's __exit__, the public function, its caller
            warnings.warn(record.message, record.category, stacklevel=4)


def warns_at_caller(func: _F) -> _F:
    """Decorate a public entry point so that its warnings point at the user's call
    (see :func:`warnings_at_caller`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings_at_caller():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
