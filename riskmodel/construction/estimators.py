"""Covariance estimators that a risk model is compared with when it feeds an optimiser.

Every estimator is a small callable object: ``estimator(returns)`` takes a window of
returns, ndarray ``(T, N)`` (oldest first, no NaN), and returns the ``N × N`` covariance
forecast for the next day (dense: these peers are meant for ``N`` of a few hundred).
Each has a ``name`` and a ``window`` (the number of trailing days it wants).

* :class:`NonlinearShrinkage` — the analytical nonlinear shrinkage of Ledoit & Wolf (2020,
  *Analytical nonlinear shrinkage of large-dimensional covariance matrices*, Annals of
  Statistics 48(5)), implemented from the paper (:func:`analytical_nonlinear_shrinkage`);
* :class:`EWMAShrunk` — an exponentially weighted covariance shrunk toward its diagonal;
* :class:`SklearnShrinkage` — adapters for scikit-learn's ``LedoitWolf`` and ``OAS``;
* :class:`EqualWeight` — a scaled identity, whose minimum-variance portfolio is 1/N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from riskmodel.errors import InsufficientDataError, InvalidParameterError, NonFiniteError

__all__ = [
    "CovarianceEstimator",
    "analytical_nonlinear_shrinkage",
    "NonlinearShrinkage",
    "EWMAShrunk",
    "SklearnShrinkage",
    "EqualWeight",
    "default_estimators",
]


class CovarianceEstimator(Protocol):
    """What the construction backtest needs of a peer estimator."""

    name: str
    window: int

    def __call__(self, returns: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        ...


def _check_window(returns: np.ndarray, what: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidParameterError(f"{what}: returns must be a 2-d array (T, N), got shape {x.shape}")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise InsufficientDataError(f"{what}: needs at least {min_rows} rows and 1 column, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise NonFiniteError(f"{what}: returns hold NaN or infinite values; pass a complete window")
    return x


def analytical_nonlinear_shrinkage(returns: np.ndarray, *, demean: bool = True) -> np.ndarray:
    """Ledoit & Wolf (2020) analytical nonlinear shrinkage of the sample covariance.

    The estimator keeps the sample eigenvectors ``u_i`` and replaces each sample
    eigenvalue ``λ_i`` by ``d̃_i = λ_i / [(π c λ_i f̃(λ_i))² + (1 − c − π c λ_i H f̃(λ_i))²]``
    (``c = p/n``), where ``f̃`` is an Epanechnikov kernel estimate of the density of the
    sample eigenvalues with locally adaptive bandwidth ``h λ_j`` (``h = n^{-1/3}``) and
    ``H f̃`` its Hilbert transform, both in closed form (the paper's equations (4.9)–(4.10)
    and its Section 4.5 code). When ``p > n`` the ``p − n`` null eigenvalues all get
    ``d̃₀ = 1 / (π (p − n)/n · H f̃₀(0))`` (equation (C.6) of the paper's supplement, with
    the kernel estimate of ``H f̃₀(0)`` from the nonzero eigenvalues).

    Parameters
    ----------
    returns : ndarray (n, p)
        Observations in rows.
    demean : bool
        Subtract the column means first and use ``n − 1`` effective observations (the
        paper's ``k = 1``); ``False``: the data are taken as mean zero (``k = 0``).

    Returns
    -------
    ndarray (p, p)
        Symmetric positive definite covariance estimate with the sample eigenvectors.

    Raises
    ------
    InsufficientDataError
        Fewer than 12 effective observations (the bandwidth formula needs ``√5 h < 1``)
        or a zero sample covariance.
    """
    x = _check_window(returns, "analytical_nonlinear_shrinkage")
    n_obs, p = x.shape
    if demean:
        x = x - x.mean(axis=0)
    n = n_obs - (1 if demean else 0)
    h = n ** (-1.0 / 3.0)
    if math.sqrt(5.0) * h >= 1.0:
        raise InsufficientDataError(f"analytical_nonlinear_shrinkage: needs at least 12 effective observations, got {n}")
    sample = x.T @ x / n
    lam_all, u = np.linalg.eigh(sample)  # ascending
    lam_all = np.maximum(lam_all, 0.0)
    m = min(p, n)
    lam = lam_all[p - m :]
    if lam[-1] <= 0:
        raise InsufficientDataError("analytical_nonlinear_shrinkage: the sample covariance is zero")
    lam = np.maximum(lam, lam[-1] * 1e-15)  # a numerically zero eigenvalue among the top min(p, n)
    band = h * lam[None, :]  # H[i, j] = h λ_j
    xk = (lam[:, None] - lam[None, :]) / band  # (λ_i − λ_j) / (h λ_j)
    sqrt5 = math.sqrt(5.0)
    f_tilde = (3.0 / 4.0 / sqrt5) * np.mean(np.maximum(1.0 - xk**2 / 5.0, 0.0) / band, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.log(np.abs((sqrt5 - xk) / (sqrt5 + xk)))
    hilbert = (-3.0 / 10.0 / math.pi) * xk + (3.0 / 4.0 / sqrt5 / math.pi) * (1.0 - xk**2 / 5.0) * log_term
    at_edge = np.abs(xk) == sqrt5
    hilbert[at_edge] = (-3.0 / 10.0 / math.pi) * xk[at_edge]
    hf_tilde = np.mean(hilbert / band, axis=1)
    if p <= n:
        c = p / n
        d = lam / ((math.pi * c * lam * f_tilde) ** 2 + (1.0 - c - math.pi * c * lam * hf_tilde) ** 2)
    else:
        hf0 = (1.0 / math.pi) * (
            3.0 / 10.0 / h**2
            + 3.0 / 4.0 / sqrt5 / h * (1.0 - 1.0 / 5.0 / h**2) * math.log((1.0 + sqrt5 * h) / (1.0 - sqrt5 * h))
        ) * np.mean(1.0 / lam)
        d0 = 1.0 / (math.pi * (p - n) / n * hf0)
        d1 = lam / (math.pi**2 * lam**2 * (f_tilde**2 + hf_tilde**2))
        d = np.concatenate([np.full(p - n, d0), d1])
    cov = (u * d) @ u.T
    return (cov + cov.T) / 2.0


@dataclass(frozen=True)
class NonlinearShrinkage:
    """Analytical nonlinear shrinkage (Ledoit & Wolf 2020) of the trailing ``window`` days."""

    window: int = 252
    name: str = "nonlinear shrinkage"

    def __call__(self, returns: np.ndarray) -> np.ndarray:
        return analytical_nonlinear_shrinkage(returns[-self.window :])


@dataclass(frozen=True)
class EWMAShrunk:
    """Exponentially weighted covariance (mean zero), shrunk toward its diagonal.

    ``Σ = (1 − δ) S_ewma + δ diag(S_ewma)`` with weights ``0.5^{age / half_life}``
    normalised to sum to one over the trailing ``window`` days.

    Parameters
    ----------
    half_life : float
        Half-life of the weights, in days.
    shrinkage : float
        ``δ`` in [0, 1]: 0 keeps the EWMA matrix, 1 keeps only its diagonal.
    window : int
        Days used (weights older than that are dropped).
    """

    half_life: float = 60.0
    shrinkage: float = 0.5
    window: int = 252
    name: str = "EWMA (hl 60) shrunk 50% to diagonal"

    def __post_init__(self) -> None:
        if not (self.half_life > 0):
            raise InvalidParameterError(f"EWMAShrunk: half_life must be positive, got {self.half_life!r}")
        if not (0.0 <= self.shrinkage <= 1.0):
            raise InvalidParameterError(f"EWMAShrunk: shrinkage must be in [0, 1], got {self.shrinkage!r}")

    def __call__(self, returns: np.ndarray) -> np.ndarray:
        x = _check_window(returns, "EWMAShrunk")[-self.window :]
        age = np.arange(x.shape[0] - 1, -1, -1, dtype=np.float64)
        w = 0.5 ** (age / self.half_life)
        w /= w.sum()
        s = (x * w[:, None]).T @ x
        out = (1.0 - self.shrinkage) * s
        out[np.diag_indices_from(out)] = np.diag(s)
        return out


@dataclass(frozen=True)
class SklearnShrinkage:
    """scikit-learn's ``LedoitWolf`` (``method="ledoit_wolf"``) or ``OAS`` on the trailing window."""

    method: str = "ledoit_wolf"
    window: int = 252
    name: str = ""

    def __post_init__(self) -> None:
        if self.method not in ("ledoit_wolf", "oas"):
            raise InvalidParameterError(f"SklearnShrinkage: method must be 'ledoit_wolf' or 'oas', got {self.method!r}")
        if not self.name:
            object.__setattr__(self, "name", "Ledoit-Wolf" if self.method == "ledoit_wolf" else "OAS")

    def __call__(self, returns: np.ndarray) -> np.ndarray:
        from sklearn.covariance import OAS, LedoitWolf

        x = _check_window(returns, self.name)[-self.window :]
        model = LedoitWolf() if self.method == "ledoit_wolf" else OAS()
        return np.asarray(model.fit(x).covariance_, dtype=np.float64)


@dataclass(frozen=True)
class EqualWeight:
    """``σ̄² I`` (``σ̄²`` the mean sample variance): its minimum-variance portfolio is 1/N,
    and its predicted volatility the one of an uncorrelated universe."""

    window: int = 252
    name: str = "1/N"

    def __call__(self, returns: np.ndarray) -> np.ndarray:
        x = _check_window(returns, self.name)[-self.window :]
        return np.eye(x.shape[1]) * float(np.mean(x.var(axis=0, ddof=1)))


def default_estimators(window: int = 252) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The peers of issue 18, by name: Ledoit–Wolf, OAS, nonlinear shrinkage, EWMA, 1/N."""
    peers = [
        SklearnShrinkage("ledoit_wolf", window),
        SklearnShrinkage("oas", window),
        NonlinearShrinkage(window),
        EWMAShrunk(60.0, 0.5, window),
        EqualWeight(window),
    ]
    return {p.name: p for p in peers}
