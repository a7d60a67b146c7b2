"""Resample images and label maps to a target spacing with MONAI's ``Resize``.

Images: bicubic (2D) or trilinear (3D) interpolation, Gaussian anti-aliasing when downsampling. Labels: each class
present becomes a one-hot channel, the channels are interpolated linearly and the arg-max is taken (nnU-Net's rule);
a class that would vanish (an object smaller than the new voxel) keeps the voxel where its interpolated share is
highest, so **no class present in the input is lost**. For strongly anisotropic volumes (nnU-Net's "separate z")
the coarse axis is resampled with nearest-neighbour interpolation and the other axes as above.

The new grid keeps the physical extent of the old one (``shape * spacing``), so torch's ``align_corners=False``
interpolation matches voxel centres in world space, and the inverse is the same call with the shapes swapped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import Resize

ANISOTROPY_THRESHOLD = 3.0


def compute_new_shape(
    shape: Sequence[int], spacing: Sequence[float], target_spacing: Sequence[float | None]
) -> list[int]:
    """Spatial shape after resampling ``shape`` from ``spacing`` to ``target_spacing`` (``None``: axis kept)."""
    return [
        int(s) if t is None else max(1, int(round(int(s) * float(sp) / float(t))))
        for s, sp, t in zip(shape, spacing, target_spacing)
    ]


def effective_spacing(shape: Sequence[int], spacing: Sequence[float], new_shape: Sequence[int]) -> list[float]:
    """The spacing of the new grid that keeps the physical extent (close to, not always equal to, the target)."""
    return [float(sp) * int(s) / int(n) for s, sp, n in zip(shape, spacing, new_shape)]


def separate_axis(
    spacing: Sequence[float], target_spacing: Sequence[float | None], threshold: float = ANISOTROPY_THRESHOLD
) -> int | None:
    """The axis to resample on its own with nearest-neighbour interpolation, or None (nnU-Net's rule).

    A 3D grid whose coarsest spacing exceeds ``threshold`` times its finest one (first the source spacing, else the
    target spacing) has its coarsest axis resampled separately: interpolating across thick slices blurs labels.
    """
    if len(spacing) != 3:
        return None
    for candidate in (list(spacing), [t if t is not None else s for s, t in zip(spacing, target_spacing)]):
        values = np.asarray(candidate, dtype=np.float64)
        if values.max() / values.min() > threshold:
            return int(np.argmax(values))
    return None


def _linear_mode(spatial_dims: int, image: bool) -> str:
    if spatial_dims == 2:
        return "bicubic" if image else "bilinear"
    return "trilinear"


def _resize(data: torch.Tensor, new_shape: Sequence[int], axis: int | None, image: bool) -> torch.Tensor:
    """Resize float channel-first ``data``; the ``axis`` (if any) separately with nearest-neighbour."""
    spatial_dims = data.ndim - 1
    new_shape = [int(s) for s in new_shape]
    if list(data.shape[1:]) == new_shape:
        return data
    mode = _linear_mode(spatial_dims, image)
    if axis is None:
        return torch.as_tensor(Resize(new_shape, mode=mode, anti_aliasing=image)(data))
    in_plane = [-1 if i == axis else s for i, s in enumerate(new_shape)]
    data = torch.as_tensor(Resize(in_plane, mode=mode, anti_aliasing=image)(data))
    along = [-1 if i != axis else s for i, s in enumerate(new_shape)]
    return torch.as_tensor(Resize(along, mode="nearest-exact")(data))


def resample_image(image: np.ndarray, new_shape: Sequence[int], axis: int | None = None) -> np.ndarray:
    """Resample a channel-first float image to ``new_shape`` (float32 out).

    Args:
        image: (C, x, y[, z]).
        new_shape: the spatial shape wanted.
        axis: an anisotropic axis to resample with nearest-neighbour (see :func:`separate_axis`).
    """
    data = torch.as_tensor(np.asarray(image, dtype=np.float32))
    return _resize(data, new_shape, axis, image=True).numpy().astype(np.float32, copy=False)


def resample_linear(array: np.ndarray, new_shape: Sequence[int], axis: int | None = None) -> np.ndarray:
    """Resample soft maps (probabilities) linearly, without anti-aliasing (float32 out)."""
    data = torch.as_tensor(np.asarray(array, dtype=np.float32))
    return _resize(data, new_shape, axis, image=False).numpy().astype(np.float32, copy=False)


def resample_label_channel(label: np.ndarray, new_shape: Sequence[int], axis: int | None = None) -> np.ndarray:
    """Resample one integer label map (spatial only) so that no class present in it disappears."""
    label = np.asarray(label)
    if list(label.shape) == [int(s) for s in new_shape]:
        return label.copy()
    classes = np.unique(label)
    if classes.size == 1:
        return np.full(tuple(int(s) for s in new_shape), classes[0], dtype=label.dtype)
    one_hot = torch.stack([torch.as_tensor(label == c, dtype=torch.float32) for c in classes])
    shares = _resize(one_hot, new_shape, axis, image=False)
    winner = torch.argmax(shares, dim=0)
    for index in range(classes.size):
        if not bool((winner == index).any()):
            winner.view(-1)[int(torch.argmax(shares[index]))] = index
    return classes[winner.numpy()].astype(label.dtype)


def resample_label(label: np.ndarray, new_shape: Sequence[int], axis: int | None = None) -> np.ndarray:
    """Resample a channel-first label array (C, x, y[, z]); each channel (label map, rater mask) on its own."""
    label = np.asarray(label)
    return np.stack([resample_label_channel(channel, new_shape, axis) for channel in label])
