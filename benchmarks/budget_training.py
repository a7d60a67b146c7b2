"""Training under a fixed time budget, with the project's training pieces on MONAI's ``SupervisedTrainer``.

Every method trains through the same loop, so only the method differs:

- ``latent`` (this project): the three stages in order (image autoencoder, mask VAE with weighted CE, latent
  denoiser), sharing the budget by ``shares``; the networks come from ``plans.json`` through
  :func:`medseglatdiff.training.training_plan`, the losses from :mod:`medseglatdiff.losses`, the stage-3 batch
  preparation and latent scaling from :mod:`medseglatdiff.engines`, all built from ``configs/train.json``'s
  definitions (:func:`latent_parser`);
- ``pixel``: the pixel-space conditional diffusion baseline (:mod:`benchmarks.baselines`);
- ``unet``: the deterministic nnU-Net-like ``DynUNet`` with Dice + cross-entropy.

:class:`TimeBudget` replaces epochs: the learning rate decays polynomially (power 0.9, as the project's
``PolynomialLR`` per epoch) over the budget, and the trainer stops when the budget is spent. ``clock="wall"``
counts wall-clock seconds (the issue's definition, right for a GPU); ``clock="process"`` counts this process's
CPU seconds, which a shared CPU does not distort (data loading runs in the process, ``num_workers=0``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from monai.engines import SupervisedTrainer
from monai.inferers import DiffusionInferer, Inferer, SimpleInferer
from monai.losses import DiceCELoss
from torch import nn
from tqdm import tqdm

from benchmarks.baselines import PixelDiffusionPrepareBatch, PixelDiffusionSegmenter, deterministic_unet, pixel_denoiser
from medseglatdiff.engines import KeyPrepareBatch, LatentScaleHandler
from medseglatdiff.engines.early_stopping import AutoencoderStopper
from medseglatdiff.engines.optimisation import GradientClipping
from medseglatdiff.engines.weight_average import WeightAverage
from medseglatdiff.networks import (
    LatentDiffusionSegmenter,
    noise_scheduler,
)
from medseglatdiff.networks.conditioning import uses_image_latent
from medseglatdiff.planning.recipes import RECIPES
from medseglatdiff.training import build_parser


class TimeBudget:
    """Ignite handler: polynomial learning-rate decay over ``seconds``, then ``engine.terminate()``.

    Args:
        seconds: the budget.
        optimizer: its learning rates decay as ``lr0 * (1 - spent / seconds) ** power``.
        clock: ``"wall"`` (``time.perf_counter``) or ``"process"`` (``time.process_time``: this process's CPU time).
        power: decay power.
        desc: progress bar label.
    """

    def __init__(
        self,
        seconds: float,
        optimizer: torch.optim.Optimizer,
        clock: str = "wall",
        power: float = 0.9,
        desc: str = "",
        warmup: float = 0.0,
    ) -> None:
        if clock not in ("wall", "process"):
            raise ValueError(f"clock must be 'wall' or 'process', got {clock!r}")
        self.seconds = float(seconds)
        self.optimizer = optimizer
        self.power = power
        self.desc = desc
        self.warmup = float(warmup)
        self._clock = time.perf_counter if clock == "wall" else time.process_time
        self._base = [group["lr"] for group in optimizer.param_groups]
        self._start = self._wall_start = 0.0
        self._bar: tqdm | None = None

    def start(self) -> None:
        self._start = self._clock()
        self._wall_start = time.perf_counter()
        self._bar = tqdm(total=round(self.seconds), desc=self.desc, unit="s", leave=False)

    @property
    def spent(self) -> float:
        return self._clock() - self._start

    @property
    def wall_seconds(self) -> float:
        return time.perf_counter() - self._wall_start

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED, self._decay)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._check)
        engine.add_event_handler(Events.COMPLETED, self._close)

    def _decay(self, engine: Engine) -> None:
        progress = self.spent / self.seconds
        factor = max(1.0 - progress, 0.0) ** self.power
        if self.warmup > 0 and progress < self.warmup:
            factor *= max(progress / self.warmup, 0.01)
        for group, base in zip(self.optimizer.param_groups, self._base):
            group["lr"] = base * factor

    def _check(self, engine: Engine) -> None:
        spent = self.spent
        if self._bar is not None:
            self._bar.n = min(round(spent), self._bar.total)
            self._bar.refresh()
        if spent >= self.seconds:
            engine.terminate()

    def _close(self, engine: Engine) -> None:
        if self._bar is not None:
            self._bar.close()


class LossRecorder:
    """Keeps every iteration's loss (for the first/last means in the results)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: self.losses.append(float(e.state.output["loss"].detach()))
        )

    def summary(self, window: int = 20) -> dict[str, float]:
        if not self.losses:
            return {}
        return {
            "loss_first": round(sum(self.losses[:window]) / len(self.losses[:window]), 5),
            "loss_last": round(sum(self.losses[-window:]) / len(self.losses[-window:]), 5),
        }


