"""``build_exposures``: the risk model's exposures from a panel, in named steps.

Check the arguments and validate the panel; read the caps (regression weights √cap) and
the industry codes; clean every style with cap weights and impute the missing cells of
present stocks from industry + size in one numba pass over dates
(:func:`riskmodel.kernels.clean.exposures_kernel`, which shares :func:`clean`'s row
routine, so the two agree bit for bit); warn about data errors and imputations; assemble
the :class:`~riskmodel.exposures.Exposures`.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import xarray as xr

from riskmodel._labels import as_date_stock, check_aligned, float_values
from riskmodel.data.panel import validate_panel
from riskmodel.errors import ImputationWarning, InvalidParameterError, MissingVariableError, VariableTypeError
from riskmodel.exposures._shared import DATA_ERROR, MAX_PASSES, reject_negative
from riskmodel.exposures.cleaning import warn_clean
from riskmodel.exposures.industry import drop_unused_labels, industry_array
from riskmodel.exposures.structured import Exposures
from riskmodel.kernels.clean import exposures_kernel

__all__ = ["build_exposures"]


def build_exposures(
    panel: xr.Dataset,
    styles: Sequence[str],
    *,
    industry: str | None = "industry",
    cap: str | None = "market_cap",
    winsor: float = 3.0,
    impute: bool = True,
    min_history: int = 0,
) -> Exposures:
    """Clean the styles of a panel and assemble the structured :class:`Exposures`.

    Parameters
    ----------
    panel : Dataset (date, stock)
        Must hold ``returns``, the style variables and, when named, ``cap`` and ``industry``.
    styles : sequence of str
        Names of raw style characteristics (date, stock) in ``panel``.
    industry : str or None, default "industry"
        Industry variable (stock) or (date, stock); None: no industry factors.
    cap : str or None, default "market_cap"
        Market cap variable: cap-weighted centring and regression weights √cap. None: equal
        weights everywhere (weights 1 where a return or a style is present).
    winsor : float, default 3.0
        Winsor bound passed to :func:`clean`.
    impute : bool, default True
        Impute missing style exposures (METHODS §1 data replacement).
    min_history : int, default 0
        A stock is imputed on day t only if it has at least this many non-missing returns
        up to and including t.

    Returns
    -------
    Exposures

    Raises
    ------
    MissingVariableError
        A style, ``cap``, ``industry`` or ``returns`` is not in the panel.
    PanelError
        Any validation failure of the panel.

    Warns
    -----
    ImputationWarning
        With the number of imputed cells per style (and of cells that could not be imputed).

    Notes
    -----
    Each style is cleaned with :func:`clean` (``cap`` weights). A stock *present* on day t
    (a return or a cap that day, and ``min_history`` returns so far) whose style is missing
    gets a prediction from a per-date weighted (√cap) regression of the cleaned style on
    industry dummies and size — the cleaned log cap — over the names that have it, solved by
    Frisch–Waugh–Lovell (weighted industry demeaning, then one slope); the cell is flagged
    in ``imputed``. A present stock whose industry has no donor that day or whose cap is
    missing stays NaN (counted in the warning). Imputed cells are predictions on the cleaned
    scale; the clean invariants hold over the names with data. Without ``cap`` the size
    regressor is absent and the prediction is the industry mean.

    See Also
    --------
    clean, riskmodel.regression.factor_returns

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> T, N = 3, 8
    >>> panel = xr.Dataset(
    ...     {"returns": (("date", "stock"), rng.normal(0, 0.01, (T, N))),
    ...      "market_cap": (("date", "stock"), np.exp(rng.normal(8, 1, (T, N)))),
    ...      "value": (("date", "stock"), rng.normal(size=(T, N))),
    ...      "industry": ("stock", np.array(["banks", "tech"] * 4))},
    ...     coords={"date": pd.date_range("2024-01-02", periods=T), "stock": list("abcdefgh")})
    >>> e = build_exposures(panel, ["value"])
    >>> e.factor_names
    ['market', 'banks', 'tech', 'value']
    >>> e.dense(0).shape  # (N, m) for one date: [1, industry dummies, styles]
    (8, 4)
    """
    needed = _check_arguments(panel, styles, industry, cap, min_history)
    if industry is not None and industry != "industry":  # any label variable may be the industry
        panel = _as_label_variable(panel, industry)
    panel = validate_panel(panel, styles=list(styles),
                           require=[v for v, role in needed if v not in styles and role != "industry"])
    ret = as_date_stock(panel["returns"], "returns", numeric=False)
    rv = float_values(ret, "returns", inf_checked=True)  # validate_panel rejected ±inf
    T, N = rv.shape
    cv, weights = _caps_and_weights(panel, cap, ret) if cap is not None else (np.full((T, N), np.nan), None)
    if industry is not None:
        codes, labels = drop_unused_labels(*industry_array(panel[industry], ret, industry))
        n_codes = max(len(labels), 1)
    else:
        codes, labels, n_codes = None, (), 1
    raw = [(s, *_aligned_style(panel, s, ret)) for s in styles]
    present = _present(rv, cv, min_history)
    Z, imputed, diag = _styles_block([v for _, _, v in raw], cv if cap is not None else None,
                                     codes, n_codes, present, impute, float(winsor))
    _warn_build(raw, diag, ret, cv, impute and cap is not None, impute)
    if weights is None:
        weights = np.where(present, 1.0, np.nan)
    return Exposures(
        dates=np.asarray(ret["date"].values).astype("datetime64[ns]"),
        stocks=np.asarray(ret["stock"].values).astype(str),
        style_names=tuple(styles),
        industry_labels=tuple(labels) if codes is not None else (),
        styles=np.ascontiguousarray(Z),
        industry=np.ascontiguousarray(codes, dtype=np.int32) if codes is not None else None,
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        cap=np.ascontiguousarray(cv, dtype=np.float64),
        imputed=imputed,
    )


def _as_label_variable(panel: xr.Dataset, industry: str) -> xr.Dataset:
    """The panel with ``industry`` listed in ``attrs["label_variables"]``, so that a
    (date, stock) or (stock) categorical of any name (``sector``, a pooled classification)
    is validated as labels, as ``industry`` is; its dims are checked by
    :func:`~riskmodel.exposures.industry.industry_array`."""
    listed = panel.attrs.get("label_variables", ())
    listed = [listed] if isinstance(listed, str) else list(listed)
    if industry in listed or industry not in panel.data_vars:
        return panel
    return panel.assign_attrs(label_variables=[*listed, industry])


def _check_arguments(
    panel: xr.Dataset, styles: Sequence[str], industry: str | None, cap: str | None, min_history: int
) -> list[tuple[str, str]]:
    """Check the arguments; return the (variable, role) pairs the panel must hold."""
    if not isinstance(panel, xr.Dataset):
        raise VariableTypeError(
            f"build_exposures: panel must be an xarray Dataset (date, stock), got {type(panel).__name__}."
        )
    if not isinstance(styles, (list, tuple)) or not all(isinstance(s, str) for s in styles):
        raise VariableTypeError(f"build_exposures: styles must be a list of variable names, got {styles!r}.")
    if len(set(styles)) != len(styles):
        raise InvalidParameterError(f"build_exposures: styles {list(styles)} contain a duplicate name.")
    if int(min_history) != min_history or min_history < 0:
        raise InvalidParameterError(f"build_exposures: min_history={min_history!r} must be an integer >= 0.")
    available = sorted(map(str, panel.data_vars))
    needed = [("returns", "returns")] + [(s, "style") for s in styles]
    if cap is not None:
        needed.append((cap, "cap"))
    if industry is not None:
        needed.append((industry, "industry"))
    for var, role in needed:
        if var not in panel.data_vars:
            raise MissingVariableError(
                f"build_exposures: {role} variable {var!r} is not in the panel (variables: {available}); "
                f"add it or pass {'styles' if role == 'style' else role}=... with an existing name."
            )
    return needed


def _aligned_style(panel: xr.Dataset, name: str, ret: xr.DataArray) -> tuple[xr.DataArray, np.ndarray]:
    """A panel variable (date, stock), exactly aligned on the returns, and its float64 values."""
    da = as_date_stock(panel[name], name, numeric=False)
    check_aligned(ret, da, "returns", name, ("date", "stock"))
    return da, float_values(da, name, inf_checked=True)


def _caps_and_weights(panel: xr.Dataset, cap: str, ret: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """The caps (date, stock) and the regression weights √cap (NaN where the cap is 0)."""
    _, cv = _aligned_style(panel, cap, ret)
    if cap != "market_cap":  # validate_panel checks market_cap itself
        reject_negative(cv, ret, cap, "market cap", "caps must be >= 0 (NaN = missing)")
    weights = np.sqrt(cv)
    weights[cv == 0] = np.nan
    return cv, weights


def _present(rv: np.ndarray, cv: np.ndarray, min_history: int) -> np.ndarray:
    """Stocks present on a date: a return or a cap that day, and ``min_history`` returns so far."""
    present = np.isfinite(rv)
    present |= np.isfinite(cv)
    if min_history > 0:
        present &= np.cumsum(np.isfinite(rv), axis=0, dtype=np.int32) >= min_history
    return present


def _styles_block(
    raw: list[np.ndarray],
    cap: np.ndarray | None,
    codes: np.ndarray | None,
    n_codes: int,
    present: np.ndarray,
    impute: bool,
    winsor: float,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The cleaned (and imputed) (T, N, K) style block, the imputed mask and diagnostics.

    One numba pass over dates (:func:`riskmodel.kernels.clean.exposures_kernel`): each
    style is cleaned as :func:`clean` does with ``cap`` weights (bit for bit), then a
    present stock with a missing style gets ``z̄_p + b (size - s̄_p)`` from the per-date
    √cap-weighted regression on industry dummies + size (the cleaned log cap) over the
    names that have it (Frisch–Waugh–Lovell), when its industry has a donor and its size
    is known. Diagnostics: per date, data errors, first stock with one and no-setter flags
    (column 0 the log cap, then one per style), imputed and left-NaN targets per style.
    """
    T, N = present.shape
    K = len(raw)
    Z = np.empty((T, N, K))
    imputed = np.empty((T, N, K), dtype=bool)
    n_err = np.empty((T, K + 1), np.int64)
    first = np.empty((T, K + 1), np.int64)
    no_setter = np.empty((T, K + 1), dtype=bool)
    n_done = np.empty((T, K), np.int64)
    n_left = np.empty((T, K), np.int64)
    if K:
        exposures_kernel(
            list(raw),  # the kernel module makes the typed List
            cap if cap is not None else np.ones((1, 1)),
            cap is not None,
            codes if codes is not None else np.zeros((1, 1), np.int32),
            codes is not None,
            int(n_codes),
            np.ascontiguousarray(present),
            bool(impute),
            float(winsor),
            DATA_ERROR,
            MAX_PASSES,
            Z, imputed, n_err, first, no_setter, n_done, n_left,
        )
    else:
        n_err[:] = 0
        no_setter[:] = False
    return Z, imputed, (n_err, first, no_setter, n_done, n_left)


