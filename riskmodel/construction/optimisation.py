"""Portfolios from a structured covariance: Woodbury for the unconstrained ones, cvxpy in
factor form for the constrained ones.

* :func:`min_variance` / :func:`sigma_inverse_alpha` — ``Σ⁻¹1`` and ``Σ⁻¹α`` through
  :meth:`StructuredCovariance.min_variance_weights` (O(N m²), nothing N×N).
* :func:`long_only_min_variance` — the long-only fully invested minimum-variance portfolio
  by an active set of Woodbury solves (no QP solver: milliseconds at N = 5,000);
* :func:`optimise` — long-only and constrained problems (budget, bounds, factor-exposure
  limits, tracking error to a benchmark, turnover) solved by cvxpy with the risk written in
  factor form ``wᵀΣw = ‖Gᵀw‖² + Σ d w²``, ``G = B L_f`` (``L_f Lᵀ_f = Σ_f``): the problem
  has ``N + m`` variables' worth of structure, never an ``N × N`` matrix.
* :func:`factor_form` — the same ``(G, d)`` split of a dense covariance (eigenvalues
  above the smallest), so a dense peer estimator goes through the same solver.
* :class:`SkfolioCovariance` — a skfolio covariance estimator that returns a fitted risk
  model's forecast, so any skfolio optimiser can use it:
  ``EmpiricalPrior(covariance_estimator=SkfolioCovariance(fit))``.

cvxpy is optional (``pip install riskmodel[construction]``); it is imported inside the
functions that need it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from riskmodel.errors import InvalidParameterError, PanelError

__all__ = [
    "min_variance",
    "long_only_min_variance",
    "active_set_long_only",
    "sigma_inverse_alpha",
    "factor_form",
    "optimise",
    "solve_factor_qp",
    "OptimisationError",
    "SkfolioCovariance",
]

#: Interior-point tolerances used with CLARABEL unless ``solver_options`` are given.
CLARABEL_TOLERANCES = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8}
#: OSQP settings used unless ``solver_options`` are given: ADMM to 1e-7 (enough to find the
#: active set; tighter only adds iterations: 675 against 925 at 1e-9 for N = 5,000), then
#: *polishing* (a solve on the guessed active set), which makes the weights exact to about
#: 1e-12 when it succeeds; when it does not, the problem is solved again with CLARABEL.
OSQP_SETTINGS = {"eps_abs": 1e-7, "eps_rel": 1e-7, "polishing": True, "max_iter": 200_000}

CVXPY_HINT = "portfolio construction with constraints needs cvxpy: pip install riskmodel[construction]"


class OptimisationError(PanelError):
    """The solver did not return an optimal solution (infeasible constraints, solver failure)."""


def _cvxpy() -> Any:
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - exercised only without cvxpy
        raise ImportError(CVXPY_HINT) from exc
    return cp


def min_variance(cov: Any) -> xr.DataArray:
    """Unconstrained global minimum-variance weights ``Σ⁻¹1 / 1ᵀΣ⁻¹1`` (sum to one).

    Parameters
    ----------
    cov : StructuredCovariance

    Returns
    -------
    DataArray (stock,)
    """
    return cov.min_variance_weights()


def sigma_inverse_alpha(cov: Any, alpha: Any, *, normalise: str = "gross") -> Any:
    """``Σ⁻¹α`` scaled by ``normalise`` (see :meth:`StructuredCovariance.min_variance_weights`)."""
    return cov.min_variance_weights(alpha, normalise=normalise)


def _gmv_woodbury(G: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``Σ⁻¹1 / 1ᵀΣ⁻¹1`` for ``Σ = G Gᵀ + diag(d)`` by Woodbury (O(N k²))."""
    import scipy.linalg

    inv_d = 1.0 / d
    Gd = G * inv_d[:, None]
    M = np.eye(G.shape[1]) + G.T @ Gd
    x = inv_d - Gd @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(M), Gd.sum(axis=0))
    return x / x.sum()


