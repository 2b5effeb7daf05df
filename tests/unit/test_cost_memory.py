"""Training memory per device (simulator/cost/memory.py): ZeRO, Korthikanti activations."""
from __future__ import annotations

import pytest

from simulator.cost import memory as M
from simulator.schema.graph import TransformerArch

ARCH = TransformerArch(family="gpt2", hidden_size=12288, num_layers=96, num_heads=96, num_kv_heads=96,
                       head_dim=128, ffn_hidden_size=4 * 12288, vocab_size=51200, learned_positions=True)


def test_mixed_precision_adam_is_16_bytes_per_param():
    w, g, o = M.state_bytes(1e9, dtype_bytes=2, optimizer="adam", zero=0, dp=8)
    assert (w, g, o) == (2e9, 2e9, 12e9)


@pytest.mark.parametrize("zero,expected", [(0, (2e9, 2e9, 12e9)), (1, (2e9, 2e9, 1.5e9)),
                                           (2, (2e9, 0.25e9, 1.5e9)), (3, (0.25e9, 0.25e9, 1.5e9))])
def test_zero_stages_shard_over_dp(zero, expected):
    assert M.state_bytes(1e9, dtype_bytes=2, optimizer="adam", zero=zero, dp=8) == pytest.approx(expected)


def test_korthikanti_table2_activation_formulas():
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    sbh = s * b * h
    kw = dict(seq_len=s, micro_batch=b, tp=t)
    none = M.activation_bytes_per_layer(ARCH, sequence_parallel=False, recompute="none", **kw)
    assert none == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)))
    sp_sel = M.activation_bytes_per_layer(ARCH, sequence_parallel=True, recompute="selective", **kw)
    assert sp_sel == pytest.approx(sbh * 34 / t)
    full = M.activation_bytes_per_layer(ARCH, sequence_parallel=False, recompute="full", **kw)
    assert full == pytest.approx(2 * sbh)
    assert full < sp_sel < none


def test_in_flight_microbatches_per_schedule():
    assert M.in_flight_microbatches("gpipe", 8, 0, 64) == 64
    assert M.in_flight_microbatches("1f1b", 8, 0, 64) == 8
    assert M.in_flight_microbatches("1f1b", 8, 7, 64) == 1
    assert M.in_flight_microbatches("interleaved", 8, 0, 64, 2) == pytest.approx(8 + 7 / 2)


def test_layer_params_match_the_12h2_rule():
    dense, expert = M.layer_params(ARCH)
    assert expert == 0
    assert dense == pytest.approx(12 * 12288**2, rel=0.01)


def test_stage_memory_total_and_first_stage_holds_embedding():
    kw = dict(layers=6, stage=0, tp=8, pp=16, dp=8, cp=1, ep=1, sequence_parallel=True, zero=1,
              recompute="selective", micro_batch=1, seq_len=2048, dtype_bytes=2, optimizer="adam",
              schedule="1f1b", num_microbatches=192)
    first = M.stage_memory(ARCH, first=True, last=False, **kw)
    middle = M.stage_memory(ARCH, first=False, last=False, **{**kw, "stage": 5})
    assert first.weights > middle.weights
    assert first.activations > middle.activations     # 1F1B: the first stage holds p micro-batches
    assert first.total == pytest.approx(first.weights + first.gradients + first.optimizer
                                        + first.activations + first.temporary)


def test_stage_memory_on_arrays_equals_it_per_layout():
    """The planner calls stage_memory on arrays of layouts: each element is the scalar result."""
    import itertools

    import numpy as np
    rows = list(itertools.product([1, 8], [1, 4], [0, 2, 3], ["none", "selective", "full"],
                                  ["1f1b", "gpipe", "interleaved"], [False, True], [(1, 0), (0, 1)]))
    col = lambda i: np.array([r[i] for r in rows])   # noqa: E731
    tp, pp, zero, rec, sched, sp = (col(i) for i in range(6))
    first = np.array([r[6][0] for r in rows], float)
    last = np.array([r[6][1] for r in rows], float)
    common = dict(layers=6, dp=4, cp=1, ep=1, micro_batch=2, seq_len=2048, dtype_bytes=2.0, optimizer="adam",
                  num_microbatches=8, virtual_stages=2, grad_bytes=4.0)
    vec = M.stage_memory(ARCH, first=first, last=last, stage=np.where(last > 0, pp - 1, 0), tp=tp, pp=pp,
                         zero=zero, recompute=rec, schedule=sched, sequence_parallel=sp, **common)
    for i, (t, p, z, r, s, q, (f, la)) in enumerate(rows):
        ref = M.stage_memory(ARCH, first=bool(f), last=bool(la), stage=p - 1 if la else 0, tp=t, pp=p, zero=z,
                             recompute=r, schedule=s, sequence_parallel=q, **common)
        for k, val in ref.as_dict().items():
            assert (vec.total if k == "total" else getattr(vec, k))[i] == pytest.approx(val, rel=1e-12), (k, rows[i])
