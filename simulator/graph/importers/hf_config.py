"""HuggingFace-style `config.json` (a file or an inline mapping) -> TransformerArch -> graph.

Field names follow the `transformers` configuration classes: GPT2Config
(n_embd, n_layer, n_head, n_inner, n_positions, vocab_size; GPT-3 is written
as a gpt2 config), LlamaConfig (num_key_value_heads, intermediate_size,
tie_word_embeddings, rms_norm_eps), MistralConfig / MixtralConfig
(num_local_experts, num_experts_per_tok; sliding_window does not change the
FLOP count of a full-length pass and is ignored), BertConfig.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulator.errors import InputError, UnknownNameError, from_validation_error
from simulator.schema.graph import TransformerArch

_MISSING = object()

# model_type -> (arch family, aliases of each field: first present wins)
_GPT2_FIELDS = {
    "hidden_size": ("n_embd", "hidden_size"),
    "num_layers": ("n_layer", "num_hidden_layers"),
    "num_heads": ("n_head", "num_attention_heads"),
    "vocab_size": ("vocab_size",),
}
_LLAMA_FIELDS = {
    "hidden_size": ("hidden_size",),
    "num_layers": ("num_hidden_layers",),
    "num_heads": ("num_attention_heads",),
    "vocab_size": ("vocab_size",),
    "ffn_hidden_size": ("intermediate_size",),
}
_BERT_FIELDS = dict(_LLAMA_FIELDS)

MODEL_TYPES = {"gpt2": "gpt2", "llama": "llama", "mistral": "mistral", "mixtral": "mixtral",
               "bert": "bert"}


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a config.json file into a mapping (InputError naming the file on failure)."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=str(p))
    if p.is_dir():
        cand = p / "config.json"
        if not cand.exists():
            raise InputError("is a directory without a config.json", source=str(p))
        p = cand
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"does not parse as JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                         source=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", source=str(p)) from None
    if not isinstance(data, dict):
        raise InputError("top level must be a JSON object of config fields", source=str(p))
    return data


def _get(cfg: dict, aliases: tuple[str, ...], source: str, field: str, default=_MISSING):
    for key in aliases:
        if key in cfg and cfg[key] is not None:
            return _positive_int(cfg[key], source, key)
    if default is _MISSING:
        raise InputError("is required but missing", source=source, field=aliases[0],
                         expected="a positive integer")
    return default


def _positive_int(value: Any, source: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError(f"got {value!r}", source=source, field=field, expected="a positive integer")
    if value <= 0:
        raise InputError(f"must be positive, got {value!r}", source=source, field=field,
                         expected="a positive integer")
    return int(value)


def arch_from_config(cfg: dict[str, Any], source: str = "config",
                     options: dict[str, Any] | None = None) -> TransformerArch:
    """Map a HF config mapping to a TransformerArch; InputError naming the field on any problem."""
    options = dict(options or {})
    mt = cfg.get("model_type")
    if mt is None:
        raise InputError("is required but missing", source=source, field="model_type",
                         expected="one of " + ", ".join(MODEL_TYPES))
    if mt not in MODEL_TYPES:
        raise UnknownNameError("model_type", str(mt), MODEL_TYPES, source=source, field="model_type")
    family = MODEL_TYPES[mt]
    if family == "gpt2":
        f = {k: _get(cfg, v, source, k) for k, v in _GPT2_FIELDS.items()}
        f["ffn_hidden_size"] = _get(cfg, ("n_inner", "intermediate_size"), source, "n_inner",
                                    4 * f["hidden_size"])
        f["max_position_embeddings"] = _get(cfg, ("n_positions", "max_position_embeddings"), source,
                                            "n_positions", 1024)
        f.update(num_kv_heads=f["num_heads"], tied_embeddings=bool(cfg.get("tie_word_embeddings", True)),
                 learned_positions=True, norm="layernorm")
    elif family == "bert":
        f = {k: _get(cfg, v, source, k) for k, v in _BERT_FIELDS.items()}
        f["max_position_embeddings"] = _get(cfg, ("max_position_embeddings",), source,
                                            "max_position_embeddings", 512)
        f["type_vocab_size"] = _get(cfg, ("type_vocab_size",), source, "type_vocab_size", 2)
        f.update(num_kv_heads=f["num_heads"], learned_positions=True, norm="layernorm",
                 encoder_only=True)
        labels = options.pop("num_labels", None)
        if labels is not None:
            f["num_labels"] = _positive_int(labels, "options", "num_labels")
    else:
        f = {k: _get(cfg, v, source, k) for k, v in _LLAMA_FIELDS.items()}
        f["num_kv_heads"] = _get(cfg, ("num_key_value_heads",), source, "num_key_value_heads",
                                 f["num_heads"])
        f["max_position_embeddings"] = _get(cfg, ("max_position_embeddings",), source,
                                            "max_position_embeddings", 2048)
        f.update(gated_mlp=True, norm="rmsnorm",
                 tied_embeddings=bool(cfg.get("tie_word_embeddings", False)))
        if family == "mixtral":
            f["num_experts"] = _get(cfg, ("num_local_experts",), source, "num_local_experts")
            f["experts_per_token"] = _get(cfg, ("num_experts_per_tok",), source, "num_experts_per_tok")
            if f["experts_per_token"] > f["num_experts"]:
                raise InputError(f"is {f['experts_per_token']}, more than num_local_experts "
                                 f"{f['num_experts']}", source=source, field="num_experts_per_tok")
    head_dim = _head_dim(cfg, f, source)
    if family != "bert" and "num_labels" in options:
        raise InputError("applies only to bert models", source="options", field="num_labels")
    if options:
        raise InputError(f"unknown option(s) {', '.join(sorted(options))} for a {mt} model",
                         source="options", field=sorted(options)[0],
                         expected="num_labels (bert)" if family == "bert" else "no options")
    if f["num_heads"] % f["num_kv_heads"]:
        raise InputError(f"{f['num_heads']} attention heads are not a multiple of "
                         f"{f['num_kv_heads']} key/value heads", source=source, field="num_key_value_heads")
    try:
        return TransformerArch(family=family, head_dim=head_dim, **f)
    except ValidationError as exc:
        raise from_validation_error(exc, source) from None


def _head_dim(cfg: dict, f: dict, source: str) -> int:
    explicit = cfg.get("head_dim")
    if explicit is not None:
        return _positive_int(explicit, source, "head_dim")
    h, a = f["hidden_size"], f["num_heads"]
    if h % a:
        raise InputError(f"hidden size {h} is not divisible by {a} attention heads", source=source,
                         field="num_attention_heads" if "num_attention_heads" in cfg else "n_head")
    return h // a
