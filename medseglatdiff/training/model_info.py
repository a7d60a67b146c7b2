"""What a trained fold folder holds so that it predicts on its own (copied elsewhere, exported later).

Training writes, next to ``settings.json`` and the three stage folders of ``fold_K/``:

- ``model.json``: the resolved arguments of the three networks (the keyword arguments of
  :func:`medseglatdiff.networks.image_autoencoder`, :func:`~medseglatdiff.networks.mask_autoencoder` and
  :func:`~medseglatdiff.networks.latent_denoiser`), the diffusion schedule, the patch size, the plan's
  inference defaults (ensemble size, DDIM steps, threshold) and the dataset facts inference needs
  (channel names, labels, file ending, number of raters).
- ``plans.json``: a copy of the dataset's plan (its ``preprocessing`` block is what inference applies to raw
  images; the reasons stay for a person to read).

Both are written atomically. Nothing in them refers to the work folder, so ``WORK/results/<bundle>/<configuration>``
(or one ``fold_K``) can be copied anywhere and still predict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.json_files import read_json

MODEL_INFO_FILE = "model.json"
MODEL_INFO_VERSION = 1
NETWORKS = ("image_autoencoder", "mask_autoencoder", "denoiser")
DIFFUSION_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "schedule", "prediction_type")
REQUIRED_KEYS = (
    "model_info_version",
    "configuration",
    "spatial_dims",
    "num_channels",
    "patch_size",
    "networks",
    "diffusion",
    "inference",
)
RETRAIN_HINT = "re-run the training command (finished stages are skipped; the model files are written again)"


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, numpy/torch scalars -> Python numbers, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _network_kwargs(parser: Any, stage: str) -> dict[str, Any]:
    """The resolved keyword arguments of ``<stage>#network_def`` (its ``_target_`` left out)."""
    keys = [k for k in parser[f"{stage}#network_def"] if not str(k).startswith("_")]
    return {k: _jsonable(parser.get_parsed_content(f"{stage}#network_def#{k}")) for k in keys}


def _dataset_facts(plans: Mapping[str, Any]) -> dict[str, Any]:
    """Channel names, labels, raters and the raw dataset's file ending (None when the raw dataset is gone)."""
    file_ending = None
    raw = Path(str(plans.get("raw_dataset") or ""))
    if str(raw) and (raw / "dataset.json").is_file():
        try:
            file_ending = json.loads((raw / "dataset.json").read_text(encoding="utf-8")).get("file_ending")
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            file_ending = None
    return {
        "dataset_name": plans.get("dataset_name"),
        "channel_names": dict(plans["channel_names"]),
        "labels": dict(plans["labels"]),
        "num_raters": int(plans.get("num_raters", 0)),
        "natural_images": bool(plans.get("natural_images", False)),
        "file_ending": file_ending,
    }


def collect_model_info(parser: Any) -> dict[str, Any]:
    """The content of ``model.json`` from a resolved training config (``configs/train.json`` + settings)."""
    from medseglatdiff.planning.plans_io import PLANS_FILE, load_plans

    plan = parser.get_parsed_content("plan")
    plans = load_plans(Path(parser.get_parsed_content("dataset_dir")) / PLANS_FILE)
    labels = {k: v for k, v in plans["labels"].items() if v != 0}
    scheme = LabelScheme.from_json(plan["label_scheme"])
    return {
        "model_info_version": MODEL_INFO_VERSION,
        "bundle_name": parser.get_parsed_content("bundle_name"),
        "configuration": plan["configuration"],
        "fold": _jsonable(parser.get_parsed_content("fold")),
        "spatial_dims": int(plan["spatial_dims"]),
        "num_channels": int(plan["num_channels"]),
        "slice_axis": plan["slice_axis"],
        "patch_size": [int(p) for p in parser.get_parsed_content("patch_size")],
        "networks": {stage: _network_kwargs(parser, stage) for stage in NETWORKS},
        "diffusion": {k: _jsonable(parser.get_parsed_content(f"denoiser#{k}")) for k in DIFFUSION_KEYS},
        "conditioning": str(parser.get_parsed_content("denoiser#conditioning")),
        "inference": _jsonable(dict(plan["inference"])),
        "label_scheme": plan["label_scheme"],
        "mask": {
            "value": int(scheme.label_values[0]) if scheme.kind == "binary" else None,
            "meaning": "foreground" if scheme.kind == "binary" else f"label map of {scheme.kind}",
            "classes": labels,
        },
        **_dataset_facts(plans),
    }


def write_model_files(parser: Any, output_dir: str | os.PathLike) -> Path:
    """Write ``model.json`` and the ``plans.json`` copy into ``output_dir`` (atomically); returns model.json."""
    from medseglatdiff.planning.plans_io import PLANS_FILE, load_plans

    output_dir = Path(output_dir)
    info = collect_model_info(parser)
    plans = load_plans(Path(parser.get_parsed_content("dataset_dir")) / PLANS_FILE)
    write_json_atomic(output_dir / PLANS_FILE, plans)
    return write_json_atomic(output_dir / MODEL_INFO_FILE, info)


def model_label_scheme(info: Mapping[str, Any]) -> LabelScheme:
    """The label scheme a model was trained with (models from before label kinds: one binary foreground)."""
    return LabelScheme.from_json(info.get("label_scheme"))


def load_model_info(fold_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``fold_dir/model.json``.

    Raises:
        MedsegError: missing (a model trained before these files existed, or a copied folder missing them),
            not JSON, or missing keys; the message says how to write it again.
    """
    path = Path(fold_dir) / MODEL_INFO_FILE
    info = read_json(
        path, fix=RETRAIN_HINT, missing=f"missing, so this trained fold cannot be rebuilt for inference; {RETRAIN_HINT}"
    )
    missing = [k for k in REQUIRED_KEYS if k not in info] if isinstance(info, dict) else list(REQUIRED_KEYS)
    if missing:
        raise MedsegError(f"{path}: missing keys {', '.join(missing)}; {RETRAIN_HINT}")
    if info["model_info_version"] != MODEL_INFO_VERSION:
        raise MedsegError(
            f"{path}: model_info_version {info['model_info_version']} is not {MODEL_INFO_VERSION}; {RETRAIN_HINT}"
        )
    return info


def load_preprocessing(fold_dir: str | os.PathLike, configuration: str) -> dict[str, Any]:
    """The configuration's ``preprocessing`` block (values only) from the fold's ``plans.json`` copy."""
    from medseglatdiff.planning.plans_io import PLANS_FILE, load_plans, strip_reasons

    path = Path(fold_dir) / PLANS_FILE
    if not path.is_file():
        raise MedsegError(f"{path}: missing (the plan the model was trained with); {RETRAIN_HINT}")
    plans = load_plans(path)
    if configuration not in plans["configurations"]:
        raise MedsegError(f"{path}: has no configuration {configuration!r}; {RETRAIN_HINT}")
    return strip_reasons(plans["configurations"][configuration]["preprocessing"])


def inference_num_samples(inference: Mapping[str, Any]) -> int:
    """The samples per image of a model's ``inference`` block (``ensemble_size`` in models trained before plans
    version 2)."""
    return int(inference["num_samples"] if "num_samples" in inference else inference["ensemble_size"])
