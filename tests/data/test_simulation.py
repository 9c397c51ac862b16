"""rm.simulate: determinism, layout, exact truth identities, statistical targets, scale."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

import riskmodel as rm
from riskmodel.errors import InvalidParameterError

TEN_STYLES = ("size", "value", "momentum", "beta", "volatility", "liquidity", "growth",
              "leverage", "earnings_yield", "dividend_yield")


@pytest.fixture(scope="module")
def panel():
    return rm.simulate(n_stocks=300, n_days=400, seed=11, hidden=1)


@pytest.fixture(scope="module")
def spend_panel():
    return rm.simulate(n_stocks=400, n_days=700, seed=5, spend=True)


def _codes(ds):
    labels = list(ds.attrs["industry_labels"])
    return np.array([labels.index(s) for s in ds["industry"].values])


def _structured_returns(ds) -> np.ndarray:
    """Rebuild r_t = B_{t-1} f_t (+ spend) with a dense per-date numpy B (stock x factor)."""
    T, N = ds.sizes["date"], ds.sizes["stock"]
    names = list(ds["true_factor"].values)
    styles = ds.attrs["styles"]
    codes = _codes(ds)
    Z = ds["true_style_exposures"].values
    L = ds["true_hidden_loadings"].values
    f = ds["true_factor_returns"].values
    out = np.full((T, N), np.nan)
    for t in range(1, T):
        B = np.zeros((N, len(names)))
        B[:, 0] = 1.0
        B[np.arange(N), 1 + codes] = 1.0
        for k, s in enumerate(styles):
            B[:, names.index(s)] = Z[t - 1, :, k]
        for h, s in enumerate(ds["hidden"].values):
            B[:, names.index(s)] = L[:, h]
        out[t] = B @ f[t]
        if "true_spend_premium" in ds:
            out[t] += ds["true_spend_premium"].values[t] * np.nan_to_num(
                ds["true_spend_exposure"].values[t - 1])
    return out


# --------------------------------------------------------------------------- layout
def test_determinism():
    a = rm.simulate(120, 80, seed=4, hidden=1, spend=True)
    b = rm.simulate(120, 80, seed=4, hidden=1, spend=True)
    c = rm.simulate(120, 80, seed=5, hidden=1, spend=True)
    assert a.identical(b)
    assert not np.allclose(np.nan_to_num(a["returns"].values), np.nan_to_num(c["returns"].values))


def test_shapes_dims_dtypes(panel):
    ds = panel
    T, N = 400, 300
    assert ds.sizes["date"] == T and ds.sizes["stock"] == N
    assert ds["date"].dtype == np.dtype("datetime64[ns]")
    assert ds["stock"].values[0] == "S0000" and ds["stock"].values[-1] == "S0299"
    assert np.all(np.diff(ds["date"].values) > np.timedelta64(0))
    for v in ["returns", "market_cap", *ds.attrs["styles"], "true_specific_var"]:
        assert ds[v].dims == ("date", "stock") and ds[v].dtype == np.float64
    assert ds["industry"].dims == ("stock",) and ds["industry"].dtype.kind == "U"
    assert ds["true_style_exposures"].dims == ("date", "stock", "style")
    assert list(ds["style"].values) == ["size", "value", "momentum"]
    names = ["market", *ds.attrs["industry_labels"], "size", "value", "momentum", "hidden0"]
    assert list(ds["true_factor"].values) == names
    assert ds["true_factor_returns"].dims == ("date", "true_factor")
    assert ds["true_factor_cov"].dims == ("true_factor", "true_factor_")
    assert ds["true_hidden_loadings"].dims == ("stock", "hidden")
    for key in ["styles", "seed", "description", "listing_rate", "missing_rate", "hidden", "regimes"]:
        assert key in ds.attrs
    f32 = rm.simulate(50, 30, seed=0, n_industries=3, dtype=np.float32)
    assert f32["returns"].dtype == np.float32 and f32["true_style_exposures"].dtype == np.float32


def test_industries_at_least_five_with_returns_every_day(panel):
    codes = _codes(panel)
    sizes = np.bincount(codes, minlength=panel.attrs["n_industries"])
    assert sizes.min() >= 5 and sizes.max() > 2 * sizes.min()  # uneven
    has = np.isfinite(panel["returns"].values[1:])
    per_day = np.stack([has[:, codes == p].sum(axis=1) for p in range(sizes.size)], axis=1)
    assert per_day.min() >= 5
    listed = np.isfinite(panel["market_cap"].values)
    assert np.stack([listed[:, codes == p].sum(axis=1) for p in range(sizes.size)]).min() >= 5


# --------------------------------------------------------------------------- exact truth
def test_true_styles_standardised_exactly(panel):
    Z = panel["true_style_exposures"].values
    cap = panel["market_cap"].values
    listed = np.isfinite(cap)
    assert np.array_equal(np.isfinite(Z[:, :, 0]), listed)
    h = np.where(listed, cap, 0.0)
    h /= h.sum(axis=1, keepdims=True)
    for k in range(Z.shape[2]):
        z = Z[:, :, k]
        assert np.abs(np.nansum(h * np.nan_to_num(z), axis=1)).max() <= 1e-12
        assert np.abs(np.nanstd(z, axis=1, ddof=0) - 1.0).max() <= 1e-12
        assert np.nanmax(np.abs(z)) < 3.0
        # stability: corr(z_t, z_{t+21}) > 0.9
        a, b = z[:-21].ravel(), z[21:].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.9


def test_raw_styles_affine_in_truth_and_size_is_log_cap(panel):
    np.testing.assert_array_equal(panel["size"].values, np.log(panel["market_cap"].values))
    Z = panel["true_style_exposures"].values
    for k, s in enumerate(panel.attrs["styles"]):
        x, z = panel[s].values, Z[:, :, k]
        t = 123
        ok = np.isfinite(x[t])
        slope, icpt = np.polyfit(z[t, ok], x[t, ok], 1)
        assert slope > 0
        np.testing.assert_allclose(x[t, ok], icpt + slope * z[t, ok], atol=1e-9)


def test_clean_of_raw_reproduces_truth(panel):
    from riskmodel.exposures import clean
    for k, s in enumerate(panel.attrs["styles"]):
        z = clean(panel[s], cap=panel["market_cap"]).transpose("date", "stock").values
        np.testing.assert_allclose(z, panel["true_style_exposures"].values[:, :, k],
                                   rtol=0, atol=1e-10)


def test_industry_constraint_with_stated_weights(panel):
    """sum_p c_pt f_pt = 0, c = cap weight (caps at t-1) among stocks with a return on t."""
    codes = _codes(panel)
    P = panel.attrs["n_industries"]
    cap = panel["market_cap"].values
    has = np.isfinite(panel["returns"].values)
    w = np.where(has[1:], cap[:-1], 0.0)
    c = np.stack([w[:, codes == p].sum(axis=1) for p in range(P)], axis=1)
    c /= c.sum(axis=1, keepdims=True)
    f = panel["true_factor_returns"].values[1:, 1:1 + P]
    assert np.abs((c * f).sum(axis=1)).max() <= 1e-12 * np.abs(f).max() * P + 1e-18
    # the constraint is not trivially true under other weights (equal weights fail)
    ce = np.stack([has[1:, codes == p].sum(axis=1) for p in range(P)], axis=1)
    ce = ce / ce.sum(axis=1, keepdims=True)
    assert np.abs((ce * f).sum(axis=1)).max() > 1e-6


@pytest.mark.parametrize("spend", [False, True])
def test_noise_free_returns_equal_structured_sum(spend):
    ds = rm.simulate(150, 420 if spend else 60, seed=2, n_industries=5, specific_scale=0.0,
                     hidden=[{"name": "oil", "n_members": 30, "vol": 0.01, "loading": 0.8}],
                     spend=spend, regimes=[(30, 2.0)])
    r = ds["returns"].values
    ref = _structured_returns(ds)
    has = np.isfinite(r)
    assert has.sum() > 0.9 * r[1:].size
    np.testing.assert_allclose(r[has], ref[has], rtol=0, atol=1e-15)
    assert np.all(ds["true_specific_var"].values[np.isfinite(ds["true_specific_var"].values)] == 0)


def test_regimes_scale_factor_vols():
    ds = rm.simulate(100, 600, seed=8, n_industries=4, regimes=[(300, 2.0)], regime_specific=True)
    f = ds["true_factor_returns"].values
    ratio = f[300:].std(axis=0) / f[1:300].std(axis=0)
    assert 1.7 < np.median(ratio) < 2.3
    mult = ds["true_factor_vol_multiplier"].values
    assert np.all(mult[:300] == 1.0) and np.all(mult[300:] == 2.0)
    sv = ds["true_specific_var"].values
    ok = np.isfinite(sv[299]) & np.isfinite(sv[300])
    np.testing.assert_allclose(sv[300, ok] / sv[299, ok], 4.0, rtol=1e-12)


def test_true_factor_cov_matches_sample():
    ds = rm.simulate(100, 5000, seed=1, n_industries=4, specific_tails="gaussian")
    f = ds["true_factor_returns"].values[1:]
    s = np.cov(f, rowvar=False)
    c = ds["true_factor_cov"].values
    # sampling error of a variance at T=5,000: sqrt(2/T) = 2 %; allow 8 %
    np.testing.assert_allclose(np.diag(s), np.diag(c), rtol=0.08)
    np.testing.assert_allclose(np.linalg.eigvalsh(c).min() > 0, True)


# --------------------------------------------------------------------------- statistics
def test_hidden_block_correlation_near_target():
    """Mean within-block correlation of specific + hidden returns ~ corr (tolerance 0.02)."""
    ds = rm.simulate(300, 1000, seed=3, hidden=[{"name": "oil", "n_members": 60, "corr": 0.15}],
                     listing_rate=0.0, delisting_rate=0.0)
    resid = ds["returns"].values - _structured_returns(ds.assign(
        true_hidden_loadings=ds["true_hidden_loadings"] * 0.0))
    mem = ds["true_hidden_loadings"].values[:, 0] != 0
    assert mem.sum() == 60
    x = np.where(np.isfinite(resid), resid, np.nan)[1:]
    x = x - np.nanmean(x, axis=0)
    x = np.nan_to_num(x / np.nanstd(x, axis=0))
    c = (x.T @ x) / x.shape[0]
    inside = c[np.ix_(mem, mem)][np.triu_indices(60, 1)].mean()
    outside = c[np.ix_(~mem, ~mem)][np.triu_indices((~mem).sum(), 1)].mean()
    assert abs(inside - 0.15) < 0.02
    assert abs(outside) < 0.01


def test_specific_vol_falls_with_size(panel):
    sv = np.sqrt(panel["true_specific_var"].values[200])
    size = panel["size"].values[200]
    ok = np.isfinite(sv)
    assert np.corrcoef(np.log(sv[ok]), size[ok])[0, 1] < -0.3


def test_specific_tails_are_fat_unless_gaussian():
    def kurt(tails):
        ds = rm.simulate(200, 500, seed=6, n_industries=4, specific_tails=tails, market_vol=1e-9,
                         industry_vol=1e-9, style_vol=1e-9)
        u = ds["returns"].values / np.sqrt(ds["true_specific_var"].values)
        u = u[np.isfinite(u)]
        return np.mean(u**4) / np.mean(u**2) ** 2, np.mean(u**2)
    k_t, v_t = kurt("t")
    k_g, v_g = kurt("gaussian")
    assert k_t > 5.0 and abs(k_g - 3.0) < 0.1  # Student-t(5) kurtosis is 9
    assert abs(v_t - 1.0) < 0.05 and abs(v_g - 1.0) < 0.02


def test_listing_and_missing_fractions_near_rates():
    ds = rm.simulate(2000, 300, seed=9, n_industries=10, listing_rate=0.2, delisting_rate=0.1,
                     missing_rate=0.02)
    listed = np.isfinite(ds["market_cap"].values)
    late = ~listed[0]
    early = ~listed[-1]
    # binomial sd at N=2,000: ~0.009; anchors (50 stocks) never list late
    assert abs(late.mean() - 0.2 * (1 - 50 / 2000)) < 0.03
    assert abs(early.mean() - 0.1 * (1 - 50 / 2000)) < 0.03
    r = ds["returns"].values
    first_day = np.argmax(listed, axis=0)
    gaps = listed[1:] & listed[:-1] & ~np.isfinite(r[1:])
    assert abs(gaps.sum() / (listed[1:] & listed[:-1]).sum() - 0.02) < 0.003
    assert np.all(np.isnan(r[first_day[late], np.flatnonzero(late)]))  # no return on listing day
    for v in ["size", "value", "true_specific_var"]:
        assert np.array_equal(np.isfinite(ds[v].values), listed)


def test_spend_signal_correlates_with_size(spend_panel):
    ds = spend_panel
    g = rm.yoy_log_growth(ds["spend"]).values
    size = ds["size"].values
    assert np.isnan(g[:319]).all()  # lag 252 + min_periods 68 - 1 rows before the first signal
    assert np.isfinite(g[319]).any()
    cors = []
    for t in range(345, 700, 5):
        ok = np.isfinite(g[t]) & np.isfinite(size[t])
        cors.append(np.corrcoef(g[t, ok], size[t, ok])[0, 1])
    assert -0.5 <= np.mean(cors) <= -0.3
    assert np.nanmin(ds["spend"].values) > 0
    assert 0.15 < np.isnan(ds["spend"].values[np.isfinite(ds["market_cap"].values)]).mean() < 0.3


def test_spend_exposure_is_neutral_to_size_and_industries(spend_panel):
    ds = spend_panel
    gt = ds["true_spend_exposure"].values
    v = np.sqrt(ds["market_cap"].values)
    zs = ds["true_style_exposures"].sel(style="size").values
    codes = _codes(ds)
    rows = np.flatnonzero(np.isfinite(gt).sum(axis=1) > 20)
    assert rows.size > 300
    for t in rows[::25]:
        ok = np.isfinite(gt[t])
        C = np.column_stack([zs[t, ok], np.eye(ds.attrs["n_industries"])[codes[ok]]])
        lhs = C.T @ (v[t, ok] * gt[t, ok])
        assert np.abs(lhs).max() <= 1e-10 * np.linalg.norm(C) * np.linalg.norm(v[t, ok] * gt[t, ok])
    p = ds["true_spend_premium"].values
    assert abs(p.mean() * 252 - 0.05) < 3 * 0.03 / np.sqrt(700 / 252)


def test_errors():
    with pytest.raises(InvalidParameterError, match="n_stocks=20"):
        rm.simulate(20, 50, n_industries=10)
    with pytest.raises(InvalidParameterError, match="listing_rate"):
        rm.simulate(200, 50, listing_rate=1.5)
    with pytest.raises(InvalidParameterError, match="'returns'"):
        rm.simulate(200, 50, styles=("size", "returns"))
    with pytest.raises(InvalidParameterError, match="duplicates"):
        rm.simulate(200, 50, styles=("size", "size"))
    with pytest.raises(InvalidParameterError, match="'oil'.*both"):
        rm.simulate(200, 50, hidden={"name": "oil", "corr": 0.1, "loading": 1.0})
    with pytest.raises(InvalidParameterError, match="specific_tails"):
        rm.simulate(200, 50, specific_tails="cauchy")
    with pytest.raises(InvalidParameterError, match="regime start_index 60"):
        rm.simulate(200, 50, regimes=[(60, 2.0)])


# --------------------------------------------------------------------------- scale
def test_no_dense_industry_cube_memory():
    """2,000 x 1,000 with 60 industries: peak below 30 (T, N) float64 arrays (480 MB).

    A dense (date, stock, industry) float64 dummy cube alone would be 60 such arrays (960 MB).
    """
    T, N = 1000, 2000
    tracemalloc.start()
    ds = rm.simulate(N, T, seed=0, n_industries=60)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    one = T * N * 8
    print(f"\nsimulate 2,000 x 1,000, 60 industries: peak {peak / 1e6:.0f} MB = {peak / one:.1f} (T,N) arrays")
    assert peak < 30 * one
    assert ds.sizes["stock"] == N


@pytest.mark.slow
def test_speed_5000_by_2520_ten_styles():
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    rng.standard_normal((2520, 5000))
    unit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = rm.simulate(5000, 2520, seed=0, styles=TEN_STYLES)
    elapsed = time.perf_counter() - t0
    print(f"\nsimulate 5,000 x 2,520, 10 styles: {elapsed:.1f} s "
          f"({elapsed / unit:.0f} x one 12.6M-normal draw of {unit:.2f} s)")
    assert ds["true_style_exposures"].shape == (2520, 5000, 10)
    assert elapsed / unit < 150


def test_specific_returns_truncated_so_returns_stay_above_minus_one():
    """Heavy t tails with large vols: u is cut at +-50%, so no simple return reaches -100%."""
    ds = rm.simulate(n_stocks=200, n_days=120, seed=3, specific_scale=15.0, t_dof=2.5, n_industries=4)
    u = ds["returns"].values - _structured_returns(ds)
    ok = np.isfinite(u)
    assert np.abs(u[ok]).max() <= 0.5 + 1e-12
    assert (np.abs(u[ok]) >= 0.5 - 1e-12).sum() > 10  # the bound binds in this world
    assert np.nanmin(ds["returns"].values) > -1.0


@pytest.mark.parametrize("phi", [0.2, 0.7, 0.95, 0.998, 1.0])
def test_ar1_blocks_match_the_scalar_filter(phi):
    """The blocked cumulative-sum AR(1) equals lfilter's recursion to rounding (1e-13 relative)."""
    import scipy.signal

    from riskmodel.data.simulation import _ar1

    rng = np.random.default_rng(8)
    e = rng.standard_normal((900, 7)).astype(np.float32)
    x0 = rng.standard_normal(7)
    ref, _ = scipy.signal.lfilter([0.3], [1.0, -phi], e, axis=0, zi=(phi * x0)[None, :])
    out = _ar1(e, phi, 0.3, x0)
    assert out.dtype == np.float64 and out.shape == e.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