def train_for(
    network: nn.Module,
    loader: Any,
    loss_function: nn.Module,
    prepare_batch: Any,
    inferer: Inferer,
    device: torch.device,
    seconds: float,
    lr: float = 1e-3,
    clock: str = "wall",
    amp: bool = False,
    handlers: Sequence[Any] = (),
    desc: str = "",
    warmup: float = 0.0,
) -> dict[str, Any]:
    """Train ``network`` with AdamW on MONAI's ``SupervisedTrainer`` until ``seconds`` are spent; returns statistics."""
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=lr)
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=10**6,
        train_data_loader=loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss_function,
        prepare_batch=prepare_batch,
        inferer=inferer,
        amp=amp and device.type == "cuda",
        decollate=False,
    )
    budget = TimeBudget(seconds, optimizer, clock, desc=desc, warmup=warmup)
    recorder = LossRecorder()
    for handler in (*handlers, budget, recorder):
        handler.attach(trainer)
    network.train()
    budget.start()
    trainer.run()
    network.eval()
    return {
        "iterations": int(trainer.state.iteration),
        "images": int(trainer.state.iteration) * int(loader.batch_size),
        "seconds": round(budget.spent, 2),
        "wall_seconds": round(budget.wall_seconds, 2),
        **recorder.summary(),
        **({"stop_reason": trainer.state.stop_reason} if getattr(trainer.state, "stop_reason", None) else {}),
    }


@dataclass(frozen=True)
class LatentVariant:
    """One configuration of the latent method's denoiser training (the levers of the accuracy work).

    Args:
        prediction_type: what the denoiser predicts: ``"epsilon"``, ``"sample"`` or ``"v_prediction"``.
        conditioning: what it sees of the image (:mod:`medseglatdiff.networks.conditioning`).
        mask_loss_weight: weight of the loss on the decoded mask estimate (0: none).
        mask_loss_timesteps: its timestep weighting, ``"uniform"`` or ``"signal"``.
        shares: budget shares of image autoencoder, mask VAE and denoiser (the image autoencoder's share is
            given to the denoiser when the conditioning does not use it).
        denoiser_width: multiplier of the planned denoiser widths.
        ema_decay: decay of an exponential moving average of the denoiser's weights used for evaluation (None: off).
        warmup: share of the denoiser's budget with a linear learning-rate warm-up.
        grad_clip: gradient norm clipping (None: off).
        timestep_bias: training timesteps drawn with density ``~ (t / T) ** timestep_bias`` (0: uniform).
        image_encoder: the denoiser's trainable image encoder (``image_pixels`` conditionings only;
            :mod:`medseglatdiff.networks.image_encoder`): False for none, True for the plan's widths.
        image_encoder_channels: other widths for it (empty: the plan's).
    """

    prediction_type: str = "epsilon"
    conditioning: str = "image_latent"
    mask_loss_weight: float = 0.0
    mask_loss_timesteps: str = "uniform"
    shares: tuple[float, float, float] = (0.25, 0.25, 0.5)
    denoiser_width: float = 1.0
    ema_decay: float | None = None
    warmup: float = 0.0
    grad_clip: float | None = None
    mask_network: tuple[tuple[str, Any], ...] = ()
    mask_stop_target: float | None = None
    timestep_bias: float = 0.0
    image_encoder: bool = False
    image_encoder_channels: tuple[int, ...] = ()

    def mask_network_overrides(self) -> dict[str, Any]:
        return dict(self.mask_network)


# the planner's mask VAE rule since this work (base width 16, one block, no attention), for plans made before it;
# ``base_width`` rescales the plan's widths, so the number of levels (the latent factor) stays the plan's
LIGHT_MASK_VAE = (
    ("base_width", 16),
    ("num_res_blocks", 1),
    ("with_encoder_nonlocal_attn", False),
    ("with_decoder_nonlocal_attn", False),
)

