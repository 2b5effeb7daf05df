"""Monotonicity of the inference cost model (hypothesis): more work never takes less time."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.schema.scenario import Scenario
from simulator.serving.inference import build_replica, decode_steps_s, prefill_s


@pytest.fixture(scope="module")
def rep():
    return build_replica(Scenario.model_validate({
        "workload": {"kind": "inference", "model": "llama2-7b", "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb"}}))


def _step(rep, batch, prompt):
    d = decode_steps_s(rep, batch, prompt, 2)
    return float(d["linear"][0] + d["attention"][0] + d["comm"][0])


# The profiles' efficiency curves are sampled per decade and interpolated linearly in
# log(size), which lets time dip slightly with size between points (a few microseconds
# around 10-100 KB); a step of milliseconds may therefore shrink by at most this fraction.
CURVE_SLACK = 1e-3


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 64), p=st.integers(1, 4000), db=st.integers(0, 64), dp=st.integers(0, 4000))
def test_more_tokens_never_take_less_time(rep, b, p, db, dp):
    assert prefill_s(rep, b + db, p + dp)[0] >= prefill_s(rep, b, p)[0] * (1 - CURVE_SLACK)
    assert _step(rep, b, p + dp) >= _step(rep, b, p) * (1 - CURVE_SLACK)    # longer context: more KV to read


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 4000), o=st.integers(1, 2000), extra=st.integers(1, 4000))
def test_longer_sequences_fit_fewer_per_device(rep, p, o, extra):
    assert rep.max_batch(p + extra, o) <= rep.max_batch(p, o)


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 256), p=st.integers(16, 2048))
def test_decode_step_is_at_least_the_weight_read(rep, b, p):
    s = rep.step
    bw = s.profile.memory.bandwidth_bytes_per_s
    floor = (s.weight_bytes_per_device - rep.arch.vocab_size * rep.arch.hidden_size * s.act_bytes
             + b * p * s.kv_bytes_per_token_per_device) / bw
    assert _step(rep, b, p) >= floor
    assert np.isfinite(_step(rep, b, p))
