"""The latent diffusion segmenter's networks (MONAI's generative networks) and their assembly."""

from medseglatdiff.networks.factories import (
    MaskAutoencoderKL,
    autoencoder,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
    mask_probabilities,
    noise_scheduler,
    norm_groups_for,
    sampling_scheduler,
)
from medseglatdiff.networks.latent_diffusion import (
    LatentDiffusionSegmenter,
    LatentScaling,
    decode_masks,
    encode_images,
    encode_masks,
    sample_masks,
    scale_factor,
)

__all__ = [
    "LatentDiffusionSegmenter",
    "LatentScaling",
    "MaskAutoencoderKL",
    "autoencoder",
    "decode_masks",
    "encode_images",
    "encode_masks",
    "image_autoencoder",
    "latent_denoiser",
    "mask_autoencoder",
    "mask_probabilities",
    "noise_scheduler",
    "norm_groups_for",
    "sample_masks",
    "sampling_scheduler",
    "scale_factor",
]
