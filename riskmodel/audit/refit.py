"""Close the loop: add clusters found by the audit as factors, refit, and audit again."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from riskmodel.errors import InvalidParameterError, warns_at_caller

__all__ = ["cluster_exposures", "refit_with_clusters"]


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
def refit_with_clusters(model: Any, panel: xr.Dataset, audit: Any, clusters: Sequence[int] | None = None, **audit_kwargs: Any):
    """Add audit clusters to a model as membership factors, refit, and re-audit.

    Parameters
    ----------
    model : FactorRiskModel
        The model that produced the audited fit (its settings are kept).
    panel : Dataset
    audit : ResidualAudit
    clusters : list of int, optional
        Clusters to add; default all flagged clusters.
    **audit_kwargs
        Passed to :func:`riskmodel.audit_residuals` for the new audit (e.g. ``labels``).

    Returns
    -------
    (FittedFactorModel, ResidualAudit)
        The refitted model and its audit: an added cluster should be gone from it, and
        its portfolio's bias back in band.
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
    return refit, audit_residuals(refit, **settings)