MASK_STOP_TARGET = 0.95  # configs/train.json's mask_autoencoder#stop_target


def variant_of_recipe(name: str, shares: tuple[float, float, float] = (0.25, 0.25, 0.5)) -> LatentVariant:
    """The benchmark variant of a named recipe of :mod:`medseglatdiff.planning.recipes` (networks from the plan)."""
    recipe = RECIPES[name]
    if not uses_image_latent(recipe.conditioning):
        shares = (0.0, shares[1], shares[2] + shares[0])
    return LatentVariant(
        prediction_type=recipe.prediction_type,
        conditioning=recipe.conditioning,
        mask_loss_weight=recipe.mask_loss_weight,
        mask_loss_timesteps=recipe.mask_loss_timesteps,
        shares=shares,
        ema_decay=recipe.ema_decay or None,
        warmup=recipe.warmup_fraction,
        grad_clip=recipe.grad_clip or None,
        mask_stop_target=MASK_STOP_TARGET,
        image_encoder=recipe.image_encoder,
    )


VARIANTS = {
    "published": variant_of_recipe("published"),
    "default": variant_of_recipe("default"),
    "default_wide": replace(variant_of_recipe("default"), denoiser_width=2.0),
    "default_bias1": replace(variant_of_recipe("default"), timestep_bias=1.0),
    "default_bias3": replace(variant_of_recipe("default"), timestep_bias=3.0),
    # the default without its image encoder (the default recipe before the encoder), and with a narrower one
    "default_no_encoder": replace(variant_of_recipe("default"), image_encoder=False),
    "default_encoder16": replace(variant_of_recipe("default"), image_encoder_channels=(16, 32, 64)),
    # the mask VAE trained on to a reconstruction Dice of 0.98 (the default stops at 0.95)
    "default_vae98": replace(variant_of_recipe("default"), mask_stop_target=0.98),
    # a mask VAE of two levels: latent factor 2 instead of the plan's 4 (a latent grid twice as fine, same widths)
    "default_factor2": replace(
        variant_of_recipe("default"), mask_network=(("channels", (16, 32)), ("attention_levels", (False, False)))
    ),
    "sample": LatentVariant(prediction_type="sample"),
    "v": LatentVariant(prediction_type="v_prediction"),
    "pixels_eps": LatentVariant(conditioning="image_pixels", shares=(0.0, 0.25, 0.75)),
    "pixels_sample": LatentVariant(prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.25, 0.75)),
    "pixels_sample_mask": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.25, 0.75), mask_loss_weight=1.0
    ),
    "pixels_v_mask": LatentVariant(
        prediction_type="v_prediction", conditioning="image_pixels", shares=(0.0, 0.25, 0.75), mask_loss_weight=1.0
    ),
    "pixels_sample_wide": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.25, 0.75), denoiser_width=2.0
    ),
    "pixels_sample_mask_wide": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_loss_weight=1.0,
        denoiser_width=2.0,
    ),
    "both_sample_mask": LatentVariant(
        prediction_type="sample", conditioning="image_latent_and_pixels", mask_loss_weight=1.0
    ),
    "pixels_sample_mask_ema": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_loss_weight=1.0,
        ema_decay=0.999,
        warmup=0.02,
        grad_clip=1.0,
    ),
    "pixels_sample_mask_light": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_loss_weight=1.0,
        mask_network=LIGHT_MASK_VAE,
    ),
    "pixels_sample_light": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.25, 0.75), mask_network=LIGHT_MASK_VAE
    ),
    "pixels_sample_mask_light_ema": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_loss_weight=1.0,
        mask_network=LIGHT_MASK_VAE,
        ema_decay=0.999,
        warmup=0.02,
        grad_clip=1.0,
    ),
    "latent_sample_light": LatentVariant(prediction_type="sample", mask_network=LIGHT_MASK_VAE),
    "both_sample_light": LatentVariant(
        prediction_type="sample", conditioning="image_latent_and_pixels", mask_network=LIGHT_MASK_VAE
    ),
    "pixels_sample_light_ema": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_network=LIGHT_MASK_VAE,
        ema_decay=0.999,
        warmup=0.02,
        grad_clip=1.0,
    ),
    "pixels_sample_light_mask01": LatentVariant(
        prediction_type="sample",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_network=LIGHT_MASK_VAE,
        mask_loss_weight=0.1,
        mask_loss_timesteps="signal",
    ),
    "pixels_v_light": LatentVariant(
        prediction_type="v_prediction",
        conditioning="image_pixels",
        shares=(0.0, 0.25, 0.75),
        mask_network=LIGHT_MASK_VAE,
    ),
    "pixels_sample_light_vae15": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.15, 0.85), mask_network=LIGHT_MASK_VAE
    ),
    "pixels_sample_mask_vae15": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.15, 0.85), mask_loss_weight=1.0
    ),
    "pixels_sample_mask_vae40": LatentVariant(
        prediction_type="sample", conditioning="image_pixels", shares=(0.0, 0.4, 0.6), mask_loss_weight=1.0
    ),
}


