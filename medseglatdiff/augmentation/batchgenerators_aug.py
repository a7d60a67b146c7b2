"""nnU-Net-style data augmentation with batchgenerators, applied identically to the image and every rater mask.

The pipeline (defaults follow nnU-Net's): rotation and scaling (each with probability 0.2), optional elastic
deformation, then multiplicative brightness, contrast, gamma and Gaussian noise on the image only, then
mirroring. Spatial transforms see the image as ``data`` and all masks stacked as ``seg`` channels, so one
draw of the parameters moves the image, the reference label and every rater mask together; masks are
interpolated with order 0 (nearest), so they stay binary.

Only ``batchgenerators.transforms.*`` modules are imported (they do not pull in ``unittest2``).
batchgenerators draws from NumPy's global generator: seed it per process (``set_determinism``) and per
data-loader worker (see :func:`medseglatdiff.training.data.seed_worker`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from batchgenerators.transforms.abstract_transforms import AbstractTransform, Compose
from batchgenerators.transforms.color_transforms import (
    BrightnessMultiplicativeTransform,
    ContrastAugmentationTransform,
    GammaTransform,
)
from batchgenerators.transforms.noise_transforms import GaussianNoiseTransform
from batchgenerators.transforms.spatial_transforms import MirrorTransform, SpatialTransform
from monai.transforms import MapTransform


@dataclass
class AugmentationParams:
    """Probabilities and ranges of every augmentation (nnU-Net's defaults; 0 probability disables one).

    Attributes:
        rotation_degrees: maximum rotation either way, per axis (2D: in-plane; 3D: about each axis).
        p_rotation: probability of rotating a sample.
        scale: range of the isotropic zoom factor.
        p_scale: probability of zooming a sample.
        p_elastic: probability of an elastic deformation.
        elastic_alpha: range of the deformation magnitude.
        elastic_sigma: range of the deformation smoothness.
        p_brightness: probability of a multiplicative brightness change in ``brightness``.
        brightness: range of the brightness multiplier.
        p_contrast: probability of a contrast change in ``contrast``.
        contrast: range of the contrast factor.
        p_gamma: probability of a gamma change in ``gamma``.
        gamma: range of gamma.
        p_noise: probability of additive Gaussian noise.
        noise_variance: range of the noise variance (the image is normalised, so ~0.1 is mild).
        mirror_axes: spatial axes mirrored with probability 0.5 each; empty to disable.
    """

    rotation_degrees: float = 180.0
    p_rotation: float = 0.2
    scale: tuple[float, float] = (0.7, 1.4)
    p_scale: float = 0.2
    p_elastic: float = 0.0
    elastic_alpha: tuple[float, float] = (0.0, 200.0)
    elastic_sigma: tuple[float, float] = (9.0, 13.0)
    p_brightness: float = 0.15
    brightness: tuple[float, float] = (0.75, 1.25)
    p_contrast: float = 0.15
    contrast: tuple[float, float] = (0.75, 1.25)
    p_gamma: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    p_noise: float = 0.1
    noise_variance: tuple[float, float] = (0.0, 0.1)
    mirror_axes: tuple[int, ...] = (0, 1)


def _rotated_extent(a: float, b: float, max_angle: float) -> float:
    """Largest extent along ``a``'s axis of an ``a`` x ``b`` box rotated by up to ``max_angle`` radians."""
    best = math.atan2(b, a)  # a*cos(t) + b*sin(t) peaks (at sqrt(a^2 + b^2)) there
    angle = min(max_angle, best)
    return a * math.cos(angle) + b * math.sin(angle)


def initial_patch_size(patch_size: Sequence[int], rotation_degrees: float, max_scale: float = 1.0) -> tuple[int, ...]:
    """Size of the region to cut before augmenting, so a rotated and zoomed patch finds no empty corners.

    The bounding box of the patch rotated by up to ``rotation_degrees`` in every plane, times the largest
    zoom factor (batchgenerators samples ``scale`` times more area for ``scale > 1``); never smaller than
    ``patch_size``. This plays the role of nnU-Net's ``get_patch_size``.
    """
    size = [float(s) for s in patch_size]
    angle = math.radians(min(abs(rotation_degrees), 90.0))
    if angle > 0 and len(size) > 1:
        size = [max(_rotated_extent(a, b, angle) for j, b in enumerate(size) if j != i) for i, a in enumerate(size)]
    factor = max(max_scale, 1.0)
    return tuple(max(int(math.ceil(s * factor - 1e-6)), int(p)) for s, p in zip(size, patch_size))


def build_augmentation(patch_size: Sequence[int], params: AugmentationParams | None = None) -> Compose:
    """The batchgenerators pipeline cropping to ``patch_size`` (2D or 3D, from its length).

    The input batch must be at least :func:`initial_patch_size` large; the spatial transform centre-crops
    ``patch_size`` after rotating and zooming, so the sampling of the patch position stays with the caller.
    """
    params = params or AugmentationParams()
    spatial_dims = len(patch_size)
    angle = math.radians(params.rotation_degrees)
    rotation = (-angle, angle)
    transforms: list[AbstractTransform] = [
        SpatialTransform(
            patch_size=tuple(int(p) for p in patch_size),
            patch_center_dist_from_border=None,
            do_elastic_deform=params.p_elastic > 0,
            alpha=params.elastic_alpha,
            sigma=params.elastic_sigma,
            do_rotation=params.p_rotation > 0,
            angle_x=rotation,
            angle_y=rotation if spatial_dims == 3 else (0.0, 0.0),
            angle_z=rotation if spatial_dims == 3 else (0.0, 0.0),
            do_scale=params.p_scale > 0,
            scale=params.scale,
            border_mode_data="constant",
            border_cval_data=0.0,
            order_data=3,
            border_mode_seg="constant",
            border_cval_seg=0,
            order_seg=0,
            random_crop=False,
            p_el_per_sample=params.p_elastic,
            p_scale_per_sample=params.p_scale,
            p_rot_per_sample=params.p_rotation,
        )
    ]
    if params.p_brightness > 0:
        transforms.append(
            BrightnessMultiplicativeTransform(params.brightness, per_channel=True, p_per_sample=params.p_brightness)
        )
    if params.p_contrast > 0:
        transforms.append(
            ContrastAugmentationTransform(params.contrast, preserve_range=True, p_per_sample=params.p_contrast)
        )
    if params.p_gamma > 0:
        transforms.append(
            GammaTransform(
                params.gamma, invert_image=False, per_channel=True, retain_stats=True, p_per_sample=params.p_gamma
            )
        )
    if params.p_noise > 0:
        transforms.append(GaussianNoiseTransform(params.noise_variance, p_per_sample=params.p_noise))
    axes = tuple(a for a in params.mirror_axes if a < spatial_dims)
    if axes:
        transforms.append(MirrorTransform(axes))
    return Compose(transforms)


class BatchgeneratorsTransformd(MapTransform):
    """Apply a batchgenerators transform to one image and any number of masks with the same parameters.

    The image key becomes ``data`` and the mask keys are stacked on channels as ``seg`` (a batch of one),
    then split back to their keys with their channel counts; masks keep their dtype.

    Args:
        transform: a batchgenerators transform (e.g. :func:`build_augmentation`).
        image_key: key of the ``(C, *spatial)`` image.
        mask_keys: keys of ``(c_k, *spatial)`` masks (label, raters), all moved together with the image.
    """

    def __init__(
        self, transform: AbstractTransform, image_key: str = "image", mask_keys: Sequence[str] = ("label", "raters")
    ) -> None:
        super().__init__([image_key, *mask_keys], allow_missing_keys=True)
        self.transform = transform
        self.image_key = image_key
        self.mask_keys = tuple(mask_keys)

    def __call__(self, data: Mapping[Hashable, np.ndarray]) -> dict[Hashable, np.ndarray]:
        d = dict(data)
        present = [k for k in self.mask_keys if k in d and d[k] is not None]
        image = np.asarray(d[self.image_key], dtype=np.float32)[None]
        masks = [np.asarray(d[k]) for k in present]
        batch: dict[str, np.ndarray] = {"data": image}
        if masks:
            batch["seg"] = np.concatenate(masks, axis=0)[None].astype(np.float32)
        out = self.transform(**batch)
        d[self.image_key] = np.ascontiguousarray(out["data"][0], dtype=np.float32)
        if masks:
            seg = out["seg"][0]
            start = 0
            for key, mask in zip(present, masks):
                stop = start + mask.shape[0]
                d[key] = np.ascontiguousarray(np.rint(seg[start:stop])).astype(mask.dtype)
                start = stop
        return d
