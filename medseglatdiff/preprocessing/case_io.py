"""Read one raw case (all channel files, label, rater masks) into arrays on one grid."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import read_image


@dataclass(frozen=True)
class CaseFiles:
    """Where one case's files are (a picklable work item)."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None
    raters: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def from_spec(cls, spec: DatasetSpec, case: str) -> CaseFiles:
        label = spec.label_file(case)
        return cls(
            case, tuple(spec.image_files(case)), label if label.is_file() else None, tuple(spec.rater_files(case))
        )

    def signature(self) -> str:
        """A hash of the files' names, sizes and modification times: it changes when any input changes."""
        digest = hashlib.sha256()
        for path in (*self.images, *(() if self.label is None else (self.label,)), *self.raters):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()[:16]


@dataclass
class RawCase:
    """One case in memory.

    Attributes:
        case_id: the case identifier.
        image: (C, x, y[, z]) all channel files stacked in channel order.
        label: (1, x, y[, z]) integer label map, or None.
        raters: (R, x, y[, z]) binary rater masks, or None.
        geometry: the image grid's geometry.
        source_geometry: the file's own 3D grid when a single-slice volume (e.g. one DICOM slice) was read as a
            2D image; outputs go back onto it. None otherwise.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    raters: np.ndarray | None
    geometry: Geometry
    source_geometry: Geometry | None = None


def _as_mask(array: np.ndarray, path: Path) -> np.ndarray:
    values = np.asarray(array)
    rounded = np.rint(values)
    if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, rounded):
        raise MedsegError(
            f"{path}: mask holds non-integer values; save labels as integers (run `medseg verify_dataset`)"
        )
    if rounded.min() < 0 or rounded.max() > 255:
        raise MedsegError(f"{path}: mask values must lie in 0..255; run `medseg verify_dataset` for details")
    return rounded.astype(np.uint8)


def read_case(files: CaseFiles) -> RawCase:
    """Read every file of a case; all must share the first image file's spatial shape.

    Raises:
        MedsegError: a file is unreadable, on another grid or holds NaN / infinite voxels (the message names it).
    """
    loaded = [read_image(path).require_finite() for path in files.images]
    first = loaded[0]
    shape = first.spatial_shape
    for item in loaded[1:]:
        if item.spatial_shape != shape:
            raise MedsegError(
                f"{item.path}: shape {item.spatial_shape} differs from {first.path} {shape}; "
                "run `medseg verify_dataset`"
            )
    image = np.concatenate([np.asarray(item.array, dtype=np.float32) for item in loaded], axis=0)
    masks: dict[str, np.ndarray | None] = {"label": None, "raters": None}
    if files.label is not None:
        label = read_image(files.label)
        if label.spatial_shape != shape:
            raise MedsegError(
                f"{files.label}: shape {label.spatial_shape} differs from its image {shape}; "
                "run `medseg verify_dataset`"
            )
        masks["label"] = _as_mask(label.array[:1], files.label)
    if files.raters:
        stack = []
        for path in files.raters:
            rater = read_image(path)
            if rater.spatial_shape != shape:
                raise MedsegError(
                    f"{path}: shape {rater.spatial_shape} differs from its image {shape}; run `medseg verify_dataset`"
                )
            stack.append(_as_mask(rater.array[:1], path).astype(np.uint8))  # label maps (0/1 for one class)
        masks["raters"] = np.concatenate(stack, axis=0)
    return RawCase(files.case_id, image, masks["label"], masks["raters"], first.geometry)
