"""Per-op time on one device: a roofline with measured efficiency (DESIGN.md 4).

    t = max(flops / (peak[dtype] * eff_c), bytes / (bw * eff_m)) + launch

Memory-class ops (elementwise, norms, softmax, reductions, pooling) take their
compute bound from the vector rate instead (`vector_flops`), with eff_c = 1, or
the profile's curve for that op kind when it has one (calibrated CPU profiles:
a NumPy layernorm, softmax or pooling reaches a different rate than the GELU
that sets the vector rate).

Calibrated curves may refine the roofline (schema.hardware.EfficiencyCurve):
`index: intensity` reads a conv curve at the arithmetic intensity of its
im2col GEMM instead of its FLOPs, and `memory: serial` adds the operand traffic
at the DRAM bandwidth to the compute time instead of taking the larger one
(one CPU core packs GEMM panels, then computes: Goto & van de Geijn 2008).
Datasheet profiles carry neither, so their times are the plain roofline.

`eff_c` is the profile's efficiency curve for the op class at the op's FLOP
count, times a wave-quantization factor for GEMMs (tiles over SMs); `eff_m`
the memory curve at the bytes moved. Every function accepts NumPy arrays for
flops / bytes / GEMM shapes so the analytic planner can vectorize over
candidates. Pure functions: no state, no I/O.
"""
from __future__ import annotations

import numpy as np

from simulator.errors import InputError
from simulator.hardware.curves import efficiency, find_curve, interpolate_log
from simulator.schema.hardware import HardwareProfile

# cuBLAS/CUTLASS output tiles for large half-precision GEMMs on Ampere/Hopper
# (CUTLASS default threadblock shapes 256x128, 128x256, 128x128); the library
# heuristic picks the tile that fills the SMs best, so we take the best of them.
GEMM_TILES = ((256, 128), (128, 256), (128, 128))
MMA = 16   # tensor-core MMA tile edge (m16n8k16 on Ampere/Hopper): the padding granularity

# Dtype used when a device lacks a peak for the requested one (e.g. fp8 on A100
# runs as fp16/bf16; tf32 falls back to fp32).
_PEAK_FALLBACK = {"fp8": ("bf16", "fp16"), "bf16": ("fp16",), "fp16": ("bf16",),
                  "tf32": ("fp32",), "int8": ("fp8", "bf16", "fp16"), "int4": ("int8", "fp8", "bf16")}

MATMUL_KINDS = frozenset({"matmul", "attention_score", "attention_context"})
CONV_KINDS = frozenset({"conv"})
# memory-class kinds that a profile may give their own (vector-class) curve
VECTOR_KINDS = frozenset({"elementwise", "norm", "softmax", "reduce", "pooling"})


def peak_flops(profile: HardwareProfile, dtype: str) -> float:
    """Dense peak FLOP/s of `dtype` on the device (with a documented dtype fallback)."""
    peaks = profile.peak_flops_per_s
    if dtype in peaks:
        return peaks[dtype]
    for alt in _PEAK_FALLBACK.get(dtype, ()):
        if alt in peaks:
            return peaks[alt]
    raise InputError(f"hardware '{profile.name}' has no peak FLOP/s for dtype {dtype}",
                     field="workload.dtype", expected=", ".join(peaks))


def vector_flops(profile: HardwareProfile, dtype: str) -> float:
    """FLOP/s bounding memory-class ops (elementwise, norm, softmax, reduce, ...).

    These run on the vector/SIMT units (CUDA cores, CPU SIMD through NumPy ufuncs),
    not the tensor cores: the profile's `vector_flops_per_s[dtype]`, else its fp32
    vector rate (elementwise kernels compute half types in fp32 registers, e.g.
    PyTorch's opmath_type), else, where the profile gives no vector rate, the fp32
    peak (on NVIDIA datasheets fp32 is the non-tensor rate) or the dtype's peak.
    """
    vec = profile.vector_flops_per_s
    if dtype in vec:
        return vec[dtype]
    if "fp32" in vec:
        return vec["fp32"]
    return peak_flops(profile, "fp32" if "fp32" in profile.peak_flops_per_s else dtype)


