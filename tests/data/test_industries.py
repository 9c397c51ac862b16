"""pool_thin_industries: per-date pooling of thin industries into their parent group."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.errors import AlignmentError, InvalidParameterError, MissingVariableError


def _panel(cap: np.ndarray, industry: list[str], sector: list[str]) -> xr.Dataset:
    T, N = cap.shape
    return xr.Dataset(
        {"industry": ("stock", industry), "sector": ("stock", sector), "market_cap": (("date", "stock"), cap)},
        coords={"date": pd.date_range("2024-01-01", periods=T), "stock": [f"S{i}" for i in range(N)]},
    )


def _labels(pooled: xr.DataArray, t: int) -> list[str]:
    labels = pooled.attrs["labels"]
    return [labels[c] if c >= 0 else "" for c in pooled.isel(date=t).values.tolist()]


def test_thin_industries_pool_per_date_and_a_thin_pool_joins_the_largest_industry():
    industry = ["oil"] * 4 + ["gas", "gas", "coal", "banks", "banks", "banks", "insure"]
    sector = ["Energy"] * 7 + ["Fin"] * 4
    cap = np.ones((3, 11))
    cap[1, 3] = np.nan  # date 1: oil down to 3 members (thin)
    p = _panel(cap, industry, sector)
    pooled = rm.pool_thin_industries(p, min_size=4)
    assert pooled.dims == ("date", "stock") and pooled.dtype == np.int32
    assert pooled.attrs["labels"] == sorted(["banks", "coal", "gas", "insure", "oil", "Energy (other)", "Fin (other)"])
    # date 0: gas + coal (3 < 4) pool thin -> they join oil, Energy's largest industry; insure (1) pools
    # thin into Fin (other), banks are thin too (3), so Fin has no host and the pool stays
    assert _labels(pooled, 0) == ["oil"] * 7 + ["Fin (other)"] * 4
    # date 1: oil is thin as well: Energy (other) holds all 6 present names + the absent one
    assert _labels(pooled, 1)[:7] == ["Energy (other)"] * 7
    assert pooled.attrs["n_hosted"] == 2 * 3  # gas, gas, coal on dates 0 and 2


def test_decision_uses_each_date_only():
    rng = np.random.default_rng(0)
    T, N = 30, 40
    cap = np.where(rng.random((T, N)) < 0.3, np.nan, 1.0)
    industry = [f"i{k}" for k in rng.integers(0, 9, N)]
    sector = [f"s{int(i[1:]) % 3}" for i in industry]
    p = _panel(cap, industry, sector)
    full = rm.pool_thin_industries(p, min_size=5)
    head = rm.pool_thin_industries(p.isel(date=slice(0, 12)), min_size=5)
    np.testing.assert_array_equal(head.values, full.values[:12])
    assert head.attrs["labels"] == full.attrs["labels"]  # labels depend on the labels only


def test_reference_loop_on_random_panels():
    rng = np.random.default_rng(1)
    T, N, m = 25, 60, 4
    cap = np.where(rng.random((T, N)) < 0.2, np.nan, rng.uniform(1, 2, (T, N)))
    ind_id = rng.integers(0, 12, N)
    industry = [f"i{k:02d}" for k in ind_id]
    sector = [f"s{k % 4}" if k != 11 else "" for k in ind_id]  # i11 has no sector
    pooled = rm.pool_thin_industries(_panel(cap, industry, sector), min_size=m)
    for t in range(T):
        member = np.isfinite(cap[t]) & (cap[t] > 0)
        count = {i: sum(1 for n in range(N) if member[n] and industry[n] == i) for i in set(industry)}
        thin = {i for i, c in count.items() if 0 < c < m}
        expect = [f"{sector[n]} (other)" if industry[n] in thin and sector[n] else industry[n] for n in range(N)]
        for s in {x for x in sector if x}:
            pool = [n for n in range(N) if expect[n] == f"{s} (other)"]
            n_pool = sum(member[n] for n in pool)
            hosts = {i: c for i, c in count.items() if i not in thin and c > 0
                     and any(industry[n] == i and sector[n] == s for n in range(N))}
            if 0 < n_pool < m and hosts:
                host = max(sorted(hosts), key=lambda i: hosts[i])
                for n in pool:
                    expect[n] = host
        assert _labels(pooled, t) == expect, t


def test_bad_input_is_named():
    p = _panel(np.ones((2, 3)), ["a", "b", "Energy (other)"], ["Energy"] * 3)
    with pytest.raises(AlignmentError, match="Energy \\(other\\)"):
        rm.pool_thin_industries(p)
    with pytest.raises(MissingVariableError, match="'gics'"):
        rm.pool_thin_industries(p, parent="gics")
    with pytest.raises(InvalidParameterError, match="min_size"):
        rm.pool_thin_industries(p, min_size=0)


def test_model_fits_with_pooled_industries_and_thin_warnings_drop():
    p = rm.simulate(300, 160, seed=3, n_industries=20, styles=["size", "value"])
    names = np.asarray(p["industry"].values).astype(str)
    uniq = np.unique(names)
    parent = {u: f"sector{k % 5}" for k, u in enumerate(uniq)}
    p["sector"] = ("stock", [parent[n] for n in names])
    p["industry_pooled"] = rm.pool_thin_industries(p, min_size=25)
    with warnings.catch_warnings(record=True) as raw_w:
        warnings.simplefilter("always")
        rm.FactorRiskModel(styles=["size", "value"], min_industry_size=25, covariance=False, progress=False).fit(p)
    with warnings.catch_warnings(record=True) as pooled_w:
        warnings.simplefilter("always")
        fit = rm.FactorRiskModel(styles=["size", "value"], industry="industry_pooled", min_industry_size=25,
                                 covariance=False, progress=False).fit(p)
    thin = [w for w in raw_w if "too few members" in str(w.message)]
    assert thin, "the raw classification must have thin industries at this size"
    assert not [w for w in pooled_w if "too few members" in str(w.message)]
    assert np.isfinite(fit.r2.values[5:]).all()
