"""Tests of riskmodel.exposures: clean, neutralise, build_exposures, Exposures.

References are rebuilt from scratch with per-date loops (clean) and per-date
``np.linalg.lstsq`` on explicit dummy matrices (neutralise, imputation).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import riskmodel.exposures._shared as ex_shared
import riskmodel.exposures.cleaning as ex_cleaning
import riskmodel.exposures.industry as ex_industry
from riskmodel.errors import (
    AlignmentError,
    DataQualityWarning,
    DimensionError,
    ImputationWarning,
    InvalidParameterError,
    MissingVariableError,
    NonFiniteError,
    RiskModelWarning,
)
from riskmodel.exposures import Exposures, build_exposures, clean, neutralise

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _coords(T: int, N: int) -> dict:
    return {"date": pd.date_range("2020-01-01", periods=T, freq="B"), "stock": [f"S{i:03d}" for i in range(N)]}


def _da(values: np.ndarray, name: str | None = None) -> xr.DataArray:
    T, N = values.shape
    return xr.DataArray(values, dims=("date", "stock"), coords=_coords(T, N), name=name)


def _panel(T: int = 40, N: int = 120, seed: int = 0, P: int = 5) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    cap = np.exp(rng.normal(8.0, 1.5, size=(T, N)))
    ds = xr.Dataset(
        {
            "returns": (("date", "stock"), rng.normal(0.0, 0.02, size=(T, N))),
            "market_cap": (("date", "stock"), cap),
            "size": (("date", "stock"), np.log(cap) + rng.normal(0, 0.1, size=(T, N))),
            "value": (("date", "stock"), rng.standard_t(4, size=(T, N))),
            "momentum": (("date", "stock"), rng.normal(size=(T, N))),
            "industry": (("stock",), np.array([f"ind{k}" for k in range(P)])[rng.integers(0, P, N)]),
        },
        coords=_coords(T, N),
    )
    return ds


# ---------------------------------------------------------------------------------------
# clean: per-date reference
# ---------------------------------------------------------------------------------------


def _std_one(y, h, setter, present):
    """One date's standardisation, written plainly."""
    ys, hs = y[setter], h[setter]
    if ys.size == 0:
        return np.where(present, np.nan, np.nan), False
    sd = ys.std()
    if ys.max() == ys.min() or sd <= 1e-14 * np.abs(ys).max():
        return np.where(present, 0.0, np.nan), True
    mu = np.sum(hs * ys) / np.sum(hs)
    return np.where(present, (y - mu) / sd, np.nan), True


def _clean_reference(x, cap=None, winsor=3.0, data_error=10.0, max_passes=5):
    T, N = x.shape
    h = np.ones((T, N)) if cap is None else cap
    out = np.full((T, N), np.nan)
    preclip = np.full((T, N), np.nan)
    for t in range(T):  # the reference loops over dates on purpose
        y = x[t].copy()
        hv = np.isfinite(h[t]) & (h[t] > 0)
        for _ in range(max_passes):
            present = np.isfinite(y)
            z, _ = _std_one(y, h[t], present & hv, present)
            bad = present & (np.abs(np.nan_to_num(z)) > data_error)
            if not bad.any():
                break
            y[bad] = np.nan
        present = np.isfinite(y)
        setter = present & hv
        z, _ = _std_one(y, h[t], setter, present)
        for _ in range(max_passes - 1):
            if not (np.abs(np.nan_to_num(z)) > winsor).any():
                break
            z, _ = _std_one(np.clip(z, -winsor, winsor), h[t], setter, present)
        preclip[t] = z
        out[t] = np.clip(z, -winsor, winsor)
    return out, preclip


def _fat_tailed(T=30, N=200, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(T, N))
    x[rng.random((T, N)) < 0.1] = np.nan
    cap = np.exp(rng.normal(8.0, 1.5, size=(T, N)))
    cap[rng.random((T, N)) < 0.05] = np.nan
    return x, cap


@pytest.mark.parametrize("use_cap", [False, True])
def test_clean_matches_per_date_reference(use_cap):
    x, cap = _fat_tailed()
    x[4, 7] = 1e4  # a data error
    with pytest.warns(DataQualityWarning):
        z = clean(_da(x, "value"), cap=_da(cap) if use_cap else None)
    ref, _ = _clean_reference(x, cap if use_cap else None)
    np.testing.assert_allclose(z.values, ref, rtol=0, atol=1e-10)
    assert np.array_equal(np.isnan(z.values), np.isnan(ref))
    assert np.isnan(z.values[4, 7])


