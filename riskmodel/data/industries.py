"""Industry classification helpers: pool thin industries into their parent group.

A fine classification (GICS industries) in a small universe leaves many industries with a
handful of members; the regression gives them no factor return (``min_industry_size``)
and their members are then explained by market and styles only, so the risk of a sector
book is under-predicted. :func:`pool_thin_industries` relabels, date by date, the members
of each thin industry as ``"<parent> (other)"`` (their sector), so that thin industries of
one sector share a factor. The decision on date ``t`` uses date ``t`` only (no look-ahead),
and the label set depends only on the labels, never on the data.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from riskmodel.errors import AlignmentError, InvalidParameterError, MissingVariableError
from riskmodel.data.panel import industry_codes

__all__ = ["pool_thin_industries", "POOLED_SUFFIX"]

#: Suffix of a pooled label: ``"Energy" + POOLED_SUFFIX``.
POOLED_SUFFIX = " (other)"


def pool_thin_industries(
    panel: xr.Dataset,
    industry: str = "industry",
    parent: str = "sector",
    *,
    min_size: int = 5,
    cap: str = "market_cap",
) -> xr.DataArray:
    """Industry codes with each date's thin industries pooled into their parent group.

    Parameters
    ----------
    panel : Dataset (date, stock)
        Holds ``industry`` and ``parent`` (each (stock) or (date, stock) labels) and ``cap``.
    industry, parent : str
        The fine classification and the coarser one it nests in (e.g. GICS industry and
        sector).
    min_size : int, default 5
        An industry with ``1 .. min_size - 1`` members on a date is thin that date (use the
        model's ``min_industry_size``). Members are the stocks with a positive finite cap.
    cap : str, default "market_cap"
        The cap variable that defines membership.

    Returns
    -------
    DataArray (date, stock) int32
        Codes into ``attrs["labels"]`` (sorted; the industries and one
        ``"<parent> (other)"`` per parent label), ``-1`` where the industry is missing. A
        member of a thin industry gets its parent's pooled code that date; when that pool is
        itself thin, its members join the parent's largest industry that keeps a factor
        (and a member whose parent is missing keeps its industry code). Pass it to the model as the industry
        variable, e.g. ``panel["industry_pooled"] = pool_thin_industries(panel)`` and
        ``FactorRiskModel(industry="industry_pooled")``. ``attrs["n_pooled"]`` counts the
        pooled (date, stock) cells, ``attrs["n_hosted"]`` those
        moved into a host industry.

    Raises
    ------
    MissingVariableError
        ``industry``, ``parent`` or ``cap`` is not in the panel.
    InvalidParameterError
        ``min_size`` is not an integer >= 1.
    AlignmentError
        A pooled label collides with an industry label.

    Notes
    -----
    A thin pool whose parent has no industry with a factor that date stays as it is; the
    regression then drops it as any thin industry (with its warning). Pooled labels of
    parents without thin industries simply have no members.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> stocks = list("ABCDEFG")
    >>> ds = xr.Dataset(
    ...     {"industry": ("stock", ["oil", "oil", "oil", "gas", "gas", "coal", "banks"]),
    ...      "sector": ("stock", ["Energy"] * 6 + ["Financials"]),
    ...      "market_cap": (("date", "stock"), np.ones((2, 7)))},
    ...     coords={"date": pd.date_range("2024-01-01", periods=2), "stock": stocks})
    >>> pooled = pool_thin_industries(ds, min_size=3)
    >>> labels = pooled.attrs["labels"]
    >>> [labels[c] for c in pooled.isel(date=0).values.tolist()]
    ['oil', 'oil', 'oil', 'Energy (other)', 'Energy (other)', 'Energy (other)', 'Financials (other)']
    """
    if not (isinstance(min_size, (int, np.integer)) and not isinstance(min_size, bool) and min_size >= 1):
        raise InvalidParameterError(f"pool_thin_industries: min_size must be an integer >= 1, got {min_size!r}")
    for name in (industry, parent, cap):
        if name not in panel.data_vars:
            raise MissingVariableError(
                f"pool_thin_industries: the panel has no variable {name!r}; it has {sorted(map(str, panel.data_vars))}"
            )
    ind, ind_labels = industry_codes(panel, industry)
    par, par_labels = industry_codes(panel, parent)
    pooled_labels = tuple(f"{p}{POOLED_SUFFIX}" for p in par_labels)
    clash = sorted(set(ind_labels) & set(pooled_labels))
    if clash:
        raise AlignmentError(
            f"pool_thin_industries: {industry!r} already has the label(s) {clash}; rename them so that "
            f"the pooled groups of {parent!r} are distinct"
        )
    capv = panel[cap].transpose("date", "stock").to_numpy()
    member = np.isfinite(capv) & (capv > 0) & (ind >= 0)
    T, J, P = ind.shape[0], len(ind_labels), len(par_labels)
    counts = _bincount2(ind, member, J)
    rows = np.arange(T)[:, None]
    thin_ind = (counts > 0) & (counts < min_size)
    to_pool = (ind >= 0) & (par >= 0) & thin_ind[rows, np.maximum(ind, 0)]
    # stage 2: a pool that is itself thin joins its parent's largest industry that date
    pool_counts = _bincount2(par, member & to_pool, P)
    by_parent = _bincount2(par * J + ind, member & (par >= 0), P * J).reshape(T, P, J)
    by_parent[thin_ind[:, None, :].repeat(P, axis=1)] = 0  # only industries that keep a factor
    largest = by_parent.argmax(axis=2)  # (T, P)
    has_host = by_parent.max(axis=2) > 0
    thin_pool = (pool_counts > 0) & (pool_counts < min_size) & has_host
    p_safe = np.maximum(par, 0)
    to_host = to_pool & thin_pool[rows, p_safe]
    to_pool &= ~to_host
    labels = sorted(ind_labels + pooled_labels)
    ind_map = np.searchsorted(labels, ind_labels).astype(np.int32)
    pool_map = np.searchsorted(labels, pooled_labels).astype(np.int32)
    out = np.where(ind >= 0, ind_map[np.maximum(ind, 0)], -1).astype(np.int32)
    out[to_pool] = pool_map[par[to_pool]]
    out[to_host] = ind_map[largest[rows, p_safe][to_host]]
    return xr.DataArray(
        out,
        dims=("date", "stock"),
        coords={"date": panel["date"], "stock": panel["stock"]},
        name=f"{industry}_pooled",
        attrs={"labels": labels, "n_pooled": int(to_pool.sum()), "n_hosted": int(to_host.sum()),
               "parent": parent, "min_size": int(min_size)},
    )


def _bincount2(codes: np.ndarray, mask: np.ndarray, n_codes: int) -> np.ndarray:
    """``counts[t, j]``: cells of row ``t`` with ``codes == j`` among ``mask`` (T, n_codes)."""
    T = codes.shape[0]
    flat = (np.arange(T)[:, None] * n_codes + codes)[mask]
    return np.bincount(flat, minlength=T * n_codes).reshape(T, n_codes)
