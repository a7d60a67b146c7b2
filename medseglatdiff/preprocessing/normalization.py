"""Per-channel intensity normalisation schemes, chosen by the planner and named in ``plans.json``.

Each scheme is a small class with a ``scheme`` name and the parameters the plan stores for it:

- ``ct``: clip to the dataset's foreground percentiles 0.5 / 99.5, then z-score with the foreground mean and std
  (nnU-Net's CT normalisation; the values come from ``dataset_fingerprint.json``).
- ``zscore``: z-score with the case's own mean and std, inside the non-zero mask when ``use_nonzero_mask``
  (voxels outside the mask are set to 0), else over the whole image. "Non-zero" means "not the channel's
  background value" (see ``cropping.background_values``).
- ``unit_range``: divide by ``max_value`` (255 for 8-bit RGB) and clip to [0, 1].
- ``none``: leave the values as they are (cast to float32).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from medseglatdiff.errors import MedsegError
from medseglatdiff.preprocessing.cropping import foreground_mask


class Normalization(ABC):
    """One channel's normalisation: ``scheme`` names it in plans.json, ``params`` are its stored values."""

    scheme: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = dict(params or {})
        missing = [key for key in self.required if key not in self.params]
        if missing:
            raise MedsegError(f"normalisation '{self.scheme}' needs params {', '.join(missing)}; re-run `medseg plan`")

    @abstractmethod
    def __call__(self, channel: np.ndarray, nonzero_mask: np.ndarray | None = None) -> np.ndarray:
        """Normalise one spatial channel (float32 out)."""


class CTNormalization(Normalization):
    scheme = "ct"
    required = ("clip_low", "clip_high", "mean", "std")

    def __call__(self, channel: np.ndarray, nonzero_mask: np.ndarray | None = None) -> np.ndarray:
        p = self.params
        clipped = np.clip(channel.astype(np.float32), float(p["clip_low"]), float(p["clip_high"]))
        return ((clipped - float(p["mean"])) / max(float(p["std"]), 1e-8)).astype(np.float32)


class ZScoreNormalization(Normalization):
    scheme = "zscore"
    required = ("use_nonzero_mask",)

    def __call__(self, channel: np.ndarray, nonzero_mask: np.ndarray | None = None) -> np.ndarray:
        data = channel.astype(np.float32)
        if self.params["use_nonzero_mask"] and nonzero_mask is not None and nonzero_mask.any():
            inside = data[nonzero_mask]
            out = np.zeros_like(data)
            out[nonzero_mask] = (inside - inside.mean()) / max(float(inside.std()), 1e-8)
            return out
        return ((data - data.mean()) / max(float(data.std()), 1e-8)).astype(np.float32)


class UnitRangeNormalization(Normalization):
    scheme = "unit_range"
    required = ("max_value",)

    def __call__(self, channel: np.ndarray, nonzero_mask: np.ndarray | None = None) -> np.ndarray:
        return np.clip(channel.astype(np.float32) / float(self.params["max_value"]), 0.0, 1.0)


class NoNormalization(Normalization):
    scheme = "none"

    def __call__(self, channel: np.ndarray, nonzero_mask: np.ndarray | None = None) -> np.ndarray:
        return channel.astype(np.float32)


SCHEMES: dict[str, type[Normalization]] = {
    cls.scheme: cls for cls in (CTNormalization, ZScoreNormalization, UnitRangeNormalization, NoNormalization)
}


def get_normalization(scheme: str, params: Mapping[str, Any] | None = None) -> Normalization:
    """The normalisation named ``scheme``; raises MedsegError listing the known names."""
    if scheme not in SCHEMES:
        raise MedsegError(f"unknown normalisation scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    return SCHEMES[scheme](params)


def nonzero_mask(image: np.ndarray, background: Sequence[float] | None = None) -> np.ndarray:
    """Voxels where any channel differs from its background value (default 0), holes filled (nnU-Net's mask)."""
    return ndimage.binary_fill_holes(foreground_mask(image, background))


def normalize_image(
    image: np.ndarray, normalization: Sequence[Mapping[str, Any]], background: Sequence[float] | None = None
) -> np.ndarray:
    """Normalise every channel of a channel-first image as the plan's ``normalization`` list says.

    Args:
        image: (C, x, y[, z]).
        normalization: one entry per channel with ``scheme`` and ``params`` (as in plans.json).
        background: per-channel background values for the non-zero mask (see ``cropping.background_values``).
    """
    image = np.asarray(image)
    if len(normalization) != image.shape[0]:
        raise MedsegError(f"the plan normalises {len(normalization)} channels but the image has {image.shape[0]}")
    use_mask = any(n["params"].get("use_nonzero_mask") for n in normalization)
    mask = nonzero_mask(image, background) if use_mask else None
    return np.stack(
        [get_normalization(n["scheme"], n["params"])(channel, mask) for channel, n in zip(image, normalization)]
    ).astype(np.float32)
