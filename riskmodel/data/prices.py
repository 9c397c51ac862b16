"""A panel's returns, market caps and dollar volume from raw prices (``riskmodel panel`` on a
CSV of prices).

A long CSV of daily prices, as data vendors give it (the schema of ``../shared/data``:
``date, ticker, close, adj_close, volume, mcap_est, sector, ...``), becomes a panel with
:func:`riskmodel.panel_from_long`; :func:`panel_from_prices` then derives what the model
needs, on the full date grid and causally:

* ``returns``: the day-on-day change of the (dividend- and split-) adjusted price, NaN
  when the stock has no price that day *or the day before* (a return never spans a gap);
* ``market_cap``: taken as given (a cap column, in any currency unit) or shares × the
  price as traded;
* ``dollar_volume``: the price as traded × the shares traded.

Every problem names the column, and where it applies the stock and the date.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from riskmodel._labels import fmt_date
from riskmodel.errors import MissingVariableError, PanelError

__all__ = ["panel_from_prices", "PRICE_DEFAULTS"]

#: The real data's column names (``../shared/data``), the defaults of :func:`panel_from_prices`.
PRICE_DEFAULTS: dict[str, str] = {"price": "adj_close", "close": "close", "volume": "volume", "cap": "mcap_est"}


def _grid(panel: xr.Dataset, column: str, flag: str) -> np.ndarray:
    """A (date, stock) numeric column's values; a missing column names the flag choosing it."""
    if column not in panel.data_vars:
        raise MissingVariableError(
            f"no column {column!r} ({flag}); the columns are {sorted(map(str, panel.data_vars))}"
        )
    da = panel[column]
    if set(da.dims) != {"date", "stock"} or da.dtype.kind not in "fiub":
        raise PanelError(f"column {column!r} ({flag}) must hold numbers for each date and stock; it has dtype {da.dtype}")
    return np.asarray(da.transpose("date", "stock").to_numpy(), dtype=np.float64)


def _check_positive(values: np.ndarray, panel: xr.Dataset, column: str, what: str) -> None:
    bad = np.isfinite(values) & (values <= 0)
    if bad.any():
        t, n = (int(k[0]) for k in np.nonzero(bad))
        raise PanelError(
            f"column {column!r}: {what} {values[t, n]:g} of stock {panel['stock'].values[n]!s} on "
            f"{fmt_date(panel['date'].values[t])} is not positive ({int(bad.sum())} such cell(s)); "
            "set a missing price to empty (NaN)"
        )


def panel_from_prices(
    panel: xr.Dataset,
    *,
    price: str = PRICE_DEFAULTS["price"],
    close: str | None = PRICE_DEFAULTS["close"],
    volume: str | None = PRICE_DEFAULTS["volume"],
    cap: str | None = None,
    shares: str | None = None,
    cap_scale: float = 1.0,
) -> xr.Dataset:
    """Derive ``returns``, ``market_cap`` and ``dollar_volume`` from price columns.

    Parameters
    ----------
    panel : Dataset (date, stock)
        From :func:`riskmodel.panel_from_long` of a long CSV of prices.
    price : str, default "adj_close"
        The adjusted price (splits and dividends): its day-on-day change is the return.
    close : str or None, default "close"
        The price as traded (for dollar volume and shares × price caps); ``None``: the
        adjusted price.
    volume : str or None, default "volume"
        Shares traded; ``None``: no ``dollar_volume`` (the liquidity descriptor needs it).
    cap : str, optional
        A market-cap column used as given (times ``cap_scale``), e.g. ``mcap_est`` in USD
        millions with ``cap_scale=1e6``. A panel that already has ``market_cap`` keeps it.
    shares : str, optional
        Shares outstanding: ``market_cap = shares × close``. Give ``cap`` or ``shares``.
    cap_scale : float, default 1
        Multiplies the ``cap`` column (the model needs caps in any one unit).

    Returns
    -------
    Dataset (date, stock)
        The panel with ``returns``, ``market_cap``, ``dollar_volume`` (each with a
        ``definition`` attribute) and without the columns they were made from.

    Raises
    ------
    MissingVariableError
        A named column is absent (the columns there are listed).
    PanelError
        A price, share count or cap that is zero or negative (column, stock and date
        named); both or neither of ``cap`` and ``shares`` (when the panel has no
        ``market_cap``); a non-numeric column.
    """
    out = panel.copy()
    adjusted = _grid(panel, price, "--price-column")
    _check_positive(adjusted, panel, price, "price")
    traded = adjusted if close is None else _grid(panel, close, "--close-column")
    if close is not None:
        _check_positive(traded, panel, close, "price")
    returns = np.full(adjusted.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns[1:] = adjusted[1:] / adjusted[:-1] - 1.0
    used = {price, close} - {None}
    out["returns"] = (("date", "stock"), returns)
    out["returns"].attrs = {"units": "decimal", "definition": f"{price}_t / {price}_(t-1) - 1; NaN after a day without a price"}
    if "market_cap" not in panel.data_vars:
        if (cap is None) == (shares is None):
            raise PanelError("give the market caps as a column (--cap-column) or shares outstanding (--shares-column), "
                             f"one of the two; the columns are {sorted(map(str, panel.data_vars))}")
        if cap is not None:
            caps = _grid(panel, cap, "--cap-column") * float(cap_scale)
            definition = f"{cap} x {cap_scale:g}"
            used.add(cap)
        else:
            held = _grid(panel, str(shares), "--shares-column")
            _check_positive(held, panel, str(shares), "share count")
            caps = held * traded
            definition = f"{shares} x {close or price}"
            used.add(str(shares))
        _check_positive(caps, panel, cap or str(shares), "market cap")
        out["market_cap"] = (("date", "stock"), caps)
        out["market_cap"].attrs = {"definition": definition}
    if volume is not None and "dollar_volume" not in panel.data_vars:
        out["dollar_volume"] = (("date", "stock"), traded * _grid(panel, volume, "--volume-column"))
        out["dollar_volume"].attrs = {"definition": f"{close or price} x {volume}"}
        used.add(volume)
    return out.drop_vars(sorted(used - {"returns", "market_cap", "dollar_volume"}))
