"""The shared atomic, idempotent writer (module_utils/files.py)."""
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.llmops.platform.plugins.module_utils import files


def test_write_if_changed_writes_once_readable_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "b.json"
    assert files.write_json_if_changed(str(path), {"b": 1, "a": 2}) is True
    assert path.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    mtime = path.stat().st_mtime_ns
    assert files.write_json_if_changed(str(path), {"a": 2, "b": 1}) is False
    assert path.stat().st_mtime_ns == mtime
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["b.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("old")

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        files.write_if_changed(str(path), "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.html"]


def test_replace_dir_swaps_the_tree_only_when_the_build_succeeds(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with files.replace_dir(str(dest)) as work:
            (Path(work) / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in dest.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no build dir left behind

    with files.replace_dir(str(dest)) as work:
        (Path(work) / "new.txt").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
