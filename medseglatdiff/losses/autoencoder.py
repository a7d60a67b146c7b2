"""Losses of the two autoencoders: reconstruction plus a small KL term on the latent.

Both take the output tuple of :class:`monai.networks.nets.AutoencoderKL` (``reconstruction, z_mu, z_sigma``)
as the prediction, so they plug into :class:`monai.engines.SupervisedTrainer` as its ``loss_function``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medseglatdiff.losses.wce import weighted_cross_entropy


def kl_divergence(z_mu: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over latent elements, averaged over the batch.

    The convention of MONAI's generative tutorials, where the KL weight is then about 1e-6.
    """
    dims = list(range(1, z_mu.ndim))
    kl = 0.5 * torch.sum(z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1.0, dim=dims)
    return kl.mean()


class ImageAutoencoderLoss(nn.Module):
    """Image reconstruction (L1 or MSE) + ``kl_weight`` * KL.

    Args:
        kl_weight: weight of :func:`kl_divergence`.
        reconstruction: ``"l1"`` (sharper, the default of latent diffusion autoencoders) or ``"mse"``.
    """

    def __init__(self, kl_weight: float = 1e-6, reconstruction: str = "l1") -> None:
        super().__init__()
        if reconstruction not in ("l1", "mse"):
            raise ValueError(f"reconstruction must be 'l1' or 'mse', got {reconstruction!r}")
        self.kl_weight = float(kl_weight)
        self.reconstruction = reconstruction

    def forward(self, prediction: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        reconstruction, z_mu, z_sigma = prediction
        recon = F.l1_loss(reconstruction, target) if self.reconstruction == "l1" else F.mse_loss(reconstruction, target)
        return recon + self.kl_weight * kl_divergence(z_mu, z_sigma)


class MaskAutoencoderLoss(nn.Module):
    """The mask VAE's loss: weighted cross-entropy on the decoder's logits + ``kl_weight`` * KL.

    ``sigmoid`` (one class, or regions): weighted BCE per channel, each channel with its own foreground weight.
    ``softmax`` (several classes; the target one-hot with the background first): weighted categorical CE with the
    weights ``[background_weight, *foreground_weight]``. Ignored voxels (-1 in the target) add nothing; the mean
    is over the voxels that count.

    Args:
        foreground_weight: WCE weight of foreground voxels (from the plan): one value, or one per channel.
        background_weight: WCE weight of background voxels.
        kl_weight: weight of :func:`kl_divergence`.
        activation: the decoder's output activation, ``"sigmoid"`` or ``"softmax"``.
    """

    def __init__(
        self,
        foreground_weight: float | Sequence[float] = 1.0,
        background_weight: float = 1.0,
        kl_weight: float = 1e-6,
        activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(f"activation {activation!r}; use 'sigmoid' or 'softmax'")
        weights = [float(foreground_weight)] if isinstance(foreground_weight, (int, float)) else list(foreground_weight)
        if min(weights + [float(background_weight)]) <= 0:
            raise ValueError(f"class weights must be positive, got fg={weights}, bg={background_weight}")
        self.foreground_weight = [float(w) for w in weights]
        self.background_weight = float(background_weight)
        self.kl_weight = float(kl_weight)
        self.activation = activation

    def reconstruction(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted cross-entropy term alone."""
        valid = target >= 0
        target = target.clamp(min=0).to(logits.dtype)
        shape = (1, -1) + (1,) * (logits.ndim - 2)
        if self.activation == "softmax":
            weights = torch.tensor([self.background_weight, *self.foreground_weight], dtype=logits.dtype)
            if weights.numel() == 2 and logits.shape[1] > 2:  # one weight given for every class
                weights = torch.cat([weights[:1], weights[1:].expand(logits.shape[1] - 1)])
            weights = weights.to(logits.device).view(shape)
            per_voxel = -(weights * target * F.log_softmax(logits, dim=1)).sum(1)
            counted = valid[:, 0]
            return (per_voxel * counted).sum() / counted.sum().clamp(min=1)
        if len(self.foreground_weight) == 1:
            loss = weighted_cross_entropy(logits, target, self.foreground_weight[0], self.background_weight, "none")
        else:
            fg = torch.tensor(self.foreground_weight, dtype=logits.dtype, device=logits.device).view(shape)
            loss = self.background_weight * F.binary_cross_entropy_with_logits(
                logits, target, pos_weight=fg / self.background_weight, reduction="none"
            )
        if bool(valid.all()):
            return loss.mean()
        return (loss * valid).sum() / valid.sum().clamp(min=1)

    def forward(self, prediction: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        logits, z_mu, z_sigma = prediction
        return self.reconstruction(logits, target) + self.kl_weight * kl_divergence(z_mu, z_sigma)
