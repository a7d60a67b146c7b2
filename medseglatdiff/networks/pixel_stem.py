"""A trainable full-resolution image encoder in front of the latent denoiser (the ``image_stem`` lever).

With the ``image_pixels`` conditioning the denoiser's input is ``concat(noisy mask latent, space_to_depth(image))``
on the latent grid. :class:`PixelStemDenoiser` undoes the space-to-depth (lossless), runs a small convolutional
stem on the image at full resolution and strides it down to the latent grid, and hands
``concat(noisy latent, space-to-depth pixels, stem features)`` to MONAI's ``DiffusionModelUNet``. The stem is trained
with the denoiser (SDSeg's trainable condition encoder at pixel resolution). The inputs and outputs are those of the
UNet, so training (``DiffusionInferer``), sampling and export are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from medseglatdiff.networks.conditioning import space_to_depth


def depth_to_space(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The inverse of :func:`medseglatdiff.networks.conditioning.space_to_depth`, for any number of spatial axes."""
    factor = int(factor)
    if factor == 1:
        return x
    batch, channels, *spatial = x.shape
    dims = len(spatial)
    base = channels // factor**dims
    x = x.reshape(batch, base, *([factor] * dims), *spatial)
    # (B, C, f, f, ..., s1, s2, ...) -> (B, C, s1, f, s2, f, ...)
    order = [0, 1]
    for axis in range(dims):
        order += [2 + dims + axis, 2 + axis]
    return x.permute(order).reshape(batch, base, *(s * factor for s in spatial))


class PixelStemDenoiser(nn.Module):
    """``unet`` behind a full-resolution convolutional stem on the space-to-depth image channels of its input.

    Args:
        unet: the denoiser; its ``in_channels`` must be ``mask_latent_channels + pixel_channels + stem[-1]``.
        spatial_dims: 2 or 3.
        mask_latent_channels: channels of the noisy mask latent (first in the input).
        image_channels: channels of the image (the last ``image_channels * factor**dims`` input channels are its
            space-to-depth pixels).
        latent_factor: the mask VAE's downsampling factor (a power of 2).
        stem: widths: one full-resolution convolution, then one stride-2 convolution per halving.
    """

    def __init__(
        self,
        unet: nn.Module,
        spatial_dims: int,
        mask_latent_channels: int,
        image_channels: int,
        latent_factor: int,
        stem: Sequence[int] = (16, 32, 32),
    ) -> None:
        super().__init__()
        halvings = int(round(math.log2(latent_factor)))
        if 2**halvings != int(latent_factor):
            raise ValueError(f"latent_factor must be a power of 2, got {latent_factor}")
        widths = [int(w) for w in stem]
        if len(widths) != halvings + 1:
            raise ValueError(f"stem needs {halvings + 1} widths for a latent factor {latent_factor}, got {widths}")
        conv = Conv[Conv.CONV, spatial_dims]
        layers: list[nn.Module] = [conv(image_channels, widths[0], 3, padding=1), nn.SiLU()]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [conv(w_in, w_out, 3, stride=2, padding=1), nn.SiLU()]
        self.stem = nn.Sequential(*layers)
        self.unet = unet
        self.mask_latent_channels = int(mask_latent_channels)
        self.latent_factor = int(latent_factor)
        self.pixel_channels = int(image_channels) * int(latent_factor) ** int(spatial_dims)
        self.in_channels = self.mask_latent_channels + self.pixel_channels
        self.out_channels = int(getattr(unet, "out_channels", mask_latent_channels))

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        pixels = x[:, x.shape[1] - self.pixel_channels :]
        features = self.stem(depth_to_space(pixels, self.latent_factor))
        return self.unet(torch.cat([x, features], dim=1), timesteps, context, class_labels)


__all__ = ["PixelStemDenoiser", "depth_to_space", "space_to_depth"]