def latent_parser(plan: dict[str, Any], variant: LatentVariant, device: torch.device) -> ConfigParser:
    """The training config (``configs/train.json`` and its layers) with ``variant``'s values, for ``plan``'s work
    folder: the latent method's networks, losses, schedulers and batch preparation as ``medseg train`` builds them.

    The denoiser stage's autoencoders are the config's own (trained here in place), not ``load_trained`` from disk.
    """
    settings: dict[str, Any] = {
        "device": str(device),
        "num_workers": 0,
        "denoiser#prediction_type": variant.prediction_type,
        "denoiser#conditioning": variant.conditioning,
        "denoiser#mask_loss_weight": variant.mask_loss_weight,
        "denoiser#mask_loss_timesteps": variant.mask_loss_timesteps,
        "denoiser#prepare_batch#timestep_bias": variant.timestep_bias,
        "denoiser#mask_autoencoder": "@mask_autoencoder#network",
        "denoiser#image_autoencoder": "$@image_autoencoder#network"
        " if medseglatdiff.networks.conditioning.uses_image_latent(@denoiser#conditioning) else None",
    }
    mask_args = variant.mask_network_overrides()
    if "base_width" in mask_args:  # rescale the plan's widths, keeping its number of levels (the latent factor)
        base, planned = mask_args.pop("base_width"), plan["mask_autoencoder"]["channels"]
        mask_args["channels"] = [int(c * base / planned[0]) for c in planned]
    settings.update(
        {
            f"mask_autoencoder#network_def#{key}": list(value) if isinstance(value, tuple) else value
            for key, value in mask_args.items()
        }
    )
    if variant.denoiser_width != 1.0:
        settings["denoiser#network_def#channels"] = [
            int(round(c * variant.denoiser_width)) for c in plan["denoiser"]["channels"]
        ]
    if not variant.image_encoder:
        settings["denoiser#image_encoder_channels"] = []
    elif variant.image_encoder_channels:
        settings["denoiser#image_encoder_channels"] = list(variant.image_encoder_channels)
    parser = build_parser(
        "train.json",
        settings,
        dataset_dir=str(Path(plan["data_folder"]).parent),
        configuration=plan["configuration"],
    )
    parser.parse(reset=True)
    return parser


