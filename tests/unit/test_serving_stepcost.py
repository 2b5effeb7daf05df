"""serving.stepcost: iteration costs use the shared op costing of cost.compute."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.cost.compute import op_time_s
from simulator.cost.dequant import dequant_s
from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.serving.stepcost import build_step_model


@pytest.mark.parametrize("hardware,dtype,wdtype", [
    ("a100-sxm4-80gb", "fp16", None), ("a100-sxm4-80gb", "bf16", "int4"),
    ("v100-sxm2-32gb", "fp32", "int4"), ("cpu-generic", "fp32", "int4")])
def test_small_batch_gemms_are_costed_like_every_other_gemm(hardware, dtype, wdtype):
    # decode GEMMs with m < 16 rows go through op_time_s with their shape (padded tile work,
    # one launch floor), exactly as training GEMMs do: no separate GEMV path
    p = load_hardware(hardware)
    s = build_step_model(load_arch("llama2-7b"), p, dtype=dtype, weight_dtype=wdtype)
    for m in (1, 7, 15, 16, 17):
        want = 0.0
        for r in s.layer_ops:
            flops, bytes_ = m * r.flops_per_token, m * r.act_bytes_per_token + r.weight_bytes
            shape = (m, r.mnk[1], r.mnk[2]) if r.mnk else None
            if r.dequant_flops:      # weight-only quantized: tensor cores + conversion vs weight loads
                t_dq = dequant_s(p, r.weight_elements, m, r.dequant_flops, r.dtype)
                want += max(op_time_s(p, r.kind, flops, 0.0, r.dtype, gemm_mnk=shape) + t_dq,
                            op_time_s(p, r.kind, 0.0, bytes_, r.dtype))
            else:
                want += op_time_s(p, r.kind, flops, bytes_, r.dtype, gemm_mnk=shape)
        got = float(s.linear_s(m))
        token = sum(op_time_s(p, r.kind, m * r.flops_per_token, m * r.act_bytes_per_token + r.weight_bytes, r.dtype)
                    for r in s.token_ops)
        assert got == pytest.approx(s.time_layers * want + token, rel=1e-12)


@pytest.mark.parametrize("hardware,dtype", [("a100-sxm4-80gb", "fp16"), ("v100-sxm2-32gb", "bf16"),
                                            ("cpu-generic", "fp32"), ("rtx-4090", "bf16")])
def test_iteration_time_never_falls_when_a_token_is_added(hardware, dtype):
    s = build_step_model(load_arch("llama2-7b"), load_hardware(hardware), dtype=dtype, weight_dtype="int4")
    t = s.linear_s(np.arange(1, 65, dtype=float))
    assert np.all(np.diff(t) >= -1e-15 * t[1:])
