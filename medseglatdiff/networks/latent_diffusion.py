"""The latent diffusion segmenter assembled: latent scaling, encoding, and batched ensemble sampling.

Shapes: images ``(B, C, *spatial)``, masks ``(B, 1, *spatial)``; latents ``(B, c, *spatial / f)`` where ``f`` is
the autoencoders' downsampling factor (both must share it, so the two latents can be concatenated).
Following MONAI's latent diffusion bundles, each latent is multiplied by ``scale_factor = 1 / std`` of the
latents of a training batch, so the denoiser sees unit-variance inputs; the factors live in
:class:`LatentScaling`, a module whose buffers travel with every checkpoint.
"""

from __future__ import annotations

import torch
from monai.inferers import DiffusionInferer
from monai.networks.nets import AutoencoderKL
from monai.networks.schedulers import Scheduler
from torch import nn

from medseglatdiff.networks.conditioning import check_conditioning, image_condition, latent_factor_of, uses_image_latent
from medseglatdiff.networks.factories import mask_probabilities
from medseglatdiff.networks.image_encoder import sampling_network


def scale_factor(latents: torch.Tensor) -> float:
    """``1 / std(latents)``; 1.0 when the latents are constant (nothing to normalise)."""
    std = float(latents.detach().float().std())
    return 1.0 / std if std > 1e-8 else 1.0


