"""Kernels of the exposure cleaning against plain numpy twins (per-date loops)."""

from __future__ import annotations

import numpy as np
import pytest
from numba.typed import List

from riskmodel.kernels.clean import clean_kernel, exposures_kernel

# ---------------------------------------------------------------------------------------
# numpy twins
# ---------------------------------------------------------------------------------------


def standardise_twin(y, h, setter, present):
    """(y - Σh y/Σh) / std_eq over the setters, refined once; 0 on a flat row."""
    z = np.full(y.shape, np.nan)
    if not setter.any():
        return z, False, False
    ys, hs = y[setter], h[setter]
    sd = ys.std()
    scale = np.abs(ys).max()
    if ys.max() == ys.min() or sd <= 1e-14 * scale:
        z[present] = 0.0
        return z, True, True
    mu = (hs * ys).sum() / hs.sum()
    z[present] = (y[present] - mu) / sd
    zs = z[setter]
    z[present] = (z[present] - (hs * zs).sum() / hs.sum()) / zs.std()
    return z, True, False


def clean_twin(x, h, estu, winsor=3.0, data_error=10.0, max_passes=5):
    """Per-date tiered winsorising: (clipped z, preclip z, errors, no_setter, unconverged)."""
    T, N = x.shape
    out = np.full((T, N), np.nan)
    pre = np.full((T, N), np.nan)
    errors = np.zeros((T, N), bool)
    no_setter = np.zeros(T, bool)
    unconverged = np.zeros(T, bool)
    hvalid = np.isfinite(h) & (h > 0)
    for t in range(T):
        y = x[t].copy()
        for rnd in range(max_passes + 1):
            present = np.isfinite(y)
            setter = present & hvalid[t] & estu[t]
            z, ok, flat = standardise_twin(y, h[t], setter, present)
            if rnd == max_passes or flat or not ok:
                break
            bad = present & (np.abs(np.nan_to_num(z)) > data_error)
            if not bad.any():
                break
            y[bad] = np.nan
            errors[t] |= bad
        no_setter[t] = present.any() and not ok
        for _ in range(max_passes - 1):
            if not (np.abs(np.nan_to_num(z)) > winsor).any():
                break
            z, _, _ = standardise_twin(np.clip(z, -winsor, winsor), h[t], setter, present)
        unconverged[t] = (np.abs(np.nan_to_num(z)) > winsor).any()
        pre[t] = z
        out[t] = np.clip(z, -winsor, winsor)
    return out, pre, errors, no_setter, unconverged


def impute_twin(z, size, codes, w, targets):
    """Dense weighted lstsq of z on [industry dummies, size] over the donors of one date."""
    P = max(int(codes.max()) + 1, 1)
    donors = np.isfinite(z) & np.isfinite(size) & np.isfinite(w) & (w > 0) & (codes >= 0)
    D = (codes[:, None] == np.arange(P)[None, :]).astype(float)
    X = np.concatenate([D, size[:, None]], axis=1)
    sw = np.sqrt(w[donors])
    beta = np.linalg.lstsq(X[donors] * sw[:, None], z[donors] * sw, rcond=None)[0]
    pred = np.full(z.shape, np.nan)
    has_donor = np.bincount(codes[donors], minlength=P) > 0
    ok = targets & (codes >= 0) & np.isfinite(size)
    ok[ok] &= has_donor[codes[ok]]
    pred[ok] = X[ok] @ beta
    return pred


# ---------------------------------------------------------------------------------------
# worlds
# ---------------------------------------------------------------------------------------


def _world(T=12, N=150, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(T, N))
    x[rng.random((T, N)) < 0.1] = np.nan
    x[2, 5] = 1e9  # data errors (the second one is found in the second round)
    x[2, 9] = -1e8
    x[6] = np.where(np.isfinite(x[6]), 1.5, np.nan)  # no spread
    cap = np.exp(rng.normal(8.0, 1.5, size=(T, N)))
    cap[rng.random((T, N)) < 0.05] = np.nan
    cap[8] = np.nan  # values but no setter
    return x, cap


