"""Reading user files at the schema edge: YAML/JSON into validated pydantic models.

Every failure becomes one `InputError` naming the file and the field.
`--set path=value` overrides are applied to the raw mapping before validation,
so they are validated exactly like values written in the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import InputError, from_validation_error

M = TypeVar("M", bound=BaseModel)


class DuplicateKeyError(Exception):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise DuplicateKeyError(str(key), seen[key], line)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


# values a YAML file may expand to through aliases (*name): a few thousand in any real scenario;
# ten levels of ten-fold aliases are 10^10 values that hang whatever walks them
MAX_YAML_VALUES = 1_000_000


def _expanded_size(node, memo: dict[int, int]) -> int:
    """Values a composed YAML node expands to, aliases counted each time they are used (memoized)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1   # a recursive alias counts once instead of forever
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(n, memo) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[key]


def _load_yaml(text: str, source: str) -> Any:
    """safe_load with unique keys, refusing a document whose aliases expand beyond MAX_YAML_VALUES."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_VALUES:
            raise InputError(f"expands to {size:,} values through YAML aliases (*name)", source=source,
                             expected=f"at most {MAX_YAML_VALUES:,} values; write the data out, or use fewer aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file holding a mapping."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=str(p))
    if p.is_dir():
        raise InputError("is a directory, not a file", source=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", source=str(p)) from None
    try:
        data = json.loads(text) if p.suffix == ".json" else _load_yaml(text, str(p))
    except DuplicateKeyError as exc:
        raise InputError(f"appears twice at lines {exc.first} and {exc.second}; which one is meant?",
                         source=str(p), field=exc.key, expected="each key once per mapping") from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else (f" at line {exc.lineno}" if hasattr(exc, "lineno") else "")
        raise InputError(f"does not parse as {'JSON' if p.suffix == '.json' else 'YAML'}{where}", source=str(p)) from None
    if not isinstance(data, dict):
        raise InputError("top level must be a mapping of fields", source=str(p))
    return data


def validate(model: type[M], data: dict[str, Any], source: str | None) -> M:
    """Validate a raw mapping into `model`, one-line InputError on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, source) from None


def parse_set_value(text: str) -> Any:
    """A --set value is YAML: 8 -> int, true -> bool, [1,2] -> list, h100 -> str."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `path=value` overrides (dotted paths) to a nested mapping, returning a copy."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} has no '='", source="--set", expected="path=value")
        path, _, raw = item.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise InputError(f"override {item!r} has an empty path", source="--set", expected="path=value")
        set_path(out, keys, parse_set_value(raw))
    return out


def set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set a dotted path in a nested mapping, creating intermediate mappings."""
    node = data
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise InputError(f"cannot set inside '{k}', which is not a mapping", source="--set", field=".".join(keys))
        node = nxt
    node[keys[-1]] = value


def refuse_overwriting_input(out: str | Path | None, option: str, *inputs: str | Path | None) -> None:
    """An output path that is one of the command's own input files would destroy it: refuse."""
    if out is None:
        return
    target = Path(out).expanduser().resolve()
    for item in inputs:
        if item is not None and Path(item).expanduser().resolve() == target:
            raise InputError("is the command's own input file; writing there would destroy it",
                             source=str(out), field=option, expected="a different output path")


def load_model_file(model: type[M], path: str | Path, overrides: list[str] | None = None) -> M:
    data = read_mapping(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return validate(model, data, str(path))


# Scenario fields that may hold a file path; relative paths are relative to the scenario file.
_PATH_FIELDS = (("cluster", "hardware"), ("workload", "model"), ("serving", "arrivals", "path"))
_PATH_SUFFIXES = (".yaml", ".yml", ".json", ".onnx", ".csv")


def resolve_relative_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Make file-path fields absolute against the scenario's folder (names stay names)."""
    for keys in _PATH_FIELDS:
        node = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(keys[-1])
        if not isinstance(value, str) or not value.lower().endswith(_PATH_SUFFIXES) and "/" not in value:
            continue
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and (base_dir / candidate).exists():
            node[keys[-1]] = str((base_dir / candidate).resolve())
    return data


def load_scenario(path: str | Path, overrides: list[str] | None = None):
    """Load and validate a scenario YAML (DESIGN.md 3.2).

    Relative file paths inside it (a hardware profile, a model config, an
    arrival trace) are taken relative to the scenario's folder.
    """
    from simulator.schema.scenario import Scenario
    data = read_mapping(path)
    if overrides:
        data = apply_overrides(data, overrides)
    data = resolve_relative_paths(data, Path(path).resolve().parent)
    return validate(Scenario, data, str(path))
