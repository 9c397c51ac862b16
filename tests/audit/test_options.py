"""The audit's options: a window by dates, the number of components, and labels that say
"mixed" below a purity threshold; the defaults leave the audit as it was."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.audit.clusters import MIN_PURITY, MIXED, cluster_label
from riskmodel.audit.residuals import ResidualAudit
from riskmodel.errors import InsufficientDataError, InvalidParameterError


@pytest.fixture(scope="module")
def residuals():
    """300 days x 200 stocks of noise with one group of 30 co-moving names; the group's
    first 12 names are labelled 'A' (purity 0.6 if the group is found whole)."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((300, 200)) * 0.02
    u[:, :30] += 0.02 * 0.5 * rng.standard_normal((300, 1))
    dates = np.datetime64("2020-01-01") + np.arange(300).astype("timedelta64[D]")
    stocks = [f"S{i:03d}" for i in range(200)]
    res = xr.DataArray(u, dims=("date", "stock"), coords={"date": dates, "stock": stocks})
    labels = xr.DataArray(np.where(np.arange(200) < 18, "A", "B"), dims="stock", coords={"stock": stocks})
    return res, labels


def test_cluster_label_rule():
    assert MIN_PURITY == 0.5
    assert cluster_label("Energy", 0.5) == "Energy"
    assert cluster_label("Energy", 0.49) == MIXED == "mixed"
    assert cluster_label("Energy", 0.24, 0.2) == "Energy"
    assert cluster_label("Energy", 0.01, 0.0) == "Energy"
    assert cluster_label(None, None) is None


def test_min_purity_names_or_mixes_without_changing_numbers(residuals):
    res, labels = residuals
    default = rm.audit_residuals(res, labels, n_null=10)
    strict = rm.audit_residuals(res, labels, n_null=10, min_purity=0.95)
    lenient = rm.audit_residuals(res, labels, n_null=10, min_purity=0.0)
    c_default, c_strict, c_lenient = default.clusters[0], strict.clusters[0], lenient.clusters[0]
    assert c_default.purity < 0.95
    assert c_strict.label == "mixed" and c_lenient.label == c_lenient.dominant_label
    assert c_default.label == (c_default.dominant_label if c_default.purity >= 0.5 else "mixed")
    # the label is the only difference: dominant label, purity and every number are the same
    assert c_strict.dominant_label == c_default.dominant_label and c_strict.purity == c_default.purity
    ds_a, ds_b = default.to_dataset(), strict.to_dataset()
    for name in ds_a.variables:
        np.testing.assert_array_equal(ds_a[name].values, ds_b[name].values)
    assert strict.settings["min_purity"] == 0.95
    assert "mixed" in strict.summary().splitlines()[-1]
    # the label survives the file round trip (rebuilt from the stored min_purity)
    again = ResidualAudit.from_dataset(strict.to_dataset())
    assert again.clusters[0].label == "mixed"


def test_start_end_select_dates(residuals):
    res, labels = residuals
    audit = rm.audit_residuals(res, labels, n_null=10, start="2020-03-01", end="2020-08-31")
    assert str(audit.dates[0])[:10] == "2020-03-01" and str(audit.dates[-1])[:10] == "2020-08-31"
    assert audit.n_dates == 184  # every day between them: window counts all of them
    assert audit.settings["start"] == "2020-03-01" and audit.settings["end"] == "2020-08-31"
    # same as the audit of the residuals cut to those dates (no specific variance: no lag)
    cut = rm.audit_residuals(res.sel(date=slice("2020-03-01", "2020-08-31")), labels, n_null=10)
    np.testing.assert_array_equal(audit.eigenvalues.values, cut.eigenvalues.values)
    # a window counts back from end
    last = rm.audit_residuals(res, labels, n_null=10, end="2020-08-31", window=100)
    assert last.n_dates == 100 and str(last.dates[-1])[:10] == "2020-08-31"


def test_start_uses_the_forecast_made_the_day_before(residuals):
    res, _ = residuals
    sv = xr.full_like(res, 0.02**2)
    audit = rm.audit_residuals(res, specific_var=sv, n_null=5, start="2020-03-01")
    assert str(audit.dates[0])[:10] == "2020-03-01"  # standardised by the forecast of 2020-02-29
    assert audit.standardised


@pytest.mark.parametrize("kwargs, words", [
    (dict(start="2020-06-01", end="2020-03-01"), ["start=2020-06-01", "after", "end=2020-03-01"]),
    (dict(start="2021-06-01"), ["0 date(s)", "2020-01-01 .. 2020-10-26", "at least 40"]),
    (dict(start="2020-03-01", end="2020-03-20"), ["20 date(s)", "widen"]),
])
def test_bad_date_ranges(residuals, kwargs, words):
    res, _ = residuals
    with pytest.raises((InvalidParameterError, InsufficientDataError)) as info:
        rm.audit_residuals(res, n_null=5, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("kwargs, name", [
    (dict(min_purity=1.5), "min_purity"), (dict(min_purity=-0.1), "min_purity"), (dict(min_purity="high"), "min_purity"),
    (dict(start="someday"), "start"), (dict(end=20200101), "end"),
])
def test_bad_settings(residuals, kwargs, name):
    res, _ = residuals
    with pytest.raises(InvalidParameterError, match=name):
        rm.audit_residuals(res, **kwargs)


def test_components_cap_says_how_to_raise_it(residuals):
    res, _ = residuals
    capped = rm.audit_residuals(res, n_null=10, max_components=1)
    assert capped.n_significant == 1
    line = next(s for s in capped.summary().splitlines() if s.startswith("significant"))
    assert "max_components 1" in line and "--components K" in line and "max_components=K" in line
    more = rm.audit_residuals(res, n_null=10, max_components=5)
    assert more.eigenvalues.size == 5
    assert "there may be more" not in more.summary()


def test_dates_beyond_pandas_range(residuals):
    res, _ = residuals
    with pytest.raises(InsufficientDataError, match="0 date"):
        rm.audit_residuals(res, start="2999-01-01")
    early = rm.audit_residuals(res, n_null=5, start="1000-01-01", end="2020-03-31")
    assert str(early.dates[0])[:10] == "2020-01-01" and early.n_dates == 91
