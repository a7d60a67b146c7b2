"""What the denoiser sees of the image: space-to-depth and the three conditionings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseglatdiff.networks import image_autoencoder
from medseglatdiff.networks.conditioning import condition_channels, image_condition, space_to_depth


def test_space_to_depth_matches_pixel_unshuffle_in_2d_and_keeps_every_voxel_in_3d() -> None:
    x = torch.randn(2, 3, 8, 12)
    assert torch.equal(space_to_depth(x, 4), F.pixel_unshuffle(x, 4))
    volume = torch.arange(2 * 4 * 4 * 8, dtype=torch.float32).reshape(1, 2, 4, 4, 8)
    out = space_to_depth(volume, 2)
    assert out.shape == (1, 2 * 8, 2, 2, 4)
    assert torch.equal(out.flatten().sort().values, volume.flatten())  # a permutation: nothing lost
    # the first block of channel 0 holds the 2x2x2 corner
    assert torch.equal(out[0, :8, 0, 0, 0].sort().values, volume[0, 0, :2, :2, :2].flatten().sort().values)


def test_space_to_depth_refuses_sizes_not_divisible() -> None:
    with pytest.raises(ValueError, match="divisible"):
        space_to_depth(torch.zeros(1, 1, 6, 8), 4)


@pytest.mark.parametrize(
    "conditioning, channels",
    [("image_latent", 2), ("image_pixels", 3 * 16), ("image_latent_and_pixels", 2 + 3 * 16)],
)
def test_condition_shapes_match_the_declared_channels(conditioning: str, channels: int) -> None:
    torch.manual_seed(0)
    encoder = image_autoencoder(2, in_channels=3, channels=(8, 8, 8), latent_channels=2, num_res_blocks=1).eval()
    images = torch.randn(2, 3, 16, 16)
    condition = image_condition(images, conditioning, 4, encoder, scale=0.5)
    assert condition.shape == (2, channels, 4, 4)
    assert condition_channels(conditioning, 2, 3, 4, 2) == channels
    if conditioning != "image_latent":
        assert torch.equal(condition[:, -48:], F.pixel_unshuffle(images, 4))


def test_latent_conditioning_without_autoencoder_is_an_error() -> None:
    with pytest.raises(ValueError, match="image autoencoder"):
        image_condition(torch.zeros(1, 1, 8, 8), "image_latent", 2, None)
    with pytest.raises(ValueError, match="unknown conditioning"):
        image_condition(torch.zeros(1, 1, 8, 8), "pixels", 2, None)
