"""BraTS converter: BraTS 2021 case folders and DeepMedic's BRATS 2015 copy; geometry kept, labels remapped."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.converters.brats import convert_brats
from medseglatdiff.errors import MedsegError
from medseglatdiff.io import read_image

AFFINE = np.array([[-0.9, 0, 0, 90.0], [0, -1.1, 0, 120.0], [0, 0, 1.5, -70.0], [0, 0, 0, 1]])
MODALITIES = ("flair", "t1", "t1ce", "t2")


def _brats2021(
    root: Path, cases: tuple[str, ...] = ("BraTS2021_00000", "BraTS2021_00002"), labels=(0, 1, 2, 4)
) -> Path:
    """Small BraTS 2021 case folders written with nibabel (int16 images, float label maps like the 2021 seg files)."""
    rng = np.random.default_rng(0)
    for index, case in enumerate(cases):
        folder = root / case
        folder.mkdir(parents=True)
        for m, modality in enumerate(MODALITIES):
            data = (rng.integers(0, 1000, size=(12, 10, 8)) + 1000 * m).astype(np.int16)
            nib.save(nib.Nifti1Image(data, AFFINE), folder / f"{case}_{modality}.nii.gz")
        seg = np.zeros((12, 10, 8), dtype=np.float64)
        for k, value in enumerate(labels):
            seg[2 + k, 2:8, 2 + index : 6] = value
        nib.save(nib.Nifti1Image(seg, AFFINE), folder / f"{case}_seg.nii.gz")
    return root


@pytest.mark.slow
def test_deepmedic_sample_keeps_geometry_and_labels(shared_data: Path, tmp_path: Path, check_dataset) -> None:
    src = shared_data / "brats2015_deepmedic"
    spec = convert("brats", src, tmp_path / "out")
    check_dataset(spec, 2)
    assert spec.channel_names == {"0": "FLAIR", "1": "T1c"} and spec.file_ending == ".nii.gz"
    assert spec.label_values == [0, 1, 2, 3, 4]
    assert spec.case_groups == {
        "brats_2013_pat0001_1": "brats_2013_pat0001_1",
        "brats_2013_pat0005_1": "brats_2013_pat0005_1",
    }
    case = "brats_2013_pat0001_1"
    source_label = read_image(src / case / "OTMultiClass.nii.gz")
    label = read_image(spec.label_file(case))
    assert label.spatial_shape == (240, 240, 155) and label.geometry.allclose(source_label.geometry)
    assert nib.load(spec.label_file(case)).get_data_dtype() == np.uint8
    np.testing.assert_array_equal(label.array, source_label.array)
    flair = read_image(spec.image_files(case)[0])
    np.testing.assert_array_equal(flair.array, read_image(src / case / "Flair_subtrMeanDivStd.nii.gz").array)
    assert flair.geometry.allclose(source_label.geometry)


def test_brats2021_four_channels_and_contiguous_labels(tmp_path: Path, check_dataset) -> None:
    src = _brats2021(tmp_path / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData")
    spec = convert_brats(tmp_path, tmp_path / "out")  # --src one folder above the case folders
    check_dataset(spec, 2)
    assert spec.channel_names == {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"}
    # BraTS' evaluation regions (as nnU-Net trains BraTS), readable back from a label map painted in this order
    assert spec.labels == {"background": 0, "whole_tumour": [1, 2, 3], "tumour_core": [1, 3], "enhancing_tumour": [3]}
    assert spec.extra["regions_class_order"] == [2, 1, 3] and spec.label_scheme.kind == "regions"
    classes = convert_brats(tmp_path, tmp_path / "classes", label_kind="classes")
    assert classes.labels == {"background": 0, "necrotic_core": 1, "edema": 2, "enhancing": 3}
    case = "BraTS2021_00002"
    files = spec.image_files(case)
    assert [f.name for f in files] == [f"{case}_{i:04d}.nii.gz" for i in range(4)]
    for m, path in enumerate(files):
        image = read_image(path)
        source = read_image(src / case / f"{case}_{MODALITIES[m]}.nii.gz")
        np.testing.assert_array_equal(image.array, source.array)
        assert image.geometry.allclose(source.geometry) and np.allclose(image.geometry.spacing, (0.9, 1.1, 1.5))
        assert nib.load(path).get_data_dtype() == np.int16
    label = read_image(spec.label_file(case)).array
    assert sorted(np.unique(label).tolist()) == [0, 1, 2, 3]
    source = nib.load(src / case / f"{case}_seg.nii.gz").get_fdata()
    np.testing.assert_array_equal(label[0] == 3, source == 4)
    assert spec.case_groups[case] == case


def test_bad_labels_and_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match=r"label values \[3\]"):
        convert_brats(_brats2021(tmp_path / "three", labels=(1, 3)), tmp_path / "out")
    with pytest.raises(MedsegError, match="non-integer"):
        convert_brats(_brats2021(tmp_path / "frac", labels=(1, 2.5)), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    missing = _brats2021(tmp_path / "missing")
    (missing / "BraTS2021_00002" / "BraTS2021_00002_t2.nii.gz").unlink()
    with pytest.raises(MedsegError, match="BraTS2021_00002_t2.nii.gz: missing"):
        convert_brats(missing, tmp_path / "out")


def test_single_case_folder_is_accepted(tmp_path: Path) -> None:
    src = _brats2021(tmp_path / "src", cases=("BraTS2021_01666",))
    spec = convert_brats(src / "BraTS2021_01666", tmp_path / "out")
    assert spec.case_ids() == ["BraTS2021_01666"]
