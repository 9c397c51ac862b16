"""Cleaning, neutralisation and the structured exposures of the risk model.

Three cross-sectional operations, each applied independently to every date (row t uses
only data of day t, so truncating a panel after day t leaves every output dated <= t
bit-identical):

* :func:`clean` (:mod:`.cleaning`) — USE4 standardisation with tiered winsorising
  (METHODS §1): a cap-weighted mean, an equal-weighted standard deviation, data errors
  beyond ``data_error`` sigma set to NaN, outliers clipped at ``winsor`` sigma,
  re-standardised.
* :func:`neutralise` (:mod:`.neutralisation`) — the weighted least-squares residual of a
  characteristic on controls, industry dummies and a constant (centring is the
  constant-control case).
* :func:`build_exposures` (:mod:`.build`) — the risk model's exposures as a structured
  :class:`Exposures` (:mod:`.structured`: market intercept, integer industry codes, a
  dense style block), with missing style exposures imputed from industry + size (USE4
  data replacement).

Industry labels or codes become integer codes in :mod:`.industry`. Cleaning and the style
block of :func:`build_exposures` run in numba kernels (:mod:`riskmodel.kernels.clean`);
this package itself does not import numba.
"""

from __future__ import annotations

from riskmodel.exposures.build import build_exposures
from riskmodel.exposures.cleaning import clean
from riskmodel.exposures.neutralisation import neutralise
from riskmodel.exposures.structured import Exposures

__all__ = ["clean", "neutralise", "build_exposures", "Exposures"]
