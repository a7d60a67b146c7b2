"""dataset.json parsing: nnU-Net v2 keys, our extensions, and errors that list every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import DatasetFormatError

NNUNET_DATASET_JSON = {
    "channel_names": {"0": "T2", "1": "ADC"},
    "labels": {"background": 0, "PZ": 1, "TZ": 2},
    "numTraining": 2,
    "file_ending": ".nii.gz",
    "name": "Prostate",
}


def test_plain_nnunet_dataset_json_is_accepted_and_round_trips(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps(NNUNET_DATASET_JSON))
    spec = DatasetSpec.load(tmp_path)
    assert spec.num_channels == 2 and spec.label_values == [0, 1, 2] and spec.num_raters == 0
    assert spec.to_dict() == NNUNET_DATASET_JSON


def test_extension_keys_are_parsed(tmp_path: Path) -> None:
    data = dict(NNUNET_DATASET_JSON, num_raters=4, group_kind="patient", case_groups={"a": "p1"})
    spec = DatasetSpec.from_dict(tmp_path, data)
    assert spec.num_raters == 4 and spec.group_of("a") == "p1" and spec.group_of("b") is None
    assert [p.name for p in spec.rater_files("a")] == [f"a_r{k}.nii.gz" for k in range(4)]
    assert spec.label_file("a") == tmp_path / "labelsTr" / "a.nii.gz"


def test_all_problems_reported_together(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError) as err:
        DatasetSpec.from_dict(tmp_path, {"labels": {"lesion": 1}, "file_ending": "png"})
    message = str(err.value)
    for fragment in ("'channel_names'", "'numTraining'", "background", "starting with '.'", "dataset.json"):
        assert fragment in message


def test_missing_and_invalid_json_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="dataset.json: missing"):
        DatasetSpec.load(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        DatasetSpec.load(tmp_path)
