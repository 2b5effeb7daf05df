"""The calibration store: SQLite (standard library), one file, many runs.

Every run keeps its fingerprint, start and finish time, backend and all its
measurements. A run is registered as `running` when it starts; its
measurements and its `complete` status are written together in ONE
transaction at the end, so a run that is interrupted (Ctrl-C: `interrupted`)
or killed (stays `running`) has no measurements and is never used, and every
earlier run is untouched. WAL journaling plus a busy timeout let two
processes calibrate into one store at once (writers queue; readers never
block). The file is marked with PRAGMA application_id and a schema version in
PRAGMA user_version: a file that is not a capplan store, or one from a newer
capplan, is refused with a clear error and left as it was.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from simulator.errors import InputError
from simulator.schema.calibration import CalibrationRun, Fingerprint, Measurement

APPLICATION_ID = 0x63617031      # "cap1"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    backend TEXT NOT NULL,
    device TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    quick INTEGER NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted')),
    capplan_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    test TEXT NOT NULL, op_class TEXT NOT NULL, dtype TEXT NOT NULL, shape TEXT NOT NULL,
    flops REAL NOT NULL, bytes REAL NOT NULL, duration_s REAL NOT NULL,
    min_s REAL NOT NULL, max_s REAL NOT NULL, repeats INTEGER NOT NULL, inner INTEGER NOT NULL,
    gemm_m INTEGER, gemm_n INTEGER, gemm_k INTEGER, batch INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""
_MEAS_COLS = ("test", "op_class", "dtype", "shape", "flops", "bytes", "duration_s", "min_s",
              "max_s", "repeats", "inner", "gemm_m", "gemm_n", "gemm_k", "batch")


def default_store_path() -> Path:
    """calibration.sqlite in the user data directory (platformdirs)."""
    import platformdirs
    return Path(platformdirs.user_data_dir("capplan")) / "calibration.sqlite"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CalibrationStore:
    """An open store. Use `open_store(path)`; close() or use as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._conn.close()

    def begin_run(self, fingerprint: Fingerprint, *, quick: bool, version: str = "",
                  started_at: str | None = None, partial: bool = False) -> int:
        """Register a run as `running` (committed at once) and return its id.

        `partial` runs (a subset of the tests, `--only`) are kept but never chosen by
        latest_complete(), so they cannot replace a full calibration.
        """
        with _write(self._conn):
            cur = self._conn.execute(
                "INSERT INTO runs (backend, device, started_at, quick, partial, status, capplan_version,"
                " fingerprint) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (fingerprint.backend, fingerprint.device, started_at or utc_now(), int(quick), int(partial),
                 version, fingerprint.model_dump_json()))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, measurements: Iterable[Measurement],
                   finished_at: str | None = None) -> int:
        """Write all measurements and mark the run complete, in one transaction. Returns the count."""
        with _write(self._conn):
            status = self._conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if status is None or status[0] != "running":
                raise InputError(f"run {run_id} is not a running calibration run", source=str(self.path))
            n = 0
            for n, m in enumerate(measurements, start=1):
                self._conn.execute(
                    f"INSERT INTO measurements (run_id, seq, {', '.join(_MEAS_COLS)})"
                    f" VALUES (?, ?, {', '.join('?' * len(_MEAS_COLS))})",
                    (run_id, n, *(getattr(m, c) for c in _MEAS_COLS)))
            self._conn.execute("UPDATE runs SET status = 'complete', finished_at = ? WHERE id = ?",
                               (finished_at or utc_now(), run_id))
        return n

    def mark_interrupted(self, run_id: int) -> None:
        """Best effort after Ctrl-C: record that the run stopped (it has no measurements)."""
        with _write(self._conn):
            self._conn.execute("UPDATE runs SET status = 'interrupted', finished_at = ? "
                               "WHERE id = ? AND status = 'running'", (utc_now(), run_id))

    def record_run(self, fingerprint: Fingerprint, measurements: list[Measurement], *, quick: bool,
                   version: str = "") -> int:
        run_id = self.begin_run(fingerprint, quick=quick, version=version)
        self.finish_run(run_id, measurements)
        return run_id

    def list_runs(self) -> list[CalibrationRun]:
        """Every run, oldest first, without measurements."""
        rows = self._conn.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_from_row(r, []) for r in rows]

    def get_run(self, run_id: int) -> CalibrationRun:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise InputError(f"no calibration run {run_id}", source=str(self.path))
        meas = self._conn.execute(
            f"SELECT {', '.join(_MEAS_COLS)} FROM measurements WHERE run_id = ? ORDER BY seq",
            (run_id,)).fetchall()
        return _run_from_row(row, [Measurement(**dict(zip(_MEAS_COLS, m))) for m in meas])

    def latest_complete(self, backend: str | None = None) -> CalibrationRun | None:
        """The newest complete, full (not --only) run (of `backend` when given), with measurements."""
        query = "SELECT id FROM runs WHERE status = 'complete' AND partial = 0"
        args: tuple = ()
        if backend:
            query += " AND backend = ?"
            args = (backend,)
        row = self._conn.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return self.get_run(int(row[0])) if row else None


