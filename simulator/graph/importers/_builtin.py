"""Registers the built-in importers (imported lazily: onnx loads only when used)."""
from __future__ import annotations

from simulator.graph.importers import register_importer


@register_importer("config")
def _config(spec, **kw):
    from simulator.graph.build import build_from_config
    return build_from_config(spec, **kw)


@register_importer("cnn")
def _cnn(spec, **kw):
    from simulator.graph.build import build_cnn_model
    return build_cnn_model(spec, **kw)


@register_importer("onnx")
def _onnx(spec, **kw):
    from simulator.graph.importers.onnx_import import build_onnx
    return build_onnx(spec, **kw)
