"""The levers of the accuracy work: the denoiser's image encoder and a timestep bias."""

from __future__ import annotations

import pytest
import torch

from medseglatdiff.engines.prepare_batch import LatentDiffusionPrepareBatch
from medseglatdiff.networks import latent_denoiser, mask_autoencoder
from medseglatdiff.networks.conditioning import space_to_depth
from medseglatdiff.networks.image_encoder import (
    EncodedConditionDenoiser,
    depth_to_space,
    fitted_encoder_channels,
    sampling_network,
)
from medseglatdiff.networks.latent_diffusion import LatentScaling


def test_depth_to_space_inverts_space_to_depth_in_2d_and_3d() -> None:
    for shape, factor in (((2, 3, 16, 12), 4), ((1, 2, 8, 8, 4), 2)):
        x = torch.randn(shape)
        assert torch.equal(depth_to_space(space_to_depth(x, factor), factor), x)


def _encoded_denoiser() -> EncodedConditionDenoiser:
    net = latent_denoiser(
        2,
        1,
        48,
        channels=(8, 16),
        num_head_channels=8,
        norm_num_groups=4,
        image_encoder_channels=(4, 8, 8),
        image_channels=3,
        latent_factor=4,
    )
    assert isinstance(net, EncodedConditionDenoiser)
    return net


def test_encoded_denoiser_keeps_the_unet_contract() -> None:
    net = _encoded_denoiser()
    assert (net.in_channels, net.out_channels, net.unet.in_channels) == (1 + 48, 1, 1 + 48 + 8)
    out = net(torch.randn(2, 1 + 48, 16, 12), torch.tensor([1, 900]))
    assert out.shape == (2, 1, 16, 12)
    assert net.encoder(torch.randn(1, 3, 64, 48)).shape == (1, 8, 16, 12)  # full resolution down to the latent grid


def test_sampling_encodes_each_image_once_and_matches_the_training_forward() -> None:
    net = _encoded_denoiser().eval()
    condition = space_to_depth(torch.rand(2, 3, 64, 48), 4)
    noisy, t = torch.randn(2, 1, 16, 12), torch.tensor([999, 10])
    model, encoded = sampling_network(net, condition)
    assert model is net.unet and encoded.shape[1] == 48 + 8
    with torch.no_grad():
        direct = net(torch.cat([noisy, condition], 1), t)
        stepped = model(torch.cat([noisy, encoded], 1), t)
    assert torch.allclose(direct, stepped, atol=1e-6)
    plain = latent_denoiser(2, 1, 48, channels=(8, 16), num_head_channels=8, norm_num_groups=4)
    assert sampling_network(plain, condition) == (plain, condition)  # no encoder: unchanged


def test_an_encoder_needs_the_image_pixels_and_one_level_per_halving() -> None:
    with pytest.raises(ValueError, match="image_pixels"):
        latent_denoiser(2, 1, 3, channels=(8, 16), image_encoder_channels=(4, 8, 8), image_channels=3, latent_factor=4)
    with pytest.raises(ValueError, match="needs 3 widths"):
        latent_denoiser(2, 1, 48, channels=(8, 16), image_encoder_channels=(4, 8), image_channels=3, latent_factor=4)


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


def test_planned_encoder_widths_follow_the_configured_latent_factor() -> None:
    assert fitted_encoder_channels([16, 32, 64], 4) == [16, 32, 64]
    assert fitted_encoder_channels([16, 32, 64], 2) == [16, 32]  # a mask VAE of two levels
    assert fitted_encoder_channels([16, 32, 64], 8) == [16, 32, 64, 128]
    assert fitted_encoder_channels([], 4) == []  # no encoder planned
    assert fitted_encoder_channels([16, 32, 64], 4, "image_latent") == []  # no pixels to encode
    assert fitted_encoder_channels([16, 32, 64], 4, "image_latent_and_pixels") == [16, 32, 64]
