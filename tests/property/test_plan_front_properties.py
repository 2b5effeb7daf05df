"""Property: the vectorized front equals the brute-force definition of non-domination."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.plan.pareto import pareto_front

pts = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=0, max_size=40)


def brute(t, c):
    keep = []
    for i in range(len(t)):
        dominated = any((t[j] <= t[i] and c[j] <= c[i] and (t[j] < t[i] or c[j] < c[i])) or
                        (t[j] == t[i] and c[j] == c[i] and j < i) for j in range(len(t)))
        if not dominated:
            keep.append(i)
    return sorted(keep)


@settings(max_examples=200, deadline=None)
@given(pts)
def test_front_matches_definition(points):
    t = [float(p[0]) for p in points]
    c = [float(p[1]) for p in points]
    assert sorted(pareto_front(t, c).tolist()) == brute(t, c)


@settings(max_examples=100, deadline=None)
@given(pts)
def test_front_is_monotone(points):
    t = np.array([p[0] for p in points], float)
    c = np.array([p[1] for p in points], float)
    f = pareto_front(t, c)
    assert np.all(np.diff(t[f]) > 0) and np.all(np.diff(c[f]) < 0)
