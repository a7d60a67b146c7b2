"""Losses MONAI lacks: the weighted cross-entropy of the mask VAE and the autoencoders' KL-regularised losses."""

from medseglatdiff.losses.autoencoder import ImageAutoencoderLoss, MaskAutoencoderLoss, kl_divergence
from medseglatdiff.losses.wce import WeightedCrossEntropyLoss, weighted_cross_entropy

__all__ = [
    "ImageAutoencoderLoss",
    "MaskAutoencoderLoss",
    "WeightedCrossEntropyLoss",
    "kl_divergence",
    "weighted_cross_entropy",
]
