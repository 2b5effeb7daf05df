"""Tensor-core padding must not multiply the per-kernel latency floor."""
import pytest

from simulator.cost.compute import compute_efficiency, peak_flops
from simulator.hardware.load import load_hardware


@pytest.mark.parametrize("n,k", [(4096, 4096), (11008, 4096), (128, 128)])
def test_gemv_costs_no_more_compute_than_the_padded_16_row_gemm(n, k):
    prof = load_hardware("a100-sxm4-80gb")
    peak = peak_flops(prof, "fp16")

    def t_compute(m):
        flops = 2.0 * m * n * k
        return flops / (peak * compute_efficiency(prof, "matmul", "fp16", flops, (m, n, k)))

    # one row is padded to a 16-row MMA tile: same tile work, same single launch
    assert t_compute(1) == pytest.approx(t_compute(16), rel=1e-9)
    assert t_compute(1) < 2 * t_compute(16)


def test_only_gpus_quantize_gemms_into_tile_waves():
    """CPU BLAS has no 16-row MMA tiles over SMs: a 1-row GEMM on the CPU template costs no more
    than its work says (it is memory-bound there), while on a GPU profile the wave model applies."""
    from simulator.cost.compute import gemm_units, wave_efficiency
    from simulator.hardware.load import load_hardware
    cpu, gpu = load_hardware("cpu-generic"), load_hardware("a100-sxm4-80gb")
    assert cpu.compute_units and gemm_units(cpu) is None
    assert gemm_units(gpu) == gpu.compute_units
    assert wave_efficiency(1, 4096, 1, gemm_units(cpu), k=4096) == 1.0
    assert wave_efficiency(1, 4096, 1, gemm_units(gpu), k=4096) < 0.1     # one row of a 16-row MMA
