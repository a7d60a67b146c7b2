"""An ``Inferer`` that samples an ensemble of masks per image, for MONAI evaluators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer, sliding_window_inference
from monai.networks.schedulers import Scheduler
from torch import nn

from medseglatdiff.engines.prepare_batch import unwrap
from medseglatdiff.networks.latent_diffusion import LatentScaling, sample_masks


class LatentEnsembleInferer(Inferer):
    """``inferer(images, denoiser)`` -> ``(B, num_samples, K, *spatial)`` foreground probabilities (K channels).

    Plugs into :class:`monai.engines.SupervisedEvaluator` with the denoiser as its ``network``; the frozen
    autoencoders, the latent scaling and the (DDIM) sampler are held here. The starting noise comes from a
    generator re-seeded with ``seed`` at every call, so validation scores of successive epochs differ only
    because the model changed. With ``roi_size``, larger images are sampled window by window
    (MONAI's ``sliding_window_inference``, Gaussian-weighted overlaps); sample ``k`` of the whole image is
    then the blend of the windows' samples ``k``, so the ensemble mean and spread are exact per window.

    Args:
        image_autoencoder: trained image autoencoder.
        mask_autoencoder: trained mask VAE.
        scaling: latent scale factors (shared with the trainer, so they follow its checkpoint).
        scheduler: sampling scheduler with its timesteps set.
        num_samples: ensemble size.
        max_batch: largest number of latents denoised at once.
        seed: seed of the starting noise; None for fresh noise each call.
        roi_size: window size (the training patch size); None samples the whole input at once.
        overlap: overlap of neighbouring windows.
        conditioning: what the denoiser sees of the image (:mod:`medseglatdiff.networks.conditioning`).
    """

    def __init__(
        self,
        image_autoencoder: nn.Module | None,
        mask_autoencoder: nn.Module,
        scaling: LatentScaling,
        scheduler: Scheduler,
        num_samples: int = 5,
        max_batch: int | None = None,
        seed: int | None = 0,
        roi_size: Sequence[int] | None = None,
        overlap: float = 0.25,
        conditioning: str = "image_latent",
    ) -> None:
        super().__init__()
        self.image_autoencoder = image_autoencoder
        self.mask_autoencoder = mask_autoencoder
        self.scaling = scaling
        self.scheduler = scheduler
        self.num_samples = int(num_samples)
        self.max_batch = max_batch
        self.seed = seed
        self.roi_size = tuple(int(r) for r in roi_size) if roi_size is not None else None
        self.overlap = float(overlap)
        self.conditioning = conditioning

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        if self.image_autoencoder is not None:
            self.image_autoencoder.eval()
        self.mask_autoencoder.eval()
        denoiser = unwrap(network)

        def predictor(images: torch.Tensor) -> torch.Tensor:
            return sample_masks(  # (B, N, K, *spatial) -> (B, N * K, *spatial) for the sliding window
                self.image_autoencoder,
                self.mask_autoencoder,
                denoiser,
                self.scaling,
                images,
                self.scheduler,
                num_samples=self.num_samples,
                max_batch=self.max_batch,
                generator=generator,
                conditioning=self.conditioning,
            ).flatten(1, 2)

        if self.roi_size is None or tuple(inputs.shape[2:]) == self.roi_size:
            flat = predictor(inputs)
        else:
            flat = sliding_window_inference(inputs, self.roi_size, 1, predictor, overlap=self.overlap, mode="gaussian")
        return flat.reshape(flat.shape[0], self.num_samples, -1, *flat.shape[2:])
