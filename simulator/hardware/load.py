"""Find and load hardware profiles (bundled, a user's folder, or a path).

Bundled data lives in the repository's `hardware_profiles/` and is shipped in
the wheel as `simulator/_data/hardware_profiles`; `data_dir()` finds either.
A profile is named by its file stem (`a100-sxm4-80gb.yaml` -> "a100-sxm4-80gb").
Loaded profiles are cached on (resolved path, mtime), because the planner
loads the same few profiles many times.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

import simulator
from simulator.errors import InputError, UnknownNameError
from simulator.loading import read_mapping, validate
from simulator.schema.hardware import HardwareProfile

PROFILE_SUFFIXES = (".yaml", ".yml", ".json")


@lru_cache(maxsize=8)
def data_dir(kind: str = "hardware_profiles") -> Path:
    """Folder of bundled data `kind` (hardware_profiles, scenarios): wheel first, then checkout."""
    packaged = Path(simulator.__file__).resolve().parent / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(simulator.__file__).resolve().parent.parent / kind


def _files_in(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return dict(_listing(str(folder), folder.stat().st_mtime_ns))


@lru_cache(maxsize=64)
def _listing(folder: str, mtime_ns: int) -> tuple[tuple[str, Path], ...]:
    """Profile files of a folder, cached until the folder changes (its mtime)."""
    return tuple((p.stem, p) for p in sorted(Path(folder).iterdir())
                 if p.is_file() and p.suffix in PROFILE_SUFFIXES and not p.name.startswith("."))


def profile_paths(profiles_dir: str | Path | None = None) -> dict[str, Path]:
    """Profile name -> file; a user's `profiles_dir` is searched first (its names win)."""
    paths = _files_in(data_dir("hardware_profiles"))
    if profiles_dir is not None:
        user = Path(profiles_dir).expanduser().resolve()
        if not user.is_dir():
            raise InputError("profiles folder not found", source=str(user), field="--profiles-dir",
                             expected="an existing folder of hardware profile YAML files")
        paths.update(_files_in(user))
    return paths


def list_profiles(profiles_dir: str | Path | None = None) -> list[str]:
    """Sorted names of every known profile (bundled plus the user's folder)."""
    return sorted(profile_paths(profiles_dir))


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith(PROFILE_SUFFIXES)


def resolve_profile(name_or_path: str | Path, profiles_dir: str | Path | None = None,
                    base_dir: str | Path | None = None) -> Path:
    """The file a profile reference points to; UnknownNameError with close names otherwise.

    A relative path is looked up beside `base_dir` (e.g. the scenario's folder) first,
    then in the working directory.
    """
    ref = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(ref):
        path = Path(ref).expanduser()
        if base_dir is not None and not path.is_absolute() and (Path(base_dir) / path).is_file():
            path = Path(base_dir) / path
        path = path.resolve()
        if not path.is_file():
            raise InputError("hardware profile file not found", source=ref,
                             expected="a profile name (see `capplan hardware list`) or a YAML file")
        return path
    paths = profile_paths(profiles_dir)
    if ref not in paths:   # names that start with what was typed are the likeliest meaning
        prefixed = [n for n in paths if n.startswith(ref)]
        raise UnknownNameError("hardware profile", ref, prefixed or paths)
    return paths[ref]


def _read_fast(path: str) -> dict:
    """YAML via libyaml when available (10x faster); any problem goes to read_mapping's messages."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None or path.endswith(".json"):
        return read_mapping(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=loader)  # noqa: S506 - CSafeLoader is the safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return read_mapping(path)
    return data if isinstance(data, dict) else read_mapping(path)


@lru_cache(maxsize=256)
def _load_cached(path: str, mtime_ns: int) -> HardwareProfile:
    return validate(HardwareProfile, _read_fast(path), path)


def load_hardware(name_or_path: str | Path, profiles_dir: str | Path | None = None,
                  base_dir: str | Path | None = None) -> HardwareProfile:
    """Load a profile by bundled/user name or path into a validated, frozen HardwareProfile.

    `base_dir` resolves relative paths (pass the scenario file's folder).
    """
    path = resolve_profile(name_or_path, profiles_dir, base_dir)
    return _load_cached(str(path), path.stat().st_mtime_ns)


def load_all(profiles_dir: str | Path | None = None) -> list[HardwareProfile]:
    """Every known profile, loaded (in name order)."""
    return [load_hardware(p) for _, p in sorted(profile_paths(profiles_dir).items())]


def load_all_checked(profiles_dir: str | Path | None = None) -> tuple[list[HardwareProfile], list[InputError]]:
    """Every profile that loads, and one InputError per file that does not (file, field, expected).

    `hardware list` shows the good ones and warns about the rest instead of failing
    on the first broken file of a user's folder.
    """
    good, broken = [], []
    for _, path in sorted(profile_paths(profiles_dir).items()):
        try:
            good.append(load_hardware(path))
        except InputError as exc:
            broken.append(exc)
    return good, broken


def broken_user_profiles(profiles_dir: str | Path | None) -> list[InputError]:
    """The errors of the profile files in a user's `--profiles-dir` that do not load (none without one).

    A scenario that does not use a broken file still runs; the CLI warns about it,
    since a user's own file that silently never loads is a surprise later.
    """
    if profiles_dir is None:
        return []
    user = Path(profiles_dir).expanduser().resolve()
    out = []
    for _, path in sorted(_files_in(user).items()):
        try:
            load_hardware(path)
        except InputError as exc:
            out.append(exc)
    return out
