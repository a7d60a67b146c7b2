"""Atomic writes leave either the complete new file or the old one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medseglatdiff.io.atomic import atomic_path, write_json_atomic


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
