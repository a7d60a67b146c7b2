"""Write channel-first arrays with their geometry, atomically, in the format the suffix names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medseglatdiff.io.atomic import atomic_path
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import NATURAL_SUFFIXES, NIFTI_SUFFIXES, SITK_FILE_SUFFIXES, supported_suffix


def write_image(array: np.ndarray, geometry: Geometry, path: str | os.PathLike) -> Path:
    """Write ``array`` (shape (C, x, y[, z])) to ``path`` atomically.

    PNG/BMP/TIFF/JPEG take 1 or 3 channels of a 2D image (values must fit uint8, or uint16 for PNG/TIFF);
    NIfTI and MHA/NRRD take any dtype and keep the geometry.
    """
    path = Path(path)
    suffix = supported_suffix(path) if not path.is_dir() else None
    if suffix is None or suffix == ".dcm":
        raise ValueError(f"{path}: cannot write this file type; use .png, .nii.gz, .mha or .nrrd")
    array = np.asarray(array)
    with atomic_path(path) as tmp:
        if suffix in NATURAL_SUFFIXES:
            _write_natural(array, tmp, suffix)
        elif suffix in NIFTI_SUFFIXES:
            _write_nifti(array, geometry, tmp)
        elif suffix in SITK_FILE_SUFFIXES:
            _write_sitk(array, geometry, tmp)
    return path


def _write_natural(array: np.ndarray, path: Path, suffix: str) -> None:
    from PIL import Image

    if array.ndim != 3 or array.shape[0] not in (1, 3, 4):
        raise ValueError(f"{path}: a 2D image file needs shape (C, x, y) with C in 1, 3, 4; got {array.shape}")
    pixels = np.moveaxis(array, 0, -1).transpose(1, 0, 2)  # (C, x, y) -> (y, x, C)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if np.issubdtype(pixels.dtype, np.floating) or pixels.dtype == bool:
        pixels = np.rint(pixels.astype(np.float64))
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if lo >= 0 and hi <= 255:
        pixels = pixels.astype(np.uint8)
    elif lo >= 0 and hi <= 65535 and pixels.ndim == 2 and suffix in (".png", ".tif", ".tiff"):
        pixels = pixels.astype(np.uint16)
    else:
        raise ValueError(f"{path}: values {lo}..{hi} do not fit an 8-bit image; write .nii.gz or .mha instead")
    Image.fromarray(pixels).save(path, format=None if suffix not in (".jpg", ".jpeg") else "JPEG")


def _write_nifti(array: np.ndarray, geometry: Geometry, path: Path) -> None:
    import nibabel as nib

    if array.ndim == 3 and array.shape[0] > 1:
        raise ValueError(f"{path}: a 2D NIfTI holds one channel; write one file per channel (_0000, _0001, ...)")
    data = np.moveaxis(array, 0, -1)  # (x, y[, z], C)
    if data.shape[-1] == 1:
        data = data[..., 0]
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if data.dtype == np.int64:
        data = data.astype(np.int32)
    image = nib.Nifti1Image(data, geometry.to_affine_4x4())
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))


def _write_sitk(array: np.ndarray, geometry: Geometry, path: Path) -> None:
    import SimpleITK as sitk

    d = geometry.spatial_dims
    channels = array.shape[0]
    data = np.moveaxis(array, 0, -1)  # (x, y[, z], C)
    data = np.transpose(data, list(range(d))[::-1] + [d])  # ([z,] y, x, C)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    image = sitk.GetImageFromArray(data[..., 0] if channels == 1 else data, isVector=channels > 1)
    affine = geometry.to_affine()
    flip = np.diag([-1.0, -1.0] + [1.0] * (d - 1))[: d + 1, : d + 1]  # RAS -> LPS
    lps = flip @ affine
    spacing = np.linalg.norm(lps[:d, :d], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in lps[:d, d]])
    image.SetDirection([float(v) for v in (lps[:d, :d] / spacing).reshape(-1)])
    sitk.WriteImage(image, str(path), useCompression=True)
