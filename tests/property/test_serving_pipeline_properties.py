"""Invariants of the pipeline stage reservations of pipelined serving replicas."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.serving.engine import Pipeline

iterations = st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(1e-3, 3.0)), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(stages=st.integers(1, 8), its=iterations)
def test_reservations_respect_work_order_and_capacity(stages, its):
    pipe, now, ends, work = Pipeline(stages), 0.0, [], 0.0
    for gap, duration in its:
        now += gap                               # iterations are planned in time order
        end = pipe.reserve(now, duration)
        assert end >= now + duration - 1e-12     # nobody passes the stages faster than its own work
        ends.append(end)
        work += duration / stages
        assert end >= work - 1e-9                # the last stage cannot do more than one stage-time at once
    assert ends == sorted(ends)                  # first come, first served on every stage
    assert pipe.free_s == sorted(pipe.free_s)    # each stage frees after the one before it


@settings(max_examples=100, deadline=None)
@given(stages=st.integers(2, 8), duration=st.floats(1e-3, 2.0), n=st.integers(2, 40))
def test_equal_iterations_back_to_back_fill_the_pipeline(stages, duration, n):
    # n equal iterations submitted at once: the first takes the whole pass, each later one a stage-time more
    pipe = Pipeline(stages)
    ends = [pipe.reserve(0.0, duration) for _ in range(n)]
    for i, end in enumerate(ends):
        assert abs(end - (duration + i * duration / stages)) < 1e-9 * (1 + n)
