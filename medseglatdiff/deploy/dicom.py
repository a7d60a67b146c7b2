"""DICOM glue of the deploy app that needs no MONAI Deploy runtime: series files, and masks -> SEG frames.

The app predicts on the selected series' own files (read by SimpleITK, like every DICOM input of
``medseg predict``) and then has to hand the DICOM SEG writer one frame per source instance, in the order of
the instances. :func:`mask_frames` does that by geometry: the centre of every pixel of every instance
(Image Position / Orientation Patient, Pixel Spacing) is looked up in the predicted mask (nearest voxel), so
the result does not depend on how either side sorted the slices.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.geometry import Geometry

LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True for a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_input(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder with at least one DICOM file in it or below it."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(p.is_file() and is_dicom_file(p) for p in path.rglob("*"))


def series_files(datasets: Sequence[Any]) -> list[Path]:
    """The files the (pydicom) ``datasets`` of one series were read from.

    Raises:
        MedsegError: a dataset was not read from a file.
    """
    files = []
    for dataset in datasets:
        name = getattr(dataset, "filename", None)
        if not name or not Path(name).is_file():
            raise MedsegError(
                f"DICOM instance {getattr(dataset, 'SOPInstanceUID', '?')} has no file on disk; "
                "the app reads series from files"
            )
        files.append(Path(name))
    return files


def gather_series(files: Sequence[Path], folder: Path) -> Path:
    """Link (or copy, where links are not allowed) the ``files`` of one series into the empty ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, source in enumerate(files):
        target = folder / f"{index:05d}.dcm"
        try:
            target.symlink_to(Path(source).resolve())
        except OSError:
            shutil.copy2(source, target)
    return folder


def _pixel_centres(dataset: Any) -> np.ndarray:
    """World (RAS) coordinates of every pixel centre of one instance, shape (rows, cols, 3)."""
    position = np.asarray(dataset.ImagePositionPatient, dtype=np.float64)
    orientation = np.asarray(dataset.ImageOrientationPatient, dtype=np.float64)
    row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
    along_row, along_column = orientation[:3], orientation[3:]  # directions of increasing column / row index
    rows = np.arange(int(dataset.Rows), dtype=np.float64)[:, None, None]
    cols = np.arange(int(dataset.Columns), dtype=np.float64)[None, :, None]
    lps = position + cols * column_spacing * along_row + rows * row_spacing * along_column
    return lps * LPS_TO_RAS


def mask_frames(mask: np.ndarray, geometry: Geometry, datasets: Sequence[Any]) -> np.ndarray:
    """One frame per instance of ``datasets`` (their order), cut from the 3D ``mask`` by nearest voxel.

    Args:
        mask: ``(x, y, z)`` label map (channel axis already removed), in MONAI's axis order.
        geometry: the mask's geometry (RAS world), e.g. as :func:`medseglatdiff.io.readers.read_image` gives it.
        datasets: pydicom datasets of the source instances.

    Returns:
        ``(len(datasets), rows, cols)`` array of ``mask``'s dtype; pixels outside the mask are 0.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise MedsegError(f"a DICOM series needs a 3D mask, got shape {mask.shape}")
    to_index = np.linalg.inv(geometry.to_affine())
    frames = []
    for dataset in datasets:
        world = _pixel_centres(dataset)
        index = np.rint(world @ to_index[:3, :3].T + to_index[:3, 3]).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.asarray(mask.shape)), axis=-1)
        frame = np.zeros(inside.shape, dtype=mask.dtype)
        picked = index[inside]
        frame[inside] = mask[picked[:, 0], picked[:, 1], picked[:, 2]]
        frames.append(frame)
    return np.stack(frames, axis=0)
