"""Floor 4, the covariance forecasts: ``factor`` (Σ_f), ``specific`` (D), their declared
``settings``, and the operator ``structured`` that assembles ``Σ = B Σ_f Bᵀ + D`` for one
date without forming it (``exposure_groups`` for market and industry columns)."""
