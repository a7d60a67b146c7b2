from pathlib import Path

import pytest

from medseglatdiff.errors import DatasetFormatError, MedsegError
from medseglatdiff.io.json_files import read_json


def test_reads_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"x": [1, 2]}', encoding="utf-8")
    assert read_json(path, fix="redo it", require_object=True) == {"x": [1, 2]}


def test_missing_invalid_and_non_object_files_name_the_file_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    with pytest.raises(MedsegError, match=r"a\.json: not found; run make"):
        read_json(path, fix="redo it", missing="not found; run make")
    path.write_text("{broken", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"a\.json: not valid JSON .*; redo it"):
        read_json(path, fix="redo it", error=DatasetFormatError)
    path.write_text("[1, 2]", encoding="utf-8")
    assert read_json(path, fix="redo it") == [1, 2]
    with pytest.raises(MedsegError, match=r"a\.json: must hold a JSON object; redo it"):
        read_json(path, fix="redo it", require_object=True)
