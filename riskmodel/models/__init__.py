"""Floor 5, the model families that turn a panel into forecasts ``Σ = B Σ_f Bᵀ + D``.

From the bottom up (a module imports only those above it in this list):

``settings``
    The forecast settings every family shares (names, defaults and checks, read from
    :mod:`riskmodel.covariance.settings`).
``fitted``
    The fitted-model protocol (a :class:`riskmodel._results.Result`).
``fitted_factor``
    The fitted fundamental model.
``pipeline``
    The fundamental pipeline as a function, :func:`~riskmodel.models.pipeline.fit_fundamental`.
``loadings``
    What the time-series and statistical models share (dense loadings on a refit schedule).
``timeseries``, ``statistical``
    The time-series (given factor returns) and statistical (PCA) models.
``hybrid``
    A fundamental model with statistical factors of its residuals.
``chunked``
    The fundamental pipeline out of core, on dask.
``fundamental``
    The estimator :class:`~riskmodel.models.fundamental.FactorRiskModel`, which dispatches
    to ``pipeline``, ``hybrid`` or ``chunked``.
"""
