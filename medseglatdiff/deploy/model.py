"""Which exported bundle the deploy app runs: found from ``-m MODEL`` (or ``HOLOSCAN_MODEL_PATH``).

``MODEL`` may be the bundle folder (``dist/lidc``), its ``models/`` folder, a folder holding exactly one bundle
(what ``monai-deploy package -m dist`` puts at ``/opt/holoscan/models`` in the container), or a trained model
folder (``WORK/results/<bundle>/<configuration>`` or one ``fold_K``: predict uses it as it is).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.model_loading import find_folds, is_fold_dir
from medseglatdiff.training.model_info import load_model_info, model_label_scheme

METADATA = Path("configs") / "metadata.json"


@dataclass(frozen=True)
class DeployModel:
    """The trained folds the app predicts with, and what the DICOM SEG says about them.

    Attributes:
        model_dir: the folder given to ``medseg predict`` (``<bundle>/models/<configuration>``).
        name: the model's name (the bundle's, else the training bundle's).
        version: the bundle's version.
        segment_label: what the mask shows (e.g. "nodule"; with several classes or regions, their names joined).
        segments: one DICOM SEG segment per class or region: ``(name, label value)``; segment ``k`` (from 1) holds
            the voxels of the label map with that value (for regions: the innermost region a voxel is in).
        num_samples: ensemble size (None: the model selection's or the plan's).
        num_inference_steps: DDIM steps (None: the model selection's or the plan's).
        metadata: the bundle's ``metadata.json`` (empty for a trained model folder).
    """

    model_dir: Path
    name: str
    version: str
    segment_label: str
    segments: tuple[tuple[str, int], ...] = (("foreground", 1),)
    num_samples: int | None = None
    num_inference_steps: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_bundle(path: Path) -> bool:
    return (path / METADATA).is_file() and (path / "models").is_dir()


def find_bundle(path: str | os.PathLike) -> Path | None:
    """The bundle folder ``path`` designates (see the module doc), or None when it is no bundle."""
    path = Path(path)
    if _is_bundle(path):
        return path
    if path.name == "models" and _is_bundle(path.parent):
        return path.parent
    if path.is_dir():
        bundles = [p for p in sorted(path.iterdir()) if p.is_dir() and _is_bundle(p)]
        if len(bundles) == 1:
            return bundles[0]
        if len(bundles) > 1:
            raise MedsegError(
                f"{path}: holds several bundles ({', '.join(p.name for p in bundles)}); pass -m with one of them"
            )
    return None


def _segment_label(model_dir: Path) -> str:
    info = load_model_info(find_folds(model_dir)[0])
    scheme = model_label_scheme(info)
    if "label_scheme" in info:
        return " + ".join(scheme.names)
    classes = list(dict(info.get("mask") or {}).get("classes") or {})
    return " + ".join(classes) if classes else "foreground"


def _segments(model_dir: Path) -> tuple[tuple[str, int], ...]:
    """The SEG's segments: one per class or region of the model's label scheme, with its label-map value."""
    info = load_model_info(find_folds(model_dir)[0])
    if "label_scheme" not in info:
        return ((_segment_label(model_dir), 1),)
    scheme = model_label_scheme(info)
    if scheme.kind == "binary":
        return ((_segment_label(model_dir), scheme.label_values[0]),)
    return tuple(zip(scheme.names, scheme.label_values))


def resolve_model(path: str | os.PathLike) -> DeployModel:
    """The :class:`DeployModel` of ``-m MODEL``.

    Raises:
        MedsegError: ``path`` is neither a bundle nor a trained model folder (the message says what to pass),
            or the bundle lacks its trained folds.
    """
    path = Path(path)
    if not path.exists():
        raise MedsegError(
            f"{path}: model not found; pass -m with an exported bundle "
            "(medseg export --model TRAINED_DIR --out dist/NAME)"
        )
    bundle = find_bundle(path)
    if bundle is None:
        if not (is_fold_dir(path) or any(p.is_dir() for p in path.glob("fold_*"))):
            raise MedsegError(
                f"{path}: neither an exported bundle (configs/metadata.json + models/) nor a trained model folder; "
                "export one with `medseg export --model TRAINED_DIR --out dist/NAME`"
            )
        info = load_model_info(find_folds(path)[0])
        name = str(info.get("bundle_name") or path.name)
        return DeployModel(path, name, "0.0.0", _segment_label(path), _segments(path))
    metadata = json.loads((bundle / METADATA).read_text(encoding="utf-8"))
    ours = dict(metadata.get("medseglatdiff") or {})
    model_dir = bundle / "models" / str(ours.get("configuration", ""))
    if not ours.get("configuration") or not model_dir.is_dir():
        raise MedsegError(
            f"{bundle / METADATA}: names no trained folds under models/ (was it made by `medseg export`?); "
            "export the model again"
        )
    return DeployModel(
        model_dir=model_dir,
        name=str(metadata.get("name") or bundle.name),
        version=str(metadata.get("version") or "0.0.0"),
        segment_label=_segment_label(model_dir),
        segments=_segments(model_dir),
        num_samples=ours.get("num_samples"),
        num_inference_steps=ours.get("num_inference_steps"),
        metadata=metadata,
    )
