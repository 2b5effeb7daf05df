"""Calibration store: round trip, atomic runs (Ctrl-C, SIGKILL), concurrency, foreign files."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator.calibrate.store import SCHEMA_VERSION, open_store
from simulator.errors import InputError
from simulator.schema.calibration import Fingerprint, Measurement

FP = Fingerprint(backend="numpy", device="test cpu", fields={"blas_threads": "1"})
REPO = Path(__file__).resolve().parents[2]


def meas(i: int) -> Measurement:
    return Measurement(test="gemm", op_class="matmul", dtype="fp32", shape=f"{i}x{i}x{i}",
                       flops=2.0 * i ** 3, bytes=12.0 * i * i, duration_s=1e-3 * i, min_s=9e-4 * i,
                       max_s=2e-3 * i, repeats=5, gemm_m=i, gemm_n=i, gemm_k=i)


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_round_trip_and_latest_complete(tmp_path):
    path = tmp_path / "s.sqlite"
    with open_store(path) as st:
        first = st.record_run(FP, [meas(i) for i in range(1, 6)], quick=True, version="x")
        second = st.record_run(FP, [meas(7)], quick=False)
        pending = st.begin_run(FP, quick=True)            # never finished
        latest = st.latest_complete("numpy")
        assert latest.id == second and latest.complete and latest.measurements == [meas(7)]
        runs = st.list_runs()
        assert [r.id for r in runs][:3] == [first, second, pending]
        assert [r.complete for r in runs] == [True, True, False]
        assert st.get_run(first).measurements == [meas(i) for i in range(1, 6)]
        assert st.latest_complete("cupy") is None
        subset = st.begin_run(FP, quick=True, partial=True)       # an --only run: kept, never latest
        st.finish_run(subset, [meas(9)])
        assert st.latest_complete("numpy").id == second and st.get_run(subset).partial
    with open_store(path) as st:                           # reopen: still there
        assert st.get_run(first).fingerprint == FP


def test_exception_inside_the_final_transaction_writes_nothing(tmp_path):
    with open_store(tmp_path / "s.sqlite") as st:
        keep = st.record_run(FP, [meas(2)], quick=True)
        run_id = st.begin_run(FP, quick=True)

        def broken():
            yield meas(1)
            raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            st.finish_run(run_id, broken())
        st.mark_interrupted(run_id)
        assert st.latest_complete().id == keep
        assert st.get_run(run_id).measurements == []
        assert not st.get_run(run_id).complete


_SLOW_WRITER = r"""
import sys, time
from simulator.calibrate.store import open_store
from simulator.schema.calibration import Fingerprint, Measurement
fp = Fingerprint(backend="numpy", device="killed")
def slow():
    for i in range(1, 100000):
        if i == 50:
            print("inside", flush=True)
        time.sleep(0.001)
        yield Measurement(test="copy", op_class="stream", dtype="fp32", shape="n", flops=0, bytes=8.0 * i,
                          duration_s=1.0, min_s=1.0, max_s=1.0, repeats=1)
with open_store(sys.argv[1]) as st:
    st.finish_run(st.begin_run(fp, quick=True), slow())