def test_clean_invariants_before_final_clip():
    """METHODS §1 Accept: |Σ h z| <= 1e-12 and |σ_eq(z) − 1| <= 1e-12 before the final clip."""
    x, cap = _fat_tailed(T=50, N=500, seed=3)
    out = ex_cleaning._run_clean_kernel(x, cap, np.ones(x.shape, bool), 3.0, 10.0, 5, final_clip=False)
    preclip, errors, unconverged = out.z, out.errors, out.unconverged
    setter = np.isfinite(x) & ~errors & np.isfinite(cap)
    assert np.array_equal(np.isfinite(preclip), np.isfinite(x) & ~errors)
    h = np.where(setter, cap, 0.0)
    h = h / h.sum(axis=1, keepdims=True)
    zs = np.where(setter, preclip, 0.0)
    assert np.abs((h * zs).sum(axis=1)).max() <= 1e-12
    n = setter.sum(axis=1)
    m = zs.sum(axis=1) / n
    sd = np.sqrt((np.where(setter, preclip - m[:, None], 0.0) ** 2).sum(axis=1) / n)
    assert np.abs(sd - 1.0).max() <= 1e-12
    # t(3) tails clip on every date, and the clipped output moves only slightly
    assert unconverged.all()
    assert np.nanmax(np.abs(preclip)) < 3.05


def test_clean_output_invariants_when_nothing_clips():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(20, 300))  # |z| <= √3 < 3: no clipping
    cap = np.exp(rng.normal(size=(20, 300)))
    out = clean(_da(x), cap=_da(cap))
    assert out.attrs["n_unconverged"] == 0
    z = out.values
    h = cap / cap.sum(axis=1, keepdims=True)
    assert np.abs((h * z).sum(axis=1)).max() <= 1e-12
    assert np.abs(z.std(axis=1) - 1.0).max() <= 1e-12
    assert np.abs(z.mean(axis=1)).max() > 1e-3  # cap-weighted, not equal-weighted, mean is 0


def test_clean_seeds_worked_example():
    """Seeds: the five firms' raw growth cleans to [1.28, 0.55, 0.15, -0.26, -1.72]; the
    factor return Σ g r / Σ g² with r = [1.2, 0.3, -0.1, -0.4, -1.5] % is ≈ 0.88 %."""
    raw = np.array([[0.15, 0.06, 0.01, -0.04, -0.22]])
    z = clean(_da(raw)).values[0]
    np.testing.assert_allclose(z, [1.28, 0.55, 0.15, -0.26, -1.72], atol=0.005)
    r = np.array([1.2, 0.3, -0.1, -0.4, -1.5])
    g = np.array([1.28, 0.55, 0.15, -0.26, -1.72])
    assert round(float(g @ r / (g @ g)), 2) == 0.88
    assert round(float(z @ r / (z @ z)), 2) == 0.88
    # clean g has zero mean: centring (neutralise on the constant) leaves it unchanged
    g_perp = neutralise(_da(g[None, :])).values[0]
    np.testing.assert_allclose(g_perp, g, atol=1e-12)


def test_clean_zero_spread_single_and_empty_dates():
    x = np.array(
        [
            [0.05, 0.05, 0.05, 0.05],  # every firm has the same g
            [np.nan, 2.0, np.nan, np.nan],  # one present stock
            [np.nan] * 4,  # nobody
            [0.1 * 3, 0.3, 0.1 + 0.2, np.nan],  # equal up to rounding
            [1.0, 2.0, np.nan, 3.0],
        ]
    )
    z = clean(_da(x)).values
    assert np.array_equal(z[0], np.zeros(4))
    assert np.array_equal(z[1], [np.nan, 0.0, np.nan, np.nan], equal_nan=True)
    assert np.isnan(z[2]).all()
    assert np.array_equal(z[3], [0.0, 0.0, 0.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(z[4], [-np.sqrt(1.5), 0.0, np.nan, np.sqrt(1.5)], atol=1e-14)


def test_clean_preserves_missing_and_never_fills():
    x, _ = _fat_tailed(seed=7)
    x = np.where(np.isnan(x), np.nan, np.random.default_rng(7).normal(size=x.shape))  # no data error
    z = clean(_da(x)).values
    assert np.array_equal(np.isnan(z), np.isnan(x))


def test_clean_data_error_warning_names_variable_stock_date():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 400))
    x[1, 17] = 500.0
    with pytest.warns(DataQualityWarning, match=r"clean\(sales\): 1 value.*'S017' on 2020-01-02"):
        z = clean(_da(x, "sales"))
    assert np.isnan(z.values[1, 17]) and z.attrs["n_data_errors"] == 1
    assert np.isfinite(np.delete(z.values[1], 17)).all()


