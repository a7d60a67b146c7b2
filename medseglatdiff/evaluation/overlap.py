"""Per-class Dice, IoU, HD95 and ASSD of one predicted label map against one reference, with MONAI's metrics.

Conventions (documented in ``docs/metrics.md``): a class absent from both prediction and reference scores
Dice = IoU = 1 and distances 0 (nothing to find, nothing found); absent from exactly one, Dice = IoU = 0 and
distances are NaN (undefined), so means over cases skip them and the overlap scores carry the penalty.
Thresholds are never averaged: masks are binarised once, at the chosen threshold (0.5 by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance, compute_iou


def _one_hot(label: np.ndarray, classes: Sequence[int]) -> torch.Tensor:
    """(x, y[, z]) integer map -> (1, K, x, y[, z]) binary tensor for the given class values."""
    label = np.asarray(label)
    return torch.from_numpy(np.stack([label == c for c in classes])[None].astype(np.float32))


def overlap_metrics(
    prediction: np.ndarray,
    reference: np.ndarray,
    classes: Sequence[int] = (1,),
    spacing: Sequence[float] | None = None,
    surface: bool = True,
) -> dict[int, dict[str, float]]:
    """Dice, IoU (and HD95, ASSD in world units when ``surface``) for each foreground class value.

    Args:
        prediction: integer label map without a channel axis, shape (x, y[, z]).
        reference: same shape.
        classes: the foreground class values to score.
        spacing: voxel spacing for the distances (default 1 per axis).
        surface: also compute the (slower) surface distances.
    """
    prediction = np.asarray(prediction)
    reference = np.asarray(reference)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    pred = _one_hot(prediction, classes)
    ref = _one_hot(reference, classes)
    dice = compute_dice(pred, ref, include_background=True, ignore_empty=False)[0]
    iou = compute_iou(pred, ref, include_background=True, ignore_empty=False)[0]
    results: dict[int, dict[str, float]] = {}
    for k, cls in enumerate(classes):
        scores = {"dice": float(dice[k]), "iou": float(iou[k])}
        if surface:
            scores.update(_surface_scores(pred[:, k : k + 1], ref[:, k : k + 1], spacing))
        results[int(cls)] = scores
    return results


def _surface_scores(pred: torch.Tensor, ref: torch.Tensor, spacing: Sequence[float] | None) -> dict[str, float]:
    pred_any, ref_any = bool(pred.any()), bool(ref.any())
    if not pred_any and not ref_any:
        return {"hd95": 0.0, "assd": 0.0}
    if pred_any != ref_any:
        return {"hd95": float("nan"), "assd": float("nan")}
    spacing_arg = list(spacing) if spacing is not None else None
    hd95 = compute_hausdorff_distance(pred, ref, include_background=True, percentile=95, spacing=spacing_arg)
    assd = compute_average_surface_distance(pred, ref, include_background=True, symmetric=True, spacing=spacing_arg)
    return {"hd95": float(hd95.reshape(-1)[0]), "assd": float(assd.reshape(-1)[0])}
