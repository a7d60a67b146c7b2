"""A single-slice DICOM is a 2D image for a 2D model; the outputs keep the slice's own 3D geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.inference.inputs import InputCase, read_input_case
from medseglatdiff.inference.predict import predict
from medseglatdiff.io import read_image

FAST = {"num_samples": 2, "num_inference_steps": 2, "progress": False}


def _single_slice_dicom(pixels: np.ndarray, path: Path) -> Path:
    """(x, y) pixels as a one-slice CT DICOM file written by SimpleITK (GDCM)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(pixels.T[None].astype(np.int16))  # (z=1, y, x)
    image.SetSpacing((0.7, 0.7, 2.5))
    image.SetOrigin((10.0, -20.0, 35.0))
    for key, value in {"0008|0060": "CT", "0010|0020": "P1", "0020|000d": "1.2.3", "0020|000e": "1.2.3.4"}.items():
        image.SetMetaData(key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def test_a_single_slice_is_read_as_2d_for_a_2d_model(tmp_path: Path) -> None:
    pixels = np.arange(12 * 10).reshape(12, 10)
    path = _single_slice_dicom(pixels, tmp_path / "slice.dcm")
    raw = read_input_case(InputCase("slice", (path,)), 1, 2)
    assert raw.image.shape == (1, 12, 10) and raw.geometry.spatial_dims == 2
    assert raw.source_geometry is not None and raw.source_geometry.spatial_dims == 3
    assert np.array_equal(raw.image[0], pixels)
    assert read_input_case(InputCase("slice", (path,)), 1, 3).source_geometry is None  # a 3D model: as it is


@pytest.mark.slow
def test_predict_a_single_slice_dicom_with_a_2d_model(lidc_trained, tmp_path: Path) -> None:
    case = lidc_trained.held_out[0]
    pixels = read_image(lidc_trained.raw / "imagesTr" / f"{case}_0000.png").array[0]
    path = _single_slice_dicom(pixels, tmp_path / "in" / "ct.dcm")
    record = predict(path, tmp_path / "out", lidc_trained.model, fold=0, **FAST)
    assert record["cases"][0]["case"] == "ct"
    source = read_image(path)
    for written in (tmp_path / "out" / "ct.nii.gz", tmp_path / "out" / "confidence" / "ct.nii.gz"):
        output = read_image(written)
        assert output.spatial_shape == source.spatial_shape == (*pixels.shape, 1)
        assert output.geometry.allclose(source.geometry)  # back on the slice's own grid, z position included
    assert (tmp_path / "out" / "overlays" / "ct.png").is_file()
