"""Dequantization work of weight-only quantized GEMMs (W8A16 / W4A16), on the vector units.

A weight-only GEMM keeps its weights in int8/int4 in memory and computes in the
activation dtype: a fused kernel (TensorRT-LLM fpA_intB, Marlin, AWQ's kernels)
loads the packed weights, converts each element to fp16/bf16 in registers,
applies the scale, and feeds the tensor cores. Memory traffic stays at the
quantized size; the conversion is extra work on the CUDA cores / vector units.

Instruction counts per weight element (TensorRT-LLM
cpp/tensorrt_llm/cutlass_extensions/include/cutlass_extensions/interleaved_numeric_conversion.h,
FastInterleavedAndBiasedNumericArrayConverter):
- int4 -> fp16, 8 elements: 1 shift, 4 lop3, 2 sub.f16x2, 2 fma.f16x2 = 9 / 8
- int4 -> bf16, 8 elements: 3 shifts, 4 lop3, 4 fma.bf16x2          = 11 / 8
- int8 -> fp16, 4 elements: 2 prmt, 2 sub.f16x2                      = 4 / 4
- int8 -> bf16, 4 elements: 4 byte_perm, 4 fp32 sub, 2 byte_perm     = 10 / 4
plus the scale (and zero point): one packed fma per 2 elements = 1/2.
Each instruction takes one lane slot; the vector rate counts an FMA lane slot as
2 FLOPs (NVIDIA FP32 = lanes x 2 x clock), so the work is 2 FLOP-equivalents per
instruction, costed at the profile's vector rate (packed-half instructions are
taken at the FP32 lane rate: an upper bound where the device issues them faster).

How often each element is converted: once per warp tile along M. The fpA_intB
tile configs for group-wise weights on sm80/86/90 (AWQ/GPTQ int4;
FasterTransformer/TensorRT-LLM cutlass_heuristic get_candidate_tiles,
quant_B_configs_sm80_finegrained, as vendored in PaddlePaddle
phi/kernels/fusion/cutlass: CTAs of 16-256 rows, warp tiles of 16, 32 or 64
rows) have warps of at most 64 rows, so a GEMM of m rows
converts every weight ceil(m / 64) times: once for decode batches up to 64,
then in proportion to m, which is why W4A16 turns compute-bound at smaller
batches than fp16 (Lin et al. 2024, QServe, sec. 3: dequantization on CUDA cores
in the GEMM main loop). The conversion is issued by the same warps, in the same
main loop, as the MMAs it feeds: its time adds to the tensor-core time, and both
overlap the weight loads (the op time is max(tensor + dequant, memory)).

Stored bytes: int4 weights are quantized in groups of 128 along k, each group
with an fp16 scale and a 4-bit zero point (AWQ, Lin et al. 2024, and GPTQ
defaults; lmdeploy converts AWQ models with --group-size 128): 0.5 + 2.5/128
bytes per weight. int8 weight-only is per output channel (one scale per column
of k weights): its scales are left out.
"""
from __future__ import annotations

import numpy as np

from simulator.cost.compute import vector_flops
from simulator.schema.hardware import HardwareProfile

# lane instructions per weight element for (weight dtype, compute dtype): unpack/convert + scale
_CONVERT_INSTR = {("int4", "fp16"): 9 / 8, ("int4", "bf16"): 11 / 8,
                  ("int8", "fp16"): 4 / 4, ("int8", "bf16"): 10 / 4}
SCALE_INSTR = 0.5                 # one packed (x2) fma applies scale and zero point to 2 elements
FLOPS_PER_INSTR = 2.0             # one lane slot = one FMA = 2 FLOPs of the vector rate
ROWS_PER_CONVERSION = 64          # warp-tile M extent of the fine-grained fpA_intB configs
QUANTIZED = frozenset(dt for dt, _ in _CONVERT_INSTR)
INT4_GROUP = 128                  # weights per (fp16 scale, 4-bit zero) group
_STORED_BYTES = {"int4": 0.5 + (2.0 + 0.5) / INT4_GROUP, "int8": 1.0}


def stored_bytes_per_weight(weight_dtype: str) -> float | None:
    """Bytes a quantized weight occupies with its share of scales and zeros (None: not quantized)."""
    return _STORED_BYTES.get(weight_dtype)


def dequant_flops_per_weight(weight_dtype: str, compute_dtype: str) -> float:
    """Vector FLOP-equivalents to turn one stored weight into a `compute_dtype` operand (0 if none)."""
    if weight_dtype not in QUANTIZED:
        return 0.0
    convert = _CONVERT_INSTR.get((weight_dtype, compute_dtype))
    if convert is None:                      # fp32/tf32 compute: the fp16 path plus one widening cvt
        convert = _CONVERT_INSTR[(weight_dtype, "fp16")] + 1.0
    return FLOPS_PER_INSTR * (convert + SCALE_INSTR)


def conversions(rows) -> np.ndarray:
    """Times each weight element is converted in a GEMM of `rows` rows: ceil(rows / 64), at least 1."""
    return np.maximum(np.ceil(np.asarray(rows, dtype=float) / ROWS_PER_CONVERSION), 1.0)


def dequant_s(profile: HardwareProfile, weight_elements, rows, flops_per_weight: float, dtype: str):
    """Seconds of vector work converting `weight_elements` weights in a GEMM of `rows` rows."""
    work = np.asarray(weight_elements, dtype=float) * conversions(rows) * flops_per_weight
    t = work / vector_flops(profile, dtype)
    return t if np.ndim(t) else float(t)