def train_latent(
    plan: dict[str, Any],
    loader: Any,
    device: torch.device,
    seconds: float,
    shares: Sequence[float] | None = None,
    lr: float = 1e-3,
    clock: str = "wall",
    amp: bool = False,
    variant: LatentVariant | None = None,
) -> tuple[LatentDiffusionSegmenter, dict[str, Any]]:
    """The three stages of this project in order, each with its share of ``seconds``.

    The networks, losses, noise schedule, batch preparation and weight average come from the training config
    (:func:`latent_parser`); this function only replaces epochs by the time budget (:func:`train_for`).

    Args:
        plan: the output of :func:`medseglatdiff.training.training_plan` (its ``data_folder`` is ``WORK/<config>``).
        shares: budget shares (default: the variant's).
        variant: the denoiser's training configuration (default: the published method).
    """
    variant = variant or LatentVariant()
    parser = latent_parser(plan, variant, device)
    uses_latent = uses_image_latent(variant.conditioning)
    image_ae = parser.get_parsed_content("image_autoencoder#network") if uses_latent else None
    mask_ae = parser.get_parsed_content("mask_autoencoder#network")
    denoiser = parser.get_parsed_content("denoiser#network")
    shares = list(shares if shares is not None else variant.shares)
    if not uses_latent:
        shares = [0.0, shares[1], shares[2] + shares[0]]
    total = float(sum(shares))
    budgets = [seconds * s / total for s in shares]
    stats: dict[str, Any] = {"variant": asdict(variant)}
    if image_ae is not None:
        stats["image_autoencoder"] = train_for(
            image_ae,
            loader,
            parser.get_parsed_content("image_autoencoder#loss"),
            KeyPrepareBatch("image", "image"),
            SimpleInferer(),
            device,
            budgets[0],
            lr,
            clock,
            amp,
            desc="image autoencoder",
        )
        image_ae.eval().requires_grad_(False)
    else:
        stats["image_autoencoder"] = {
            "iterations": 0,
            "seconds": 0.0,
            "skipped": f"conditioning {variant.conditioning!r} does not use it",
        }
    mask_handlers = []
    if variant.mask_stop_target:  # as the training config: stop at a reconstruction Dice (here on fixed batches)
        probe = [batch for _, batch in zip(range(4), loader)]
        mask_handlers.append(AutoencoderStopper(mask_ae, probe, "reconstruction_dice", target=variant.mask_stop_target))
    stats["mask_autoencoder"] = train_for(
        mask_ae,
        loader,
        parser.get_parsed_content("mask_autoencoder#loss"),
        KeyPrepareBatch("mask", "mask"),
        SimpleInferer(),
        device,
        budgets[1],
        lr,
        clock,
        amp,
        handlers=mask_handlers,
        desc="mask VAE",
    )
    budgets[2] += max(budgets[1] - stats["mask_autoencoder"]["seconds"], 0.0)  # an early stop's savings
    mask_ae.eval().requires_grad_(False)
    scaling = parser.get_parsed_content("denoiser#scaling").to(device)
    handlers: list[Any] = [LatentScaleHandler(scaling, image_ae, mask_ae)]
    average = WeightAverage(denoiser, variant.ema_decay)
    handlers.append(average)
    if variant.grad_clip:
        handlers.append(GradientClipping(denoiser, variant.grad_clip))
    stats["denoiser"] = train_for(
        denoiser,
        loader,
        parser.get_parsed_content("denoiser#loss"),
        parser.get_parsed_content("denoiser#prepare_batch"),
        DiffusionInferer(parser.get_parsed_content("denoiser#noise_scheduler")),
        device,
        budgets[2],
        lr,
        clock,
        amp,
        handlers=handlers,
        desc="latent denoiser",
        warmup=variant.warmup,
    )
    denoiser = average.module
    stats["seconds"] = round(sum(stats[s]["seconds"] for s in ("image_autoencoder", "mask_autoencoder", "denoiser")), 2)
    stats["scaling"] = {"image": float(scaling.image), "mask": float(scaling.mask)}
    return LatentDiffusionSegmenter(
        image_ae, mask_ae, denoiser, scaling, conditioning=variant.conditioning
    ).eval(), stats


def train_pixel(
    pixel_plan: dict[str, Any],
    plan: dict[str, Any],
    loader: Any,
    device: torch.device,
    seconds: float,
    lr: float = 1e-3,
    clock: str = "wall",
    amp: bool = False,
) -> tuple[PixelDiffusionSegmenter, dict[str, Any]]:
    """The pixel-space diffusion baseline, with the project's DDPM schedule, for ``seconds``."""
    model = PixelDiffusionSegmenter(pixel_denoiser(pixel_plan, int(plan["num_channels"]))).to(device)
    diffusion = plan["diffusion"]
    ddpm = noise_scheduler(
        diffusion["num_train_timesteps"], diffusion["beta_start"], diffusion["beta_end"], diffusion["schedule"]
    )
    stats = train_for(
        model.network,
        loader,
        nn.MSELoss(),
        PixelDiffusionPrepareBatch(diffusion["num_train_timesteps"]),
        DiffusionInferer(ddpm),
        device,
        seconds,
        lr,
        clock,
        amp,
        desc="pixel-space denoiser",
    )
    return model.eval(), stats


def train_unet(
    plan: dict[str, Any],
    patch_size: Sequence[int],
    loader: Any,
    device: torch.device,
    seconds: float,
    lr: float = 1e-3,
    clock: str = "wall",
    amp: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """The deterministic nnU-Net-like ``DynUNet`` (Dice + cross-entropy on the sigmoid) for ``seconds``."""
    network = deterministic_unet(int(plan["num_channels"]), patch_size).to(device)
    stats = train_for(
        network,
        loader,
        DiceCELoss(sigmoid=True),
        KeyPrepareBatch("image", "mask"),
        SimpleInferer(),
        device,
        seconds,
        lr,
        clock,
        amp,
        desc="deterministic UNet",
    )
    return network.eval(), stats