def _run_clean(x, h, estu, final_clip):
    T, N = x.shape
    z = np.empty((T, N))
    err = np.empty((T, N), bool)
    ne = np.empty(T, np.int64)
    first = np.empty(T, np.int64)
    ns = np.empty(T, bool)
    uc = np.empty(T, bool)
    has_h, has_e = h is not None, estu is not None
    clean_kernel(x, h if has_h else np.ones((1, 1)), has_h, estu if has_e else np.ones((1, 1), bool), has_e,
                 3.0, 10.0, 5, final_clip, z, err, ne, first, ns, uc)
    return z, err, ne, first, ns, uc


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_cap", [True, False])
@pytest.mark.parametrize("use_estu", [True, False])
def test_clean_kernel_matches_twin(use_cap, use_estu):
    x, cap = _world()
    rng = np.random.default_rng(1)
    estu = rng.random(x.shape) < 0.8 if use_estu else None
    h = cap if use_cap else None
    out, pre, errors, no_setter, unconverged = clean_twin(
        x, cap if use_cap else np.ones(x.shape), estu if use_estu else np.ones(x.shape, bool)
    )
    z, err, ne, first, ns, uc = _run_clean(x, h, estu, True)
    np.testing.assert_allclose(z, out, rtol=0, atol=1e-12)
    assert np.array_equal(np.isnan(z), np.isnan(out))
    assert np.array_equal(err, errors) and err[2, 5] and err[2, 9]
    assert np.array_equal(ne, errors.sum(axis=1))
    assert np.array_equal(first, np.where(errors.any(axis=1), errors.argmax(axis=1), -1))
    assert np.array_equal(ns, no_setter) and (ns[8] == use_cap)
    assert np.array_equal(uc, unconverged)
    assert np.array_equal(z[6], np.where(np.isfinite(x[6]), 0.0, np.nan), equal_nan=True)
    zp, *_ = _run_clean(x, h, estu, False)
    np.testing.assert_allclose(zp, pre, rtol=0, atol=1e-12)
    assert np.array_equal(np.clip(zp, -3, 3), z, equal_nan=True)


