"""The adapter from ``plans.json`` to the training components' plain arguments.

Everything the training configuration (``configs/train.json``) reads from the plan goes through
:func:`training_plan`, which loads the file with the planning package's validating loader and returns one
configuration as plain values (network arguments named as the factories in :mod:`medseglatdiff.networks`
take them). Bundles override any of them on the command line.

Masks are encoded by the plan's label scheme (:mod:`medseglatdiff.datasets.label_scheme`): one binary
foreground (sigmoid + weighted BCE, the method's formulation), several classes (one-hot, softmax + weighted CE
with the plan's class weights) or regions (one sigmoid + weighted BCE per region, each region weighted like its
rarest member class, since a region is at least as frequent as any class in it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.label_scheme import label_values_of
from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.plans_io import plans_label_scheme
from medseglatdiff.planning.recipes import DENOISER_KEYS, RECIPES
from medseglatdiff.preprocessing.preprocess import CASE_GROUPS_FILE
from medseglatdiff.training.data import preprocessed_cases
from medseglatdiff.training.splits import SPLITS_FILE, fold_cases, load_or_create_splits

logger = logging.getLogger(__name__)

PLAN_HINT = "run `medseg plan_and_preprocess --dataset RAW --out WORK` and pass --dataset_dir WORK"


def _load_plans(work: Path) -> dict[str, Any]:
    from medseglatdiff.planning.plans_io import PLANS_FILE, load_plans

    if not work.is_dir():
        raise MedsegError(f"{work}: folder not found; {PLAN_HINT}")
    if not (work / PLANS_FILE).is_file():
        raw = " (it looks like a raw dataset)" if (work / "dataset.json").is_file() else ""
        raise MedsegError(f"{work}: no {PLANS_FILE}, the dataset is not planned{raw}; {PLAN_HINT}")
    return load_plans(work)


def _autoencoder_args(block: dict[str, Any]) -> dict[str, Any]:
    net = block["network"]
    return {
        "channels": list(net["channels"]),
        "latent_channels": int(net["latent_channels"]),
        "num_res_blocks": net["num_res_blocks"],
        "attention_levels": list(net["attention_levels"]),
        "with_encoder_nonlocal_attn": bool(net.get("with_encoder_nonlocal_attn", False)),
        "with_decoder_nonlocal_attn": bool(net.get("with_decoder_nonlocal_attn", False)),
    }


def training_plan(dataset_dir: str | os.PathLike, configuration: str | None = None) -> dict[str, Any]:
    """One configuration of ``dataset_dir/plans.json`` as the plain values the training config uses.

    Args:
        dataset_dir: the folder written by ``plan_and_preprocess`` (plans.json + preprocessed cases).
        configuration: "2d" or "3d"; None picks "3d" when planned, else "2d".

    Raises:
        MedsegError: the folder is missing, not planned, not preprocessed, or lacks the configuration.
    """
    from medseglatdiff.planning.plans_io import strip_reasons

    if dataset_dir is None or not str(dataset_dir).strip():
        raise MedsegError(f"no dataset given (--dataset_dir is empty); {PLAN_HINT}")
    work = Path(dataset_dir)
    plans = _load_plans(work)
    configurations = plans["configurations"]
    name = configuration or ("3d" if "3d" in configurations else "2d")
    if name not in configurations:
        raise MedsegError(
            f"{work / 'plans.json'}: configuration {name!r} not planned (planned: {', '.join(configurations)}); "
            "pass --settings#configuration with one of them"
        )
    config = strip_reasons(configurations[name])
    data_folder = work / config["data_folder"]
    if not data_folder.is_dir() or not any(data_folder.glob("*.npz")):
        raise MedsegError(f"{data_folder}: no preprocessed cases for configuration {name!r}; {PLAN_HINT}")
    mask = config["mask_autoencoder"]
    scheme = plans_label_scheme(plans)
    by_value = dict(zip(label_values_of(plans["labels"]), (float(w) for w in mask["class_weights"])))
    foreground = [min(by_value.get(v, 1.0) for v in values) for values in scheme.values]
    denoiser = config["denoiser"]["network"]
    recipe = {
        **RECIPES["published"].values(),
        **{k: config["denoiser"][k] for k in DENOISER_KEYS if k in config["denoiser"]},
    }
    return {
        "configuration": name,
        "dataset_name": plans["dataset_name"],
        "raw_dataset": plans["raw_dataset"],
        "spatial_dims": int(config["spatial_dims"]),
        "num_channels": len(plans["channel_names"]),
        "num_raters": int(plans["num_raters"]),
        "label_scheme": scheme.to_json(),
        "data_folder": str(data_folder),
        "patch_size": [int(p) for p in config["patch_size"]],
        "slice_axis": config["preprocessing"]["slice_axis"],
        "image_autoencoder": {
            **_autoencoder_args(config["image_autoencoder"]),
            "batch_size": int(config["image_autoencoder"]["batch_size"]),
            "kl_weight": float(config["image_autoencoder"]["kl_weight"]),
        },
        "mask_autoencoder": {
            **_autoencoder_args(mask),
            "batch_size": int(mask["batch_size"]),
            "kl_weight": float(mask["kl_weight"]),
            "foreground_weight": foreground[0] if scheme.kind == "binary" else foreground,
            "background_weight": by_value.get(0, 1.0),
            "label_channels": scheme.network_channels,
            "activation": scheme.activation,
        },
        "denoiser": {
            "channels": list(denoiser["channels"]),
            "attention_levels": list(denoiser["attention_levels"]),
            "num_res_blocks": denoiser["num_res_blocks"],
            "num_head_channels": [max(int(h), 1) for h in denoiser["num_head_channels"]],
            "image_encoder_channels": [int(c) for c in config["denoiser"].get("image_encoder_channels", [])],
            "batch_size": int(config["denoiser"]["batch_size"]),
            **{k: v for k, v in recipe.items() if k in DENOISER_KEYS},
        },
        "diffusion": {
            **{k: config["diffusion"][k] for k in ("num_train_timesteps", "schedule", "beta_start", "beta_end")},
            "prediction_type": config["diffusion"].get("prediction_type", recipe["prediction_type"]),
        },
        "inference": {k: config["inference"][k] for k in ("num_inference_steps", "num_samples", "threshold")},
    }


def read_case_groups(work: str | os.PathLike) -> dict[str, str] | None:
    """``{case: group}`` recorded by preprocessing in ``WORK/case_groups.json``; None when the file is absent."""
    path = Path(work) / CASE_GROUPS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in dict(data["case_groups"]).items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MedsegError(
            f"{path}: unreadable ({exc}); "
            "re-run `medseg plan_and_preprocess` (or `medseg preprocess`) to write it again"
        ) from exc


def case_groups(plan: dict[str, Any], dataset_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{case: group}`` for grouped folds (empty when the dataset has no groups).

    Read from ``WORK/case_groups.json`` (written by preprocessing, so it survives a moved raw dataset), else from
    the raw dataset's dataset.json named in the plan (work folders preprocessed before that file existed).

    Raises:
        MedsegError: neither is reachable, so whether cases share patients cannot be known; folds made
            without the groups could put one patient's slices on both sides.
    """
    from medseglatdiff.datasets.dataset_json import DatasetSpec

    if dataset_dir is not None:
        recorded = read_case_groups(dataset_dir)
        if recorded is not None:
            return recorded
    raw = Path(plan.get("raw_dataset") or "")
    if not str(plan.get("raw_dataset") or "") or not (raw / "dataset.json").is_file():
        where = Path(dataset_dir) / CASE_GROUPS_FILE if dataset_dir is not None else CASE_GROUPS_FILE
        raise MedsegError(
            f"{where} is missing and the raw dataset {raw} (plans.json raw_dataset) is not found, so the case groups "
            "(patients, video sequences) for the folds are unknown; "
            "re-run `medseg preprocess --dataset RAW --out WORK` "
            f"(it writes {CASE_GROUPS_FILE}), or provide folds with `medseg cv --splits FILE`"
        )
    return dict(DatasetSpec.load(raw).case_groups)


