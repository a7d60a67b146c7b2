"""Label statistics for the fingerprint: class fractions, connected objects and inter-rater agreement.

Connected components use full connectivity (8 neighbours in 2D, 26 in 3D) via ``scipy.ndimage.label``; MONAI's
Auto3DSeg ``LabelStats`` reports only bounding boxes and counts background regions as components, so it does not
give object sizes. A component counts as an **object** when it holds at least :data:`MIN_OBJECT_SHARE` of its
class's voxels in the case: one-voxel speckles left by mask resizing or JPEG compression are not structures that
the latent grid must keep, while a second, smaller lesion beside a large one still is.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

MIN_OBJECT_SHARE = 0.01


def equivalent_diameter(volume: float | np.ndarray, spatial_dims: int) -> float | np.ndarray:
    """Diameter of the disc (2D) or ball (3D) with the given area / volume."""
    volume = np.asarray(volume, dtype=np.float64)
    if spatial_dims == 2:
        return np.sqrt(4.0 * volume / np.pi)
    return np.cbrt(6.0 * volume / np.pi)


def component_stats(
    mask: np.ndarray, spacing: Sequence[float], min_object_share: float = MIN_OBJECT_SHARE
) -> dict[str, Any]:
    """Connected components of a binary spatial ``mask``.

    Returns:
        ``sizes_vox`` (voxel counts, largest first), ``diameters_vox`` and ``diameters_mm`` (equivalent
        diameters; mm uses the voxel volume ``prod(spacing)``) and ``is_object`` (see :data:`MIN_OBJECT_SHARE`).
    """
    mask = np.asarray(mask, dtype=bool)
    dims = mask.ndim
    labelled, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(dims, dims))
    sizes = np.sort(np.bincount(labelled.ravel())[1:])[::-1] if count else np.zeros(0, dtype=np.int64)
    voxel_volume = float(np.prod(np.asarray(spacing, dtype=np.float64)))
    total = sizes.sum()
    return {
        "sizes_vox": [int(s) for s in sizes],
        "diameters_vox": [round(float(d), 3) for d in equivalent_diameter(sizes, dims)],
        "diameters_mm": [round(float(d), 3) for d in equivalent_diameter(sizes * voxel_volume, dims)],
        "is_object": [bool(s >= min_object_share * total) for s in sizes],
    }


def class_fractions(label: np.ndarray, classes: Sequence[int]) -> dict[str, float]:
    """Share of the voxels of a spatial ``label`` map taken by each class."""
    label = np.asarray(label)
    return {str(int(c)): float(np.count_nonzero(label == c)) / max(label.size, 1) for c in classes}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks; two empty masks agree perfectly (1.0)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def rater_stats(raters: np.ndarray) -> dict[str, Any]:
    """Rater statistics of one case: how many masks, how many empty, mean pairwise Dice.

    Args:
        raters: (R, x, y[, z]) binary masks.
    """
    masks = np.asarray(raters) > 0
    pairs = [dice(masks[i], masks[j]) for i, j in itertools.combinations(range(masks.shape[0]), 2)]
    return {
        "num_raters": int(masks.shape[0]),
        "num_empty": int(sum(not m.any() for m in masks)),
        "mean_pairwise_dice": float(np.mean(pairs)) if pairs else 1.0,
    }


def percentiles(values: Sequence[float], qs: Sequence[float] = (5, 50, 95)) -> dict[str, float | None]:
    """``{"p5": ..., "p50": ..., "p95": ...}`` of ``values`` (None when empty)."""
    array = np.asarray(values, dtype=np.float64)
    return {f"p{q:g}": (float(np.percentile(array, q)) if array.size else None) for q in qs}
