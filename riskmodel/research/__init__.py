"""Floor 6, research on a signal: transforms (``signal``), its factor by cross-sectional
regression (``factor_from_signal``), quantile portfolios (``portfolios``) and alpha tests
and attribution against known factor lists (``alpha``)."""
