"""The structured covariance operator ``Σ = B Σ_f Bᵀ + D`` of one date, never N×N.

:class:`StructuredCovariance` holds the exposures ``B (N×m)``, the factor covariance
``F = Σ_f (m×m)`` and the specific variances ``d (N)`` of one forecast date. Everything a
risk manager asks of a covariance matrix — the variance of a book or of a thousand books,
its split into factor and specific risk, Euler contributions per factor and per stock,
``Σx``, ``Σ⁻¹x``, ``log|Σ|``, betas, samples of returns — costs O(N m) per portfolio and
O(N m²) once, through ``F = L Lᵀ`` and ``B̃ = B L`` (METHODS §9):

* ``σ²(w) = ‖B̃ᵀ w‖² + Σ_n d_n w_n²`` (batched: one GEMM ``W B̃`` for P portfolios);
* ``Σ x = B (F (Bᵀ x)) + d ∘ x``;
* ``Σ⁻¹ x = D⁻¹x − D⁻¹ B̃ M⁻¹ B̃ᵀ D⁻¹ x`` with ``M = I + B̃ᵀ D⁻¹ B̃`` (Woodbury; M is SPD
  with eigenvalues ≥ 1, so its Cholesky is stable and F is never inverted);
* ``log|Σ| = Σ log d_n + 2 Σ log diag chol(M)`` (matrix determinant lemma).

When most columns of ``B`` are indicators — the market column of ones and one-hot
industries, as in every model :class:`~riskmodel.FactorRiskModel` fits — products with ``B``
go through :mod:`riskmodel.covariance.exposure_groups`: a lookup by group code plus the few
dense (style) columns, one fused numba pass per pair of portfolios. Same numbers, summed in
another order; ~1 + k_styles instead of m multiply-adds per stock.

Weights come in as ndarrays, pandas objects or DataArrays; labelled ones are aligned on
``stock`` by id. A weight on a stock the operator does not know is an
:class:`~riskmodel.errors.AlignmentError`; a stock of the operator that the weights do not
mention holds zero weight (the book is a sub-portfolio of the operator's universe, it is
not dropped from anything). Only :meth:`StructuredCovariance.to_dense` forms N×N.

The package, one concept per module:

* :mod:`~riskmodel.covariance.structured.operator`: :class:`StructuredCovariance`
  (construction, labels, ``Σx``, ``Σ⁻¹x``, ``log|Σ|``, samples, dense form, Dataset form);
* :mod:`~riskmodel.covariance.structured.risk`: its portfolio-risk methods;
* :mod:`~riskmodel.covariance.structured.decomposition`: :class:`RiskDecomposition`;
* :mod:`~riskmodel.covariance.structured.weights`: aligning weights on the stocks;
* :mod:`~riskmodel.covariance.structured.products`: the products on ndarray rows;
* :mod:`~riskmodel.covariance.structured.passes`: blocked, threaded elementwise passes;
* :mod:`~riskmodel.covariance.structured.linear_operator`: the scipy view;
* :mod:`~riskmodel.covariance.structured.labels` and
  :mod:`~riskmodel.covariance.structured.validation`: labels and input checks.
"""

from riskmodel.covariance.structured.decomposition import RiskDecomposition
from riskmodel.covariance.structured.linear_operator import StructuredLinearOperator
from riskmodel.covariance.structured.operator import DENSE_LIMIT, StructuredCovariance
from riskmodel.covariance.structured.validation import PSD_RTOL, SYMMETRY_RTOL
from riskmodel.covariance.structured.weights import WeightsLike

__all__ = [
    "StructuredCovariance",
    "RiskDecomposition",
    "StructuredLinearOperator",
    "WeightsLike",
    "DENSE_LIMIT",
    "SYMMETRY_RTOL",
    "PSD_RTOL",
]
