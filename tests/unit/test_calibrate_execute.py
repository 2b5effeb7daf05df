"""Op-by-op execution of capplan graphs with NumPy: kernels are right, every op runs."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.calibrate import kernels as K
from simulator.calibrate.cases import CASES, build_case
from simulator.calibrate.execute import does_work, prepare
from simulator.errors import InputError, UnknownNameError


def _reference_conv(x, w, stride, pad):
    n, cin, h, _ = x.shape
    kk, cout = w.shape
    k = int(round((kk / cin) ** 0.5))
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wk = w.reshape(cin, k, k, cout)
    out = np.zeros((n, cout, ho, ho))
    for i in range(ho):
        for j in range(ho):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("ncab,cabo->no", patch, wk)
    return out


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 1, 2)])
def test_conv2d_matches_a_direct_convolution(k, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 9))
    w = rng.standard_normal((3 * k * k, 4))
    np.testing.assert_allclose(K.conv2d(np, x, w, stride, pad), _reference_conv(x, w, stride, pad),
                               rtol=1e-10, atol=1e-10)


def test_pooling_softmax_layernorm():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(K.pool2d(np, x, 2, 2, 0, "max"), x.reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(K.pool2d(np, x, 2, 2, 0, "avg"), x.reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5)))
    s = K.softmax(np, rng.standard_normal((4, 7)))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0)
    y = K.layernorm(np, rng.standard_normal((5, 16)), np.ones(16), np.zeros(16))
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=-1), 1.0, rtol=1e-4)
    assert K.conv_geometry(32, 32, 3) == (1, 1) and K.conv_geometry(32, 16, 2) == (2, 0)


@pytest.mark.parametrize("name", list(CASES))
def test_every_working_op_of_each_case_executes(name):
    g = build_case(name)
    steps = prepare(g, np, np.random.default_rng(0))
    working = [n for n in g.nodes if does_work(g.nodes[n])]
    assert sorted(s.node for s in steps) == sorted(working)
    for s in steps:
        s.run()
    assert len(steps) >= 7


def test_cases_are_an_mlp_a_transformer_block_and_a_cnn():
    kinds = {name: {g.nodes[n]["kind"] for n in g.nodes} for name, g in
             ((n, build_case(n)) for n in CASES)}
    assert "attention_score" in kinds["transformer-block"] and "softmax" in kinds["transformer-block"]
    assert "conv" in kinds["cnn-small"] and "pooling" in kinds["cnn-small"]
    assert kinds["mlp"] >= {"matmul", "elementwise"}
    with pytest.raises(UnknownNameError):
        build_case("mpl")


def test_unsupported_dtype_is_an_input_error():
    g = build_case("mlp")
    g.graph["dtype"] = "fp8"
    with pytest.raises(InputError):
        prepare(g, np, np.random.default_rng(0))
