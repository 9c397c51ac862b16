"""Tests of riskmodel.research.portfolios.quantile_portfolios against a per-date reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import rankdata

from riskmodel.errors import AlignmentError, DimensionError, InvalidParameterError, NonFiniteError
from riskmodel.research.portfolios import QuantilePortfolios, quantile_portfolios


def _da(values: np.ndarray, stocks=None) -> xr.DataArray:
    T, N = values.shape
    return xr.DataArray(
        values,
        dims=("date", "stock"),
        coords={
            "date": pd.date_range("2021-01-04", periods=T, freq="B"),
            "stock": [f"S{i:03d}" for i in range(N)] if stocks is None else stocks,
        },
    )


def _reference(sig, ret, n, lag):
    """Per-date loop: scipy average ranks, floor(rank * n / M), equal-weighted legs."""
    T, N = ret.shape
    w = np.full((T, N), np.nan)
    port = np.full(T, np.nan)
    qret = np.full((T, n), np.nan)
    for t in range(lag, T):
        s = sig[t - lag]
        ok = np.isfinite(s) & np.isfinite(ret[t])
        M = ok.sum()
        if M < 2 * n:
            continue
        r = rankdata(s[ok], method="average") - 1.0
        q = np.minimum(np.floor(r * n / M), n - 1).astype(int)
        if not (q == 0).any() or not (q == n - 1).any():
            continue
        wt = np.zeros(N)
        idx = np.flatnonzero(ok)
        wt[idx[q == n - 1]] = 1.0 / (q == n - 1).sum()
        wt[idx[q == 0]] = -1.0 / (q == 0).sum()
        w[t] = wt
        port[t] = wt[ok] @ ret[t][ok]
        for k in range(n):
            if (q == k).any():
                qret[t, k] = ret[t][idx[q == k]].mean()
    return w, port, qret


def _world(T=60, N=250, seed=0, holes=True, ties=False):
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=(T, N))
    if ties:
        sig = np.round(sig * 2) / 2  # heavy ties
    ret = 0.002 * np.vstack([np.zeros((1, N)), sig[:-1]]) + rng.normal(0, 0.01, size=(T, N))
    if holes:
        sig[rng.random((T, N)) < 0.05] = np.nan
        ret[rng.random((T, N)) < 0.05] = np.nan
    return sig, ret


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n,lag", [(10, 1), (5, 2), (3, 1)])
def test_matches_per_date_reference(n, lag, ties):
    sig, ret = _world(ties=ties, seed=n + lag)
    q = quantile_portfolios(_da(sig), _da(ret), n=n, lag=lag)
    w, port, qret = _reference(sig, ret, n, lag)
    np.testing.assert_allclose(q.weights.values, w, atol=1e-15)
    np.testing.assert_allclose(q.returns.values, port, atol=1e-15)
    np.testing.assert_allclose(q.quantile_returns.values, qret, atol=1e-15)
    assert np.array_equal(np.isnan(q.returns.values), np.isnan(port))


def test_legs_sum_to_one_and_return_is_weights_times_returns():
    sig, ret = _world(seed=3)
    q = quantile_portfolios(_da(sig), _da(ret))
    w = q.weights.values[1:]
    np.testing.assert_allclose(np.where(w > 0, w, 0).sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(np.where(w < 0, w, 0).sum(axis=1), -1.0, atol=1e-14)
    np.testing.assert_allclose((q.weights * _da(ret).fillna(0)).sum("stock").values[1:], q.returns.values[1:], atol=1e-15)
    np.testing.assert_allclose(q.spread.values[1:], q.returns.values[1:], atol=1e-15)
    assert (q.weights.values[1:][~np.isfinite(ret[1:])] == 0).all()  # no return: not held
    assert np.isnan(q.returns.values[0]) and q.n_skipped == 0
    # known truth: the signal predicts next-day returns, so the long-short earns on average
    assert q.returns.mean().item() > 0.004  # ≈ 0.002 · 2 · E[z | top decile] ≈ 0.007
    assert isinstance(q, QuantilePortfolios) and "Sharpe" in repr(q)
    table = q.table()
    assert list(table.index[:2]) == ["long-short", "Q1"] and table.loc["long-short", "n_days"] == 59


def test_no_look_ahead_weights_use_the_lagged_signal():
    sig, ret = _world(seed=4, holes=False)
    q1 = quantile_portfolios(_da(sig), _da(ret))
    sig2 = sig.copy()
    sig2[30] = -sig2[30]  # changes the portfolio of day 31 only
    ret2 = ret.copy()
    ret2[31:] += 0.5  # future returns do not move earlier weights
    q2 = quantile_portfolios(_da(sig2), _da(ret2))
    same = (q1.weights.values == q2.weights.values) | (np.isnan(q1.weights.values) & np.isnan(q2.weights.values))
    diff = ~same.all(axis=1)
    assert np.flatnonzero(diff).tolist() == [31]


def test_ties_are_order_independent():
    sig, ret = _world(seed=5, ties=True)
    q = quantile_portfolios(_da(sig), _da(ret), n=5)
    perm = np.random.default_rng(5).permutation(sig.shape[1])
    stocks = np.array([f"S{i:03d}" for i in range(sig.shape[1])])
    qp = quantile_portfolios(_da(sig[:, perm], stocks[perm]), _da(ret[:, perm], stocks[perm]), n=5)
    np.testing.assert_array_equal(qp.weights.sel(stock=stocks).values, q.weights.values)
    np.testing.assert_array_equal(qp.quantile.sel(stock=stocks).values, q.quantile.values)


def test_too_few_stocks_and_no_spread_are_nan_rows_and_counted():
    sig, ret = _world(T=6, N=40, seed=6, holes=False)
    sig[2, 21:] = np.nan  # day 3: 21 stocks < 2n = 22 ... with n=11
    sig[3] = 0.7  # day 4: no spread
    q = quantile_portfolios(_da(sig), _da(ret), n=11)
    assert np.isnan(q.returns.values[[0, 3, 4]]).all()
    assert np.isfinite(q.returns.values[[1, 2, 5]]).all()
    assert np.isnan(q.weights.values[3]).all() and np.isnan(q.quantile_returns.values[4]).all()
    assert q.n_skipped == 2
    assert q.n_stocks.values[3] == 21


def test_errors():
    sig, ret = _world(T=5, N=30, seed=7)
    with pytest.raises(InvalidParameterError, match="n=1"):
        quantile_portfolios(_da(sig), _da(ret), n=1)
    with pytest.raises(InvalidParameterError, match="lag=0"):
        quantile_portfolios(_da(sig), _da(ret), lag=0)
    other = _da(ret, [f"T{i:03d}" for i in range(30)])
    with pytest.raises(AlignmentError, match=r"stock ids differ.*missing \['S000'"):
        quantile_portfolios(_da(sig), other)
    with pytest.raises(DimensionError, match="dims"):
        quantile_portfolios(xr.DataArray(sig, dims=("t", "stock")), _da(ret))
    bad = ret.copy()
    bad[2, 4] = np.inf
    with pytest.raises(NonFiniteError, match="'S004' on 2021-01-06"):
        quantile_portfolios(_da(sig), _da(bad))


def test_summary_and_save_load_round_trip(tmp_path):
    import riskmodel as rm

    sig, ret = _world(seed=5)
    q = quantile_portfolios(_da(sig), _da(ret), n=5, lag=2)
    text = q.summary()
    r = q.returns.values[np.isfinite(q.returns.values)]
    sharpe = r.mean() / r.std(ddof=1) * np.sqrt(252)
    assert text.startswith("QuantilePortfolios(n=5, lag=2, 60 dates, 58 with a portfolio, 0 skipped; "
                           f"long-short Sharpe {sharpe:.2f})")
    assert "long-short" in text and "Q5" in text and "sharpe" in text and repr(q) == text
    ds = q.to_dataset()
    assert ds.attrs["riskmodel_kind"] == "quantile_portfolios"
    assert ds["stock_quantile"].dims == ("date", "stock")  # the per-stock quantile is kept
    back = rm.load(rm.save(q, tmp_path / "q.nc"))
    assert isinstance(back, QuantilePortfolios)
    assert (back.n, back.lag, back.n_skipped) == (q.n, q.lag, q.n_skipped)
    for name in ("weights", "returns", "quantile_returns", "quantile", "n_stocks"):
        a, b = getattr(q, name), getattr(back, name)
        assert a.name == b.name and a.dims == b.dims and a.dtype == b.dtype, name
        assert np.array_equal(a.values, b.values, equal_nan=a.dtype.kind == "f"), name
        for dim in a.dims:
            assert np.array_equal(a[dim].values, b[dim].values), (name, dim)
    pd.testing.assert_frame_equal(back.table(), q.table())
    assert back.summary() == text