"""


def _wait_for(proc, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read()}")
    raise AssertionError("child never reached the point to kill it")


def test_sigkill_midway_through_writing_leaves_earlier_runs_intact(tmp_path):
    path = tmp_path / "s.sqlite"
    with open_store(path) as st:
        keep = st.record_run(FP, [meas(i) for i in range(1, 4)], quick=True)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    _wait_for(proc, "inside")                 # 49 measurements inserted, transaction open
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with open_store(path) as st:
        assert st.latest_complete().id == keep
        assert st.get_run(keep).measurements == [meas(i) for i in range(1, 4)]
        killed = [r for r in st.list_runs() if r.fingerprint.device == "killed"]
        assert len(killed) == 1 and not killed[0].complete
        assert st.get_run(killed[0].id).measurements == []
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_sigkill_during_a_real_calibration_leaves_the_store_usable(tmp_path, cpu_template_profiles):
    cpu_profiles = cpu_template_profiles
    path = tmp_path / "s.sqlite"
    with open_store(path) as st:
        keep = st.record_run(FP, [meas(3)], quick=True)
    env = dict(os.environ, CAPPLAN_CALIBRATE_SMOKE="")      # the real (quick) suite
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "calibrate", "--backend", "numpy",
                             "--quick", "--store", str(path), "--profiles-dir", str(cpu_profiles)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:             # wait until the run is registered, then kill it
        with open_store(path) as st:
            if len(st.list_runs()) == 2:
                break
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with open_store(path) as st:
        assert st.latest_complete("numpy").id == keep
        assert [r.complete for r in st.list_runs()] == [True, False]


def test_ctrl_c_during_a_real_calibration_marks_it_interrupted(tmp_path, cpu_template_profiles):
    path = tmp_path / "s.sqlite"
    profiles = cpu_template_profiles
    with open_store(path) as st:
        keep = st.record_run(FP, [meas(4)], quick=True)
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "calibrate", "--backend", "numpy",
                             "--quick", "--store", str(path), "--profiles-dir", str(profiles)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            # a background parent may ignore SIGINT; give the child Python's handler
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline:
        with open_store(path) as st:
            if len(st.list_runs()) == 2:
                break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (_out[-800:], err[-800:])
    with open_store(path) as st:
        runs = st.list_runs()
        assert st.latest_complete().id == keep and len(runs) == 2 and not runs[1].complete
        status = sqlite3.connect(path).execute("SELECT status FROM runs WHERE id = ?", (runs[1].id,)).fetchone()
        assert status[0] == "interrupted"


_WRITER = r"""
import sys
from simulator.calibrate.store import open_store
from simulator.schema.calibration import Fingerprint, Measurement
fp = Fingerprint(backend="numpy", device=sys.argv[2])
ms = [Measurement(test="add", op_class="stream", dtype="fp32", shape=str(i), flops=0, bytes=12.0 * (i + 1),
                  duration_s=1.0, min_s=1.0, max_s=1.0, repeats=1) for i in range(400)]
for _ in range(6):
    with open_store(sys.argv[1]) as st:
        st.record_run(fp, ms, quick=True)
"""


def test_two_processes_writing_at_once_do_not_corrupt_the_store(tmp_path):
    path = tmp_path / "s.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with open_store(path) as st:
        runs = st.list_runs()
        assert len(runs) == 12 and all(r.complete for r in runs)
        assert sorted(r.fingerprint.device for r in runs) == ["a"] * 6 + ["b"] * 6
        assert all(len(st.get_run(r.id).measurements) == 400 for r in runs)


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 10)
    before = digest(path)
    with pytest.raises(InputError, match="not a capplan calibration store"):
        open_store(path)
    assert digest(path) == before


def test_another_applications_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.execute("INSERT INTO users VALUES ('ada')")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(InputError, match="not a capplan calibration store"):
        open_store(path)
    assert digest(path) == before


def test_a_store_from_a_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    with open_store(path) as st:
        st.record_run(FP, [meas(1)], quick=True)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(InputError, match="newer capplan"):
        open_store(path)
    assert digest(path) == before


def test_a_directory_and_an_empty_file(tmp_path):
    with pytest.raises(InputError, match="directory"):
        open_store(tmp_path)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with open_store(empty) as st:             # an empty file is a new store
        assert st.list_runs() == []


def test_processes_creating_a_new_store_at_the_same_moment_all_succeed(tmp_path):
    code = "import sys\nfrom simulator.calibrate.store import open_store\nopen_store(sys.argv[1]).close()"
    for trial in range(4):
        path = tmp_path / f"s{trial}.sqlite"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read()[-500:]
        with open_store(path) as st:
            assert st.list_runs() == []
