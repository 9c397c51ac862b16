"""Distinct rows of a boolean matrix (availability patterns, group memberships)."""

from __future__ import annotations

import numpy as np

__all__ = ["distinct_rows"]


def distinct_rows(member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct pattern and the pattern code of every row.

    Parameters
    ----------
    member : ndarray (n, k) bool

    Returns
    -------
    first : ndarray (G,) int64
        Index of the first row of each pattern; patterns are in sorted byte order, so
        ``member[first]`` lists them.
    codes : ndarray (n,) int64
        Pattern of each row, ``0 … G-1``: ``member[first][codes] == member``.

    Notes
    -----
    Rows are packed into bytes and compared as one opaque value each; ``np.unique`` with
    ``axis=0`` sorts column by column and is ~20-40× slower on (5,000, 60) or (2,520, 70).
    """
    member = np.asarray(member, dtype=bool)
    if member.ndim != 2:
        raise ValueError(f"member must be 2-D, got shape {member.shape}")
    if member.shape[1] == 0:  # no columns: one (empty) pattern
        member = np.zeros((member.shape[0], 1), dtype=bool)
    packed = np.ascontiguousarray(np.packbits(member, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    return first.astype(np.int64), codes.reshape(-1).astype(np.int64)
