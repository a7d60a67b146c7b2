"""Read, validate and write ``plans.json``.

Validation has two layers: the JSON schema shipped in the package (``medseglatdiff/schemas/plans.schema.json``:
types, ranges, names, and a ``reasons`` entry for every value) and cross-field checks that a schema cannot express
(patch size divisible by the latent grid's factor, network widths divisible by their group-norm groups, channel
counts that chain from one stage to the next). Every problem is reported at once, each naming the key and the fix.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.label_scheme import LabelScheme, LabelSchemeError, label_values_of
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.json_files import read_json

PLANS_FILE = "plans.json"

_FIXES = {
    "patch_size": "use positive integers, one per spatial axis, divisible by latent_factor x 2^(denoiser levels - 1)",
    "batch_size": "use a positive integer (re-run `medseg plan --memory_gb G` to size it for your memory)",
    "scheme": "use one of ct, zscore, unit_range, none",
    "latent_factor": "use a power of two (the planner chooses 2, 4 or 8)",
    "target_spacing": "use positive numbers (null for a slice axis kept as is)",
    "reasons": "give every value a reason string in the block's 'reasons' object",
}


class PlansError(MedsegError):
    """plans.json is missing, not JSON, or has invalid values."""


@lru_cache(maxsize=1)
def plans_schema() -> dict[str, Any]:
    """The JSON schema of plans.json (package data; no network)."""
    text = resources.files("medseglatdiff").joinpath("schemas", "plans.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _fix_for(path: list[Any]) -> str:
    for key in reversed([p for p in path if isinstance(p, str)]):
        if key in _FIXES:
            return _FIXES[key]
    return "correct the value as medseglatdiff/schemas/plans.schema.json describes, or re-run `medseg plan`"


def _where(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_problems(plans: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(plans_schema())
    problems = []
    for error in sorted(validator.iter_errors(plans), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        message = error.message
        if error.validator in ("anyOf", "oneOf", "if", "allOf") and error.context:
            message = "; ".join(sorted({c.message for c in error.context}))
        problems.append(f"{_where(path)}: {message}; fix: {_fix_for(path)}")
    return problems


def _network_problems(where: str, net: dict[str, Any]) -> list[str]:
    problems = []
    channels = net["channels"]
    for key in ("attention_levels", "num_head_channels"):
        if key in net and len(net[key]) != len(channels):
            problems.append(
                f"{where}.{key}: {len(net[key])} entries for {len(channels)} levels; "
                "fix: give one entry per entry of channels"
            )
    bad = [c for c in channels if c % net["norm_num_groups"]]
    if bad:
        problems.append(
            f"{where}.channels: {bad} not divisible by norm_num_groups {net['norm_num_groups']}; "
            "fix: use multiples of norm_num_groups"
        )
    heads = net.get("num_head_channels")
    if heads and heads[-1] <= 0:
        problems.append(
            f"{where}.num_head_channels: the last entry sizes the middle block's attention and must be "
            "positive; fix: e.g. 32"
        )
    for level, (width, head, attention) in enumerate(zip(channels, heads or [], net["attention_levels"])):
        if attention and (head <= 0 or width % head):
            problems.append(
                f"{where}.num_head_channels[{level}]: {head} must be positive and divide {width}; "
                "fix: use a divisor of the level's width"
            )
    return problems


def _shape_problems(where: str, config: dict[str, Any]) -> list[str]:
    problems = []
    dims, patch, factor = config["spatial_dims"], config["patch_size"], config["latent_factor"]
    if len(patch) != dims:
        problems.append(f"{where}.patch_size: {len(patch)} entries for spatial_dims {dims}; fix: one per spatial axis")
    divisor = factor * 2 ** (len(config["denoiser"]["network"]["channels"]) - 1)
    if any(p % divisor for p in patch):
        problems.append(
            f"{where}.patch_size: {patch} not divisible by latent_factor x 2^(denoiser levels - 1) = "
            f"{divisor}; fix: {_FIXES['patch_size']} (here {divisor})"
        )
    latent = [p // factor for p in patch]
    if config["latent_shape"] != latent:
        problems.append(
            f"{where}.latent_shape: {config['latent_shape']} is not patch_size / latent_factor = "
            f"{latent}; fix: set it to that"
        )
    for stage in ("image_autoencoder", "mask_autoencoder"):
        levels = len(config[stage]["network"]["channels"])
        if 2 ** (levels - 1) != factor:
            problems.append(
                f"{where}.{stage}.network.channels: {levels} levels downsample by {2 ** (levels - 1)}, "
                f"not latent_factor {factor}; fix: use log2(latent_factor) + 1 levels"
            )
    return problems


def plans_label_scheme(plans: dict[str, Any]) -> LabelScheme:
    """The plan's label scheme (plans written before label kinds: derived from ``labels``, regions refused)."""
    try:
        return LabelScheme.recorded_or_derived(plans.get("label_scheme"), plans["labels"])
    except LabelSchemeError as exc:
        raise PlansError(f"plans.json labels: {exc}; re-run `medseg plan_and_preprocess`") from exc