def long_only_min_variance(cov: Any, *, max_iter: int = 100, tol: float = 1e-10) -> xr.DataArray:
    """Fully invested long-only minimum-variance weights by an active set on the operator.

    Each step is an unconstrained minimum-variance solve (Woodbury, O(N m²)) on the free
    stocks: the stocks with negative weights leave the free set; when none is negative, the
    KKT condition of the excluded stocks (``(Σw)_i ≥ (Σw)_free``, the marginal variance of
    adding one) is checked and its violators come back. Nothing N×N is formed and no QP
    solver is needed; the answer is the one :func:`optimise` (``long_only=True``) finds.

    Parameters
    ----------
    cov : StructuredCovariance or ndarray (N, N)
        A dense matrix goes through :func:`factor_form` first.
    max_iter : int
        Active-set steps before giving up.
    tol : float
        Relative tolerance of the KKT check.

    Returns
    -------
    DataArray (stock,)

    Raises
    ------
    OptimisationError
        No KKT point within ``max_iter`` steps (use :func:`optimise`).
    """
    G, d = factor_form(cov)
    w = active_set_long_only(G, d, max_iter=max_iter, tol=tol)
    if w is None:
        raise OptimisationError(f"long_only_min_variance: no KKT point in {max_iter} active-set steps; use optimise(cov, long_only=True)")
    stocks = np.asarray(cov.stocks) if hasattr(cov, "stocks") else np.arange(d.size)
    return xr.DataArray(w, dims=("stock",), coords={"stock": stocks}, name="weights")


def active_set_long_only(G: np.ndarray, d: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10) -> np.ndarray | None:
    """The array core of :func:`long_only_min_variance` for ``Σ = G Gᵀ + diag(d)``;
    None when it does not reach a KKT point in ``max_iter`` steps."""
    n = d.size
    free = np.ones(n, dtype=bool)
    seen: set[bytes] = set()
    for _ in range(max_iter):
        key = np.packbits(free).tobytes()
        if key in seen:
            return None  # cycling
        seen.add(key)
        w_free = _gmv_woodbury(G[free], d[free])
        if (w_free < 0).any():
            idx = np.flatnonzero(free)
            free[idx[w_free < 0]] = False
            continue
        w = np.zeros(n)
        w[free] = w_free
        grad = G @ (G.T @ w) + d * w
        level = float(w @ grad)  # = (Σw)_i on every free stock
        violators = (~free) & (grad < level * (1.0 - tol))
        if not violators.any():
            return w
        free |= violators
    return None


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """``L`` with ``L Lᵀ = matrix`` for a symmetric PSD matrix (eigen square root, so a
    singular factor covariance is fine)."""
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return vecs * np.sqrt(np.maximum(vals, 0.0))