class _write:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception, Ctrl-C included)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


def _run_from_row(row, measurements: list[Measurement]) -> CalibrationRun:
    return CalibrationRun(
        id=row["id"], backend=row["backend"], started_at=row["started_at"],
        finished_at=row["finished_at"], quick=bool(row["quick"]), complete=row["status"] == "complete",
        partial=bool(row["partial"]),
        capplan_version=row["capplan_version"],
        fingerprint=Fingerprint.model_validate(json.loads(row["fingerprint"])),
        measurements=measurements)


def open_store(path: str | Path | None = None) -> CalibrationStore:
    """Open (creating when absent or empty) a store; refuse foreign or newer files untouched."""
    p = Path(path) if path is not None else default_store_path()
    src = str(p)
    if p.is_dir():
        raise InputError("is a directory, not a calibration store file", source=src)
    if p.exists() and p.stat().st_size > 0:
        _check_header(p)
    else:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the store's folder: {exc}", source=src) from None
    try:
        conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open calibration store: {exc}", source=src) from None
    conn.row_factory = sqlite3.Row
    try:
        _retry_busy(lambda: _prepare(conn, src))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InputError(f"is not a capplan calibration store ({exc}); nothing was changed",
                         source=src) from None
    except InputError:
        conn.close()
        raise
    return CalibrationStore(p, conn)


def _prepare(conn: sqlite3.Connection, src: str) -> None:
    _check_identity(conn, src)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    _initialise(conn, src)


def _retry_busy(fn, timeout_s: float = BUSY_TIMEOUT_S):
    """Run fn, retrying while another process holds a lock SQLite's busy handler does not
    wait for (e.g. the moment a new file switches to WAL)."""
    import time
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _check_header(p: Path) -> None:
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(f"cannot read calibration store: {exc}", source=str(p)) from None
    if head != _SQLITE_MAGIC:
        raise InputError("is not a capplan calibration store (not an SQLite file); nothing was changed",
                         source=str(p))


def _check_identity(conn: sqlite3.Connection, src: str) -> None:
    own_tx = not conn.in_transaction
    if own_tx:                     # one read snapshot: another process may be initialising
        conn.execute("BEGIN")
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        if own_tx:
            conn.execute("COMMIT")
    if app_id == 0 and tables == 0:
        return                                    # a new or empty database: ours to initialise
    if app_id != APPLICATION_ID:
        raise InputError("is an SQLite database but not a capplan calibration store; nothing was changed",
                         source=src)
    if version > SCHEMA_VERSION:
        raise InputError(f"was written by a newer capplan (store schema {version}, this capplan reads "
                         f"up to {SCHEMA_VERSION}); nothing was changed", source=src,
                         expected="a newer capplan, or --store with another file")


def _initialise(conn: sqlite3.Connection, src: str) -> None:
    with _write(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        _check_identity(conn, src)                # another process may have won the race
        for stmt in filter(str.strip, _SCHEMA.split(";")):   # executescript would COMMIT
            conn.execute(stmt)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
