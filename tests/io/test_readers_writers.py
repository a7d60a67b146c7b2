"""Reader/writer round trips keep pixels and geometry, for every supported format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.errors import ImageReadError
from medseglatdiff.io import Geometry, read_image, write_image

OBLIQUE_3D = Geometry((0.7, 0.8, 2.5), (10.0, -20.0, 30.0), ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)))
ANISO_2D = Geometry((0.5, 0.25), (1.0, 2.0), ((1.0, 0.0), (0.0, 1.0)))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_3d_round_trip_keeps_values_and_geometry(tmp_path: Path, suffix: str) -> None:
    array = np.random.default_rng(0).integers(-1000, 1000, size=(1, 5, 6, 7)).astype(np.int16)
    path = write_image(array, OBLIQUE_3D, tmp_path / f"vol{suffix}")
    loaded = read_image(path)
    assert loaded.array.shape == (1, 5, 6, 7)
    np.testing.assert_array_equal(loaded.array, array)
    assert loaded.geometry.allclose(OBLIQUE_3D), loaded.geometry


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_2d_medical_round_trip_keeps_geometry(tmp_path: Path, suffix: str) -> None:
    array = np.arange(30, dtype=np.float32).reshape(1, 5, 6)
    loaded = read_image(write_image(array, ANISO_2D, tmp_path / f"slice{suffix}"))
    np.testing.assert_array_equal(loaded.array, array)
    assert loaded.geometry.allclose(ANISO_2D)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_natural_image_round_trip(tmp_path: Path, suffix: str, channels: int) -> None:
    array = np.random.default_rng(1).integers(0, 256, size=(channels, 9, 7)).astype(np.uint8)
    loaded = read_image(write_image(array, Geometry.identity(2), tmp_path / f"img{suffix}"))
    assert loaded.array.shape == (channels, 9, 7)  # (C, x, y): width first, as MONAI orders axes
    np.testing.assert_array_equal(loaded.array, array)
    assert loaded.geometry == Geometry.identity(2)


def test_real_jpeg_and_mask_axes_agree(shared_data: Path) -> None:
    image = read_image(shared_data / "kvasir_seg" / "images" / "cju0qkwl35piu0993l0dewei2.jpg")
    mask = read_image(shared_data / "kvasir_seg" / "masks" / "cju0qkwl35piu0993l0dewei2.png")
    assert image.num_channels == 3 and mask.num_channels == 1
    assert image.spatial_shape == mask.spatial_shape == (622, 529)  # manifest: width 622, height 529
    assert set(np.unique(mask.array)) == {0, 255}


def test_real_nifti_geometry(shared_data: Path) -> None:
    volume = read_image(shared_data / "brats2015_deepmedic" / "brats_2013_pat0001_1" / "OTMultiClass.nii.gz")
    assert volume.spatial_shape == (240, 240, 155)
    assert np.allclose(volume.geometry.spacing, (1.0, 1.0, 1.0))


def test_dicom_series_folder_is_read_with_geometry(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    volume = np.random.default_rng(2).integers(0, 1000, size=(4, 6, 5)).astype(np.int16)  # (z, y, x)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((1.0, 2.0, 3.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(volume.shape[0]):
        slice_ = image[:, :, z]
        position = image.TransformIndexToPhysicalPoint((0, 0, z))
        for tag, value in {
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1",
            "0020|0032": "\\".join(map(str, position)),
            "0020|0013": str(z),
            "0008|0060": "CT",
            "0020|0037": "1\\0\\0\\0\\1\\0",
        }.items():
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"{z:03d}.dcm"))
        writer.Execute(slice_)
    loaded = read_image(tmp_path)
    assert loaded.spatial_shape == (5, 6, 4)
    np.testing.assert_array_equal(loaded.array[0], volume.transpose(2, 1, 0))
    assert np.allclose(loaded.geometry.spacing, (0.7, 0.8, 2.5))
    assert np.allclose(loaded.geometry.origin, (-1.0, -2.0, 3.0))  # LPS (1, 2, 3) in MONAI's RAS


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    path = write_image(np.full((1, 64, 64), 7, np.uint8), Geometry.identity(2), tmp_path / "mask.png")
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="mask.png"):
        read_image(path)


def test_missing_and_unsupported_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "absent.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        read_image(tmp_path / "notes.txt")


def test_writer_refuses_values_that_do_not_fit_png(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        write_image(np.full((3, 4, 4), 300, np.int32), Geometry.identity(2), tmp_path / "x.png")
    assert not any(tmp_path.iterdir()), "a failed write must leave nothing behind"


def test_a_nifti_header_larger_than_memory_is_refused_before_reading(tmp_path: Path) -> None:
    import struct

    import nibabel

    from medseglatdiff.errors import ImageReadError

    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / "small.nii")
    raw = bytearray((tmp_path / "small.nii").read_bytes())
    struct.pack_into("<8h", raw, 40, 3, 4000, 4000, 4000, 1, 1, 1, 1)  # dim[]: a broken header
    (tmp_path / "huge.nii").write_bytes(bytes(raw))
    with pytest.raises(ImageReadError, match=r"huge\.nii: its header declares 4000 x 4000 x 4000 voxels"):
        read_image(tmp_path / "huge.nii")
