"""Daily cross-sectional WLS factor returns and factor-mimicking portfolios (METHODS §2).

Each day t the returns ``r_t`` are regressed across stocks on the exposures known at the
close of day ``t − lag``::

    r_n = f_c + Σ_p X_np f_p + Σ_s X_ns f_s + u_n,   weights v_n,   Σ_p c_p f_p = 0,

with ``c_p`` the cap weight of industry p among the day's estimation sample. The factor
return is the return of a portfolio: ``f_t = Ω_t r_t`` with
``Ω = R (RᵀXᵀVXR)⁻¹ RᵀXᵀV`` (:func:`mimicking_portfolios`). The per-date work runs in the
numba kernel :func:`riskmodel.kernels.wls.wls_factor_returns`; this module validates inputs
once, lays them out, calls the kernel and turns its flags into warnings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import fmt_date, reject_infinite
from riskmodel._results import Result, check_kind
from riskmodel.errors import (
    DimensionError,
    InvalidParameterError,
    PanelError,
    SingularDateWarning,
    ThinIndustryWarning,
    VariableTypeError,
)
from riskmodel.kernels import wls as _k

__all__ = ["WLSResult", "factor_returns", "mimicking_portfolios"]

_MAX_LISTED = 10  # dates / (date, industry) pairs named in one warning


@dataclass(frozen=True, eq=False, repr=False)
class WLSResult(Result):
    """Daily factor returns of the constrained cross-sectional WLS.

    Attributes
    ----------
    factor_returns : ndarray (date, factor)
        ``f_t``; NaN for rows ``t < lag``, singular dates and dropped (thin or empty)
        industries.
    residuals : ndarray (date, stock)
        ``u_t = r_t − X_{t−lag} f_t`` from *unclipped* returns, for every stock with a return
        and complete exposures that day (also those with no regression weight); NaN
        elsewhere.
    r2 : ndarray (date,)
        Weighted R², ``1 − Σ v e² / Σ v (r − r̄_v)²`` on the (clipped) fit sample.
    se : ndarray (date, factor)
        Standard errors ``sqrt(diag(s² R (RᵀXᵀVXR)⁻¹ Rᵀ))``, ``s² = Σ v e² / (n − rank)``.
    n_obs : ndarray (date,) int64
        Stocks in the regression.
    n_clipped : ndarray (date,) int64
        Returns clipped by the robust outlier rule.
    factor_names : tuple of str
        ``("market", *industry_labels, *style_names)``.
    dates, stocks : ndarray or None
        The exposures' date and stock labels when they carry them (an
        :class:`~riskmodel.exposures.Exposures` does), else None.
    """

    kind: ClassVar[str] = "wls_result"

    factor_returns: np.ndarray
    residuals: np.ndarray
    r2: np.ndarray
    se: np.ndarray
    n_obs: np.ndarray
    n_clipped: np.ndarray
    factor_names: tuple[str, ...]
    dates: np.ndarray | None = None
    stocks: np.ndarray | None = None

    @property
    def t_stats(self) -> np.ndarray:
        """ndarray (date, factor): ``factor_returns / se``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.factor_returns / self.se

    def table(self) -> pd.DataFrame:
        """Per-factor statistics over the estimated dates.

        Returns
        -------
        DataFrame (factor × statistics)
            ``n_dates`` with a finite return, ``mean`` and ``vol`` (daily), ``mean_abs_t``
            and ``share_abs_t_gt_2`` (share of those dates with ``|t| > 2``, METHODS §2).
        """
        f = self.factor_returns
        t = np.abs(self.t_stats)
        ok = np.isfinite(f)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, np.nansum(f, axis=0) / n, np.nan)
            dev = np.where(ok, f - mean, 0.0)
            vol = np.where(n > 1, np.sqrt((dev**2).sum(axis=0) / (n - 1)), np.nan)
            mean_abs_t = np.where(n > 0, np.nansum(np.where(ok, t, np.nan), axis=0) / n, np.nan)
            share = np.where(n > 0, (np.where(ok, t, 0.0) > 2).sum(axis=0) / n, np.nan)
        return pd.DataFrame(
            {"n_dates": n, "mean": mean, "vol": vol, "mean_abs_t": mean_abs_t, "share_abs_t_gt_2": share},
            index=pd.Index(self.factor_names, name="factor"),
        )

    def summary(self) -> str:
        """Size, dates estimated, mean R², returns clipped, and the per-factor :meth:`table`."""
        n_dates, m = self.factor_returns.shape
        ok = np.isfinite(self.r2)
        mean_r2 = float(np.mean(self.r2[ok])) if ok.any() else float("nan")
        span = ""
        if self.dates is not None and n_dates:
            span = f" ({fmt_date(self.dates[0])}..{fmt_date(self.dates[-1])})"
        head = (
            f"WLSResult: {n_dates} dates{span} × {m} factors, {self.residuals.shape[1]} stocks; "
            f"{int(ok.sum())} dates estimated, mean R² {mean_r2:.3f}, "
            f"{int(np.sum(self.n_clipped))} returns clipped"
        )
        return head + "\n" + self.table().to_string(float_format=lambda v: f"{v:.4g}")

    def to_dataset(self) -> xr.Dataset:
        """The arrays as variables over ``(date, factor)``, ``(date, stock)`` and ``(date,)``
        (with date and stock coordinates when known); ``factor`` holds the factor names."""
        coords: dict[str, Any] = {"factor": list(self.factor_names)}
        if self.dates is not None:
            coords["date"] = self.dates
        if self.stocks is not None:
            coords["stock"] = self.stocks
        return xr.Dataset(
            {
                "factor_returns": (("date", "factor"), self.factor_returns),
                "residuals": (("date", "stock"), self.residuals),
                "r2": (("date",), self.r2),
                "se": (("date", "factor"), self.se),
                "n_obs": (("date",), self.n_obs),
                "n_clipped": (("date",), self.n_clipped),
            },
            coords=coords,
            attrs={"riskmodel_kind": self.kind},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "WLSResult":
        """Rebuild a :class:`WLSResult` from :meth:`to_dataset` (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "WLSResult")
        return cls(
            factor_returns=np.asarray(ds["factor_returns"].values, dtype=np.float64),
            residuals=np.asarray(ds["residuals"].values, dtype=np.float64),
            r2=np.asarray(ds["r2"].values, dtype=np.float64),
            se=np.asarray(ds["se"].values, dtype=np.float64),
            n_obs=np.asarray(ds["n_obs"].values, dtype=np.int64),
            n_clipped=np.asarray(ds["n_clipped"].values, dtype=np.int64),
            factor_names=tuple(str(f) for f in ds["factor"].values),
            dates=np.asarray(ds["date"].values) if "date" in ds.coords else None,
            stocks=np.asarray(ds["stock"].values) if "stock" in ds.coords else None,
        )


@dataclass(frozen=True)
class _Design:
    """Validated exposure arrays, laid out for the kernel."""

    styles: np.ndarray  # (T, N, K) float64 C
    industry: np.ndarray  # (T, N) int32 C, or (1, 1) when there are no industries
    weights: np.ndarray  # (T, N) float64 C
    cap: np.ndarray  # (T, N) float64 C
    n_ind: int
    style_names: tuple[str, ...]
    industry_labels: tuple[str, ...]
    dates: np.ndarray | None
    stocks: np.ndarray | None

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("market", *self.industry_labels, *self.style_names)

    def date_label(self, t: int) -> str:
        if self.dates is None:
            return f"row {t}"
        return str(np.datetime_as_string(np.asarray(self.dates[t], dtype="datetime64[D]")))

    def stock_label(self, n: int) -> str:
        return f"row {n}" if self.stocks is None else str(self.stocks[n])

    @property
    def axis_labels(self) -> list[tuple[str, np.ndarray | None]]:
        """``(date, stock)`` labels for :func:`riskmodel._labels.reject_infinite` (None: row numbers)."""
        return [("date", self.dates), ("stock", self.stocks)]


def _float_array(value: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise VariableTypeError(f"{name} must be numeric, got dtype {arr.dtype}; convert it to float64")
    if arr.ndim != ndim:
        raise DimensionError(f"{name} must have {ndim} dims, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _design(exposures: Any) -> _Design:
    """Validate an ``Exposures`` (or any object with its fields) once and lay it out."""
    missing = [f for f in ("styles", "weights", "cap") if not hasattr(exposures, f)]
    if missing:
        raise VariableTypeError(
            f"exposures has no field(s) {missing}; pass a riskmodel.Exposures (see build_exposures)"
        )
    styles = _float_array(exposures.styles, "exposures.styles", 3)
    n_dates, n_stocks, n_styles = styles.shape
    weights = _float_array(exposures.weights, "exposures.weights", 2)
    cap = _float_array(exposures.cap, "exposures.cap", 2)
    for name, arr in (("exposures.weights", weights), ("exposures.cap", cap)):
        if arr.shape != (n_dates, n_stocks):
            raise DimensionError(
                f"{name} has shape {arr.shape}, expected (date, stock) = {(n_dates, n_stocks)} like exposures.styles"
            )
    style_names = tuple(str(s) for s in getattr(exposures, "style_names", ()) or ())
    if not style_names:
        style_names = tuple(f"style_{k}" for k in range(n_styles))
    if len(style_names) != n_styles:
        raise DimensionError(f"exposures.style_names has {len(style_names)} names for {n_styles} style columns")

    raw_ind = getattr(exposures, "industry", None)
    labels = tuple(str(s) for s in getattr(exposures, "industry_labels", ()) or ())
    if raw_ind is None:
        industry = np.zeros((1, 1), np.int32)
        labels = ()
    else:
        ind = np.asarray(raw_ind)
        if ind.dtype.kind not in "iu":
            raise VariableTypeError(
                f"exposures.industry must hold integer codes (−1 = missing), got dtype {ind.dtype}; "
                "convert labels with panel.industry_codes"
            )
        if ind.shape != (n_dates, n_stocks):
            raise DimensionError(f"exposures.industry has shape {ind.shape}, expected {(n_dates, n_stocks)}")
        industry = np.ascontiguousarray(ind, dtype=np.int32)
        if not labels:
            n_codes = int(industry.max()) + 1 if industry.size else 0
            labels = tuple(f"industry_{p}" for p in range(max(n_codes, 0)))
    dates = getattr(exposures, "dates", None)
    stocks = getattr(exposures, "stocks", None)
    design = _Design(
        styles=styles,
        industry=industry,
        weights=weights,
        cap=cap,
        n_ind=len(labels),
        style_names=style_names,
        industry_labels=labels,
        dates=None if dates is None else np.asarray(dates),
        stocks=None if stocks is None else np.asarray(stocks),
    )
    if raw_ind is not None:
        bad = (industry < -1) | (industry >= design.n_ind)
        if bad.any():
            t, n = np.argwhere(bad)[0]
            raise PanelError(
                f"exposures.industry code {industry[t, n]} at date {design.date_label(t)}, stock "
                f"{design.stock_label(n)} is outside [-1, {design.n_ind - 1}] "
                f"({design.n_ind} industry_labels); fix the codes or the labels"
            )
    reject_infinite(weights, "exposures.weights", design.axis_labels)
    reject_infinite(cap, "exposures.cap", design.axis_labels)
    return design


def _check_settings(lag: int, return_clip: float | None, min_industry_size: float) -> float:
    """Validate the settings; returns the clip as the kernel wants it (NaN = off)."""
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0:
        raise InvalidParameterError(f"lag must be an integer ≥ 0, got {lag!r}")
    if return_clip is None:
        clip = np.nan
    else:
        clip = float(return_clip)
        if not clip > 0 or not np.isfinite(clip):
            raise InvalidParameterError(
                f"return_clip must be a positive number of robust sigmas or None (no clipping), got {return_clip!r}"
            )
    try:
        size_ok = bool(np.isfinite(min_industry_size) and min_industry_size >= 1)
    except TypeError:
        size_ok = False
    if not size_ok:
        raise InvalidParameterError(
            f"min_industry_size must be a number ≥ 1 (members per industry and day), got {min_industry_size!r}"
        )
    return clip


def _singular_causes(design: _Design, returns: np.ndarray, singular: np.ndarray, lag: int) -> str:
    """Why the ``singular`` return rows have no fit, with what to do: no return that day; no
    stock with every style exposure (naming the styles missing for every stock); too few
    usable stocks or collinear exposures."""
    no_return = ~np.isfinite(returns[singular]).any(axis=1)
    rows = singular[~no_return] - lag
    no_complete = np.empty(rows.size, bool)
    absent = np.zeros(design.styles.shape[2], np.int64)  # dates on which a style is missing for every stock
    for lo in range(0, rows.size, 64):  # a (64, stock, style) mask at a time
        finite = np.isfinite(design.styles[rows[lo:lo + 64]])
        none = ~finite.all(axis=2).any(axis=1)
        no_complete[lo:lo + 64] = none
        absent += (~finite.any(axis=1)[none]).sum(axis=0)
    causes = []
    if no_return.any():
        causes.append(f"{int(no_return.sum())} without any return (a holiday or a data gap)")
    if no_complete.any():
        styles = ", ".join(f"{design.style_names[k]} on {int(c)}" for k, c in enumerate(absent) if c)
        missing = f"; missing for every stock: {styles}" if styles else ""
        causes.append(
            f"{int(no_complete.sum())} where no stock has every style exposure{missing} (a style "
            "with a long look-back, such as 252-day momentum, has none on the first dates: start "
            "the fit later or leave the style out)"
        )
    rest = int((~no_complete).sum())
    if rest:
        causes.append(f"{rest} with fewer usable stocks than factors or collinear exposures (check for "
                      "duplicate or constant style exposures)")
    return "; ".join(causes)


def _warn_dates(design: _Design, date_status: np.ndarray, ind_status: np.ndarray,
                returns: np.ndarray, lag: int) -> None:
    """One SingularDateWarning (with the causes) and one ThinIndustryWarning naming the dates at fault."""
    singular = np.flatnonzero(date_status == _k.DATE_SINGULAR)
    if singular.size:
        listed = ", ".join(design.date_label(t) for t in singular[:_MAX_LISTED])
        more = f" and {singular.size - _MAX_LISTED} more" if singular.size > _MAX_LISTED else ""
        warnings.warn(
            f"{singular.size} date(s) have an empty or rank-deficient cross-section and were "
            f"skipped (NaN factor returns): {listed}{more}. Of these: "
            f"{_singular_causes(design, returns, singular, lag)}.",
            SingularDateWarning,
            stacklevel=3,
        )
    if ind_status.size:
        thin = (ind_status == _k.IND_THIN) & (date_status == _k.DATE_OK)[:, None]
        if thin.any():
            warnings.warn(_thin_summary(design, thin), ThinIndustryWarning, stacklevel=3)


#: Industries named in the thin-industry warning (the most often thin first).
_MAX_INDUSTRIES = 5


def _thin_summary(design: _Design, thin: np.ndarray) -> str:
    """The thin-industry warning: counts, the industries most often thin (first date and the
    number of dates each), and advice that fits the classification (pooling only when the
    labels are not pooled already)."""
    from riskmodel.data.industries import POOLED_SUFFIX

    n_pairs = int(thin.sum())
    per_industry = thin.sum(axis=0)
    order = np.argsort(-per_industry, kind="stable")[: int((per_industry > 0).sum())]
    listed = []
    for p in order[:_MAX_INDUSTRIES]:
        days = np.flatnonzero(thin[:, p])
        span = "" if days.size == 1 else f", {days.size} dates to {design.date_label(int(days[-1]))}"
        listed.append(f"{design.industry_labels[p]} on {design.date_label(int(days[0]))}{span}")
    more = f" and {order.size - _MAX_INDUSTRIES} more industries" if order.size > _MAX_INDUSTRIES else ""
    pooled = any(str(label).endswith(POOLED_SUFFIX) for label in design.industry_labels)
    advice = ("The classification is already pooled ('... (other)' labels): lower min_industry_size, or use a "
              "coarser classification as the industry (e.g. FactorRiskModel(industry='sector'), riskmodel fit "
              "--industry sector)." if pooled else
              "Lower min_industry_size, or pool thin industries into their sector: panel['industry_pooled'] = "
              "rm.pool_thin_industries(panel) and FactorRiskModel(industry='industry_pooled').")
    return (f"{n_pairs} (date, industry) pair(s) in {order.size} of {len(design.industry_labels)} industries have too "
            f"few members in the estimation sample; their factor returns are NaN those dates and their members are "
            f"fitted on market and styles only: {'; '.join(listed)}{more}. {advice}")


def factor_returns(
    returns: np.ndarray,
    exposures: Any,
    *,
    lag: int = 1,
    return_clip: float | None = 5.0,
    min_industry_size: float = 5,
) -> WLSResult:
    """Daily factor returns by constrained cross-sectional WLS.

    Parameters
    ----------
    returns : ndarray (date, stock) float64
        Row t = returns of day t; NaN = no return (the stock is out of that day's regression).
    exposures : Exposures
        Unlagged exposures (``styles (date, stock, style)``, ``industry (date, stock)`` int32
        codes or None, ``weights``, ``cap``); any object with these fields works.
    lag : int, default 1
        The regression of day t uses exposures of row ``t − lag``; rows ``t < lag`` are NaN.
    return_clip : float or None, default 5.0
        Returns are clipped at ``median ± return_clip·1.4826·MAD`` of the day's sample for
        the *fit only* (residuals use unclipped returns). None: no clipping, so factor
        returns are exactly the returns of :func:`mimicking_portfolios`.
    min_industry_size : float, default 5
        An industry with fewer members in the day's sample, or an effective count
        ``(Σv)²/Σv²`` below this, is dropped that day (NaN factor return); its members stay
        in the regression on market and styles. An industry with no member in the day's
        sample is NaN that day too, without a warning.

    Returns
    -------
    WLSResult
        Factor returns, residuals, R², standard errors and counts, factor order
        ``["market", *industry_labels, *style_names]``.

    Raises
    ------
    DimensionError
        Shapes of ``returns`` and the exposure arrays disagree.
    VariableTypeError
        A non-numeric array, or non-integer industry codes.
    NonFiniteError
        ±inf in returns, weights or caps.
    InvalidParameterError
        ``lag``, ``return_clip`` or ``min_industry_size`` out of range.

    Warns
    -----
    SingularDateWarning
        Dates whose cross-section is empty or rank deficient (all outputs NaN that day).
    ThinIndustryWarning
        Industries dropped on some dates for having too few members.

    Notes
    -----
    A stock is in day t's regression when its return, its weight (> 0), its styles and its
    industry code at ``t − lag`` are all present. The constraint ``Σ_p c_p f_p = 0``
    (``c_p`` = cap weight of industry p in the sample) is imposed by restriction
    ``f = R g`` with reference industry of largest ``c_p``:
    ``g = (RᵀXᵀVXR)⁻¹ RᵀXᵀV r``, solved by a Cholesky factorisation of the Gram matrix,
    accumulated blockwise from the industry codes in ``O(N K²)`` per day.

    References
    ----------
    Menchero, Orr, Wang, *The Barra US Equity Model (USE4), Methodology Notes*, MSCI 2011.
    Menchero, *Characteristics of Factor Portfolios*, SSRN 1601414 (2010).

    See Also
    --------
    mimicking_portfolios : the portfolios whose returns are these factor returns.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> rng = np.random.default_rng(0)
    >>> T, N = 3, 60
    >>> ex = SimpleNamespace(styles=rng.normal(size=(T, N, 2)),
    ...                      industry=np.tile(np.arange(N, dtype=np.int32) % 3, (T, 1)),
    ...                      weights=np.ones((T, N)), cap=np.ones((T, N)))
    >>> res = factor_returns(rng.normal(size=(T, N)), ex, return_clip=None)
    >>> res.factor_names
    ('market', 'industry_0', 'industry_1', 'industry_2', 'style_0', 'style_1')
    >>> bool(np.isnan(res.factor_returns[0]).all()), bool(np.isfinite(res.factor_returns[1:]).all())
    (True, True)
    """
    clip = _check_settings(lag, return_clip, min_industry_size)
    design = _design(exposures)
    r = _float_array(returns, "returns", 2)
    n_dates, n_stocks, _ = design.styles.shape
    if r.shape != (n_dates, n_stocks):
        raise DimensionError(
            f"returns has shape {r.shape}, expected (date, stock) = {(n_dates, n_stocks)} like exposures.styles"
        )
    reject_infinite(r, "returns", design.axis_labels)

    m = len(design.factor_names)
    f = np.empty((n_dates, m))
    se = np.empty((n_dates, m))
    resid = np.empty((n_dates, n_stocks))
    r2 = np.empty(n_dates)
    n_obs = np.empty(n_dates, np.int64)
    n_clipped = np.empty(n_dates, np.int64)
    date_status = np.empty(n_dates, np.int8)
    ind_status = np.empty((n_dates, design.n_ind), np.int8)
    _k.wls_factor_returns(
        r,
        design.styles,
        design.industry,
        design.weights,
        design.cap,
        design.n_ind,
        int(lag),
        clip,
        float(min_industry_size),
        f,
        resid,
        r2,
        se,
        n_obs,
        n_clipped,
        date_status,
        ind_status,
    )
    _warn_dates(design, date_status, ind_status, r, int(lag))
    return WLSResult(
        factor_returns=f,
        residuals=resid,
        r2=r2,
        se=se,
        n_obs=n_obs,
        n_clipped=n_clipped,
        factor_names=design.factor_names,
        dates=design.dates,
        stocks=design.stocks,
    )


def _restriction_matrix(c: np.ndarray, active: np.ndarray, n_styles: int) -> np.ndarray:
    """Restriction ``R (m, q)`` with ``f = R g`` satisfying ``Σ_p c_p f_p = 0``.

    Columns: market, the active industries except the reference, the styles. The reference
    industry is the active one with the largest ``c``; its row is ``−c_p/c_ref`` in the
    column of each other active industry p. Rows of inactive industries are zero (their
    factor return is 0 in the fit and reported as NaN).

    Parameters
    ----------
    c : ndarray (P,)
        Constraint weights (cap weights).
    active : ndarray (P,) bool
        Industries kept this date.
    n_styles : int
        K.
    """
    n_ind = c.shape[0]
    m = 1 + n_ind + n_styles
    keep = [0]
    ref = -1
    if active.any():
        ref = int(np.flatnonzero(active)[np.argmax(c[active])])
    others = [p for p in np.flatnonzero(active) if p != ref]
    keep += [1 + p for p in others]
    keep += list(range(1 + n_ind, m))
    r_mat = np.zeros((m, len(keep)))
    r_mat[keep, np.arange(len(keep))] = 1.0
    if ref >= 0 and others:
        r_mat[1 + ref, 1 : 1 + len(others)] = -c[others] / c[ref]
    return r_mat


def _date_index(design: _Design, t: Any) -> int:
    n_dates = design.styles.shape[0]
    if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
        idx = int(t)
    else:
        if design.dates is None:
            raise InvalidParameterError(f"t={t!r} is not an integer row and the exposures carry no dates")
        hits = np.flatnonzero(design.dates == np.datetime64(t, "ns").astype(design.dates.dtype))
        if hits.size == 0:
            raise InvalidParameterError(f"date {t!r} is not among the exposure dates; pick one of exposures.dates")
        idx = int(hits[0])
    if not -n_dates <= idx < n_dates:
        raise InvalidParameterError(f"t={t!r} is out of range for {n_dates} dates")
    return idx % n_dates


def mimicking_portfolios(
    exposures: Any,
    t: Any,
    *,
    lag: int = 1,
    returns_row: np.ndarray | None = None,
    return_clip: float | None = None,
    min_industry_size: float = 5,
) -> np.ndarray:
    """Factor-mimicking portfolio weights ``Ω`` of the regression of return date t.

    Parameters
    ----------
    exposures : Exposures
        Unlagged exposures, as for :func:`factor_returns`.
    t : int or date-like
        Row (or date) of the *returns* being explained; exposures of row ``t − lag`` are used.
    lag : int, default 1
        As in :func:`factor_returns`.
    returns_row : ndarray (stock,), optional
        Returns of day t; only which entries are finite matters (stocks without a return are
        out of the regression). None: every stock is assumed to have a return.
    return_clip : float or None, default None
        Accepted for symmetry with :func:`factor_returns`. Ω does not depend on it: with
        clipping on, ``Ω @ clip(r_t) = f_t`` where ``clip`` is the day's robust clip;
        with None, ``Ω @ r_t = f_t`` exactly.
    min_industry_size : float, default 5
        As in :func:`factor_returns`.

    Returns
    -------
    ndarray (factor, stock)
        ``Ω = R (RᵀXᵀVXR)⁻¹ RᵀXᵀV``; zero columns for stocks out of the regression, NaN rows
        for industries dropped that day, all NaN (with a SingularDateWarning) when the date is
        rank deficient.

    Raises
    ------
    InvalidParameterError
        ``t`` out of range or ``t < lag``, or a bad setting.
    DimensionError
        ``returns_row`` has the wrong length.

    Notes
    -----
    Row ``k`` of Ω is a portfolio whose return is factor k's return (Menchero 2010): the
    market row is a net-long portfolio with weights summing to 1, industry and style rows
    are dollar neutral; ``Ω X R = R``, so a style row has unit exposure to its own style and
    none to the others.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> rng = np.random.default_rng(0)
    >>> T, N = 2, 60
    >>> ex = SimpleNamespace(styles=rng.normal(size=(T, N, 2)),
    ...                      industry=np.tile(np.arange(N, dtype=np.int32) % 3, (T, 1)),
    ...                      weights=np.ones((T, N)), cap=np.ones((T, N)))
    >>> r = rng.normal(size=(T, N))
    >>> omega = mimicking_portfolios(ex, 1)
    >>> f = factor_returns(r, ex, return_clip=None).factor_returns[1]
    >>> bool(np.allclose(omega @ r[1], f, rtol=1e-12, atol=1e-15))
    True
    """
    _check_settings(lag, return_clip, min_industry_size)
    design = _design(exposures)
    idx = _date_index(design, t)
    if idx < lag:
        raise InvalidParameterError(
            f"return date {design.date_label(idx)} has no exposures {lag} row(s) earlier; pick t ≥ lag = {lag}"
        )
    s = idx - lag
    n_stocks = design.styles.shape[1]
    k_styles = design.styles.shape[2]
    if returns_row is None:
        r = np.zeros(n_stocks)
    else:
        r = _float_array(returns_row, "returns_row", 1)
        if r.shape != (n_stocks,):
            raise DimensionError(f"returns_row has length {r.shape[0]}, expected {n_stocks} stocks")
    n_ind = design.n_ind
    x = design.styles[s]
    ind = design.industry[s] if n_ind > 0 else design.industry[0]
    fit = np.empty(n_stocks, np.bool_)
    res = np.empty(n_stocks, np.bool_)
    ind_status = np.empty(n_ind, np.int8)
    c = np.empty(n_ind)
    _k.day_sample(r, design.weights[s], x, ind, design.cap[s], n_ind, float(min_industry_size), fit, res, ind_status, c)

    m = 1 + n_ind + k_styles
    active = ind_status == _k.IND_ACTIVE
    omega = np.zeros((m, n_stocks))
    rows = np.flatnonzero(fit)
    # dense design for one date: market, active industry dummies, styles
    x_fit = np.zeros((rows.size, m))
    x_fit[:, 0] = 1.0
    if n_ind > 0:
        codes = ind[rows]
        keep = active[codes]
        x_fit[np.flatnonzero(keep), 1 + codes[keep]] = 1.0
    x_fit[:, 1 + n_ind :] = x[rows]
    v = design.weights[s, rows]
    r_mat = _restriction_matrix(c, active, k_styles)
    xr_v = (x_fit @ r_mat) * v[:, None]  # V X R, rows scaled (no N×N diag)
    gram = (x_fit @ r_mat).T @ xr_v
    chol = np.array(gram, order="C")
    q = gram.shape[0]
    ref_ok = not (active.any() and not c[active].max() > 0)
    if rows.size == 0 or not ref_ok or not _k.cholesky_lower(chol, q, _k.PIVOT_RTOL):
        warnings.warn(
            f"date {design.date_label(idx)} has an empty or rank-deficient cross-section; "
            "its mimicking portfolios are NaN",
            SingularDateWarning,
            stacklevel=2,
        )
        return np.full((m, n_stocks), np.nan)
    lower = np.tril(chol)
    # (RᵀXᵀVXR)⁻¹ RᵀXᵀV by two triangular solves
    tmp = np.linalg.solve(lower, xr_v.T)
    omega[:, rows] = r_mat @ np.linalg.solve(lower.T, tmp)
    omega[1:1 + n_ind][~active] = np.nan
    return omega
