"""An exponential moving average (EMA) of a network's weights, for validation and inference.

Built on :class:`torch.optim.swa_utils.AveragedModel` with the warm-up of diffusers' ``EMAModel``: the decay after
``n`` updates is ``min(decay, (1 + n) / (10 + n))``, so the average follows the weights closely early on (short CPU
budgets train only hundreds of iterations) and averages over ``~1 / (1 - decay)`` iterations later. With
``decay = 0`` there is no average and :attr:`WeightAverage.module` is the network itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim.swa_utils import AveragedModel


def warmup_ema_fn(decay: float):
    """``avg_fn`` for ``AveragedModel``: EMA with the decay ``min(decay, (1 + n) / (10 + n))``."""

    def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int) -> torch.Tensor:
        n = float(num_averaged)
        d = min(float(decay), (1.0 + n) / (10.0 + n))
        return d * averaged + (1.0 - d) * current

    return average


class WeightAverage:
    """The EMA of ``network`` (updated after every training iteration once attached), or ``network`` itself.

    Args:
        network: the trained network (not a DDP wrapper: pass the module the wrapper holds).
        decay: the EMA's largest decay; 0 (or None) disables the average.
    """

    def __init__(self, network: nn.Module, decay: float | None = 0.999) -> None:
        self.network = network
        self.decay = float(decay or 0.0)
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.averaged = (
            AveragedModel(network, avg_fn=warmup_ema_fn(self.decay), use_buffers=True) if self.decay > 0 else None
        )

    @property
    def module(self) -> nn.Module:
        """The network to validate, save as ``model.pt`` and predict with."""
        return self.averaged.module if self.averaged is not None else self.network

    def update(self, engine: Engine | None = None) -> None:
        if self.averaged is not None:
            self.averaged.update_parameters(self.network)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict() if self.averaged is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.averaged is not None and state.get("averaged") is not None:
            self.averaged.load_state_dict(state["averaged"])
