"""The denoiser's loss: x0 estimates per prediction type and the decoded-mask term."""

from __future__ import annotations

import pytest
import torch

from medseglatdiff.losses import DenoiserLoss, clean_latent_estimate
from medseglatdiff.networks import LatentScaling, mask_autoencoder, noise_scheduler


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_the_true_target_gives_back_the_clean_latent(prediction_type: str) -> None:
    torch.manual_seed(0)
    ddpm = noise_scheduler(prediction_type=prediction_type)
    x0, noise = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    t = torch.tensor([0, 10, 500, 900])
    noisy = ddpm.add_noise(x0, noise, t)
    target = {"epsilon": noise, "sample": x0, "v_prediction": ddpm.get_velocity(x0, noise, t)}[prediction_type]
    estimate = clean_latent_estimate(target, noisy, t, ddpm.alphas_cumprod, prediction_type)
    assert torch.allclose(estimate, x0, atol=1e-3)


def test_mask_loss_is_added_and_prefers_the_right_mask() -> None:
    torch.manual_seed(0)
    vae = mask_autoencoder(2, channels=(8, 8), latent_channels=1, num_res_blocks=1).eval().requires_grad_(False)
    scaling = LatentScaling(1.0, 1.0)
    ddpm = noise_scheduler(prediction_type="sample")
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    latents = vae.encode_stage_2_inputs(masks)
    targets = {
        "target": latents,
        "latents": latents,
        "noise": torch.randn_like(latents),
        "timesteps": torch.tensor([5, 5]),
        "masks": masks,
    }
    plain = DenoiserLoss("sample")
    with_mask = DenoiserLoss("sample", ddpm, vae, scaling, mask_loss_weight=1.0)
    prediction = latents.clone().requires_grad_(True)
    assert float(plain(prediction, targets)) == pytest.approx(0.0)
    total = with_mask(prediction, targets)
    assert float(total) > 0 and set(with_mask.last_terms) == {"diffusion", "mask"}
    total.backward()
    assert prediction.grad is not None and float(prediction.grad.abs().sum()) > 0  # flows through the frozen decoder
    inverted = {**targets, "masks": 1 - masks}
    assert float(with_mask(latents, inverted)) != pytest.approx(float(with_mask(latents, targets)))


def test_mask_loss_without_its_parts_is_an_error() -> None:
    with pytest.raises(ValueError, match="mask loss"):
        DenoiserLoss("sample", mask_loss_weight=1.0)
