"""Training-memory estimates for the planned networks, measured by building them on PyTorch's ``meta`` device.

A network is built with ``torch.device("meta")`` (no memory, no compute) and run forward on a one-sample input
under :func:`torch.autograd.graph.saved_tensors_hooks`; the bytes of the tensors autograd keeps for the backward
pass (weights excluded) are the activation memory per sample. Weights, gradients and Adam's two moments add 16
bytes per parameter. The estimate of a training step with batch ``B`` is::

    peak = calibration * (16 * parameters + B * saved_bytes_per_sample)

and it must fit ``memory_gb`` less :data:`RESERVED_GIB` (CUDA context / interpreter, data loading).

Calibration (table in ``docs/planning.md``): the peak resident memory of real CPU training steps (forward,
backward, Adam step) measured against the uncalibrated estimate was 1.16 to 1.46 times it for MONAI
``AutoencoderKL`` (2D and 3D; backward temporaries at full resolution), hence :data:`AUTOENCODER_CALIBRATION` =
1.5, and 0.47 to 0.86 times it for ``DiffusionModelUNet`` (the count is an upper bound), hence
:data:`DENOISER_CALIBRATION` = 1.0. Measuring on ``meta`` gives the activation sizes exactly, on any machine,
in tens of milliseconds per network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

AUTOENCODER_CALIBRATION = 1.5
DENOISER_CALIBRATION = 1.0
RESERVED_GIB = 0.5
BYTES_PER_PARAMETER = 16  # fp32 weight + gradient + Adam's exp_avg and exp_avg_sq
GIB = float(2**30)


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory of one training step.

    Attributes:
        fixed_bytes: weights, gradients and optimizer state (independent of the batch size).
        per_sample_bytes: activations saved for the backward pass, per sample.
        calibration: measured peak / counted bytes for this kind of network (see the module docstring).
    """

    fixed_bytes: int
    per_sample_bytes: int
    calibration: float = 1.0

    def peak_bytes(self, batch_size: int) -> float:
        """Estimated peak bytes of a training step with ``batch_size`` samples, calibration included."""
        return self.calibration * (self.fixed_bytes + batch_size * self.per_sample_bytes)

    def peak_gib(self, batch_size: int) -> float:
        return self.peak_bytes(batch_size) / GIB


def default_memory_gb() -> float:
    """24 GB when a CUDA GPU is present (a common training GPU), else 4 GB (a small CPU machine)."""
    return 24.0 if torch.cuda.is_available() else 4.0


def usable_bytes(memory_gb: float) -> float:
    """The budget a training step may use: ``memory_gb`` less :data:`RESERVED_GIB`."""
    return max(float(memory_gb) - RESERVED_GIB, 0.0) * GIB


def _measure(
    build: Callable[[], tuple[torch.nn.Module, tuple[torch.Tensor, ...]]], calibration: float
) -> MemoryEstimate:
    with torch.device("meta"):
        model, inputs = build()
    saved: dict[int, int] = {}
    keep: list[torch.Tensor] = []
    parameters = {id(p) for p in model.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in saved and id(tensor) not in parameters:  # weights are counted in fixed_bytes
            saved[id(tensor)] = tensor.numel() * tensor.element_size()
            keep.append(tensor)  # hold a reference so ids stay unique during the pass
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(*inputs)
    params = sum(p.numel() for p in model.parameters())
    return MemoryEstimate(BYTES_PER_PARAMETER * params, sum(saved.values()), calibration)


@lru_cache(maxsize=512)
def autoencoder_memory(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: tuple[int, ...],
    latent_channels: int,
    num_res_blocks: int,
    norm_num_groups: int,
    with_nonlocal_attn: bool,
    patch_size: tuple[int, ...],
) -> MemoryEstimate:
    """Training memory of a MONAI ``AutoencoderKL`` (no attention levels) on one ``patch_size`` sample."""
    from monai.networks.nets import AutoencoderKL

    def build() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        model = AutoencoderKL(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=channels,
            latent_channels=latent_channels,
            num_res_blocks=num_res_blocks,
            attention_levels=(False,) * len(channels),
            norm_num_groups=norm_num_groups,
            with_encoder_nonlocal_attn=with_nonlocal_attn,
            with_decoder_nonlocal_attn=with_nonlocal_attn,
        )
        return model, (torch.empty(1, in_channels, *patch_size),)

    return _measure(build, AUTOENCODER_CALIBRATION)


@lru_cache(maxsize=512)
def denoiser_memory(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: tuple[int, ...],
    attention_levels: tuple[bool, ...],
    num_res_blocks: int,
    num_head_channels: tuple[int, ...],
    norm_num_groups: int,
    latent_shape: tuple[int, ...],
) -> MemoryEstimate:
    """Training memory of a MONAI ``DiffusionModelUNet`` on one latent-grid sample."""
    from monai.networks.nets import DiffusionModelUNet

    def build() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        model = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=channels,
            attention_levels=attention_levels,
            num_res_blocks=num_res_blocks,
            num_head_channels=num_head_channels,
            norm_num_groups=norm_num_groups,
        )
        return model, (torch.empty(1, in_channels, *latent_shape), torch.zeros(1, dtype=torch.long))

    return _measure(build, DENOISER_CALIBRATION)


@lru_cache(maxsize=512)
def image_encoder_memory(
    spatial_dims: int, in_channels: int, channels: tuple[int, ...], patch_size: tuple[int, ...]
) -> MemoryEstimate:
    """Training memory of the denoiser's image encoder (``medseglatdiff.networks.image_encoder.ImageEncoder``: per
    level MONAI's ``UnetBasicBlock``, the first at full resolution, then stride 2) on one ``patch_size`` image."""
    from monai.networks.blocks import UnetBasicBlock

    def build() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        act = ("leakyrelu", {"inplace": True, "negative_slope": 0.01})
        widths = [in_channels, *channels]
        blocks = [
            UnetBasicBlock(spatial_dims, widths[i], widths[i + 1], 3, 1 if i == 0 else 2, "instance", act)
            for i in range(len(channels))
        ]
        return torch.nn.Sequential(*blocks), (torch.empty(1, in_channels, *patch_size),)

    return _measure(build, AUTOENCODER_CALIBRATION)  # full-resolution convolutions, like the autoencoders


def combined(*estimates: MemoryEstimate) -> MemoryEstimate:
    """One estimate for networks trained together (their calibrated bytes added; calibration 1)."""
    return MemoryEstimate(
        int(sum(e.calibration * e.fixed_bytes for e in estimates)),
        int(sum(e.calibration * e.per_sample_bytes for e in estimates)),
        1.0,
    )


def largest_batch(estimate: MemoryEstimate, memory_gb: float) -> int:
    """How many samples fit the budget (0 when not even one does)."""
    room = usable_bytes(memory_gb) / estimate.calibration - estimate.fixed_bytes
    return max(int(room // max(estimate.per_sample_bytes, 1)), 0)


def shape_tuple(values: Sequence[int]) -> tuple[int, ...]:
    """Hashable shape for the cached estimators."""
    return tuple(int(v) for v in values)
