"""New-signal research: manufacture a factor from a characteristic (the seeds' story).

clean → neutralise → a daily cross-sectional regression of returns on the cleaned,
neutral exposure → a factor return series and the portfolio that earns it. The alpha
verdict is :func:`riskmodel.alpha_test`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._labels import as_date_stock, check_aligned
from riskmodel._results import Result, check_kind
from riskmodel.errors import InvalidParameterError, MissingVariableError, VariableTypeError, warns_at_caller

__all__ = ["factor_from_signal", "SignalFactor"]


@dataclass(frozen=True, eq=False, repr=False)
class SignalFactor(Result):
    """A signal's factor: exposure, daily returns and the portfolio that earns them.

    Attributes
    ----------
    exposure : DataArray (date, stock)
        The cleaned and neutralised signal at the close of each date.
    returns : DataArray (date,)
        Factor return of each date, from the previous ``lag``-th day's exposure.
    weights : DataArray (date, stock)
        The factor portfolio held over each date: ``(weights * returns).sum("stock") == returns``.
    control_exposures : DataArray (date, control)
        The portfolio's exposure to each control (zero by construction, to rounding).
    r2 : DataArray (date,)
    mode : str
        ``"single"`` (one-regressor cross-sectional regression, the seeds' formula) or
        ``"model"`` (an added style in the full model's WLS).
    """

    exposure: xr.DataArray
    returns: xr.DataArray
    weights: xr.DataArray
    control_exposures: xr.DataArray
    r2: xr.DataArray
    mode: str
    stock_returns: xr.DataArray = field(repr=False)
    n_quantiles: int = 10
    lag: int = 1

    kind: ClassVar[str] = "signal_factor"

    @cached_property
    def turnover(self) -> xr.DataArray:
        """DataArray (date,): one-way turnover ``½ Σ |w_t − w_{t−1}|`` of the factor portfolio."""
        w = self.weights.fillna(0.0)
        return 0.5 * np.abs(w - w.shift(date=1)).sum("stock").rename("turnover")

    @cached_property
    def deciles(self):
        """The decile cousin: long top / short bottom quantile, equal-weighted."""
        from riskmodel.research.portfolios import quantile_portfolios

        return quantile_portfolios(self.exposure, self.stock_returns, n=self.n_quantiles, lag=self.lag)

    def summary(self) -> str:
        """Size, annualised mean, volatility and Sharpe ratio of the factor and of its decile
        cousin, turnover, and the largest exposure to a control (zero for a neutral book)."""
        r = self.returns.to_series().dropna()
        dec = self.deciles.returns.to_series().dropna()
        sharpe = lambda s: s.mean() / s.std() * np.sqrt(252) if s.std() > 0 else np.nan  # noqa: E731
        lines = [
            f"SignalFactor ({self.mode}): {r.size} daily returns, ann. mean {r.mean() * 252:.2%}, "
            f"ann. vol {r.std() * np.sqrt(252):.2%}, Sharpe {sharpe(r):.2f}",
            f"decile long-short: ann. mean {dec.mean() * 252:.2%}, Sharpe {sharpe(dec):.2f}",
            f"mean turnover {float(self.turnover.mean()):.3f}/day; "
            f"max |exposure to controls| {float(np.nanmax(np.abs(self.control_exposures.to_numpy()))) if self.control_exposures.size else 0.0:.1e}",
        ]
        return "\n".join(lines)

    def to_dataset(self) -> xr.Dataset:
        """The arrays as variables (``exposure``, ``factor_return``, ``weights``,
        ``control_exposure``, ``r2``, ``stock_returns``); ``mode``, ``n_quantiles``, ``lag``
        and the name of the stock returns as attributes."""
        arrays = {key: getattr(self, field_name) for key, field_name in _DATASET_FIELDS.items()}
        return xr.Dataset(
            {key: da.rename(None) for key, da in arrays.items()},
            attrs={
                "riskmodel_kind": self.kind,
                "mode": self.mode,
                "n_quantiles": int(self.n_quantiles),
                "lag": int(self.lag),
                "names": {key: None if da.name is None else str(da.name) for key, da in arrays.items()},
            },
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "SignalFactor":
        """Rebuild the factor from :meth:`to_dataset` (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "SignalFactor")
        names = ds.attrs.get("names") or {}
        arrays = {field_name: ds[key].rename(names.get(key, key)) for key, field_name in _DATASET_FIELDS.items()}
        return cls(
            **arrays,
            mode=str(ds.attrs["mode"]),
            n_quantiles=int(ds.attrs["n_quantiles"]),
            lag=int(ds.attrs["lag"]),
        )


#: dataset variable -> SignalFactor field
_DATASET_FIELDS = {
    "exposure": "exposure",
    "factor_return": "returns",
    "weights": "weights",
    "control_exposure": "control_exposures",
    "r2": "r2",
    "stock_returns": "stock_returns",
}


def _as_control_list(controls: Any, panel: xr.Dataset) -> dict[str, xr.DataArray]:
    if controls is None:
        return {}
    if isinstance(controls, str):
        controls = [controls]
    out = {}
    for item in controls:
        if isinstance(item, str):
            if item not in panel:
                raise MissingVariableError(f"control {item!r} is not a panel variable (has {sorted(map(str, panel.data_vars))})")
            out[item] = panel[item]
        elif isinstance(item, xr.DataArray):
            out[str(item.name)] = item
        else:
            raise InvalidParameterError(f"controls must be variable names or DataArrays, got {type(item).__name__}")
    return out


@warns_at_caller
def factor_from_signal(
    signal: xr.DataArray,
    panel: xr.Dataset,
    *,
    controls: Sequence[str] | None = ("size", "value"),
    industry: str | None = "industry",
    cap: str = "market_cap",
    weights: str | None = None,
    mode: str = "single",
    lag: int = 1,
    winsor: float = 3.0,
    n_quantiles: int = 10,
) -> SignalFactor:
    """Clean a signal, neutralise it, and manufacture its factor return and portfolio.

    Parameters
    ----------
    signal : DataArray (date, stock)
        The raw characteristic (e.g. year-over-year growth of card spending).
    panel : Dataset
        With ``returns``, the cap variable, the controls and ``industry``.
    controls : list of str
        Characteristics to neutralise against (cleaned the same way first).
    industry : str or None
        Industry variable to neutralise against (dummies), or ``None``.
    cap : str
        Market cap (cap-weighted centring in :func:`riskmodel.clean`).
    weights : {None, "sqrt_cap"}
        Regression weights of the neutralisation and of the single regression: ``None``
        (equal: ``f = Σ g r / Σ g²``, the seeds' formula) or ``"sqrt_cap"``.
    mode : {"single", "model"}
        ``"single"``: one-regressor cross-sectional regression on the neutral signal.
        ``"model"``: the neutral signal added as a style to the full model (market,
        industries, the controls as styles), whose mimicking portfolio is the factor
        portfolio.
    lag : int
        Exposure at the close of ``t − lag`` earns the return of ``t``.
    winsor : float
    n_quantiles : int
        For the decile cousin.

    Returns
    -------
    SignalFactor

    Raises
    ------
    VariableTypeError
        ``signal`` is a variable's name rather than the variable (pass ``panel[name]``).
    MissingVariableError
        The panel lacks ``returns``, the cap or the industry variable.

    Notes
    -----
    In single mode, with neutral exposure ``g`` and weights ``v``,
    ``f_t = Σ_n v_n g_{n,t−1} r_{n,t} / Σ_n v_n g²_{n,t−1}``, which is the return of the
    portfolio ``w_{n,t} = v_n g_{n,t−1} / Σ v g²``; since ``CᵀVg = 0`` for every control
    ``C``, the portfolio has zero exposure to each control on each day.

    Examples
    --------
    The seeds' five firms: cleaned ``g`` and returns (%) give a factor return of 0.88%.

    >>> import numpy as np
    >>> g = np.array([1.28, 0.55, 0.15, -0.26, -1.72]); r = np.array([1.2, 0.3, -0.1, -0.4, -1.5])
    >>> round(float(g @ r / (g @ g)), 2)
    0.88
    """
    from riskmodel.exposures import clean, neutralise

    if mode not in {"single", "model"}:
        raise InvalidParameterError(f"mode must be 'single' or 'model', got {mode!r}")
    if weights not in {None, "sqrt_cap"}:
        raise InvalidParameterError(f"weights must be None or 'sqrt_cap', got {weights!r}")
    if isinstance(signal, str):
        raise VariableTypeError(
            f"factor_from_signal: signal must be a DataArray (date, stock), got the str {signal!r}; "
            f"pass the variable itself: panel[{signal!r}]"
        )
    signal = as_date_stock(signal, "signal")
    for name in ["returns", cap, *([industry] if industry else [])]:
        if name not in panel:
            raise MissingVariableError(f"panel has no variable {name!r}")
    check_aligned(panel, signal, "the panel", "signal", ("date", "stock"))
    market_cap = panel[cap].transpose("date", "stock")
    control_raw = _as_control_list(controls, panel)
    cleaned_controls = {name: clean(x.transpose("date", "stock"), cap=market_cap, winsor=winsor) for name, x in control_raw.items()}
    z = clean(signal, cap=market_cap, winsor=winsor)
    v = np.sqrt(market_cap) if weights == "sqrt_cap" else None
    g = neutralise(z, list(cleaned_controls.values()), industry=panel[industry] if industry else None, weights=v)
    g = _rescale(g).rename("exposure")
    stock_returns = panel["returns"].transpose("date", "stock")
    if mode == "single":
        w, f, r2 = _single_regression(g, stock_returns, v, lag)
    else:
        w, f, r2 = _model_regression(g, panel, cleaned_controls, industry, cap, lag)
    exposures_to_controls = _control_exposures(w, cleaned_controls, panel[industry] if industry else None, lag)
    return SignalFactor(
        exposure=g,
        returns=f.rename("factor_return"),
        weights=w.rename("weights"),
        control_exposures=exposures_to_controls.rename("control_exposure"),
        r2=r2.rename("r2"),
        mode=mode,
        stock_returns=stock_returns,
        n_quantiles=n_quantiles,
        lag=lag,
    )


def _control_exposures(
    w: xr.DataArray, controls: dict[str, xr.DataArray], industry: xr.DataArray | None, lag: int
) -> xr.DataArray:
    """The factor portfolio's exposure to each control, and its net weight in each industry.

    Returns
    -------
    DataArray (date, control)
        Zero for a neutral book (to rounding).
    """
    columns = {name: (w * c.shift(date=lag)).sum("stock") for name, c in controls.items()}
    if industry is not None:
        labels = industry.shift(date=lag) if "date" in industry.dims else industry
        values = np.asarray(labels.to_numpy()).astype(str)
        for label in np.unique(values):
            if label in {"", "nan", "None"}:
                continue
            member = xr.DataArray(values == label, coords=labels.coords, dims=labels.dims)
            columns[f"industry:{label}"] = w.where(member, 0.0).sum("stock")
    if not columns:
        return xr.DataArray(np.zeros((w.sizes["date"], 0)), coords={"date": w["date"], "control": []}, dims=("date", "control"))
    return xr.concat(list(columns.values()), dim=pd.Index(list(columns), name="control")).transpose("date", "control")


def _rescale(g: xr.DataArray) -> xr.DataArray:
    """Divide each date by its equal-weighted std (a positive scalar keeps neutrality); 0 stays 0."""
    sd = g.std("stock", skipna=True)
    return g / sd.where(sd > 0, 1.0)


def _single_regression(g: xr.DataArray, returns: xr.DataArray, v: xr.DataArray | None, lag: int):
    """One-regressor cross-sectional regression on the held exposure; the book is formed at t − lag.

    Every stock with an exposure (and weight) at the close of ``t − lag`` is in the book, so
    the book is exactly neutral; a stock without a return on day ``t`` (a halt) earns 0.
    A day with no spread in the exposure has a zero book and a zero factor return.
    """
    held = g.shift(date=lag).to_numpy()
    weight = np.ones_like(held) if v is None else v.shift(date=lag).to_numpy()
    r = returns.to_numpy()
    in_book = np.isfinite(held) & np.isfinite(weight)
    vg = np.where(in_book, weight * np.where(in_book, held, 0.0), 0.0)
    denom = np.sum(vg * np.where(in_book, held, 0.0), axis=1)
    has_book = in_book.any(axis=1) & np.isfinite(r).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(denom[:, None] > 0, vg / denom[:, None], 0.0)
    w[~has_book] = np.nan
    f = np.where(has_book, np.sum(w * np.nan_to_num(r), axis=1), np.nan)
    fitted = np.where(in_book, held, np.nan) * f[:, None]
    both = in_book & np.isfinite(r)
    wv = np.where(both, weight, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rbar = np.sum(wv * np.nan_to_num(r), axis=1) / wv.sum(axis=1)
        tss = np.sum(wv * (np.nan_to_num(r) - rbar[:, None]) ** 2, axis=1)
        rss = np.sum(wv * np.nan_to_num(r - fitted) ** 2, axis=1)
        r2 = np.where(has_book & (tss > 0), 1.0 - rss / tss, np.nan)
    coords = {"date": g["date"], "stock": g["stock"]}
    return (
        xr.DataArray(w, coords=coords, dims=("date", "stock")),
        xr.DataArray(f, coords={"date": g["date"]}, dims="date"),
        xr.DataArray(r2, coords={"date": g["date"]}, dims="date"),
    )


def _model_regression(g, panel, cleaned_controls, industry, cap, lag):
    """The neutral signal as one more style in the full model's WLS."""
    from riskmodel.models.fundamental import FactorRiskModel

    styles = [*cleaned_controls, "__signal__"]
    work = panel.assign({name: c for name, c in cleaned_controls.items()}).assign(__signal__=g)
    fit = FactorRiskModel(styles=styles, industry=industry, cap=cap, lag=lag, return_clip=None, covariance=False, progress=False).fit(work)
    f = fit.factor_returns.sel(factor="__signal__").drop_vars("factor")
    dates = fit.dates
    rows = []
    for t in range(len(dates)):
        if np.isfinite(f.values[t]):
            rows.append(fit.mimicking_portfolios(dates[t]).sel(factor="__signal__").to_numpy())
        else:
            rows.append(np.full(len(fit.stocks), np.nan))
    w = xr.DataArray(np.vstack(rows), coords={"date": dates, "stock": fit.stocks}, dims=("date", "stock"))
    return w, f, fit.r2