def test_clean_estu_only_members_set_the_scale():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(5, 100))  # nothing clips
    estu = np.ones_like(x, dtype=bool)
    estu[:, :20] = False
    z1 = clean(_da(x), estu=_da(estu)).values
    x2 = x.copy()
    x2[:, :20] *= 1.7  # move non-members (still within the winsor bound)
    z2 = clean(_da(x2), estu=_da(estu)).values
    np.testing.assert_allclose(z1[:, 20:], z2[:, 20:], atol=1e-13)
    assert np.abs(z1[:, 20:].mean(axis=1)).max() < 1e-12


def test_clean_errors():
    x = _da(np.zeros((3, 4)))
    with pytest.raises(DimensionError, match=r"dims \('stock', 'time'\)"):
        clean(xr.DataArray(np.zeros((4, 3)), dims=("stock", "time")))
    with pytest.raises(InvalidParameterError, match="data_error"):
        clean(x, winsor=3.0, data_error=2.0)
    with pytest.raises(InvalidParameterError, match="max_passes"):
        clean(x, max_passes=0)
    bad_cap = xr.DataArray(np.ones((3, 4)), dims=("date", "stock"),
                           coords={"date": x["date"].values, "stock": ["S000", "S001", "S002", "X"]})
    with pytest.raises(AlignmentError, match=r"missing \['S003'\], extra \['X'\]"):
        clean(x, cap=bad_cap)
    inf = np.zeros((3, 4))
    inf[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match="'S001' on 2020-01-03"):
        clean(_da(inf, "size"))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)), elements=finite),
    holes=st.integers(0, 2**30),
    winsor=st.floats(1.5, 4.0),
)
def test_clean_properties(x, holes, winsor):
    rng = np.random.default_rng(holes)
    x = x.copy()
    x[rng.random(x.shape) < 0.2] = np.nan
    cap = np.exp(rng.normal(size=x.shape))
    out = ex_cleaning._run_clean_kernel(x, cap, np.ones(x.shape, bool), winsor, 10.0, 5, final_clip=False)
    pre, err = out.z, out.errors
    z = np.clip(pre, -winsor, winsor)
    present = np.isfinite(x) & ~err
    assert np.array_equal(np.isfinite(z), present)  # never fills, never loses a good value
    assert np.nanmax(np.abs(z), initial=0.0) <= winsor
    for t in range(x.shape[0]):
        p = present[t]
        if p.sum() == 0:
            continue
        zt = pre[t, p]
        if np.all(zt == 0):  # no spread (or one stock): zeros
            continue
        h = cap[t, p] / cap[t, p].sum()
        assert abs(np.sum(h * zt)) <= 1e-12
        assert abs(zt.std() - 1.0) <= 1e-12


def test_clean_no_look_ahead_and_chunking(monkeypatch):
    x, cap = _fat_tailed(T=40, N=150, seed=8)
    full = clean(_da(x), cap=_da(cap)).values
    for t in (0, 17, 39):
        part = clean(_da(x[: t + 1]), cap=_da(cap[: t + 1])).values
        assert np.array_equal(part, full[: t + 1], equal_nan=True)
    monkeypatch.setattr(ex_shared, "CHUNK_CELLS", 7 * 150 * 6)
    assert np.array_equal(clean(_da(x), cap=_da(cap)).values, full, equal_nan=True)


# ---------------------------------------------------------------------------------------
# neutralise: per-date lstsq reference on explicit dummies
# ---------------------------------------------------------------------------------------


