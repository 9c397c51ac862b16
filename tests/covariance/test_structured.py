"""StructuredCovariance against a dense ``B F Bᵀ + D`` built from scratch (METHODS §9 Accept)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse.linalg as spla
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskmodel as rm
from riskmodel.covariance.structured import RiskDecomposition, StructuredCovariance, StructuredLinearOperator

N, M = 200, 10


def _world(seed: int = 0, n: int = N, m: int = M, d_range=(1e-4, 1e-2), industries: int = 0):
    """Exposures, a PD factor covariance, specific variances and the dense Σ built from them.

    ``industries > 0``: a Barra-style B — market column of ones, ``industries`` one-hot
    columns (some stocks in none), styles in the rest — which the operator runs through its
    grouped kernel; else every column dense (market-like first column, then styles).
    """
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, m))
    B[:, 0] = 1.0 + 0.1 * rng.normal(size=n)  # a market-like factor
    if industries:
        B[:, 0] = 1.0
        code = rng.integers(0, industries + 1, size=n)  # code == industries: no industry
        B[:, 1 : industries + 1] = np.arange(industries) == code[:, None]
    A = rng.normal(size=(m, m))
    F = (A @ A.T / m + 0.5 * np.eye(m)) * 1e-4
    d = rng.uniform(*d_range, size=n)
    dense = B @ F @ B.T + np.diag(d)
    stocks = [f"S{i:04d}" for i in range(n)]
    factors = ["market"] + [f"style{k}" for k in range(1, m)]
    cov = StructuredCovariance.from_arrays(B, F, d, stocks=stocks, factors=factors, date="2020-01-02")
    return cov, B, F, d, dense, rng


@pytest.fixture(scope="module", params=["styles", "industries"])
def world(request):
    """Both paths of the operator: dense B (GEMMs) and market + 7 industries + 2 styles (grouped kernel)."""
    built = _world(industries=7 if request.param == "industries" else 0)
    assert (built[0]._groups is not None) == (request.param == "industries")
    return built


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


# --- METHODS §9 Accept ------------------------------------------------------------------


def test_public_name_and_basic_properties(world):
    cov, B, F, d, dense, _ = world
    assert rm.StructuredCovariance is StructuredCovariance
    assert cov.shape == (N, N) and cov.n_stocks == N and cov.n_factors == M
    assert cov.stocks[0] == "S0000" and cov.factors[0] == "market"
    assert cov.date == np.datetime64("2020-01-02", "ns")
    assert cov.exposures.dims == ("stock", "factor")
    assert cov.factor_cov.dims == ("factor", "factor_")
    assert cov.specific_var.dims == ("stock",)
    np.testing.assert_array_equal(cov.exposures.values, B)
    np.testing.assert_allclose(cov.factor_cov.values, F, rtol=0, atol=0)
    np.testing.assert_array_equal(cov.specific_var.values, d)
    np.testing.assert_allclose(cov.to_dense(), dense, rtol=1e-12, atol=1e-16)
    with pytest.raises(ValueError, match="read-only"):
        cov.exposures.values[0, 0] = 1.0
    assert B.flags.writeable and d.flags.writeable  # the caller's arrays are left alone


def test_matvec_and_matmul_vs_dense(world):
    cov, *_, dense, rng = world
    x = rng.normal(size=N)
    X = rng.normal(size=(N, 4))
    assert _rel(cov.matvec(x), dense @ x) <= 1e-12
    assert _rel(cov @ X, dense @ X) <= 1e-12
    W = rng.normal(size=(3, N))
    assert _rel(W @ cov, W @ dense) <= 1e-12  # rows in, rows out (Σ symmetric)


def test_variance_volatility_batched_vs_dense(world):
    cov, *_, dense, rng = world
    w = rng.normal(size=N) / N
    W = rng.normal(size=(7, N)) / N
    assert isinstance(cov.variance(w), float)
    np.testing.assert_allclose(cov.variance(w), w @ dense @ w, rtol=1e-12)
    np.testing.assert_allclose(cov.volatility(W), np.sqrt(np.einsum("pn,nk,pk->p", W, dense, W)), rtol=1e-12)
    np.testing.assert_allclose(cov.factor_exposures(W).values, W @ cov.exposures.values, rtol=1e-12)


def test_woodbury_solve_and_logdet_vs_dense(world):
    cov, *_, dense, rng = world
    x = rng.normal(size=N)
    X = rng.normal(size=(N, 5))
    assert _rel(cov.solve(x), np.linalg.solve(dense, x)) <= 1e-10
    assert _rel(cov.solve(X), np.linalg.solve(dense, X)) <= 1e-10
    sign, ref = np.linalg.slogdet(dense)
    assert sign == 1.0
    assert abs(cov.logdet() - ref) <= 1e-10 * abs(ref)


def test_euler_contributions_sum_to_sigma(world):
    cov, *_, dense, rng = world
    W = rng.normal(size=(6, N)) / N
    dec = cov.decompose(W)
    sigma = np.sqrt(np.einsum("pn,nk,pk->p", W, dense, W))
    np.testing.assert_allclose(dec.total_vol.values, sigma, rtol=1e-12)
    factor_sum = dec.factor_contributions.sum("factor").values + dec.specific_contribution.values
    np.testing.assert_allclose(factor_sum, sigma, rtol=1e-12)
    np.testing.assert_allclose(dec.component_contributions.sum("stock").values, sigma, rtol=1e-12)
    np.testing.assert_allclose(dec.factor_vol.values**2 + dec.specific_vol.values**2, sigma**2, rtol=1e-12)
    np.testing.assert_allclose(dec.marginal_contributions.values, (W @ dense) / sigma[:, None], rtol=1e-12, atol=1e-15)
    fx = W @ cov.exposures.values
    np.testing.assert_allclose(dec.factor_exposures.values, fx, rtol=1e-12)
    F = cov.factor_cov.values
    np.testing.assert_allclose(dec.factor_share.values, np.einsum("pk,kl,pl->p", fx, F, fx) / sigma**2, rtol=1e-12)


def test_mcr_is_central_difference_of_volatility(world):
    cov, *_, rng = world
    w = rng.normal(size=N) / N
    h = 1e-6
    E = np.eye(N) * h
    numeric = (cov.volatility(w + E) - cov.volatility(w - E)) / (2 * h)  # one batched call, 2N books
    mcr = cov.decompose(w).marginal_contributions.values
    np.testing.assert_allclose(mcr, numeric, rtol=1e-6, atol=1e-6 * np.abs(mcr).max())


def test_beta_and_active_risk_vs_dense(world):
    cov, *_, dense, rng = world
    b = np.abs(rng.normal(size=N))
    b /= b.sum()
    W = b + rng.normal(size=(4, N)) * 1e-3
    np.testing.assert_allclose(cov.beta(W, b), W @ dense @ b / (b @ dense @ b), rtol=1e-12)
    assert abs(cov.beta(b, b) - 1.0) <= 1e-12
    act = W - b
    np.testing.assert_allclose(cov.active_risk(W, b), np.sqrt(np.einsum("pn,nk,pk->p", act, dense, act)), rtol=1e-12)
    with pytest.raises(rm.DimensionError, match="one portfolio"):
        cov.beta(W, W)
    with pytest.raises(rm.InvalidParameterError, match="zero variance"):
        cov.beta(W, np.zeros(N))


def test_linear_operator_vs_dense(world):
    cov, *_, dense, rng = world
    op = cov.as_linear_operator()
    assert isinstance(op, spla.LinearOperator) and isinstance(op, StructuredLinearOperator)
    assert op.shape == (N, N) and op.dtype == np.float64
    x, X = rng.normal(size=N), rng.normal(size=(N, 3))
    assert _rel(op.matvec(x), dense @ x) <= 1e-12
    assert _rel(op.matvec(x[:, None]).ravel(), dense @ x) <= 1e-12
    assert _rel(op.matmat(X), dense @ X) <= 1e-12
    assert _rel(op.rmatvec(x), dense @ x) <= 1e-12
    assert _rel(op.H @ X, dense @ X) <= 1e-12
    assert _rel(op.T.matvec(x), dense @ x) <= 1e-12
    # a scipy solver on the view converges to the Woodbury solve
    sol, info = spla.cg(op, x, rtol=1e-12, maxiter=5000)
    assert info == 0
    assert _rel(sol, cov.solve(x)) <= 1e-6


def test_sample_covariance_matches_sigma(world):
    cov, *_, dense, _ = world
    n = 20_000
    r = cov.sample(n, seed=7)
    assert r.dims == ("sample", "stock") and r.shape == (n, N)
    assert list(r["stock"].values[:2]) == ["S0000", "S0001"]
    x = r.values
    s = x.T @ x / n  # mean is known to be zero
    # sd of a Gaussian sample covariance entry: sqrt((Σii Σjj + Σij²) / n)
    se = np.sqrt((np.outer(np.diag(dense), np.diag(dense)) + dense**2) / n)
    z = (s - dense) / se
    assert np.abs(z).max() < 6.0  # 20,100 distinct entries: |z| max of Gaussians ≈ 4.4
    assert abs(z[np.triu_indices(N)].mean()) < 0.1  # no systematic scale error (correlated entries)
    same = cov.sample(10, seed=7).values
    np.testing.assert_array_equal(same, cov.sample(10, seed=7).values)


def test_to_dense_refuses_large_n_without_allocating():
    n = 5_001
    cov = StructuredCovariance.from_arrays(np.ones((n, 1)), np.eye(1), np.ones(n))
    with pytest.raises(rm.InvalidParameterError, match=r"5,001 × 5,001.*0\.20 GB.*force=True"):
        cov.to_dense()
    small = StructuredCovariance.from_arrays(np.ones((3, 1)), np.eye(1), np.ones(3))
    np.testing.assert_allclose(small.to_dense(force=True), np.ones((3, 3)) + np.eye(3))


# --- weights in, labels out -------------------------------------------------------------


def test_unknown_stock_is_an_alignment_error_naming_it(world):
    cov, *_ = world
    w = pd.Series([0.5, 0.5], index=["S0001", "GHOST"])
    with pytest.raises(rm.AlignmentError, match="'GHOST'"):
        cov.volatility(w)
    many = pd.Series(1.0, index=[f"X{i}" for i in range(12)])
    with pytest.raises(rm.AlignmentError, match=r"'X0', 'X1', 'X2', 'X3', 'X4' and 7 more \(12 in all\)"):
        cov.variance(many)
    da = xr.DataArray([1.0, 2.0], dims="stock", coords={"stock": ["S0002", "NOPE"]})
    with pytest.raises(rm.AlignmentError, match="'NOPE'"):
        cov.decompose(da)
    with pytest.raises(rm.AlignmentError, match="'NOPE'"):
        cov.subset(["S0001", "NOPE"])


def test_nan_weight_names_the_stock(world):
    cov, *_ = world
    w = pd.Series([0.5, np.nan], index=["S0001", "S0007"])
    with pytest.raises(rm.PanelError, match="'S0007'"):
        cov.volatility(w)
    arr = np.zeros(N)
    arr[3] = np.nan
    with pytest.raises(rm.NonFiniteError, match="'S0003'"):
        cov.variance(arr)
    W = np.zeros((3, N))
    W[2, 5] = np.inf
    with pytest.raises(rm.NonFiniteError, match=r"'S0005'.*portfolio\(s\) '2'"):
        cov.decompose(W)


def test_wrong_length_gives_expected_length(world):
    cov, *_ = world
    with pytest.raises(rm.DimensionError, match=f"length {N - 1}, expected {N}"):
        cov.variance(np.ones(N - 1))
    with pytest.raises(rm.DimensionError, match=rf"expected \(P, {N}\)"):
        cov.volatility(np.ones((3, N + 1)))
    with pytest.raises(rm.DimensionError, match=rf"expected \({N}, k\)"):
        cov.solve(np.ones((N + 1, 2)))
    with pytest.raises(rm.DimensionError, match="'stock' dim"):
        cov.variance(xr.DataArray(np.ones(N), dims="asset"))
    with pytest.raises(rm.VariableTypeError, match="numeric"):
        cov.variance(np.array(["a"] * N))


def test_missing_stocks_are_zero_weight_and_order_is_by_id(world):
    cov, *_, dense, rng = world
    idx = rng.permutation(N)[:50]
    vals = rng.normal(size=50)
    full = np.zeros(N)
    full[idx] = vals
    s = pd.Series(vals, index=cov.stocks[idx])
    np.testing.assert_allclose(cov.variance(s), full @ dense @ full, rtol=1e-12)
    # pandas 3 string index, shuffled
    s2 = pd.Series(vals, index=pd.Index(cov.stocks[idx], dtype="string"))
    np.testing.assert_allclose(cov.volatility(s2), cov.volatility(full), rtol=1e-14)
    out = cov.matvec(s)
    assert isinstance(out, pd.Series) and out.index.name == "stock"
    np.testing.assert_allclose(out.to_numpy(), dense @ full, rtol=1e-12, atol=1e-18)


def test_labelled_inputs_give_labelled_outputs(world):
    cov, *_, dense, rng = world
    W = rng.normal(size=(3, N)) / N
    ref = np.sqrt(np.einsum("pn,nk,pk->p", W, dense, W))
    names = ["value", "growth", "momo"]
    # DataFrame, portfolios x stocks (shuffled columns)
    perm = rng.permutation(N)
    df = pd.DataFrame(W[:, perm], index=pd.Index(names, name="book"), columns=cov.stocks[perm])
    out = cov.volatility(df)
    assert isinstance(out, pd.Series) and list(out.index) == names and out.index.name == "book"
    np.testing.assert_allclose(out.to_numpy(), ref, rtol=1e-12)
    # DataFrame, stocks x portfolios (index named "stock")
    dft = pd.DataFrame(W.T, index=pd.Index(cov.stocks, name="stock"), columns=names)
    np.testing.assert_allclose(cov.volatility(dft).to_numpy(), ref, rtol=1e-12)
    sx = cov.matvec(dft)
    assert isinstance(sx, pd.DataFrame) and sx.shape == (N, 3) and list(sx.columns) == names
    np.testing.assert_allclose(sx.to_numpy(), dense @ W.T, rtol=1e-12, atol=1e-18)
    # DataArray (portfolio, stock) and (stock, portfolio)
    da = xr.DataArray(W, dims=("portfolio", "stock"), coords={"portfolio": names, "stock": cov.stocks})
    v = cov.volatility(da)
    assert isinstance(v, xr.DataArray) and v.dims == ("portfolio",) and list(v["portfolio"].values) == names
    np.testing.assert_allclose(v.values, ref, rtol=1e-12)
    np.testing.assert_allclose(cov.volatility(da.transpose("stock", "portfolio")).values, ref, rtol=1e-12)
    solved = cov.solve(da.transpose("stock", "portfolio"))
    assert solved.dims == ("stock", "portfolio")
    np.testing.assert_allclose(solved.values, np.linalg.solve(dense, W.T), rtol=1e-9, atol=1e-12)
    # one portfolio: scalars
    s = pd.Series(W[0], index=cov.stocks)
    assert isinstance(cov.volatility(s), float)
    assert isinstance(cov.volatility(da.isel(portfolio=0)), float)
    # batched decomposition keeps the portfolio labels
    dec = cov.decompose(da)
    assert isinstance(dec, RiskDecomposition) and dec.batched
    assert dec.factor_contributions.dims == ("portfolio", "factor")
    assert list(dec.total_vol["portfolio"].values) == names


def test_decomposition_tables_and_dataset(world):
    cov, *_, rng = world
    w = pd.Series(rng.normal(size=N) / N, index=cov.stocks)
    dec = cov.decompose(w)
    top = dec.top_factors(3)
    assert list(top.columns) == ["exposure", "contribution", "share"] and len(top) == 3
    full = dec.factor_contributions.values
    assert np.isclose(abs(top["contribution"].iloc[0]), np.abs(full).max(), rtol=0, atol=0)
    ts = dec.top_stocks(4)
    assert ts.index.name == "stock" and len(ts) == 4
    assert np.isclose(abs(ts["contribution"].iloc[0]), np.abs(dec.component_contributions.values).max(), rtol=0, atol=0)
    text = dec.summary()
    assert "total vol" in text and "Top factors" in text and ts.index[0] in text
    assert repr(dec) == text
    ds = dec.to_dataset()
    assert set(ds.data_vars) >= {"total_vol", "factor_contributions", "component_contributions"}
    assert ds["date"].values == cov.date
    batch = cov.decompose(rng.normal(size=(12, N)))
    with pytest.raises(rm.InvalidParameterError, match="portfolio="):
        batch.top_factors(2)
    assert len(batch.top_stocks(2, portfolio=11)) == 2
    assert "2 more portfolios" in batch.summary()


def test_zero_portfolio_has_zero_contributions(world):
    cov, *_ = world
    dec = cov.decompose(np.zeros(N))
    assert dec.total_vol == 0.0 and dec.specific_contribution == 0.0
    assert not np.any(dec.marginal_contributions.values) and np.isnan(dec.factor_share)


def test_min_variance_weights(world):
    cov, *_, dense, rng = world
    w = cov.min_variance_weights()
    ref = np.linalg.solve(dense, np.ones(N))
    np.testing.assert_allclose(w.values, ref / ref.sum(), rtol=1e-9)
    assert w.dims == ("stock",) and abs(w.values.sum() - 1) < 1e-12
    alpha = rng.normal(size=(4, N))
    wa = cov.min_variance_weights(alpha)
    ref = np.linalg.solve(dense, alpha.T).T
    np.testing.assert_allclose(wa, ref / np.abs(ref).sum(1, keepdims=True), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(cov.volatility(cov.min_variance_weights(alpha, normalise="volatility")), 1.0, rtol=1e-12)
    with pytest.raises(rm.InvalidParameterError, match="normalise"):
        cov.min_variance_weights(normalise="max")


# --- construction and validation --------------------------------------------------------


def _labelled(B, F, d, stocks, factors):
    return (
        xr.DataArray(B, dims=("stock", "factor"), coords={"stock": stocks, "factor": factors}),
        xr.DataArray(F, dims=("factor", "factor_"), coords={"factor": factors, "factor_": factors}),
        xr.DataArray(d, dims="stock", coords={"stock": stocks}),
    )


def test_labelled_constructor_aligns_by_name(world):
    cov, B, F, d, dense, rng = world
    expo, fcov, svar = _labelled(B, F, d, cov.stocks, cov.factors)
    p, q = rng.permutation(N), rng.permutation(M)
    c2 = StructuredCovariance(
        expo.transpose("factor", "stock"),
        fcov.isel(factor=q, factor_=rng.permutation(M)),
        svar.isel(stock=p),
        date="2020-01-02",
    )
    assert _rel(c2.to_dense(), dense) <= 1e-12
    with pytest.raises(rm.AlignmentError, match=r"missing 'S0199'"):
        StructuredCovariance(expo, fcov, svar.isel(stock=slice(0, N - 1)))
    bad_f = fcov.assign_coords(factor_=[*cov.factors[:-1], "oil"])
    with pytest.raises(rm.AlignmentError, match="'oil'"):
        StructuredCovariance(expo, bad_f, svar)
    with pytest.raises(rm.DimensionError, match="factor_"):
        StructuredCovariance(expo, fcov.rename(factor_="f2"), svar)
    with pytest.raises(rm.DimensionError, match=r"sel\(date"):
        StructuredCovariance(expo.expand_dims(date=[0]), fcov, svar)
    with pytest.raises(rm.VariableTypeError, match="from_arrays"):
        StructuredCovariance(B, F, d)
    dup = expo.assign_coords(stock=[*cov.stocks[:-1], cov.stocks[0]])
    with pytest.raises(rm.DuplicateLabelError, match="'S0000'"):
        StructuredCovariance(dup, fcov, svar)


def test_date_label_comes_from_exposures_scalar_coord(world):
    cov, B, F, d, *_ = world
    expo, fcov, svar = _labelled(B, F, d, cov.stocks, cov.factors)
    dated = StructuredCovariance(expo.assign_coords(date=np.datetime64("2021-06-30")), fcov, svar)
    assert dated.date == np.datetime64("2021-06-30", "ns") and "2021-06-30" in repr(dated)
    assert StructuredCovariance(expo, fcov, svar).date is None
    with pytest.raises(rm.InvalidParameterError, match="not a date"):
        StructuredCovariance(expo, fcov, svar, date="yesterday-ish")


def test_input_validation_messages():
    _, B, F, d, _, _ = _world(1, n=20, m=4)
    good = StructuredCovariance.from_arrays(B, F, d)
    assert good.n_stocks == 20
    Bn = B.copy()
    Bn[3, 1] = np.nan
    with pytest.raises(rm.NonFiniteError, match="'s3'.*'f1'"):
        StructuredCovariance.from_arrays(Bn, F, d)
    dz = d.copy()
    dz[5] = 0.0
    with pytest.raises(rm.InvalidParameterError, match="'s5'"):
        StructuredCovariance.from_arrays(B, F, dz)
    Fa = F.copy()
    Fa[0, 2] *= 1.01
    with pytest.raises(rm.InvalidParameterError, match=r"not symmetric.*\(f0, f2\)"):
        StructuredCovariance.from_arrays(B, Fa, d)
    Ft = F.copy()
    Ft[0, 2] += 1e-12 * np.abs(F).max()
    sym = StructuredCovariance.from_arrays(B, Ft, d).factor_cov.values
    np.testing.assert_array_equal(sym, sym.T)
    lam, V = np.linalg.eigh(F)
    Fneg = (V * np.r_[-1e-5, lam[1:]]) @ V.T
    with pytest.raises(rm.InvalidParameterError, match=r"smallest eigenvalue is -1e-05"):
        StructuredCovariance.from_arrays(B, Fneg, d)
    with pytest.raises(rm.DimensionError, match=r"expected \(4, 4\)"):
        StructuredCovariance.from_arrays(B, F[:3, :3], d)
    with pytest.raises(rm.DimensionError, match=r"expected \(20,\)"):
        StructuredCovariance.from_arrays(B, F, d[:5])


def test_singular_psd_factor_cov_is_accepted():
    _, B, F, d, _, _ = _world(2, n=30, m=5)
    v = np.random.default_rng(3).normal(size=(5, 2))
    F2 = v @ v.T * 1e-4  # rank 2: Cholesky fails, the eigen square root is used
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(F2)
    cov = StructuredCovariance.from_arrays(B, F2, d)
    dense = B @ F2 @ B.T + np.diag(d)
    x = np.random.default_rng(4).normal(size=30)
    assert _rel(cov.to_dense(), dense) <= 1e-12
    assert _rel(cov.solve(x), np.linalg.solve(dense, x)) <= 1e-10
    assert abs(cov.logdet() - np.linalg.slogdet(dense)[1]) <= 1e-10 * abs(np.linalg.slogdet(dense)[1])


def test_subset_and_dataset_round_trip(world, tmp_path):
    cov, *_, dense, _ = world
    pick = ["S0010", "S0003", "S0150"]
    sub = cov.subset(pick)
    assert list(sub.stocks) == pick and sub.date == cov.date
    ix = [10, 3, 150]
    np.testing.assert_allclose(sub.to_dense(), dense[np.ix_(ix, ix)], rtol=1e-12)
    ds = cov.to_dataset()
    assert ds["exposures"].dims == ("stock", "factor") and ds["date"].values == cov.date
    back = StructuredCovariance.from_dataset(ds)
    assert back.date == cov.date
    np.testing.assert_array_equal(back.to_dense(), cov.to_dense())
    path = tmp_path / "cov.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as disk:
        again = StructuredCovariance.from_dataset(disk.load())
    np.testing.assert_array_equal(again.to_dense(), cov.to_dense())
    assert list(again.stocks) == list(cov.stocks)
    two = xr.concat([ds, ds.assign_coords(date=np.datetime64("2020-01-03", "ns"))], dim="date")
    assert StructuredCovariance.from_dataset(two).date == np.datetime64("2020-01-03", "ns")
    assert StructuredCovariance.from_dataset(two, date="2020-01-02").date == np.datetime64("2020-01-02", "ns")
    with pytest.raises(rm.MissingVariableError, match="specific_var"):
        StructuredCovariance.from_dataset(ds.drop_vars("specific_var"))


# --- the batch path: fused pass, threads, lazy per-stock parts ---------------------------


def _dense_decomposition(W, B, F, d, dense):
    """Every part of a batch decomposition from the dense Σ (the reference)."""
    sw = W @ dense
    sigma = np.sqrt(np.einsum("pn,pn->p", W, sw))
    x = W @ B
    spec = np.einsum("pn,pn,n->p", W, W, d)
    return {
        "total_vol": sigma,
        "specific_vol": np.sqrt(spec),
        "factor_exposures": x,
        "factor_contributions": x * (x @ F) / sigma[:, None],
        "specific_contribution": spec / sigma,
        "marginal_contributions": sw / sigma[:, None],
        "component_contributions": W * sw / sigma[:, None],
    }


def _parts(dec):
    return {name: np.asarray(getattr(dec, name).values) for name in (
        "total_vol", "specific_vol", "factor_exposures", "factor_contributions", "specific_contribution",
        "marginal_contributions", "component_contributions")}


@pytest.mark.parametrize("n_threads", [1, 3])
def test_batch_path_matches_dense_across_blocks_and_threads(world, monkeypatch, n_threads):
    """A batch spanning several row blocks (not a multiple of the block size), the blocked pass
    run on 1 and on 3 threads: every part equals the dense reference to 1e-12, and the
    threaded pass gives bit-identical numbers (each row is computed by one block alone)."""
    from riskmodel.covariance.structured import passes

    cov, B, _, d, dense, _ = world
    W = np.random.default_rng(11).normal(size=(3 * passes.ROW_BLOCK + 7, N)) / N
    W[5] = 0.0  # a zero book inside a block: σ = 0, all contributions 0
    monkeypatch.setattr(passes, "pass_threads", lambda cells: 1)
    serial = _parts(cov.decompose(W))
    monkeypatch.setattr(passes, "pass_threads", lambda cells: n_threads)
    got = _parts(cov.decompose(W))
    ref = _dense_decomposition(np.delete(W, 5, axis=0), B, cov.factor_cov.values, d, dense)
    for name, value in got.items():
        np.testing.assert_array_equal(value, serial[name], err_msg=name)
        assert _rel(np.delete(value, 5, axis=0), ref[name]) < 1e-12, name
        if name != "factor_exposures":
            assert not np.any(value[5]), name
    np.testing.assert_allclose(got["component_contributions"].sum(1), got["total_vol"], rtol=1e-12)


def test_pass_threads_follow_blas_limit_and_size():
    """Small passes stay on the calling thread; a BLAS limit of 1 keeps large ones there too."""
    from threadpoolctl import threadpool_limits

    from riskmodel.covariance.structured import passes

    assert passes.pass_threads(10) == 1
    with threadpool_limits(limits=1, user_api="blas"):
        assert passes.pass_threads(1 << 30) == 1
    assert 1 <= passes.pass_threads(1 << 30) <= passes.MAX_PASS_THREADS


def test_one_blas_thread_gives_the_same_decomposition(world):
    """Under a BLAS limit of 1 the exposures GEMM runs in its other layout and the pass on one
    thread: the same numbers to rounding."""
    from threadpoolctl import threadpool_limits

    cov, *_ = world
    W = np.random.default_rng(14).normal(size=(70, N)) / N
    ref = _parts(cov.decompose(W))
    with threadpool_limits(limits=1, user_api="blas"):
        got = _parts(cov.decompose(W))
    for name, value in got.items():  # summation order differs: relative to the largest entry
        assert _rel(value, ref[name]) < 1e-13, name


def test_run_row_blocks_covers_every_row_once(monkeypatch):
    from riskmodel.covariance.structured import passes

    for n_rows, n_threads in [(0, 2), (1, 4), (passes.ROW_BLOCK, 2), (5 * passes.ROW_BLOCK + 3, 3)]:
        hits = np.zeros(n_rows, dtype=int)

        def block(lo, hi, tmp, hits=hits):
            assert tmp.shape[1] == 4 and hi - lo <= tmp.shape[0]
            hits[lo:hi] += 1

        passes.run_row_blocks(block, (n_rows, 4), n_threads)
        assert np.all(hits == 1), (n_rows, n_threads)


def test_lazy_per_stock_parts_equal_eager(world):
    cov, *_ = world
    W = np.random.default_rng(12).normal(size=(40, N)) / N
    eager, lazy = cov.decompose(W), cov.decompose(W, per_stock=False)
    assert "_per_stock" not in lazy.__dict__  # not computed yet
    for name, value in _parts(eager).items():
        np.testing.assert_allclose(_parts(lazy)[name], value, rtol=1e-14, atol=0, err_msg=name)
    assert "_per_stock" in lazy.__dict__


def test_weight_layouts_give_the_same_decomposition(world):
    """C-ordered, F-ordered, strided and labelled (stock-first) weights: the same numbers."""
    cov, *_ = world
    W = np.random.default_rng(13).normal(size=(9, N)) / N
    ref = _parts(cov.decompose(W))
    frame = pd.DataFrame(W.T, index=pd.Index(cov.stocks, name="stock"))
    wide = np.zeros((9, 2 * N))
    wide[:, ::2] = W
    for variant in (np.asfortranarray(W), wide[:, ::2], frame):
        dec = cov.decompose(variant)
        for name, value in _parts(dec).items():  # outputs are (portfolio, ·) whatever the input layout
            assert _rel(value, ref[name]) < 1e-13, name


def test_non_finite_weights_found_through_exposures(world):
    """The batch path detects bad weights on x = Bᵀw; an inf on a stock with a zero exposure,
    a NaN in a labelled batch and a -inf are all named by stock and portfolio."""
    cov, B, F, d, *_ = world
    B0 = B.copy()
    B0[7, :] = 0.0  # inf · 0 = NaN: still non-finite
    cov0 = StructuredCovariance.from_arrays(B0, F, d, stocks=cov.stocks, factors=cov.factors)
    W = np.zeros((4, N))
    W[1, 7] = np.inf
    with pytest.raises(rm.NonFiniteError, match=r"'S0007'.*portfolio\(s\) '1'"):
        cov0.decompose(W)
    da = xr.DataArray(np.zeros((3, N)), dims=("book", "stock"),
                      coords={"book": ["a", "b", "c"], "stock": cov.stocks})
    da[2, 11] = np.nan
    with pytest.raises(rm.NonFiniteError, match=r"'S0011'.*portfolio\(s\) 'c'"):
        cov.decompose(da)
    w = np.zeros(N)
    w[0] = -np.inf
    with pytest.raises(rm.NonFiniteError, match="'S0000'"):
        cov.decompose(w, per_stock=False)


# --- property tests: shapes and conditioning ---------------------------------------------


@st.composite
def _problems(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 8))
    p = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    d_lo = draw(st.sampled_from([1e-8, 1e-6, 1e-4, 1e-2]))
    f_floor = draw(st.sampled_from([0.0, 1e-14, 1e-8, 1e-2]))  # smallest eigenvalue / largest
    return n, m, p, seed, d_lo, f_floor


def _random_problem(n, m, seed, d_lo, f_floor):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, m))
    Q, _ = np.linalg.qr(rng.normal(size=(m, m)))
    lam = np.exp(rng.uniform(np.log(max(f_floor, 1e-300)), 0.0, size=m)) if f_floor > 0 else rng.uniform(0, 1, m)
    lam[0] = f_floor  # force the smallest eigenvalue (0 = exactly singular)
    lam[-1] = 1.0
    F = (Q * lam) @ Q.T
    F = 0.5 * (F + F.T)
    d = np.exp(rng.uniform(np.log(d_lo), 0.0, size=n))  # spread over [d_lo, 1]
    return rng, B, F, d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems())
def test_property_against_dense(problem):
    n, m, p, seed, d_lo, f_floor = problem
    rng, B, F, d = _random_problem(n, m, seed, d_lo, f_floor)
    cov = StructuredCovariance.from_arrays(B, F, d)
    dense = B @ cov.factor_cov.values @ B.T + np.diag(d)
    absd = np.abs(B) @ np.abs(cov.factor_cov.values) @ np.abs(B).T + np.diag(d)  # |B||F||B|ᵀ + D
    eps = np.finfo(float).eps
    W = rng.normal(size=(p, n))
    X = rng.normal(size=(n, p))

    # Σx and wᵀΣw: forward error within a modest multiple of the componentwise bound
    err = np.abs(cov.matvec(X) - dense @ X)
    assert np.all(err <= 64 * (m + 2) * eps * (absd @ np.abs(X)) + 1e-300)
    var_bound = 64 * (m + n) * eps * np.einsum("pn,nk,pk->p", np.abs(W), absd, np.abs(W))
    assert np.all(np.abs(cov.variance(W) - np.einsum("pn,nk,pk->p", W, dense, W)) <= var_bound)

    # Woodbury: small backward error ‖Σx̂ − b‖ ≤ c·eps·‖Σ‖‖x̂‖ (dense solve itself is inexact here)
    xs = cov.solve(X)
    norm_s = np.linalg.norm(dense, 2)
    resid = np.linalg.norm(dense @ xs - X, axis=0)
    assert np.all(resid <= 1e4 * n * eps * norm_s * np.linalg.norm(xs, axis=0))

    # log-determinant by the lemma: rounding in M = I + B̃ᵀD⁻¹B̃ moves its unit eigenvalues by
    # about eps·λ_max(M), so |Δ log|Σ|| ≤ c·(n + m)·eps·κ(M) with κ(M) = 1 + λ_max(D^-½ BFBᵀ D^-½)
    # (and also bounded through κ(Σ) for the dense reference's own error)
    isd = 1.0 / np.sqrt(d)
    kappa_m = 1.0 + np.linalg.eigvalsh((dense - np.diag(d)) * np.outer(isd, isd))[-1]
    kappa = np.linalg.cond(dense)
    sign, ref = np.linalg.slogdet(dense)
    assert sign == 1.0
    assert abs(cov.logdet() - ref) <= 1e3 * (n + m) * (kappa_m + kappa) * eps + 1e-10 * abs(ref)

    # Euler identities hold to rounding
    dec = cov.decompose(W if p > 1 else W[0])
    sigma = np.atleast_1d(np.asarray(dec.total_vol, dtype=float))
    total_f = np.atleast_1d(dec.factor_contributions.sum("factor").values + np.asarray(
        dec.specific_contribution if p == 1 else dec.specific_contribution.values))
    np.testing.assert_allclose(total_f, sigma, rtol=1e-10)
    np.testing.assert_allclose(np.atleast_1d(dec.component_contributions.sum("stock").values), sigma, rtol=1e-9)

    # the LinearOperator view agrees with matvec
    op = cov.as_linear_operator()
    np.testing.assert_array_equal(op.matmat(X), cov.matvec(X))
    np.testing.assert_array_equal(op.H.matvec(X[:, 0]), cov.matvec(X[:, 0]))
