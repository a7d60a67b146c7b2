"""Training under a fixed time budget, with the project's training pieces on MONAI's ``SupervisedTrainer``.

Every method trains through the same loop, so only the method differs:

- ``latent`` (this project): the three stages in order (image autoencoder, mask VAE with weighted CE, latent
  denoiser), sharing the budget by ``shares``; the networks come from ``plans.json`` through
  :func:`medseglatdiff.training.training_plan`, the losses from :mod:`medseglatdiff.losses`, the stage-3 batch
  preparation and latent scaling from :mod:`medseglatdiff.engines`, exactly as ``configs/train.json`` wires them;
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
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer
from monai.inferers import DiffusionInferer, Inferer, SimpleInferer
from monai.losses import DiceCELoss
from torch import nn
from tqdm import tqdm

from benchmarks.baselines import PixelDiffusionPrepareBatch, PixelDiffusionSegmenter, deterministic_unet, pixel_denoiser
from medseglatdiff.engines import KeyPrepareBatch, LatentDiffusionPrepareBatch, LatentScaleHandler
from medseglatdiff.losses import ImageAutoencoderLoss, MaskAutoencoderLoss
from medseglatdiff.networks import LatentDiffusionSegmenter, LatentScaling, image_autoencoder, latent_denoiser, mask_autoencoder, noise_scheduler

AUTOENCODER_KEYS = ("channels", "latent_channels", "num_res_blocks", "attention_levels", "with_encoder_nonlocal_attn", "with_decoder_nonlocal_attn")
DENOISER_KEYS = ("channels", "attention_levels", "num_res_blocks", "num_head_channels")


class TimeBudget:
    """Ignite handler: polynomial learning-rate decay over ``seconds``, then ``engine.terminate()``.

    Args:
        seconds: the budget.
        optimizer: its learning rates decay as ``lr0 * (1 - spent / seconds) ** power``.
        clock: ``"wall"`` (``time.perf_counter``) or ``"process"`` (``time.process_time``: this process's CPU time).
        power: decay power.
        desc: progress bar label.
    """

    def __init__(self, seconds: float, optimizer: torch.optim.Optimizer, clock: str = "wall", power: float = 0.9, desc: str = "") -> None:
        if clock not in ("wall", "process"):
            raise ValueError(f"clock must be 'wall' or 'process', got {clock!r}")
        self.seconds = float(seconds)
        self.optimizer = optimizer
        self.power = power
        self.desc = desc
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
        factor = max(1.0 - self.spent / self.seconds, 0.0) ** self.power
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
        engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: self.losses.append(float(e.state.output["loss"].detach())))

    def summary(self, window: int = 20) -> dict[str, float]:
        if not self.losses:
            return {}
        return {"loss_first": round(sum(self.losses[:window]) / len(self.losses[:window]), 5),
                "loss_last": round(sum(self.losses[-window:]) / len(self.losses[-window:]), 5)}


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
) -> dict[str, Any]:
    """Train ``network`` with AdamW on MONAI's ``SupervisedTrainer`` until ``seconds`` are spent; returns statistics."""
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=lr)
    trainer = SupervisedTrainer(
        device=device, max_epochs=10**6, train_data_loader=loader, network=network, optimizer=optimizer, loss_function=loss_function,
        prepare_batch=prepare_batch, inferer=inferer, amp=amp and device.type == "cuda", decollate=False,
    )
    budget = TimeBudget(seconds, optimizer, clock, desc=desc)
    recorder = LossRecorder()
    for handler in (*handlers, budget, recorder):
        handler.attach(trainer)
    network.train()
    budget.start()
    trainer.run()
    network.eval()
    return {"iterations": int(trainer.state.iteration), "images": int(trainer.state.iteration) * int(loader.batch_size),
            "seconds": round(budget.spent, 2), "wall_seconds": round(budget.wall_seconds, 2), **recorder.summary()}


def _kwargs(block: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: block[key] for key in keys}


