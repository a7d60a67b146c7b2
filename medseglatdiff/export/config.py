"""``configs/inference.json`` of an exported bundle, and how it finds its own folder when it runs.

The config reads top to bottom as model-zoo configs do: plain values (``input_dir``, ``output_dir``,
``num_samples``...), then ``network_def`` (the exported network, for ``ckpt_export``, ``verify_net_in_out`` and
anyone who wants the raw network), then ``run``, which calls :func:`medseglatdiff.inference.predict.predict` on
the trained folds copied into ``models/``::

    python -m monai.bundle run --config_file dist/NAME/configs/inference.json --input_dir IN --output_dir OUT

MONAI's ``ConfigWorkflow.run`` puts the bundle's folder on ``sys.path`` before it runs, whatever the current
folder is; :func:`locate_bundle_root` finds it there by the bundle's ``bundle_uid`` (written at export), so a
moved or copied bundle still runs. ``--bundle_root DIR`` overrides the search.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medseglatdiff.errors import MedsegError

INFERENCE_CONFIG = "inference.json"
UID_KEY = "bundle_uid"


class MissingArgumentError(MedsegError):
    """A value the bundle's command line must give was not given."""


def missing_argument(flag: str, meaning: str) -> Any:
    """Default of a required config value: raise, naming the flag (overriding the value skips this)."""
    raise MissingArgumentError(
        f"{flag} is required: {meaning} "
        f"(python -m monai.bundle run --config_file .../configs/{INFERENCE_CONFIG} --input_dir IN --output_dir OUT)"
    )


def _uid_of(config: Path) -> str | None:
    try:
        return json.loads(config.read_text(encoding="utf-8")).get(UID_KEY)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None


def locate_bundle_root(uid: str) -> str:
    """The folder of the exported bundle whose ``configs/inference.json`` has ``bundle_uid == uid``.

    Searched: the entries of ``sys.path`` (MONAI adds the bundle's folder there before ``run``), then the
    current folder.

    Raises:
        MedsegError: no such folder; the message says to pass ``--bundle_root``.
    """
    for entry in [*sys.path, os.getcwd()]:
        folder = Path(entry or ".")
        config = folder / "configs" / INFERENCE_CONFIG
        if config.is_file() and _uid_of(config) == uid:
            return str(folder.resolve())
    raise MedsegError(
        f"cannot find the folder of bundle {uid} (configs/{INFERENCE_CONFIG} with this bundle_uid); "
        "pass --bundle_root DIST/NAME"
    )


def inference_config(
    uid: str,
    configuration: str,
    networks: Mapping[str, Any],
    diffusion: Mapping[str, Any],
    num_samples: int,
    num_inference_steps: int,
    conditioning: str = "image_latent",
) -> dict[str, Any]:
    """The content of ``configs/inference.json`` (see the module doc).

    Args:
        uid: the bundle's unique id (how :func:`locate_bundle_root` recognises it).
        configuration: the folder under ``models/`` holding the trained ``fold_K`` folders.
        networks: the three networks' arguments (``model.json``'s ``networks``).
        diffusion: the noise schedule.
        num_samples: default ensemble size (of ``run`` and of ``network_def``).
        num_inference_steps: default DDIM steps.
        conditioning: what the denoiser sees of the image (``model.json``'s ``conditioning``).
    """
    return {
        "imports": [
            "$import os",
            "$import torch",
            "$import medseglatdiff",
            "$import medseglatdiff.export",
            "$import medseglatdiff.inference.predict",
        ],
        UID_KEY: uid,
        "bundle_root": f"$medseglatdiff.export.locate_bundle_root(@{UID_KEY})",
        "model_dir": f"$os.path.join(@bundle_root, 'models', '{configuration}')",
        "input_dir": (
            "$medseglatdiff.export.missing_argument('--input_dir', "
            "'an image file or a folder of images (PNG/JPEG, NIfTI, MHA/NRRD, DICOM series)')"
        ),
        "output_dir": (
            "$medseglatdiff.export.missing_argument('--output_dir', "
            "'the folder to write masks, probability and confidence maps into')"
        ),
        "fold": None,
        "num_samples": int(num_samples),
        "num_inference_steps": int(num_inference_steps),
        "threshold": None,
        "save_samples": False,
        "seed": 0,
        "window_overlap": 0.25,
        "device": "$'cuda' if torch.cuda.is_available() else 'cpu'",
        "network_def": {
            "_target_": "medseglatdiff.export.EnsembleSampler",
            "networks": dict(networks),
            "diffusion": dict(diffusion),
            "num_samples": "@num_samples",
            "num_inference_steps": "@num_inference_steps",
            "conditioning": conditioning,
        },
        "network": "$@network_def.to(@device)",
        "predict": (
            "$medseglatdiff.inference.predict.predict(@input_dir, @output_dir, @model_dir, num_samples=@num_samples, "
            "num_inference_steps=@num_inference_steps, fold=@fold, save_samples=@save_samples, threshold=@threshold, "
            "device=@device, seed=@seed, window_overlap=@window_overlap)"
        ),
        "initialize": [],
        "run": ["$@predict"],
        "finalize": [],
    }
