"""Registry entries of :mod:`riskmodel.kernels.clean`. Its twins (``clean_twin``,
``impute_twin``) live in ``tests/kernels/test_clean.py`` and are imported from there."""

from __future__ import annotations

import numpy as np
from numba.typed import List

from riskmodel.kernels.clean import clean_kernel, exposures_kernel
from tests.kernels.test_clean import clean_twin, impute_twin
from tests.kernels.twins import KernelTwin

_SETTINGS = dict(winsor=3.0, data_error=10.0, max_passes=5)


def exposures_twin(xs, cap, codes, present):
    """Each style cleaned by ``clean_twin`` (cap-weighted), then its missing present cells
    imputed per date by ``impute_twin`` on industry dummies and the cleaned log cap (with
    weights ``sqrt(cap)``). Returns ``(styles, imputed, n_imputed, n_left)``."""
    T, N = present.shape
    everyone = np.ones((T, N), bool)
    size, *_ = clean_twin(np.log(cap), cap, everyone)
    w = np.sqrt(cap)
    styles = np.empty((T, N, len(xs)))
    imputed = np.zeros((T, N, len(xs)), bool)
    n_left = np.empty((T, len(xs)), np.int64)
    for k, x in enumerate(xs):
        z, *_ = clean_twin(x, cap, everyone)
        targets = present & ~np.isfinite(z)
        for t in range(T):
            pred = impute_twin(z[t], size[t], codes[t], w[t], targets[t])
            imputed[t, :, k] = targets[t] & np.isfinite(pred)
            z[t, imputed[t, :, k]] = pred[imputed[t, :, k]]
        styles[:, :, k] = z
        n_left[:, k] = (targets & ~imputed[:, :, k]).sum(axis=1)
    return styles, imputed, imputed.sum(axis=1), n_left


def _characteristic(rng, T, N):
    """A heavy-tailed characteristic with holes, two data errors and a date without spread."""
    x = rng.standard_t(3, size=(T, N))
    x[rng.random((T, N)) < 0.1] = np.nan
    x[2, 5] = 1e9  # data errors (the second one is found in the second round)
    x[2, 9] = -1e8
    x[3] = np.where(np.isfinite(x[3]), 1.5, np.nan)  # no spread
    return x


def _caps(rng, T, N):
    return np.exp(rng.normal(8.0, 1.5, size=(T, N)))


def _clean_inputs(rng, T, N):
    cap = _caps(rng, T, N)
    cap[rng.random((T, N)) < 0.05] = np.nan
    return dict(x=_characteristic(rng, T, N), cap=cap, estu=rng.random((T, N)) < 0.8)


def _clean_run(inp):
    x = inp["x"]
    T, N = x.shape
    out = dict(z=np.empty((T, N)), errors=np.empty((T, N), bool), n_errors=np.empty(T, np.int64),
               first=np.empty(T, np.int64), no_setter=np.empty(T, bool), unconverged=np.empty(T, bool))
    clean_kernel(x, inp["cap"], True, inp["estu"], True, _SETTINGS["winsor"], _SETTINGS["data_error"],
                 _SETTINGS["max_passes"], True, *out.values())
    return out


def _clean_twin(inp):
    z, _, errors, no_setter, unconverged = clean_twin(inp["x"], inp["cap"], inp["estu"], **_SETTINGS)
    first = np.where(errors.any(axis=1), errors.argmax(axis=1), -1)
    return dict(z=z, errors=errors, n_errors=errors.sum(axis=1), first=first, no_setter=no_setter,
                unconverged=unconverged)


def _exposures_inputs(rng, T, N, K, P):
    xs = [_characteristic(rng, T, N) for _ in range(K)]
    codes = rng.integers(0, P, size=(T, N)).astype(np.int32)
    codes[rng.random((T, N)) < 0.03] = -1
    return dict(xs=xs, cap=_caps(rng, T, N), codes=codes, P=P, present=rng.random((T, N)) < 0.95)


def _exposures_run(inp):
    present = inp["present"]
    (T, N), K = present.shape, len(inp["xs"])
    xs = List()
    for x in inp["xs"]:
        xs.append(np.ascontiguousarray(x))
    out = dict(styles=np.empty((T, N, K)), imputed=np.empty((T, N, K), bool))
    rest = dict(n_errors=np.empty((T, K + 1), np.int64), first=np.empty((T, K + 1), np.int64),
                no_setter=np.empty((T, K + 1), bool), n_imputed=np.empty((T, K), np.int64),
                n_left=np.empty((T, K), np.int64))
    exposures_kernel(xs, inp["cap"], True, inp["codes"], True, inp["P"], present, True, _SETTINGS["winsor"],
                     _SETTINGS["data_error"], _SETTINGS["max_passes"], *out.values(), *rest.values())
    return out | {"n_imputed": rest["n_imputed"], "n_left": rest["n_left"]}


def _exposures_twin(inp):
    styles, imputed, n_imputed, n_left = exposures_twin(inp["xs"], inp["cap"], inp["codes"], inp["present"])
    return dict(styles=styles, imputed=imputed, n_imputed=n_imputed, n_left=n_left)


ENTRIES = [
    KernelTwin(
        "clean.clean_kernel", clean_kernel, _clean_run, _clean_twin, _clean_inputs,
        sizes={"test": dict(T=12, N=150), "quick": dict(T=60, N=1000), "full": dict(T=504, N=5000)},
        rtol=0.0, atol=1e-12,
    ),
    KernelTwin(
        "clean.exposures_kernel", exposures_kernel, _exposures_run, _exposures_twin, _exposures_inputs,
        sizes={"test": dict(T=10, N=200, K=2, P=6), "quick": dict(T=20, N=1000, K=3, P=20),
               "full": dict(T=126, N=5000, K=10, P=60)},
        rtol=0.0, atol=1e-10,
    ),
]