def test_clean_kernel_invariants_and_fixed_point():
    """Rows that never clip: cap-weighted mean 0 and equal std 1 to 1e-12 over the setters."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(20, 400))  # bounded: never beyond 3 sigma
    cap = np.exp(rng.normal(size=x.shape))
    z, err, ne, *_ = _run_clean(x, cap, None, True)
    assert not err.any() and not ne.any()
    assert np.abs((cap * z).sum(axis=1) / cap.sum(axis=1)).max() <= 1e-12
    assert np.abs(z.std(axis=1) - 1.0).max() <= 1e-12


def test_clean_kernel_no_spread_decision_on_near_flat_rows():
    """The extremes are taken only for near-flat rows: the flat test must still match the twin.

    Row 0 holds one value (its equal mean over 5,000 names may round, so ``sd`` need not
    be 0: flat by ``hi == lo``); row 1 a spread of 5e-13 of its magnitude (above the 1e-14
    threshold: standardised to +-1); row 2 one ulp of spread (flat by ``sd <= 1e-14 max|y|``).
    """
    N = 5000
    x = np.full((3, N), 0.1 + 0.2)
    x[1, ::2] *= 1.0 + 1e-12
    x[2, ::2] = np.nextafter(x[2, 0], 1.0)
    z, *_ = _run_clean(x, None, None, True)
    for t in range(3):
        _, ok, flat = standardise_twin(x[t], np.ones(N), np.ones(N, bool), np.ones(N, bool))
        assert ok and flat == (t != 1)
    assert np.array_equal(z[0], np.zeros(N)) and np.array_equal(z[2], np.zeros(N))
    assert (z[1, ::2] > 0.99).all() and (z[1, 1::2] < -0.99).all()


def _run_exposures(xs, cap, codes, n_codes, present, impute, *, typed=True):
    T, N = present.shape
    K = len(xs)
    if typed:
        lst = List()
        for x in xs:
            lst.append(np.ascontiguousarray(x))
    else:
        lst = list(xs)  # a plain list: the kernel module builds the typed List
    Z = np.empty((T, N, K))
    imp = np.empty((T, N, K), bool)
    ne = np.empty((T, K + 1), np.int64)
    first = np.empty((T, K + 1), np.int64)
    ns = np.empty((T, K + 1), bool)
    nd = np.empty((T, K), np.int64)
    nl = np.empty((T, K), np.int64)
    exposures_kernel(lst, cap if cap is not None else np.ones((1, 1)), cap is not None,
                     codes if codes is not None else np.zeros((1, 1), np.int32), codes is not None,
                     n_codes, present, impute, 3.0, 10.0, 5, Z, imp, ne, first, ns, nd, nl)
    return Z, imp, ne, first, ns, nd, nl


@pytest.mark.parametrize("use_cap", [True, False])
def test_exposures_kernel_matches_clean_and_impute_twins(use_cap):
    T, N, P = 10, 200, 6
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((T, N)), rng.standard_t(4, size=(T, N))]
    for x in xs:
        x[rng.random((T, N)) < 0.15] = np.nan
    cap = np.exp(rng.normal(8.0, 1.0, size=(T, N)))
    cap[rng.random((T, N)) < 0.03] = np.nan
    codes = rng.integers(0, P, size=(T, N)).astype(np.int32)
    codes[rng.random((T, N)) < 0.03] = -1
    codes[4][codes[4] == 2] = 5  # industry 2 has no member (hence no donor) on date 4
    present = rng.random((T, N)) < 0.95
    Z, imp, ne, first, ns, nd, nl = _run_exposures(xs, cap if use_cap else None, codes, P, present, True)
    h = cap if use_cap else np.ones((T, N))
    everyone = np.ones((T, N), bool)
    if use_cap:
        size, *_ = clean_twin(np.log(cap), cap, everyone)
        w = np.sqrt(cap)
    else:
        size, w = np.zeros((T, N)), np.ones((T, N))
    for k, x in enumerate(xs):
        z, *_ = clean_twin(x, h, everyone)
        targets = present & ~np.isfinite(z)
        expected = z.copy()
        done = np.zeros((T, N), bool)
        for t in range(T):
            pred = impute_twin(z[t], size[t], codes[t], w[t], targets[t])
            done[t] = targets[t] & np.isfinite(pred)
            expected[t, done[t]] = pred[done[t]]
        np.testing.assert_allclose(Z[:, :, k], expected, rtol=0, atol=1e-10)
        assert np.array_equal(np.isnan(Z[:, :, k]), np.isnan(expected))
        assert np.array_equal(imp[:, :, k], done)
        assert np.array_equal(nd[:, k], done.sum(axis=1))
        assert np.array_equal(nl[:, k], (targets & ~done).sum(axis=1))
    assert (nl[:, 0] > 0).any()  # missing codes and sizes leave some NaN
    # without imputation: exactly the cleaned styles (bit for bit with clean_kernel)
    Z0, imp0, *_ = _run_exposures(xs, cap if use_cap else None, codes, P, present, False)
    assert not imp0.any()
    for k, x in enumerate(xs):
        z, *_ = _run_clean(x, cap if use_cap else None, None, True)
        assert np.array_equal(Z0[:, :, k], z, equal_nan=True)


def test_exposures_kernel_takes_a_plain_list_bit_for_bit():
    T, N, P = 6, 120, 4
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((T, N)), rng.standard_normal((T, N))]
    xs[1][rng.random((T, N)) < 0.2] = np.nan
    cap = np.exp(rng.normal(8.0, 1.0, size=(T, N)))
    codes = rng.integers(0, P, size=(T, N)).astype(np.int32)
    present = rng.random((T, N)) < 0.95
    typed = _run_exposures(xs, cap, codes, P, present, True)
    plain = _run_exposures(xs, cap, codes, P, present, True, typed=False)
    for a, b in zip(typed, plain):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_exposures_kernel_reports_data_errors_per_column():
    T, N = 4, 400
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, N))
    x[1, 30] = 1e9  # found in the first round
    x[1, 4] = -1e7  # found in the second: still the first stock reported
    cap = np.exp(rng.normal(size=(T, N)))
    present = np.ones((T, N), bool)
    Z, imp, ne, first, ns, nd, nl = _run_exposures([x], cap, None, 1, present, True)
    assert ne[:, 0].sum() == 0 and ne[1, 1] == 2 and first[1, 1] == 4 and first[0, 1] == -1
    assert imp[1, [4, 30], 0].all() and nd[1, 0] == 2  # a removed data error is imputed


def test_exposures_kernel_gives_the_same_block_from_stacked_styles_and_a_typed_list(monkeypatch):
    """A plain list of styles goes to the kernel stacked in one (K, T, N) array when small (no
    typed List to build: about a second in a fresh process), as a typed List when large; the
    block is the same bit for bit either way."""
    import riskmodel.kernels.clean as clean

    T, N, P = 6, 150, 5
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((T, N)), rng.standard_t(3, size=(T, N)), rng.lognormal(size=(T, N))]
    for x in xs:
        x[rng.random((T, N)) < 0.2] = np.nan
    cap = np.exp(rng.normal(8.0, 1.0, size=(T, N)))
    codes = rng.integers(0, P, size=(T, N)).astype(np.int32)
    present = rng.random((T, N)) < 0.9
    assert isinstance(clean.styles_argument(xs, (T, N)), np.ndarray)
    stacked = _run_exposures(xs, cap, codes, P, present, True, typed=False)
    typed = _run_exposures(xs, cap, codes, P, present, True, typed=True)
    for a, b in zip(stacked, typed):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    monkeypatch.setattr(clean, "STACK_BYTES", 8 * len(xs) * T * N - 1)
    assert isinstance(clean.styles_argument(xs, (T, N)), List)
    large = _run_exposures(xs, cap, codes, P, present, True, typed=False)
    for a, b in zip(large, typed):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
