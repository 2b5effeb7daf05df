"""Writing result files so that a crash, an interrupt or a second run never leaves a torn file.

Each file is written to a uniquely named temporary file in the same folder and
renamed over the target (os.replace is atomic on POSIX and Windows): a reader
sees the old file or the new one, never half of one; two runs writing the same
path at once each leave a complete file (the last rename wins).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from simulator.errors import InputError


def write_text_atomic(path: str | Path, text: str, *, field: str | None = None) -> Path:
    """Write `text` (UTF-8) to `path` atomically; an OSError becomes one InputError line."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory", source=str(p), field=field, expected="a file path")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the old file's mode, else rw-r--r--
        os.chmod(tmp, p.stat().st_mode & 0o7777 if p.exists() else 0o644)
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", source=str(p), field=field) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return p
