"""Warnings of the public entry points point at the user's line (riskmodel.errors.warns_at_caller)."""

from __future__ import annotations

import inspect
import warnings

import pytest

import riskmodel as rm
from riskmodel.errors import RiskModelWarning, ThinIndustryWarning, warns_at_caller


def _deep() -> None:
    warnings.warn("from inside the library", RiskModelWarning, stacklevel=2)


@warns_at_caller
def _public(fail: bool = False) -> int:
    _deep()
    warnings.warn("second", ThinIndustryWarning, stacklevel=1)
    if fail:
        raise ValueError("boom")
    return 7


def test_warnings_point_at_the_calling_line_in_order():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call_line = inspect.currentframe().f_lineno + 1
        assert _public() == 7
    assert [str(w.message) for w in seen] == ["from inside the library", "second"]
    assert [w.category for w in seen] == [RiskModelWarning, ThinIndustryWarning]
    assert {(w.filename, w.lineno) for w in seen} == {(__file__, call_line)}


def test_user_filters_apply_to_the_reissued_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)
        warnings.simplefilter("error", ThinIndustryWarning)
        with pytest.raises(ThinIndustryWarning, match="second"):
            _public()


def test_warnings_are_issued_when_the_function_raises():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="boom"):
            _public(fail=True)
    assert [str(w.message) for w in seen] == ["from inside the library", "second"]


def test_fit_warnings_point_at_the_users_fit_call():
    panel = rm.simulate(n_stocks=200, n_days=120, seed=2)
    panel["returns"][5] = float("nan")  # a date without any return: a SingularDateWarning from the regression
    model = rm.FactorRiskModel(styles=["size", "value"], progress=False, covariance=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call_line = inspect.currentframe().f_lineno + 1
        model.fit(panel)
    singular = [w for w in seen if issubclass(w.category, rm.SingularDateWarning)]
    assert any("1 without any return" in str(w.message) for w in singular)  # the regression's warning
    assert all(w.filename == __file__ and w.lineno == call_line for w in seen), [(w.filename, w.lineno) for w in seen]
