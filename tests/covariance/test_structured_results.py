"""StructuredCovariance and RiskDecomposition as results (summary, repr, rm.save / rm.load),
and the scipy view aligning labelled inputs by stock like ``matvec`` (issue 17)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel._results import Result
from riskmodel.covariance.structured import RiskDecomposition, StructuredCovariance

N, M = 60, 6


@pytest.fixture(scope="module", params=["styles", "industries"])
def world(request):
    """An operator on dense styles (GEMM path) or on market + industries (grouped kernel),
    and its dense Σ."""
    rng = np.random.default_rng(3)
    B = rng.normal(size=(N, M))
    B[:, 0] = 1.0
    if request.param == "industries":  # market + 4 one-hot industries + 1 style
        code = rng.integers(0, 4, size=N)
        B[:, 1:5] = np.arange(4) == code[:, None]
    A = rng.normal(size=(M, M))
    F = (A @ A.T / M + 0.5 * np.eye(M)) * 1e-4
    d = rng.uniform(1e-4, 1e-2, size=N)
    stocks = [f"S{i:03d}" for i in range(N)]
    factors = ["market"] + [f"f{k}" for k in range(1, M)]
    cov = StructuredCovariance.from_arrays(B, F, d, stocks=stocks, factors=factors, date="2021-03-04")
    return cov, B @ F @ B.T + np.diag(d), rng


# --- the scipy view aligns labelled inputs ----------------------------------------------


def test_linear_operator_aligns_a_reversed_dataarray_like_matvec(world):
    cov, dense, rng = world
    op = cov.as_linear_operator()
    x = xr.DataArray(rng.normal(size=N), dims="stock", coords={"stock": cov.stocks})
    rev = x.isel(stock=slice(None, None, -1))
    want = cov.matvec(x)
    np.testing.assert_allclose(want.values, dense @ x.values, rtol=1e-12)
    for got in (op @ rev, op(rev), op.dot(rev), op.matvec(rev), op.rmatvec(rev), op.H @ rev, op.T @ rev):
        assert isinstance(got, xr.DataArray) and list(got["stock"].values) == list(cov.stocks)
        np.testing.assert_array_equal(got.values, cov.matvec(rev).values)
        np.testing.assert_allclose(got.values, want.values, rtol=1e-13)
    # the reversed input read by position (what scipy alone did) is a different vector
    assert not np.allclose((op @ rev.values), want.values)


def test_linear_operator_aligns_pandas_and_matrices(world):
    cov, dense, rng = world
    op = cov.as_linear_operator()
    X = rng.normal(size=(N, 3))
    da = xr.DataArray(X, dims=("stock", "k"), coords={"stock": cov.stocks, "k": ["a", "b", "c"]})
    rev = da.isel(stock=slice(None, None, -1))
    for got in (op @ rev, op.matmat(rev), op.rmatmat(rev)):
        assert got.dims == ("stock", "k")
        np.testing.assert_allclose(got.values, dense @ X, rtol=1e-12)
    series = pd.Series(X[:, 0], index=cov.stocks).iloc[::-1]
    got = op @ series
    assert isinstance(got, pd.Series) and list(got.index) == list(cov.stocks)
    np.testing.assert_allclose(got.to_numpy(), dense @ X[:, 0], rtol=1e-12)
    # stocks the input does not mention count as zero, as in matvec
    part = series.iloc[:10]
    np.testing.assert_array_equal((op @ part).to_numpy(), cov.matvec(part).to_numpy())
    # ndarrays keep scipy's positional behaviour
    np.testing.assert_allclose(op @ X, dense @ X, rtol=1e-12)


def test_linear_operator_refuses_an_unknown_stock_naming_it(world):
    cov, *_ = world
    op = cov.as_linear_operator()
    x = xr.DataArray([1.0, 2.0], dims="stock", coords={"stock": [cov.stocks[0], "NOPE"]})
    with pytest.raises(rm.AlignmentError, match="NOPE"):
        op @ x
    with pytest.raises(rm.AlignmentError, match="NOPE"):
        op.matvec(x.to_series())
    with pytest.raises(rm.DimensionError, match="stock"):
        op @ xr.DataArray(np.ones(N), dims="asset")


# --- StructuredCovariance as a result ---------------------------------------------------


def test_covariance_summary_and_repr(world):
    cov, dense, _ = world
    assert isinstance(cov, Result) and cov.kind == "StructuredCovariance"
    text = cov.summary()
    assert repr(cov) == text
    first = text.splitlines()[0]
    assert "2021-03-04" in first and f"{N} stocks" in first and f"{M} factors" in first
    book = np.full(N, 1.0 / N)
    vol = np.sqrt(book @ dense @ book)
    factor_share = (vol**2 - (book * book) @ cov.specific_var.values) / vol**2
    assert f"equal-weight book vol  {vol:.4g}" in text
    assert f"factor share of variance {factor_share:.1%}" in text
    stock_vol = np.sqrt(np.diag(dense))
    assert f"median {np.median(stock_vol):.4g}, mean {stock_vol.mean():.4g}" in text
    top = np.argmax(np.diag(cov.factor_cov.values))
    assert f"largest factor vols    {cov.factors[top]} " in text
    no_date = StructuredCovariance.from_arrays(np.ones((2, 1)), np.eye(1), np.ones(2))
    assert no_date.summary().startswith("StructuredCovariance: 2 stocks, 1 factors")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_covariance_save_load_round_trip(world, tmp_path, suffix):
    cov, *_ = world
    path = rm.save(cov, tmp_path / f"cov{suffix}")
    back = rm.load(path)
    assert isinstance(back, StructuredCovariance)
    assert cov.to_dataset().attrs["riskmodel_kind"] == "StructuredCovariance"
    np.testing.assert_array_equal(back.to_dense(), cov.to_dense())
    assert list(back.stocks) == list(cov.stocks) and back.date == cov.date


# --- RiskDecomposition as a result ------------------------------------------------------


def _decompositions(cov, rng):
    one = pd.Series(rng.normal(size=N) / N, index=cov.stocks).iloc[::-1]
    names = ["value", "growth", "zero", "momentum"]
    batch = xr.DataArray(rng.normal(size=(4, N)) / N, dims=("book", "stock"), coords={"book": names, "stock": cov.stocks})
    batch[2] = 0.0  # σ = 0: NaN factor share, zero contributions
    return {
        "one": cov.decompose(one),
        "labelled batch": cov.decompose(batch),
        "ndarray batch, lazy per-stock": cov.decompose(rng.normal(size=(3, N)) / N, per_stock=False),
    }


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_risk_decomposition_round_trips_through_save_and_load(world, tmp_path, suffix):
    cov, _, rng = world
    for label, dec in _decompositions(cov, rng).items():
        assert isinstance(dec, Result) and dec.kind == "risk_decomposition"
        ds = dec.to_dataset()
        assert ds.attrs["riskmodel_kind"] == "risk_decomposition"
        path = rm.save(dec, tmp_path / f"{label.replace(' ', '_')}{suffix}")
        back = rm.load(path)
        assert isinstance(back, RiskDecomposition), label
        again = back.to_dataset()
        assert set(again.data_vars) == set(ds.data_vars), label
        for name in ds.data_vars:  # every number bit for bit, with its labels
            assert again[name].dims == ds[name].dims, (label, name)
            np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=f"{label}: {name}")
            for dim in again[name].dims:
                assert list(again[dim].values) == list(ds[dim].values), (label, name, dim)
        assert again["date"].values == ds["date"].values == cov.date
        assert back.batched == dec.batched and back.n_portfolios == dec.n_portfolios
        assert back.summary() == dec.summary() and repr(back) == repr(dec)
        portfolio = None if not dec.batched else dec.total_vol[dec.total_vol.dims[0]].values[0]
        pd.testing.assert_frame_equal(back.top_factors(3, portfolio), dec.top_factors(3, portfolio))
        pd.testing.assert_frame_equal(back.top_stocks(4, portfolio), dec.top_stocks(4, portfolio))
        if not dec.batched:
            assert back.total_vol == dec.total_vol and isinstance(back.total_vol, float)


def test_risk_decomposition_from_dataset_checks_its_input(world):
    cov, _, rng = world
    ds = cov.decompose(rng.normal(size=N)).to_dataset()
    with pytest.raises(rm.ModelFileError, match="risk_decomposition"):
        RiskDecomposition.from_dataset(cov.to_dataset())
    with pytest.raises(rm.MissingVariableError, match="weights"):
        RiskDecomposition.from_dataset(ds.drop_vars("weights"))
    summary = RiskDecomposition.from_dataset(ds).summary()
    assert summary.startswith("RiskDecomposition on 2021-03-04: 1 portfolio(s)")
