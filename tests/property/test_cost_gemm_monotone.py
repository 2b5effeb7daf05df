"""A GEMM with more rows (or columns) never takes less time: a library can always
run the smaller problem with the larger one's tiling (pad with zeros)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cost.compute import compute_efficiency
from simulator.hardware.load import load_hardware

PROFILE = load_hardware("a100-sxm4-80gb")


def gemm_time_s(m, n, k):
    flops = 2.0 * m * n * k
    return flops / (312e12 * compute_efficiency(PROFILE, "matmul", "fp16", flops, (m, n, k)))


@settings(max_examples=300, deadline=None)
@given(m=st.integers(1, 8192), dm=st.integers(1, 300), n=st.integers(16, 32768), k=st.integers(16, 16384))
def test_more_rows_never_faster(m, dm, n, k):
    assert gemm_time_s(m + dm, n, k) >= gemm_time_s(m, n, k) * (1 - 1e-9)


@settings(max_examples=300, deadline=None)
@given(m=st.integers(1, 8192), n=st.integers(16, 32768), dn=st.integers(1, 300), k=st.integers(16, 16384))
def test_more_columns_never_faster(m, n, dn, k):
    assert gemm_time_s(m, n + dn, k) >= gemm_time_s(m, n, k) * (1 - 1e-9)

# Depth k is not checked the same way: split-K takes whole 256-deep slices
# (a library heuristic), so k = 512 may split where k = 257 cannot.