def op_class_of(kind: str) -> str:
    """Efficiency-curve class of a graph op kind."""
    if kind in MATMUL_KINDS:
        return "matmul"
    if kind in CONV_KINDS:
        return "conv"
    return "memory"


def wave_efficiency(m, n, batch, compute_units: int | None, tiles=GEMM_TILES, k=None):
    """Fraction of SM slots doing useful work: tiles / (ceil(tiles / SMs) * SMs).

    A GEMM with output m x n (times `batch` for batched GEMMs) is cut into tiles,
    each run by one SM; the last wave leaves SMs idle (NVIDIA "Matrix
    Multiplication Background User's Guide", wave quantization). When a GEMM has
    fewer tiles than SMs and a long k, the library splits k across SMs (split-K,
    at least 256 deep per split). Padding to the tensor-core MMA granularity (16)
    wastes the rest. Returns the best over the candidate tile shapes, as the
    library heuristic would pick.
    """
    if not compute_units:
        return np.ones_like(np.asarray(m, dtype=float)) if np.ndim(m) else 1.0
    m = np.asarray(m, dtype=float)
    n = np.asarray(n, dtype=float)
    batch = np.asarray(batch, dtype=float)
    best = np.zeros(np.broadcast(m, n, batch).shape)
    for tm, tn in tiles:
        # Every launched tile costs a full tile's time, so the useful fraction is
        # the real output over the padded tile grid times the filled SM slots.
        # (Padding only to the MMA edge would let one extra row *speed up* a GEMM
        # by changing the wave count, e.g. m 512 -> 513.)
        tile_m = np.minimum(tm, np.ceil(m / MMA) * MMA)
        tile_n = np.minimum(tn, np.ceil(n / MMA) * MMA)
        tiles_m, tiles_n = np.ceil(m / tile_m), np.ceil(n / tile_n)
        fill = (m * n) / (tiles_m * tile_m * tiles_n * tile_n)
        count = tiles_m * tiles_n * batch
        if k is not None:
            max_split = np.maximum(1.0, np.floor(np.asarray(k, dtype=float) / 256.0))
            count = count * np.clip(np.floor(compute_units / count), 1.0, max_split)
        waves = np.ceil(count / compute_units)
        best = np.maximum(best, fill * count / (waves * compute_units))
    out = best
    return out if out.ndim else float(out)


def gemm_units(profile: HardwareProfile) -> int | None:
    """SMs/CUs that GEMM tiles are scheduled over: a GPU's `compute_units`. CPU BLAS blocks and
    TPU systolic arrays do not run CUDA-style tile waves, so no wave quantization there."""
    return profile.compute_units if profile.kind == "gpu" else None


def gemm_intensity(gemm_mnk, dtype: str):
    """FLOPs per byte of a GEMM's operands, 2mnk / (itemsize (mk + kn + mn)) (one pass over
    A, B and C; for a conv, its im2col GEMM). Independent of the batch of a batched GEMM."""
    from simulator.units import dtype_bytes
    m, n, k = (np.asarray(x, dtype=float) for x in gemm_mnk)
    return 2.0 * m * n * k / (dtype_bytes(dtype) * (m * k + k * n + m * n))


def compute_curve_class(profile: HardwareProfile, kind: str, dtype: str) -> str:
    """Curve class of a compute op: attention ops use an `attention` curve where there is one."""
    if kind in ("attention_score", "attention_context") and find_curve(profile, "attention", dtype):
        return "attention"
    return op_class_of(kind)


def compute_efficiency(profile: HardwareProfile, kind: str, dtype: str, flops, gemm_mnk=None):
    """eff_c: curve efficiency at this FLOP count (or GEMM intensity) times GEMM wave quantization."""
    op_class = compute_curve_class(profile, kind, dtype)
    return _compute_efficiency(profile, op_class, find_curve(profile, op_class, dtype), dtype, flops, gemm_mnk)


