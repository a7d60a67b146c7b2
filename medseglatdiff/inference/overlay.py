"""Overlay PNG for a person: the image, the mask outline, and the confidence map as a heat map, side by side."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseglatdiff.io.atomic import atomic_path

OUTLINE_RGB = (255, 40, 40)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, x, y) image -> (y, x, 3) uint8, percentile-scaled; RGB(A) shown in colour, anything else as its first
    channel in grey."""
    pixels = np.moveaxis(np.asarray(image, dtype=np.float64), 0, -1).swapaxes(0, 1)
    if pixels.shape[-1] not in (3, 4):
        pixels = pixels[..., :1]  # grey, or the first of several modalities (BraTS FLAIR)
    lo, hi = np.percentile(pixels, 0.5), np.percentile(pixels, 99.5)
    pixels = np.clip((pixels - lo) / (hi - lo + 1e-8), 0, 1)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return (pixels[..., :3] * 255).astype(np.uint8)


def _heat(values: np.ndarray) -> np.ndarray:
    """(x, y) values in [0, 1] -> (y, x, 3) uint8 with matplotlib's 'magma' colour map."""
    from matplotlib import colormaps

    return (colormaps["magma"](np.clip(values.T, 0, 1))[..., :3] * 255).astype(np.uint8)


def overlay_slice(image: np.ndarray, mask: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """An RGB panel (y, 2x, 3): left, the image with the mask outline; right, the confidence heat map.

    Args:
        image: (C, x, y) image.
        mask: (x, y) binary mask.
        confidence: (x, y) confidence in [0, 1].
    """
    left = _to_rgb(image)
    outline = (mask > 0) & ~ndimage.binary_erosion(mask > 0)
    left[outline.T] = OUTLINE_RGB
    return np.concatenate([left, _heat(confidence)], axis=1)


def largest_slice(mask: np.ndarray) -> int:
    """Index along the last axis of the slice with the most foreground; ties go to the one nearest their middle."""
    areas = (np.asarray(mask) > 0).reshape(-1, mask.shape[-1]).sum(axis=0)
    if not areas.any():
        return mask.shape[-1] // 2
    best = np.flatnonzero(areas == areas.max())
    return int(best[np.argmin(np.abs(best - np.median(best)))])


def write_overlay(image: np.ndarray, mask: np.ndarray, confidence: np.ndarray, path: str | os.PathLike) -> Path:
    """Write the overlay PNG; 3D inputs show the axial slice (last axis) with the largest mask area
    (of several equally large, the one nearest their middle; without a mask, the middle slice)."""
    from PIL import Image

    image, mask, confidence = np.asarray(image), np.asarray(mask), np.asarray(confidence)
    if mask.ndim == 3:
        index = largest_slice(mask)
        image, mask, confidence = image[..., index], mask[..., index], confidence[..., index]
    panel = overlay_slice(image, mask, confidence)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(panel).save(tmp, format="PNG")
    return path
