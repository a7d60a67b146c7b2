"""The model selection file: what ``medseg find_best_configuration`` chose for a trained model.

``TRAINED_DIR/model_selection.json`` (looked up in the folder given to ``medseg predict --model``, then, for a
``fold_K`` folder, in its parent configuration folder). Every key is optional; absent keys keep the plan's
values, and command-line flags win over both::

    {
      "selection_version": 2,
      "num_samples": 8,                            samples per image
      "num_inference_steps": 20,                   DDIM steps
      "threshold": 0.45,                           mean probability at which a pixel is foreground
      "postprocessing": ["keep_largest_component", "fill_holes"],
      "reasons": {"postprocessing": "mean Dice 0.712 -> 0.731 on the cross-validation, no class worse", ...}
    }

``postprocessing`` lists steps of :mod:`medseglatdiff.postprocessing.connected_components`, applied in order to
the final mask only. The selection enables a step only when it improves the mean Dice of the cross-validation
predictions and makes no class worse (nnU-Net's rule); without this file nothing is postprocessed. A version-1
file (``ensemble_size`` instead of ``num_samples``) is read as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.json_files import read_json
from medseglatdiff.postprocessing.connected_components import POSTPROCESSING_STEPS

MODEL_SELECTION_FILE = "model_selection.json"
SELECTION_VERSION = 2  # 2: ensemble_size renamed num_samples
KNOWN_KEYS = ("selection_version", "num_samples", "num_inference_steps", "threshold", "postprocessing", "reasons")


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 selection (``ensemble_size``) in the current form."""
    if data.get("selection_version") == 1:
        data = {("num_samples" if k == "ensemble_size" else k): v for k, v in data.items()}
        data["selection_version"] = SELECTION_VERSION
    return data


@dataclass(frozen=True)
class ModelSelection:
    """The chosen inference settings (None: keep the plan's value) and the file they came from."""

    num_samples: int | None = None
    num_inference_steps: int | None = None
    threshold: float | None = None
    postprocessing: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"selection_version": SELECTION_VERSION}
        for key in ("num_samples", "num_inference_steps", "threshold"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["postprocessing"] = list(self.postprocessing)
        if self.reasons:
            data["reasons"] = dict(self.reasons)
        return data


def _problems(data: dict[str, Any]) -> list[str]:
    problems = []
    if data.get("selection_version", SELECTION_VERSION) != SELECTION_VERSION:
        problems.append(f"selection_version must be {SELECTION_VERSION}")
    for key in ("num_samples", "num_inference_steps"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append(f"{key} must be a positive integer, got {value!r}")
    threshold = data.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0
    ):
        problems.append(f"threshold must be a number strictly between 0 and 1, got {threshold!r}")
    steps = data.get("postprocessing", [])
    if not isinstance(steps, list) or any(s not in POSTPROCESSING_STEPS for s in steps):
        problems.append(f"postprocessing must be a list of steps from {', '.join(POSTPROCESSING_STEPS)}, got {steps!r}")
    unknown = sorted(set(data) - set(KNOWN_KEYS))
    if unknown:
        problems.append(f"unknown keys {', '.join(unknown)} (known: {', '.join(KNOWN_KEYS)})")
    return problems


def read_model_selection(path: str | os.PathLike) -> ModelSelection:
    """Parse one model selection file; every problem is listed at once with the fix."""
    path = Path(path)
    data = _upgraded(read_json(path, fix="fix it or delete it to use the plan's settings", require_object=True))
    problems = _problems(data)
    if problems:
        raise MedsegError(f"{path}: invalid model selection: " + "; ".join(problems) + "; fix it or delete the file")
    return ModelSelection(
        num_samples=data.get("num_samples"),
        num_inference_steps=data.get("num_inference_steps"),
        threshold=float(data["threshold"]) if data.get("threshold") is not None else None,
        postprocessing=tuple(data.get("postprocessing", [])),
        reasons={str(k): str(v) for k, v in dict(data.get("reasons", {})).items()},
        path=path,
    )


def find_model_selection(model_dir: str | os.PathLike) -> Path | None:
    """``model_dir/model_selection.json``, else (for a ``fold_K`` folder) the parent's; None when neither exists."""
    model_dir = Path(model_dir)
    for folder in (model_dir, model_dir.parent) if model_dir.name.startswith("fold_") else (model_dir,):
        if (folder / MODEL_SELECTION_FILE).is_file():
            return folder / MODEL_SELECTION_FILE
    return None


def load_model_selection(model_dir: str | os.PathLike) -> ModelSelection:
    """The model selection of a trained model folder; an empty one (plan defaults) when there is no file."""
    path = find_model_selection(model_dir)
    return read_model_selection(path) if path is not None else ModelSelection()


def write_model_selection(selection: ModelSelection, model_dir: str | os.PathLike) -> Path:
    """Write ``model_dir/model_selection.json`` atomically (what the model selection stage calls)."""
    problems = _problems(selection.to_dict())
    if problems:
        raise MedsegError(f"invalid model selection: {'; '.join(problems)}")
    return write_json_atomic(Path(model_dir) / MODEL_SELECTION_FILE, selection.to_dict())