def factor_form(cov: Any, *, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """``(G, d)`` with ``Σ = G Gᵀ + diag(d)``.

    Parameters
    ----------
    cov : StructuredCovariance or ndarray (N, N)
        A structured covariance gives ``G = B L_f`` (N × m) and its specific variances; a
        dense symmetric PSD matrix gives ``d = λ_min 1`` and ``G`` the eigenvectors with
        ``λ − λ_min > rtol · λ_max`` scaled by ``√(λ − λ_min)`` (a rank-``T`` shrinkage
        estimate of ``N > T`` stocks becomes a ``T``-factor problem, exactly).
    rtol : float
        Relative size below which an eigen-direction is dropped from ``G`` (dense only).

    Returns
    -------
    G : ndarray (N, k)
    d : ndarray (N,)
    """
    if hasattr(cov, "exposures") and hasattr(cov, "factor_cov"):
        b = np.asarray(cov.exposures.to_numpy(), dtype=np.float64)
        lf = _sqrt_psd(np.asarray(cov.factor_cov.to_numpy(), dtype=np.float64))
        return b @ lf, np.asarray(cov.specific_var.to_numpy(), dtype=np.float64).copy()
    sigma = np.asarray(cov, dtype=np.float64)
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise InvalidParameterError(f"factor_form: expected a StructuredCovariance or a square matrix, got shape {sigma.shape}")
    vals, vecs = np.linalg.eigh((sigma + sigma.T) / 2.0)
    floor = max(float(vals[0]), 0.0)
    excess = vals - floor
    keep = excess > rtol * max(float(vals[-1]), np.finfo(float).tiny)
    return vecs[:, keep] * np.sqrt(excess[keep]), np.full(sigma.shape[0], floor)


def _as_vector(value: Any, n: int, what: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    if np.isnan(arr).any():
        raise InvalidParameterError(f"optimise: {what} holds NaN")
    return arr


def solve_factor_qp(
    G: np.ndarray,
    d: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    risk_aversion: float = 1.0,
    budget: float | None = 1.0,
    lower: Any = None,
    upper: Any = None,
    exposures: np.ndarray | None = None,
    exposure_bounds: Sequence[tuple[int, float | None, float | None]] = (),
    benchmark: np.ndarray | None = None,
    tracking_error: float | None = None,
    previous: np.ndarray | None = None,
    max_turnover: float | None = None,
    dense: np.ndarray | None = None,
    solver: str | None = None,
    solver_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Solve ``min risk_aversion · wᵀΣw − αᵀw`` under the constraints, ``Σ = G Gᵀ + diag(d)``.

    The array-level core of :func:`optimise` (see there for the parameters).
    ``exposure_bounds`` are ``(column of exposures, lower, upper)`` on ``exposuresᵀ w``.
    ``solver`` None: OSQP (:data:`OSQP_SETTINGS`, polished; CLARABEL again when the
    polish fails) for a QP, CLARABEL when ``tracking_error`` makes it a cone program.
    ``solver_options`` are passed to ``problem.solve`` (default for CLARABEL:
    :data:`CLARABEL_TOLERANCES`, tighter than its defaults so two formulations of one
    problem agree to about 1e-7 in the weights).
    ``dense`` (N, N): write the risk as ``quad_form(w, dense)`` instead of the factor form
    (for tests and the benchmark: same problem, an N × N matrix in the solver).

    Returns
    -------
    ndarray (N,)
    """
    cp = _cvxpy()
    n = d.shape[0]
    if risk_aversion <= 0:
        raise InvalidParameterError(f"optimise: risk_aversion must be positive, got {risk_aversion!r}")
    # the objective is multiplied by a constant c (same optimum) so that the risk term is of
    # order one: daily variances of order 1e-4 are badly scaled for interior-point tolerances
    c = 1.0 / max(float(np.mean(d) + np.mean(np.einsum("ij,ij->i", G, G))), 1e-300)
    G_c = G * np.sqrt(c)
    sqrt_d = np.sqrt(np.maximum(d, 0.0) * c)
    w = cp.Variable(n)
    constraints = []

    def risk_terms(x: Any) -> list[Any]:
        """Pieces whose squared norms add up to ``c · xᵀΣx``: ``(G_cᵀx, √d_c ∘ x)``. The
        factor part is an auxiliary variable ``y = G_cᵀx`` so the solver sees a diagonal
        quadratic and m dense rows, never an N × N block."""
        if dense is not None:
            return []
        y = cp.Variable(G.shape[1])
        constraints.append(y == G_c.T @ x)
        return [y, cp.multiply(sqrt_d, x)]

    if dense is not None:
        risk = cp.quad_form(w, cp.psd_wrap(dense * c))
    else:
        y_w, spec_w = risk_terms(w)
        risk = cp.sum_squares(y_w) + cp.sum_squares(spec_w)
    objective = risk_aversion * risk
    if alpha is not None:
        objective = objective - c * (alpha @ w)
    if budget is not None:
        constraints.append(cp.sum(w) == budget)
    if lower is not None:
        constraints.append(w >= lower)
    if upper is not None:
        constraints.append(w <= upper)
    for column, lo, hi in exposure_bounds:
        x_k = exposures[:, column] @ w
        if lo is not None:
            constraints.append(x_k >= lo)
        if hi is not None:
            constraints.append(x_k <= hi)
    if tracking_error is not None:
        active = w - (0.0 if benchmark is None else benchmark)
        if dense is not None:
            constraints.append(cp.quad_form(active, cp.psd_wrap(dense * c)) <= c * tracking_error**2)
        else:
            constraints.append(cp.norm(cp.hstack(risk_terms(active)), 2) <= np.sqrt(c) * tracking_error)
    if max_turnover is not None:
        constraints.append(cp.norm(w - (0.0 if previous is None else previous), 1) <= max_turnover)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    # a QP (no second-order cone) goes to OSQP: at N = 5,000 its polished solution is
    # faster than CLARABEL's interior point (whose KKT system carries the m dense rows)
    chosen = solver or ("OSQP" if tracking_error is None else "CLARABEL")
    _solve(cp, problem, chosen, solver_options)
    if solver is None and chosen == "OSQP" and not _osqp_polished(problem):
        _solve(cp, problem, "CLARABEL", solver_options)
    if problem.status not in ("optimal", "optimal_inaccurate") or w.value is None:
        raise OptimisationError(f"optimise: no optimal solution (status {problem.status!r}); check that the constraints are feasible")
    return np.asarray(w.value, dtype=np.float64)


def _solve(cp: Any, problem: Any, solver: str, solver_options: Mapping[str, Any] | None) -> None:
    """``problem.solve`` with riskmodel's default settings of CLARABEL and OSQP unless
    ``solver_options`` are given; a solver failure is an :class:`OptimisationError`."""
    options = dict(solver_options or {})
    if not options:
        options = dict({"CLARABEL": CLARABEL_TOLERANCES, "OSQP": _osqp_settings()}.get(solver, {}))
    try:
        problem.solve(solver=solver, **options)
    except cp.error.SolverError as exc:
        raise OptimisationError(f"optimise: the solver failed ({exc})") from exc


def _osqp_settings() -> dict[str, Any]:
    """:data:`OSQP_SETTINGS` under the installed OSQP's names (``polish`` before 1.0)."""
    from importlib.metadata import version

    settings = dict(OSQP_SETTINGS)
    if int(version("osqp").split(".")[0]) < 1:
        settings["polish"] = settings.pop("polishing")
    return settings


def _osqp_polished(problem: Any) -> bool:
    """Whether OSQP's polishing step succeeded (its solution is then exact on its active set)."""
    stats = getattr(problem.solver_stats, "extra_stats", None)
    info = getattr(stats, "info", None)
    return problem.status == "optimal" and int(getattr(info, "status_polish", 0)) == 1


def _labelled(value: Any, stocks: np.ndarray, what: str) -> np.ndarray | None:
    """A per-stock input as an ndarray in the covariance's stock order (Series/DataArray
    aligned by label, missing stocks 0; a plain array taken as is)."""
    if value is None or np.isscalar(value):
        return value
    if isinstance(value, xr.DataArray):
        value = value.to_series()
    if hasattr(value, "reindex"):
        return np.asarray(value.reindex(stocks).fillna(0.0).to_numpy(), dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (stocks.size,):
        raise InvalidParameterError(f"optimise: {what} has shape {arr.shape}, expected ({stocks.size},)")
    return arr


def optimise(
    cov: Any,
    *,
    alpha: Any = None,
    risk_aversion: float = 1.0,
    long_only: bool = True,
    budget: float | None = 1.0,
    lower: Any = None,
    upper: Any = None,
    factor_bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    benchmark: Any = None,
    tracking_error: float | None = None,
    previous: Any = None,
    max_turnover: float | None = None,
    form: str = "factor",
    solver: str | None = None,
) -> xr.DataArray:
    """A constrained mean-variance / minimum-variance portfolio on a structured covariance.

    Minimises ``risk_aversion · wᵀΣw − αᵀw`` (``α`` None: minimum variance) with the
    risk in factor form ``‖(B L_f)ᵀw‖² + Σ d w²``.

    Parameters
    ----------
    cov : StructuredCovariance
    alpha : array-like (stock,), Series or DataArray, optional
        Expected returns (aligned by stock label; missing stocks 0).
    risk_aversion : float
    long_only : bool
        ``w ≥ 0`` (combined with ``lower`` by the larger bound).
    budget : float or None
        ``Σ w = budget``; None: no budget constraint.
    lower, upper : float or array-like (stock,), optional
        Bounds on each weight.
    factor_bounds : dict factor -> (lower, upper), optional
        Limits on the portfolio's factor exposures ``(Bᵀw)_k`` (None: that side open).
    benchmark : array-like (stock,), optional
        Weights the tracking error is measured against.
    tracking_error : float, optional
        ``√((w − b)ᵀΣ(w − b)) ≤ tracking_error`` (per period of the covariance).
    previous : array-like (stock,), optional
        Current holdings for the turnover limit (default: none held).
    max_turnover : float, optional
        ``‖w − previous‖₁ ≤ max_turnover``.
    form : {"factor", "dense"}
        ``"dense"`` writes ``quad_form(w, Σ)`` with the N×N matrix (tests and benchmarks).
    solver : str, optional
        cvxpy solver name. Default: OSQP with polishing for a quadratic program (falling
        back to CLARABEL when polishing fails), CLARABEL when a tracking-error limit makes
        it a cone program.

    Returns
    -------
    DataArray (stock,)

    Raises
    ------
    ImportError
        cvxpy is not installed (``pip install riskmodel[construction]``).
    OptimisationError
        No optimal solution (infeasible constraints or solver failure).
    InvalidParameterError
        Unknown form or factor, misshaped inputs.
    """
    if form not in ("factor", "dense"):
        raise InvalidParameterError(f"optimise: form must be 'factor' or 'dense', got {form!r}")
    stocks = np.asarray(cov.stocks)
    n = stocks.size
    G, d = factor_form(cov)
    lo = _as_vector(_labelled(lower, stocks, "lower"), n, "lower")
    if long_only:
        lo = np.zeros(n) if lo is None else np.maximum(lo, 0.0)
    hi = _as_vector(_labelled(upper, stocks, "upper"), n, "upper")
    bounds = []
    exposures = None
    if factor_bounds:
        exposures = np.asarray(cov.exposures.to_numpy(), dtype=np.float64)
        names = [str(f) for f in np.asarray(cov.factors)]
        for name, (f_lo, f_hi) in factor_bounds.items():
            if str(name) not in names:
                raise InvalidParameterError(f"optimise: factor_bounds names {name!r}, not a factor of the covariance ({names[:5]}...)")
            bounds.append((names.index(str(name)), f_lo, f_hi))
    weights = solve_factor_qp(
        G,
        d,
        alpha=_labelled(alpha, stocks, "alpha"),
        risk_aversion=risk_aversion,
        budget=budget,
        lower=lo,
        upper=hi,
        exposures=exposures,
        exposure_bounds=bounds,
        benchmark=_labelled(benchmark, stocks, "benchmark"),
        tracking_error=tracking_error,
        previous=_labelled(previous, stocks, "previous"),
        max_turnover=max_turnover,
        dense=cov.to_dense() if form == "dense" else None,
        solver=solver,
    )
    return xr.DataArray(weights, dims=("stock",), coords={"stock": stocks}, name="weights")


def _skfolio_base() -> type:
    from skfolio.moments import BaseCovariance

    return BaseCovariance


class SkfolioCovariance:
    """A skfolio covariance estimator returning a fitted risk model's forecast.

    ``EmpiricalPrior(covariance_estimator=SkfolioCovariance(fit))`` lets any skfolio
    optimiser (``MeanRisk``, ``HierarchicalRiskParity``, ...) use the model. ``fit(X)``
    takes the returns DataFrame (columns = stock ids, index = dates) skfolio passes and
    sets ``covariance_`` to ``fit.covariance(date).subset(X.columns).to_dense()`` at
    ``date`` (default: the last date of ``X``'s index, or the model's last date).

    Parameters
    ----------
    model : fitted model (``covariance(date)`` returning a StructuredCovariance)
    date : date-like, optional
        The rebalancing date; default the last index label of ``X``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        impl = _skfolio_class()
        return impl(*args, **kwargs)


_SKFOLIO_CLASS: list[type] = []


def _skfolio_class() -> type:
    """Build (once) the real skfolio subclass; skfolio is imported only when it is used."""
    if _SKFOLIO_CLASS:
        return _SKFOLIO_CLASS[0]
    base = _skfolio_base()

    class RiskModelCovariance(base):  # type: ignore[misc, valid-type]
        __doc__ = SkfolioCovariance.__doc__

        def __init__(self, model: Any = None, date: Any = None, nearest: bool = False) -> None:
            super().__init__(nearest=nearest)
            self.model = model
            self.date = date

        def fit(self, X: Any, y: Any = None, **fit_params: Any) -> "RiskModelCovariance":
            import pandas as pd

            if self.model is None:
                raise InvalidParameterError("SkfolioCovariance: pass a fitted risk model")
            if not isinstance(X, pd.DataFrame):
                raise InvalidParameterError("SkfolioCovariance.fit: X must be a DataFrame whose columns are the stock ids")
            date = self.date
            if date is None and isinstance(X.index, pd.DatetimeIndex) and len(X.index):
                date = X.index[-1]
            cov = self.model.covariance(date)
            ids = [str(c) for c in X.columns]
            sub = cov.subset(ids)
            self.n_features_in_ = len(ids)
            self.feature_names_in_ = np.asarray(ids, dtype=object)
            self.location_ = np.asarray(X.mean(axis=0), dtype=np.float64)
            self._set_covariance(sub.to_dense())
            return self

    _SKFOLIO_CLASS.append(RiskModelCovariance)
    return RiskModelCovariance
