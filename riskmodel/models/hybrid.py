"""The hybrid model: the fundamental model plus statistical factors of its residuals.

:func:`hybrid_model` fits the fundamental pipeline (:func:`~riskmodel.models.pipeline.fit_fundamental`),
extracts ``k`` factors from its residuals by the rolling PCA of the statistical model
(:func:`~riskmodel.models.statistical.pca_loadings`) and refits the pipeline with their
loadings as exposures used as given (``fixed_styles``). ``FactorRiskModel(statistical_factors=k)``
dispatches here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from riskmodel._params import pos_int
from riskmodel.errors import InvalidParameterError
from riskmodel.models.fitted_factor import FittedFactorModel
from riskmodel.models.loadings import loading_rows, require_dataset
from riskmodel.models.pipeline import fit_fundamental, model_settings
from riskmodel.models.statistical import PCALoadings, pca_loadings

__all__ = ["hybrid_model"]


def hybrid_model(
    panel: xr.Dataset,
    k: int,
    *,
    window: int = 252,
    min_obs: int = 126,
    refit_every: int = 21,
    coverage: float = 0.8,
    prefix: str = "stat",
    **factor_model_kwargs: Any,
) -> FittedFactorModel:
    """The fundamental model plus ``k`` statistical factors extracted from its residuals.

    Parameters
    ----------
    panel : Dataset (date, stock)
        As for :class:`riskmodel.FactorRiskModel`.
    k : int
        Statistical factors to add: an integer >= 1 and below the number of stocks.
    window, min_obs, refit_every, coverage :
        Rolling PCA of the residuals (see :func:`~riskmodel.models.statistical.pca_loadings`): window in days, days of
        residual history before the first extraction, days between extractions, coverage
        a stock needs in the window.
    prefix : str
        The added exposures are panel variables ``f"{prefix}1" …`` (names must be free).
    **factor_model_kwargs :
        Settings of :class:`riskmodel.FactorRiskModel` (``styles``, ``industry``, …, and
        ``progress``); user ``fixed_styles`` are kept and the statistical exposures appended.

    Returns
    -------
    FittedFactorModel
        With ``k`` extra style factors ``stat1 … statk``.

    Notes
    -----
    Two passes. (1) The fundamental model is fitted without forecasts; its residuals
    ``u (date, stock)`` are decomposed by a rolling PCA (standardised residuals, window
    ≤ t, refitted every ``refit_every`` days, carried forward, Procrustes-aligned), giving
    loadings in return units ``σ_n v_n`` for each date, standardised across stocks (mean 0,
    sd 1) like a style. (2) The model is refitted with these loadings as ``fixed_styles``:
    the exposure known at the close of ``t`` uses residuals ≤ t and explains the returns of
    ``t + 1`` (``lag=1``), so there is no look-ahead. Dates before the first extraction
    have no exposure to the statistical factors: their cross-sections are skipped (NaN
    factor returns and residuals, with a ``SingularDateWarning``), so the hybrid's history
    starts ``min_obs`` days after the fundamental model's.

    When it helps: when returns share a driver the characteristics do not name — an oil
    price, a regional or thematic block, a crowded trade — the fundamental residuals of
    its members co-move (the audit sees it as a residual cluster) and the fundamental
    model under-forecasts the risk of portfolios loaded on it. A residual PCA factor picks
    it up without a name. When the characteristics already span the common variation, the
    residual spectrum is noise and the extra factors add estimation error only (check with
    :func:`riskmodel.audit_residuals` first: ``k`` = the number of significant components).

    Examples
    --------
    >>> import riskmodel as rm
    >>> panel = rm.simulate(n_stocks=200, n_days=400, seed=1, hidden=1)
    >>> fit = hybrid_model(panel, 1, window=126, min_obs=63, covariance=False)  # doctest: +SKIP
    >>> fit.factors[-1]  # doctest: +SKIP
    'stat1'
    """
    if not pos_int(k):
        raise InvalidParameterError(f"hybrid_model: k={k!r} is invalid; expected an integer >= 1")
    require_dataset(panel, "hybrid_model")
    n_stocks = panel.sizes.get("stock", 0)
    if k >= n_stocks:
        raise InvalidParameterError(
            f"hybrid_model: k={k} statistical factors (statistical_factors) must be below the number of stocks "
            f"({n_stocks}); lower k"
        )
    names = [f"{prefix}{j + 1}" for j in range(k)]
    clash = [n for n in names if n in panel]
    if clash:
        raise InvalidParameterError(
            f"hybrid_model: the panel already has variable(s) {clash}; pass another prefix= for the statistical exposures"
        )
    progress = factor_model_kwargs.pop("progress", None)
    settings = model_settings("hybrid_model", factor_model_kwargs)
    base = fit_fundamental(panel, {**settings, "covariance": False}, progress=progress)
    residuals = base.residuals.transpose("date", "stock").to_numpy()
    pca = pca_loadings(
        residuals, n_factors=k, window=window, min_obs=min_obs, refit_every=refit_every, coverage=coverage
    )
    exposures = _standardised_exposures(pca, residuals.shape[0])
    extra = {name: (("date", "stock"), exposures[:, :, j]) for j, name in enumerate(names)}
    augmented = panel.assign(extra)
    settings["fixed_styles"] = [*settings["fixed_styles"], *names]
    return fit_fundamental(augmented, settings, progress=progress)


def _standardised_exposures(pca: PCALoadings, n_dates: int) -> np.ndarray:
    """(date, stock, k) exposures in force at each close, each refit's columns standardised."""
    loadings = pca.loadings.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN refits before the first extraction
        mean = np.nanmean(loadings, axis=1, keepdims=True)
        sd = np.nanstd(loadings, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        loadings = (loadings - mean) / sd
    position = loading_rows(pca.schedule, n_dates, shift=0)
    out = loadings[np.maximum(position, 0)]
    out[position < 0] = np.nan
    return out
