"""Floor 4, the model families that turn a panel into forecasts ``Σ = B Σ_f Bᵀ + D``.

``fitted`` holds what every family shares (the fitted-model protocol, forecast settings);
``fundamental`` the characteristic-based model, ``timeseries`` the loadings estimated from
given factor returns, ``statistical`` the PCA model, ``hybrid`` a fundamental model with
statistical factors of its residuals, and ``chunked`` the same fundamental pipeline out of
core on dask.
"""
