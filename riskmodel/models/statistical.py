"""Statistical (PCA) factor risk models.

``StatisticalFactorModel(...).fit(panel)`` extracts factors from the returns themselves:
on a schedule of refit dates, a truncated (randomized) SVD of the standardised returns of a
trailing window gives loadings ``B``; the number of factors comes from an information
criterion (Bai–Ng IC_p2 or the Ahn–Horenstein eigenvalue ratio) when not given. Factor
returns are the daily cross-sectional OLS of the returns on the loadings known the day
before, so factor returns and residuals exist every day with no look-ahead, and the
forecasts are those of the fundamental model (:func:`riskmodel.models.loadings.forecasts`).

:func:`riskmodel.models.hybrid.hybrid_model` adds ``k`` factors extracted by the same rolling
PCA from the residuals of a fundamental model to that model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from riskmodel._params import ParameterTable, StageProgress, pos_int
from riskmodel.errors import InsufficientDataError, InvalidParameterError
from riskmodel.models.loadings import (
    LoadingsFittedModel,
    build_dataset,
    cap_array,
    forecasts,
    loading_rows,
    refit_schedule,
    require_dataset,
    returns_array,
)
from riskmodel.models.settings import FORECAST_PARAMETERS, ForecastEstimator

__all__ = [
    "StatisticalFactorModel",
    "FittedStatisticalModel",
    "choose_n_factors",
    "pca_loadings",
    "cross_section_factor_returns",
    "PCALoadings",
]

MODEL_KIND = "fitted_statistical_model"
CRITERIA = ("bai_ng", "ahn_horenstein")


def _n_factors_ok(value: Any) -> bool:
    return value is None or pos_int(value)


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


_PARAMETERS: ParameterTable = {
    "n_factors": (_n_factors_ok, "an integer >= 1, or None to choose it by the criterion"),
    "criterion": (lambda v: v in CRITERIA, f"one of {CRITERIA}"),
    "max_factors": (pos_int, "an integer >= 1 (largest number of factors the criterion considers)"),
    "window": (lambda v: pos_int(v) and v >= 10, "an integer >= 10 (days in the trailing window)"),
    "min_obs": (lambda v: pos_int(v) and v >= 10, "an integer >= 10 (days before the first extraction)"),
    "refit_every": (pos_int, "an integer >= 1 (days between extractions)"),
    "coverage": (_fraction, "a fraction in (0, 1] of the window's days a stock needs"),
    "power_iterations": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    **FORECAST_PARAMETERS,
}


# ---------------------------------------------------------------------------------------
# ndarray machinery
# ---------------------------------------------------------------------------------------


def choose_n_factors(
    singular_values: np.ndarray, total_ss: float, n_dates: int, n_stocks: int, *, criterion: str = "bai_ng", max_factors: int = 15
) -> int:
    """Number of factors of a (dates × stocks) standardised matrix from its singular values.

    Parameters
    ----------
    singular_values : ndarray (≥ max_factors + 1,)
        Leading singular values ``s_1 ≥ s_2 ≥ …`` of the matrix ``Z``.
    total_ss : float
        ``‖Z‖²_F`` (sum of all squared singular values).
    n_dates, n_stocks : int
        ``T`` and ``N``.
    criterion : {"bai_ng", "ahn_horenstein"}
        ``"bai_ng"``: ``IC_p2(k) = ln V(k) + k (N+T)/(NT) ln min(N, T)`` with
        ``V(k) = (‖Z‖² − Σ_{j≤k} s_j²)/(NT)``, minimised over ``k = 0..max_factors``
        (Bai & Ng 2002). ``"ahn_horenstein"``: eigenvalue ratio ``μ_k/μ_{k+1}``,
        ``μ_j = s_j²/(NT)``, maximised over ``k = 1..max_factors``, with the mock eigenvalue
        ``μ_0 = Σ μ_j / ln min(N, T)`` so that ``k = 0`` is possible (Ahn & Horenstein 2013).
    max_factors : int

    Returns
    -------
    int
    """
    if criterion not in CRITERIA:
        raise InvalidParameterError(f"criterion={criterion!r} is invalid; expected one of {CRITERIA}")
    kmax = int(min(max_factors, len(singular_values) - 1))
    if kmax < 1:
        raise InsufficientDataError(f"need at least 2 singular values to choose the number of factors, got {len(singular_values)}")
    nt = float(n_dates) * float(n_stocks)
    mu = np.asarray(singular_values[: kmax + 1], dtype=np.float64) ** 2 / nt
    if criterion == "bai_ng":
        explained = np.concatenate([[0.0], np.cumsum(mu[:kmax])])
        remaining = np.maximum(total_ss / nt - explained, np.finfo(float).tiny)
        penalty = (n_stocks + n_dates) / nt * np.log(min(n_stocks, n_dates))
        ic = np.log(remaining) + np.arange(kmax + 1) * penalty
        return int(np.argmin(ic))
    mock = (total_ss / nt) / np.log(min(n_stocks, n_dates))
    mu_ext = np.concatenate([[mock], mu])
    ratio = mu_ext[:-1] / np.maximum(mu_ext[1:], np.finfo(float).tiny)
    return int(np.argmax(ratio[: kmax + 1]))


class _WindowMoments:
    """Running count, sum and sum of squares of each stock's returns over a sliding window.

    Moving the window from ``[a0, b0)`` to ``[a1, b1)`` adds rows ``b0..b1−1`` and removes
    rows ``a0..a1−1``: O((rows moved) · N) per refit instead of a pass over the window.
    """

    def __init__(self, returns: np.ndarray) -> None:
        self.returns = returns
        n_stocks = returns.shape[1]
        self.count = np.zeros(n_stocks, dtype=np.int64)
        self.s1 = np.zeros(n_stocks)
        self.s2 = np.zeros(n_stocks)
        self.lo = self.hi = 0

    def _add(self, lo: int, hi: int, sign: int) -> None:
        if hi <= lo:
            return
        block = self.returns[lo:hi]
        valid = np.isfinite(block)
        filled = np.where(valid, block, 0.0)
        self.count += sign * valid.sum(axis=0)
        self.s1 += sign * filled.sum(axis=0)
        self.s2 += sign * np.einsum("ij,ij->j", filled, filled)

    def move(self, lo: int, hi: int) -> None:
        self._add(self.hi, hi, +1)
        self._add(self.lo, lo, -1)
        self.lo, self.hi = lo, hi

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (ddof 0); NaN for a stock without returns."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.s1 / self.count
            var = self.s2 / self.count - mean * mean
        return mean, np.sqrt(np.maximum(var, 0.0))


def _window_matrix(moments: _WindowMoments, t0: int, t1: int, coverage: float, dtype: Any):
    """Standardised returns of rows ``t0..t1−1``, every stock's column, and who is in.

    Returns ``(cols, Z (W, N), sd (N,), total)``: ``cols`` the stocks with returns on at
    least ``coverage`` of the rows and a positive sd; their columns of ``Z`` are
    standardised with missing cells 0, every other column is 0 (so it does not enter the
    SVD). ``total = ‖Z‖²_F`` = the number of valid cells of those stocks (a column
    standardised over its own valid days has ``Σ z² = count``).
    """
    from riskmodel.kernels.timeseries import standardise_kernel

    moments.move(t0, t1)
    mean, sd = moments.moments()
    min_count = int(np.ceil(coverage * (t1 - t0) - 1e-9))
    # a relative floor: a constant series has a rounding-level sd from the running sums
    with np.errstate(invalid="ignore"):
        keep = (moments.count >= min_count) & (sd > 1e-7 * np.abs(mean) + 1e-300)
    cols = np.flatnonzero(keep)
    inv_sd = np.zeros(sd.shape)
    inv_sd[cols] = 1.0 / sd[cols]
    z = np.empty((t1 - t0, sd.size), dtype=dtype)
    standardise_kernel(moments.returns, t0, np.nan_to_num(mean), inv_sd, z)
    return cols, z, sd, float(moments.count[cols].sum())


def _truncated_svd(z: np.ndarray, n: int, rng: np.random.Generator, start: np.ndarray | None, power_iterations: int):
    """Leading ``n`` singular triplets of ``z`` by a randomized range finder (Halko et al. 2011).

    ``start`` (columns × l) is a warm start (the previous window's right singular vectors);
    otherwise a Gaussian sketch. The small ``l × M`` projection is decomposed through its
    ``l × l`` Gram matrix. Returns ``(s (n,), vt (n, M), v_sketch (M, l))``.
    """
    n_rows, n_cols = z.shape
    l = min(n + 5, n_rows, n_cols)
    omega = start if start is not None and start.shape[1] == l else rng.standard_normal((n_cols, l))
    q, _ = np.linalg.qr(z @ omega.astype(z.dtype, copy=False))
    for _ in range(power_iterations):
        q, _ = np.linalg.qr(z.T @ q)
        q, _ = np.linalg.qr(z @ q)
    small = (q.T @ z).astype(np.float64)  # (l, M)
    evals, evecs = np.linalg.eigh(small @ small.T)
    order = np.argsort(evals)[::-1]
    s = np.sqrt(np.maximum(evals[order], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = np.where(s[:, None] > 0, (evecs[:, order].T @ small) / s[:, None], 0.0)
    return s[:n], vt[:n], vt.T


def _procrustes(new: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Rotate ``new`` (N, k) to best match ``previous`` on the stocks both have (orthogonal Procrustes).

    Without a previous set, each column's sign makes its loadings sum positive.
    """
    if previous is None:
        signs = np.sign(np.nansum(new, axis=0))
        signs[signs == 0] = 1.0
        return new * signs
    both = np.isfinite(new).all(axis=1) & np.isfinite(previous).all(axis=1)
    if both.sum() < new.shape[1]:
        return _procrustes(new, None)
    u, _, vt = np.linalg.svd(new[both].T @ previous[both])
    return new @ (u @ vt)


@dataclass(frozen=True)
class PCALoadings:
    """Loadings of a rolling PCA on a refit schedule (arrays).

    Attributes
    ----------
    schedule : ndarray (S,) int64
        Refit rows.
    loadings : ndarray (S, N, k)
        In return units: ``B = diag(σ) V_k diag(s_k)/√W`` (then rotated to match the
        previous refit); NaN for stocks left out (coverage) and before ``min_obs`` days.
    chosen : ndarray (S,) int64
        The criterion's number of factors on each refit date (−1: no extraction).
    eigenvalues : ndarray (S, l)
        ``s_j² / (N W)`` of the leading components (NaN when not extracted).
    n_factors : int
    """

    schedule: np.ndarray
    loadings: np.ndarray
    chosen: np.ndarray
    eigenvalues: np.ndarray
    n_factors: int


def pca_loadings(
    returns: np.ndarray,
    *,
    n_factors: int | None,
    window: int = 504,
    min_obs: int = 252,
    refit_every: int = 21,
    coverage: float = 0.8,
    criterion: str = "bai_ng",
    max_factors: int = 15,
    power_iterations: int = 2,
    warm_iterations: int = 0,
    seed: int = 0,
    dtype: Any = np.float32,
) -> PCALoadings:
    """Rolling-window PCA loadings of a (date, stock) return (or residual) matrix.

    On each refit row ``t`` with at least ``min_obs`` rows of history, the rows
    ``max(0, t − window + 1) .. t`` are used (data ≤ t only): names with returns on at
    least ``coverage`` of those rows are standardised (mean 0, sd 1 over their valid
    days), missing cells set to 0 *after* standardising, and the leading singular triplets
    are computed by a randomized SVD (``power_iterations`` on the first refit;
    later refits start from the previous refit's right singular subspace, which the
    96%-overlapping window leaves nearly invariant, with ``warm_iterations`` more). ``n_factors=None``: the
    criterion's choice on the **first** extraction is kept for the whole fit (the number of
    factors must stay fixed for the factor-return series); every refit's choice is
    reported in ``chosen``. The window moments are running sums moved from refit to
    refit, and the SVD works on a ``dtype`` (default float32) copy of the standardised
    window: loadings carry ~1e-6 relative rounding, far below their sampling error, at
    half the memory traffic of float64. Each refit's loadings are rotated (orthogonal Procrustes) onto
    the previous ones so that a factor keeps its identity from one refit to the next.

    Returns
    -------
    PCALoadings
    """
    n_dates, n_stocks = returns.shape
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    schedule = refit_schedule(n_dates, refit_every)
    rng = np.random.default_rng(seed)
    n_comp = max_factors + 1 if n_factors is None else n_factors
    k = n_factors
    loadings_list: list[np.ndarray | None] = []
    chosen = np.full(len(schedule), -1, dtype=np.int64)
    eigen = np.full((len(schedule), n_comp), np.nan)
    previous = None
    start_v: np.ndarray | None = None
    moments = _WindowMoments(returns)
    for i, t in enumerate(schedule):
        if t + 1 < min_obs:
            loadings_list.append(None)
            continue
        t0 = max(0, t - window + 1)
        cols, z, sd, total = _window_matrix(moments, t0, t + 1, coverage, dtype)
        n_rows = z.shape[0]
        if cols.size <= n_comp or n_rows <= n_comp:
            loadings_list.append(None)
            continue
        with threadpool_limits(1, user_api="blas"):  # numba's threads are still spinning
            s, vt, v_sketch = _truncated_svd(z, n_comp, rng, start_v, power_iterations if start_v is None else warm_iterations)
        nt = float(n_rows) * cols.size
        eigen[i, : s.size] = s**2 / nt
        if n_factors is None:
            chosen[i] = choose_n_factors(s, total, n_rows, cols.size, criterion=criterion, max_factors=max_factors)
            if k is None:
                k = max(int(chosen[i]), 1)
        else:
            chosen[i] = n_factors
        start_v = v_sketch
        full = np.full((n_stocks, k), np.nan)
        full[cols] = sd[cols, None] * vt[:k, cols].T * (s[:k] / np.sqrt(n_rows))
        full = _procrustes(full, previous)
        previous = full
        loadings_list.append(full)
    if k is None:
        raise InsufficientDataError(
            f"no refit date has {min_obs} days of history and more than {n_comp} stocks with "
            f"{coverage:.0%} coverage ({n_dates} dates, {n_stocks} stocks); lower min_obs or pass a longer panel"
        )
    loadings = np.full((len(schedule), n_stocks, k), np.nan)
    for i, item in enumerate(loadings_list):
        if item is not None:
            loadings[i] = item
    return PCALoadings(schedule=schedule, loadings=loadings, chosen=chosen, eigenvalues=eigen, n_factors=int(k))


def cross_section_factor_returns(
    returns: np.ndarray, loadings: np.ndarray, schedule: np.ndarray, *, min_stocks: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Daily cross-sectional OLS of returns on the loadings known the day before.

    Parameters
    ----------
    returns : ndarray (date, stock)
    loadings : ndarray (S, N, k)
        On the refit rows ``schedule``; a stock's row is all finite or all NaN.
    schedule : ndarray (S,) int64
    min_stocks : int, optional
        Fewer stocks with a return and loadings on a date: NaN (default ``2k``).

    Returns
    -------
    f : ndarray (date, k)
        ``f_t = (B_{t−1}ᵀ B_{t−1})⁻¹ B_{t−1}ᵀ r_t`` over the stocks with a return at ``t``.
    residuals : ndarray (date, stock)
        ``r_t − B_{t−1} f_t``, NaN where the stock has no return or no loadings.
    """
    from riskmodel.kernels.timeseries import cross_section_ols_kernel

    n_dates, n_stocks = returns.shape
    k = loadings.shape[2]
    filled = np.nan_to_num(loadings)
    gram = np.einsum("snj,snk->sjk", filled, filled)
    which = loading_rows(schedule, n_dates, shift=1)
    f = np.empty((n_dates, k))
    resid = np.empty((n_dates, n_stocks))
    cross_section_ols_kernel(
        np.ascontiguousarray(returns, dtype=np.float64),
        which,
        np.ascontiguousarray(loadings),
        np.ascontiguousarray(gram),
        int(2 * k if min_stocks is None else min_stocks),
        f,
        resid,
    )
    return f, resid


# ---------------------------------------------------------------------------------------
# the statistical model
# ---------------------------------------------------------------------------------------


class StatisticalFactorModel(ForecastEstimator):
    """Statistical factor risk model: PCA factors of the returns, refitted on a schedule.

    Parameters
    ----------
    n_factors : int or None
        Number of factors; ``None``: chosen by ``criterion`` on the first extraction window.
    criterion : {"bai_ng", "ahn_horenstein"}
        Bai–Ng ``IC_p2`` (default) or the Ahn–Horenstein eigenvalue ratio, see
        :func:`choose_n_factors`.
    max_factors : int
        Largest number of factors the criterion considers.
    window : int
        Trailing window (days) of each extraction.
    min_obs : int
        Days of history before the first extraction (the window grows until ``window``).
    refit_every : int
        Days between extractions (and the last date); loadings are carried forward.
    coverage : float
        A stock enters an extraction with returns on at least this share of the window's
        days (default 0.8); its missing days are set to 0 after standardising. Stocks left
        out have no loadings (and no forecast) until the next extraction that admits them.
    power_iterations : int
        Power iterations of the randomized SVD on the first extraction (later ones start
        from the previous extraction's subspace, see :func:`pca_loadings`).
    cap : str or None
        Market-cap variable for the specific-risk shrinkage groups and VRA weights.
    forecast settings :
        As :class:`riskmodel.FactorRiskModel` (``vol_half_life`` … ``seed``).
    progress : bool or None

    Notes
    -----
    On a refit date ``t`` the standardised window matrix ``Z = U S Vᵀ`` (rows ≤ t) gives
    loadings in return units ``B = diag(σ) V_k S_k / √W`` (so that the factor returns have
    about unit variance in the window), rotated by orthogonal Procrustes onto the previous
    refit's loadings so that factor identities persist. The factor returns of day ``t`` are
    the cross-sectional OLS ``f_t = (BᵀB)⁻¹Bᵀr_t`` with the loadings in force at ``t − 1``,
    over the stocks with a return that day; residuals ``u_t = r_t − B f_t``. ``Σ_f`` and
    ``D`` are forecast from these series as in the fundamental model.

    Examples
    --------
    >>> import riskmodel as rm
    >>> panel = rm.simulate(n_stocks=150, n_days=400, seed=0)
    >>> st = rm.StatisticalFactorModel(n_factors=3, window=252, min_obs=126, eigen_sims=0).fit(panel)
    >>> st.factors
    ['pc1', 'pc2', 'pc3']
    """

    PARAMETERS: ClassVar[ParameterTable] = _PARAMETERS
    REPR: ClassVar[tuple[str, ...]] = ("n_factors", "criterion", "window", "refit_every")

    def __init__(
        self,
        *,
        n_factors: int | None = None,
        criterion: str = "bai_ng",
        max_factors: int = 15,
        window: int = 504,
        min_obs: int = 252,
        refit_every: int = 21,
        coverage: float = 0.8,
        power_iterations: int = 2,
        cap: str | None = "market_cap",
        progress: bool | None = None,
        **forecast_settings: Any,
    ) -> None:
        own = dict(n_factors=n_factors, criterion=criterion, max_factors=max_factors, window=window, min_obs=min_obs,
                   refit_every=refit_every, coverage=coverage, power_iterations=power_iterations, cap=cap,
                   progress=progress)
        self._set_params(own, forecast_settings)

    def _check_n_factors(self, n_dates: int, n_stocks: int) -> None:
        """``n_factors`` below the stocks and the days of an extraction window, checked
        before anything of size stocks x factors is allocated.

        Raises
        ------
        InvalidParameterError
            Naming ``n_factors`` and the sizes it must stay below.
        """
        if self.n_factors is None:
            return
        days = min(self.window, n_dates)
        if self.n_factors >= min(n_stocks, days):
            raise InvalidParameterError(
                f"StatisticalFactorModel: n_factors={self.n_factors} must be below both the number of stocks "
                f"({n_stocks}) and the days of an extraction window (min(window={self.window}, {n_dates} dates) "
                f"= {days}); lower n_factors, or pass n_factors=None to choose it by the criterion"
            )

    def fit(self, panel: xr.Dataset) -> "FittedStatisticalModel":
        """Fit the model on a panel.

        Parameters
        ----------
        panel : Dataset (date, stock)
            With ``returns`` (and optionally the cap variable).

        Returns
        -------
        FittedStatisticalModel

        Raises
        ------
        DimensionError
            ``panel`` is not an :class:`xarray.Dataset`.
        InvalidParameterError
            ``n_factors`` not below the number of stocks and the days of the window.
        InsufficientDataError
            No refit date has ``min_obs`` days of history and enough covered stocks.
        PanelError
            A malformed panel.
        """
        settings = self.checked_params()
        require_dataset(panel, "StatisticalFactorModel.fit")
        self._check_n_factors(panel.sizes.get("date", 0), panel.sizes.get("stock", 0))
        returns = returns_array(panel, "StatisticalFactorModel.fit")
        n_dates, n_stocks = returns.shape
        if n_dates < self.min_obs:
            raise InsufficientDataError(
                f"the panel has {n_dates} dates, fewer than min_obs={self.min_obs}; lower min_obs or pass more dates"
            )
        dates = panel["date"].to_numpy()
        stocks = panel["stock"].to_numpy().astype(str)
        cap = cap_array(panel, self.cap, n_dates, n_stocks)
        with StageProgress(["PCA loadings", "factor returns", "factor covariance + specific risk"], self.progress) as bar:
            pca = pca_loadings(
                returns,
                n_factors=self.n_factors,
                window=self.window,
                min_obs=self.min_obs,
                refit_every=self.refit_every,
                coverage=self.coverage,
                criterion=self.criterion,
                max_factors=self.max_factors,
                power_iterations=self.power_iterations,
                seed=self.seed,
            )
            bar.advance()
            f, residuals = cross_section_factor_returns(returns, pca.loadings, pca.schedule)
            bar.advance()
            fc, spec = forecasts(f, residuals, cap, settings, dates, stocks)
            bar.advance()
        names = [f"pc{j + 1}" for j in range(pca.n_factors)]
        settings["n_factors_used"] = pca.n_factors
        ds = build_dataset(
            MODEL_KIND, returns, dates, stocks, names, f, residuals, pca.loadings, pca.schedule, fc, spec, settings,
            extra={
                "n_factors_chosen": (("refit",), pca.chosen),
                "eigenvalues": (("refit", "component"), pca.eigenvalues),
            },
        )
        return FittedStatisticalModel(dataset=ds, settings=settings)


@dataclass(frozen=True, eq=False, repr=False)
class FittedStatisticalModel(LoadingsFittedModel):
    """A fitted statistical factor model (fitted-model protocol, see CONTRIBUTING.md).

    Attributes
    ----------
    dataset : Dataset
        ``returns``, ``factor_returns`` (date, factor) (``pc1 …``), ``residuals``,
        ``loadings`` (refit, stock, factor), ``n_factors_chosen`` (refit) (the criterion on
        each extraction, −1 where none), ``eigenvalues`` (refit, component),
        ``factor_cov`` (date, factor, factor_), ``specific_var`` (date, stock).
    settings : dict
    """

    kind: ClassVar[str] = MODEL_KIND

    @property
    def n_factors_chosen(self) -> xr.DataArray:
        """DataArray (refit,): the criterion's number of factors at each extraction (−1: none)."""
        return self.dataset["n_factors_chosen"]

    def summary(self) -> str:
        lines = self._summary_lines()
        chosen = self.dataset["n_factors_chosen"].to_numpy()
        chosen = chosen[chosen >= 0]
        if chosen.size:
            lines.insert(
                1,
                f"criterion {self.settings.get('criterion')}: chose {int(chosen[0])} on the first extraction, "
                f"range {int(chosen.min())}..{int(chosen.max())} over {chosen.size} extractions",
            )
        return "\n".join(lines)
