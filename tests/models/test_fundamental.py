"""FactorRiskModel end to end: identities, truth recovery, look-ahead, persistence, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import riskmodel as rm
import riskmodel._results as rm_results
from riskmodel.models.hybrid import hybrid_model
from riskmodel.models.pipeline import fit_fundamental


@pytest.fixture(scope="module")
def world():
    return rm.simulate(n_stocks=300, n_days=650, seed=2)


@pytest.fixture(scope="module")
def fitted(world):
    return rm.FactorRiskModel(eigen_sims=100, progress=False).fit(world)


def test_outputs_are_labelled(world, fitted):
    n_ind = len(np.unique(world["industry"].to_numpy()))
    assert fitted.factors[0] == "market"
    assert len(fitted.factors) == 1 + n_ind + len(world.attrs["styles"])
    assert fitted.factor_returns.dims == ("date", "factor")
    assert fitted.residuals.dims == ("date", "stock")
    assert fitted.residuals.sizes["stock"] == world.sizes["stock"]  # every stock, NaN where absent
    assert fitted.r2.dims == ("date",)
    assert np.isnan(fitted.factor_returns.isel(date=0)).all()  # lag 1: nothing to explain day 0
    assert np.isfinite(fitted.r2.isel(date=slice(1, None))).all()
    assert "FittedFactorModel" in fitted.summary()


def test_noise_free_world_is_recovered_through_the_pipeline():
    panel = rm.simulate(n_stocks=200, n_days=120, seed=1, specific_scale=0, listing_rate=0, delisting_rate=0, missing_rate=0)
    fit = rm.FactorRiskModel(return_clip=None, covariance=False, progress=False).fit(panel)
    est = fit.factor_returns.to_numpy()[1:]
    true = panel["true_factor_returns"].sel(true_factor=fit.factors).to_numpy()[1:]
    np.testing.assert_allclose(est, true, rtol=0, atol=1e-10 * np.abs(true).max())


def test_factor_return_is_mimicking_portfolio_return(world):
    fit = rm.FactorRiskModel(return_clip=None, covariance=False, progress=False).fit(world)
    for date in fit.dates[[5, 300, -1]]:
        weights = fit.mimicking_portfolios(date)
        realised = (weights * fit.returns.sel(date=date).fillna(0.0)).sum("stock")
        f = fit.factor_returns.sel(date=date)
        ok = np.isfinite(f)
        np.testing.assert_allclose(realised[ok], f[ok], rtol=1e-12, atol=1e-12 * float(np.abs(f[ok]).max()))
        np.testing.assert_allclose(weights.sel(factor="market").sum(), 1.0, atol=1e-12)
        np.testing.assert_allclose(weights.drop_sel(factor="market").sum("stock").where(ok).dropna("factor"), 0.0, atol=1e-12)


def test_no_look_ahead(world):
    t = 520
    model = rm.FactorRiskModel(eigen_sims=100, progress=False)
    full = model.fit(world)
    truncated = model.fit(world.isel(date=slice(0, t + 1)))
    for name in ["factor_returns", "residuals", "r2", "factor_se", "specific_var", "factor_cov", "style_exposure"]:
        a = full.dataset[name].isel(date=slice(0, t + 1)).to_numpy()
        b = truncated.dataset[name].to_numpy()
        assert np.array_equal(a, b, equal_nan=True), name


def test_covariance_operator_at_a_date(fitted):
    cov = fitted.covariance()
    assert cov.n_factors <= len(fitted.factors)
    assert np.isfinite(cov.specific_var.to_numpy()).all()
    book = fitted.dataset["market_cap"].isel(date=-1).sel(stock=list(cov.stocks))
    vol = cov.volatility((book / book.sum()).to_series())
    assert 0.002 < float(vol) < 0.05  # a daily vol
    earlier = fitted.covariance(fitted.dates[400])
    assert earlier.date == fitted.dates[400]


def test_save_load_round_trip(tmp_path, fitted):
    for suffix in [".nc", ".zarr"]:
        path = tmp_path / f"model{suffix}"
        rm.save(fitted, path)
        back = rm.load(path)
        assert isinstance(back, rm.FittedFactorModel)
        np.testing.assert_array_equal(back.factor_returns.to_numpy(), fitted.factor_returns.to_numpy())
        w = np.ones(fitted.covariance().n_stocks)
        np.testing.assert_allclose(back.covariance().variance(w), fitted.covariance().variance(w), rtol=1e-14)


def test_result_api_round_trip_and_summary(tmp_path, world, fitted):
    assert isinstance(fitted, rm_results.Result) and fitted.kind == "fitted_factor_model"
    back = rm.load(rm.save(fitted, tmp_path / "m.nc"))
    assert type(back) is rm.FittedFactorModel
    for name in ("factor_returns", "residuals", "r2", "specific_var", "factor_cov", "style_exposure"):
        np.testing.assert_array_equal(back.dataset[name].to_numpy(), fitted.dataset[name].to_numpy())
    assert back.settings == fitted.settings
    text = fitted.summary()
    assert "fitted_factor_model" in text.splitlines()[0]
    assert f"{world.sizes['date']} dates" in text and f"{world.sizes['stock']} stocks" in text
    assert f"mean R² {np.nanmean(fitted.r2.to_numpy()):.3f}" in text
    assert repr(fitted) == text and back.summary() == text
    other = fitted.to_dataset().copy()
    other.attrs["riskmodel_kind"] = "fitted_statistical_model"
    with pytest.raises(rm.ModelFileError, match="riskmodel_kind='fitted_statistical_model'"):
        rm.FittedFactorModel.from_dataset(other)
    with pytest.raises(rm.ModelFileError, match=r"lacks the variable\(s\) \['r2'\]"):
        rm.FittedFactorModel.from_dataset(fitted.to_dataset().drop_vars("r2"))


def test_forecast_settings_follow_the_stages_rules():
    """One declared rule per forecast setting: the model refuses what its stage would refuse."""
    from riskmodel.covariance.settings import FACTOR_DEFAULTS, SPECIFIC_PARAMETERS
    from riskmodel.models.settings import FORECAST_PARAMETERS

    assert FORECAST_PARAMETERS["specific_half_life"] is SPECIFIC_PARAMETERS["half_life"]
    for name in ("specific_half_life", "vra_half_life"):
        with pytest.raises(rm.InvalidParameterError, match=f"{name}=inf"):
            rm.FactorRiskModel(**{name: np.inf})
        with pytest.raises(rm.InvalidParameterError, match=f"{name}=inf"):
            rm.TimeSeriesFactorModel(**{name: np.inf})
        with pytest.raises(rm.InvalidParameterError, match=f"{name}=inf"):
            rm.StatisticalFactorModel(**{name: np.inf})
    from riskmodel.covariance.specific import specific_settings

    with pytest.raises(rm.InvalidParameterError, match="half_life=inf"):
        specific_settings(half_life=np.inf)
    # an infinite correlation half-life (equal weights) is valid for the model as for the stage
    assert rm.FactorRiskModel(corr_half_life=np.inf).corr_half_life == np.inf
    assert rm.FactorRiskModel().vol_half_life == FACTOR_DEFAULTS["vol_half_life"]


def test_bad_requests(world, fitted):
    with pytest.raises(rm.PanelError, match="not in the model"):
        fitted.covariance("1999-01-04")
    with pytest.raises(rm.PanelError, match="no factor covariance forecast"):
        fitted.covariance(fitted.dates[3])
    with pytest.raises(rm.InvalidParameterError, match="vol_half_life"):
        rm.FactorRiskModel(vol_half_life=-3)
    with pytest.raises(rm.InvalidParameterError, match="lag"):
        rm.FactorRiskModel(lag=0)
    with pytest.raises(rm.MissingVariableError, match="'quality'"):
        rm.FactorRiskModel(styles=["size", "quality"]).fit(world)
    factor_only = rm.FactorRiskModel(covariance=False, progress=False).fit(world)
    with pytest.raises(rm.MissingVariableError, match="covariance=False"):
        factor_only.covariance()


def test_fixed_styles_are_used_as_given(world):
    member = (world["stock"].astype(str).str.slice(1).astype(int) % 7 == 0).astype(float)
    panel = world.assign(club=member.broadcast_like(world["returns"]).transpose("date", "stock"))
    fit = rm.FactorRiskModel(fixed_styles=["club"], covariance=False, progress=False).fit(panel)
    assert "club" in fit.factors
    np.testing.assert_array_equal(fit.dataset["style_exposure"].sel(style="club").isel(date=10), member)


def test_bias_statistics_on_known_truth():
    """METHODS §6: random and optimised portfolios are calibrated on a world the model spans."""
    panel = rm.simulate(n_stocks=400, n_days=1000, seed=5, specific_tails="gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        fit = rm.FactorRiskModel(eigen_sims=100, progress=False).fit(panel)
    bias = rm.bias_statistics(fit, ["random", "optimised", "pure_factors"], start=fit.dates[500], n_random=50, n_optimised=30)
    table = bias.by_family()
    assert 0.93 <= table.loc["random", "mean_bias"] <= 1.07
    assert 0.93 <= table.loc["optimised", "mean_bias"] <= 1.07
    monthly = rm.bias_statistics(fit, ["random"], start=fit.dates[500], horizon=21, n_random=50)
    assert 0.85 <= monthly.by_family().loc["random", "mean_bias"] <= 1.15


# --- issue 17: a fit that produces no usable forecast is an error that says why ---------------


@pytest.fixture(scope="module")
def small_world():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        return rm.simulate(n_stocks=60, n_days=120, seed=3, n_industries=4)


@pytest.mark.parametrize("bad", ["size", ("size",), 3])
@pytest.mark.parametrize("setting", ["styles", "fixed_styles"])
def test_a_name_list_must_be_a_list_of_names(setting, bad):
    """A bare str is refused, not split into letters; the message names the setting and the value."""
    with pytest.raises(rm.InvalidParameterError, match=setting) as info:
        rm.FactorRiskModel(**{setting: bad if bad != ("size",) else ["size", 3]})
    if bad == "size":
        assert "'size'" in str(info.value) and "[" in str(info.value)


def test_a_single_style_given_as_a_list_fits(small_world):
    fit = rm.FactorRiskModel(styles=["size"], covariance=False, progress=False).fit(small_world)
    assert [f for f in fit.factors if f in ("size", "value", "momentum")] == ["size"]


@pytest.mark.parametrize("given, name", [(None, "NoneType"), ("frame", "DataFrame"), ("returns", "DataArray")])
def test_fit_of_a_non_panel_names_the_type(small_world, given, name):
    obj = {None: None, "frame": small_world[["returns"]].to_dataframe(), "returns": small_world["returns"]}[given]
    with pytest.raises(rm.DimensionError, match=rf"got {name}.*panel_from_long"):
        rm.FactorRiskModel(progress=False).fit(obj)
    with pytest.raises(rm.DimensionError, match=rf"fit_fundamental.*got {name}"):
        fit_fundamental(obj, {})


def _fit(panel, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rm.RiskModelWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return rm.FactorRiskModel(progress=False, **settings).fit(panel)


@pytest.mark.parametrize("edit, words", [
    (lambda p: p.assign(value=p["value"] * 0 + 1.5), ["style 'value'", "constant"]),
    (lambda p: p.assign(value=p["value"] * np.nan), ["style 'value'", "no value"]),
    (lambda p: p.isel(stock=[0]), ["1 stock", "at least 5 stocks"]),
    (lambda p: p.isel(date=[5]), ["1 date", "lag + 1 = 2"]),
    (lambda p: p.isel(date=slice(0, 30)), ["needs 42 dates", "43 days", "has 30 days"]),
    (lambda p: p.assign(returns=p["returns"] * np.nan), ["returns", "no value"]),
], ids=["constant-style", "all-nan-style", "single-stock", "single-day", "30-days", "returns-all-nan"])
def test_a_fit_without_a_usable_forecast_says_why(small_world, edit, words):
    with pytest.raises(rm.InsufficientDataError) as info:
        _fit(edit(small_world.copy(deep=True)))
    for word in words:
        assert word in str(info.value)


def test_a_constant_fixed_style_is_named(small_world):
    panel = small_world.assign(club=small_world["returns"] * 0.0)
    with pytest.raises(rm.InsufficientDataError, match="fixed style 'club' is constant"):
        _fit(panel, fixed_styles=["club"])


def test_a_style_constant_on_some_dates_only_is_fitted(small_world):
    """Only a style that never varies is an error; a constant date is skipped as before."""
    value = small_world["value"].copy()
    value[10:20] = 1.0
    fit = _fit(small_world.assign(value=value), covariance=False)
    assert fit.factor_returns.isel(date=slice(30, 40)).notnull().all()


def test_the_forecast_history_needed_follows_the_factor_count(small_world):
    """43 days (42 dates of factor returns + lag 1) is the shortest panel with a forecast; one
    day less is an error; covariance=False needs no history."""
    fit = _fit(small_world.isel(date=slice(0, 43)))
    assert np.isfinite(fit.factor_cov.isel(date=-1).values).any()
    with pytest.raises(rm.InsufficientDataError, match="has 42 days"):
        _fit(small_world.isel(date=slice(0, 42)))
    short = _fit(small_world.isel(date=slice(0, 30)), covariance=False)
    assert short.factor_returns.sizes["date"] == 30


def test_no_fitted_date_is_an_error(small_world):
    """Every cross-section skipped (a style missing for every stock on every date but one
    stock, so neither constant nor empty per check): no factor return, an error."""
    value = small_world["value"].copy()
    value[:] = np.nan
    value[:, 0] = 1.0
    value[:, 1] = 2.0  # varies, but two stocks with a value leave the regression rank-deficient
    panel = small_world.assign(value=value)
    with pytest.raises(rm.InsufficientDataError, match="no date of the 120 could be fitted"):
        _fit(panel, impute=False)


def test_hybrid_k_must_be_below_the_stocks(small_world):
    with pytest.raises(rm.InvalidParameterError, match=r"k=60 .*statistical_factors.*\(60\)"):
        rm.FactorRiskModel(statistical_factors=60, progress=False).fit(small_world)
    with pytest.raises(rm.DimensionError, match="hybrid_model.*got NoneType"):
        hybrid_model(None, 2)


# ----------------------------------------------------------------------------------------
# horizons (USE4S / USE4L presets)
# ----------------------------------------------------------------------------------------


def test_horizon_presets_and_explicit_overrides():
    from riskmodel.models.settings import HORIZONS

    short, long = rm.FactorRiskModel(), rm.FactorRiskModel(horizon="long")
    for name, value in HORIZONS["long"].items():
        assert getattr(long, name) == value
        assert getattr(short, name) == HORIZONS["short"][name]
    assert (long.vol_half_life, long.specific_half_life, long.vra_half_life) == (252, 252, 168)
    mixed = rm.FactorRiskModel(horizon="long", vol_half_life=84)  # explicit wins, even at the short value
    assert (mixed.vol_half_life, mixed.specific_half_life) == (84, 252)
    again = rm.FactorRiskModel(**mixed.get_params())
    assert again.get_params() == mixed.get_params()
    with pytest.raises(rm.InvalidParameterError, match="horizon='medium'"):
        rm.FactorRiskModel(horizon="medium")


def test_long_horizon_fit_equals_its_explicit_half_lives_and_moves_less():
    panel = rm.simulate(n_stocks=120, n_days=500, seed=11, n_industries=4)
    long = rm.FactorRiskModel(horizon="long", eigen_sims=0, progress=False).fit(panel)
    explicit = rm.FactorRiskModel(vol_half_life=252, vra_half_life=168, specific_half_life=252,
                                  specific_vra_half_life=168, eigen_sims=0, progress=False).fit(panel)
    np.testing.assert_array_equal(long.factor_cov.values, explicit.factor_cov.values)
    np.testing.assert_array_equal(long.specific_var.values, explicit.specific_var.values)
    short = rm.FactorRiskModel(eigen_sims=0, progress=False).fit(panel)

    def day_to_day(fit):  # mean absolute daily change of log market vol over the forecast days
        vol = np.sqrt(fit.factor_cov.sel(factor="market", factor_="market").values)
        vol = np.log(vol[np.isfinite(vol)])
        return float(np.mean(np.abs(np.diff(vol))))

    assert day_to_day(long) < 0.6 * day_to_day(short)
    assert long.settings["horizon"] == "long"


def test_fit_fundamental_takes_the_horizon_too():
    from riskmodel.models.pipeline import model_settings

    settings = model_settings("fit_fundamental", {"horizon": "long", "specific_half_life": 63})
    assert (settings["vol_half_life"], settings["specific_half_life"]) == (252, 63)


def test_for_construction_is_the_named_setting_and_explicit_settings_override():
    from riskmodel.models.settings import CONSTRUCTION_SETTINGS

    model = rm.FactorRiskModel.for_construction(styles=["size"])
    params = model.get_params()
    for name, value in CONSTRUCTION_SETTINGS.items():
        assert params[name] == value, name
    assert params["styles"] == ["size"]
    assert params["eigen_sims"] == 0 and params["statistical_factors"] == 10 and params["corr_standardise"] is True
    override = rm.FactorRiskModel.for_construction(statistical_factors=2, corr_standardise=False)
    assert override.statistical_factors == 2 and override.corr_standardise is False
    assert override.vol_half_life == CONSTRUCTION_SETTINGS["vol_half_life"]
    # a horizon fills only what the preset leaves open: the preset's half-lives are explicit
    long = rm.FactorRiskModel.for_construction(horizon="long").get_params()
    assert long["vol_half_life"] == CONSTRUCTION_SETTINGS["vol_half_life"]
    assert long["specific_half_life"] == 252


@pytest.mark.filterwarnings("ignore::riskmodel.errors.SingularDateWarning")
def test_for_construction_fits_a_hybrid_without_eigen_adjustment():
    panel = rm.simulate(n_stocks=120, n_days=420, seed=3, hidden=1)
    fit = rm.FactorRiskModel.for_construction(styles=["size"], statistical_factors=2, progress=False).fit(panel)
    assert [str(f) for f in fit.factors][-2:] == ["stat1", "stat2"]
    from riskmodel.models.settings import CONSTRUCTION_SETTINGS

    explicit = {**CONSTRUCTION_SETTINGS, "statistical_factors": 2}
    plain = rm.FactorRiskModel(styles=["size"], progress=False, **explicit).fit(panel)
    np.testing.assert_array_equal(fit.factor_cov.to_numpy(), plain.factor_cov.to_numpy())
    default = rm.FactorRiskModel(styles=["size"], statistical_factors=2, progress=False).fit(panel)
    assert not np.allclose(fit.factor_cov.to_numpy(), default.factor_cov.to_numpy(), equal_nan=True)
