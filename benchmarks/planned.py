"""The networks this project's planner builds for an image of a given size, without a dataset on disk.

The speed benchmarks need "the latent segmenter as planned for a 128 px (256 px) image". The planner reads only a
fingerprint, so :func:`synthetic_fingerprint` writes a minimal one for square images of one kind, with the object
statistics of the real datasets:

- ``polyp``: RGB colonoscopy frames; the 5th-percentile polyp spans 13.6% of the image's long side and the median
  polyp covers 11.4% of it (``kvasir_seg_full``: 43.5 px of 320 px, see ``docs/planning.md``).
- ``nodule``: grey CT crops; the 5th-percentile nodule is 4.65 px across whatever the crop size (``lidc_idri_full``),
  covering 0.35% of a 128 px crop.

:func:`planned_configuration` runs :class:`~medseglatdiff.planning.planner.Planner` on it; :func:`latent_segmenter`
builds the three networks with the project's factories, exactly as training does from ``plans.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medseglatdiff.errors import MedsegError
from medseglatdiff.networks import (
    LatentDiffusionSegmenter,
    LatentScaling,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
)
from medseglatdiff.networks.conditioning import condition_channels, latent_factor_of
from medseglatdiff.networks.image_encoder import fitted_encoder_channels
from medseglatdiff.planning.planner import Planner
from medseglatdiff.planning.plans_io import strip_reasons


@dataclass(frozen=True)
class ImageKind:
    """Object statistics of one kind of image (see the module doc)."""

    channels: tuple[str, ...]
    object_fraction: float | None  # 5th-percentile object diameter / image side (objects scale with the image)
    object_px: float | None  # or a fixed 5th-percentile diameter in pixels
    foreground_share: float
    intensity_range: tuple[float, float]

    def object_diameter(self, size: int) -> float:
        return float(self.object_px) if self.object_px is not None else float(self.object_fraction or 0) * size


KINDS = {
    "polyp": ImageKind(("R", "G", "B"), 43.5 / 320, None, 0.114, (0.0, 255.0)),
    "nodule": ImageKind(("CT",), None, 4.65, 0.0035, (0.0, 255.0)),
}


def synthetic_fingerprint(size: int, kind: str = "polyp", num_cases: int = 1000) -> dict[str, Any]:
    """A fingerprint of ``num_cases`` square ``size`` px natural images of ``kind`` (what the planner reads)."""
    if kind not in KINDS:
        raise MedsegError(f"unknown image kind {kind!r}; choose one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    diameter = spec.object_diameter(size)
    lo, hi = spec.intensity_range
    stats = {
        "mean": (lo + hi) / 2,
        "std": (hi - lo) / 6,
        "median": (lo + hi) / 2,
        "percentile_00_5": lo,
        "percentile_99_5": hi,
        "min": lo,
        "max": hi,
    }
    case = {"shape": [size, size], "spacing": [1.0, 1.0], "shape_after_crop": [size, size], "crop_ratio": 1.0}
    return {
        "dataset": {
            "name": f"synthetic-{kind}-{size}px",
            "root": "",
            "channel_names": {str(i): c for i, c in enumerate(spec.channels)},
            "labels": {"background": 0, "foreground": 1},
            "label_values": [0, 1],
            "num_raters": 0,
            "file_ending": ".png",
            "natural_images": True,
            "num_training": num_cases,
        },
        "summary": {
            "num_cases": num_cases,
            "spatial_dims": 2,
            "num_channels": len(spec.channels),
            "median_crop_ratio": 1.0,
            "intensity_range": [[lo, hi]] * len(spec.channels),
            "foreground_intensity": [stats] * len(spec.channels),
            "classes": {"1": {"fraction_median_nonzero": spec.foreground_share}},
            "objects": {"diameter_mm": {"p5": diameter}},
        },
        "cases": {f"case_{i:04d}": case for i in range(num_cases)},
    }


def capped_planner(
    max_width: int | None = None, max_input_size: int | None = None, attention_tokens: int | None = None
) -> type[Planner]:
    """The project's :class:`Planner` with base widths of at most ``max_width`` and inputs of at most
    ``max_input_size``.

    ``attention_tokens`` replaces the attention bound (``MAX_ATTENTION_TOKENS``), to measure another rule.

    A memory budget is not a compute budget: the planner picks the widest networks that *fit*; the benchmarks'
    short CPU runs cap the widths (the same cap for every method) and the input size, nothing else changes.
    """
    if max_width is None and max_input_size is None and attention_tokens is None:
        return Planner

    def cap(widths: tuple[int, ...]) -> tuple[int, ...]:
        kept = tuple(w for w in widths if max_width is None or w <= max_width)
        return kept or widths[-1:]

    attributes: dict[str, Any] = {
        "AUTOENCODER_WIDTHS": {d: cap(w) for d, w in Planner.AUTOENCODER_WIDTHS.items()},
        "DENOISER_WIDTHS": {d: cap(w) for d, w in Planner.DENOISER_WIDTHS.items()},
    }
    if attention_tokens is not None:
        attributes["MAX_ATTENTION_TOKENS"] = int(attention_tokens)
    if max_input_size is not None:
        attributes["MAX_INPUT_SIZE"] = {
            d: (min(big, max_input_size), min(small, max_input_size))
            for d, (big, small) in Planner.MAX_INPUT_SIZE.items()
        }
    return type("CappedPlanner", (Planner,), attributes)


def planned_configuration(
    size: int, kind: str = "polyp", memory_gb: float = 24.0, planner: type[Planner] = Planner
) -> dict[str, Any]:
    """The planner's "2d" configuration (values only) for square ``size`` px images of ``kind``.

    The default budget (24 GB, a training GPU) lets the planner keep inputs up to 256 px.
    """
    plans = planner(synthetic_fingerprint(size, kind), memory_gb).plan(["2d"])
    config = strip_reasons(plans["configurations"]["2d"])
    config["num_channels"] = len(KINDS[kind].channels)
    if list(config["patch_size"]) != [size, size]:
        raise MedsegError(
            f"the planner chose patch {config['patch_size']} for {size} px images at {memory_gb:g} GB; "
            "raise --memory_gb so that the whole image fits"
        )
    return config


def autoencoder_kwargs(block: dict[str, Any]) -> dict[str, Any]:
    """Factory arguments of a planned autoencoder block (``image_autoencoder`` / ``mask_autoencoder``)."""
    net = block["network"]
    return {
        key: net[key]
        for key in (
            "channels",
            "latent_channels",
            "num_res_blocks",
            "attention_levels",
            "with_encoder_nonlocal_attn",
            "with_decoder_nonlocal_attn",
        )
    }


def denoiser_kwargs(block: dict[str, Any]) -> dict[str, Any]:
    """Factory arguments of the planned denoiser block."""
    net = block["network"]
    return {
        "channels": net["channels"],
        "attention_levels": net["attention_levels"],
        "num_res_blocks": net["num_res_blocks"],
        "num_head_channels": [max(int(h), 1) for h in net["num_head_channels"]],
    }


def latent_segmenter(
    config: dict[str, Any], num_channels: int | None = None, conditioning: str | None = None
) -> LatentDiffusionSegmenter:
    """The three planned networks (untrained) with unit latent scale factors, ready to sample or train.

    ``conditioning`` (default: the plan's recipe) decides the denoiser's condition, as ``configs/train.json`` does:
    the image's space-to-depth pixels and the planned image encoder for the ``image_pixels`` conditionings, the
    image autoencoder's latent for the published one.
    """
    channels = int(num_channels if num_channels is not None else config["num_channels"])
    dims = int(config["spatial_dims"])
    conditioning = conditioning or str(config["denoiser"].get("conditioning", "image_latent"))
    image_ae = image_autoencoder(dims, channels, **autoencoder_kwargs(config["image_autoencoder"]))
    mask_ae = mask_autoencoder(dims, **autoencoder_kwargs(config["mask_autoencoder"]))
    factor = latent_factor_of(mask_ae)
    planned_encoder = config["denoiser"].get("image_encoder_channels", [])
    denoiser = latent_denoiser(
        dims,
        mask_ae.latent_channels,
        condition_channels(conditioning, image_ae.latent_channels, channels, factor, dims),
        **denoiser_kwargs(config["denoiser"]),
        image_encoder_channels=fitted_encoder_channels(planned_encoder, factor, conditioning),
        image_channels=channels,
        latent_factor=factor,
    )
    return LatentDiffusionSegmenter(image_ae, mask_ae, denoiser, LatentScaling(1.0, 1.0), conditioning=conditioning)


def describe(config: dict[str, Any]) -> dict[str, Any]:
    """The planned values a reader of the results needs (sizes, factor, widths, batches, sampler)."""
    return {
        "patch_size": config["patch_size"],
        "latent_factor": config["latent_factor"],
        "latent_shape": config["latent_shape"],
        "image_autoencoder_channels": config["image_autoencoder"]["network"]["channels"],
        "mask_autoencoder_channels": config["mask_autoencoder"]["network"]["channels"],
        "latent_channels": [
            config["image_autoencoder"]["network"]["latent_channels"],
            config["mask_autoencoder"]["network"]["latent_channels"],
        ],
        "denoiser_channels": config["denoiser"]["network"]["channels"],
        "denoiser_attention_levels": config["denoiser"]["network"]["attention_levels"],
        "conditioning": config["denoiser"].get("conditioning", "image_latent"),
        "image_encoder_channels": config["denoiser"].get("image_encoder_channels", []),
        "batch_sizes": [config[s]["batch_size"] for s in ("image_autoencoder", "mask_autoencoder", "denoiser")],
        "num_inference_steps": config["inference"]["num_inference_steps"],
        "ensemble_size": config["inference"]["num_samples"],
    }