def _neutralise_reference(g, C, codes, w):
    """g (T, N), C (T, N, K), codes (T, N) int or None, w (T, N): per-date lstsq residual."""
    T, N = g.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        ok = np.isfinite(g[t]) & np.isfinite(C[t]).all(axis=1) & np.isfinite(w[t])
        if codes is not None:
            ok &= codes[t] >= 0
            P = codes.max() + 1
            D = (codes[t][:, None] == np.arange(P)[None, :]).astype(float)
        else:
            D = np.ones((N, 1))
        X = np.concatenate([D, C[t]], axis=1)[ok]
        sw = np.sqrt(w[t][ok])
        beta = np.linalg.lstsq(X * sw[:, None], g[t][ok] * sw, rcond=None)[0]
        out[t, ok] = g[t][ok] - X @ beta
    return out


def _neutral_world(T=12, N=150, K=3, P=6, seed=0, holes=True):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, P, size=N)
    C = rng.normal(size=(T, N, K))
    g = 0.5 * C[:, :, 0] + 0.3 * codes[None, :] + rng.normal(size=(T, N))
    w = np.sqrt(np.exp(rng.normal(8, 1.5, size=(T, N))))
    if holes:
        g[rng.random((T, N)) < 0.05] = np.nan
        C[rng.random((T, N, K)) < 0.02] = np.nan
        w[rng.random((T, N)) < 0.02] = np.nan
    return g, C, codes, w


def _ctrl_list(C):
    return [_da(C[:, :, k], f"c{k}") for k in range(C.shape[2])]


def _orthogonality_ratio(g, resid, X_list, w):
    """max_t ‖XᵀV g⊥‖_∞ / (‖X‖_F ‖V g‖) on the fitted stocks of each date."""
    worst = 0.0
    for t in range(g.shape[0]):
        ok = np.isfinite(resid[t]) & (w[t] > 0)
        X = X_list[t][ok]
        lhs = np.abs(X.T @ (w[t][ok] * resid[t][ok])).max()
        rhs = np.linalg.norm(X) * np.linalg.norm(w[t][ok] * g[t][ok])
        worst = max(worst, lhs / rhs)
    return worst


def _design(C, codes, N, P):
    D = (codes[:, None] == np.arange(P)[None, :]).astype(float)
    return [np.concatenate([np.ones((N, 1)), D, C[t]], axis=1) for t in range(C.shape[0])]


def test_neutralise_matches_dense_lstsq_with_industries():
    g, C, codes, w = _neutral_world()
    ind = xr.DataArray(np.array([f"ind{c}" for c in codes]), dims="stock", coords={"stock": _coords(1, g.shape[1])["stock"]})
    with pytest.warns(RiskModelWarning, match="missing inputs are NaN"):
        out = neutralise(_da(g, "g"), _ctrl_list(C), industry=ind, weights=_da(w))
    ref = _neutralise_reference(g, C, np.broadcast_to(codes, g.shape), w)
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-10)
    assert np.array_equal(np.isnan(out.values), np.isnan(ref))
    expected_excluded = int((np.isfinite(g) & np.isnan(ref)).sum())
    assert out.attrs["n_excluded"] == expected_excluded > 0
    assert _orthogonality_ratio(g, out.values, _design(np.nan_to_num(C), codes, g.shape[1], 6), w) <= 1e-10


def test_neutralise_matches_dense_lstsq_without_industries():
    g, C, _, w = _neutral_world(seed=1, holes=False)
    out = neutralise(_da(g), {"a": _da(C[:, :, 0]), "b": _da(C[:, :, 1])}, weights=_da(w))
    ref = _neutralise_reference(g, C[:, :, :2], None, w)
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-10)
    assert out.attrs["controls"] == ["a", "b"]
    # Dataset input gives the same
    ds = xr.Dataset({"a": _da(C[:, :, 0]), "b": _da(C[:, :, 1])})
    assert np.array_equal(neutralise(_da(g), ds, weights=_da(w)).values, out.values)


def test_neutralise_centring_is_the_constant_control():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(4, 30))
    out = neutralise(_da(g)).values
    np.testing.assert_allclose(out, g - g.mean(axis=1, keepdims=True), atol=1e-14)
    # an explicit constant control changes nothing (rank-deficient, handled)
    with_const = neutralise(_da(g), [_da(np.full_like(g, 5.0), "one")])
    np.testing.assert_allclose(with_const.values, out, atol=1e-13)
    assert with_const.attrs["n_rank_deficient"] == 4


