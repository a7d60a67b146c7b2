"""Read 2D natural images and 3D medical volumes into channel-first arrays with their geometry.

MONAI's readers do the work where they fit: ``PILReader`` for PNG/JPEG/BMP/TIFF, ``NibabelReader`` for
NIfTI; :class:`~medseglatdiff.io.sitk_reader.SimpleITKReader` covers MHA/MHD, NRRD and DICOM series.
Every array is channel-first with spatial axes in MONAI's order (x, y[, z]).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseglatdiff.errors import ImageReadError, MedsegError
from medseglatdiff.io.geometry import Geometry

NATURAL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii.gz", ".nii")
SITK_FILE_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")
SUPPORTED_SUFFIXES = NATURAL_SUFFIXES + NIFTI_SUFFIXES + SITK_FILE_SUFFIXES


@dataclass
class LoadedImage:
    """An image as read from disk.

    Attributes:
        array: channel-first array, shape (C, x, y[, z]).
        geometry: spacing, origin and direction of the spatial axes.
        path: the file (or DICOM folder) it came from.
    """

    array: np.ndarray
    geometry: Geometry
    path: Path

    @property
    def num_channels(self) -> int:
        return int(self.array.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape[1:])

    @property
    def spatial_dims(self) -> int:
        return self.array.ndim - 1

    def require_finite(self) -> LoadedImage:
        """This image, or a :class:`MedsegError` naming the file when a voxel is NaN or infinite."""
        if not np.issubdtype(self.array.dtype, np.floating):
            return self
        bad = int(np.count_nonzero(~np.isfinite(self.array)))
        if bad:
            raise MedsegError(
                f"{self.path}: {bad} of {self.array.size} voxel(s) are NaN or infinite; replace them (e.g. "
                "numpy.nan_to_num) and save the image again: a network given NaN predicts NaN"
            )
        return self


def supported_suffix(path: str | os.PathLike) -> str | None:
    """The recognised suffix of ``path`` (``.nii.gz`` counts as one), ``"dicom"`` for a folder, else None."""
    path = Path(path)
    if path.is_dir():
        return "dicom"
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def _reader_for(suffix: str):
    if suffix in NATURAL_SUFFIXES:
        from monai.data import PILReader

        return PILReader(reverse_indexing=True)
    if suffix in NIFTI_SUFFIXES:
        from monai.data import NibabelReader

        return NibabelReader(squeeze_non_spatial_dims=True)
    from medseglatdiff.io.sitk_reader import SimpleITKReader

    return SimpleITKReader()


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read one image file (or a DICOM series folder) with its geometry.

    Raises:
        ImageReadError: the file is missing, of an unsupported type, truncated or otherwise unreadable;
            the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    suffix = supported_suffix(path)
    if suffix is None:
        raise ImageReadError(
            f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)} or a DICOM series folder"
        )
    _check_declared_size(path, suffix)
    reader = _reader_for(suffix)
    try:
        native = reader.read(str(path))
        data, meta = reader.get_data(native)
    except MemoryError as exc:
        raise ImageReadError(f"{path}: does not fit in this machine's memory ({exc or 'MemoryError'})") from exc
    except Exception as exc:  # every backend raises its own types; report them all the same way
        raise ImageReadError(
            f"{path}: cannot read ({type(exc).__name__}: {exc}); the file may be truncated or corrupt"
        ) from exc
    data = np.asarray(data)
    channel_dim = meta.get("original_channel_dim", float("nan"))
    if isinstance(channel_dim, float) and np.isnan(channel_dim):
        data = data[None]
    else:
        data = np.moveaxis(data, int(channel_dim), 0)
    spatial_dims = data.ndim - 1
    if suffix in NATURAL_SUFFIXES:
        geometry = Geometry.identity(spatial_dims)
    else:
        geometry = Geometry.from_affine(np.asarray(meta["affine"]), spatial_dims)
    return LoadedImage(array=data, geometry=geometry, path=path)


def available_memory_bytes() -> int | None:
    """Physical memory of this machine (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_declared_size(path: Path, suffix: str) -> None:
    """Refuse, before reading, a NIfTI whose header declares more voxels than the machine's memory can hold."""
    if suffix not in NIFTI_SUFFIXES:
        return
    import nibabel

    try:
        header = nibabel.load(str(path)).header
        shape = tuple(int(s) for s in header.get_data_shape())
        itemsize = int(np.dtype(header.get_data_dtype()).itemsize)
    except Exception:  # unreadable headers are reported by the reader itself
        return
    needed = int(np.prod(shape, dtype=np.float64)) * max(itemsize, 4)  # read as float32 at least
    memory = available_memory_bytes()
    if memory is not None and needed > memory:
        raise ImageReadError(
            f"{path}: its header declares {' x '.join(map(str, shape))} voxels ({needed / 2**30:.1f} GiB as read), "
            f"more than this machine's {memory / 2**30:.1f} GiB of memory; the header is probably wrong (check "
            "dim[] with nibabel) or the image must be cropped or downsampled first"
        )
