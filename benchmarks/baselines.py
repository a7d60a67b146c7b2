"""The two baselines every benchmark compares against, defined once.

**Pixel-space conditional diffusion** (:class:`PixelDiffusionSegmenter`), in the style of MedSegDiff and MONAI's
"Diffusion Models for Implicit Image Segmentation Ensembles" tutorial (Wolleb et al., arXiv 2112.03145): a MONAI
``DiffusionModelUNet`` denoises the full-resolution mask (scaled to [-1, 1]) with the image concatenated on
channels. It is sized by **this project's own denoiser rules** applied at full resolution (latent factor 1):
levels from the image edge (bottleneck >= 4 px, 2-4 levels), attention at levels with <= 256 positions,
32 channels per head, 2 residual blocks, and the widest base of (128, 64, 32) that trains 16 samples per batch
in the memory budget. So both methods get networks of one family, chosen by one rule set, and the comparison
isolates where the diffusion runs. It uses the project's DDPM training schedule and DDIM sampler
(:func:`medseglatdiff.networks.noise_scheduler`, :func:`~medseglatdiff.networks.sampling_scheduler`).

**Deterministic nnU-Net-like UNet** (:func:`deterministic_unet`): MONAI ``DynUNet`` with nnU-Net's 2D topology
rules (3x3 kernels, stride-2 downsampling while an axis keeps >= 8 px, at most 6 downsamplings, 32 filters doubling
per stage up to 512, instance norm, leaky ReLU), trained with Dice + cross-entropy; its sigmoid output is one
probability map (a "single-sample ensemble").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines import DiffusionPrepareBatch
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet, DynUNet
from monai.networks.schedulers import Scheduler
from torch import nn

from medseglatdiff.networks import latent_denoiser
from medseglatdiff.planning.memory import denoiser_memory, shape_tuple
from medseglatdiff.planning.planner import Planner


def pixel_denoiser_plan(
    patch_size: Sequence[int],
    num_channels: int,
    memory_gb: float = 24.0,
    num_samples: int = 1000,
    max_width: int | None = None,
    base_width: int | None = None,
    planner_class: type[Planner] = Planner,
) -> dict[str, Any]:
    """The project's denoiser rules at full resolution: ``channels``, ``attention_levels``, heads, batch size.

    Args:
        patch_size: the image size (the pixel-space "latent" grid).
        num_channels: image channels (the input is 1 mask channel + these).
        memory_gb: the memory budget the widths and batch are planned for.
        num_samples: training samples (the batch covers at most 5% of them, as the planner does).
        max_width: cap on the base width candidates (the benchmarks' CPU runs use the same cap for every method).
        base_width: use this base width instead of the memory rule (e.g. the latent denoiser's, to match widths).
        planner_class: the planner whose rules size it (the benchmarks' capped planner).
    """
    planner = planner_class({}, memory_gb)  # the rules below read no fingerprint
    dims = len(patch_size)
    grid = [int(p) for p in patch_size]
    levels = planner.determine_denoiser_levels(min(grid)).value
    attention = planner.determine_attention_levels(grid, levels).value
    res_blocks = planner.determine_num_res_blocks(dims).value
    candidates = [w for w in planner.DENOISER_WIDTHS[dims] if max_width is None or w <= max_width] or [
        planner.DENOISER_WIDTHS[dims][-1]
    ]

    def estimate(base: int):
        widths = planner.determine_widths(base, levels)
        heads = tuple(planner.determine_head_channels(widths, attention))
        return denoiser_memory(
            dims,
            1 + num_channels,
            1,
            tuple(widths),
            tuple(attention),
            res_blocks,
            heads,
            min(32, base),
            shape_tuple(grid),
        )

    width = planner.determine_width(candidates, estimate, memory_gb, planner.TARGET_BATCH["denoiser"][dims])
    if base_width is not None:
        width = width._replace(
            value=int(base_width), reason=f"base width {base_width} given (matching the latent denoiser)"
        )
    widths = planner.determine_widths(width.value, levels)
    batch = planner.determine_batch_size(estimate(width.value), memory_gb, num_samples)
    return {
        "patch_size": grid,
        "channels": widths,
        "attention_levels": list(attention),
        "num_res_blocks": res_blocks,
        "num_head_channels": [max(h, 1) for h in planner.determine_head_channels(widths, attention)],
        "batch_size": int(batch.value),
        "reasons": {"channels": width.reason, "batch_size": batch.reason},
    }


def pixel_denoiser(plan: dict[str, Any], num_channels: int) -> DiffusionModelUNet:
    """The pixel-space UNet: input = noisy mask (1 channel) ++ image (``num_channels``), output = predicted noise."""
    return latent_denoiser(
        len(plan["patch_size"]),
        1,
        num_channels,
        channels=plan["channels"],
        attention_levels=plan["attention_levels"],
        num_res_blocks=plan["num_res_blocks"],
        num_head_channels=plan["num_head_channels"],
    )


def mask_to_signal(masks: torch.Tensor) -> torch.Tensor:
    """Binary masks in {0, 1} -> the diffusion signal in {-1, 1}."""
    return masks.float() * 2.0 - 1.0


def signal_to_probability(signal: torch.Tensor) -> torch.Tensor:
    """A denoised signal -> foreground probability in [0, 1] (thresholding it at 0.5 means signal >= 0)."""
    return ((signal + 1.0) / 2.0).clamp(0.0, 1.0)


class PixelDiffusionPrepareBatch(DiffusionPrepareBatch):
    """MONAI's ``DiffusionPrepareBatch`` for the pixel-space baseline: the mask (in [-1, 1]) is diffused, the image is
    the ``"concat"`` condition; plugs into ``SupervisedTrainer(inferer=DiffusionInferer(ddpm))`` like the latent stage.

    Args:
        num_train_timesteps: number of DDPM timesteps to draw from.
        image_key: batch key of the images.
        mask_key: batch key of the (drawn rater) masks.
    """

    def __init__(self, num_train_timesteps: int = 1000, image_key: str = "image", mask_key: str = "mask") -> None:
        super().__init__(num_train_timesteps=num_train_timesteps)
        self.image_key = image_key
        self.mask_key = mask_key

    def __call__(  # type: ignore[override]
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple, dict]:
        images = (
            torch.as_tensor(batchdata[self.image_key]).float().to(device=device, non_blocking=non_blocking, **kwargs)
        )
        signal = mask_to_signal(
            torch.as_tensor(batchdata[self.mask_key]).to(device=device, non_blocking=non_blocking, **kwargs)
        )
        noise = self.get_noise(signal)
        timesteps = self.get_timesteps(signal)
        return (
            signal,
            self.get_target(signal, noise, timesteps),
            (),
            {"noise": noise, "timesteps": timesteps, "condition": images, "mode": "concat"},
        )


class PixelDiffusionSegmenter(nn.Module):
    """Conditional diffusion on full-resolution masks with the image concatenated (see the module doc).

    Args:
        network: the pixel-space ``DiffusionModelUNet`` (:func:`pixel_denoiser`).
    """

    def __init__(self, network: DiffusionModelUNet) -> None:
        super().__init__()
        self.network = network

    def training_loss(
        self, images: torch.Tensor, masks: torch.Tensor, inferer: DiffusionInferer, num_train_timesteps: int
    ) -> torch.Tensor:
        """Epsilon-prediction MSE at random timesteps (:class:`PixelDiffusionPrepareBatch` + ``DiffusionInferer``)."""
        signal, target, _, kwargs = PixelDiffusionPrepareBatch(num_train_timesteps)(
            {"image": images, "mask": masks}, images.device
        )
        prediction = inferer(inputs=signal, diffusion_model=self.network, **kwargs)
        return nn.functional.mse_loss(prediction.float(), target.float())

    @torch.no_grad()
    def sample(
        self,
        images: torch.Tensor,
        scheduler: Scheduler,
        num_samples: int = 5,
        max_batch: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``num_samples`` masks per image as probabilities ``(B, num_samples, *spatial)``; batching as the latent
        sampler."""
        repeated = images.repeat_interleave(num_samples, dim=0)
        inferer = DiffusionInferer(scheduler)
        chunk = max_batch or repeated.shape[0]
        out = []
        for start in range(0, repeated.shape[0], chunk):
            cond = repeated[start : start + chunk]
            shape = (cond.shape[0], 1, *cond.shape[2:])
            noise_device = generator.device if generator is not None else cond.device
            noise = torch.randn(shape, generator=generator, device=noise_device, dtype=cond.dtype).to(cond.device)
            signal = inferer.sample(
                noise, self.network, scheduler=scheduler, conditioning=cond, mode="concat", verbose=False
            )
            out.append(signal_to_probability(signal))
        probs = torch.cat(out, dim=0)
        return probs.reshape(images.shape[0], num_samples, *probs.shape[2:])


def dynunet_topology(
    patch_size: Sequence[int], min_edge: int = 8, max_downsamplings: int = 6
) -> tuple[list[list[int]], list[list[int]]]:
    """nnU-Net-style kernels and strides: stride 2 on every axis that stays >= ``min_edge`` px after halving."""
    size = [int(p) for p in patch_size]
    kernels, strides = [[3] * len(size)], [[1] * len(size)]
    for _ in range(max_downsamplings):
        stride = [2 if s // 2 >= min_edge else 1 for s in size]
        if not any(s == 2 for s in stride):
            break
        size = [s // st for s, st in zip(size, stride)]
        kernels.append([3] * len(size))
        strides.append(stride)
    return kernels, strides


def deterministic_unet(
    in_channels: int, patch_size: Sequence[int], base_filters: int = 32, max_filters: int = 512, min_edge: int = 8
) -> DynUNet:
    """MONAI ``DynUNet`` with nnU-Net's topology for ``patch_size``; one output logit channel."""
    kernels, strides = dynunet_topology(patch_size, min_edge=min_edge)
    filters = [min(base_filters * 2**i, max_filters) for i in range(len(kernels))]
    return DynUNet(
        spatial_dims=len(patch_size),
        in_channels=in_channels,
        out_channels=1,
        kernel_size=kernels,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=filters,
        norm_name="instance",
        act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=False,
        res_block=False,
    )
