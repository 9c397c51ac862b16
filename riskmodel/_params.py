"""Estimator settings shared by the model classes and the forecast stages.

The forecast stages (:mod:`riskmodel.covariance.settings`) and the fundamental,
time-series and statistical estimators (:mod:`riskmodel.models.settings`) declare their
keyword settings once, by name, as ``{name: (validator, what is expected)}`` tables built
from the validators below; :func:`check_parameters` names the first setting out of range. Settings
are stored with a fitted model as strict JSON (:func:`jsonable_settings`,
:func:`settings_from_json`), and :class:`StageProgress` is the stage bar of their ``fit``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping

import numpy as np

from riskmodel.errors import InvalidParameterError

#: ``{name: (validator, expected)}``: a setting's check and the phrase its error message uses.
ParameterTable = dict[str, tuple[Callable[[Any], bool], str]]


def is_number(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_bool(value: Any) -> bool:
    """True or False (a Python or numpy bool)."""
    return isinstance(value, (bool, np.bool_))


def positive_or_none(value: Any) -> bool:
    """A positive number, or None."""
    return value is None or (is_number(value) and value > 0)


def positive_finite(value: Any) -> bool:
    """A positive finite number."""
    return is_number(value) and 0 < value < np.inf


def positive_finite_or_none(value: Any) -> bool:
    """A positive finite number, or None."""
    return value is None or positive_finite(value)


def nonneg_number(value: Any) -> bool:
    """A finite number ≥ 0."""
    return is_number(value) and 0 <= value < np.inf


def nonneg_int(value: Any) -> bool:
    """An integer ≥ 0 (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0


def pos_int(value: Any) -> bool:
    """An integer ≥ 1 (not a bool)."""
    return nonneg_int(value) and value > 0


def nonneg_int_or_none(value: Any) -> bool:
    """An integer ≥ 0, or None."""
    return value is None or nonneg_int(value)


def pos_int_or_none(value: Any) -> bool:
    """An integer ≥ 1, or None."""
    return value is None or pos_int(value)


def half_life(value: Any) -> bool:
    """A positive number of days (``inf`` allowed: equal weights)."""
    return is_number(value) and value > 0


def check_parameters(owner: str, parameters: ParameterTable, settings: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` naming the first setting out of its declared range.

    Every name of ``parameters`` must be in ``settings``; names of ``settings`` that the
    table does not declare are not looked at.
    """
    for name, (check, expected) in parameters.items():
        if not check(settings[name]):
            raise InvalidParameterError(f"{owner}: {name}={settings[name]!r} is invalid; expected {expected}")


_NON_FINITE = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


def jsonable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings for strict JSON: a non-finite float (an infinite half-life) becomes its text."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, np.generic):  # a numpy number: its Python twin
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = str(value)
        out[key] = value
    return out


def settings_from_json(settings: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`jsonable_settings`: ``"inf"``, ``"-inf"`` and ``"nan"`` back to floats."""
    return {key: _NON_FINITE.get(value, value) if isinstance(value, str) else value
            for key, value in settings.items()}


def _stderr_shows_bars(notebook: bool) -> bool:
    """True when stderr is a terminal, or (with ``notebook``) a Jupyter kernel's stream, where
    tqdm draws a widget."""
    stream = sys.stderr
    if stream is None:
        return False
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
    return notebook and type(stream).__module__.startswith("ipykernel")


class StageProgress:
    """A stage progress bar on stderr (tqdm), silent when not wanted.

    A bar is drawn only where someone watches it: on a terminal or in a Jupyter notebook.
    Into a pipe or a file (``riskmodel fit ... 2> log``, a CI job) nothing is printed, even
    when asked for: carriage-return redraws are noise in a log.

    Parameters
    ----------
    stages : list of str
        The stages' names, in order; the bar shows the current one.
    enabled : bool or None
        None: show it when stderr is a terminal; True: also in a Jupyter notebook; False:
        never.
    """

    def __init__(self, stages: list[str], enabled: bool | None) -> None:
        self.stages = stages
        self.enabled = enabled is not False and _stderr_shows_bars(notebook=enabled is True)
        self._bar = None

    def __enter__(self) -> "StageProgress":
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(self.stages), desc=self.stages[0], unit="stage", file=sys.stderr)
        return self

    def advance(self) -> None:
        """Mark the current stage done."""
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n < len(self.stages):
                self._bar.set_description(self.stages[self._bar.n])

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
