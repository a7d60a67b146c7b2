"""``configs/metadata.json`` of an exported bundle, and the schema it is checked against.

The descriptive fields (name, task, description, data source, references...) come from the training
bundle's own ``metadata.json`` when the package ships that bundle, else from the model's
``model.json``; versions are those of the exporting environment; ``network_data_format`` describes the
exported network (:class:`~medseglatdiff.export.network.EnsembleSampler`): a normalised image patch of the
training patch size in, ``num_samples`` sampled foreground probabilities out.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from importlib import metadata as distributions
from importlib import resources
from pathlib import Path
from typing import Any

from medseglatdiff.training.model_info import model_label_scheme

#: The URL recorded in ``metadata.json`` (MONAI's published schema); checks use :func:`schema_path` instead.
MONAI_SCHEMA_URL = (
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
)
SCHEMA_FILE = "monai_bundle_metadata.schema.json"
REQUIRED_PACKAGES = (
    "medseglatdiff",
    "monai",
    "torch",
    "pytorch-ignite",
    "einops",
    "numpy",
    "scipy",
    "nibabel",
    "SimpleITK",
    "pillow",
)


def schema_path() -> Path:
    """The metadata JSON schema shipped in the package (for ``verify_metadata --filepath``; no network)."""
    return Path(str(resources.files("medseglatdiff").joinpath("schemas", SCHEMA_FILE)))


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """``{distribution: version}`` of the installed ``names`` (missing ones left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = distributions.version(name)
        except distributions.PackageNotFoundError:
            continue
    return versions


def training_bundle_metadata(bundle_name: str | None) -> dict[str, Any]:
    """The shipped bundle's ``metadata.json`` (empty for a bundle the package does not ship, e.g. a user's own)."""
    if not bundle_name:
        return {}
    from medseglatdiff.resources import bundles_dir

    path = bundles_dir() / str(bundle_name) / "metadata.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _modality(info: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    image = source.get("network_data_format", {}).get("inputs", {}).get("image", {})
    if image.get("modality"):
        return str(image["modality"])
    names = [str(v) for v in dict(info.get("channel_names") or {}).values()]
    return "+".join(names) if names else "n/a"


def network_data_format(info: Mapping[str, Any], num_samples: int, modality: str) -> dict[str, Any]:
    """Inputs and outputs of the exported network (``image`` -> ``pred``), shapes from ``model.json``."""
    patch = [int(p) for p in info["patch_size"]]
    channels = {str(k): str(v) for k, v in dict(info.get("channel_names") or {}).items()}
    meaning = dict(info.get("mask") or {}).get("meaning", "foreground")
    classes = ", ".join(dict(info.get("mask") or {}).get("classes", {})) or "the foreground"
    scheme = model_label_scheme(info)
    if scheme.num_channels == 1:
        outputs = {str(k): f"sample {k}: probability of {meaning} ({classes})" for k in range(int(num_samples))}
    else:
        outputs = {
            str(n * scheme.num_channels + k): f"sample {n}: probability of {name}"
            for n in range(int(num_samples))
            for k, name in enumerate(scheme.names)
        }
    return {
        "inputs": {
            "image": {
                "type": "image",
                "format": "magnitude",
                "modality": modality,
                "num_channels": int(info["num_channels"]),
                "spatial_shape": patch,
                "dtype": "float32",
                "value_range": [],
                "is_patch_data": True,
                "channel_def": channels or {str(c): f"channel {c}" for c in range(int(info["num_channels"]))},
            }
        },
        "outputs": {
            "pred": {
                "type": "image",
                "format": "probabilities",
                "num_channels": len(outputs),
                "spatial_shape": patch,
                "dtype": "float32",
                "value_range": [0, 1],
                "is_patch_data": True,
                "channel_def": outputs,
            }
        },
    }


def bundle_metadata(
    info: Mapping[str, Any],
    name: str,
    folds: Sequence[str],
    num_samples: int,
    num_inference_steps: int,
    version: str = "0.1.0",
    changelog: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The content of ``configs/metadata.json``.

    Args:
        info: the exported fold's ``model.json``.
        name: the bundle's name (its folder name).
        folds: the fold folders copied into the bundle.
        num_samples: ensemble size of the exported network and of the bundle's inference.
        num_inference_steps: DDIM steps.
        version: the bundle's version.
        changelog: ``{version: change}``; default: one entry for this export.
    """
    import monai
    import numpy
    import torch

    source = training_bundle_metadata(info.get("bundle_name"))
    dataset = info.get("dataset_name") or "the training dataset"
    today = datetime.date.today().isoformat()
    description = source.get("description") or (
        f"MedSegLatDiff latent diffusion segmenter trained on {dataset}: an image autoencoder, a mask VAE and a "
        "latent denoiser (MONAI AutoencoderKL, DiffusionModelUNet); DDIM samples several plausible masks per image."
    )
    threshold = float(dict(info.get("inference") or {}).get("threshold", 0.5))
    return {
        "schema": MONAI_SCHEMA_URL,
        "version": version,
        "changelog": dict(
            changelog
            or {
                version: f"exported by medseglatdiff on {today} from {', '.join(folds)} "
                f"({info.get('configuration')} configuration)"
            }
        ),
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "required_packages_version": package_versions(REQUIRED_PACKAGES),
        "name": name,
        "task": source.get("task") or f"Segmentation with sample ensembles and a confidence map ({dataset})",
        "description": description
        + f" Exported network (models/model.pt, models/model.ts): a normalised image patch in, {num_samples} sampled"
        f" foreground probabilities out ({num_inference_steps} DDIM steps)."
        " configs/inference.json runs medseg predict on"
        " raw image files (preprocessing as the plan says, sliding windows, original geometry): mask, probability and"
        " confidence maps.",
        "authors": source.get("authors") or "medseglatdiff contributors",
        "copyright": source.get("copyright") or "Copyright (c) medseglatdiff contributors, Apache-2.0",
        "data_source": source.get("data_source") or str(dataset),
        "data_type": source.get("data_type") or str(info.get("file_ending") or "images"),
        "image_classes": source.get("image_classes")
        or f"{info['num_channels']} channel(s), normalised as plans.json says",
        "label_classes": source.get("label_classes")
        or ", ".join(f"{v}: {k}" for k, v in dict(info.get("labels") or {}).items()),
        "pred_classes": (
            f"{num_samples} sampled foreground probabilities; their mean thresholded at {threshold:g} is the mask, "
            "1 - binary entropy of the mean the confidence"
        ),
        "eval_metrics": dict(source.get("eval_metrics") or {}),
        "intended_use": source.get("intended_use") or "Research only; not for clinical use.",
        "references": list(
            source.get("references")
            or [
                "Huynh Trinh Ngoc et al., Diffusion Model in Latent Space for Medical Image Segmentation Task, "
                "arXiv:2512.01292"
            ]
        ),
        "network_data_format": network_data_format(info, num_samples, _modality(info, source)),
        "medseglatdiff": {
            "bundle_name": info.get("bundle_name"),
            "configuration": info.get("configuration"),
            "folds": list(folds),
            "num_samples": int(num_samples),
            "num_inference_steps": int(num_inference_steps),
            "threshold": threshold,
            "spatial_dims": int(info["spatial_dims"]),
        },
    }


def verify_bundle(bundle_dir: str | os.PathLike, net_in_out: bool = True) -> None:
    """Run MONAI's ``verify_metadata`` (against :func:`schema_path`) and ``verify_net_in_out`` on a bundle.

    Raises:
        ValueError: the metadata or the network's input/output does not match (MONAI's message).
    """
    from monai.bundle import verify_metadata, verify_net_in_out

    bundle_dir = Path(bundle_dir)
    meta_file = str(bundle_dir / "configs" / "metadata.json")
    verify_metadata(meta_file=meta_file, filepath=str(schema_path()))
    if net_in_out:
        verify_net_in_out(
            net_id="network_def",
            meta_file=meta_file,
            config_file=str(bundle_dir / "configs" / "inference.json"),
            device="cpu",
        )