def test_neutralise_ill_conditioned_controls():
    """cond(C) ≈ 1e8: two nearly collinear controls, orthogonality still <= 1e-10."""
    rng = np.random.default_rng(3)
    T, N, P = 10, 400, 5
    codes = rng.integers(0, P, size=N)
    c1 = rng.normal(size=(T, N))
    c2 = c1 + 1e-8 * rng.normal(size=(T, N))
    c3 = rng.normal(size=(T, N))
    C = np.stack([c1, c2, c3], axis=2)
    g = rng.normal(size=(T, N)) + 2 * c1
    w = np.sqrt(np.exp(rng.normal(8, 1.0, size=(T, N))))
    conds = [np.linalg.cond(C[t] * np.sqrt(w[t])[:, None]) for t in range(T)]
    assert 1e7 < np.median(conds) < 1e9
    ind = xr.DataArray(codes, dims="stock", coords={"stock": _coords(1, N)["stock"]})
    out = neutralise(_da(g), _ctrl_list(C), industry=ind, weights=_da(w)).values
    assert _orthogonality_ratio(g, out, _design(C, codes, N, P), w) <= 1e-10
    # without industries as well
    out2 = neutralise(_da(g), _ctrl_list(C), weights=_da(w)).values
    X2 = [np.concatenate([np.ones((N, 1)), C[t]], axis=1) for t in range(T)]
    assert _orthogonality_ratio(g, out2, X2, w) <= 1e-10
    # the residual is unique: it matches lstsq up to the conditioning
    ref = _neutralise_reference(g, C, np.broadcast_to(codes, g.shape), w)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_neutralise_rank_deficient_controls():
    g, C, codes, w = _neutral_world(T=6, N=80, K=2, P=4, seed=4, holes=False)
    dummy = (np.broadcast_to(codes, g.shape) == 1).astype(float)  # equals an industry dummy
    dup = C[:, :, 0] * 3.0  # collinear with the first control
    ctrls = [_da(C[:, :, 0]), _da(C[:, :, 1]), _da(dummy), _da(dup), _da(np.ones_like(g))]
    ind = xr.DataArray(codes, dims="stock", coords={"stock": _coords(1, 80)["stock"]})
    out = neutralise(_da(g), ctrls, industry=ind, weights=_da(w))
    ref = _neutralise_reference(g, C, np.broadcast_to(codes, g.shape), w)
    np.testing.assert_allclose(out.values, ref, rtol=0, atol=1e-10)
    assert out.attrs["n_rank_deficient"] == 6


def test_neutralise_more_parameters_than_stocks_is_an_exact_fit():
    rng = np.random.default_rng(6)
    g = rng.normal(size=(2, 4))
    C = rng.normal(size=(2, 4, 5))
    out = neutralise(_da(g), _ctrl_list(C)).values
    np.testing.assert_allclose(out, 0.0, atol=1e-12)


def test_neutralise_residual_orthogonal_to_each_industry_and_zero_spread_day():
    g, C, codes, w = _neutral_world(T=5, N=100, K=2, P=4, seed=5, holes=False)
    g[2] = 0.05  # no spread on day 2
    ind = xr.DataArray(codes, dims="stock", coords={"stock": _coords(1, 100)["stock"]})
    out = neutralise(_da(g), _ctrl_list(C), industry=ind, weights=_da(w)).values
    assert np.array_equal(out[2], np.zeros(100))
    for p in range(4):
        m = codes == p
        sums = (w[:, m] * out[:, m]).sum(axis=1)
        assert np.abs(sums).max() <= 1e-12 * np.abs(w * g).sum(axis=1).max()


def test_neutralise_industry_forms_agree():
    g, C, codes, w = _neutral_world(T=4, N=60, K=1, P=3, seed=7, holes=False)
    stocks = _coords(1, 60)["stock"]
    labels = np.array(["energy", "banks", "tech"])
    as_str = xr.DataArray(labels[codes], dims="stock", coords={"stock": stocks})
    as_int = xr.DataArray(codes.astype(np.int32), dims="stock", coords={"stock": stocks},
                          attrs={"labels": list(labels)})
    as_2d = _da(np.broadcast_to(codes, g.shape).astype(np.int64))
    outs = [neutralise(_da(g), _ctrl_list(C), industry=i, weights=_da(w)).values for i in (as_str, as_int, as_2d)]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-13)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-13)


