"""Pareto front of cost versus time (both minimised), vectorized and deterministic.

A candidate is on the front when no other candidate is at least as cheap and
at least as fast and strictly better in one of the two. Ties are broken by
candidate order, so the same inputs always give the same front.
"""
from __future__ import annotations

import numpy as np


def pareto_front(time_s, cost_usd) -> np.ndarray:
    """Indices of the non-dominated points, sorted by time (then cost, then index).

    NaN values (unknown cost or time) are never on the front.

    >>> pareto_front([3.0, 1.0, 2.0, 2.0], [1.0, 3.0, 2.0, 5.0]).tolist()
    [1, 2, 0]
    """
    t = np.asarray(time_s, dtype=float)
    c = np.asarray(cost_usd, dtype=float)
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(c))
    if ok.size == 0:
        return np.zeros(0, dtype=int)
    order = ok[np.lexsort((ok, c[ok], t[ok]))]
    cs = c[order]
    # running minimum of cost over all faster-or-equal points before each one
    prev_min = np.concatenate(([np.inf], np.minimum.accumulate(cs)[:-1]))
    keep = cs < prev_min
    return order[keep]


def dominated_mask(time_s, cost_usd) -> np.ndarray:
    """Boolean mask: True where a point is dominated (not on the front)."""
    n = len(np.asarray(time_s))
    mask = np.ones(n, dtype=bool)
    mask[pareto_front(time_s, cost_usd)] = False
    return mask
