"""Atomic writes leave either the complete new file or the old one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from medseglatdiff.io.atomic import atomic_path, current_umask, write_json_atomic, write_text_atomic


def test_json_written_and_no_temporary_left(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "sub" / "a.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_content(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plans.json"]


def test_temporary_keeps_compound_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "vol.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"x")
    assert (tmp_path / "vol.nii.gz").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        write_text_atomic(tmp_path / "b.txt", "text")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == mode
