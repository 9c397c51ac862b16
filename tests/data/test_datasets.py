"""Real-data loaders (``../shared/data``) and the price-history descriptors.

Descriptors are checked against per-cell numpy references on small random panels (with
missing values) and for look-ahead; the loaders against facts documented in the data
README (shape, proxy count, the known data errors kept as-is).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.data.datasets import PANEL_FILE, load_ff_factors, load_us_equities, load_wti
from riskmodel.data.descriptors import (
    add_descriptors,
    beta,
    liquidity,
    market_return,
    momentum,
    reversal,
    size,
    volatility,
)
from riskmodel.data.panel import industry_codes
from riskmodel.errors import AlignmentError, InvalidParameterError, MissingVariableError, ModelFileError

TOL = 1e-12


# ----------------------------------------------------------------------------------------
# descriptors on small random data
# ----------------------------------------------------------------------------------------
def _random_panel(seed: int = 0, n_days: int = 90, n_stocks: int = 6, holes: float = 0.1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0005, 0.02, (n_days, n_stocks))
    r[rng.random(r.shape) < holes] = np.nan
    r[:25, 0] = np.nan  # a late listing
    cap = np.exp(rng.normal(22, 1, n_stocks)) * np.cumprod(1 + np.nan_to_num(r), axis=0)
    cap[:25, 0] = np.nan
    dv = cap * rng.uniform(0.001, 0.02, r.shape)
    dv[rng.random(r.shape) < holes] = np.nan
    dv[3, 2] = 0.0
    return xr.Dataset(
        {
            "returns": (("date", "stock"), r),
            "market_cap": (("date", "stock"), cap),
            "dollar_volume": (("date", "stock"), dv),
        },
        coords={
            "date": pd.bdate_range("2020-01-01", periods=n_days).values.astype("datetime64[ns]"),
            "stock": [f"S{i}" for i in range(n_stocks)],
        },
    )


def _window_ref(x: np.ndarray, lo_lag: int, hi_lag: int, min_obs: int, stat) -> np.ndarray:
    """Per-cell reference: ``stat`` of the finite values of x[t-hi_lag .. t-lo_lag]."""
    out = np.full(x.shape, np.nan)
    for t in range(x.shape[0]):
        lo, hi = max(0, t - hi_lag), t - lo_lag
        if hi < 0:
            continue
        for n in range(x.shape[1]):
            w = x[lo : hi + 1, n]
            w = w[np.isfinite(w)]
            if w.size >= min_obs:
                out[t, n] = stat(w)
    return out


def test_size_is_log_cap():
    p = _random_panel()
    cap = p["market_cap"].values.copy()
    cap[5, 1], cap[6, 1] = 0.0, -3.0
    got = size(p["market_cap"].copy(data=cap)).values
    ref = np.where(cap > 0, np.log(np.where(cap > 0, cap, 1.0)), np.nan)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    assert np.isnan(got[5, 1]) and np.isnan(got[6, 1])


def test_momentum_matches_reference():
    p = _random_panel(seed=1)
    lr = np.log1p(p["returns"].values)
    got = momentum(p["returns"], window=20, skip=4, min_obs=10).values
    ref = _window_ref(lr, 4, 19, 10, np.sum)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
    assert np.isfinite(got).sum() > 200


def test_momentum_is_price_ratio_without_holes():
    p = _random_panel(seed=2, holes=0.0)
    r = p["returns"].values[:, 1:]
    price = np.cumprod(1 + r, axis=0)
    got = momentum(p["returns"], window=30, skip=5, min_obs=25).values[:, 1:]
    t = np.arange(30, r.shape[0])
    np.testing.assert_allclose(got[t], np.log(price[t - 5] / price[t - 30]), rtol=0, atol=1e-10)


def test_reversal_volatility_liquidity_match_reference():
    p = _random_panel(seed=3)
    r = p["returns"].values
    np.testing.assert_allclose(
        reversal(p["returns"], window=7).values, _window_ref(np.log1p(r), 0, 6, 5, np.sum), rtol=0, atol=TOL
    )
    np.testing.assert_allclose(
        volatility(p["returns"], window=15, min_obs=8).values,
        _window_ref(r, 0, 14, 8, lambda w: np.std(w, ddof=1)),
        rtol=1e-10, atol=1e-14,
    )
    turnover = p["dollar_volume"].values / p["market_cap"].values
    ref = np.log(_window_ref(turnover, 0, 9, 7, np.mean))
    got = liquidity(p["dollar_volume"], p["market_cap"], window=10).values  # min_obs ⌈20/3⌉ = 7
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def test_beta_matches_polyfit():
    p = _random_panel(seed=4, n_days=80)
    rng = np.random.default_rng(40)
    m = rng.normal(0, 0.01, 80)
    m[[10, 33]] = np.nan
    y = p["returns"].values + 1.3 * m[:, None]
    ret = p["returns"].copy(data=y)
    got = beta(ret, m, window=30, min_obs=20).values
    ref = np.full(y.shape, np.nan)
    for t in range(80):
        lo = max(0, t - 29)
        for n in range(y.shape[1]):
            xs, ys = m[lo : t + 1], y[lo : t + 1, n]
            ok = np.isfinite(xs) & np.isfinite(ys)
            if ok.sum() >= 20:
                ref[t, n] = np.polyfit(xs[ok], ys[ok], 1)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert np.nanmean(got) == pytest.approx(1.3, abs=0.3)


def test_beta_market_alignment_is_exact():
    p = _random_panel(seed=5)
    market = market_return(p["returns"], p["market_cap"])
    with pytest.raises(AlignmentError, match="missing.*2020-01-01"):
        beta(p["returns"], market.isel(date=slice(1, None)), window=30, min_obs=20)
    series = market.to_series()
    np.testing.assert_array_equal(
        beta(p["returns"], series, window=30, min_obs=20).values,
        beta(p["returns"], market, window=30, min_obs=20).values,
    )


def test_market_return_uses_previous_day_cap():
    p = _random_panel(seed=6)
    r, cap = p["returns"].values, p["market_cap"].values
    got = market_return(p["returns"], p["market_cap"]).values
    t = 40
    ok = np.isfinite(r[t]) & np.isfinite(cap[t - 1])
    assert got[t] == pytest.approx(np.sum(cap[t - 1, ok] * r[t, ok]) / np.sum(cap[t - 1, ok]), abs=TOL)
    assert np.isnan(got[0])


def test_descriptor_parameter_errors():
    p = _random_panel()
    with pytest.raises(InvalidParameterError, match="min_obs must be an integer in 1..231"):
        momentum(p["returns"], min_obs=300)
    with pytest.raises(InvalidParameterError, match="skip"):
        momentum(p["returns"], window=20, skip=20)
    with pytest.raises(AlignmentError, match="stock"):
        liquidity(p["dollar_volume"], p["market_cap"].isel(stock=slice(0, 3)))
    with pytest.raises(InvalidParameterError, match="unknown descriptor.*'value'"):
        add_descriptors(p, names=["size", "value"])
    with pytest.raises(MissingVariableError, match=r"\['liquidity'\] need.*'dollar_volume'"):
        add_descriptors(p.drop_vars("dollar_volume"), names=["size", "liquidity"])


def _short_settings_panel(p: xr.Dataset) -> xr.Dataset:
    out = add_descriptors(p, names=["size", "liquidity"])
    out["momentum"] = momentum(p["returns"], window=30, skip=5, min_obs=15)
    out["volatility"] = volatility(p["returns"], window=15, min_obs=8)
    out["beta"] = beta(p["returns"], market_return(p["returns"], p["market_cap"]), window=30, min_obs=15)
    return out


def test_add_descriptors_sets_styles_and_validates():
    p = _random_panel(seed=7, n_days=300)
    p.attrs["styles"] = ["value"]
    p["value"] = (("date", "stock"), np.zeros((300, 6)))
    out = add_descriptors(p)
    assert out.attrs["styles"] == ["value", "size", "momentum", "reversal", "volatility", "liquidity", "beta"]
    rm.validate_panel(out)
    np.testing.assert_array_equal(out["beta"].values, beta(p["returns"], market_return(p["returns"], p["market_cap"])).values)
    assert np.isfinite(out["momentum"].values[-1, 1:]).all()


@pytest.mark.parametrize("cut", [30, 55, 89])
def test_no_look_ahead(cut):
    """Truncating the panel after day `cut` leaves every descriptor dated <= cut identical."""
    p = _random_panel(seed=8)
    full = _short_settings_panel(p)
    full = add_descriptors(full, names=["reversal", "size", "liquidity"])
    part = _short_settings_panel(p.isel(date=slice(0, cut + 1)))
    part = add_descriptors(part, names=["reversal", "size", "liquidity"])
    for name in ["size", "momentum", "reversal", "volatility", "liquidity", "beta"]:
        np.testing.assert_array_equal(part[name].values, full[name].values[: cut + 1], err_msg=name)
        assert np.isfinite(part[name].values[-1]).any(), name  # the test compares real numbers


def test_descriptors_change_when_the_present_changes():
    """Sanity of the look-ahead test: a shock on day t moves day-t values but not earlier ones."""
    p = _random_panel(seed=9, holes=0.0)
    shocked = p.copy(deep=True)
    shocked["returns"].values[60, 2] += 0.3
    a, b = reversal(p["returns"]).values, reversal(shocked["returns"]).values
    np.testing.assert_array_equal(a[:60], b[:60])
    assert b[60, 2] > a[60, 2] + 0.2


# ----------------------------------------------------------------------------------------
# real data
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def us(shared_data_dir) -> xr.Dataset:
    return load_us_equities(shared_data_dir)


@pytest.fixture(scope="module")
def us_desc(us) -> xr.Dataset:
    return add_descriptors(us)


@pytest.mark.realdata
def test_us_panel_shape_and_labels(us):
    assert us.sizes["date"] == 2518 and us.sizes["stock"] == 491
    assert us["stock"].dtype.kind == "U"
    assert us["date"].dtype == np.dtype("datetime64[ns]")
    assert str(us["date"].values[0])[:10] == "2007-01-03" and str(us["date"].values[-1])[:10] == "2016-12-30"
    assert len(np.unique(us["sector"].values)) == 11
    assert len(np.unique(us["industry"].values)) == 68
    # the README says 127 sub-industries; the file itself (and tickers.csv) holds 126
    assert len(np.unique(us["sub_industry"].values)) == 126
    codes, labels = industry_codes(us)
    assert codes.shape == (2518, 491) and (codes >= 0).all() and len(labels) == 68
    assert us["sector"].sel(stock="XOM").item() == "Energy"


@pytest.mark.realdata
def test_us_known_data_errors_are_kept(us):
    r = us["returns"]
    assert r.sel(stock="GNRC", date="2010-02-12").item() == pytest.approx(-0.6829, abs=1e-4)
    assert r.sel(stock="TRMB", date="2007-02-23").item() == pytest.approx(1.0, abs=1e-6)
    assert r.sel(stock="MSI", date="2011-01-04").item() == pytest.approx(-0.3764, abs=1e-4)
    assert np.nanmin(r.values) == pytest.approx(-0.6829, abs=1e-4)
    assert np.nanmax(r.values) == pytest.approx(1.0236, abs=1e-4)  # HIG 2008-12-05


@pytest.mark.realdata
def test_us_returns_exclude_first_return_after_gap(us):
    r = us["returns"].values
    price = np.isfinite(us["dollar_volume"].values)
    # a return exists exactly when the stock has a price today and yesterday
    expected = np.zeros(r.shape, bool)
    expected[1:] = price[1:] & price[:-1]
    np.testing.assert_array_equal(np.isfinite(r), expected)
    # the README's 8 internal one-day gaps (WELL x4, SPGI x2, VIAC x2): rows - first days - gaps
    listed = np.maximum.accumulate(price, axis=0)
    gaps = listed[:-1] & ~price[:-1] & price[1:]
    assert int(gaps.sum()) == 8
    assert sorted(set(us["stock"].values[np.nonzero(gaps)[1]])) == ["SPGI", "VIAC", "WELL"]
    assert int(np.isfinite(r).sum()) == 1_152_014 - 491 - 8


@pytest.mark.realdata
def test_us_market_cap_and_proxy(us):
    proxy = us["market_cap_is_proxy"].values
    assert int(proxy.sum()) == 61 == us.attrs["n_market_cap_proxy"]
    flagged = set(us["stock"].values[proxy])
    assert {"TSLA", "NOW", "RTX", "ENPH"} <= flagged and "AAPL" not in flagged
    cap = us["market_cap"].values
    dv = us["dollar_volume"].values
    # estimated caps: mcap_est x 1e6 (AAPL 2007-01-03 = 62,460 USD millions)
    assert us["market_cap"].sel(stock="AAPL", date="2007-01-03").item() == pytest.approx(62_460e6)
    # a proxy exists exactly on traded days with >= 20 dollar volumes in the last 60 days
    # (and a positive median), and sits in the range of the estimated caps
    traded = np.isfinite(dv[:, proxy])
    enough = pd.DataFrame(dv[:, proxy]).rolling(60, min_periods=0).count().to_numpy() >= 20
    median = pd.DataFrame(dv[:, proxy]).rolling(60, min_periods=20).median().to_numpy()
    np.testing.assert_array_equal(np.isfinite(cap[:, proxy]), traded & enough & (median > 0))
    assert (traded & enough).sum() > 90_000
    with np.errstate(divide="ignore", invalid="ignore"):  # 32 rows have volume 0
        ratio_proxy = np.nanmedian(cap[:, proxy] / dv[:, proxy])
        ratio_est = np.nanmedian(cap[:, ~proxy] / dv[:, ~proxy])
    assert 0.3 < ratio_proxy / ratio_est < 3.0
    assert (cap[np.isfinite(cap)] >= 0).all()


@pytest.mark.realdata
def test_us_validates_and_descriptors_finite(us, us_desc):
    with warnings.catch_warnings():
        warnings.simplefilter("error", rm.SingularDateWarning)  # day one has no return: expected, silent
        rm.validate_panel(us_desc)
    assert us_desc.attrs["styles"] == ["size", "momentum", "reversal", "volatility", "liquidity", "beta"]
    full = np.isfinite(us["dollar_volume"].values).all(axis=0)
    assert full.sum() == 422  # README: 422 tickers trade on every day
    # returns from row 1: momentum needs 200 returns in rows t-251..t-21 -> finite from t = 221
    mom = us_desc["momentum"].values[:, full]
    assert np.isnan(mom[220]).all() and np.isfinite(mom[221:]).all()
    b = us_desc["beta"].values[:, full]
    assert np.isnan(b[125]).all() and np.isfinite(b[126:]).all()
    assert 0.9 < np.nanmedian(b[-1]) < 1.2
    for name in ["size", "reversal", "volatility"]:
        assert np.isfinite(us_desc[name].values[63:, full]).all(), name
    liq = us_desc["liquidity"].values[21:, full]
    assert np.isfinite(liq).mean() > 0.999
    for name in us_desc.attrs["styles"]:
        assert not np.isinf(us_desc[name].values).any(), name


@pytest.mark.realdata
def test_us_subset_and_window(shared_data_dir, us):
    sub = load_us_equities(shared_data_dir, start="2015-06-01", end="2015-12-31", tickers=["AAPL", "KHC", "XOM", "FB"])
    # KHC lists in July 2015 so it stays; all four traded in the window
    assert list(sub["stock"].values) == ["AAPL", "FB", "KHC", "XOM"]
    ref = us["returns"].sel(date=slice("2015-06-01", "2015-12-31"), stock=list(sub["stock"].values))
    np.testing.assert_array_equal(sub["returns"].values, ref.values)  # first day keeps its return
    assert np.isfinite(sub["returns"].values[0, 0])


@pytest.mark.realdata
@pytest.mark.slow
def test_us_unlisted_dropped_and_unknown_ticker(shared_data_dir):
    early = load_us_equities(shared_data_dir, end="2008-12-31", tickers=["AAPL", "PYPL"])
    assert list(early["stock"].values) == ["AAPL"]  # PYPL not listed yet: dropped
    with pytest.raises(AlignmentError, match="NOPE"):
        load_us_equities(shared_data_dir, tickers=["AAPL", "NOPE"])


@pytest.mark.realdata
def test_ff_and_wti(shared_data_dir, us, us_desc):
    ff = load_ff_factors(shared_data_dir)
    assert list(ff.columns) == ["mkt_rf", "smb", "hml", "rmw", "cma", "rf", "mom"]
    assert len(ff) == 2518 and ff.index.name == "date"
    np.testing.assert_array_equal(ff.index.to_numpy(), us["date"].values)
    assert ff["mkt_rf"].abs().max() < 0.2  # decimal, not percent
    mkt = market_return(us["returns"], us["market_cap"]).to_series()
    assert np.corrcoef(mkt.iloc[1:], (ff["mkt_rf"] + ff["rf"]).iloc[1:])[0, 1] > 0.95
    wti = load_wti(shared_data_dir)
    assert wti.name == "wti" and len(wti) == 2608 and wti.isna().any()
    assert 10 < wti.min() and wti.max() < 160


def test_missing_file_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelFileError, match=rf"{tmp_path}.*{PANEL_FILE}.*RISKMODEL_DATA"):
        load_us_equities(tmp_path)
    monkeypatch.setenv("RISKMODEL_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(ModelFileError, match=r"elsewhere.*ff_factors.*RISKMODEL_DATA"):
        load_ff_factors()
    with pytest.raises(ModelFileError, match="wti"):
        load_wti()


def test_env_var_points_to_data(shared_data_dir, monkeypatch):
    monkeypatch.setenv("RISKMODEL_DATA", str(shared_data_dir))
    assert len(load_wti()) == 2608
