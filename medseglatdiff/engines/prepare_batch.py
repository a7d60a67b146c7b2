"""``prepare_batch`` callables that adapt MONAI's ``SupervisedTrainer`` to the three training stages.

- :class:`KeyPrepareBatch`: input and target taken from named keys (the image autoencoder reconstructs
  ``image``; the mask VAE reconstructs the drawn rater ``mask``).
- :class:`LatentDiffusionPrepareBatch`: MONAI's :class:`~monai.engines.DiffusionPrepareBatch` moved into
  latent space. The frozen mask VAE encodes the mask (the diffusion target), the frozen image encoder gives
  the condition; the trainer's ``DiffusionInferer`` then adds noise at a random timestep and runs the
  denoiser on ``concat(noisy mask latent, image latent)``, and the loss compares its output with the noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.engines import DiffusionPrepareBatch, PrepareBatch
from monai.networks.schedulers import Scheduler
from torch import nn

from medseglatdiff.networks.conditioning import check_conditioning, image_condition, latent_factor_of
from medseglatdiff.networks.factories import check_prediction_type
from medseglatdiff.networks.latent_diffusion import LatentScaling, encode_masks


class KeyPrepareBatch(PrepareBatch):
    """Return ``(batch[input_key], batch[target_key])`` on ``device``.

    Args:
        input_key: key of the network input.
        target_key: key of the loss target (may equal ``input_key`` for autoencoders).
    """

    def __init__(self, input_key: str = "image", target_key: str = "image") -> None:
        self.input_key = input_key
        self.target_key = target_key

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = (
            torch.as_tensor(batchdata[self.input_key]).float().to(device=device, non_blocking=non_blocking, **kwargs)
        )
        if self.target_key == self.input_key:
            return inputs, inputs
        target = (
            torch.as_tensor(batchdata[self.target_key]).float().to(device=device, non_blocking=non_blocking, **kwargs)
        )
        return inputs, target


def unwrap(network: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the module itself)."""
    return network.module if isinstance(network, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else network


class LatentDiffusionPrepareBatch(DiffusionPrepareBatch):
    """Encode the mask with the frozen mask VAE and build the condition; return the denoiser's training pair.

    Returns ``(mask_latent, targets, (), {"noise", "timesteps", "condition", "mode": "concat"})``, the contract
    of MONAI's ``DiffusionInferer``, so ``SupervisedTrainer(inferer=DiffusionInferer(ddpm))`` runs the denoiser
    on ``concat(noisy mask latent, condition)``. ``targets`` is a dict for
    :class:`medseglatdiff.losses.DenoiserLoss`: ``target`` (what the denoiser predicts: the noise for
    ``"epsilon"``, the clean latent for ``"sample"``, the velocity for ``"v_prediction"``), ``latents``,
    ``noise``, ``timesteps`` and ``masks`` (for a loss on the decoded mask estimate).

    Args:
        image_autoencoder: trained image autoencoder (frozen; its posterior mean is the ``image_latent``
            condition); None when the conditioning does not use it.
        mask_autoencoder: trained mask VAE (frozen; a posterior sample is the diffusion target).
        scaling: latent scale factors; set before the first iteration (see ``LatentScaleHandler``).
        num_train_timesteps: number of DDPM timesteps to draw from.
        image_key: batch key of the images.
        mask_key: batch key of the (drawn rater) masks.
        conditioning: one of :data:`medseglatdiff.networks.conditioning.CONDITIONINGS`.
        prediction_type: ``"epsilon"``, ``"sample"`` or ``"v_prediction"``.
        scheduler: the training DDPM scheduler (needed for ``"v_prediction"`` targets).
        timestep_bias: how much more often noisy timesteps are drawn: density ``~ (t / T) ** timestep_bias``
            (0: uniform, as DDPM; 1: a linear ramp, mean ``2T/3``). Where little noise is added the noisy latent
            still shows the mask and the loss is earned without the image; a bias spends the steps where the
            image is needed.
    """

    def __init__(
        self,
        image_autoencoder: nn.Module | None,
        mask_autoencoder: nn.Module,
        scaling: LatentScaling,
        num_train_timesteps: int = 1000,
        image_key: str = "image",
        mask_key: str = "mask",
        conditioning: str = "image_latent",
        prediction_type: str = "epsilon",
        scheduler: Scheduler | None = None,
        timestep_bias: float = 0.0,
    ) -> None:
        super().__init__(num_train_timesteps=num_train_timesteps)
        if timestep_bias < 0:
            raise ValueError(f"timestep_bias must be >= 0, got {timestep_bias}")
        self.timestep_bias = float(timestep_bias)
        self.image_autoencoder = (
            image_autoencoder.eval().requires_grad_(False) if image_autoencoder is not None else None
        )
        self.mask_autoencoder = mask_autoencoder.eval().requires_grad_(False)
        self.scaling = scaling
        self.image_key = image_key
        self.mask_key = mask_key
        self.conditioning = check_conditioning(conditioning)
        self.prediction_type = check_prediction_type(prediction_type)
        if self.prediction_type == "v_prediction" and scheduler is None:
            raise ValueError("prediction_type 'v_prediction' needs the training scheduler (scheduler=...)")
        self.scheduler = scheduler
        self.latent_factor = latent_factor_of(self.mask_autoencoder)

    def get_timesteps(self, images: torch.Tensor) -> torch.Tensor:
        """One timestep per sample: uniform, or with density ``~ (t / T) ** timestep_bias``."""
        if self.timestep_bias == 0:
            return super().get_timesteps(images)
        u = torch.rand(images.shape[0], device=images.device)
        t = torch.floor(self.num_train_timesteps * u ** (1.0 / (1.0 + self.timestep_bias))).long()
        return t.clamp_(0, self.num_train_timesteps - 1)

    def get_target(self, images: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if self.prediction_type == "sample":
            return images
        if self.prediction_type == "v_prediction":
            return self.scheduler.get_velocity(images, noise, timesteps)  # type: ignore[union-attr]
        return noise

    def __call__(  # type: ignore[override]
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple, dict]:
        if not self.scaling.is_set:
            raise RuntimeError("latent scale factors are not set; attach LatentScaleHandler to the trainer")
        images = (
            torch.as_tensor(batchdata[self.image_key]).float().to(device=device, non_blocking=non_blocking, **kwargs)
        )
        masks = torch.as_tensor(batchdata[self.mask_key]).float().to(device=device, non_blocking=non_blocking, **kwargs)
        condition = image_condition(
            images, self.conditioning, self.latent_factor, self.image_autoencoder, self.scaling.image.to(images.device)
        )
        latents = encode_masks(self.mask_autoencoder, masks, self.scaling.mask.to(images.device))
        noise = self.get_noise(latents)
        timesteps = self.get_timesteps(latents)
        targets = {
            "target": self.get_target(latents, noise, timesteps),
            "latents": latents,
            "noise": noise,
            "timesteps": timesteps,
            "masks": masks,
        }
        return latents, targets, (), {"noise": noise, "timesteps": timesteps, "condition": condition, "mode": "concat"}
