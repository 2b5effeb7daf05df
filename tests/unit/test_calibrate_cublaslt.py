"""The fp8 (cuBLASLt) helpers that can run without a GPU: E4M3/bf16 decoding, operand
generation, the library's ctypes declarations, and the CuPy backend's fp8 gating."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from simulator.calibrate import cublaslt


def test_e4m3_decoding_matches_the_ocp_fp8_spec():
    # OCP 8-bit floating point spec, E4M3: bias 7, max normal 448 (S.1111.110), min normal
    # 2^-6 (S.0001.000), min subnormal 2^-9 (S.0000.001), S.1111.111 is NaN, no infinities
    bits = np.array([0x00, 0x01, 0x07, 0x08, 0x38, 0x39, 0x3F, 0x7E, 0xB8, 0xFE, 0x7F, 0xFF], np.uint8)
    got = cublaslt.e4m3_to_float32(bits)
    want = [0.0, 2.0**-9, 7 * 2.0**-9, 2.0**-6, 1.0, 1.125, 1.875, 448.0, -1.0, -448.0]
    np.testing.assert_array_equal(got[:10], np.array(want, np.float32))
    assert np.isnan(got[10]) and np.isnan(got[11])


def test_every_e4m3_pattern_decodes_monotonically_within_a_sign():
    pos = cublaslt.e4m3_to_float32(np.arange(0, 0x7F, dtype=np.uint8))
    assert np.all(np.diff(pos) > 0)                      # 0x00..0x7E strictly increasing
    neg = cublaslt.e4m3_to_float32(np.arange(0x80, 0xFF, dtype=np.uint8))
    np.testing.assert_array_equal(neg, -pos)


def test_operand_table_is_the_random_array_range_and_never_zero():
    values = cublaslt.e4m3_to_float32(cublaslt.e4m3_table())
    assert len(set(values.tolist())) == 24
    assert np.all((np.abs(values) >= 0.5) & (np.abs(values) < 1.5))
    assert (values > 0).sum() == (values < 0).sum() == 12


def test_random_e4m3_is_seeded_and_uses_only_table_patterns():
    a = cublaslt.random_e4m3(np, np.random.default_rng(3), (64, 32))
    b = cublaslt.random_e4m3(np, np.random.default_rng(3), (64, 32))
    assert a.shape == (64, 32) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a).tolist()) <= set(cublaslt.e4m3_table().tolist())
    assert len(np.unique(a)) > 12                        # both signs and many magnitudes drawn


def test_bf16_decoding_is_the_top_half_of_float32():
    x = np.array([1.0, -2.5, 3.140625, 1e-3], np.float32)
    top = (x.view(np.uint32) >> 16).astype(np.uint16)
    back = cublaslt.bf16_to_float32(top)
    np.testing.assert_array_equal(back[:3], x[:3])       # exactly representable in bf16
    assert abs(back[3] / x[3] - 1) < 2**-7


def test_heuristic_result_struct_has_the_cublaslt_h_layout():
    # uint64 algo[8] (64) + size_t workspaceSize (8) + int state + float wavesCount + int reserved[4]
    assert ctypes.sizeof(cublaslt._Heuristic) == 96
    assert cublaslt._Heuristic.workspaceSize.offset == 64
    assert cublaslt._Heuristic.wavesCount.offset == 76


def test_a_missing_library_is_one_lt_error(monkeypatch):
    def no_lib(name, *a, **k):
        raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(cublaslt.ctypes, "CDLL", no_lib)
    with pytest.raises(cublaslt.LtError, match="libcublasLt not found"):
        cublaslt.load_library()


def test_descriptors_build_with_the_real_library_when_present():
    try:
        lib = cublaslt.load_library()
    except cublaslt.LtError:
        pytest.skip("libcublasLt is not installed here")
    desc = ctypes.c_void_p()
    assert lib.cublasLtMatmulDescCreate(ctypes.byref(desc), cublaslt.CUBLAS_COMPUTE_32F,
                                        cublaslt.CUDA_R_32F) == 0
    cublaslt._set(lib, "cublasLtMatmulDescSetAttribute", desc, cublaslt.DESC_TRANSA,
                  ctypes.c_int32(cublaslt.CUBLAS_OP_T))
    layout = cublaslt._layout(lib, cublaslt.CUDA_R_8F_E4M3, 256, 128, 256)
    assert layout.value
    assert lib.cublasLtMatrixLayoutDestroy(layout) == 0 and lib.cublasLtMatmulDescDestroy(desc) == 0
    with pytest.raises(cublaslt.LtError, match="status"):      # a bad enum is reported, not ignored
        cublaslt._set(lib, "cublasLtMatmulDescSetAttribute", desc, 9999, ctypes.c_int32(0))
