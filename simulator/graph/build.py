"""Entry point of the graph layer: a model reference -> a checked computation graph.

A reference is a bundled name (`capplan models list`), a path to a
HuggingFace-style config.json (or a folder holding one), a path to an .onnx
file, or an inline HF-style mapping. `load_model` returns the forward graph of
one pass of `batch` sequences (or images), or with `training=True` the
training step graph (backward, recompute, optimizer ops; see training.py).
"""
from __future__ import annotations

import json
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import networkx as nx

from simulator.errors import InputError, UnknownNameError
from simulator.schema.graph import TransformerArch
from simulator.units import dtype_bytes

RECOMPUTE = ("none", "selective", "full")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


@lru_cache(maxsize=1)
def _bundled() -> dict[str, dict]:
    text = resources.files("simulator.graph").joinpath("models/bundled.json").read_text(encoding="utf-8")
    return json.loads(text)["models"]


def bundled_models() -> list[str]:
    """Names of the bundled models, in the order of the data file."""
    return list(_bundled())


def bundled_entry(name: str) -> dict:
    """The data-file entry of a bundled model (family, source, config or builder)."""
    models = _bundled()
    if name not in models:
        raise UnknownNameError("model", name, models, field="model")
    return models[name]


def _resolve(ref: Any) -> tuple[str, Any, str, str]:
    """-> (importer kind, spec, source label, display name)."""
    if isinstance(ref, Mapping):
        return "config", dict(ref), "inline model", str(ref.get("name", ref.get("model_type", "inline")))
    if isinstance(ref, Path) or (isinstance(ref, str) and _looks_like_path(ref)):
        p = Path(ref)
        if p.suffix.lower() == ".onnx":
            return "onnx", p, str(p), p.stem
        return "config", p, str(p), p.stem if p.name != "config.json" else p.parent.name or "config"
    if not isinstance(ref, str):
        raise InputError(f"got {type(ref).__name__}", field="model",
                         expected="a bundled model name, a path, or a mapping")
    entry = bundled_entry(ref)
    if entry["family"] == "cnn":
        return "cnn", entry["builder"], "bundled", ref
    return "config", dict(entry["config"]), "bundled", ref


def _looks_like_path(ref: str) -> bool:
    if ref in _bundled():
        return False
    return ref.endswith((".json", ".onnx")) or "/" in ref or "\\" in ref or Path(ref).exists()


def _positive(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"got {value!r}", source="arguments", field=field, expected="a positive integer")
    return value


def load_model(ref: Any, *, seq_len: int = 2048, batch: int = 1, dtype: str = "bf16",
               dims: Mapping[str, int] | None = None, options: Mapping[str, Any] | None = None,
               training: bool = False, recompute: str = "none", optimizer: str = "adam") -> nx.DiGraph:
    """Build the (checked, acyclic) graph of a model reference. See the module docstring."""
    from simulator.graph.analysis import check_dag
    from simulator.graph.importers import get_importer
    _positive(seq_len, "seq_len")
    _positive(batch, "batch")
    dt = dtype_bytes(dtype)
    if recompute not in RECOMPUTE:
        raise UnknownNameError("recompute policy", str(recompute), RECOMPUTE, field="recompute")
    if optimizer not in OPTIMIZERS:
        raise UnknownNameError("optimizer", str(optimizer), OPTIMIZERS, field="optimizer")
    kind, spec, source, name = _resolve(ref)
    g = get_importer(kind)(spec, batch=batch, seq_len=seq_len, dtype=dtype, dt=dt, dims=dict(dims or {}),
                           options=dict(options or {}), training=training, source=source)
    g.graph.setdefault("warnings", [])
    g.graph.update(name=name, dtype=dtype, training=False, recompute="none",
                   source="bundled" if source == "bundled" else g.graph.get("source", kind))
    check_dag(g, source=source)
    if training:
        from simulator.graph.training import add_training
        g = add_training(g, recompute=recompute, optimizer=optimizer)
    return g


def load_arch(ref: Any, options: Mapping[str, Any] | None = None,
              attention: str | None = None) -> TransformerArch | None:
    """The transformer architecture of a reference, without building a graph (None for CNN/ONNX);
    `attention` (a scenario's workload.attention) sets how its attention core runs."""
    kind, spec, source, _ = _resolve(ref)
    if kind != "config":
        return None
    from simulator.graph.importers.hf_config import arch_from_config, read_config
    cfg = read_config(spec) if isinstance(spec, Path) else spec
    try:
        arch = arch_from_config(cfg, source, options)
        return arch.model_copy(update={"attention": attention}) if attention else arch
    except InputError as exc:
        # a scenario's workload.model_options or inline workload.model: name the field where
        # the user wrote it (the scenario's own file is added by the caller)
        prefix = {"options": "workload.model_options", "inline model": "workload.model"}.get(exc.source or "")
        if prefix is None:
            raise
        field = f"{prefix}.{exc.field}" if exc.field else prefix
        raise InputError(exc.message, field=field, expected=exc.expected) from None


def scenario_model_field(exc: InputError) -> str | None:
    """A model error's field: as in the model's own file when that is the source, else a scenario path."""
    field = exc.field
    if exc.source or (field and field.startswith("workload.")):
        return field
    return f"workload.{field or 'model'}"


def warn_beyond_context(arch: TransformerArch, tokens: int, source: str | None, what: str = "seq_len") -> None:
    """Warn (do not fail) when a sequence is longer than the model's position table."""
    if tokens > arch.max_position_embeddings:
        where = f"{source}: " if source else ""
        warnings.warn(f"{where}{what} {tokens} exceeds the model's max_position_embeddings "
                      f"{arch.max_position_embeddings}; counted as if the model accepted it",
                      UserWarning, stacklevel=3)


def build_from_config(spec: Any, *, batch: int, seq_len: int, dtype: str, dt: float, dims: dict,
                      options: dict, training: bool, source: str) -> nx.DiGraph:
    """Importer "config": HF config (path or mapping) -> transformer forward graph."""
    from simulator.graph.importers.hf_config import arch_from_config, read_config
    from simulator.graph.transformer import build_transformer
    cfg = read_config(spec) if isinstance(spec, Path) else spec
    arch = arch_from_config(cfg, source, options)
    if dims:
        raise InputError("symbolic dimensions apply only to ONNX models", source="--dim",
                         field=sorted(dims)[0], expected="--seq and --batch for transformer configs")
    g = build_transformer(arch, batch=batch, seq_len=seq_len, dtype=dtype, dt=dt, name="model",
                          training=training)
    g.graph.update(source="config", batch=batch, seq_len=seq_len, arch=arch.model_dump(), warnings=[])
    if seq_len > arch.max_position_embeddings:
        msg = (f"{source}: seq_len {seq_len} exceeds the model's max_position_embeddings "
               f"{arch.max_position_embeddings}; counted as if the model accepted it")
        g.graph["warnings"].append(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    return g


def build_cnn_model(spec: str, *, batch: int, seq_len: int, dtype: str, dt: float, dims: dict,
                    options: dict, training: bool, source: str) -> nx.DiGraph:
    """Importer "cnn": a built-in CNN by builder name; seq_len does not apply."""
    from simulator.graph.importers.cnn import build_cnn
    if dims:
        raise InputError("symbolic dimensions apply only to ONNX models", source="--dim",
                         field=sorted(dims)[0], expected="--batch and model options for CNNs")
    g = build_cnn(spec, batch=batch, dt=dt, dtype=dtype, options=options)
    g.graph.update(source="cnn", batch=batch, seq_len=None,
                   image_size=int(options.get("image_size", 224)))
    return g
