"""Named denoiser training recipes: the published method, and the project's default chosen by measurement.

A recipe is the set of levers that decide how well the latent denoiser uses the image (see
``docs/benchmarks.md``, "Why the published denoiser ignored the image"): what it sees of the image
(``conditioning``), what it predicts (``prediction_type``), an auxiliary loss on the decoded mask estimate,
an exponential moving average of its weights, learning-rate warm-up and gradient clipping. The planner writes the
chosen recipe's values into ``plans.json`` (each with its reason); bundles and the CLI can override any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from medseglatdiff.errors import MedsegError


@dataclass(frozen=True)
class DenoiserRecipe:
    """How the latent denoiser is trained and sampled.

    Args:
        conditioning: ``"image_latent"`` | ``"image_pixels"`` | ``"image_latent_and_pixels"``
            (:mod:`medseglatdiff.networks.conditioning`).
        prediction_type: ``"epsilon"`` | ``"sample"`` | ``"v_prediction"`` (training target, DDIM, validation, export).
        mask_loss_weight: weight of the BCE + Dice loss on the decoded mask estimate (0: none).
        mask_loss_timesteps: its timestep weighting, ``"uniform"`` or ``"signal"``.
        ema_decay: decay of the exponential moving average of the denoiser's weights used for validation and
            inference (0: no average; the trained weights are used).
        warmup_fraction: share of the denoiser's iterations with a linear learning-rate warm-up.
        grad_clip: largest gradient norm (0: no clipping).
        image_encoder: whether the denoiser has a trainable convolutional image encoder from full resolution to the
            latent grid (:mod:`medseglatdiff.networks.image_encoder`; the planner sizes it in the denoiser's
            ``network.image_encoder_channels``). Needs an ``image_pixels`` conditioning.
    """

    conditioning: str
    prediction_type: str
    mask_loss_weight: float
    mask_loss_timesteps: str
    ema_decay: float
    warmup_fraction: float
    grad_clip: float
    image_encoder: bool = False

    def values(self) -> dict[str, Any]:
        return asdict(self)


# the recipe values kept in the plan's ``denoiser`` block (``prediction_type`` lives in its ``diffusion`` block; the
# image encoder decides the block's planned ``image_encoder_channels``)
DENOISER_KEYS = tuple(f.name for f in fields(DenoiserRecipe) if f.name not in ("prediction_type", "image_encoder"))

RECIPES: dict[str, DenoiserRecipe] = {
    # arXiv 2512.01292 as published: frozen image-VAE latent concatenated, epsilon prediction, plain MSE
    "published": DenoiserRecipe("image_latent", "epsilon", 0.0, "uniform", 0.0, 0.0, 0.0),
    # chosen from benchmarks.equal_budget_accuracy (docs/benchmarks.md, variant table)
    "default": DenoiserRecipe("image_pixels", "sample", 0.0, "uniform", 0.0, 0.0, 0.0, image_encoder=True),
}

REASONS = {
    "published": {
        "conditioning": "the published method: the frozen image autoencoder's latent, concatenated",
        "prediction_type": "the published method: the denoiser predicts the noise (epsilon, MSE)",
        "mask_loss_weight": "the published method: no loss on the decoded mask",
        "mask_loss_timesteps": "unused (no mask loss)",
        "ema_decay": "the published method: no weight average",
        "warmup_fraction": "no warm-up",
        "grad_clip": "no gradient clipping",
        "image_encoder": "the published method: no image encoder in the denoiser",
    },
    "default": {
        "conditioning": "the image's pixels on the latent grid (space-to-depth), encoded by the denoiser's own "
        "trainable layers: the frozen image latent lost what the segmentation needs (docs/benchmarks.md, diagnosis), "
        "and no image autoencoder has to be trained (Kvasir-SEG, 2 CPU-min: Dice 0.59 vs 0.47)",
        "prediction_type": "the denoiser predicts the clean mask latent (x0): measured far better than epsilon at "
        "equal budget (Kvasir-SEG, 2 CPU-min: Dice 0.48 vs 0.34 with the same conditioning)",
        "mask_loss_weight": "no loss on the decoded mask: BCE + Dice through the mask decoder lowered Dice in every "
        "measured setting (0.59 -> 0.35 at weight 1, 0.50 at 0.1) and costs a decoder pass per step",
        "mask_loss_timesteps": "unused (no mask loss)",
        "ema_decay": "no weight average: with EMA 0.999 + warm-up + clipping Dice fell 0.59 -> 0.55 at 2 CPU-min (the "
        "average lags short runs); set it for long GPU trainings",
        "warmup_fraction": "no warm-up (measured together with the EMA, above)",
        "grad_clip": "no gradient clipping (measured together with the EMA, above)",
        "image_encoder": "a trainable convolutional encoder from the full-resolution image to the latent grid, trained "
        "with the denoiser: without it the denoiser's only image processing below the latent resolution is its first "
        "convolution over space-to-depth pixels (Kvasir-SEG, 15 CPU-min: Dice 0.73 -> 0.80, above a DynUNet's 0.77)",
    },
}


# DDIM steps at inference, per recipe: the x0-predicting default recipe was measured at 1-50 steps after 15 CPU-minutes
# (docs/benchmarks.md): Kvasir-SEG Dice 0.68-0.70 at every count, LIDC GED 0.505 / 0.292 / 0.267 / 0.261 / 0.301 /
# 0.316 at 1 / 2 / 5 / 10 / 25 / 50 steps: 5 is the smallest count within noise of the best, at a tenth of 50's time
INFERENCE_STEPS = {
    "published": (50, "the method's 50 DDIM steps"),
    "default": (
        5,
        "5 DDIM steps: the smallest count within noise of the best measured (Kvasir-SEG Dice 0.685 at 5 vs "
        "0.685 at 50; LIDC GED 0.267 at 5, 0.261 at 10, 0.316 at 50) at a tenth of the time of 50",
    ),
}


def recipe(name: str) -> DenoiserRecipe:
    """The recipe called ``name``; a ``MedsegError`` naming the choices otherwise."""
    if name not in RECIPES:
        raise MedsegError(f"unknown denoiser recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]
