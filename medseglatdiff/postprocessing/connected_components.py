"""Postprocessing steps on label maps (each label on its own), with MONAI's transforms.

``apply_postprocessing`` runs the steps named in the model's postprocessing JSON, in order:
``keep_largest_component`` (monai.transforms.KeepLargestConnectedComponent) and ``fill_holes``
(monai.transforms.FillHoles). The model selection enables a step only when it improves mean Dice on the
cross-validation predictions and makes no class worse (nnU-Net's rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

POSTPROCESSING_STEPS = ("keep_largest_component", "fill_holes")


def _transform(step: str, labels: Sequence[int]):
    from monai.transforms import FillHoles, KeepLargestConnectedComponent

    if step == "keep_largest_component":
        return KeepLargestConnectedComponent(applied_labels=list(labels), is_onehot=False, connectivity=None)
    if step == "fill_holes":
        return FillHoles(applied_labels=list(labels))
    raise ValueError(f"unknown postprocessing step '{step}'; choose from {', '.join(POSTPROCESSING_STEPS)}")


def apply_postprocessing(mask: np.ndarray, steps: Sequence[str], labels: Sequence[int] = (1,)) -> np.ndarray:
    """Apply the named steps to a label map of shape (x, y[, z]), each of ``labels`` on its own (a binary mask:
    ``labels=(1,)``); returns a new uint8 map."""
    result = torch.as_tensor(np.asarray(mask, dtype=np.uint8)[None])
    for step in steps:
        result = _transform(step, labels)(result)
    return np.asarray(result)[0].astype(np.uint8)
