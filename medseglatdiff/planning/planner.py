"""The experiment planner: turns ``dataset_fingerprint.json`` into ``plans.json``.

:class:`Planner` assembles the ``determine_*`` rules of :class:`~medseglatdiff.planning.rules.PlanningRules` into
one block per configuration ("2d"; and "3d" plus a slice-wise "2d" for 3D datasets). Every block stores its values
and a parallel ``reasons`` object with one human-readable entry per value. To change a rule, subclass and override
one method; to change a bound, override a class attribute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medseglatdiff import __version__
from medseglatdiff.datasets.label_scheme import LabelScheme, LabelSchemeError
from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.memory import (
    MemoryEstimate,
    autoencoder_memory,
    combined,
    default_memory_gb,
    denoiser_memory,
    image_encoder_memory,
    largest_batch,
    shape_tuple,
)
from medseglatdiff.planning.recipes import DENOISER_KEYS, INFERENCE_STEPS
from medseglatdiff.planning.recipes import REASONS as RECIPE_REASONS
from medseglatdiff.planning.recipes import recipe as get_recipe
from medseglatdiff.planning.rules import Decision, PlanningRules
from medseglatdiff.preprocessing.resampling import ANISOTROPY_THRESHOLD, compute_new_shape

PLANS_VERSION = 2  # 2: inference.ensemble_size renamed num_samples (version 1 is upgraded on reading)
CONFIGURATIONS = ("2d", "3d")


def block(decisions: Mapping[str, Decision]) -> dict[str, Any]:
    """A plans.json block: the values, then ``reasons`` with one entry per value."""
    out: dict[str, Any] = {key: d.value for key, d in decisions.items()}
    out["reasons"] = {key: d.reason for key, d in decisions.items()}
    return out


def parse_configurations(value: str | Sequence[str] | None, *more: str) -> list[str] | None:
    """Configuration names from ``"2d,3d"``, ``"2d 3d"``, a list, or several arguments; None means all."""
    items: list[str] = []
    for part in ([] if value is None else [value] if isinstance(value, str) else list(value)) + list(more):
        items.extend(p for p in str(part).replace(",", " ").split() if p)
    unknown = [c for c in items if c not in CONFIGURATIONS]
    if unknown:
        raise MedsegError(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGURATIONS)}")
    return list(dict.fromkeys(items)) or None


@dataclass
class Grid:
    """The resampled grid of one configuration."""

    dims: int
    max_input: Decision
    spacing: Decision
    slice_axis: Decision
    median_shape: list[float]
    num_samples: int

    @property
    def in_plane_spacing(self) -> list[float]:
        return [s for s in self.spacing.value if s is not None]


@dataclass
class Networks:
    """Memory estimators of the three networks for one patch size (functions of the base width)."""

    patch: list[int]
    latent: list[int]
    ae_levels: int
    nonlocal_attn: bool
    image: Callable[[int], MemoryEstimate]
    mask: Callable[[int], MemoryEstimate]
    denoiser: Callable[[int], MemoryEstimate]


class Planner(PlanningRules):
    """Plans every configuration of a dataset from its fingerprint.

    Args:
        fingerprint: the content of ``dataset_fingerprint.json``.
        memory_gb: training memory budget per process (GPU memory, or RAM on CPU); None: 24 with CUDA, else 4.
        recipe: the denoiser training recipe (:mod:`medseglatdiff.planning.recipes`): ``"default"`` (chosen by
            measurement) or ``"published"`` (the method as published).
    """

    AUTOENCODER_WIDTHS = {2: (64, 32), 3: (32, 16)}
    # masks are simple: a narrow, shallow mask VAE reconstructs labels at Dice >= 0.96 in a quarter of the time of the
    # image-sized one (measured, docs/benchmarks.md), and its cheaper decoder speeds up sampling
    MASK_AUTOENCODER_WIDTHS = {2: (16,), 3: (16,)}
    MASK_AUTOENCODER_RES_BLOCKS = 1
    DENOISER_WIDTHS = {2: (128, 64, 32), 3: (64, 32, 16)}
    TARGET_BATCH = {"autoencoder": {2: 8, 3: 2}, "denoiser": {2: 16, 3: 4}}

    def __init__(self, fingerprint: Mapping[str, Any], memory_gb: float | None = None, recipe: str = "default") -> None:
        self.fingerprint = fingerprint
        self.recipe_name = recipe
        self.recipe = get_recipe(recipe)
        if memory_gb is None:
            self.memory_gb = default_memory_gb()
            why = "a CUDA GPU is present" if self.memory_gb > 4 else "no CUDA GPU: a small CPU budget"
            self.memory_reason = f"default: {self.memory_gb:g} GB ({why}); set --memory_gb to change it"
        else:
            if float(memory_gb) <= 0:
                raise MedsegError(f"--memory_gb {memory_gb}: must be a positive number of gigabytes")
            self.memory_gb = float(memory_gb)
            self.memory_reason = "given with --memory_gb"

    @property
    def spatial_dims(self) -> int:
        return int(self.fingerprint["summary"]["spatial_dims"])

    @property
    def label_scheme(self) -> LabelScheme:
        """What the labels mean (fingerprints written before label kinds: derived from ``labels``)."""
        dataset = self.fingerprint["dataset"]
        try:
            return LabelScheme.recorded_or_derived(dataset.get("label_scheme"), dataset["labels"])
        except LabelSchemeError as exc:
            raise MedsegError(f"dataset {dataset.get('root')}: {exc}; re-run `medseg extract_fingerprint`") from exc

    def determine_denoiser_recipe(self) -> dict[str, Decision]:
        """The recipe's denoiser training values (``prediction_type`` goes to the diffusion block)."""
        reasons = RECIPE_REASONS[self.recipe_name]
        values = self.recipe.values()
        return {key: Decision(values[key], f"recipe {self.recipe_name!r}: {reasons[key]}") for key in DENOISER_KEYS}

    def determine_diffusion(self) -> dict[str, Decision]:
        decisions = super().determine_diffusion()
        reason = RECIPE_REASONS[self.recipe_name]["prediction_type"]
        decisions["prediction_type"] = Decision(self.recipe.prediction_type, f"recipe {self.recipe_name!r}: {reason}")
        return decisions

    def determine_inference(self) -> dict[str, Decision]:
        decisions = super().determine_inference()
        steps, reason = INFERENCE_STEPS[self.recipe_name]
        decisions["num_inference_steps"] = Decision(steps, f"recipe {self.recipe_name!r}: {reason}")
        return decisions

    def available_configurations(self) -> list[str]:
        return ["3d", "2d"] if self.spatial_dims == 3 else ["2d"]

    # ---- rules that depend on the recipe --------------------------------------------------------------------
    def determine_image_encoder_channels(self, latent_factor: int) -> Decision:
        """Widths of the denoiser's image encoder (:meth:`determine_image_encoder_widths`), none if the recipe has
        no encoder."""
        reason = RECIPE_REASONS[self.recipe_name]["image_encoder"]
        if not self.recipe.image_encoder:
            return Decision([], f"recipe {self.recipe_name!r}: {reason}")
        widths = self.determine_image_encoder_widths(latent_factor)
        return Decision(
            widths,
            f"{len(widths)} levels (full resolution to the latent grid at factor {latent_factor}), two 3x3 "
            f"convolutions each, base width {self.IMAGE_ENCODER_BASE_WIDTH} doubling per halving; recipe "
            f"{self.recipe_name!r}: {reason}",
        )

    # ---- steps of one configuration -------------------------------------------------------------------------
    def _grid(self, name: str) -> Grid:
        cases = list(self.fingerprint["cases"].values())
        dims = 3 if name == "3d" else 2
        spacings = np.array([c["spacing"] for c in cases], dtype=np.float64)
        shapes = np.array([c["shape_after_crop"] for c in cases], dtype=np.float64)
        max_input = self.determine_max_input_size(self.memory_gb, dims)
        natural = bool(self.fingerprint["dataset"]["natural_images"])
        spacing = self.determine_target_spacing(spacings, shapes, natural, max_input.value)
        slice_axis = Decision(None, "the configuration uses the full image dimensionality")
        if dims == 2 and self.spatial_dims == 3:
            slice_axis = self.determine_slice_axis(spacing.value)
            target = [None if i == slice_axis.value else s for i, s in enumerate(spacing.value)]
            spacing = Decision(
                target, f"{spacing.reason}; the slice axis {slice_axis.value} keeps each case's spacing (null)"
            )
        in_plane = [i for i in range(self.spatial_dims) if i != slice_axis.value]
        new_shapes = np.array([compute_new_shape(c["shape_after_crop"], c["spacing"], spacing.value) for c in cases])
        median_shape = [float(v) for v in np.median(new_shapes, axis=0)[in_plane]]
        num_samples = len(cases) if slice_axis.value is None else int(new_shapes[:, slice_axis.value].sum())
        return Grid(dims, max_input, spacing, slice_axis, median_shape, num_samples)

    def _networks(
        self,
        patch: list[int],
        factor: int,
        levels: int,
        latents: tuple[int, int],
        mask_channels: int,
        dims: int,
        encoder: tuple[int, ...] = (),
    ) -> Networks:
        image_latent, mask_latent = latents
        channels = int(self.fingerprint["summary"]["num_channels"])
        res_blocks = self.determine_num_res_blocks(dims).value
        ae_levels = int(round(math.log2(factor))) + 1
        latent = [p // factor for p in patch]
        nonlocal_attn = int(np.prod(latent)) <= self.MAX_ATTENTION_TOKENS
        attention = tuple(self.determine_attention_levels(latent, levels).value)

        def autoencoder(
            in_channels: int, latent_channels: int, blocks: int, attn: bool
        ) -> Callable[[int], MemoryEstimate]:
            return lambda base: autoencoder_memory(
                dims,
                in_channels,
                in_channels,
                tuple(self.determine_widths(base, ae_levels)),
                latent_channels,
                blocks,
                min(32, base),
                attn,
                shape_tuple(patch),
            )

        def unet(base: int) -> MemoryEstimate:
            widths = self.determine_widths(base, levels)
            heads = tuple(self.determine_head_channels(widths, attention))
            network = denoiser_memory(
                dims,
                mask_latent + image_latent + (encoder[-1] if encoder else 0),
                mask_latent,
                tuple(widths),
                attention,
                res_blocks,
                heads,
                min(32, base),
                shape_tuple(latent),
            )
            if not encoder:
                return network
            return combined(network, image_encoder_memory(dims, channels, encoder, shape_tuple(patch)))

        return Networks(
            patch,
            latent,
            ae_levels,
            nonlocal_attn,
            autoencoder(channels, image_latent, res_blocks, nonlocal_attn),
            autoencoder(mask_channels, mask_latent, self.MASK_AUTOENCODER_RES_BLOCKS, False),
            unet,
        )

    def _fits(self, nets: Networks, dims: int) -> bool:
        """Whether the narrowest networks train batches of MIN_BATCH within the budget."""
        ae, unet = self.AUTOENCODER_WIDTHS[dims][-1], self.DENOISER_WIDTHS[dims][-1]
        estimates = (nets.image(ae), nets.mask(self.MASK_AUTOENCODER_WIDTHS[dims][-1]), nets.denoiser(unet))
        return all(largest_batch(e, self.memory_gb) >= self.MIN_BATCH for e in estimates)

    def _autoencoder(
        self, stage: str, nets: Networks, grid: Grid, in_channels: int, latent: Decision
    ) -> tuple[dict[str, Any], MemoryEstimate, Decision]:
        is_image = stage == "image_autoencoder"
        estimate_for = nets.image if is_image else nets.mask
        candidates = self.AUTOENCODER_WIDTHS[grid.dims] if is_image else self.MASK_AUTOENCODER_WIDTHS[grid.dims]
        width = self.determine_width(
            candidates, estimate_for, self.memory_gb, self.TARGET_BATCH["autoencoder"][grid.dims]
        )
        estimate = estimate_for(width.value)
        batch = self.determine_batch_size(estimate, self.memory_gb, grid.num_samples)
        multipliers = list(self.WIDTH_MULTIPLIERS[: nets.ae_levels])
        if stage == "image_autoencoder":
            role = "the image channels"
        else:
            role = "one binary mask channel (sigmoid)" if in_channels == 1 else "one-hot classes (softmax)"
        if is_image:
            attn_reason = (
                f"latent grid {nets.latent}: attention at the latent level only with <= "
                f"{self.MAX_ATTENTION_TOKENS} positions"
            )
            res_blocks = self.determine_num_res_blocks(grid.dims)
            nonlocal_attn = nets.nonlocal_attn
        else:
            attn_reason = "masks are simple: no attention in the mask VAE (measured: as accurate, faster)"
            res_blocks = Decision(
                self.MASK_AUTOENCODER_RES_BLOCKS,
                "one residual block per level: masks are simple (measured: "
                "reconstruction Dice >= 0.96 on Kvasir-SEG in 30 CPU-s)",
            )
            nonlocal_attn = False
        network = block(
            {
                "in_channels": Decision(in_channels, role),
                "out_channels": Decision(in_channels, "reconstructs its input"),
                "channels": Decision(
                    self.determine_widths(width.value, nets.ae_levels),
                    f"base width {width.value} x {multipliers}: {nets.ae_levels} levels downsample by "
                    f"2^(levels-1) = the latent factor; {width.reason}",
                ),
                "latent_channels": latent,
                "num_res_blocks": res_blocks,
                "attention_levels": Decision(
                    [False] * nets.ae_levels, "no attention at full-resolution levels (memory)"
                ),
                "norm_num_groups": Decision(min(32, width.value), "group-norm groups dividing every level's width"),
                "with_encoder_nonlocal_attn": Decision(nonlocal_attn, attn_reason),
                "with_decoder_nonlocal_attn": Decision(nonlocal_attn, attn_reason),
            }
        )
        return network, estimate, batch

    def _denoiser(
        self, nets: Networks, grid: Grid, levels: Decision, latents: tuple[int, int]
    ) -> tuple[dict[str, Any], MemoryEstimate, Decision]:
        image_latent, mask_latent = latents
        width = self.determine_width(
            self.DENOISER_WIDTHS[grid.dims], nets.denoiser, self.memory_gb, self.TARGET_BATCH["denoiser"][grid.dims]
        )
        estimate = nets.denoiser(width.value)
        batch = self.determine_batch_size(estimate, self.memory_gb, grid.num_samples)
        widths = self.determine_widths(width.value, levels.value)
        attention = self.determine_attention_levels(nets.latent, levels.value)
        network = block(
            {
                "in_channels": Decision(
                    mask_latent + image_latent, "noisy mask latent concatenated with the image latent"
                ),
                "out_channels": Decision(mask_latent, "the predicted noise of the mask latent"),
                "channels": Decision(
                    widths,
                    f"base width {width.value} x {list(self.WIDTH_MULTIPLIERS[: levels.value])}; "
                    f"{levels.reason}; {width.reason}",
                ),
                "attention_levels": attention,
                "num_res_blocks": self.determine_num_res_blocks(grid.dims),
                "num_head_channels": Decision(
                    self.determine_head_channels(widths, attention.value),
                    f"{self.NUM_HEAD_CHANNELS} channels per head, 0 without attention; the last "
                    "level's value also sizes the middle block's attention (MONAI always builds it)",
                ),
                "norm_num_groups": Decision(min(32, width.value), "group-norm groups dividing every level's width"),
            }
        )
        return network, estimate, batch

    def _preprocessing(self, grid: Grid) -> dict[str, Any]:
        summary = self.fingerprint["summary"]
        use_mask = self.determine_use_nonzero_mask(float(summary["median_crop_ratio"]))
        normalization = self.determine_normalization(
            self.fingerprint["dataset"]["channel_names"],
            summary["foreground_intensity"],
            summary["intensity_range"],
            use_mask.value,
        )
        return block(
            {
                "target_spacing": grid.spacing,
                "slice_axis": grid.slice_axis,
                "crop_to_nonzero": Decision(
                    True,
                    "crop to the box of the image voxels that differ from the background "
                    "value (0, or the constant filling the image border) and of all "
                    "annotated voxels (lossless for masks)",
                ),
                "normalization": normalization,
                "anisotropy_threshold": Decision(
                    ANISOTROPY_THRESHOLD,
                    "images: bicubic (2D) / trilinear (3D) with "
                    "anti-aliasing; labels: one-hot linear then arg-max, no class lost; an "
                    "axis this many times coarser than the finest uses nearest (nnU-Net)",
                ),
            }
        )

    # ---- public API -----------------------------------------------------------------------------------------
    def plan_configuration(self, name: str) -> dict[str, Any]:
        """Plan the configuration ``name`` ("2d" or "3d")."""
        if name not in self.available_configurations():
            raise MedsegError(
                f"configuration {name!r} is not available for a {self.spatial_dims}D dataset; "
                f"use {', '.join(self.available_configurations())}"
            )
        summary, dataset = self.fingerprint["summary"], self.fingerprint["dataset"]
        grid = self._grid(name)
        label_values = [int(v) for v in dataset["label_values"]]
        foreground = [v for v in label_values if v != 0]
        factor = self.determine_latent_factor(summary["objects"]["diameter_mm"]["p5"], grid.in_plane_spacing)
        desired = [min(m, grid.max_input.value) for m in grid.median_shape]
        levels = self.determine_denoiser_levels(int(min(desired) // factor.value))
        divisor = factor.value * 2 ** (levels.value - 1)
        patch = self.determine_patch_size(grid.median_shape, grid.max_input.value, divisor)
        scheme = self.label_scheme
        mask_channels = scheme.network_channels
        image_latent = self.determine_latent_channels(int(summary["num_channels"]), factor.value, grid.dims)
        mask_latent = self.determine_latent_channels(scheme.num_channels, factor.value, grid.dims)
        latents = (image_latent.value, mask_latent.value)
        size = list(patch.value)
        encoder = self.determine_image_encoder_channels(factor.value)
        widths = tuple(encoder.value)
        nets = self._networks(size, factor.value, levels.value, latents, mask_channels, grid.dims, widths)
        while not self._fits(nets, grid.dims) and max(size) > divisor:
            size[int(np.argmax(size))] -= divisor
            nets = self._networks(size, factor.value, levels.value, latents, mask_channels, grid.dims, widths)
        if size != patch.value:
            patch = Decision(
                size, f"{patch.reason}; shrunk to {size} so that batches of {self.MIN_BATCH} fit {self.memory_gb:g} GB"
            )
        image_net, image_est, image_batch = self._autoencoder(
            "image_autoencoder", nets, grid, int(summary["num_channels"]), image_latent
        )
        mask_net, mask_est, mask_batch = self._autoencoder("mask_autoencoder", nets, grid, mask_channels, mask_latent)
        unet_net, unet_est, unet_batch = self._denoiser(nets, grid, levels, latents)
        fractions = {c: summary["classes"][str(c)]["fraction_median_nonzero"] for c in foreground}
        stages = {
            "image_autoencoder": block(
                {
                    "network": Decision(
                        image_net, "MONAI AutoencoderKL arguments (spatial_dims from the configuration)"
                    ),
                    "batch_size": image_batch,
                    "kl_weight": self.determine_kl_weight(),
                }
            ),
            "mask_autoencoder": block(
                {
                    "network": Decision(
                        mask_net, "MONAI AutoencoderKL arguments (spatial_dims from the configuration)"
                    ),
                    "batch_size": mask_batch,
                    "kl_weight": self.determine_kl_weight(),
                    "output_activation": Decision(scheme.activation, scheme.describe()),
                    "class_weights": self.determine_class_weights(fractions, label_values),
                }
            ),
            "denoiser": block(
                {
                    "network": Decision(unet_net, "MONAI DiffusionModelUNet arguments on the latent grid"),
                    "image_encoder_channels": encoder,
                    "batch_size": unet_batch,
                    **self.determine_denoiser_recipe(),
                }
            ),
        }
        estimates = {
            "image_autoencoder": (image_est, image_batch.value),
            "mask_autoencoder": (mask_est, mask_batch.value),
            "denoiser": (unet_est, unet_batch.value),
        }
        memory = block(
            {
                "budget_gb": Decision(self.memory_gb, self.memory_reason),
                **{
                    f"{stage}_gib": Decision(
                        round(est.peak_gib(batch), 3),
                        f"estimated peak of a training step at batch {batch} (meta-device measurement x calibration)",
                    )
                    for stage, (est, batch) in estimates.items()
                },
            }
        )
        if grid.dims == 3:
            dims_reason = "3D dataset: volumetric plan"
        else:
            dims_reason = "2D dataset" if self.spatial_dims == 2 else "slice-wise 2D plan of a 3D dataset"
        return block(
            {
                "spatial_dims": Decision(grid.dims, dims_reason),
                "data_folder": Decision(name, "preprocessed cases are written to WORK/<data_folder>/"),
                "preprocessing": Decision(self._preprocessing(grid), "how raw cases become network inputs"),
                "median_shape": Decision(
                    [round(m, 2) for m in grid.median_shape],
                    "median case shape after cropping and resampling (in-plane for slice-wise plans)",
                ),
                "patch_size": patch,
                "latent_factor": factor,
                "latent_shape": Decision(list(nets.latent), "patch size / latent factor"),
                "mask_targets": self.determine_mask_targets(int(dataset["num_raters"])),
                **{
                    stage: Decision(content, f"the {stage.replace('_', ' ')} stage")
                    for stage, content in stages.items()
                },
                "diffusion": Decision(block(self.determine_diffusion()), "DDPM training of the latent denoiser"),
                "inference": Decision(block(self.determine_inference()), "sampling and ensembling"),
                "memory": Decision(memory, "memory budget and estimates per stage"),
            }
        )

    def plan(self, configurations: Sequence[str] | None = None) -> dict[str, Any]:
        """Plan the requested configurations (all available ones by default)."""
        names = list(configurations or self.available_configurations())
        dataset = self.fingerprint["dataset"]
        configs = {name: self.plan_configuration(name) for name in names}
        kind = (
            "natural images without physical spacing" if dataset["natural_images"] else "images with physical spacing"
        )
        return block(
            {
                "plans_version": Decision(PLANS_VERSION, "format version of this file"),
                "planner": Decision(
                    f"{type(self).__name__} (medseglatdiff {__version__})", "the planner that wrote this file"
                ),
                "dataset_name": Decision(dataset["name"], "from dataset.json"),
                "raw_dataset": Decision(dataset["root"], "the raw dataset that was fingerprinted"),
                "channel_names": Decision(dataset["channel_names"], "from dataset.json"),
                "labels": Decision(dataset["labels"], "from dataset.json"),
                "label_scheme": Decision(self.label_scheme.to_json(), self.label_scheme.describe()),
                "num_raters": Decision(int(dataset["num_raters"]), "from dataset.json (0: single reference label)"),
                "num_training": Decision(int(dataset["num_training"]), "cases fingerprinted"),
                "natural_images": Decision(
                    bool(dataset["natural_images"]), f"file ending {dataset['file_ending']}: {kind}"
                ),
                "memory_gb": Decision(self.memory_gb, self.memory_reason),
                "configurations": Decision(configs, f"{', '.join(names)} planned for a {self.spatial_dims}D dataset"),
            }
        )