def _warn_build(
    raw: list[tuple[str, xr.DataArray, np.ndarray]],
    diag: tuple[np.ndarray, ...],
    ret: xr.DataArray,
    cv: np.ndarray,
    with_size: bool,
    impute: bool,
) -> None:
    """The data-error warnings of the size regressor and of each style (as :func:`clean`
    gives them), then one :class:`ImputationWarning` with the counts per style."""
    n_err, first, no_setter, n_done, n_left = diag
    if with_size:
        warn_clean("log_cap", n_err[:, 0], first[:, 0], no_setter[:, 0],
                   lambda t, n: float(np.log(cv[t, n])), ret, DATA_ERROR, stacklevel=3)
    for k, (s, da, xv) in enumerate(raw):
        warn_clean(s, n_err[:, k + 1], first[:, k + 1], no_setter[:, k + 1],
                   lambda t, n, xv=xv: float(xv[t, n]), da, DATA_ERROR, stacklevel=3)
    notes = []
    if impute:
        done_k = n_done.sum(axis=0)
        left_k = n_left.sum(axis=0)
        notes = [f"{s}: {int(done_k[k])} imputed, {int(left_k[k])} left NaN"
                 for k, (s, _, _) in enumerate(raw) if done_k[k] + left_k[k] > 0]
    if notes and n_done.any():
        warnings.warn(
            f"build_exposures: {int(n_done.sum())} missing style exposure(s) imputed from industry + size "
            f"and flagged in Exposures.imputed ({'; '.join(notes)}). Pass impute=False to leave them NaN.",
            ImputationWarning,
            stacklevel=3,
        )
