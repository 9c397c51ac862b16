"""The helper process that compiles the later stages' kernels ahead of need."""

from __future__ import annotations

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.cli import precompile as pc


@pytest.fixture(scope="module")
def kernels_after_a_fit() -> dict[str, dict[object, set]]:
    """Every stage kernel's compiled signatures after a real fit and a decomposition."""
    panel = rm.simulate(n_stocks=150, n_days=260, seed=3)
    fit = rm.FactorRiskModel(styles=["size", "value"], eigen_sims=20, progress=False).fit(panel)
    cov = fit.covariance()
    cov.decompose(np.full((2, cov.n_stocks), 1.0 / cov.n_stocks))
    return {stage: {k: set(k.signatures) for k in kernels()} for stage, (_, kernels) in pc.STAGES.items()}


@pytest.mark.parametrize("stage", sorted(pc.STAGES))
def test_helper_runs_compile_the_signatures_a_fit_uses(kernels_after_a_fit, stage):
    # a helper run with other dtypes or layouts would compile a signature the fit never
    # asks for (and leave the fit's to compile); it must add none
    for kernel, signatures in kernels_after_a_fit[stage].items():
        assert signatures, f"the fit did not use {kernel.py_func.__name__}"
    pc.STAGES[stage][0]()
    for kernel, signatures in kernels_after_a_fit[stage].items():
        assert set(kernel.signatures) == signatures, kernel.py_func.__name__


def test_compiled_kernels_are_cached_and_no_helper_starts(kernels_after_a_fit):
    for _, kernels in pc.STAGES.values():
        assert all(pc.is_cached(k) for k in kernels())
    with pc.compiling_ahead(*pc.STAGES) as helper:
        assert helper is None


def test_a_helper_runs_and_is_stopped_with_the_body(monkeypatch):
    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    with pc.compiling_ahead("operator") as helper:
        assert helper is not None and helper.args[-1] == "operator"
        assert helper.wait(timeout=120) == 0  # the stage ran to its end in the helper
    with pc.compiling_ahead("specific", "operator") as helper:
        pass
    assert helper.poll() is not None  # stopped (or done) when the body ended


def test_helper_can_be_switched_off_and_stages_are_checked(monkeypatch):
    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    monkeypatch.setenv("RISKMODEL_PRECOMPILE", "0")
    with pc.compiling_ahead("specific") as helper:
        assert helper is None
    with pytest.raises(ValueError, match="unknown stage"):
        with pc.compiling_ahead("exposures"):
            pass


def test_is_cached_is_false_for_a_function_numba_does_not_cache():
    assert not pc.is_cached(len)


def test_no_helper_when_a_process_cannot_start(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(pc, "is_cached", lambda kernel: False)
    monkeypatch.setattr(pc.subprocess, "Popen", refuse)
    with pc.compiling_ahead("specific") as helper:  # the command goes on without a helper
        assert helper is None