def _compute_efficiency(profile: HardwareProfile, op_class: str, curve, dtype: str, flops, gemm_mnk):
    if gemm_mnk is None or op_class == "memory":
        return efficiency(profile, op_class, dtype, flops, default=1.0)
    m, n, k = gemm_mnk
    batch = np.maximum(np.asarray(flops, dtype=float) / np.maximum(2.0 * m * n * k, 1.0), 1.0)
    wave = wave_efficiency(m, n, np.round(batch), gemm_units(profile), k=k)
    if curve is not None and curve.index == "intensity":
        out = wave * interpolate_log(curve.size, curve.efficiency, gemm_intensity(gemm_mnk, dtype))
        return out if np.ndim(out) else float(out)
    # The padded tile grid does flops / wave of work; the curve (which embeds the
    # launch floor, time = F/(peak*c) + t0) is read at that padded size, so the
    # floor is paid once and not inflated by the padding.
    return wave * efficiency(profile, op_class, dtype, np.asarray(flops, dtype=float) / wave, default=1.0)


def memory_efficiency(profile: HardwareProfile, bytes_moved):
    """eff_m: achieved fraction of HBM bandwidth for a transfer of this size."""
    return efficiency(profile, "memory", "any", bytes_moved, default=1.0)


def op_time_s(profile: HardwareProfile, kind: str, flops, bytes_moved, dtype: str,
              gemm_mnk=None, launches=1):
    """Roofline time of one op (or an array of ops of one kind) on one device.

    `launches` kernel launches are added (DESIGN.md 4: `+ launch`).
    """
    flops = np.asarray(flops, dtype=float)
    bytes_moved = np.asarray(bytes_moved, dtype=float)
    t_compute = np.zeros_like(flops)
    has_flops = flops > 0
    serial = False
    if np.any(has_flops):
        if op_class_of(kind) == "memory":
            peak = vector_flops(profile, dtype)
            curve = find_curve(profile, kind, dtype) if kind in VECTOR_KINDS else None
            eff_c = 1.0 if curve is None else interpolate_log(curve.size, curve.efficiency, np.maximum(flops, 1.0))
        else:
            peak = peak_flops(profile, dtype)
            op_class = compute_curve_class(profile, kind, dtype)
            curve = find_curve(profile, op_class, dtype)
            eff_c = _compute_efficiency(profile, op_class, curve, dtype, np.maximum(flops, 1.0), gemm_mnk)
            serial = curve is not None and curve.memory == "serial"
        t_compute = np.where(has_flops, flops / (peak * eff_c), 0.0)
    if serial:     # operands stream from DRAM at the plateau bandwidth while the core waits
        t_memory = bytes_moved / profile.memory.bandwidth_bytes_per_s
    else:
        t_memory = np.where(bytes_moved > 0,
                            bytes_moved / (profile.memory.bandwidth_bytes_per_s
                                           * memory_efficiency(profile, np.maximum(bytes_moved, 1.0))), 0.0)
    # a datasheet/calibrated curve already embeds the launch floor (its latency_s:
    # eff(F) = c / (1 + c * peak * t0 / F)); add the launch only where no curve exists
    binding = op_class_of(kind) if np.any(has_flops) else "memory"
    has_curve = find_curve(profile, binding, dtype) is not None and find_curve(profile, "memory", "any") is not None
    launch = 0.0 if has_curve else launches * profile.launch_overhead_s
    t = (t_compute + t_memory if serial else np.maximum(t_compute, t_memory)) + launch
    return t if t.ndim else float(t)


def ops_time_s(profile: HardwareProfile, ops, dtype: str) -> float:
    """Sum of op times of a sequence of op dicts (kind, flops, bytes, gemm_mnk)."""
    total = 0.0
    for op in ops:
        total += op_time_s(profile, op["kind"], op["flops"], op["bytes"], op.get("dtype", dtype),
                           op.get("gemm_mnk"))
    return total