def test_neutralise_zero_weight_stock_gets_out_of_sample_residual():
    g, C, codes, w = _neutral_world(T=3, N=50, K=2, P=3, seed=8, holes=False)
    w[:, :5] = 0.0
    out = neutralise(_da(g), _ctrl_list(C), weights=_da(w)).values
    fit = _neutralise_reference(g[:, 5:], C[:, 5:], None, w[:, 5:])
    np.testing.assert_allclose(out[:, 5:], fit, atol=1e-10)
    for t in range(3):  # g − X β̂ with β̂ from the weighted fit
        X = np.concatenate([np.ones((50, 1)), C[t]], axis=1)
        sw = np.sqrt(w[t, 5:])
        beta = np.linalg.lstsq(X[5:] * sw[:, None], g[t, 5:] * sw, rcond=None)[0]
        np.testing.assert_allclose(out[t, :5], g[t, :5] - X[:5] @ beta, atol=1e-10)


def test_neutralise_missing_control_warns_and_counts():
    g, C, _, _ = _neutral_world(T=3, N=40, K=2, seed=9, holes=False)
    C[1, 6, 1] = np.nan
    with pytest.warns(RiskModelWarning, match=r"1 stock-date.*'S006' on 2020-01-02 \(missing: control 'c1'\)"):
        out = neutralise(_da(g), _ctrl_list(C))
    assert np.isnan(out.values[1, 6]) and out.attrs["n_excluded"] == 1
    assert np.isfinite(np.delete(out.values, [1 * 40 + 6])).all()


def test_neutralise_errors():
    g = _da(np.zeros((3, 4)), "g")
    bad = xr.DataArray(np.zeros((3, 4)), dims=("date", "stock"),
                       coords={"date": g["date"].values, "stock": ["S000", "S001", "S002", "ZZZ"]})
    with pytest.raises(AlignmentError, match=r"control 'c'.*missing \['S003'\], extra \['ZZZ'\]"):
        neutralise(g, [bad.rename("c")])
    w = np.ones((3, 4))
    w[1, 2] = -1.0
    with pytest.raises(InvalidParameterError, match=r"weight -1.0 for stock 'S002' on 2020-01-02"):
        neutralise(g, weights=_da(w, "w"))
    with pytest.raises(DimensionError, match="industry must have dims"):
        neutralise(g, industry=xr.DataArray(["a"] * 3, dims="date"))
    with pytest.raises(Exception, match="controls"):
        neutralise(g, controls=["size"])