def train_latent(
    plan: dict[str, Any],
    loader: Any,
    device: torch.device,
    seconds: float,
    shares: Sequence[float] = (0.25, 0.25, 0.5),
    lr: float = 1e-3,
    clock: str = "wall",
    amp: bool = False,
) -> tuple[LatentDiffusionSegmenter, dict[str, Any]]:
    """The three stages of this project in order, each with its share of ``seconds``.

    Args:
        plan: the output of :func:`medseglatdiff.training.training_plan` (networks and losses from ``plans.json``).
    """
    dims, channels = int(plan["spatial_dims"]), int(plan["num_channels"])
    image_ae = image_autoencoder(dims, channels, **_kwargs(plan["image_autoencoder"], AUTOENCODER_KEYS)).to(device)
    mask_ae = mask_autoencoder(dims, **_kwargs(plan["mask_autoencoder"], AUTOENCODER_KEYS)).to(device)
    denoiser = latent_denoiser(dims, mask_ae.latent_channels, image_ae.latent_channels, **_kwargs(plan["denoiser"], DENOISER_KEYS)).to(device)
    total = float(sum(shares))
    budgets = [seconds * s / total for s in shares]
    stats: dict[str, Any] = {}
    stats["image_autoencoder"] = train_for(
        image_ae, loader, ImageAutoencoderLoss(plan["image_autoencoder"]["kl_weight"]), KeyPrepareBatch("image", "image"), SimpleInferer(),
        device, budgets[0], lr, clock, amp, desc="image autoencoder")
    mask = plan["mask_autoencoder"]
    stats["mask_autoencoder"] = train_for(
        mask_ae, loader, MaskAutoencoderLoss(mask["foreground_weight"], mask["background_weight"], mask["kl_weight"]),
        KeyPrepareBatch("mask", "mask"), SimpleInferer(), device, budgets[1], lr, clock, amp, desc="mask VAE")
    image_ae.eval().requires_grad_(False)
    mask_ae.eval().requires_grad_(False)
    scaling = LatentScaling().to(device)
    diffusion = plan["diffusion"]
    ddpm = noise_scheduler(diffusion["num_train_timesteps"], diffusion["beta_start"], diffusion["beta_end"], diffusion["schedule"])
    stats["denoiser"] = train_for(
        denoiser, loader, nn.MSELoss(), LatentDiffusionPrepareBatch(image_ae, mask_ae, scaling, diffusion["num_train_timesteps"]),
        DiffusionInferer(ddpm), device, budgets[2], lr, clock, amp, handlers=[LatentScaleHandler(scaling, image_ae, mask_ae)],
        desc="latent denoiser")
    stats["seconds"] = round(sum(stats[s]["seconds"] for s in ("image_autoencoder", "mask_autoencoder", "denoiser")), 2)
    stats["scaling"] = {"image": float(scaling.image), "mask": float(scaling.mask)}
    return LatentDiffusionSegmenter(image_ae, mask_ae, denoiser, scaling).eval(), stats


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
    ddpm = noise_scheduler(diffusion["num_train_timesteps"], diffusion["beta_start"], diffusion["beta_end"], diffusion["schedule"])
    stats = train_for(model.network, loader, nn.MSELoss(), PixelDiffusionPrepareBatch(diffusion["num_train_timesteps"]),
                      DiffusionInferer(ddpm), device, seconds, lr, clock, amp, desc="pixel-space denoiser")
    return model.eval(), stats


def train_unet(
    plan: dict[str, Any], patch_size: Sequence[int], loader: Any, device: torch.device, seconds: float, lr: float = 1e-3,
    clock: str = "wall", amp: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """The deterministic nnU-Net-like ``DynUNet`` (Dice + cross-entropy on the sigmoid) for ``seconds``."""
    network = deterministic_unet(int(plan["num_channels"]), patch_size).to(device)
    stats = train_for(network, loader, DiceCELoss(sigmoid=True), KeyPrepareBatch("image", "mask"), SimpleInferer(), device, seconds,
                      lr, clock, amp, desc="deterministic UNet")
    return network.eval(), stats
