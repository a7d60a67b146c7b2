"""The exported network: a normalised image patch in, an ensemble of sampled mask probabilities out.

This is the bundle's ``network_def`` (``models/model.pt`` holds its state dict, ``models/model.ts`` its
TorchScript trace). It is the trained :class:`~medseglatdiff.networks.LatentDiffusionSegmenter` (image
autoencoder, mask VAE, latent denoiser, latent scale factors) with the sampler fixed at export time:
``forward`` draws ``num_samples`` masks per image with ``num_inference_steps`` DDIM steps, so one call runs
the whole sampling loop (encode the image, denoise every sample's latent from Gaussian noise, decode,
sigmoid). Preprocessing (resampling and normalisation as ``plans.json`` says), sliding windows over whole
images and the way back to the original geometry are ``medseg predict``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from medseglatdiff.networks import (
    LatentDiffusionSegmenter,
    LatentScaling,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
    sampling_scheduler,
)


class EnsembleSampler(LatentDiffusionSegmenter):
    """``forward(images)`` -> ``(B, num_samples * K, *spatial)`` sampled probabilities in [0, 1] (K: 1, or one per
    class/region).

    The starting noise comes from torch's global generator (``torch.manual_seed`` makes a call
    reproducible, in eager mode and in the TorchScript trace alike). An instance that has not loaded
    trained weights uses latent scale factors of 1, so it still runs (``verify_net_in_out`` checks shapes
    on such an instance).

    Args:
        networks: the keyword arguments of the three network factories, as in a fold's ``model.json``:
            ``{"image_autoencoder": {...}, "mask_autoencoder": {...}, "denoiser": {...}}``.
        diffusion: the noise schedule (``num_train_timesteps``, ``beta_start``, ``beta_end``, ``schedule``).
        num_samples: masks drawn per image (the output's channels).
        num_inference_steps: DDIM steps per sample.
        max_batch: largest number of latents denoised at once (default: all ``B * num_samples``).
        conditioning: what the denoiser sees of the image (``model.json``'s ``conditioning``).
    """

    def __init__(
        self,
        networks: Mapping[str, Mapping[str, Any]],
        diffusion: Mapping[str, Any],
        num_samples: int = 5,
        num_inference_steps: int = 50,
        max_batch: int | None = None,
        conditioning: str = "image_latent",
    ) -> None:
        super().__init__(
            image_autoencoder(**networks["image_autoencoder"]),
            mask_autoencoder(**networks["mask_autoencoder"]),
            latent_denoiser(**networks["denoiser"]),
            LatentScaling(image=1.0, mask=1.0),
            conditioning=conditioning,
        )
        if int(num_samples) < 1 or int(num_inference_steps) < 1:
            raise ValueError(
                f"num_samples ({num_samples}) and num_inference_steps ({num_inference_steps}) must be at least 1"
            )
        self.num_samples = int(num_samples)
        self.num_inference_steps = int(num_inference_steps)
        self.max_batch = max_batch
        self.scheduler = sampling_scheduler(num_inference_steps=self.num_inference_steps, **dict(diffusion))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Sample ``num_samples`` masks for each image of ``images`` ``(B, C, *spatial)`` (normalised as planned);
        with K > 1 classes/regions the channels are sample-major: channel ``n * K + k`` is sample n's channel k."""
        samples = self.sample(images, self.scheduler, num_samples=self.num_samples, max_batch=self.max_batch)
        return samples.flatten(1, 2)
