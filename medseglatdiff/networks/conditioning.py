"""What the latent denoiser sees of the image: the condition concatenated to the noisy mask latent.

Three conditionings, one name each (the plan's ``denoiser.conditioning``):

- ``"image_latent"`` (the method as published): the frozen image autoencoder's posterior mean, times its latent
  scale factor. The denoiser only sees what an autoencoder trained to *reconstruct* the image kept.
- ``"image_pixels"``: the normalised image itself, rearranged onto the latent grid (space-to-depth: each
  ``f x f`` block of pixels becomes ``C * f**d`` channels of one latent position; lossless). The denoiser's
  trainable layers encode it for the segmentation (as SDSeg's trainable condition encoder): its first
  convolution, or the full-resolution image encoder of :mod:`medseglatdiff.networks.image_encoder` in front of it
  (the default recipe). No image autoencoder is needed.
- ``"image_latent_and_pixels"``: both, concatenated on channels.

The shapes: images ``(B, C, *spatial)`` -> condition ``(B, c, *spatial / f)`` with ``f`` the mask VAE's
downsampling factor, so MONAI's ``DiffusionInferer(mode="concat")`` can concatenate it to the latent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CONDITIONINGS = ("image_latent", "image_pixels", "image_latent_and_pixels")


def check_conditioning(conditioning: str) -> str:
    """``conditioning`` if it is one of :data:`CONDITIONINGS`, else a ``ValueError`` naming the choices."""
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"unknown conditioning {conditioning!r}; choose one of {', '.join(CONDITIONINGS)}")
    return conditioning


def uses_image_latent(conditioning: str) -> bool:
    """Whether the conditioning needs a trained image autoencoder."""
    return check_conditioning(conditioning) in ("image_latent", "image_latent_and_pixels")


def uses_image_pixels(conditioning: str) -> bool:
    """Whether the conditioning feeds the image's pixels (space-to-depth) to the denoiser."""
    return check_conditioning(conditioning) in ("image_pixels", "image_latent_and_pixels")


def space_to_depth(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, C * factor**d, *spatial / factor)``, for any number ``d`` of spatial axes.

    Channel ``c * factor**d + k`` holds offset ``k`` (row-major over the block) of input channel ``c``; for
    ``d = 2`` this equals :func:`torch.nn.functional.pixel_unshuffle`.
    """
    factor = int(factor)
    if factor == 1:
        return x
    batch, channels, *spatial = x.shape
    if any(s % factor for s in spatial):
        raise ValueError(f"spatial size {tuple(spatial)} is not divisible by the latent factor {factor}")
    dims = len(spatial)
    shape = [batch, channels]
    for s in spatial:
        shape += [s // factor, factor]
    x = x.reshape(shape)
    # (B, C, s1, f, s2, f, ...) -> (B, C, f, f, ..., s1, s2, ...)
    order = [0, 1, *range(3, 3 + 2 * dims, 2), *range(2, 2 + 2 * dims, 2)]
    x = x.permute(order)
    return x.reshape(batch, channels * factor**dims, *(s // factor for s in spatial))


def condition_channels(
    conditioning: str, image_latent_channels: int, image_channels: int, latent_factor: int, spatial_dims: int
) -> int:
    """Channels of the condition for ``conditioning`` (the denoiser's input width minus the mask latent's)."""
    channels = 0
    if uses_image_latent(conditioning):
        channels += int(image_latent_channels)
    if uses_image_pixels(conditioning):
        channels += int(image_channels) * int(latent_factor) ** int(spatial_dims)
    return channels


def latent_factor_of(autoencoder: nn.Module) -> int:
    """The downsampling factor ``2 ** (levels - 1)`` of a MONAI ``AutoencoderKL``."""
    return 2 ** (len(autoencoder.encoder.channels) - 1)


@torch.no_grad()
def image_condition(
    images: torch.Tensor,
    conditioning: str,
    latent_factor: int,
    image_autoencoder: nn.Module | None = None,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """The denoiser's condition for ``images`` ``(B, C, *spatial)``.

    Args:
        images: normalised images.
        conditioning: one of :data:`CONDITIONINGS`.
        latent_factor: the mask VAE's downsampling factor (the grid the condition must match).
        image_autoencoder: needed by the ``image_latent`` conditionings (its posterior mean, times ``scale``).
        scale: the image latent's scale factor.
    """
    parts: list[torch.Tensor] = []
    if uses_image_latent(conditioning):
        if image_autoencoder is None:
            raise ValueError(f"conditioning {conditioning!r} needs the trained image autoencoder")
        z_mu, _ = image_autoencoder.encode(images)
        parts.append(z_mu * scale)
    if uses_image_pixels(conditioning):
        parts.append(space_to_depth(images, latent_factor))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def describe(conditioning: str, spatial: Sequence[int] | None = None) -> str:
    """One line for logs and plan reasons."""
    text = {
        "image_latent": "the frozen image autoencoder's latent (the published method)",
        "image_pixels": "the image's pixels on the latent grid (space-to-depth), "
        "encoded by the denoiser's trainable layers (its image encoder, when planned)",
        "image_latent_and_pixels": "the image autoencoder's latent and the image's pixels (space-to-depth)",
    }[check_conditioning(conditioning)]
    return text if spatial is None else f"{text}, latent grid {tuple(spatial)}"
