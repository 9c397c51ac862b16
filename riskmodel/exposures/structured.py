"""The structured exposures of a fundamental factor model: a market intercept, integer
industry codes and a dense style block (:class:`Exposures`, built by
:func:`~riskmodel.exposures.build_exposures`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from riskmodel._labels import fmt_date
from riskmodel.errors import DimensionError, InvalidParameterError

__all__ = ["Exposures"]


@dataclass(frozen=True, eq=False)
class Exposures:
    """Structured exposures of a fundamental factor model (arrays, unlagged).

    Row t is known at the close of day t; the regression of day t uses row ``t - lag``.
    The factors are ``["market", *industry_labels, *style_names]``: a market intercept
    (exposure 1), one dummy per industry (from ``industry`` codes) and the dense style block.

    Attributes
    ----------
    dates : ndarray (T,) datetime64[ns]
    stocks : ndarray (N,) str
    style_names : tuple of str, K names
    industry_labels : tuple of str, P labels (empty without industries)
    styles : ndarray (T, N, K) float64, C-contiguous
        Cleaned (winsorised, cap-centred, standardised) styles; NaN = unknown.
    industry : ndarray (T, N) int32 or None
        Industry code at the close of t, -1 = missing.
    weights : ndarray (T, N) float64
        Regression weight (√cap); NaN / 0 = not in the estimation universe.
    cap : ndarray (T, N) float64
        Market cap (cap weights for the constraint, centring, shrinkage).
    imputed : ndarray (T, N, K) bool
        Cells imputed by :func:`build_exposures` (METHODS §1).
    """

    dates: np.ndarray
    stocks: np.ndarray
    style_names: tuple[str, ...]
    industry_labels: tuple[str, ...]
    styles: np.ndarray
    industry: np.ndarray | None
    weights: np.ndarray
    cap: np.ndarray
    imputed: np.ndarray

    def __post_init__(self) -> None:
        T, N, K = len(self.dates), len(self.stocks), len(self.style_names)
        checks = {
            "styles": (self.styles, (T, N, K)),
            "weights": (self.weights, (T, N)),
            "cap": (self.cap, (T, N)),
            "imputed": (self.imputed, (T, N, K)),
        }
        if self.industry is not None:
            checks["industry"] = (self.industry, (T, N))
        for field_name, (arr, shape) in checks.items():
            if np.shape(arr) != shape:
                raise DimensionError(
                    f"Exposures.{field_name}: shape {np.shape(arr)} but (T, N{', K' if len(shape) == 3 else ''}) = "
                    f"{shape} from dates/stocks/style_names; build it with build_exposures."
                )
        if self.industry is None and self.industry_labels:
            raise DimensionError("Exposures: industry_labels given but industry is None.")

    # --- sizes and names --------------------------------------------------------------
    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def n_stocks(self) -> int:
        return len(self.stocks)

    @property
    def n_styles(self) -> int:
        return len(self.style_names)

    @property
    def n_industries(self) -> int:
        return len(self.industry_labels) if self.industry is not None else 0

    @property
    def n_factors(self) -> int:
        return 1 + self.n_industries + self.n_styles

    @property
    def factor_names(self) -> list[str]:
        """``["market", *industry_labels, *style_names]`` (industries only when present)."""
        inds = list(self.industry_labels) if self.industry is not None else []
        return ["market", *inds, *self.style_names]

    def _row(self, t: Any) -> int:
        if isinstance(t, (int, np.integer)):
            i = int(t)
            if not -self.n_dates <= i < self.n_dates:
                raise InvalidParameterError(f"Exposures.dense: date index {i} is outside 0..{self.n_dates - 1}.")
            return i % self.n_dates
        d = np.datetime64(t, "ns")
        hit = np.flatnonzero(self.dates == d)
        if hit.size == 0:
            raise InvalidParameterError(
                f"Exposures.dense: date {fmt_date(d)} is not among the {self.n_dates} dates "
                f"({fmt_date(self.dates[0])} .. {fmt_date(self.dates[-1])})."
            )
        return int(hit[0])

    def dense(self, t: Any) -> np.ndarray:
        """Dense exposure matrix ``B`` (N, m) of one date: ``[1, industry dummies, styles]``.

        Parameters
        ----------
        t : int or datetime-like
            Row position or date label.

        Returns
        -------
        ndarray (N, m)
            Columns in ``factor_names`` order. A stock with a missing industry has NaN in
            the whole industry block; NaN styles stay NaN.
        """
        i = self._row(t)
        N = self.n_stocks
        cols = [np.ones((N, 1))]
        if self.industry is not None:
            P = self.n_industries
            code = self.industry[i]
            dummies = np.zeros((N, P))
            ok = code >= 0
            dummies[np.flatnonzero(ok), code[ok]] = 1.0
            dummies[~ok] = np.nan
            cols.append(dummies)
        cols.append(self.styles[i])
        return np.concatenate(cols, axis=1)

    def to_dataset(self) -> xr.Dataset:
        """Labelled view: ``styles (date, stock, style)``, ``industry``, ``weights``, ``cap``, ``imputed``."""
        coords = {"date": self.dates, "stock": self.stocks, "style": list(self.style_names)}
        data: dict[str, Any] = {
            "styles": (("date", "stock", "style"), self.styles),
            "weights": (("date", "stock"), self.weights),
            "cap": (("date", "stock"), self.cap),
            "imputed": (("date", "stock", "style"), self.imputed),
        }
        if self.industry is not None:
            data["industry"] = (("date", "stock"), self.industry, {"labels": list(self.industry_labels)})
        return xr.Dataset(data, coords=coords)

    def __repr__(self) -> str:
        return (
            f"Exposures({self.n_dates} dates x {self.n_stocks} stocks; factors: market, "
            f"{self.n_industries} industries, styles {list(self.style_names)}; "
            f"{int(self.imputed.sum())} imputed cells)"
        )
