"""Kvasir-SEG converter: RGB JPEG masks as distributed, PNG masks of the shared samples; no groups."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.converters.kvasir import convert_kvasir_seg, find_cases, load_case
from medseglatdiff.errors import MedsegError

IDS = ["cju0qkwl35piu0993l0dewei2", "cju16whaj0e7n0855q7b6cjkm"]


def _distributed(shared: Path, root: Path) -> Path:
    """Kvasir-SEG/{images,masks} with the masks saved as RGB JPEGs, as the authors ship them."""
    folder = root / "Kvasir-SEG"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for case in IDS:
        shutil.copy(shared / "kvasir_seg" / "images" / f"{case}.jpg", folder / "images" / f"{case}.jpg")
        mask = Image.open(shared / "kvasir_seg" / "masks" / f"{case}.png").convert("RGB")
        mask.save(folder / "masks" / f"{case}.jpg", quality=75)
    (folder / "kavsir_bboxes.json").write_text("{}")
    return root


def test_sample_folder(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "kvasir_seg"
    spec = convert("kvasir_seg", src, tmp_path / "out", num_workers=2)
    check_dataset(spec, 30)
    assert spec.labels == {"background": 0, "polyp": 1} and spec.channel_names == {"0": "R", "1": "G", "2": "B"}
    assert spec.case_groups == {} and spec.group_kind is None, "Kvasir-SEG has no patient ids"
    for case in IDS:
        label = np.asarray(Image.open(spec.label_file(case)))
        np.testing.assert_array_equal(label, np.asarray(Image.open(src / "masks" / f"{case}.png")) > 127)
        image = np.asarray(Image.open(spec.image_files(case)[0]))
        np.testing.assert_array_equal(image, np.asarray(Image.open(src / "images" / f"{case}.jpg")))


def test_full_folder_pairs_all_and_loads_binary_cases(shared_data: Path) -> None:
    """All 800 pairs are found; every 20th case is loaded (writing all 800 RGB PNGs takes ~20 s, see docs)."""
    src = shared_data / "kvasir_seg_full"
    sources = find_cases(src)
    assert len(sources) == 800 and len({s.case_id for s in sources}) == 800
    assert all(s.image.stem == s.mask.stem == s.case_id and s.group is None for s in sources)
    for source in sources[::20]:
        case = load_case(source)
        image, label = case.channels[0], case.label
        assert image.shape[0] == 3 and label.shape == (1,) + image.shape[1:] and max(image.shape[1:]) == 320
        truth = np.asarray(Image.open(source.mask)).T > 127
        np.testing.assert_array_equal(label[0], truth)


def test_distributed_rgb_jpeg_masks(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = _distributed(shared_data, tmp_path / "src")
    spec = convert_kvasir_seg(src, tmp_path / "out")  # --src one folder above Kvasir-SEG/
    check_dataset(spec, 2)
    for case in IDS:
        label = np.asarray(Image.open(spec.label_file(case)))
        truth = np.asarray(Image.open(shared_data / "kvasir_seg" / "masks" / f"{case}.png")) > 127
        assert label.shape == truth.shape and set(np.unique(label)) == {0, 1}
        assert (label == truth).mean() > 0.995, "JPEG noise thresholded at 127"


def test_max_size_and_missing_mask(shared_data: Path, tmp_path: Path) -> None:
    src = _distributed(shared_data, tmp_path / "src")
    spec = convert("kvasir_seg", src / "Kvasir-SEG", tmp_path / "small", max_size=100)
    image = np.asarray(Image.open(spec.image_files(IDS[0])[0]))
    label = np.asarray(Image.open(spec.label_file(IDS[0])))
    assert max(image.shape[:2]) == 100 and label.shape == image.shape[:2]
    assert set(np.unique(label)) == {0, 1}
    (src / "Kvasir-SEG" / "masks" / f"{IDS[1]}.jpg").unlink()
    with pytest.raises(MedsegError, match=f"{IDS[1]}.jpg: image has no mask"):
        convert("kvasir_seg", src, tmp_path / "out")
