"""Close the loop: add clusters found by the audit as factors, refit, and audit again.

:func:`refit_with_clusters` returns a :class:`ClusterRefit` (a result of kind
``"cluster_refit"``): the refitted model, its new audit and the factors that were added.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import xarray as xr

from riskmodel._results import Result, check_kind
from riskmodel.audit.residual_results import ResidualAudit
from riskmodel.errors import InvalidParameterError, warns_at_caller

__all__ = ["ClusterRefit", "cluster_exposures", "refit_with_clusters"]

#: Prefixes of the two nested datasets' names (variables, dims, coordinates, attributes).
_FIT, _AUDIT = "fit__", "audit__"


@dataclass(frozen=True, repr=False)
class ClusterRefit(Result):
    """Result of :func:`refit_with_clusters`.

    Attributes
    ----------
    fit : FittedFactorModel
        The model refitted with the clusters as membership factors.
    audit : ResidualAudit
        The audit of the refitted model's residuals.
    factors : list of str
        The factors added (``"cluster<k>"``), one per cluster.
    clusters : list of int
        Which clusters of the original audit they are (positions in its ``clusters``).
    members : list of list of str
        The member stocks of each added factor.

    Notes
    -----
    ``refit, audit_after = refit_with_clusters(...)`` still works: iterating yields
    ``(fit, audit)``, the tuple this function returned before (kept for compatibility).
    :meth:`to_dataset` nests the fitted model's and the audit's datasets with every
    name prefixed ``fit__`` / ``audit__``, so ``rm.save`` / ``rm.load`` round-trip the
    whole result.
    """

    fit: Any
    audit: ResidualAudit
    factors: list[str]
    clusters: list[int]
    members: list[list[str]]

    kind = "cluster_refit"

    def __iter__(self) -> Iterator[Any]:
        """``(fit, audit)``: the old return value, kept for tuple unpacking."""
        return iter((self.fit, self.audit))

    def summary(self) -> str:
        """The factors added, their sizes, and the new audit's headline."""
        added = ", ".join(f"{name} ({len(m)} stocks)" for name, m in zip(self.factors, self.members)) or "none"
        flagged = len(self.audit.flagged)
        return "\n".join([
            f"ClusterRefit: {len(self.factors)} cluster factor(s) added: {added}",
            f"after the refit: {len(self.audit.clusters)} cluster(s), {flagged} flagged, "
            f"{self.audit.n_significant} eigenvalue(s) above the null edge {self.audit.null_edge:.3f}",
            self.audit.headline(),
        ])

    def to_dataset(self) -> xr.Dataset:
        """The fitted model's and the audit's datasets, nested under ``fit__`` / ``audit__``."""
        ds = xr.merge([_nest(self.fit.to_dataset(), _FIT), _nest(self.audit.to_dataset(), _AUDIT)],
                      combine_attrs="no_conflicts")
        ds.attrs.update(
            riskmodel_kind=self.kind,
            factors=json.dumps(self.factors),
            clusters=json.dumps([int(k) for k in self.clusters]),
            members=json.dumps(self.members),
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "ClusterRefit":
        """Rebuild the result from :meth:`to_dataset`'s output (or a file read by ``rm.load``)."""
        check_kind(ds, cls.kind, "ClusterRefit")
        fit_ds = _unnest(ds, _FIT)
        from riskmodel.data.io import KIND_REGISTRY

        module, _, name = KIND_REGISTRY[fit_ds.attrs["riskmodel_kind"]].partition(":")
        fit = getattr(importlib.import_module(module), name).from_dataset(fit_ds)

        def attr(key: str) -> Any:
            value = ds.attrs[key]
            return json.loads(value) if isinstance(value, str) else value

        return cls(
            fit=fit,
            audit=ResidualAudit.from_dataset(_unnest(ds, _AUDIT)),
            factors=[str(f) for f in attr("factors")],
            clusters=[int(k) for k in attr("clusters")],
            members=[[str(s) for s in m] for m in attr("members")],
        )


def _nest(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    """``ds`` with every variable, dim and attribute name prefixed."""
    names = {name: prefix + str(name) for name in [*ds.variables, *ds.dims]}
    out = ds.rename(names)
    out.attrs = {prefix + key: value for key, value in ds.attrs.items()}
    return out


def _unnest(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    """The part of ``ds`` that :func:`_nest` prefixed with ``prefix``, names restored."""
    keep = [name for name in ds.data_vars if str(name).startswith(prefix)]
    part = ds[keep]
    part = part.drop_vars([c for c in part.coords if not str(c).startswith(prefix)])
    part = part.rename({name: str(name)[len(prefix):] for name in [*part.variables, *part.dims]})
    part.attrs = {key[len(prefix):]: value for key, value in ds.attrs.items() if key.startswith(prefix)}
    return part


def cluster_exposures(audit: Any, panel: xr.Dataset, clusters: Sequence[int] | None = None, *, prefix: str = "cluster") -> xr.Dataset:
    """Membership exposures (date, stock) of audit clusters, as panel variables.

    Parameters
    ----------
    audit : ResidualAudit
        Result of :func:`riskmodel.audit_residuals`.
    panel : Dataset (date, stock)
    clusters : list of int, optional
        Which clusters (positions in ``audit.clusters``); default all.
    prefix : str
        Variables are named ``f"{prefix}{k}"``.

    Returns
    -------
    Dataset
        The panel with one 0/1 variable per cluster (1 for members, on every date where
        the stock is in the panel, NaN where its returns are absent), ready to be passed to
        ``FactorRiskModel(fixed_styles=[...])``.
    """
    chosen = range(len(audit.clusters)) if clusters is None else clusters
    present = panel["returns"].notnull() | panel.get("market_cap", panel["returns"]).notnull()
    stocks = panel["stock"].to_numpy().astype(str)
    out = panel.copy()
    for k in chosen:
        if not 0 <= k < len(audit.clusters):
            raise InvalidParameterError(f"cluster {k} does not exist; the audit found {len(audit.clusters)}")
        member = np.isin(stocks, np.asarray(audit.clusters[k].stocks, dtype=str)).astype(np.float64)
        exposure = xr.DataArray(member, coords={"stock": panel["stock"]}, dims="stock").broadcast_like(present)
        out[f"{prefix}{k}"] = exposure.where(present).transpose("date", "stock")
    return out


@warns_at_caller
def refit_with_clusters(
    model: Any, panel: xr.Dataset, audit: Any, clusters: Sequence[int] | None = None, **audit_kwargs: Any
) -> ClusterRefit:
    """Add audit clusters to a model as membership factors, refit, and re-audit.

    Parameters
    ----------
    model : FactorRiskModel
        The model that produced the audited fit (its settings are kept).
    panel : Dataset
    audit : ResidualAudit
    clusters : list of int, optional
        Clusters to add (positions in ``audit.clusters``); default all of them.
    **audit_kwargs
        Passed to :func:`riskmodel.audit_residuals` for the new audit (e.g. ``labels``).

    Returns
    -------
    ClusterRefit
        The refitted model (``.fit``) and its audit (``.audit``): an added cluster should
        be gone from it, and its portfolio's bias back in band. It unpacks as the tuple
        ``(fit, audit)`` this function returned before.
    """
    from riskmodel.audit.residuals import audit_residuals
    from riskmodel.models.fundamental import FactorRiskModel

    augmented = cluster_exposures(audit, panel, clusters)
    names = [v for v in augmented.data_vars if v not in panel.data_vars]
    params = model.get_params()
    params["fixed_styles"] = [*params.get("fixed_styles", []), *names]
    if params["styles"] is None:
        params["styles"] = list(panel.attrs.get("styles", []))
    refit = FactorRiskModel(**params, progress=False).fit(augmented)
    settings = dict(getattr(audit, "settings", {}) or {})
    settings.update(audit_kwargs)
    chosen = list(range(len(audit.clusters)) if clusters is None else clusters)
    return ClusterRefit(
        fit=refit,
        audit=audit_residuals(refit, **settings),
        factors=names,
        clusters=[int(k) for k in chosen],
        members=[[str(s) for s in audit.clusters[k].stocks] for k in chosen],
    )