def _channel_problems(where: str, config: dict[str, Any], plans: dict[str, Any]) -> list[str]:
    problems = []
    image, mask = config["image_autoencoder"]["network"], config["mask_autoencoder"]["network"]
    unet = config["denoiser"]["network"]
    num_channels = len(plans["channel_names"])
    if image["in_channels"] != num_channels:
        problems.append(
            f"{where}.image_autoencoder.network.in_channels: {image['in_channels']} but dataset.json has "
            f"{num_channels} channels; fix: set {num_channels}"
        )
    latents = image["latent_channels"] + mask["latent_channels"]
    if unet["in_channels"] != latents:
        problems.append(
            f"{where}.denoiser.network.in_channels: {unet['in_channels']} is not mask + image latent "
            f"channels ({mask['latent_channels']} + {image['latent_channels']}); fix: set {latents}"
        )
    if unet["out_channels"] != mask["latent_channels"]:
        problems.append(
            f"{where}.denoiser.network.out_channels: {unet['out_channels']} is not the mask latent "
            f"channels {mask['latent_channels']}; fix: set them equal"
        )
    values = label_values_of(plans["labels"])
    weights = config["mask_autoencoder"]["class_weights"]
    if len(weights) != len(values):
        problems.append(
            f"{where}.mask_autoencoder.class_weights: {len(weights)} weights for {len(values)} label "
            "values; fix: one weight per label value, background first"
        )
    scheme = plans_label_scheme(plans)
    activation = config["mask_autoencoder"]["output_activation"]
    if activation != scheme.activation:
        problems.append(
            f"{where}.mask_autoencoder.output_activation: {activation!r} but the labels are {scheme.kind} "
            f"({scheme.describe()}); fix: set {scheme.activation!r}"
        )
    expected = scheme.network_channels
    if mask["in_channels"] != expected or mask["out_channels"] != expected:
        problems.append(
            f"{where}.mask_autoencoder.network.in_channels/out_channels: must be {expected} for "
            f"{scheme.kind} labels ({scheme.describe()}); fix: set {expected}"
        )
    normalization = config["preprocessing"]["normalization"]
    if [n["channel"] for n in normalization] != list(range(num_channels)):
        problems.append(
            f"{where}.preprocessing.normalization: entries for channels "
            f"{[n['channel'] for n in normalization]}, expected 0..{num_channels - 1}; "
            "fix: one entry per channel, in order"
        )
    return problems


