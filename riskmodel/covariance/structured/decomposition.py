"""The risk of one portfolio or a batch split into factor and specific parts.

:func:`decompose` computes it on a :class:`~riskmodel.covariance.structured.StructuredCovariance`
(what ``cov.decompose(w)`` runs); :class:`RiskDecomposition` holds the result, labels its
parts, prints a summary and round-trips through ``rm.save`` / ``rm.load`` (kind
``"risk_decomposition"``).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from riskmodel._results import Result, check_kind
import riskmodel.covariance.structured.passes as passes
from riskmodel.covariance.structured.labels import AxisLabels
from riskmodel.covariance.structured.validation import as_ids, date_label, some_ids
from riskmodel.covariance.structured.weights import Aligned, WeightsLike
from riskmodel.errors import AlignmentError, InvalidParameterError, MissingVariableError

if TYPE_CHECKING:
    from riskmodel.covariance.structured.operator import StructuredCovariance

__all__ = ["RiskDecomposition", "decompose"]

#: One value per portfolio: float for one portfolio, (portfolio,) for a batch.
_SCALARS = ("total_vol", "factor_vol", "specific_vol", "factor_share", "specific_contribution")
#: The exact variances the totals are computed from (stored so that a loaded decomposition
#: gives bit-identical totals).
_VARIANCES = ("factor_variance", "specific_variance")
#: Per factor and per stock: (factor,) / (stock,), with a leading portfolio dim for a batch.
_PER_FACTOR = ("factor_exposures", "factor_contributions")
_PER_STOCK = ("weights", "marginal_contributions", "component_contributions")


def decompose(cov: "StructuredCovariance", w: WeightsLike, *, per_stock: bool = True) -> "RiskDecomposition":
    """The :class:`RiskDecomposition` of weights ``w`` under ``cov`` (see
    :meth:`StructuredCovariance.decompose <riskmodel.covariance.structured.StructuredCovariance.decompose>`).

    Non-finite weights are detected on the exposures ``x = Bᵀ w`` (a NaN/inf weight always
    makes its row of ``x`` non-finite), so the weights are not scanned separately.
    """
    a = cov._align(w, check_finite=False)
    W = np.ascontiguousarray(a.values)
    per: tuple[np.ndarray, np.ndarray] | None = None
    if cov._groups is not None:  # one fused pass: exposures, moments and per-stock parts
        threads = passes.pass_threads(W.size)
        if per_stock:
            x, fx, factor_var, specific_var, mcr, cr = cov._groups.decompose(W, cov._F, cov._d, threads=threads)
            per = (mcr, cr)
        else:
            x, fx, factor_var, specific_var = cov._groups.moments(W, cov._F, cov._d, threads=threads)
        _check_exposures(cov, a, x)
    else:
        with np.errstate(invalid="ignore", over="ignore"):  # bad weights are reported just below
            x = cov._exposure_rows(W)
        _check_exposures(cov, a, x)
        fx = x @ cov._F
        factor_var = np.vecdot(x, fx)
        if per_stock:
            specific_var, mcr, cr = cov._per_stock_rows(W, fx, factor_var)
            per = (mcr, cr)
        else:
            specific_var = passes.weighted_sq(W, cov._d)
    return RiskDecomposition(
        weights=W, x=x, fx=fx, factor_var=factor_var, specific_var=specific_var,
        cov=cov, aligned=a, per_stock=per,
    )


def _check_exposures(cov: "StructuredCovariance", a: Aligned, x: np.ndarray) -> None:
    """Name the stocks and portfolios at fault when the exposures ``x`` are not finite."""
    if not np.isfinite(x).all():
        cov._check_aligned(a)


class RiskDecomposition(Result):
    """The risk of one portfolio or a batch, split into factor and specific parts.

    Made by :meth:`StructuredCovariance.decompose` (or read back by ``rm.load``); not built
    directly. Scalars are floats for one portfolio and DataArrays (portfolio,) for a batch;
    per-factor and per-stock parts are DataArrays with a ``factor`` / ``stock`` dim.
    Per-stock contributions come computed from ``decompose`` (or, with ``per_stock=False``,
    on first access: one more ``(P, m) @ (m, N)`` GEMM and blocked pass).

    Attributes
    ----------
    total_vol, factor_vol, specific_vol : float or DataArray (portfolio,)
        ``σ``, ``√(xᵀFx)``, ``√(Σ d w²)``; ``σ² = factor² + specific²``.
    factor_share : float or DataArray (portfolio,)
        ``xᵀFx / σ²`` (NaN for a zero portfolio).
    factor_exposures : DataArray (factor,) or (portfolio, factor)
        ``x = Bᵀ w``.
    factor_contributions : DataArray (factor,) or (portfolio, factor)
        Euler ``x_k (F x)_k / σ``; with ``specific_contribution`` they add up to ``σ``.
    specific_contribution : float or DataArray (portfolio,)
        ``Σ d w² / σ``.
    marginal_contributions : DataArray (stock,) or (portfolio, stock)
        ``MCR = Σ w / σ = ∂σ/∂w``.
    component_contributions : DataArray (stock,) or (portfolio, stock)
        ``w ∘ MCR``; adds up to ``σ``.

    Notes
    -----
    A zero portfolio has ``σ = 0`` and all contributions 0. :meth:`to_dataset` holds every
    part; :meth:`from_dataset` (what ``rm.load`` calls) rebuilds the same numbers, bit for bit.
    """

    kind = "risk_decomposition"

    def __init__(
        self,
        *,
        weights: np.ndarray,
        x: np.ndarray,
        fx: np.ndarray,
        factor_var: np.ndarray,
        specific_var: np.ndarray,
        cov: "StructuredCovariance",
        aligned: Aligned,
        per_stock: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._setup(
            weights, x, factor_var, specific_var, labels=cov._labels, date=cov.date,
            batched=aligned.batched, batch_dim=aligned.batch_dim, batch_labels=aligned.batch_labels,
        )
        self._fx = fx
        self._cov: StructuredCovariance | None = cov  # computes the per-stock parts on first access
        if per_stock is not None:
            self.__dict__["_per_stock"] = per_stock  # fills the cached property

    def _setup(
        self,
        weights: np.ndarray,
        x: np.ndarray,
        factor_var: np.ndarray,
        specific_var: np.ndarray,
        *,
        labels: AxisLabels,
        date: np.datetime64 | None,
        batched: bool,
        batch_dim: str,
        batch_labels: np.ndarray | None,
    ) -> None:
        self._w = weights
        self._x = x
        self._factor_var = factor_var
        self._specific_var = specific_var
        self._total_var = factor_var + specific_var
        self._vol = np.sqrt(self._total_var)
        self._labels = labels
        self._date = date
        self._batched = batched
        self._batch_dim = batch_dim
        self._batch_labels = batch_labels
        self._templates: dict[tuple[str, ...], xr.DataArray] = {}

    # -- labelling helpers ---------------------------------------------------------------

    @property
    def batched(self) -> bool:
        """True when the decomposition holds several portfolios."""
        return self._batched

    @property
    def n_portfolios(self) -> int:
        """Number of portfolios P (1 for a single one)."""
        return self._w.shape[0]

    @property
    def date(self) -> np.datetime64 | None:
        """The forecast date of the covariance (``datetime64[ns]``) or None."""
        return self._date

    @cached_property
    def _portfolio_labels(self) -> np.ndarray:
        labels = self._batch_labels
        return np.arange(self.n_portfolios) if labels is None else np.asarray(labels)

    @cached_property
    def _batch_coords(self) -> xr.Coordinates:
        """The portfolio coordinate (with its index), built once for every labelled output."""
        return xr.Coordinates({self._batch_dim: self._portfolio_labels})

    def _scalar(self, values: np.ndarray, name: str) -> Any:
        if not self.batched:
            return float(values[0])
        return self._labelled(values, (self._batch_dim,), name)

    def _per(self, values: np.ndarray, dim: str, name: str) -> xr.DataArray:
        if not self.batched:
            return self._labels.da(values[0], (dim,), name)
        return self._labelled(values, (self._batch_dim, dim), name)

    def _labelled(self, values: np.ndarray, dims: tuple[str, ...], name: str) -> xr.DataArray:
        """``values`` labelled on ``dims`` by a shallow copy of a per-dims template: every
        output of the decomposition shares its coordinates and indexes (building them per
        output deep-copied the stock index each time)."""
        template = self._templates.get(dims)
        if template is None:
            shape = tuple(values.shape)
            extra = self._batch_coords
            template = self._labels.da(np.broadcast_to(np.float64(0.0), shape), dims, "template", extra)
            self._templates[dims] = template
        out = template.copy(deep=False, data=values)
        out.name = name
        return out

    # -- arrays --------------------------------------------------------------------------

    @cached_property
    def _factor_contrib(self) -> np.ndarray:
        return passes.safe_div(self._x * self._fx, self._vol)

    @cached_property
    def _per_stock(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P, N)`` marginal ``Σ w / σ`` and component ``w ∘ MCR`` contributions (when
        ``decompose(per_stock=False)`` left them for later)."""
        _, mcr, cr = self._cov._per_stock_rows(self._w, self._fx, self._factor_var)
        return mcr, cr

    @property
    def _mcr(self) -> np.ndarray:
        return self._per_stock[0]

    @property
    def _cr(self) -> np.ndarray:
        return self._per_stock[1]

    # -- public --------------------------------------------------------------------------

    @property
    def variance(self) -> Any:
        """``σ²``: float or DataArray (portfolio,)."""
        return self._scalar(self._total_var, "variance")

    @property
    def total_vol(self) -> Any:
        """``σ``: float or DataArray (portfolio,)."""
        return self._scalar(self._vol, "total_vol")

    @property
    def factor_vol(self) -> Any:
        """``√(xᵀ F x)``: float or DataArray (portfolio,)."""
        return self._scalar(np.sqrt(np.maximum(self._factor_var, 0.0)), "factor_vol")

    @property
    def specific_vol(self) -> Any:
        """``√(Σ d w²)``: float or DataArray (portfolio,)."""
        return self._scalar(np.sqrt(self._specific_var), "specific_vol")

    @property
    def factor_share(self) -> Any:
        """Factor share of variance ``xᵀFx / σ²``: float or DataArray (portfolio,)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self._factor_var / self._total_var
        return self._scalar(share, "factor_share")

    @property
    def factor_exposures(self) -> xr.DataArray:
        """``Bᵀ w``: DataArray (factor,) or (portfolio, factor)."""
        return self._per(self._x, "factor", "factor_exposures")

    @property
    def factor_contributions(self) -> xr.DataArray:
        """Euler contributions ``x_k (F x)_k / σ``: DataArray (factor,) or (portfolio, factor)."""
        return self._per(self._factor_contrib, "factor", "factor_contributions")

    @property
    def specific_contribution(self) -> Any:
        """``Σ d w² / σ``: float or DataArray (portfolio,)."""
        return self._scalar(passes.safe_div(self._specific_var, self._vol), "specific_contribution")

    @property
    def marginal_contributions(self) -> xr.DataArray:
        """``MCR = Σ w / σ``: DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._mcr, "stock", "marginal_contributions")

    @property
    def component_contributions(self) -> xr.DataArray:
        """``w ∘ MCR`` (adds up to σ): DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._cr, "stock", "component_contributions")

    @property
    def weights(self) -> xr.DataArray:
        """The aligned weights: DataArray (stock,) or (portfolio, stock)."""
        return self._per(self._w, "stock", "weights")

    # -- the result API ------------------------------------------------------------------

    def to_dataset(self) -> xr.Dataset:
        """Every part as one Dataset (dims ``[portfolio,] factor, stock``).

        Returns
        -------
        Dataset
            The five totals, ``factor_variance`` and ``specific_variance`` (what the totals
            are computed from), the per-factor and per-stock parts, a scalar ``date``
            coordinate when the date is known and ``attrs["riskmodel_kind"] =
            "risk_decomposition"``; :meth:`from_dataset` (and ``rm.load``) read it back.
        """
        parts = {name: getattr(self, name) for name in _SCALARS + _PER_FACTOR + _PER_STOCK}
        parts["factor_variance"] = self._scalar(self._factor_var, "factor_variance")
        parts["specific_variance"] = self._scalar(self._specific_var, "specific_variance")
        ds = xr.Dataset({name: self._as_da(value, name) for name, value in parts.items()})
        if self._date is not None:
            ds = ds.assign_coords(date=self._date)
        ds.attrs["riskmodel_kind"] = self.kind
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "RiskDecomposition":
        """Rebuild a decomposition from :meth:`to_dataset` output (or a file ``rm.load`` read).

        Parameters
        ----------
        ds : Dataset
            As written by :meth:`to_dataset`.

        Returns
        -------
        RiskDecomposition
            The same numbers and labels; every part is read, none recomputed but the totals
            (from the stored variances, bit-identical).

        Raises
        ------
        ModelFileError
            ``ds`` is not a Dataset of kind ``"risk_decomposition"``.
        MissingVariableError
            A part is missing.
        """
        check_kind(ds, cls.kind, "RiskDecomposition")
        missing = [v for v in _VARIANCES + _PER_FACTOR + _PER_STOCK if v not in ds.data_vars]
        if missing:
            raise MissingVariableError(f"RiskDecomposition.from_dataset: the dataset has no variable(s) {missing}.")
        batch_dims = ds["factor_variance"].dims
        batch_dim = str(batch_dims[0]) if batch_dims else "portfolio"

        def rows(name: str, *dims: str) -> np.ndarray:
            values = ds[name].transpose(*batch_dims, *dims).values
            return np.array(values, dtype=np.float64, order="C").reshape(-1, *values.shape[len(batch_dims):])

        obj = cls.__new__(cls)
        obj._setup(
            rows("weights", "stock"), rows("factor_exposures", "factor"),
            rows("factor_variance"), rows("specific_variance"),
            labels=AxisLabels(as_ids(ds["stock"].values), as_ids(ds["factor"].values)),
            date=date_label(ds["date"].values) if "date" in ds.coords else None,
            batched=bool(batch_dims), batch_dim=batch_dim,
            batch_labels=ds[batch_dim].values if batch_dims and batch_dim in ds.coords else None,
        )
        obj._fx = None
        obj._cov = None
        obj.__dict__["_factor_contrib"] = rows("factor_contributions", "factor")
        obj.__dict__["_per_stock"] = (rows("marginal_contributions", "stock"), rows("component_contributions", "stock"))
        return obj

    @staticmethod
    def _as_da(value: Any, name: str) -> xr.DataArray:
        return value if isinstance(value, xr.DataArray) else xr.DataArray(value, name=name)

    def _row(self, portfolio: Any) -> int:
        if not self.batched:
            return 0
        if portfolio is None:
            raise InvalidParameterError(
                f"this decomposition holds {self.n_portfolios} portfolios; pass portfolio=<label>."
            )
        hits = np.nonzero(self._portfolio_labels == portfolio)[0]
        if hits.size == 0:
            raise AlignmentError(
                f"portfolio {portfolio!r} not in this decomposition; labels are {some_ids(self._portfolio_labels)}."
            )
        return int(hits[0])

    def top_factors(self, n: int = 5, portfolio: Any = None) -> pd.DataFrame:
        """The n factors contributing most (by the absolute Euler contribution) to one portfolio's risk.

        Parameters
        ----------
        n : int
            How many factors.
        portfolio : label, optional
            Which portfolio of a batch (required for a batch).

        Returns
        -------
        DataFrame
            Index ``factor``; columns ``exposure``, ``contribution`` (to σ), ``share``
            (contribution / σ).
        """
        i = self._row(portfolio)
        contrib = self._factor_contrib[i]
        order = np.argsort(-np.abs(contrib), kind="stable")[: max(int(n), 0)]
        sigma = self._vol[i]
        share = contrib[order] / sigma if sigma > 0 else np.zeros(order.size)
        return pd.DataFrame(
            {"exposure": self._x[i, order], "contribution": contrib[order], "share": share},
            index=pd.Index(self._labels.factors[order], name="factor"),
        )

    def top_stocks(self, n: int = 10, portfolio: Any = None) -> pd.DataFrame:
        """The n stocks contributing most (by the absolute component contribution) to one portfolio's risk.

        Parameters
        ----------
        n : int
            How many stocks.
        portfolio : label, optional
            Which portfolio of a batch (required for a batch).

        Returns
        -------
        DataFrame
            Index ``stock``; columns ``weight``, ``marginal`` (MCR), ``contribution`` (w·MCR),
            ``share`` (contribution / σ).
        """
        i = self._row(portfolio)
        cr = self._cr[i]
        order = np.argsort(-np.abs(cr), kind="stable")[: max(int(n), 0)]
        sigma = self._vol[i]
        share = cr[order] / sigma if sigma > 0 else np.zeros(order.size)
        return pd.DataFrame(
            {"weight": self._w[i, order], "marginal": self._mcr[i, order], "contribution": cr[order], "share": share},
            index=pd.Index(self._labels.stocks[order], name="stock"),
        )

    def summary(self, n: int = 5) -> str:
        """A text table: totals and, for one portfolio, the top factors and stocks.

        Parameters
        ----------
        n : int
            Rows of the top-factor / top-stock tables (one portfolio) or of portfolios shown
            (a batch shows the first ``max(n, 10)``).

        Returns
        -------
        str
        """
        totals = pd.DataFrame(
            {
                "total_vol": self._vol,
                "factor_vol": np.sqrt(np.maximum(self._factor_var, 0.0)),
                "specific_vol": np.sqrt(self._specific_var),
                "factor_share": np.divide(self._factor_var, self._total_var,
                                          out=np.full_like(self._total_var, np.nan), where=self._total_var > 0),
            },
            index=pd.Index(self._portfolio_labels, name=self._batch_dim),
        )
        date = "" if self._date is None else f" on {str(self._date)[:10]}"
        head = (f"RiskDecomposition{date}: {self.n_portfolios} portfolio(s), {self._labels.stocks.size:,} stocks, "
                f"{self._labels.factors.size} factors")
        if self.batched:
            k = max(n, 10)
            more = "" if self.n_portfolios <= k else f"\n... {self.n_portfolios - k} more portfolios"
            return f"{head}\n{totals.head(k).to_string(float_format=lambda v: f'{v:.6g}')}{more}"
        row = totals.iloc[0]
        lines = [
            head,
            f"  total vol     {row['total_vol']:.6g}",
            f"  factor vol    {row['factor_vol']:.6g}   (share of variance {row['factor_share']:.1%})",
            f"  specific vol  {row['specific_vol']:.6g}",
            "",
            "Top factors (Euler contributions to total vol):",
            self.top_factors(n).to_string(float_format=lambda v: f"{v:.4g}"),
            "",
            "Top stocks (component contributions):",
            self.top_stocks(n).to_string(float_format=lambda v: f"{v:.4g}"),
        ]
        return "\n".join(lines)
