"""LIDC converter: the LIDC-IDRI-slices tree as distributed and the shared samples; 4 raters, patient groups."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.converters.lidc import convert_lidc
from medseglatdiff.errors import MedsegError

SAMPLE_CASES = ["LIDC-IDRI-0001_n0_s3", "LIDC-IDRI-0022_n0_s5", "LIDC-IDRI-0046_n6_s1"]


def _manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _slices_tree(shared: Path, root: Path) -> Path:
    """A LIDC-IDRI-slices tree built from real samples, named as the public set names them."""
    tree = root / "LIDC-IDRI-slices"
    for case in SAMPLE_CASES:
        patient, nodule, slice_ = case.split("_")
        folder = tree / patient / f"nodule-{nodule[1:]}"
        name = f"slice-{slice_[1:]}.png"
        (folder / "images").mkdir(parents=True)
        shutil.copy(shared / "lidc_idri" / "images" / f"{case}.png", folder / "images" / name)
        for k in range(4):
            (folder / f"mask-{k}").mkdir()
            shutil.copy(shared / "lidc_idri" / "masks" / f"{case}_a{k}.png", folder / f"mask-{k}" / name)
    return tree


def test_sample_layout_keeps_raters_votes_and_patients(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "lidc_idri"
    spec = convert("lidc", src, tmp_path / "out")
    check_dataset(spec, 40)
    assert spec.num_raters == 4 and spec.channel_names == {"0": "CT"} and spec.group_kind == "patient"
    assert spec.labels == {"background": 0, "nodule": 1}
    rows = _manifest(src)
    assert spec.case_groups == {row["id"]: row["patient"] for row in rows}
    empty = 0
    for row in rows:
        case = row["id"]
        raters = np.stack([np.asarray(Image.open(f)) for f in spec.rater_files(case)])
        for k in range(4):
            source = np.asarray(Image.open(src / "masks" / f"{case}_a{k}.png"))
            np.testing.assert_array_equal(raters[k], source > 127)
            assert int(raters[k].sum()) == int(row[f"area_a{k}"])
        empty += int((raters.reshape(4, -1).max(1) == 0).sum())
        label = np.asarray(Image.open(spec.label_file(case)))
        np.testing.assert_array_equal(label, (raters.sum(0) >= 2).astype(np.uint8))
        image = np.asarray(Image.open(spec.image_files(case)[0]))
        np.testing.assert_array_equal(image, np.asarray(Image.open(src / "images" / f"{case}.png")))
    assert empty == 32, "empty reader masks are real and kept"


@pytest.mark.slow
def test_full_folder_groups_every_patient(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "lidc_idri_full"
    spec = convert("lidc", src, tmp_path / "full", num_workers=2)
    check_dataset(spec, 2148, stride=50)
    rows = _manifest(src)
    assert spec.case_groups == {row["id"]: row["patient"] for row in rows}
    assert len(set(spec.case_groups.values())) == 700


@pytest.mark.parametrize("level", ["slices", "parent"])
def test_distributed_tree_skips_incomplete_slices(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, level: str, check_dataset
) -> None:
    tree = _slices_tree(shared_data, tmp_path / "src")
    incomplete = tree / "LIDC-IDRI-0001" / "nodule-0"
    shutil.copy(incomplete / "images" / "slice-3.png", incomplete / "images" / "slice-4.png")
    for k in (0, 1, 3):  # mask-2 is missing for slice-4, as happens in the public set
        shutil.copy(incomplete / f"mask-{k}" / "slice-3.png", incomplete / f"mask-{k}" / "slice-4.png")
    (tree / "LIDC-IDRI-0001" / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING):
        spec = convert_lidc(tree if level == "slices" else tree.parent, tmp_path / "out")
    check_dataset(spec, 3)
    assert spec.case_ids() == SAMPLE_CASES
    assert spec.case_groups == {c: c.split("_")[0] for c in SAMPLE_CASES}
    assert spec.extra["skipped_incomplete_slices"] == 1
    assert "skipped 1 slice" in caplog.text
    rater = np.asarray(Image.open(spec.rater_files("LIDC-IDRI-0022_n0_s5")[0]))
    source = np.asarray(Image.open(shared_data / "lidc_idri" / "masks" / "LIDC-IDRI-0022_n0_s5_a0.png"))
    np.testing.assert_array_equal(rater, source > 127)


def test_distributed_mask_without_slice_is_an_error(shared_data: Path, tmp_path: Path) -> None:
    tree = _slices_tree(shared_data, tmp_path / "src")
    orphan = tree / "LIDC-IDRI-0046" / "nodule-6" / "mask-1" / "slice-9.png"
    shutil.copy(orphan.with_name("slice-1.png"), orphan)
    with pytest.raises(MedsegError, match="slice-9.png"):
        convert_lidc(tree, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sample_layout_missing_rater_mask_names_the_image(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        shared_data / "lidc_idri", src, ignore=shutil.ignore_patterns("LIDC-IDRI-00[2-9]*", "LIDC-IDRI-0[1-9]*")
    )
    (src / "masks" / "LIDC-IDRI-0001_n0_s3_a3.png").unlink()
    with pytest.raises(MedsegError, match=r"LIDC-IDRI-0001_n0_s3\.png.*_a3\.png"):
        convert_lidc(src, tmp_path / "out")


def test_sample_layout_without_manifest_parses_the_patient(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        shared_data / "lidc_idri",
        src,
        ignore=shutil.ignore_patterns("LIDC-IDRI-00[2-9]*", "LIDC-IDRI-0[1-9]*", "*.csv"),
    )
    spec = convert_lidc(src, tmp_path / "out")
    assert spec.case_groups == {"LIDC-IDRI-0001_n0_s3": "LIDC-IDRI-0001"}
