"""The deploy app's parts that need no MONAI Deploy runtime: DICOM input detection, mask -> SEG frames, model lookup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.deploy.dicom import is_dicom_input, mask_frames, series_files
from medseglatdiff.deploy.model import find_bundle, resolve_model
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.readers import read_image


def test_mask_frames_cut_each_instance_from_the_volume_by_geometry(dicom_writer, tmp_path: Path) -> None:
    import pydicom

    rng = np.random.default_rng(0)
    volume = rng.integers(0, 1000, size=(12, 10, 5)).astype(np.int16)
    # rotated in-plane axes (x along P, y along R) and slices stacked towards F: nothing axis-aligned in RAS
    direction = (0, -1, 0, 1, 0, 0, 0, 0, 1)
    files = dicom_writer(
        volume, tmp_path / "series", spacing=(0.8, 0.7, 2.5), origin=(10.0, -20.0, 5.0), direction=direction
    )
    loaded = read_image(tmp_path / "series")  # how medseg predict reads the series (SimpleITK, RAS)
    datasets = [pydicom.dcmread(f) for f in reversed(files)]  # any order: frames follow the datasets
    frames = mask_frames(loaded.array[0], loaded.geometry, datasets)
    assert frames.shape == (5, 10, 12)  # (instances, rows, columns)
    for frame, dataset in zip(frames, datasets):
        np.testing.assert_array_equal(frame, dataset.pixel_array)
    assert series_files(datasets) == list(reversed(files))


def test_mask_frames_outside_the_mask_are_empty(dicom_writer, tmp_path: Path) -> None:
    import pydicom

    files = dicom_writer(np.ones((6, 6, 3), np.int16), tmp_path / "series")
    loaded = read_image(tmp_path / "series")
    shifted = [pydicom.dcmread(f) for f in files]
    for dataset in shifted:
        dataset.ImagePositionPatient = [
            float(v) + (3.0 if i == 0 else 0.0) for i, v in enumerate(dataset.ImagePositionPatient)
        ]
    frames = mask_frames(loaded.array[0], loaded.geometry, shifted)
    assert frames[:, :, :3].all() and not frames[:, :, 3:].any()  # columns shifted by 3 voxels past the mask's edge
    with pytest.raises(MedsegError, match="3D mask"):
        mask_frames(np.zeros((6, 6)), loaded.geometry, shifted)


def test_dicom_input_is_recognised_by_content(dicom_writer, shared_data: Path, tmp_path: Path) -> None:
    dicom_writer(np.zeros((4, 4, 2), np.int16), tmp_path / "study" / "series")
    assert is_dicom_input(tmp_path / "study")  # searched recursively, as the SDK's loader does
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    shutil.copy(next((shared_data / "lidc_idri" / "images").glob("*.png")), pngs)
    assert not is_dicom_input(pngs) and not is_dicom_input(next(pngs.iterdir()))


def test_model_is_found_from_the_bundle_its_models_folder_or_a_package_folder(
    flair_bundle: Path, tmp_path: Path
) -> None:
    for path in (
        flair_bundle,
        flair_bundle / "models",
        flair_bundle.parent,
    ):  # parent: what a MAP has in /opt/holoscan/models
        model = resolve_model(path)
        assert model.model_dir == flair_bundle / "models" / "3d"
        assert (model.name, model.segment_label, model.num_samples, model.num_inference_steps) == (
            "flair",
            "tumour",
            2,
            2,
        )
    trained = resolve_model(flair_bundle / "models" / "3d")  # a trained model folder works too
    assert trained.model_dir == flair_bundle / "models" / "3d" and trained.num_samples is None

    (tmp_path / "nothing").mkdir()
    with pytest.raises(MedsegError, match="neither an exported bundle"):
        resolve_model(tmp_path / "nothing")
    with pytest.raises(MedsegError, match="not found"):
        resolve_model(tmp_path / "missing")
    for name in ("a", "b"):
        (tmp_path / "two" / name / "configs").mkdir(parents=True)
        (tmp_path / "two" / name / "models").mkdir()
        (tmp_path / "two" / name / "configs" / "metadata.json").write_text(json.dumps({"name": name}))
    with pytest.raises(MedsegError, match="several bundles"):
        find_bundle(tmp_path / "two")


def test_several_classes_or_regions_become_one_segment_each(tmp_path: Path) -> None:
    from medseglatdiff.deploy.app import segment_descriptions
    from medseglatdiff.deploy.model import DeployModel
    from medseglatdiff.deploy.operators import segment_numbers

    regions = (("whole_tumour", 2), ("tumour_core", 1), ("enhancing_tumour", 4))  # regions_class_order 2, 1, 4
    model = DeployModel(tmp_path, "brats", "1.0", "whole_tumour + tumour_core + enhancing_tumour", regions)
    assert [d._segment_label for d in segment_descriptions(model)] == [
        "whole_tumour",
        "tumour_core",
        "enhancing_tumour",
    ]
    label_map = np.array([[0, 2, 1, 4]], dtype=np.uint8)
    np.testing.assert_array_equal(segment_numbers(label_map, regions), [[0, 1, 2, 3]])  # segment k holds value k
