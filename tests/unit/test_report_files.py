"""Result files are written atomically: never torn by a crash or by two writers at once."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from simulator.errors import InputError
from simulator.report import files


def test_writes_the_text_and_leaves_no_temporary(tmp_path):
    p = files.write_text_atomic(tmp_path / "r.md", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    assert [f.name for f in tmp_path.iterdir()] == ["r.md"]
    assert stat.S_IMODE(p.stat().st_mode) == 0o644          # not mkstemp's private 0600


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "candidates.json"
    target.write_text("old complete report", encoding="utf-8")
    os.chmod(target, 0o640)

    def crash(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(InputError, match="No space left"):
        files.write_text_atomic(target, "new" * 1000, field="--out")
    assert target.read_text(encoding="utf-8") == "old complete report"
    assert [f.name for f in tmp_path.iterdir()] == ["candidates.json"]


def test_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("x")
    os.chmod(target, 0o600)
    files.write_text_atomic(target, "y")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "y"


def test_a_directory_target_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        files.write_text_atomic(tmp_path, "x", field="--out")


def test_concurrent_writers_each_leave_a_complete_file(tmp_path):
    target = tmp_path / "report.html"
    bodies = [str(i) * 200_000 for i in range(6)]
    threads = [threading.Thread(target=files.write_text_atomic, args=(target, b)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text() in bodies                       # one writer's whole text, not a mix
    assert [f.name for f in tmp_path.iterdir()] == ["report.html"]