def _configuration_problems(name: str, config: dict[str, Any], plans: dict[str, Any]) -> list[str]:
    where = f"configurations.{name}"
    problems: list[str] = []
    if name in ("2d", "3d") and config["spatial_dims"] != int(name[0]):
        problems.append(
            f"{where}.spatial_dims: {config['spatial_dims']} for configuration {name!r}; fix: set {name[0]}"
        )
    problems += _shape_problems(where, config)
    for stage in ("image_autoencoder", "mask_autoencoder", "denoiser"):
        problems += _network_problems(f"{where}.{stage}.network", config[stage]["network"])
    problems += _channel_problems(where, config, plans)
    pre = config["preprocessing"]
    axis, nulls = pre["slice_axis"], [i for i, s in enumerate(pre["target_spacing"]) if s is None]
    if (axis is None and nulls) or (axis is not None and nulls != [axis]):
        problems.append(
            f"{where}.preprocessing.target_spacing: null entries {nulls} must match slice_axis {axis}; "
            "fix: null only at the slice axis"
        )
    diffusion, inference = config["diffusion"], config["inference"]
    if diffusion["beta_start"] >= diffusion["beta_end"]:
        problems.append(
            f"{where}.diffusion.beta_start: {diffusion['beta_start']} must be below beta_end "
            f"{diffusion['beta_end']}; fix: e.g. 1e-4 and 2e-2"
        )
    if inference["num_inference_steps"] > diffusion["num_train_timesteps"]:
        problems.append(
            f"{where}.inference.num_inference_steps: more than num_train_timesteps "
            f"{diffusion['num_train_timesteps']}; fix: use at most that many"
        )
    return problems


def validate_plans(plans: dict[str, Any], path: str | os.PathLike = PLANS_FILE) -> dict[str, Any]:
    """Check ``plans`` against the schema and the cross-field rules; raise :class:`PlansError` listing every problem."""
    problems = _schema_problems(plans)
    if not problems:
        for name, config in plans["configurations"].items():
            problems += _configuration_problems(name, config, plans)
    if problems:
        raise PlansError(f"{path}: invalid plan:\n  - " + "\n  - ".join(problems))
    return plans


def upgraded_plans(plans: dict[str, Any]) -> dict[str, Any]:
    """``plans`` in the current format: version 1 (``inference.ensemble_size``) becomes version 2 (``num_samples``)."""
    if plans.get("plans_version") != 1 or not isinstance(plans.get("configurations"), dict):
        return plans
    plans = copy.deepcopy(plans)
    for config in plans["configurations"].values():
        inference = config.get("inference") if isinstance(config, dict) else None
        if isinstance(inference, dict) and "ensemble_size" in inference:
            inference["num_samples"] = inference.pop("ensemble_size")
            reasons = inference.get("reasons")
            if isinstance(reasons, dict) and "ensemble_size" in reasons:
                reasons["num_samples"] = reasons.pop("ensemble_size")
    plans["plans_version"] = 2
    return plans


def load_plans(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate plans.json (``path`` may be the file or the folder holding it); an older version is
    upgraded in memory (:func:`upgraded_plans`)."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / PLANS_FILE
    plans = read_json(
        path,
        fix="fix it or re-run `medseg plan`",
        missing=f"not found; create it with `medseg plan --out {path.parent}` (or `medseg plan_and_preprocess`)",
        error=PlansError,
        require_object=True,
    )
    return validate_plans(upgraded_plans(plans), path)


def save_plans(plans: dict[str, Any], path: str | os.PathLike) -> Path:
    """Validate and write plans.json atomically (``path`` may be a folder)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / PLANS_FILE
    validate_plans(plans, path)
    return write_json_atomic(path, plans)


def strip_reasons(block: dict[str, Any]) -> dict[str, Any]:
    """A block's values without its ``reasons`` (e.g. network keyword arguments), recursively."""
    return {k: strip_reasons(v) if isinstance(v, dict) else v for k, v in block.items() if k != "reasons"}


def preprocessing_hash(config: dict[str, Any]) -> str:
    """Content hash of what decides a configuration's preprocessed data (its ``preprocessing`` block and dims)."""
    content = {
        "spatial_dims": config["spatial_dims"],
        "preprocessing": strip_reasons(copy.deepcopy(config["preprocessing"])),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
