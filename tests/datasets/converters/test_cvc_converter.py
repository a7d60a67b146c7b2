"""CVC-ClinicDB converter: TIFF folders as distributed, the shared PNG samples, video-sequence groups."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.converters.cvc import README_SEQUENCES, convert_cvc_clinicdb, readme_frame_table
from medseglatdiff.errors import MedsegError

# real frames of the shared sample: (frame, sequence) from its manifest
FRAMES = {13: 1, 38: 2, 164: 8}


def _manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _distributed(shared: Path, root: Path, suffix: str = ".tif", sub: str = "") -> Path:
    """Original/ + Ground Truth/ from real frames; the masks become RGB with a few stray grey pixels."""
    base = root / sub if sub else root
    (base / "Original").mkdir(parents=True)
    (base / "Ground Truth").mkdir(parents=True)
    for frame in FRAMES:
        Image.open(shared / "cvc_clinicdb" / "images" / f"{frame}.png").save(base / "Original" / f"{frame}{suffix}")
        mask = np.asarray(Image.open(shared / "cvc_clinicdb" / "masks" / f"{frame}.png")).copy()
        mask[:2, :5] = 17  # stray low values, as in the original ground-truth TIFFs
        Image.fromarray(mask).convert("RGB").save(base / "Ground Truth" / f"{frame}{suffix}")
    return root


def test_readme_table_matches_the_full_manifest(shared_data: Path) -> None:
    table = readme_frame_table()
    assert sorted(table) == list(range(1, 613)), "frames 1..612, each in one sequence"
    assert [seq for seq, _, _ in README_SEQUENCES] == list(range(1, 30))
    rows = _manifest(shared_data / "cvc_clinicdb_full")
    assert len(rows) == 498
    mismatched = [row["frame"] for row in rows if table[int(row["frame"])] != int(row["sequence"])]
    assert mismatched == []


def test_sample_folder_uses_the_manifest_sequences(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    spec = convert("cvc_clinicdb", shared_data / "cvc_clinicdb", tmp_path / "out")
    check_dataset(spec, 23)
    assert spec.group_kind == "video_sequence" and spec.channel_names == {"0": "R", "1": "G", "2": "B"}
    assert spec.case_groups["013"] == "sequence_01" and spec.case_groups["602"] == "sequence_29"
    assert len(set(spec.case_groups.values())) == 23
    label = np.asarray(Image.open(spec.label_file("013")))
    source = np.asarray(Image.open(shared_data / "cvc_clinicdb" / "masks" / "13.png"))
    np.testing.assert_array_equal(label, source > 127)
    assert np.asarray(Image.open(spec.image_files("013")[0])).shape == (288, 384, 3)


@pytest.mark.slow
def test_full_folder_groups_by_sequence(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "cvc_clinicdb_full"
    spec = convert("cvc_clinicdb", src, tmp_path / "full", num_workers=2)
    check_dataset(spec, 498, stride=25)
    expected = {f"{int(row['frame']):03d}": f"sequence_{int(row['sequence']):02d}" for row in _manifest(src)}
    assert spec.case_groups == expected
    assert spec.case_ids()[:3] == ["001", "002", "003"], "zero-padded ids sort by frame"


@pytest.mark.parametrize("suffix, sub", [(".tif", ""), (".tiff", "TIF"), (".png", "PNG")])
def test_distributed_folders_use_the_readme_table(
    shared_data: Path, tmp_path: Path, suffix: str, sub: str, check_dataset
) -> None:
    root = _distributed(shared_data, tmp_path / "CVC-ClinicDB", suffix, sub)
    spec = convert_cvc_clinicdb(tmp_path, tmp_path / "out")  # --src one folder above the dataset
    check_dataset(spec, 3)
    assert spec.case_groups == {f"{f:03d}": f"sequence_{s:02d}" for f, s in FRAMES.items()}
    label = np.asarray(Image.open(spec.label_file("038")))
    source = np.asarray(Image.open(shared_data / "cvc_clinicdb" / "masks" / "38.png"))
    assert label[:2, :5].max() == 0, "stray grey values are thresholded away"
    np.testing.assert_array_equal(label[2:], source[2:] > 127)
    image = np.asarray(Image.open(spec.image_files("164")[0]))
    np.testing.assert_array_equal(image, np.asarray(Image.open(shared_data / "cvc_clinicdb" / "images" / "164.png")))
    assert root.is_dir()


def test_frame_table_option_overrides_groups(shared_data: Path, tmp_path: Path) -> None:
    _distributed(shared_data, tmp_path / "src")
    table = tmp_path / "frames.csv"
    table.write_text("frame,sequence\n13,7\n38,7\n164,9\n")
    spec = convert("cvc_clinicdb", tmp_path / "src", tmp_path / "out", frame_table=str(table))
    assert spec.case_groups == {"013": "sequence_07", "038": "sequence_07", "164": "sequence_09"}
    table.write_text("frame,sequence\n13,7\n")
    with pytest.raises(MedsegError, match="frame 38 has no sequence"):
        convert("cvc_clinicdb", tmp_path / "src", tmp_path / "out2", frame_table=str(table))


def test_unknown_frame_and_bad_names_are_errors(shared_data: Path, tmp_path: Path) -> None:
    src = _distributed(shared_data, tmp_path / "src")
    for folder in ("Original", "Ground Truth"):
        (src / folder / "13.tif").rename(src / folder / "700.tif")
    with pytest.raises(MedsegError, match="frame 700.*--frame_table"):
        convert_cvc_clinicdb(src, tmp_path / "out")
    (src / "Original" / "700.tif").rename(src / "Original" / "frame_a.tif")
    with pytest.raises(MedsegError, match="frame_a.tif"):
        convert_cvc_clinicdb(src, tmp_path / "out")


def test_image_without_mask_and_swapped_folders(shared_data: Path, tmp_path: Path) -> None:
    src = _distributed(shared_data, tmp_path / "src")
    (src / "Ground Truth" / "38.tif").unlink()
    with pytest.raises(MedsegError, match=r"38\.tif: image has no mask"):
        convert_cvc_clinicdb(src, tmp_path / "out")
    swapped = _distributed(shared_data, tmp_path / "swapped")
    (swapped / "Original").rename(swapped / "tmp")
    (swapped / "Ground Truth").rename(swapped / "Original")
    (swapped / "tmp").rename(swapped / "Ground Truth")
    with pytest.raises(MedsegError, match="does not look like a mask.*swapped"):
        convert_cvc_clinicdb(swapped, tmp_path / "out")
    assert not (tmp_path / "out").exists()
