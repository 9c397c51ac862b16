"""FittedFactorModel.update (issue 20): fit on days 1..T-k, update k times, equal to a full
fit on 1..T bit for bit, every stored array (the EWMA sums are carried with the kernels'
arithmetic; see riskmodel/models/update_ewma.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel.models.update import HistoryMismatchError, SettingsMismatchError, UpdateNotSupportedError

#: Arrays whose update may differ from the refit in the last bits: none (the carried sums
#: reproduce the kernels; were they refused, specific_var would agree to ~1e-15 only).
NEAR: dict[str, float] = {}


def _world(n_stocks: int, n_days: int, seed: int) -> xr.Dataset:
    return rm.simulate(n_stocks=n_stocks, n_days=n_days, seed=seed, listing_rate=0.3, delisting_rate=0.3,
                       n_industries=4, min_industry_size=6)


def _fit(panel: xr.Dataset, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rm.FactorRiskModel(progress=False, **settings).fit(panel)


def _update_daily(fit, panel: xr.Dataset, start: int, lookback: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(start, panel.sizes["date"]):
            fit = fit.update(panel.isel(date=slice(max(0, t - lookback), t + 1)))
    return fit


def assert_same_model(full, updated, exact: bool = True) -> None:
    """Every stored array of the refit equals the update's: bit for bit, or within NEAR
    (``exact=False``: every float array within 1e-12 of its largest value)."""
    a, b = full.dataset, updated.dataset
    assert list(a["date"].values) == list(b["date"].values)
    assert list(a["stock"].values) == list(b["stock"].values)
    for name in a.data_vars:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        assert x.shape == y.shape, name
        if name in NEAR:
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            ok = np.isfinite(x)
            rel = np.abs(x[ok] - y[ok]) / np.abs(x[ok])
            assert rel.max(initial=0.0) <= NEAR[name], (name, rel.max())
        elif x.dtype.kind == "f" and not exact:
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            assert np.allclose(x, y, rtol=1e-12, atol=1e-12 * np.nanmax(np.abs(x)), equal_nan=True), name
        elif x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), (name, np.nanmax(np.abs(x - y)))
        else:
            assert np.array_equal(x, y), name


@pytest.fixture(scope="module")
def world() -> xr.Dataset:
    return _world(80, 420, seed=1)


@pytest.mark.parametrize("k", [1, 5])
def test_k_daily_updates_equal_a_full_refit(world, k):
    T = world.sizes["date"]
    updated = _update_daily(_fit(world.isel(date=slice(0, T - k))), world, T - k, lookback=2)
    assert updated.dataset.sizes["date"] == T
    assert_same_model(_fit(world), updated)


def _many_days_case(k: int):
    panel = _world(50, 560 if k > 100 else 420, seed=3)
    T = panel.sizes["date"]
    listed = np.isfinite(panel["returns"].values)
    entering = (listed[1:] & ~listed[:-1])[T - k - 1:].any()
    leaving = (~listed[1:] & listed[:-1])[T - k - 1:].any()
    assert entering and leaving  # listings and delistings among the new days
    updated = _update_daily(_fit(panel.isel(date=slice(0, T - k))), panel, T - k)
    assert_same_model(_fit(panel), updated)


def test_sixty_daily_updates_with_listings_and_delistings():
    _many_days_case(60)


@pytest.mark.slow
def test_250_daily_updates_with_listings_and_delistings():
    _many_days_case(250)


def test_several_days_in_one_update_and_a_growing_stock_axis(world):
    listed = np.isfinite(world["returns"].values)
    T, k = world.sizes["date"], world.sizes["date"] - int(listed.argmax(axis=0).max()) + 3  # the last listing is new
    old = listed[: T - k].any(axis=0)
    assert (~old).any()  # stocks listed only among the new days
    order = np.concatenate([np.flatnonzero(old), np.flatnonzero(~old)])
    panel = world.isel(stock=order)
    first = _fit(panel.isel(date=slice(0, T - k), stock=slice(0, int(old.sum()))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        updated = first.update(panel.isel(date=slice(T - k - 3, T)))
    full = _fit(panel)
    assert updated.dataset.sizes["stock"] == panel.sizes["stock"]
    # the update cannot know the industry of a stock before its first date in the model
    codes = updated.dataset["industry_code"].values
    assert (codes[: T - k, int(old.sum()):] == -1).all()
    full.dataset["industry_code"].values[: T - k, int(old.sum()):] = -1
    # the first fit summed over fewer stocks (no all-NaN columns): its dates agree with the
    # refit's to rounding, so here the comparison is to 1e-12, not bit for bit
    assert_same_model(full, updated, exact=False)


def test_the_state_survives_save_and_load(world, tmp_path):
    T = world.sizes["date"]
    once = _fit(world.isel(date=slice(0, T - 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        once = once.update(world.isel(date=[T - 2]))
    assert "update_n_dates" in once.dataset
    rm.save(once, tmp_path / "m.nc")
    loaded = rm.load(tmp_path / "m.nc")
    assert_same_model(_fit(world), _update_daily(loaded, world, T - 1))


def test_a_panel_without_new_dates_returns_the_model(world):
    fit = _fit(world.isel(date=slice(0, 300)))
    assert fit.update(world.isel(date=slice(290, 300))) is fit


def test_a_panel_disagreeing_with_the_history_is_refused_naming_date_and_stock(world):
    fit = _fit(world.isel(date=slice(0, 300)))
    panel = world.isel(date=slice(295, 302)).copy(deep=True)
    stock = str(panel["stock"].values[5])
    r = panel["returns"].values
    t = int(np.flatnonzero(np.isfinite(r[:, 5]))[0])
    assert t < 5
    r[t, 5] += 0.01
    date = str(panel["date"].values[t])[:10]
    with pytest.raises(HistoryMismatchError, match=rf"returns of stock '{stock}' on {date}"):
        fit.update(panel)


def test_other_settings_are_refused(world):
    fit = _fit(world.isel(date=slice(0, 300)))
    with pytest.raises(SettingsMismatchError, match="vol_half_life: model 84, given 42"):
        fit.update(world.isel(date=slice(300, 301)), settings={"vol_half_life": 42})
    same = fit.update(world.isel(date=slice(300, 301)), settings=fit.settings)
    assert same.dataset.sizes["date"] == 301


def test_a_new_industry_is_refused(world):
    fit = _fit(world.isel(date=slice(0, 300)))
    panel = world.isel(date=slice(300, 302)).copy(deep=True)
    labels = panel["industry"].values.astype(object)
    labels[0] = "brand new industry"
    panel["industry"] = (panel["industry"].dims, labels.astype(str))
    with pytest.raises(UpdateNotSupportedError, match="brand new industry"):
        fit.update(panel)


def test_other_kinds_say_why_they_cannot_be_updated(world):
    small = world.isel(date=slice(0, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stat = rm.StatisticalFactorModel(n_factors=3, window=120, min_obs=60, eigen_sims=0).fit(small)
        hybrid = _fit(small, statistical_factors=2)
    with pytest.raises(UpdateNotSupportedError, match="only the fundamental model"):
        stat.update(world.isel(date=slice(200, 201)))
    with pytest.raises(UpdateNotSupportedError, match="hybrid model"):
        hybrid.update(world.isel(date=slice(200, 201)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        standardised = _fit(small, corr_standardise=True)
    with pytest.raises(UpdateNotSupportedError, match="corr_standardise=True"):
        standardised.update(world.isel(date=slice(200, 201)))


def test_a_model_without_forecasts_is_updated_too(world):
    T = world.sizes["date"]
    updated = _update_daily(_fit(world.isel(date=slice(0, T - 3)), covariance=False), world, T - 3)
    full = _fit(world, covariance=False)
    assert "factor_cov" not in updated.dataset
    assert_same_model(full, updated)


def test_the_factor_ewma_sums_are_carried_bit_for_bit(world):
    """Past the variance window (126 dates at half-life 42) the sums subtract their oldest
    term; the carried arithmetic must reproduce the kernel's there too (else the update falls
    back to rerunning the kernel, and this state would hold no sums)."""
    from riskmodel.models.update_state import build_state

    state = build_state(_fit(world.isel(date=slice(0, 300)), vol_half_life=42))
    assert "update_ewma_cov_c_sxy" in state and "update_ewma_var_nw_sxy" in state
    assert "update_ts_num" in state  # the specific time series (window 252) is carried too


def test_a_new_stock_with_a_longer_name_keeps_its_name(world):
    alive = np.flatnonzero(np.isfinite(world["returns"].values[300:302]).all(axis=0))
    order = [*[j for j in range(world.sizes["stock"]) if j != alive[0]], int(alive[0])]
    names = [str(s) for s in world["stock"].values[order]]
    names[-1] = "a_much_longer_stock_name_than_the_others"
    panel = world.isel(stock=order).assign_coords(stock=names)
    fit = _fit(panel.isel(date=slice(0, 300), stock=slice(0, -1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        updated = fit.update(panel.isel(date=slice(300, 302)))
    assert list(updated.stocks) == names
    assert np.isfinite(updated.dataset["returns"].values[-2:, -1]).any()


def test_updates_grow_the_arrays_in_place_and_never_change_an_older_model(world):
    """The second update writes into the first one's buffers (no copy of the history); a
    branch from an older model copies, and every model keeps its own values."""
    n = world.sizes["date"]
    fit = _fit(world.isel(date=slice(0, n - 3)))
    one = _update_daily(fit, world.isel(date=slice(0, n - 2)), n - 3)
    two = _update_daily(one, world.isel(date=slice(0, n - 1)), n - 2)
    for name in ("returns", "residuals", "style_exposure", "factor_cov", "specific_var"):
        assert np.shares_memory(one.dataset[name].to_numpy(), two.dataset[name].to_numpy()), name
        assert not np.shares_memory(fit.dataset[name].to_numpy(), one.dataset[name].to_numpy()), name
    kept = {name: two.dataset[name].to_numpy().copy() for name in two.dataset.data_vars}
    other = world.isel(date=[n - 2]).copy(deep=True)
    other["returns"] = other["returns"] * 0.5  # another new day: a branch from ``one``
    branch = one.update(other)
    assert not np.shares_memory(branch.dataset["returns"].to_numpy(), two.dataset["returns"].to_numpy())
    for name, values in kept.items():  # ``two`` is untouched by the branch
        assert np.array_equal(two.dataset[name].to_numpy(), values, equal_nan=values.dtype.kind == "f"), name
    assert one.dataset.sizes["date"] == n - 2 and fit.dataset.sizes["date"] == n - 3
    assert_same_model(_fit(world.isel(date=slice(0, n - 1))), two)
    three = _update_daily(two, world, n - 1)
    assert_same_model(_fit(world), three)


@pytest.mark.parametrize("blend", [True, False])
def test_the_robust_statistic_of_the_new_dates_equals_the_kernel_bit_for_bit(blend):
    """models.update_robust.robust_rows reproduces specific_ts_kernel's h and gamma of the last
    dates (heavy tails so the +-10 sigma clip bites, gaps, listings, a stock whose window
    empties), for first new dates before, on and after a 32-date refresh."""
    from riskmodel.covariance.specific import ts_stats
    from riskmodel.models.update import _specific_slice_start
    from riskmodel.models.update_robust import robust_rows

    rng = np.random.default_rng(7)
    window, lags, n_stocks = 60, 2, 41
    u = rng.standard_t(2, size=(300, n_stocks)) * 0.01
    u[rng.random(u.shape) < 0.1] = np.nan
    u[:150, 3] = np.nan  # listed late
    u[100:, 5] = np.nan  # delisted: its window empties
    u[150:215, 6] = np.nan  # a long gap
    u[:, 7] = 0.0  # no spread: sigma_tilde 0
    seen_kernel_column = False
    for n_old in (20, 31, 94, 95, 96, 127, 160, 200, 255, 263):
        s0 = _specific_slice_start(n_old, window, lags)
        for k in (1, 3):
            part = np.ascontiguousarray(u[s0: n_old + k])
            _, h_want, g_want = ts_stats(part, half_life=20.0, lags=lags, window=window, min_obs=10, full_obs=40,
                                         blend=blend)
            h, gamma, cols = robust_rows(part, s0, n_old, window, 10, 40, blend)
            keep = np.setdiff1d(np.arange(n_stocks), cols)
            seen_kernel_column |= cols.size > 0
            assert np.array_equal(h, h_want[-k:]), (n_old, k)
            assert np.array_equal(gamma[:, keep], g_want[-k:, keep]), (n_old, k, np.abs(gamma - g_want[-k:]).max())
            assert not blend or ((g_want[-k:] > 0) & (g_want[-k:] < 1)).any()
    assert seen_kernel_column


def test_the_specific_vra_sums_equal_lfilter_bit_for_bit():
    """update_state.specific_iir (a plain loop, so the daily update need not import
    scipy.signal) equals the fit's scipy.signal.lfilter sums, from the first date and carried
    across a split of the series."""
    from scipy.signal import lfilter

    from riskmodel.models.update_state import specific_iir

    rng = np.random.default_rng(3)
    b2 = rng.lognormal(0.0, 0.7, size=3000) ** 2
    b2[rng.random(b2.size) < 0.05] = np.nan
    b2[:7] = np.nan
    for half_life in (42.0, 3.5, 250.0):
        a = 2.0 ** (-1.0 / half_life)
        have = np.isfinite(b2)
        want_num = lfilter([1.0], [1.0, -a], np.where(have, b2, 0.0))
        want_den = lfilter([1.0], [1.0, -a], have.astype(np.float64))
        num, den = specific_iir(b2, half_life, 0.0, 0.0)
        assert np.array_equal(num, want_num) and np.array_equal(den, want_den)
        for cut in (1, 1234, 2999):
            head_num, head_den = specific_iir(b2[:cut], half_life, 0.0, 0.0)
            tail_num, tail_den = specific_iir(b2[cut:], half_life, head_num[-1], head_den[-1])
            assert np.array_equal(tail_num, want_num[cut:]) and np.array_equal(tail_den, want_den[cut:])


def test_consecutive_updates_in_memory_carry_the_robust_sums(world, monkeypatch):
    """An update of a model an update returned starts the robust statistic's running sums from
    those the previous update left (no rebuild at the latest 32-date refresh unless one was
    passed), and every array still equals the refit's bit for bit."""
    import riskmodel.models.update_robust as robust

    n = 414  # dates 408 .. 413 are new: no refresh date (t % 32 == 31) among them
    start = n - 6
    assert (start + 1) // robust.REFRESH == n // robust.REFRESH
    rebuilt = []
    original = robust._refresh
    monkeypatch.setattr(robust, "_refresh", lambda *a: (rebuilt.append(a[2]), original(*a))[1])
    fit = _update_daily(_fit(world.isel(date=slice(0, start))), world.isel(date=slice(0, start + 1)), start)
    assert len(rebuilt) == 1  # the first update rebuilds them at the latest refresh
    updated = _update_daily(fit, world.isel(date=slice(0, n)), start + 1)
    assert len(rebuilt) == 1  # the next five carry them
    assert_same_model(_fit(world.isel(date=slice(0, n))), updated)
