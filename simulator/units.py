"""SI units inside, human units at the edge.

Every quantity inside capplan is a float in SI base units (bytes, seconds,
FLOP/s, bytes/s, watts). `parse_quantity` turns strings such as "80 GiB",
"2039 GB/s", "312 TFLOPS", "1.5 us", "700 W", "200 Gb/s" into those floats.
Decimal prefixes are powers of 1000, binary prefixes (Ki, Mi, Gi, Ti) powers
of 1024; a lowercase "b" is a bit (Gb/s = 1e9/8 bytes/s).
"""
from __future__ import annotations

import re

from simulator.errors import InputError

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}

# dimension name -> accepted base unit spellings and their factor to SI
_BASE_UNITS = {
    "bytes": {"B": 1.0, "b": 0.125, "bit": 0.125, "bits": 0.125, "byte": 1.0, "bytes": 1.0},
    "bytes_per_s": {"B/s": 1.0, "b/s": 0.125, "bps": 0.125, "Bps": 1.0},
    "flops_per_s": {"FLOPS": 1.0, "FLOP/s": 1.0, "flops": 1.0, "OPS": 1.0, "OP/s": 1.0, "TOPS": 1e12},
    "watts": {"W": 1.0},
    "hertz": {"Hz": 1.0},
}

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RE = re.compile(rf"^\s*({_NUM})\s*([A-Za-zµ/]*)\s*$")

KIB = 2.0**10
MIB = 2.0**20
GIB = 2.0**30
TIB = 2.0**40


def parse_quantity(value: object, dimension: str, *, field: str | None = None,
                   source: str | None = None) -> float:
    """Parse a number or a string with a unit into an SI float of `dimension`.

    `dimension` is one of bytes, bytes_per_s, flops_per_s, seconds, watts, hertz.
    A bare number is taken as already in SI units.

    >>> parse_quantity("80 GiB", "bytes") == 80 * 2**30
    True
    >>> parse_quantity("200 Gb/s", "bytes_per_s")
    25000000000.0
    """
    if isinstance(value, bool):
        raise InputError("a boolean is not a quantity", field=field, source=source,
                         expected=f"a number or a string with a {dimension} unit")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise InputError(f"cannot read {value!r} as a quantity", field=field, source=source,
                         expected=f"a number or a string with a {dimension} unit")
    m = _RE.match(value)
    if not m:
        raise InputError(f"cannot read {value!r} as a quantity", field=field, source=source,
                         expected=f"a number followed by a {dimension} unit, e.g. {_example(dimension)}")
    number = float(m.group(1))
    unit = m.group(2)
    if unit == "":
        return number
    factor = _unit_factor(unit, dimension)
    if factor is None:
        raise InputError(f"unknown unit {unit!r} in {value!r}", field=field, source=source,
                         expected=f"a {dimension} unit, e.g. {_example(dimension)}")
    return number * factor


def _unit_factor(unit: str, dimension: str) -> float | None:
    if dimension == "seconds":
        return _TIME.get(unit)
    bases = _BASE_UNITS.get(dimension)
    if bases is None:
        raise ValueError(f"unknown dimension {dimension!r}")
    if unit in bases:
        return bases[unit]
    for prefix_table in (_BINARY, _DECIMAL):
        for prefix, scale in prefix_table.items():
            if prefix and unit.startswith(prefix) and unit[len(prefix):] in bases:
                return scale * bases[unit[len(prefix):]]
    if dimension == "flops_per_s" and unit.endswith("FLOPS") and unit[:-5] in _DECIMAL:
        return _DECIMAL[unit[:-5]]
    return None


def _example(dimension: str) -> str:
    return {
        "bytes": "'80 GiB'",
        "bytes_per_s": "'2039 GB/s'",
        "flops_per_s": "'312 TFLOPS'",
        "seconds": "'1.5 us'",
        "watts": "'700 W'",
        "hertz": "'1410 MHz'",
    }.get(dimension, "'1 unit'")


def format_bytes(size_bytes: float) -> str:
    """Binary-prefixed human size, e.g. 79.3 GiB."""
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(size_bytes) >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes:.0f} B"


def format_seconds(duration_s: float) -> str:
    """Human duration: ns/us/ms/s/min/h/days as fits."""
    a = abs(duration_s)
    if a >= 86400 * 2:
        return f"{duration_s / 86400:.1f} days"
    if a >= 3600:
        return f"{duration_s / 3600:.2f} h"
    if a >= 120:
        return f"{duration_s / 60:.1f} min"
    if a >= 1:
        return f"{duration_s:.3f} s"
    if a >= 1e-3:
        return f"{duration_s * 1e3:.3f} ms"
    if a >= 1e-6:
        return f"{duration_s * 1e6:.2f} us"
    return f"{duration_s * 1e9:.1f} ns"


def format_flops(flops: float) -> str:
    """FLOP count with a decimal prefix, e.g. 3.1 PFLOP."""
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if abs(flops) >= scale:
            return f"{flops / scale:.2f} {unit}"
    return f"{flops:.0f} FLOP"


# Bytes per element of each dtype name used in scenarios and graphs.
DTYPE_BYTES = {
    "fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5,
    "int32": 4, "int64": 8, "bool": 1,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of a dtype name (fp32, bf16, fp8, int4, ...)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}", expected=", ".join(DTYPE_BYTES)) from None
