"""Property: every accepted uneven split places each layer exactly once, on stages of >= 1 layer."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.parallel.plan import chunk_layer_counts, stage_layer_counts


@st.composite
def splits(draw):
    pp = draw(st.integers(2, 16))
    v = draw(st.sampled_from([1, 1, 2, 4]))
    per = draw(st.integers(1, 6)) * v
    first = draw(st.one_of(st.none(), st.integers(1, 6).map(lambda k: k * v)))
    last = draw(st.one_of(st.none(), st.integers(1, 6).map(lambda k: k * v)))
    inner = pp - (first is not None) - (last is not None)
    n = per * inner + (first or 0) + (last or 0)
    return n, pp, v, first, last


@settings(max_examples=200, deadline=None)
@given(splits())
def test_every_layer_placed_once(case):
    n, pp, v, first, last = case
    stages = stage_layer_counts(n, pp, first, last)
    assert len(stages) == pp and sum(stages) == n and min(stages) >= 1
    if first is not None:
        assert stages[0] == first
    if last is not None:
        assert stages[-1] == last
    chunks = chunk_layer_counts(n, pp, v, first, last)
    assert len(chunks) == pp * v and sum(chunks) == n and min(chunks) >= 1
    for d in range(pp):   # a device's chunks add up to its stage
        assert sum(chunks[c * pp + d] for c in range(v)) == stages[d]


@settings(max_examples=200, deadline=None)
@given(pp=st.integers(2, 16), v=st.sampled_from([1, 2, 4, 8]), per=st.integers(1, 4),
       embedding=st.booleans(), loss=st.booleans())
def test_counted_embedding_places_every_layer_once(pp, v, per, embedding, loss):
    n = pp * v * per - embedding - loss
    if n < 1:
        return
    chunks = chunk_layer_counts(n, pp, v, embedding=embedding, loss=loss)
    assert len(chunks) == pp * v and sum(chunks) == n and min(chunks) >= 0
    assert chunks[0] == per - embedding and chunks[-1] == per - loss
