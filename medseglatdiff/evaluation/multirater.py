"""Metrics for a set of sampled masks against a set of rater masks (binary, one foreground class).

Definitions follow the multi-rater literature; ``docs/metrics.md`` gives the formulas and how they match the
published ones:

- ``ged``: generalised energy distance, 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')], with d = 1 - IoU and
  d(empty, empty) = 0. Expectations run over **all** ordered pairs, the identical pairs included (as in the
  Probabilistic U-Net and PHiSeg evaluation code).
- ``hm_iou``: Hungarian-matched IoU: the rater masks are repeated to the number of samples, matched one-to-one with
  the samples minimising 1 - IoU (scipy's linear_sum_assignment), and the matched IoUs averaged.
- ``ci_score``: CIMD's combined score from combined sensitivity S_c, D_max and diversity agreement D_a; we combine
  them by their harmonic mean, 3 / (1/S_c + 1/D_max + 1/D_a) (0 when any is 0).
- ``expected_calibration_error``: binned |mean probability - mean soft target| weighted by bin size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment


def _flat(masks: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Stack binary masks as (N, voxels) float64 rows."""
    stack = np.stack([np.asarray(m) > 0 for m in masks]) if not isinstance(masks, np.ndarray) else np.asarray(masks) > 0
    return stack.reshape(stack.shape[0], -1).astype(np.float64)


def pairwise_iou(a: Sequence[np.ndarray] | np.ndarray, b: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """IoU of every mask in ``a`` with every mask in ``b`` (shape (len(a), len(b))); IoU(empty, empty) = 1."""
    fa, fb = _flat(a), _flat(b)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def pairwise_dice(a: Sequence[np.ndarray] | np.ndarray, b: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Dice of every mask in ``a`` with every mask in ``b``; Dice(empty, empty) = 1."""
    fa, fb = _flat(a), _flat(b)
    inter = fa @ fb.T
    total = fa.sum(1)[:, None] + fb.sum(1)[None, :]
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def generalized_energy_distance(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> float:
    """GED = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')] with d = 1 - IoU (lower is better, 0 is perfect)."""
    d_sy = 1.0 - pairwise_iou(samples, raters)
    d_ss = 1.0 - pairwise_iou(samples, samples)
    d_yy = 1.0 - pairwise_iou(raters, raters)
    return float(2.0 * d_sy.mean() - d_ss.mean() - d_yy.mean())


def hungarian_matched_iou(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> float:
    """HM-IoU: raters repeated to the sample count, matched to samples by the Hungarian algorithm, mean IoU."""
    n = len(samples)
    repeated = [raters[i % len(raters)] for i in range(n)]
    iou = pairwise_iou(repeated, samples)
    rows, cols = linear_sum_assignment(1.0 - iou)
    return float(iou[rows, cols].mean())


def combined_sensitivity(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> float:
    """S_c: share of the raters' union covered by the samples' union (1 when the raters' union is empty)."""
    union_s = _flat(samples).max(0)
    union_y = _flat(raters).max(0)
    return float((union_s * union_y).sum() / union_y.sum()) if union_y.sum() > 0 else 1.0


def max_dice_matching(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> float:
    """D_max: for each rater the best Dice against any sample, averaged over raters."""
    return float(pairwise_dice(raters, samples).max(axis=1).mean())


def diversity_agreement(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> float:
    """D_a = 1 - (|dV_max| + |dV_min|) / 2, V = pairwise 1 - Dice within raters (Y) and within samples (S).

    dV_max = max V_Y - max V_S and dV_min = min V_Y - min V_S over distinct pairs; 1 when the samples spread
    exactly as much as the raters do. Needs at least two samples and two raters.
    """
    if len(samples) < 2 or len(raters) < 2:
        raise ValueError("diversity agreement needs at least two samples and two raters")

    def spread(masks: Sequence[np.ndarray]) -> tuple[float, float]:
        d = 1.0 - pairwise_dice(masks, masks)
        off = d[~np.eye(len(masks), dtype=bool)]
        return float(off.max()), float(off.min())

    y_max, y_min = spread(raters)
    s_max, s_min = spread(samples)
    return float(1.0 - (abs(y_max - s_max) + abs(y_min - s_min)) / 2.0)


def ci_score(samples: Sequence[np.ndarray], raters: Sequence[np.ndarray]) -> dict[str, float]:
    """CIMD's collective insight score and its parts: harmonic mean of S_c, D_max and D_a."""
    parts = {
        "combined_sensitivity": combined_sensitivity(samples, raters),
        "d_max": max_dice_matching(samples, raters),
        "diversity_agreement": diversity_agreement(samples, raters),
    }
    values = list(parts.values())
    parts["ci"] = 0.0 if min(values) <= 0 else float(3.0 / sum(1.0 / v for v in values))
    return parts


def reliability_curve(probability: np.ndarray, target: np.ndarray, num_bins: int = 10) -> dict[str, np.ndarray]:
    """Per probability bin: voxel count, mean predicted probability and mean target (soft or binary).

    Bins are equal-width on [0, 1]; the last bin includes 1. Empty bins have count 0 and NaN means.
    """
    p = np.asarray(probability, dtype=np.float64).reshape(-1)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"probability and target sizes differ: {p.shape} vs {y.shape}")
    index = np.clip((p * num_bins).astype(int), 0, num_bins - 1)
    counts = np.bincount(index, minlength=num_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=num_bins) / counts
        mean_y = np.bincount(index, weights=y, minlength=num_bins) / counts
    return {
        "count": counts,
        "mean_probability": mean_p,
        "mean_target": mean_y,
        "edges": np.linspace(0, 1, num_bins + 1),
    }


def expected_calibration_error(probability: np.ndarray, target: np.ndarray, num_bins: int = 10) -> float:
    """ECE = sum over bins of (bin share) * |mean probability - mean target|."""
    curve = reliability_curve(probability, target, num_bins)
    filled = curve["count"] > 0
    weights = curve["count"][filled] / curve["count"].sum()
    return float((weights * np.abs(curve["mean_probability"][filled] - curve["mean_target"][filled])).sum())
