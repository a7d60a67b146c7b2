"""The latent denoiser's loss: the diffusion target's MSE, plus an optional loss on the decoded mask estimate.

Every prediction type gives an estimate of the clean mask latent ``x0`` from the noisy one
``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` (``a_t`` the cumulative product of the schedule's alphas):

- ``"epsilon"`` (predicts ``eps``): ``x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``;
- ``"sample"`` (predicts ``x0``): the prediction itself;
- ``"v_prediction"`` (predicts ``v = sqrt(a_t) eps - sqrt(1 - a_t) x0``): ``x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v``.

The auxiliary *mask loss* decodes that estimate with the frozen mask VAE decoder and compares the mask with the
drawn rater mask (binary cross-entropy + soft Dice), which ties the prediction to the ground truth as SDSeg,
BerDiff and MedSegDiff-V2 do. ``mask_loss_timesteps`` weights it per sample: ``"uniform"`` (1), or
``"signal"`` (``a_t``: mostly where the noisy latent still carries the mask, so that the estimate is not
penalised for the unavoidable uncertainty at ``t ~ T``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from medseglatdiff.networks.factories import check_prediction_type
from medseglatdiff.networks.latent_diffusion import LatentScaling

MASK_LOSS_TIMESTEPS = ("uniform", "signal")


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def clean_latent_estimate(
    prediction: torch.Tensor,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """The estimate of the clean latent ``x0`` implied by a denoiser ``prediction`` of ``prediction_type``."""
    alpha = _expand(alphas_cumprod.to(prediction.device)[timesteps], prediction)
    if prediction_type == "sample":
        return prediction
    if prediction_type == "v_prediction":
        return alpha.sqrt() * noisy - (1 - alpha).sqrt() * prediction
    return (noisy - (1 - alpha).sqrt() * prediction) / alpha.sqrt().clamp_min(1e-3)


def soft_dice_loss(probabilities: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-sample ``1 - soft Dice`` of probabilities against a binary target (any shape ``(B, ...)``)."""
    dims = tuple(range(1, probabilities.ndim))
    intersection = (probabilities * target).sum(dims)
    return 1 - (2 * intersection + smooth) / (probabilities.sum(dims) + target.sum(dims) + smooth)


def decoded_mask_loss(logits: torch.Tensor, masks: torch.Tensor, mask_autoencoder: nn.Module | None) -> torch.Tensor:
    """Per-sample cross-entropy + soft Dice of decoded logits against encoded masks (ignored voxels, -1, left out).

    Softmax decoders (several classes) get the categorical cross-entropy and the Dice of the foreground channels;
    sigmoid decoders the binary cross-entropy per channel.
    """
    valid = (masks >= 0).float()
    target = masks.clamp(min=0)
    if getattr(mask_autoencoder, "activation", "sigmoid") == "softmax":
        entropy = -(target * F.log_softmax(logits, dim=1)).sum(1, keepdim=True) * valid[:, :1]
        probabilities, target, valid = torch.softmax(logits, dim=1)[:, 1:], target[:, 1:], valid[:, 1:]
    else:
        entropy = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * valid
        probabilities = torch.sigmoid(logits)
    return entropy.flatten(1).mean(1) + soft_dice_loss(probabilities * valid, target * valid)


class DenoiserLoss(nn.Module):
    """MSE of the denoiser's prediction against its target, plus ``mask_loss_weight`` x the decoded-mask loss.

    Called by MONAI's ``SupervisedTrainer`` as ``loss(prediction, targets)`` with the ``targets`` dict of
    :class:`medseglatdiff.engines.LatentDiffusionPrepareBatch` (``target``, ``latents``, ``noise``,
    ``timesteps``, ``masks``).

    Args:
        prediction_type: what the denoiser predicts (``"epsilon"``, ``"sample"``, ``"v_prediction"``).
        scheduler: the training DDPM scheduler (its ``alphas_cumprod``); needed with a mask loss.
        mask_autoencoder: the frozen mask VAE (its decoder); needed with a mask loss.
        scaling: the latent scale factors (the decoder sees ``latent / scaling.mask``).
        mask_loss_weight: weight of the decoded-mask loss (0: the plain diffusion loss).
        mask_loss_timesteps: ``"uniform"`` or ``"signal"`` (see the module docstring).
    """

    def __init__(
        self,
        prediction_type: str = "epsilon",
        scheduler: nn.Module | None = None,
        mask_autoencoder: nn.Module | None = None,
        scaling: LatentScaling | None = None,
        mask_loss_weight: float = 0.0,
        mask_loss_timesteps: str = "uniform",
    ) -> None:
        super().__init__()
        self.prediction_type = check_prediction_type(prediction_type)
        self.mask_loss_weight = float(mask_loss_weight)
        if mask_loss_timesteps not in MASK_LOSS_TIMESTEPS:
            raise ValueError(
                f"unknown mask_loss_timesteps {mask_loss_timesteps!r}; choose one of {', '.join(MASK_LOSS_TIMESTEPS)}"
            )
        self.mask_loss_timesteps = mask_loss_timesteps
        if self.mask_loss_weight > 0 and (scheduler is None or mask_autoencoder is None or scaling is None):
            raise ValueError(
                "a mask loss (mask_loss_weight > 0) needs the scheduler, the mask autoencoder and the latent scaling"
            )
        self.scheduler = scheduler
        self.mask_autoencoder = mask_autoencoder
        self.scaling = scaling
        self.last_terms: dict[str, float] = {}

    def forward(self, prediction: torch.Tensor, targets: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        if not isinstance(targets, Mapping):
            targets = {"target": targets}
        diffusion = F.mse_loss(prediction.float(), targets["target"].float())
        self.last_terms = {"diffusion": float(diffusion.detach())}
        if self.mask_loss_weight <= 0:
            return diffusion
        alphas = self.scheduler.alphas_cumprod  # type: ignore[union-attr]
        latents, noise, timesteps = targets["latents"], targets["noise"], targets["timesteps"]
        noisy = self.scheduler.add_noise(latents, noise, timesteps)  # type: ignore[union-attr]  # what DiffusionInferer fed the denoiser
        estimate = clean_latent_estimate(prediction.float(), noisy.float(), timesteps, alphas, self.prediction_type)
        logits = self.mask_autoencoder.decode(estimate / self.scaling.mask.to(estimate.device))  # type: ignore[union-attr]
        per_sample = decoded_mask_loss(logits.float(), targets["masks"].float(), self.mask_autoencoder)
        weights = (
            alphas.to(latents.device)[timesteps].float()
            if self.mask_loss_timesteps == "signal"
            else torch.ones_like(per_sample)
        )
        mask_loss = (weights * per_sample).mean()
        self.last_terms["mask"] = float(mask_loss.detach())
        return diffusion + self.mask_loss_weight * mask_loss
