"""How long the planned epochs will take, said before a run without a time budget starts.

Each stage's network is timed on a random batch of its planned size (a copy, one warm-up step, then
``repeats`` training steps: forward, backward, AdamW; nothing of the run changes, the random number generators
included) and the step time is multiplied by the planned iterations; the denoiser's validation sampling is added
from its forward time. An estimate, not a promise: data loading, checkpoints and the mask VAE's encoding inside the
denoiser's steps are not timed (measured on LIDC crops at 128 px on 2 CPU cores: the runs took up to 2x the
estimate), and the autoencoder stages may stop early (``stop_target``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

STAGES = ("image_autoencoder", "mask_autoencoder", "denoiser")


def first_input_channels(network: torch.nn.Module) -> int:
    """Input channels of ``network``: its ``in_channels`` where it says (a denoiser behind an image encoder), else
    those of its first convolution's weight."""
    if isinstance(getattr(network, "in_channels", None), int):
        return int(network.in_channels)
    for parameter in network.parameters():
        if parameter.ndim >= 3:
            return int(parameter.shape[1])
    raise ValueError(f"{type(network).__name__} has no convolution to read its input channels from")


def time_step(network: torch.nn.Module, inputs: Sequence[torch.Tensor], repeats: int = 2) -> tuple[float, float]:
    """Seconds of one training step (forward, backward, AdamW) and of one forward pass of a copy of ``network``."""
    model = copy.deepcopy(network).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)

    def forward() -> torch.Tensor:
        output = model(*inputs)
        outputs = output if isinstance(output, (tuple, list)) else [output]
        return sum(o.float().mean() for o in outputs if isinstance(o, torch.Tensor))

    forward().backward()  # warm-up (allocations, kernel choice, optimizer state)
    optimizer.step()
    started = time.perf_counter()
    for _ in range(repeats):
        optimizer.zero_grad(set_to_none=True)
        forward().backward()
        optimizer.step()
    step = (time.perf_counter() - started) / repeats
    with torch.no_grad():
        started = time.perf_counter()
        forward()
        single = time.perf_counter() - started
    return step, single


def _iterations(parser: Any, stage: str) -> tuple[int, int]:
    epochs = int(parser.get_parsed_content(f"{stage}#max_epochs"))
    length = parser.get_parsed_content(f"{stage}#epoch_length")
    if length is None:
        length = len(parser.get_parsed_content(f"{stage}#loader"))
    return epochs, int(length)


def _inputs(parser: Any, stage: str, network: torch.nn.Module, device: torch.device) -> list[torch.Tensor]:
    batch = int(parser.get_parsed_content(f"{stage}#batch_size"))
    patch = [int(p) for p in parser.get_parsed_content("patch_size")]
    channels = first_input_channels(network)
    if stage != "denoiser":
        return [torch.randn(batch, channels, *patch, device=device)]
    factor = int(parser.get_parsed_content("denoiser#latent_factor"))
    steps = int(parser.get_parsed_content("denoiser#num_train_timesteps"))
    latent = [max(p // factor, 1) for p in patch]
    return [torch.randn(batch, channels, *latent, device=device), torch.randint(0, steps, (batch,), device=device)]


def estimate_stage_seconds(parser: Any, trained: Mapping[str, bool], repeats: int = 2) -> dict[str, dict[str, Any]]:
    """Per trained stage: ``{"epochs", "iterations", "step_s", "validation_s", "seconds"}`` of its planned epochs."""
    device = torch.device(parser.get_parsed_content("device"))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return _estimate(parser, trained, repeats, device)


def _estimate(
    parser: Any, trained: Mapping[str, bool], repeats: int, device: torch.device
) -> dict[str, dict[str, Any]]:
    estimates: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        if not trained.get(stage, True):
            continue
        network = parser.get_parsed_content(f"{stage}#network_def")
        step, single = time_step(network, _inputs(parser, stage, network, device), repeats)
        epochs, length = _iterations(parser, stage)
        validation = 0.0
        if stage == "denoiser":
            batch = int(parser.get_parsed_content("denoiser#batch_size"))
            interval = max(int(parser.get_parsed_content("denoiser#val_interval")), 1)
            cases = int(parser.get_parsed_content("num_val_cases"))
            samples = int(parser.get_parsed_content("denoiser#val_num_samples"))
            steps = int(parser.get_parsed_content("denoiser#val_num_inference_steps"))
            validation = (epochs // interval) * cases * samples * steps * single / max(batch, 1)
        estimates[stage] = {
            "epochs": epochs,
            "iterations": epochs * length,
            "step_s": step,
            "validation_s": validation,
            "seconds": epochs * length * step + validation,
        }
    return estimates
