"""The registry of numba kernels and their plain numpy twins.

One :class:`KernelTwin` per kernel entry point that the package calls, named
``"<module>.<function>"`` after the ``riskmodel.kernels`` module the package imports it
from. An entry holds the kernel itself, a runner that calls it on prepared inputs (the
outputs preallocated, as the package does) and returns its outputs by name, the numpy twin
that computes the same names from the same inputs, a maker of random inputs at the sizes
``"test"`` (seconds in the test suite), ``"quick"`` and ``"full"`` (the benchmark's), and
the tolerance of the comparison.

The registry drives ``tests/kernels/test_twins.py`` (every pair agrees at the test size; the
registry covers every kernel the package imports) and ``benchmarks/bench_kernels.py``
(every kernel timed against its twin). The twins live in the submodules, one per kernel
module; the detailed tests of ``tests/kernels/test_<module>.py`` import them from there.
A ``"full"`` size is the largest at which the twin (often a plain Python loop over dates or
stocks) still runs in seconds to a minute, not always the size of a real fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["KernelTwin", "NOT_KERNELS", "SIZES", "compare", "registry"]

#: The sizes every entry defines.
SIZES = ("test", "quick", "full")

#: Callables the package imports from ``riskmodel.kernels`` that are not kernels (no
#: arithmetic to twin), with the reason.
NOT_KERNELS = {
    "kernel_threads": "context manager: limits numba's threads, computes nothing",
    "_chunks.compiled_bodies": "lists the numba dispatchers a kernel runs (for precompiling)",
}


@dataclass(frozen=True)
class KernelTwin:
    """A numba kernel, its numpy twin and how to feed both.

    Attributes
    ----------
    name : str
        ``"<module>.<function>"``: where the package imports the kernel from.
    kernel : callable
        The kernel entry point itself (checked against the package's import).
    run : callable
        ``run(inputs) -> dict`` of named output arrays: the kernel on ``inputs``.
    twin : callable
        ``twin(inputs) -> dict`` with the same names: the plain numpy computation.
    make_inputs : callable
        ``make_inputs(rng, **sizes[size]) -> dict`` of inputs (never modified by ``run``
        or ``twin``).
    sizes : dict
        ``{"test" | "quick" | "full": keyword arguments of make_inputs}``.
    rtol, atol : float
        Tolerance of the float outputs; ``atol`` is relative to the largest finite
        magnitude of each twin output. Integer and boolean outputs must be equal.
    tolerances : dict
        ``{output: (rtol, atol)}`` for the outputs that need their own (with the reason
        next to the entry).
    """

    name: str
    kernel: Callable[..., Any]
    run: Callable[[dict], dict]
    twin: Callable[[dict], dict]
    make_inputs: Callable[..., dict]
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    rtol: float = 1e-12
    atol: float = 1e-12
    tolerances: dict[str, tuple[float, float]] = field(default_factory=dict)

    def check(self, got: dict, ref: dict) -> float:
        """:func:`compare` with this entry's tolerances; the largest scaled difference."""
        return compare(got, ref, self.rtol, self.atol, self.tolerances)

    def inputs(self, size: str, seed: int = 0) -> dict:
        """Random inputs at ``size`` (one of :data:`SIZES`)."""
        return self.make_inputs(np.random.default_rng(seed), **self.sizes[size])


def compare(got: dict, ref: dict, rtol: float, atol: float, tolerances: dict | None = None) -> float:
    """Assert the kernel's outputs ``got`` equal the twin's ``ref`` (every name of ``ref``).

    Integer and boolean outputs must be equal; float outputs must have the same NaN and
    infinity pattern and agree to ``rtol`` and ``atol`` times the output's largest finite
    magnitude (``tolerances[name] = (rtol, atol)`` where given). Returns the largest scaled
    difference over the float outputs.
    """
    worst = 0.0
    for key, b in ref.items():
        rtol_key, atol_key = (tolerances or {}).get(key, (rtol, atol))
        a = np.asarray(got[key])
        b = np.asarray(b)
        assert a.shape == b.shape, f"{key}: shape {a.shape}, twin {b.shape}"
        if b.dtype.kind in "biu":
            np.testing.assert_array_equal(a, b, err_msg=key)
            continue
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"NaN pattern of {key}")
        np.testing.assert_array_equal(np.isinf(a), np.isinf(b), err_msg=f"inf pattern of {key}")
        finite = np.isfinite(b)
        if not finite.any():
            continue
        np.testing.assert_array_equal(a[np.isinf(b)], b[np.isinf(b)], err_msg=f"infinities of {key}")
        scale = max(float(np.max(np.abs(b[finite]))), np.finfo(float).tiny)
        np.testing.assert_allclose(a[finite], b[finite], rtol=rtol_key, atol=atol_key * scale, err_msg=key)
        worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]))) / scale)
    return worst


def registry() -> dict[str, KernelTwin]:
    """Every entry, by name (the submodules are imported here, on first use)."""
    from tests.kernels.twins import audit, clean, ewma, operator, panel_checks, specific, timeseries, wls

    entries = [e for module in (audit, clean, ewma, operator, panel_checks, specific, timeseries, wls)
               for e in module.ENTRIES]
    out = {e.name: e for e in entries}
    assert len(out) == len(entries), "two entries share a name"
    return out

