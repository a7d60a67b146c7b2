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

    Args:
        foreground_weight: WCE weight of foreground pixels (from the plan).
        background_weight: WCE weight of background pixels.
        kl_weight: weight of :func:`kl_divergence`.
    """

    def __init__(self, foreground_weight: float = 1.0, background_weight: float = 1.0, kl_weight: float = 1e-6) -> None:
        super().__init__()
        self.foreground_weight = float(foreground_weight)
        self.background_weight = float(background_weight)
        self.kl_weight = float(kl_weight)

    def forward(self, prediction: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        logits, z_mu, z_sigma = prediction
        wce = weighted_cross_entropy(logits, target, self.foreground_weight, self.background_weight)
        return wce + self.kl_weight * kl_divergence(z_mu, z_sigma)
