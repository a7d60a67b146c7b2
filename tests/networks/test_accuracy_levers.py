"""The benchmark levers of the accuracy work: a full-resolution image stem and a timestep bias."""

from __future__ import annotations

import torch

from medseglatdiff.engines.prepare_batch import LatentDiffusionPrepareBatch
from medseglatdiff.networks import latent_denoiser, mask_autoencoder
from medseglatdiff.networks.conditioning import space_to_depth
from medseglatdiff.networks.latent_diffusion import LatentScaling
from medseglatdiff.networks.pixel_stem import PixelStemDenoiser, depth_to_space


def test_depth_to_space_inverts_space_to_depth_in_2d_and_3d() -> None:
    for shape, factor in (((2, 3, 16, 12), 4), ((1, 2, 8, 8, 4), 2)):
        x = torch.randn(shape)
        assert torch.equal(depth_to_space(space_to_depth(x, factor), factor), x)


def test_pixel_stem_denoiser_keeps_the_unet_contract() -> None:
    unet = latent_denoiser(2, 1, 48 + 8, channels=(8, 16), num_head_channels=8, norm_num_groups=4)
    net = PixelStemDenoiser(unet, 2, 1, 3, 4, (4, 8, 8))
    out = net(torch.randn(2, 1 + 48, 16, 12), torch.tensor([1, 900]))
    assert out.shape == (2, 1, 16, 12)
    assert net.stem(torch.randn(1, 3, 64, 48)).shape == (1, 8, 16, 12)  # full resolution down to the latent grid


def test_timestep_bias_draws_noisier_timesteps() -> None:
    vae = mask_autoencoder(2, channels=(4, 8), latent_channels=1, num_res_blocks=1, norm_num_groups=4)
    latents = torch.zeros(4000, 1, 2, 2)
    means = []
    for bias in (0.0, 1.0):
        prepare = LatentDiffusionPrepareBatch(
            None, vae, LatentScaling(), 1000, conditioning="image_pixels", prediction_type="sample", timestep_bias=bias
        )
        t = prepare.get_timesteps(latents)
        assert t.min() >= 0 and t.max() <= 999
        means.append(float(t.float().mean()))
    assert abs(means[0] - 500) < 30 and abs(means[1] - 667) < 30  # uniform; linear ramp (mean 2T/3)