class LatentScaling(nn.Module):
    """The two latent scale factors (image condition and mask), as buffers saved with the model.

    Zero means "not computed yet"; :meth:`fit` sets both from one batch of latents.
    """

    image: torch.Tensor
    mask: torch.Tensor

    def __init__(self, image: float = 0.0, mask: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("image", torch.tensor(float(image)))
        self.register_buffer("mask", torch.tensor(float(mask)))

    @property
    def is_set(self) -> bool:
        return bool(self.image > 0) and bool(self.mask > 0)

    def fit(self, image_latents: torch.Tensor | None, mask_latents: torch.Tensor) -> LatentScaling:
        """Set both factors to ``1 / std`` of the given (unscaled) latents; the image's to 1 when there are none."""
        self.image.fill_(scale_factor(image_latents) if image_latents is not None else 1.0)
        self.mask.fill_(scale_factor(mask_latents))
        return self

    def extra_repr(self) -> str:
        return f"image={float(self.image):.4g}, mask={float(self.mask):.4g}"


@torch.no_grad()
def encode_images(
    image_autoencoder: AutoencoderKL, images: torch.Tensor, scale: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """The condition: the image encoder's posterior mean, times ``scale`` (deterministic)."""
    z_mu, _ = image_autoencoder.encode(images)
    return z_mu * scale


@torch.no_grad()
def encode_masks(
    mask_autoencoder: AutoencoderKL, masks: torch.Tensor, scale: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """The diffusion target: a sample of the mask VAE's posterior, times ``scale`` (as in latent diffusion)."""
    return mask_autoencoder.encode_stage_2_inputs(masks.float()) * scale


@torch.no_grad()
def decode_masks(
    mask_autoencoder: AutoencoderKL, latents: torch.Tensor, scale: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """Foreground probabilities ``(B, K, ...)`` from scaled mask latents (the VAE decodes logits; its activation)."""
    return mask_probabilities(mask_autoencoder, mask_autoencoder.decode_stage_2_outputs(latents / scale))


@torch.no_grad()
def sample_masks(
    image_autoencoder: AutoencoderKL | None,
    mask_autoencoder: AutoencoderKL,
    denoiser: nn.Module,
    scaling: LatentScaling,
    images: torch.Tensor,
    scheduler: Scheduler,
    num_samples: int = 5,
    max_batch: int | None = None,
    generator: torch.Generator | None = None,
    conditioning: str = "image_latent",
) -> torch.Tensor:
    """Draw ``num_samples`` masks per image; returns probabilities ``(B, num_samples, K, *spatial)``.

    The N samples of all B images run as one batch of ``N * B`` latents (or chunks of ``max_batch``),
    each starting from its own Gaussian noise, denoised by ``scheduler`` (DDIM) with the condition
    (:mod:`medseglatdiff.networks.conditioning`) concatenated on channels (MONAI's ``DiffusionInferer`` in
    ``"concat"`` mode), then decoded by the mask VAE into its K foreground channels' probabilities (sigmoid, or
    softmax without the background for several classes; see :class:`~medseglatdiff.networks.MaskAutoencoderKL`).

    Args:
        image_autoencoder: its encoder's posterior mean (times ``scaling.image``) is the ``image_latent``
            condition; may be None for ``conditioning="image_pixels"``.
        mask_autoencoder: its decoder turns denoised latents (divided by ``scaling.mask``) into logits.
        denoiser: the latent denoiser (an image encoder in front of it encodes each image once).
        scaling: the latent scale factors (must be set).
        images: ``(B, C, *spatial)`` normalised images; spatial sizes divisible by the networks' factors.
        scheduler: a sampling scheduler with its timesteps set (see ``networks.sampling_scheduler``).
        num_samples: samples per image.
        max_batch: largest number of latents denoised at once (default: all).
        generator: random generator of the starting noise, for reproducible samples.
        conditioning: what the denoiser was trained to see of the image (one of ``CONDITIONINGS``).
    """
    if not scaling.is_set:
        raise RuntimeError("latent scale factors are not set; train the denoiser (or load its checkpoint) first")
    condition = image_condition(
        images, conditioning, latent_factor_of(mask_autoencoder), image_autoencoder, scaling.image.to(images.device)
    )
    batch = images.shape[0]
    mask_channels = int(denoiser.out_channels)
    denoiser, condition = sampling_network(denoiser, condition)  # a trainable image encoder runs once per image
    repeated = condition.repeat_interleave(num_samples, dim=0)  # (B*N, c, ...), image-major
    inferer = DiffusionInferer(scheduler)
    chunk = max_batch or repeated.shape[0]
    probabilities = []
    for start in range(0, repeated.shape[0], chunk):
        cond = repeated[start : start + chunk]
        shape = (cond.shape[0], mask_channels, *cond.shape[2:])
        noise_device = generator.device if generator is not None else cond.device
        noise = torch.randn(shape, generator=generator, device=noise_device, dtype=cond.dtype).to(cond.device)
        latents = inferer.sample(noise, denoiser, scheduler=scheduler, conditioning=cond, mode="concat", verbose=False)
        probabilities.append(decode_masks(mask_autoencoder, latents, scaling.mask.to(images.device)))
    probs = torch.cat(probabilities, dim=0)  # (B*N, K, *spatial)
    return probs.reshape(batch, num_samples, *probs.shape[1:])


class LatentDiffusionSegmenter(nn.Module):
    """Image autoencoder + mask VAE + latent denoiser + scaling: everything needed to sample masks.

    Args:
        image_autoencoder: trained image autoencoder (its encoder gives the condition).
        mask_autoencoder: trained mask VAE (its decoder turns latents into mask logits).
        denoiser: latent denoiser, input channels = mask latent + condition.
        scaling: the latent scale factors (a new, unset one by default).
        conditioning: what the denoiser sees of the image (:mod:`medseglatdiff.networks.conditioning`); the
            image autoencoder may be None when the conditioning does not use it.
    """

    def __init__(
        self,
        image_autoencoder: AutoencoderKL | None,
        mask_autoencoder: AutoencoderKL,
        denoiser: nn.Module,
        scaling: LatentScaling | None = None,
        conditioning: str = "image_latent",
    ) -> None:
        super().__init__()
        self.conditioning = check_conditioning(conditioning)
        if image_autoencoder is None and uses_image_latent(conditioning):
            raise ValueError(f"conditioning {conditioning!r} needs the image autoencoder")
        self.image_autoencoder = image_autoencoder
        self.mask_autoencoder = mask_autoencoder
        self.denoiser = denoiser
        self.scaling = scaling if scaling is not None else LatentScaling()

    def sample(
        self,
        images: torch.Tensor,
        scheduler: Scheduler,
        num_samples: int = 5,
        max_batch: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """:func:`sample_masks` with this model's networks; ``(B, num_samples, K, *spatial)`` probabilities."""
        return sample_masks(
            self.image_autoencoder,
            self.mask_autoencoder,
            self.denoiser,
            self.scaling,
            images,
            scheduler,
            num_samples,
            max_batch,
            generator,
            self.conditioning,
        )
