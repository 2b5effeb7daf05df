"""Array kernels shared by the conv microbenchmark and the graph executor (NumPy or CuPy).

Convolution runs as im2col + one GEMM (Chellapilla et al. 2006), the method
framework CPU back ends and cuDNN's IMPLICIT_GEMM family build on; calibrating
`conv` with this same function keeps calibration and validation consistent.
Every function takes the array module `xp` so one code path serves both.
"""
from __future__ import annotations

import math


def conv_geometry(h: int, ho: int, k: int) -> tuple[int, int]:
    """(stride, pad) giving output size `ho` from input `h` with kernel `k` (same-pad first)."""
    for stride in (1, 2, 3, 4):
        for pad in sorted(range(k), key=lambda p: abs(p - (k - 1) // 2)):
            if (h + 2 * pad - k) // stride + 1 == ho:
                return stride, pad
    return 1, 0


def sliding(xp, x, k: int, stride: int):
    """Windows (n, c, ho, wo, k, k) of a C-contiguous NCHW array, as a strided view (no copy)."""
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    sn, sc, sh, sw = x.strides
    return xp.lib.stride_tricks.as_strided(x, shape=(n, c, ho, wo, k, k),
                                           strides=(sn, sc, sh * stride, sw * stride, sh, sw))


def conv2d(xp, x, w, stride: int, pad: int):
    """NCHW convolution: x (n, cin, h, w), w (cin*k*k, cout) -> (n, cout, ho, wo).

    im2col into a (cin*k*k, n*ho*wo) matrix filled by k*k strided slice copies
    (each a run of whole output rows, not k-element fragments), then one GEMM
    out = w^T @ cols, then back to NCHW.
    """
    n, cin = x.shape[0], x.shape[1]
    cout = w.shape[1]
    k = int(round(math.sqrt(w.shape[0] / cin)))
    if pad:
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (x.shape[2] - k) // stride + 1
    wo = (x.shape[3] - k) // stride + 1
    cols = xp.empty((cin, k, k, n, ho, wo), dtype=x.dtype)
    span_h, span_w = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = x[:, :, i:i + span_h:stride, j:j + span_w:stride].transpose(1, 0, 2, 3)
    out = w.T @ cols.reshape(cin * k * k, n * ho * wo)       # (cout, n*ho*wo)
    return xp.ascontiguousarray(out.reshape(cout, n, ho, wo).transpose(1, 0, 2, 3))


def pool2d(xp, x, k: int, stride: int, pad: int, mode: str):
    """Max/average pooling as k*k strided elementwise passes over the output (no window copy)."""
    if pad:
        fill = -math.inf if mode == "max" else 0.0
        x = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    ho = (x.shape[2] - k) // stride + 1
    wo = (x.shape[3] - k) // stride + 1
    span_h, span_w = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    out = None
    for i in range(k):
        for j in range(k):
            part = x[:, :, i:i + span_h:stride, j:j + span_w:stride]
            if out is None:
                out = part.copy()
            elif mode == "max":
                xp.maximum(out, part, out=out)
            else:
                xp.add(out, part, out=out)
    if mode != "max":
        out *= 1.0 / (k * k)
    return out


def softmax(xp, x, out=None):
    """Numerically stable softmax over the last axis."""
    m = x.max(axis=-1, keepdims=True)
    out = xp.subtract(x, m, out=out)
    xp.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def layernorm(xp, x, gamma, beta, eps: float = 1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    centred *= 1.0 / xp.sqrt(var + eps)
    centred *= gamma
    centred += beta
    return centred


def rmsnorm(xp, x, gamma, eps: float = 1e-6):
    ms = (x * x).mean(axis=-1, keepdims=True)
    y = x * (1.0 / xp.sqrt(ms + eps))
    y *= gamma
    return y


_FUSED: dict = {}


def _fused_gelu(xp):
    """One elementwise GPU kernel for GELU (CuPy), as frameworks fuse it."""
    if "gelu" not in _FUSED:
        _FUSED["gelu"] = xp.ElementwiseKernel(
            "float32 x", "float32 y",
            "y = 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)))", "capplan_gelu")
    return _FUSED["gelu"]


def gelu(xp, x):
    """tanh approximation (Hendrycks & Gimpel 2016), as GPT-2 uses; one fused kernel on a GPU."""
    if xp.__name__ != "numpy" and hasattr(xp, "ElementwiseKernel") and x.dtype == xp.float32:
        return _fused_gelu(xp)(x)
    inner = x * x
    inner *= x
    inner *= 0.044715
    inner += x
    inner *= 0.7978845608
    xp.tanh(inner, out=inner)
    inner += 1.0
    inner *= x
    inner *= 0.5
    return inner


def silu(xp, x):
    y = xp.negative(x)
    xp.exp(y, out=y)
    y += 1.0
    return xp.divide(x, y, out=y)


def cross_entropy(xp, logits, labels):
    """Mean token cross-entropy over the last axis (log-softmax, gather)."""
    m = logits.max(axis=-1, keepdims=True)
    shifted = logits - m
    lse = xp.log(xp.exp(shifted).sum(axis=-1))
    picked = xp.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]
    return (lse - picked).mean()
