"""Crop a case to the bounding box of its foreground voxels (nnU-Net's "crop to non-zero", generalised).

A voxel is image foreground when any channel differs from that channel's **background value**: 0, or the value that
fills at least half of the image border when there is one (DeepMedic's z-scored BraTS volumes, for instance, fill
their background with a constant -3.6, not 0). The box also covers every non-zero voxel of every mask (label,
raters), so cropping never removes annotated voxels and the inverse (paste back into a zero canvas) restores masks
exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.transforms.utils import generate_spatial_bounding_box

BBox = list[list[int]]
BORDER_SHARE = 0.5


def background_values(image: np.ndarray) -> list[float]:
    """Per channel: the value filling at least half of the image border, else 0.

    Args:
        image: channel-first (C, x, y[, z]).
    """
    image = np.asarray(image)
    values = []
    for channel in image:
        faces = [np.take(channel, index, axis=axis).ravel() for axis in range(channel.ndim) for index in (0, -1)]
        border = np.concatenate(faces)
        uniques, counts = np.unique(border, return_counts=True)
        top = int(np.argmax(counts))
        values.append(float(uniques[top]) if counts[top] >= BORDER_SHARE * border.size else 0.0)
    return values


def foreground_mask(image: np.ndarray, background: Sequence[float] | None = None) -> np.ndarray:
    """Voxels where any channel differs from its background value (0 by default)."""
    image = np.asarray(image)
    background = [0.0] * image.shape[0] if background is None else list(background)
    return np.any([channel != value for channel, value in zip(image, background)], axis=0)


def nonzero_bbox(image: np.ndarray, *masks: np.ndarray | None, background: Sequence[float] | None = None) -> BBox:
    """Bounding box ``[[start, end), ...]`` per spatial axis of the image foreground and all non-zero mask voxels.

    Args:
        image: channel-first image (C, x, y[, z]); ``None`` to use the masks only.
        masks: channel-first masks on the same grid; ``None`` entries are skipped.
        background: per-channel background values of ``image`` (see :func:`background_values`); default 0.

    Returns:
        One ``[start, end]`` pair per spatial axis (end exclusive); the whole grid when nothing is foreground.
    """
    present = [np.asarray(m) != 0 for m in masks if m is not None]
    if image is not None:
        present.insert(0, foreground_mask(image, background)[None])
    if not present:
        raise ValueError("nonzero_bbox needs at least one array")
    shape = present[0].shape[1:]
    stacked = np.concatenate([m.reshape((-1,) + shape) for m in present], axis=0)
    start, end = generate_spatial_bounding_box(stacked, select_fn=lambda x: x > 0)
    if all(s == 0 for s in start) and all(e == 0 for e in end):
        return [[0, int(s)] for s in shape]
    return [[int(s), int(e)] for s, e in zip(start, end)]


def crop(array: np.ndarray, bbox: Sequence[Sequence[int]]) -> np.ndarray:
    """The part of a channel-first ``array`` inside ``bbox``."""
    slices = (slice(None),) + tuple(slice(int(s), int(e)) for s, e in bbox)
    return np.asarray(array)[slices]


def uncrop(array: np.ndarray, bbox: Sequence[Sequence[int]], shape: Sequence[int], fill: float = 0) -> np.ndarray:
    """Paste a channel-first cropped ``array`` back into a canvas of spatial ``shape`` filled with ``fill``."""
    array = np.asarray(array)
    canvas = np.full((array.shape[0],) + tuple(int(s) for s in shape), fill, dtype=array.dtype)
    canvas[(slice(None),) + tuple(slice(int(s), int(e)) for s, e in bbox)] = array
    return canvas


def bbox_shape(bbox: Sequence[Sequence[int]]) -> list[int]:
    """Spatial shape of the box."""
    return [int(e) - int(s) for s, e in bbox]
