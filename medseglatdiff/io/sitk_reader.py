"""A MONAI ``ImageReader`` backed by SimpleITK, for MHA/MHD, NRRD and DICOM series.

MONAI's own ``ITKReader`` needs the (large) ``itk`` package; SimpleITK is already a dependency of ours.
Arrays come out in MONAI's order (x, y[, z], then vector components) and the affine is converted from
ITK's LPS world to MONAI's RAS, exactly as ``ITKReader`` does, so images read by either agree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from monai.data.image_reader import ImageReader, _copy_compatible_dict, _stack_images
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

SITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")


def _is_dicom_dir(path: Path) -> bool:
    return path.is_dir()


class SimpleITKReader(ImageReader):
    """Load MHA/MHD, NRRD, single DICOM files and DICOM series folders with SimpleITK.

    Args:
        affine_lps_to_ras: convert ITK's LPS affine to RAS (MONAI's default world), as ``ITKReader`` does.
    """

    def __init__(self, affine_lps_to_ras: bool = True) -> None:
        super().__init__()
        self.affine_lps_to_ras = affine_lps_to_ras

    def verify_suffix(self, filename: Sequence[os.PathLike] | os.PathLike) -> bool:
        for name in ensure_tuple(filename):
            path = Path(name)
            if not (_is_dicom_dir(path) or path.name.lower().endswith(SITK_SUFFIXES)):
                return False
        return True

    def read(self, data: Sequence[os.PathLike] | os.PathLike, **kwargs):
        import SimpleITK as sitk

        images = []
        for name in ensure_tuple(data):
            path = Path(name)
            if path.is_dir():
                series_reader = sitk.ImageSeriesReader()
                series_ids = series_reader.GetGDCMSeriesIDs(str(path))
                if not series_ids:
                    raise RuntimeError(f"no DICOM series found in folder {path}")
                files = series_reader.GetGDCMSeriesFileNames(str(path), series_ids[0])
                series_reader.SetFileNames(files)
                images.append(series_reader.Execute())
            else:
                images.append(sitk.ReadImage(str(path)))
        return images if len(images) > 1 else images[0]

    def get_data(self, img) -> tuple[np.ndarray, dict]:
        import SimpleITK as sitk

        arrays: list[np.ndarray] = []
        meta: dict = {}
        for image in img if isinstance(img, (list, tuple)) else [img]:
            spatial_dims = image.GetDimension()
            array = sitk.GetArrayFromImage(image)  # (z, y, x[, comp])
            spatial_axes = list(range(spatial_dims))[::-1]
            if image.GetNumberOfComponentsPerPixel() > 1:
                array = np.transpose(array, spatial_axes + [spatial_dims])
                channel_dim = -1
            else:
                array = np.transpose(array, spatial_axes)
                channel_dim = float("nan")
            header = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()}
            affine = self._affine(image)
            header[MetaKeys.ORIGINAL_AFFINE] = affine
            header[MetaKeys.AFFINE] = affine.copy()
            header[MetaKeys.SPACE] = SpaceKeys.RAS if self.affine_lps_to_ras else SpaceKeys.LPS
            header[MetaKeys.SPATIAL_SHAPE] = np.asarray(image.GetSize())
            header[MetaKeys.ORIGINAL_CHANNEL_DIM] = channel_dim
            arrays.append(array)
            _copy_compatible_dict(header, meta)
        return _stack_images(arrays, meta), meta

    def _affine(self, image) -> np.ndarray:
        d = image.GetDimension()
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(d, d)
        affine = np.eye(d + 1)
        affine[:d, :d] = direction @ np.diag(image.GetSpacing())
        affine[:d, d] = image.GetOrigin()
        if self.affine_lps_to_ras:
            flip = np.diag([-1.0, -1.0] + [1.0] * (d - 1))[: d + 1, : d + 1] if d >= 2 else np.eye(d + 1)
            affine = flip @ affine
        return affine
