"""Network factories build MONAI's networks with consistent shapes in 2D and 3D, and the segmenter samples."""

from __future__ import annotations

import pytest
import torch

from medseglatdiff.networks import (
    LatentDiffusionSegmenter,
    LatentScaling,
    encode_images,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
    noise_scheduler,
    norm_groups_for,
    sampling_scheduler,
    scale_factor,
)

TINY = {"channels": (8, 16), "latent_channels": 2, "num_res_blocks": 1}


@pytest.mark.parametrize(("channels", "expected"), [((8, 16), 8), ((32, 64, 64), 32), ((12, 24), 12), ((6, 9), 3)])
def test_norm_groups_divide_every_width(channels: tuple[int, ...], expected: int) -> None:
    assert norm_groups_for(channels) == expected


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_autoencoders_and_denoiser_shapes(spatial_dims: int) -> None:
    size = (16,) * spatial_dims
    images = torch.randn(2, 3, *size)
    image_ae = image_autoencoder(spatial_dims, in_channels=3, **TINY)
    recon, z_mu, z_sigma = image_ae(images)
    assert recon.shape == images.shape
    assert z_mu.shape == (2, 2, *(s // 2 for s in size)) and z_sigma.shape == z_mu.shape
    mask_ae = mask_autoencoder(spatial_dims, channels=(8, 16), latent_channels=1)
    logits, m_mu, _ = mask_ae(torch.zeros(2, 1, *size))
    assert logits.shape == (2, 1, *size) and m_mu.shape == (2, 1, *(s // 2 for s in size))
    denoiser = latent_denoiser(spatial_dims, mask_latent_channels=1, image_latent_channels=2, channels=(8, 16))
    assert denoiser.conv_in.conv.in_channels == 3
    eps = denoiser(torch.cat([m_mu, z_mu], dim=1), timesteps=torch.tensor([1, 500]))
    assert eps.shape == m_mu.shape


def test_attention_levels_must_match_channels() -> None:
    with pytest.raises(ValueError, match="one flag per level"):
        image_autoencoder(2, in_channels=1, channels=(8, 16), attention_levels=(False,))


def test_schedulers_follow_the_method() -> None:
    ddpm = noise_scheduler()
    assert ddpm.num_train_timesteps == 1000
    assert float(ddpm.betas[0]) == pytest.approx(1e-4) and float(ddpm.betas[-1]) == pytest.approx(2e-2)
    ddim = sampling_scheduler(num_inference_steps=10)
    assert len(ddim.timesteps) == 10 and ddim.clip_sample is False


def test_scale_factor_normalises_latents() -> None:
    latents = 4.0 * torch.randn(1000)
    assert float((latents * scale_factor(latents)).std()) == pytest.approx(1.0, rel=1e-4)
    assert scale_factor(torch.ones(10)) == 1.0
    scaling = LatentScaling()
    assert not scaling.is_set
    scaling.fit(latents, 2 * latents)
    assert scaling.is_set and float(scaling.image) == pytest.approx(2 * float(scaling.mask), rel=1e-5)
    restored = LatentScaling()
    restored.load_state_dict(scaling.state_dict())
    assert float(restored.image) == float(scaling.image)


def test_segmenter_samples_an_ensemble_per_image() -> None:
    torch.manual_seed(0)
    image_ae = image_autoencoder(2, in_channels=1, **TINY)
    mask_ae = mask_autoencoder(2, channels=(8, 16), latent_channels=1)
    denoiser = latent_denoiser(2, mask_latent_channels=1, image_latent_channels=2, channels=(8, 16))
    model = LatentDiffusionSegmenter(image_ae, mask_ae, denoiser).eval()
    images = torch.randn(2, 1, 16, 16)
    with pytest.raises(RuntimeError, match="scale factors"):
        model.sample(images, sampling_scheduler(num_inference_steps=2), num_samples=3)
    model.scaling.fit(encode_images(image_ae, images), torch.randn(8))
    generator = torch.Generator().manual_seed(3)
    probs = model.sample(
        images, sampling_scheduler(num_inference_steps=2), num_samples=3, max_batch=4, generator=generator
    )
    assert probs.shape == (2, 3, 1, 16, 16)  # (B, N, K channels, *spatial)
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
    again = model.sample(
        images, sampling_scheduler(num_inference_steps=2), num_samples=3, generator=torch.Generator().manual_seed(3)
    )
    assert torch.allclose(probs, again, atol=1e-5)  # chunking does not change the samples
    assert not torch.allclose(probs[:, 0], probs[:, 1])  # samples differ
