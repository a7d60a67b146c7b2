"""Losses MONAI lacks: the mask VAE's weighted cross-entropy, the autoencoders' KL-regularised losses, the
denoiser's loss."""

from medseglatdiff.losses.autoencoder import ImageAutoencoderLoss, MaskAutoencoderLoss, kl_divergence
from medseglatdiff.losses.denoiser import DenoiserLoss, clean_latent_estimate, soft_dice_loss
from medseglatdiff.losses.wce import WeightedCrossEntropyLoss, weighted_cross_entropy

__all__ = [
    "DenoiserLoss",
    "clean_latent_estimate",
    "soft_dice_loss",
    "ImageAutoencoderLoss",
    "MaskAutoencoderLoss",
    "WeightedCrossEntropyLoss",
    "kl_divergence",
    "weighted_cross_entropy",
]
