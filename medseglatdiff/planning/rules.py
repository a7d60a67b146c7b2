"""The planner's rules: small overridable ``determine_*`` methods, each a pure function of its arguments.

Every method returns a :class:`Decision` (value and a human-readable reason); the reasons go into ``plans.json``
beside the values. Bounds are class attributes, so a subclass can change one rule or one bound without copying
the others. :class:`~medseglatdiff.planning.planner.Planner` assembles the rules into configurations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from medseglatdiff.planning.memory import GIB, MemoryEstimate, largest_batch

RGB_NAMES = frozenset({"r", "g", "b", "red", "green", "blue", "rgb"})
NO_NORM_NAMES = frozenset({"nonorm", "none", "no_norm"})


class Decision(NamedTuple):
    """A planned value and why it was chosen."""

    value: Any
    reason: str


def _fmt(values: Sequence[float] | float, digits: int = 3) -> str:
    if isinstance(values, (int, float, np.floating, np.integer)):
        return f"{float(values):.{digits}g}"
    return "x".join("-" if v is None else f"{float(v):.{digits}g}" for v in values)


def floor_power_of_two(value: float) -> int:
    """Largest power of two <= ``value`` (1 for values below 2)."""
    return 1 if value < 2 else 2 ** int(math.floor(math.log2(value)))


class PlanningRules:
    """The ``determine_*`` rules with their bounds (see ``docs/planning.md`` for each rule)."""

    GPU_MEMORY_GB = 16.0
    MAX_INPUT_SIZE = {2: (256, 128), 3: (128, 64)}  # (with >= GPU_MEMORY_GB, below it)
    ANISOTROPY = 3.0
    MIN_LATENT_FACTOR = 2
    MAX_LATENT_FACTOR = 8
    MIN_LATENT_OBJECT_PIXELS = 2.0
    LATENT_COMPRESSION = 48
    MAX_LATENT_CHANNELS = 8
    MIN_FOREGROUND_WEIGHT = 1.0
    MAX_FOREGROUND_WEIGHT = 50.0
    NONZERO_MASK_CROP_RATIO = 0.75
    MIN_BOTTLENECK = 4
    MIN_DENOISER_LEVELS = 2
    MAX_DENOISER_LEVELS = 4
    WIDTH_MULTIPLIERS = (1, 2, 2, 4)
    MAX_ATTENTION_TOKENS = 256
    NUM_HEAD_CHANNELS = 32
    # the image encoder in front of the denoiser (recipes with image_encoder): base width at full resolution, doubled
    # per halving (nnU-Net's 32; against 16 in the screening loop on Kvasir-SEG, docs/benchmarks.md: equal at 280
    # CPU-s of denoiser training, 0.799 vs 0.788 at 880)
    IMAGE_ENCODER_BASE_WIDTH = 32
    IMAGE_ENCODER_MAX_WIDTH = 256
    MIN_BATCH = 2
    MAX_BATCH = 32
    BATCH_DATASET_FRACTION = 0.05
    KL_WEIGHT = 1e-6
    NUM_TRAIN_TIMESTEPS = 1000
    BETA_START = 1e-4
    BETA_END = 2e-2
    DDIM_STEPS = 50
    NUM_SAMPLES = 5
    THRESHOLD = 0.5

    # ---- geometry -------------------------------------------------------------------------------------------
    def determine_max_input_size(self, memory_gb: float, spatial_dims: int) -> Decision:
        """Largest patch edge: 256 (2D) / 128 (3D) with a GPU-sized budget, 128 / 64 below it."""
        big, small = self.MAX_INPUT_SIZE[spatial_dims]
        if memory_gb >= self.GPU_MEMORY_GB:
            return Decision(
                big,
                f"memory budget {memory_gb:g} GB >= {self.GPU_MEMORY_GB:g} GB: inputs up to {big} px "
                "per axis (the method's 256 px for 2D)",
            )
        return Decision(
            small,
            f"memory budget {memory_gb:g} GB < {self.GPU_MEMORY_GB:g} GB (a CPU-sized run): inputs up "
            f"to {small} px per axis",
        )

    def determine_target_spacing(
        self, spacings: np.ndarray, shapes: np.ndarray, natural: bool, max_input_size: int
    ) -> Decision:
        """Natural images: scale the median long side to ``max_input_size``; medical: nnU-Net's median rule.

        Args:
            spacings: (cases, dims) voxel spacings.
            shapes: (cases, dims) shapes after cropping to non-zero.
            natural: PNG/JPEG-like images with unit spacing and no physical scale.
            max_input_size: the largest input edge planned.
        """
        spacings = np.asarray(spacings, dtype=np.float64)
        shapes = np.asarray(shapes, dtype=np.float64)
        if natural:
            long_side = float(np.median(shapes.max(axis=1)))
            scale = max(1.0, long_side / max_input_size)
            spacing = [round(scale * float(s), 6) for s in np.median(spacings, axis=0)]
            return Decision(
                spacing,
                f"natural images: median long side {long_side:g} px scaled to at most "
                f"{max_input_size} px (factor {scale:.3g}, never upsampled)",
            )
        target = np.median(spacings, axis=0)
        reason = f"median spacing of the cases ({_fmt(target)})"
        if target.size == 3:
            worst = int(np.argmax(target))
            others = [i for i in range(3) if i != worst]
            median_shape = np.median(shapes, axis=0)
            coarse = target[worst] > self.ANISOTROPY * max(target[others])
            few_slices = median_shape[worst] * self.ANISOTROPY < min(median_shape[others])
            if coarse and few_slices:
                low = float(np.percentile(spacings[:, worst], 10))
                target[worst] = max(low, float(max(target[others])) + 1e-5)
                reason += (
                    f"; anisotropic: axis {worst} uses the 10th percentile spacing {target[worst]:.3g} (nnU-Net's rule)"
                )
        return Decision([round(float(t), 6) for t in target], reason)

    def determine_slice_axis(self, target_spacing: Sequence[float]) -> Decision:
        """The axis a slice-wise 2D plan of a 3D dataset slices along: the coarsest (ties: the last, z)."""
        spacing = np.asarray(target_spacing, dtype=np.float64)
        axis = int(len(spacing) - 1 - np.argmax(spacing[::-1]))
        return Decision(
            axis, f"2D slices are taken across axis {axis}, the coarsest spacing ({_fmt(spacing)}); its spacing is kept"
        )

    # ---- intensities ------------------------------------------------------------------------------------------
    def determine_use_nonzero_mask(self, median_crop_ratio: float) -> Decision:
        """z-score inside the non-zero mask when cropping to non-zero removes a quarter of the image or more."""
        use = median_crop_ratio < self.NONZERO_MASK_CROP_RATIO
        verdict = "inside the non-zero (non-background) mask" if use else "over the whole image"
        return Decision(use, f"crop to non-zero keeps {median_crop_ratio:.0%} of the median image: z-score {verdict}")

    def determine_normalization(
        self,
        channel_names: Mapping[str, str],
        foreground_intensity: Sequence[Mapping[str, Any]],
        intensity_range: Sequence[Sequence[float]],
        use_nonzero_mask: bool,
    ) -> Decision:
        """CT: clip to foreground p0.5/p99.5 then z-score; 8-bit R/G/B: divide by 255; "noNorm": none; else z-score."""
        entries, reasons = [], []
        for index, (key, name) in enumerate(sorted(channel_names.items(), key=lambda kv: int(kv[0]))):
            lowered = str(name).strip().lower()
            stats = foreground_intensity[index]
            lo, hi = intensity_range[index]
            if lowered.startswith("ct") and stats.get("mean") is not None:
                params = {
                    "clip_low": stats["percentile_00_5"],
                    "clip_high": stats["percentile_99_5"],
                    "mean": stats["mean"],
                    "std": stats["std"],
                }
                entries.append({"channel": index, "name": name, "scheme": "ct", "params": params})
                reasons.append(
                    f"{index} '{name}': CT, clip to the foreground's [{_fmt(params['clip_low'])}, "
                    f"{_fmt(params['clip_high'])}] (p0.5, p99.5) then z-score with its mean and std"
                )
            elif lowered in RGB_NAMES and lo >= 0 and hi <= 255:
                entries.append({"channel": index, "name": name, "scheme": "unit_range", "params": {"max_value": 255.0}})
                reasons.append(f"{index} '{name}': 8-bit colour, divided by 255 to [0, 1]")
            elif lowered in NO_NORM_NAMES:
                entries.append({"channel": index, "name": name, "scheme": "none", "params": {}})
                reasons.append(f"{index} '{name}': named noNorm, kept as is")
            else:
                params = {"use_nonzero_mask": bool(use_nonzero_mask)}
                entries.append({"channel": index, "name": name, "scheme": "zscore", "params": params})
                where = " inside the non-zero mask" if use_nonzero_mask else ""
                reasons.append(f"{index} '{name}': per-case z-score{where}")
        return Decision(entries, "; ".join(reasons))

    # ---- latent space -----------------------------------------------------------------------------------------
    def determine_latent_factor(self, object_diameter_mm: float | None, target_spacing: Sequence[float]) -> Decision:
        """Largest power of two in [MIN, MAX] that keeps the 5th-percentile object >= 2 latent pixels across."""
        if object_diameter_mm is None:
            return Decision(
                self.MAX_LATENT_FACTOR, f"no foreground objects: the largest factor {self.MAX_LATENT_FACTOR}"
            )
        voxel = float(np.exp(np.mean(np.log(np.asarray(target_spacing, dtype=np.float64)))))
        diameter = float(object_diameter_mm) / voxel
        factor = self.MIN_LATENT_FACTOR
        while factor * 2 <= self.MAX_LATENT_FACTOR and diameter / (factor * 2) >= self.MIN_LATENT_OBJECT_PIXELS:
            factor *= 2
        bounds = f"[{self.MIN_LATENT_FACTOR}, {self.MAX_LATENT_FACTOR}]"
        fit = (
            "" if diameter / factor >= self.MIN_LATENT_OBJECT_PIXELS else "; objects are smaller than that: the minimum"
        )
        return Decision(
            factor,
            f"5th-percentile object diameter {diameter:.3g} px after resampling -> "
            f"{diameter / factor:.3g} latent px at factor {factor} (largest power of two in {bounds} "
            f"keeping >= {self.MIN_LATENT_OBJECT_PIXELS:g}){fit}",
        )

    def determine_latent_channels(self, in_channels: int, latent_factor: int, spatial_dims: int) -> Decision:
        """At least the input channels, more when the compression ``in * factor^dims / latent`` would exceed 48."""
        needed = math.ceil(in_channels * latent_factor**spatial_dims / self.LATENT_COMPRESSION)
        channels = int(min(max(in_channels, needed, 1), self.MAX_LATENT_CHANNELS))
        ratio = in_channels * latent_factor**spatial_dims / channels
        return Decision(
            channels,
            f"{in_channels} input channel(s) at factor {latent_factor} in {spatial_dims}D: "
            f"{channels} latent channel(s), compression {ratio:.3g}:1 (at most "
            f"{self.LATENT_COMPRESSION}:1, as Stable Diffusion's f=8, c=4)",
        )

    def determine_class_weights(self, fractions: Mapping[int, float | None], label_values: Sequence[int]) -> Decision:
        """Weighted-CE weights: background 1, class c: clip((1 - f_c) / f_c, 1, 50), f_c its median share."""
        weights, parts = [], []
        for value in label_values:
            if value == 0:
                weights.append(1.0)
                continue
            f = fractions.get(value)
            if not f:
                weights.append(self.MIN_FOREGROUND_WEIGHT)
                parts.append(f"class {value} never present: {self.MIN_FOREGROUND_WEIGHT:g}")
                continue
            weight = float(np.clip((1.0 - f) / f, self.MIN_FOREGROUND_WEIGHT, self.MAX_FOREGROUND_WEIGHT))
            weights.append(round(weight, 3))
            parts.append(f"class {value}: median share {f:.3g} -> {weight:.3g}")
        rule = f"clip((1-f)/f, {self.MIN_FOREGROUND_WEIGHT:g}, {self.MAX_FOREGROUND_WEIGHT:g})"
        return Decision(
            weights,
            f"background 1; foreground {rule} with f the class's median share of the cropped "
            "image in cases that have it (the method used ~50 for LIDC nodules): " + "; ".join(parts),
        )

    # ---- sizes and networks -----------------------------------------------------------------------------------
    def determine_denoiser_levels(self, min_latent_size: int) -> Decision:
        """UNet levels so that the bottleneck keeps >= MIN_BOTTLENECK latent pixels, within [2, 4]."""
        raw = 1 + math.floor(math.log2(max(min_latent_size, 1) / self.MIN_BOTTLENECK)) if min_latent_size >= 1 else 1
        levels = int(np.clip(raw, self.MIN_DENOISER_LEVELS, self.MAX_DENOISER_LEVELS))
        bottleneck = min_latent_size // 2 ** (levels - 1)
        return Decision(
            levels,
            f"smallest latent edge {min_latent_size}: {levels} levels leave a {bottleneck} px "
            f"bottleneck (target >= {self.MIN_BOTTLENECK}, levels in "
            f"[{self.MIN_DENOISER_LEVELS}, {self.MAX_DENOISER_LEVELS}])",
        )

    def determine_patch_size(self, median_shape: Sequence[float], max_input_size: int, divisor: int) -> Decision:
        """The median resampled shape rounded up to a multiple of ``divisor``, capped at ``max_input_size``."""
        cap = max(divisor, (max_input_size // divisor) * divisor)
        patch = [int(min(max(math.ceil(float(m) / divisor) * divisor, divisor), cap)) for m in median_shape]
        return Decision(
            patch,
            f"median shape {_fmt(median_shape)} after resampling, rounded up to multiples of "
            f"{divisor} (latent factor x 2^(denoiser levels - 1)), at most {cap}",
        )

    def determine_widths(self, base: int, levels: int) -> list[int]:
        """Channels per level: base x (1, 2, 2, 4)[:levels]."""
        return [int(base * m) for m in self.WIDTH_MULTIPLIERS[:levels]]

    def determine_attention_levels(self, latent_shape: Sequence[int], levels: int) -> Decision:
        """Self-attention at the levels with at most MAX_ATTENTION_TOKENS positions."""
        tokens = [int(np.prod([max(s // 2**i, 1) for s in latent_shape])) for i in range(levels)]
        flags = [t <= self.MAX_ATTENTION_TOKENS for t in tokens]
        return Decision(
            flags,
            f"positions per level {tokens}: attention where <= {self.MAX_ATTENTION_TOKENS} "
            "(its cost grows with the square of the positions; at 1024 it doubled a 256 px latent "
            "step, docs/benchmarks.md)",
        )

    def determine_head_channels(self, widths: Sequence[int], attention: Sequence[bool]) -> list[int]:
        """Channels per attention head per level: 0 without attention; the last level always > 0 (middle block)."""
        last = len(widths) - 1
        return [
            min(self.NUM_HEAD_CHANNELS, w) if a or i == last else 0 for i, (w, a) in enumerate(zip(widths, attention))
        ]

    def determine_num_res_blocks(self, spatial_dims: int) -> Decision:
        blocks = 2 if spatial_dims == 2 else 1
        return Decision(
            blocks, f"{blocks} residual block(s) per level, as MONAI's {spatial_dims}D latent diffusion tutorials"
        )

    def determine_image_encoder_widths(self, latent_factor: int) -> list[int]:
        """The denoiser's image encoder: one level per halving from full resolution to the latent grid
        (``log2(f) + 1``), IMAGE_ENCODER_BASE_WIDTH doubled per level, at most IMAGE_ENCODER_MAX_WIDTH."""
        levels = int(round(math.log2(latent_factor))) + 1
        return [min(self.IMAGE_ENCODER_BASE_WIDTH * 2**i, self.IMAGE_ENCODER_MAX_WIDTH) for i in range(levels)]

    def determine_batch_size(self, estimate: MemoryEstimate, memory_gb: float, num_samples: int) -> Decision:
        """Largest power of two in [MIN_BATCH, MAX_BATCH] that fits the budget and covers <= 5% of the samples."""
        fits = largest_batch(estimate, memory_gb)
        data_cap = max(self.MIN_BATCH, floor_power_of_two(self.BATCH_DATASET_FRACTION * num_samples))
        batch = int(max(self.MIN_BATCH, min(floor_power_of_two(max(fits, 1)), self.MAX_BATCH, data_cap)))
        per = estimate.per_sample_bytes / GIB
        note = "" if fits >= batch else " (does NOT fit: raise --memory_gb or lower the patch size)"
        return Decision(
            batch,
            f"{per:.3g} GiB activations/sample + {estimate.fixed_bytes / GIB:.3g} GiB weights and "
            f"optimizer: {fits} fit {memory_gb:g} GB; power of two in [{self.MIN_BATCH}, "
            f"{self.MAX_BATCH}], <= 5% of {num_samples} samples ({data_cap}){note}",
        )

    def determine_width(
        self,
        candidates: Sequence[int],
        estimate_for: Callable[[int], MemoryEstimate],
        memory_gb: float,
        target_batch: int,
    ) -> Decision:
        """The widest base width whose network trains at least ``target_batch`` samples within the budget."""
        for base in candidates:
            fits = largest_batch(estimate_for(base), memory_gb)
            if fits >= target_batch:
                return Decision(
                    int(base),
                    f"widest base of {list(candidates)} training >= {target_batch} samples per "
                    f"batch in {memory_gb:g} GB ({fits} fit)",
                )
        return Decision(
            int(candidates[-1]),
            f"narrowest base of {list(candidates)}: none trains {target_batch} samples per batch in {memory_gb:g} GB",
        )

    # ---- training and inference defaults -------------------------------------------------------------------------
    def determine_kl_weight(self) -> Decision:
        return Decision(self.KL_WEIGHT, "MONAI's latent diffusion tutorials use 1e-6: a nearly deterministic latent")

    def determine_mask_targets(self, num_raters: int) -> Decision:
        if num_raters:
            return Decision(
                "random_rater",
                f"{num_raters} raters: each training sample draws one rater's mask, so the "
                "samples learn the raters' spread",
            )
        return Decision("label", "single reference label per case")

    def determine_diffusion(self) -> dict[str, Decision]:
        return {
            "num_train_timesteps": Decision(self.NUM_TRAIN_TIMESTEPS, "the method's T = 1000 (DDPM)"),
            "schedule": Decision(
                "linear_beta", "the method's linear beta schedule (MONAI DDPMScheduler 'linear_beta')"
            ),
            "beta_start": Decision(self.BETA_START, "the method's beta_1 = 1e-4"),
            "beta_end": Decision(self.BETA_END, "the method's beta_T = 2e-2"),
            "prediction_type": Decision("epsilon", "the denoiser predicts the noise (the method's epsilon, MSE loss)"),
            "clip_sample": Decision(False, "latents are unbounded: no clipping (MONAI advice for latent diffusion)"),
        }

    def determine_inference(self) -> dict[str, Decision]:
        return {
            "sampler": Decision("ddim", "DDIM: few-step sampling of the trained DDPM (the method's choice)"),
            "num_inference_steps": Decision(self.DDIM_STEPS, "the method's 50 DDIM steps"),
            "num_samples": Decision(self.NUM_SAMPLES, "the method's 5 samples per image (Dice stabilises at 5)"),
            "threshold": Decision(self.THRESHOLD, "mean of the decoded samples thresholded at 0.5 (the method's rule)"),
        }
