"""Built-in CNNs (VGG16, ResNet-50) and a small sequential-spec builder (MLPs, small CNNs).

Tensors are NCHW. Conv FLOPs = 2*N*Cout*Ho*Wo*(Cin/groups)*kh*kw, linear
2*N*in*out; biases fused, not counted (MACs, as torchvision's GFLOPS
column: VGG16 15.47 and ResNet-50 4.09 at 224x224). Architectures as in
torchvision.models (Simonyan & Zisserman 2015, configuration D; He et al.
2016 with the stride on the 3x3 convolution, "ResNet v1.5").
"""
from __future__ import annotations

from typing import Any, Sequence

import networkx as nx

from simulator.errors import InputError
from simulator.graph.ops import PER_ELEMENT_FLOPS, add_op, make_op, matmul_op, numel

# torchvision vgg16 "D" configuration: channel counts, "M" = 2x2 max pool.
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_RESNET50_STAGES = [(64, 3), (128, 4), (256, 6), (512, 3)]   # (width, blocks), expansion 4


class _B:
    """Adds ops to a graph, tracking the current layer index and the op dtype."""

    def __init__(self, g: nx.DiGraph, dt: float, dtype: str):
        self.g, self.dt, self.dtype, self.layer = g, dt, dtype, None

    def shape(self, node: str) -> tuple:
        return self.g.nodes[node]["out_shape"]

    def add(self, op: dict, deps: Sequence[str]) -> str:
        op["layer"], op["dtype"] = self.layer, self.dtype
        if op["name"] == op["id"] and self.layer is not None:
            op["name"] = op["id"].split(".", 1)[-1]
        return add_op(self.g, op, deps)

    def conv(self, name: str, x: str, cout: int, k: int, stride: int = 1, pad: int = 0,
             bias: bool = True, groups: int = 1) -> str:
        n, cin, hh, ww = self.shape(x)
        ho, wo = (hh + 2 * pad - k) // stride + 1, (ww + 2 * pad - k) // stride + 1
        if ho <= 0 or wo <= 0:
            raise InputError(f"input of {hh}x{ww} is too small for conv '{name}'", source="options",
                             field="image_size")
        kk = cin // groups * k * k
        params = cout * kk + (cout if bias else 0)
        out = (n, cout, ho, wo)
        op = make_op(name, "conv", flops=2.0 * numel(out) * kk,
                     bytes_read=(numel((n, cin, hh, ww)) + params) * self.dt,
                     bytes_written=numel(out) * self.dt, params=params, in_shapes=((n, cin, hh, ww),),
                     out_shape=out, gemm_mnk=(n * ho * wo, cout, kk))
        return self.add(op, [x])

    def elementwise(self, name: str, formula: str, deps: Sequence[str], kind: str = "elementwise",
                    params: int = 0) -> str:
        shape = self.shape(deps[0])
        n = numel(shape)
        op = make_op(name, kind, flops=PER_ELEMENT_FLOPS[formula] * n,
                     bytes_read=(n * len(deps) + params) * self.dt, bytes_written=n * self.dt,
                     params=params, in_shapes=(shape,) * len(deps), out_shape=shape,
                     saved="none" if formula == "add" else "output" if formula == "softmax" else "inputs")
        return self.add(op, deps)

    def bn(self, name: str, x: str) -> str:
        return self.elementwise(name, "batchnorm", [x], kind="norm", params=2 * self.shape(x)[1])

    def pool(self, name: str, x: str, k: int, stride: int, pad: int = 0, mode: str = "max") -> str:
        n, c, hh, ww = self.shape(x)
        ho, wo = (hh + 2 * pad - k) // stride + 1, (ww + 2 * pad - k) // stride + 1
        if ho <= 0 or wo <= 0:
            raise InputError(f"input of {hh}x{ww} is too small for pooling '{name}'", source="options",
                             field="image_size")
        out = (n, c, ho, wo)
        op = make_op(name, "pooling", flops=float(numel(out) * k * k),
                     bytes_read=numel((n, c, hh, ww)) * self.dt, bytes_written=numel(out) * self.dt,
                     in_shapes=((n, c, hh, ww),), out_shape=out)
        return self.add(op, [x])

    def global_pool(self, name: str, x: str) -> str:
        n, c, hh, ww = self.shape(x)
        op = make_op(name, "pooling", flops=float(n * c * hh * ww), bytes_read=n * c * hh * ww * self.dt,
                     bytes_written=n * c * self.dt, in_shapes=((n, c, hh, ww),), out_shape=(n, c))
        return self.add(op, [x])

    def adaptive_pool(self, name: str, x: str, out_hw: int) -> str:
        """torchvision AdaptiveAvgPool2d; an identity (no op) when the size already matches."""
        n, c, hh, ww = self.shape(x)
        if (hh, ww) == (out_hw, out_hw):
            return x
        win = -(-hh // out_hw) * -(-ww // out_hw)
        out = (n, c, out_hw, out_hw)
        op = make_op(name, "pooling", flops=float(numel(out) * win), bytes_read=n * c * hh * ww * self.dt,
                     bytes_written=numel(out) * self.dt, in_shapes=((n, c, hh, ww),), out_shape=out)
        return self.add(op, [x])

    def flatten(self, name: str, x: str) -> str:
        shape = self.shape(x)
        out = (shape[0], numel(shape[1:]))
        op = make_op(name, "data_movement", in_shapes=(shape,), out_shape=out)
        return self.add(op, [x])   # a view: no bytes moved

    def fc(self, name: str, x: str, out: int, bias: bool = True) -> str:
        n, k = self.shape(x)
        op = matmul_op(name, n, out, k, dt=self.dt, params=k * out + (out if bias else 0))
        return self.add(op, [x])


def _input(b: _B, shape: tuple) -> str:
    """The input tensor as a zero-cost node, so every real op has a producer."""
    op = make_op("input", "data_movement", bytes_written=numel(shape) * b.dt, out_shape=shape)
    return b.add(op, [])


def build_sequential(spec: Sequence[Sequence[Any]], *, input_shape: tuple, dt: float, dtype: str,
                     g: nx.DiGraph | None = None) -> nx.DiGraph:
    """Build a chain from a spec: ("conv", cout, k[, stride, pad]), ("bn",), ("relu",),
    ("maxpool", k, stride[, pad]), ("avgpool", k, stride), ("gap",), ("flatten",),
    ("fc", out), ("softmax",). Each conv/fc starts a new layer index."""
    g = g if g is not None else nx.DiGraph()
    b = _B(g, dt, dtype)
    x = _input(b, tuple(input_shape))
    layer = -1
    for j, item in enumerate(spec):
        kind, *args = item
        if kind in ("conv", "fc"):
            layer += 1
            b.layer = layer
        name = f"L{b.layer}.{kind}{j}" if b.layer is not None else f"{kind}{j}"
        if kind == "conv":
            x = b.conv(name, x, *args)
        elif kind == "fc":
            x = b.fc(name, x, *args)
        elif kind == "bn":
            x = b.bn(name, x)
        elif kind in ("relu", "gelu", "sigmoid", "tanh"):
            x = b.elementwise(name, kind, [x])
        elif kind == "softmax":
            x = b.elementwise(name, "softmax", [x], kind="softmax")
        elif kind in ("maxpool", "avgpool"):
            x = b.pool(name, x, *args, mode=kind[:3])
        elif kind == "gap":
            x = b.global_pool(name, x)
        elif kind == "flatten":
            x = b.flatten(name, x)
        else:
            raise InputError(f"unknown layer kind {kind!r}", field=f"spec[{j}]",
                             expected="conv, fc, bn, relu, gelu, maxpool, avgpool, gap, flatten, softmax")
    return g


def vgg16(*, batch: int, dt: float, dtype: str, image_size: int = 224, num_classes: int = 1000,
          in_channels: int = 3) -> nx.DiGraph:
    """torchvision vgg16: 13 3x3 convs (pad 1) with ReLU, 5 max pools, adaptive pool to 7x7,
    classifier 25088-4096-4096-num_classes (dropout is identity in FLOPs and omitted)."""
    g = nx.DiGraph()
    b = _B(g, dt, dtype)
    x = _input(b, (batch, in_channels, image_size, image_size))
    layer = 0
    for j, v in enumerate(_VGG16):
        if v == "M":
            x = b.pool(f"L{layer - 1}.pool", x, 2, 2)
            continue
        b.layer = layer
        x = b.conv(f"L{layer}.conv", x, v, 3, 1, 1)
        x = b.elementwise(f"L{layer}.relu", "relu", [x])
        layer += 1
    b.layer = None
    x = b.adaptive_pool("avgpool", x, 7)
    x = b.flatten("flatten", x)
    for idx, width in enumerate((4096, 4096, num_classes)):
        b.layer = layer
        x = b.fc(f"L{layer}.fc", x, width)
        if idx < 2:
            x = b.elementwise(f"L{layer}.relu", "relu", [x])
        layer += 1
    return g


def resnet50(*, batch: int, dt: float, dtype: str, image_size: int = 224, num_classes: int = 1000,
             in_channels: int = 3) -> nx.DiGraph:
    """torchvision resnet50 (bottleneck v1.5); layer index = bottleneck block (0..15)."""
    g = nx.DiGraph()
    b = _B(g, dt, dtype)
    x = _input(b, (batch, in_channels, image_size, image_size))
    x = b.conv("stem.conv", x, 64, 7, 2, 3, bias=False)
    x = b.elementwise("stem.relu", "relu", [b.bn("stem.bn", x)])
    x = b.pool("stem.maxpool", x, 3, 2, 1)
    block = 0
    for stage, (width, blocks) in enumerate(_RESNET50_STAGES):
        for j in range(blocks):
            stride = 2 if (j == 0 and stage > 0) else 1
            b.layer = block
            x = _bottleneck(b, f"L{block}.", x, width, stride, downsample=(j == 0))
            block += 1
    b.layer = None
    x = b.global_pool("avgpool", x)
    b.fc("fc", x, num_classes)
    return g


def _bottleneck(b: _B, p: str, x: str, width: int, stride: int, downsample: bool) -> str:
    out_ch = 4 * width
    y = b.elementwise(p + "relu1", "relu", [b.bn(p + "bn1", b.conv(p + "conv1", x, width, 1, bias=False))])
    y = b.elementwise(p + "relu2", "relu",
                      [b.bn(p + "bn2", b.conv(p + "conv2", y, width, 3, stride, 1, bias=False))])
    y = b.bn(p + "bn3", b.conv(p + "conv3", y, out_ch, 1, bias=False))
    skip = x
    if downsample:
        skip = b.bn(p + "down.bn", b.conv(p + "down.conv", x, out_ch, 1, stride, bias=False))
    return b.elementwise(p + "relu3", "relu", [b.elementwise(p + "residual", "add", [y, skip])])


CNN_BUILDERS = {"vgg16": vgg16, "resnet50": resnet50}
CNN_OPTIONS = ("image_size", "num_classes", "in_channels")


def build_cnn(builder: str, *, batch: int, dt: float, dtype: str, options: dict[str, Any]) -> nx.DiGraph:
    """Build a bundled CNN by name with validated options (image_size, num_classes, in_channels)."""
    opts = {}
    for key, value in (options or {}).items():
        if key not in CNN_OPTIONS:
            raise InputError(f"unknown option '{key}' for {builder}", source="options", field=key,
                             expected=", ".join(CNN_OPTIONS))
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"got {value!r}", source="options", field=key, expected="a positive integer")
        opts[key] = value
    return CNN_BUILDERS[builder](batch=batch, dt=dt, dtype=dtype, **opts)