def case_strata(data_folder: str | os.PathLike, cases: list[str]) -> dict[str, str]:
    """``{case: "foreground" | "empty"}`` from the preprocessed properties (cases without properties left out)."""
    strata: dict[str, str] = {}
    for case in cases:
        path = Path(data_folder) / f"{case}.json"
        try:
            present = json.loads(path.read_text(encoding="utf-8")).get("classes_present", [])
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue
        strata[case] = "foreground" if any(int(c) != 0 for c in present) else "empty"
    return strata if len(strata) == len(cases) else {}


def fold_split(
    dataset_dir: str | os.PathLike, plan: dict[str, Any], fold: int | str = 0, num_folds: int = 5, seed: int = 12345
) -> tuple[list[str], list[str]]:
    """``(train, val)`` cases of ``fold`` from ``dataset_dir/splits_final.json`` (created, grouped, when missing)."""
    cases = preprocessed_cases(plan["data_folder"])
    if (Path(dataset_dir) / SPLITS_FILE).is_file():
        splits = load_or_create_splits(dataset_dir, cases)
    else:
        groups = case_groups(plan, dataset_dir)
        strata = case_strata(plan["data_folder"], cases)
        splits = load_or_create_splits(dataset_dir, cases, groups, num_folds=num_folds, seed=seed, strata=strata)
    train, val = fold_cases(splits, fold)
    available = set(cases)
    return [c for c in train if c in available], [c for c in val if c in available]