def test_neutralise_no_look_ahead_and_chunking(monkeypatch):
    g, C, codes, w = _neutral_world(T=25, N=120, K=3, P=5, seed=10)
    ind = _da(np.broadcast_to(codes, g.shape).astype(np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)
        full = neutralise(_da(g), _ctrl_list(C), industry=ind, weights=_da(w)).values
        for t in (0, 11, 24):
            sl = slice(0, t + 1)
            part = neutralise(_da(g[sl]), _ctrl_list(C[sl]), industry=_da(ind.values[sl]), weights=_da(w[sl])).values
            assert np.array_equal(part, full[sl], equal_nan=True)
        monkeypatch.setattr(ex_shared, "CHUNK_CELLS", 3 * 120 * 17)
        chunked = neutralise(_da(g), _ctrl_list(C), industry=ind, weights=_da(w)).values
    assert np.array_equal(chunked, full, equal_nan=True)


# ---------------------------------------------------------------------------------------
# build_exposures and Exposures
# ---------------------------------------------------------------------------------------


def test_build_exposures_cleans_each_style_with_cap():
    ds = _panel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to impute, nothing to warn
        e = build_exposures(ds, ["size", "value"])
    assert isinstance(e, Exposures)
    assert e.styles.shape == (40, 120, 2) and e.styles.flags["C_CONTIGUOUS"]
    for k, s in enumerate(["size", "value"]):
        ref = clean(ds[s], cap=ds["market_cap"]).values
        assert np.array_equal(e.styles[:, :, k], ref, equal_nan=True)
    np.testing.assert_array_equal(e.weights, np.sqrt(ds["market_cap"].values))
    np.testing.assert_array_equal(e.cap, ds["market_cap"].values)
    assert e.industry.dtype == np.int32 and e.industry.shape == (40, 120)
    assert e.industry_labels == tuple(f"ind{k}" for k in range(5))
    labels = np.asarray(e.industry_labels)[e.industry]
    assert np.array_equal(labels[0], ds["industry"].values)
    assert not e.imputed.any()
    assert e.factor_names == ["market", *e.industry_labels, "size", "value"]


def _impute_reference(z, size, codes, w, t, targets):
    """Per-date lstsq of z on [industry dummies, size] over donors, predicted at targets."""
    ok = np.isfinite(z[t]) & np.isfinite(size[t]) & (w[t] > 0)
    P = codes.max() + 1
    D = (codes[:, None] == np.arange(P)[None, :]).astype(float)
    X = np.concatenate([D, size[t][:, None]], axis=1)
    sw = np.sqrt(w[t][ok])
    beta = np.linalg.lstsq(X[ok] * sw[:, None], z[t][ok] * sw, rcond=None)[0]
    return (X @ beta)[targets]


def test_build_exposures_imputes_from_industry_and_size():
    ds = _panel(T=10, N=150, seed=11)
    rng = np.random.default_rng(11)
    hole = rng.random((10, 150)) < 0.1
    ds["value"] = ds["value"].where(~hole)
    absent = np.zeros((10, 150), bool)
    absent[3, :4] = True  # not present that day: no return and no cap
    ds["returns"] = ds["returns"].where(~absent)
    ds["market_cap"] = ds["market_cap"].where(~absent)
    with pytest.warns(ImputationWarning, match=r"value: \d+ imputed"):
        e = build_exposures(ds, ["size", "value"])
    imp = e.imputed[:, :, 1]
    expected = hole & ~absent
    assert np.array_equal(imp, expected)
    assert not e.imputed[:, :, 0][~absent].any()
    zv = clean(ds["value"], cap=ds["market_cap"]).values
    logcap = _da(np.log(ds["market_cap"].values))
    size = clean(logcap, cap=ds["market_cap"]).values
    codes = e.industry[0]
    for t in range(10):
        ref = _impute_reference(zv, size, codes, e.weights, t, expected[t])
        np.testing.assert_allclose(e.styles[t, expected[t], 1], ref, atol=1e-10)
    assert np.isnan(e.styles[3, :4, 1][hole[3, :4]]).all()
    # impute=False leaves them NaN
    e2 = build_exposures(ds, ["size", "value"], impute=False)
    assert not e2.imputed.any() and np.isnan(e2.styles[:, :, 1][hole]).all()


def test_build_exposures_min_history():
    ds = _panel(T=8, N=60, seed=12)
    ret = ds["returns"].values.copy()
    ret[:5, 0] = np.nan  # stock 0 starts trading on day 5
    val = ds["value"].values.copy()
    val[:, 0] = np.nan
    ds["returns"] = (("date", "stock"), ret)
    ds["value"] = (("date", "stock"), val)
    with pytest.warns(ImputationWarning):
        e = build_exposures(ds, ["value"], min_history=2)
    # present from day 0 via its cap, but 2 returns only by day 6
    assert np.array_equal(e.imputed[:, 0, 0], [False] * 6 + [True] * 2)


def test_build_exposures_errors_and_no_industry():
    ds = _panel(T=5, N=30)
    with pytest.raises(MissingVariableError, match="'quality'"):
        build_exposures(ds, ["size", "quality"])
    with pytest.raises(MissingVariableError, match="'sector'"):
        build_exposures(ds, ["size"], industry="sector")
    e = build_exposures(ds, ["size"], industry=None)
    assert e.industry is None and e.industry_labels == ()
    assert e.factor_names == ["market", "size"]
    assert e.dense(0).shape == (30, 2)


def test_exposures_dense_and_frozen():
    ds = _panel(T=6, N=50, seed=13)
    ind = np.broadcast_to(ds["industry"].values, (6, 50)).copy()
    ind[2, 3] = ""  # missing industry on one date
    ds["industry"] = (("date", "stock"), ind)
    e = build_exposures(ds, ["size", "value", "momentum"])
    B = e.dense(2)
    assert B.shape == (50, e.n_factors) == (50, 1 + 5 + 3)
    assert np.array_equal(B[:, 0], np.ones(50))
    dummies = B[:, 1:6]
    assert np.isnan(dummies[3]).all()
    ok = np.arange(50) != 3
    assert np.array_equal(dummies[ok].sum(axis=1), np.ones(49))
    assert np.array_equal(dummies[ok].argmax(axis=1), e.industry[2, ok])
    assert np.array_equal(B[:, 6:], e.styles[2], equal_nan=True)
    assert np.array_equal(e.dense(e.dates[2]), B, equal_nan=True)
    with pytest.raises(InvalidParameterError, match="not among"):
        e.dense(np.datetime64("1999-01-01"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.styles = None  # type: ignore[misc]
    with pytest.raises(DimensionError, match="Exposures.weights"):
        dataclasses.replace(e, weights=e.weights[:, :10])
    assert set(e.to_dataset().data_vars) == {"styles", "weights", "cap", "imputed", "industry"}


def test_build_exposures_feeds_the_regression():
    """Integration: the factor returns of the regression are finite on every date >= lag."""
    import riskmodel.regression as regression
    ds = _panel(T=15, N=200, seed=14)
    e = build_exposures(ds, ["size", "value"])
    res = regression.factor_returns(ds["returns"].values, e, lag=1, min_industry_size=1)
    f = np.asarray(res.factor_returns)
    assert f.shape == (15, e.n_factors)
    assert np.isnan(f[0]).all() and np.isfinite(f[1:]).all()


@pytest.mark.filterwarnings("ignore::riskmodel.errors.SingularDateWarning")  # day 0 has no return
def test_build_exposures_on_simulated_panel_recovers_true_styles():
    """Known truth: rm.simulate draws returns from rm.clean(raw, cap=market_cap)."""
    from riskmodel.data.simulation import simulate
    panel = simulate(n_stocks=150, n_days=40, seed=1)
    styles = list(panel.attrs["styles"])
    e = build_exposures(panel, styles, impute=False)
    truth = panel["true_style_exposures"].transpose("date", "stock", "style").sel(style=styles).values
    ok = np.isfinite(truth)
    assert np.array_equal(np.isfinite(e.styles), ok)
    np.testing.assert_allclose(e.styles[ok], truth[ok], rtol=0, atol=1e-12)


@pytest.mark.realdata
def test_real_data_clean_and_neutralise(shared_data_dir):
    """S&P 500 panel, one year: clean invariants and daily neutrality on real caps and GICS industries."""
    from riskmodel.data.datasets import load_us_equities

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = load_us_equities(shared_data_dir, start="2008-01-01", end="2008-12-31")
    cap = panel["market_cap"]
    size = clean(np.log(cap).rename("size"), cap=cap)
    out = ex_cleaning._run_clean_kernel(np.log(cap.values), cap.values, np.ones(cap.shape, bool), 3.0, 10.0, 5,
                                        final_clip=False)
    pre = out.z
    setter = np.isfinite(pre)
    assert np.array_equal(setter, np.isfinite(size.values)) and setter.sum(axis=1).min() > 400
    h = np.where(setter, cap.values, 0.0)
    z = np.where(setter, pre, 0.0)
    n = setter.sum(axis=1)
    assert np.abs((h * z).sum(axis=1) / h.sum(axis=1)).max() <= 1e-12
    sd = np.sqrt((np.where(setter, pre - (z.sum(axis=1) / n)[:, None], 0.0) ** 2).sum(axis=1) / n)
    assert np.abs(sd - 1.0).max() <= 1e-12
    # trailing 21-day momentum (rows are dated at their last return: no look-ahead)
    mom = panel["returns"].rolling(date=21, min_periods=15).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RiskModelWarning)  # data errors, names without momentum
        cm = clean(mom, cap=cap)
        g = neutralise(cm, [size], industry=panel["industry"], weights=np.sqrt(cap))
    codes, labels = ex_industry.industry_array(panel["industry"], g)
    P = len(labels)
    worst = 0.0
    gv, sv, wv = g.values, size.values, np.sqrt(cap.values)
    mv = cm.values
    for t in range(20, g.sizes["date"]):
        ok = np.isfinite(gv[t])
        D = (codes[t][ok, None] == np.arange(P)[None, :]).astype(float)
        X = np.concatenate([D, sv[t][ok, None]], axis=1)
        lhs = np.abs(X.T @ (wv[t][ok] * gv[t][ok])).max()
        worst = max(worst, lhs / (np.linalg.norm(X) * np.linalg.norm(wv[t][ok] * mv[t][ok])))
    assert worst <= 1e-10
