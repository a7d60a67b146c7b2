"""ISIC 2018 converter: the distributed Task 1 folders and the shared sample; optional max_size."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.converters.isic import convert_isic2018
from medseglatdiff.errors import MedsegError

IDS = ["ISIC_0012903", "ISIC_0013948"]
INPUT = "ISIC2018_Task1-2_Training_Input"
TRUTH = "ISIC2018_Task1_Training_GroundTruth"


def _distributed(shared: Path, root: Path) -> Path:
    """The two Task 1 training folders, with small re-saved real images and `_segmentation.png` masks."""
    (root / INPUT).mkdir(parents=True)
    (root / TRUTH).mkdir()
    for case in IDS:
        Image.open(shared / "isic_skin_lesion" / "images" / f"{case}.jpg").resize((300, 200)).save(
            root / INPUT / f"{case}.jpg"
        )
        mask = Image.open(shared / "isic_skin_lesion" / "masks" / f"{case}.png").resize(
            (300, 200), Image.Resampling.NEAREST
        )
        mask.save(root / TRUTH / f"{case}_segmentation.png")
    (root / INPUT / "LICENSE.txt").write_text("CC BY-NC")
    (root / INPUT / "ATTRIBUTION.txt").write_text("ISIC")
    return root


def test_sample_folder(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "isic_skin_lesion"
    spec = convert("isic2018", src, tmp_path / "out", num_workers=2)
    check_dataset(spec, 9)
    assert spec.labels == {"background": 0, "lesion": 1} and spec.num_channels == 3 and spec.case_groups == {}
    with (src / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows[:3]:
        label = np.asarray(Image.open(spec.label_file(row["id"])))
        assert label.shape == (int(row["height"]), int(row["width"]))
        assert int(label.sum()) == int(row["mask_area"])


@pytest.mark.parametrize("where", ["parent", "grandparent", "image_folder"])
def test_distributed_folders(shared_data: Path, tmp_path: Path, where: str, check_dataset) -> None:
    root = _distributed(shared_data, tmp_path / "isic" / "unzipped")
    src = {"parent": root, "grandparent": root.parent, "image_folder": root / INPUT}[where]
    spec = convert_isic2018(src, tmp_path / "out")
    check_dataset(spec, 2)
    assert spec.case_ids() == IDS
    for case in IDS:
        label = np.asarray(Image.open(spec.label_file(case)))
        source = np.asarray(Image.open(root / TRUTH / f"{case}_segmentation.png"))
        np.testing.assert_array_equal(label, source > 127)
        assert np.asarray(Image.open(spec.image_files(case)[0])).shape[-1] == 3, "RGB"


def test_max_size_shrinks_image_and_mask(shared_data: Path, tmp_path: Path) -> None:
    root = _distributed(shared_data, tmp_path / "src")
    spec = convert("isic2018", root, tmp_path / "out", max_size=120)
    image = np.asarray(Image.open(spec.image_files(IDS[0])[0]))
    label = np.asarray(Image.open(spec.label_file(IDS[0])))
    assert image.shape == (80, 120, 3) and label.shape == (80, 120)
    assert set(np.unique(label)) == {0, 1}, "nearest neighbour keeps the mask binary"
    assert "120 px" in spec.extra["description"]
    with pytest.raises(MedsegError, match="max_size"):
        convert("isic2018", root, tmp_path / "bad", max_size=0)


def test_mask_without_image_is_an_error(shared_data: Path, tmp_path: Path) -> None:
    root = _distributed(shared_data, tmp_path / "src")
    (root / INPUT / f"{IDS[0]}.jpg").unlink()
    with pytest.raises(MedsegError, match=f"{IDS[0]}_segmentation.png: mask has no image"):
        convert("isic2018", root, tmp_path / "out")
