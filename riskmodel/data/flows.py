"""Daily flows (card spending, volumes): their trailing totals and year-over-year growth,
as ndarray cores laid out ``(date, stock)``.

The labelled functions :func:`riskmodel.research.signal.trailing_sum` and
:func:`~riskmodel.research.signal.yoy_log_growth` wrap them; the simulation builds the
simulated world's signal with the same code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["trailing_sum_array", "yoy_log_growth_array"]


def trailing_sum_array(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Gap-robust trailing total over axis 0: ``window * mean(available values)``.

    ``x`` is ``(T, ...)`` float; the window at row t covers rows ``max(0, t-window+1) .. t``.
    Rows with fewer than ``min_periods`` finite values are NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x)
    pad = np.zeros((1,) + x.shape[1:])
    csum = np.concatenate([pad, np.cumsum(np.where(valid, x, 0.0), axis=0)])
    ccnt = np.concatenate([pad, np.cumsum(valid, axis=0, dtype=np.float64)])
    hi = np.arange(1, x.shape[0] + 1)
    lo = np.maximum(hi - window, 0)
    total = csum[hi] - csum[lo]
    count = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count * window
    out[count < min_periods] = np.nan
    return out


def yoy_log_growth_array(x: np.ndarray, window: int, lag: int, min_periods: int) -> np.ndarray:
    """``ln S_t - ln S_{t-lag}`` with ``S = trailing_sum_array(x)``; NaN where S <= 0 or t < lag.

    The ndarray core of :func:`riskmodel.research.signal.yoy_log_growth` (date on axis 0), also used by
    :mod:`riskmodel.data.simulation` to build the simulated world's signal.
    """
    s = trailing_sum_array(x, window, min_periods)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.where(s > 0.0, np.log(np.where(s > 0.0, s, 1.0)), np.nan)
    out = np.full_like(logs, np.nan)
    if lag < logs.shape[0]:
        out[lag:] = logs[lag:] - logs[:-lag]
    return out
