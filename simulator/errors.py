"""One exception tree for capplan.

`InputError` means the user gave something wrong (exit code 2, one clear line);
anything else escaping the CLI is an internal error (exit code 1).
"""
from __future__ import annotations

import re
from difflib import get_close_matches
from typing import Iterable


class CapplanError(Exception):
    """Base of every error capplan raises on purpose."""


class InputError(CapplanError):
    """Bad user input: a file, a field, a value. Rendered as one line, exit 2.

    `source` is the file (or "--set", "command line"), `field` a dotted path,
    `expected` what would have been accepted.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 expected: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        self.expected = expected
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.source:
            parts.append(str(self.source))
        if self.field:
            parts.append(f"field '{self.field}'")
        head = ": ".join(parts)
        text = self.message
        if self.expected:
            text = f"{text} (expected {self.expected})"
        return f"{head}: {text}" if head else text


class UnknownNameError(InputError):
    """A name that is not in a registry; suggests the closest known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, source: str | None = None,
                 field: str | None = None):
        known = sorted(known)
        close = get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known[:12])}"
        super().__init__(f"unknown {kind} '{name}'{hint}", source=source, field=field)
        self.name = name
        self.close_matches = close


class InfeasibleError(InputError):
    """The request is well formed but cannot be satisfied (e.g. a plan that never fits)."""


def _is_union_tag(part) -> bool:
    """pydantic's location tags for validators and union members (not user field names)."""
    text = str(part)
    return text.startswith(("function-", "constrained-")) or re.fullmatch(
        r"(float|int|str|bool|none|list\[.*\]|dict\[.*\]|literal\[.*\]|tagged-union\[.*\])", text) is not None


def from_validation_error(exc, source: str | None = None) -> InputError:
    """Turn a pydantic ValidationError into one InputError naming the first bad field."""
    errs = exc.errors()
    first = errs[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if not _is_union_tag(p))
    msg = first.get("msg", "invalid value")
    if msg.startswith("Value error, "):     # a schema validator's own message
        msg = msg[len("Value error, "):]
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        msg = "is not a known field"
    elif kind == "missing":
        msg = "is required but missing"
    more = f" (+{len(errs) - 1} more problems)" if len(errs) > 1 else ""
    value = first.get("input")
    shown = ""
    if kind not in ("missing", "extra_forbidden") and value is not None and not isinstance(value, (dict, list)):
        shown = f" (got {value!r})"
    return InputError(f"{msg}{shown}{more}", source=source, field=loc or None)
