"""Ignite handlers and a schedule for the denoiser's optimisation: warm-up + decay, gradient clipping, lr logging."""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from torch import nn


class WarmupPolynomial:
    """The factor of :func:`warmup_polynomial_lr`; ``total`` may change while training (a time budget stretches it)."""

    def __init__(self, total: int, warmup_fraction: float = 0.0, power: float = 0.9) -> None:
        self.total = max(int(total), 1)
        self.warmup_fraction = float(warmup_fraction)
        self.power = float(power)

    def __call__(self, iteration: int) -> float:
        warmup = int(round(self.warmup_fraction * self.total))
        if iteration < warmup:
            return (iteration + 1) / warmup
        return max(1.0 - (iteration - warmup) / max(self.total - warmup, 1), 0.0) ** self.power


def warmup_polynomial_lr(
    optimizer: torch.optim.Optimizer, total_iterations: int, warmup_fraction: float = 0.0, power: float = 0.9
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration schedule: linear warm-up over ``warmup_fraction`` of ``total_iterations``, then polynomial decay.

    The factor at iteration ``i`` is ``(i + 1) / w`` for ``i < w`` (``w`` warm-up iterations), then
    ``(1 - (i - w) / (total - w)) ** power``; step it every iteration (``LrScheduleHandler(epoch_level=False)``).
    The scheduler's ``lr_lambdas[0].schedule`` is the :class:`WarmupPolynomial` (its ``total`` can be changed).
    """
    schedule = WarmupPolynomial(total_iterations, warmup_fraction, power)

    # a lambda, not the object itself: LambdaLR checkpoints callable objects (a pickled class, which torch.load
    # with weights_only=True refuses) but not functions
    def factor(iteration: int) -> float:
        return schedule(iteration)

    factor.schedule = schedule  # type: ignore[attr-defined]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class GradientClipping:
    """Clip the gradient norm of ``network`` to ``max_norm`` after each backward pass (0: off).

    Runs on MONAI's ``IterationEvents.BACKWARD_COMPLETED``, before the optimiser step; with AMP the gradients are
    unscaled first (``GradScaler.unscale_``), as PyTorch's AMP recipe for clipping says.
    """

    def __init__(self, network: nn.Module, max_norm: float = 1.0) -> None:
        self.network = network
        self.max_norm = float(max_norm or 0.0)

    def attach(self, engine: Engine) -> None:
        if self.max_norm > 0:
            engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        scaler = getattr(engine, "scaler", None)
        if getattr(engine, "amp", False) and scaler is not None:
            scaler.unscale_(engine.optimizer)
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.max_norm)


class LearningRateLogger:
    """Write the optimiser's learning rate to TensorBoard every ``interval`` iterations (tag ``<tag>``)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, summary_writer: Any, tag: str = "lr", interval: int = 1
    ) -> None:
        self.optimizer = optimizer
        self.writer = summary_writer
        self.tag = tag
        self.interval = max(int(interval), 1)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        self.writer.add_scalar(self.tag, float(self.optimizer.param_groups[0]["lr"]), engine.state.iteration)
