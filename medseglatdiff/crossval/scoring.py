"""Score stored sample ensembles in memory, for every ensemble size at once (model selection's inner loop).

The conventions are those of ``medseg evaluate`` (:mod:`medseglatdiff.evaluation`): Dice of the final mask against
the reference foreground (every foreground class together: the model predicts their union), Dice(empty, empty)
= 1; GED and HM-IoU of the samples, binarised at 0.5, against the rater masks. An ensemble of size k is the first
k stored samples (samples are independent draws, so the first k are a random subset of k).

Everything is computed on the box that holds every mask and every sample's support (plus one voxel), which
changes no overlap score and keeps 3D volumes cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.evaluation.multirater import pairwise_iou
from medseglatdiff.io.readers import read_image

SAMPLE_THRESHOLD = 0.5


@dataclass
class Reference:
    """A case's reference foreground and rater masks (boolean, without channel axis)."""

    foreground: np.ndarray
    raters: list[np.ndarray]


def load_reference(spec: DatasetSpec, case: str) -> Reference:
    """The union of the label's foreground classes and the binarised rater masks of ``case``."""
    label = read_image(spec.label_file(case)).array[0] > 0
    raters = [read_image(path).array[0] > 0 for path in spec.rater_files(case)]
    return Reference(label, raters)


def content_box(samples: np.ndarray, reference: Reference, low: float) -> tuple[slice, ...]:
    """The box holding the reference, the raters and every voxel where a sample reaches ``low``, plus a margin."""
    content = reference.foreground | (samples.max(axis=0) >= low)
    for rater in reference.raters:
        content |= rater
    if not content.any():
        return tuple(slice(0, 1) for _ in content.shape)
    where = np.argwhere(content)
    return tuple(
        slice(max(int(a) - 1, 0), min(int(b) + 2, s)) for a, b, s in zip(where.min(0), where.max(0), content.shape)
    )


def crop_case(samples: np.ndarray, reference: Reference, low: float = 0.05) -> tuple[np.ndarray, Reference]:
    """``samples`` and ``reference`` cut to :func:`content_box` (no overlap score changes)."""
    box = content_box(samples, reference, low)
    return samples[(slice(None), *box)], Reference(reference.foreground[box], [r[box] for r in reference.raters])


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two binary masks; 1 when both are empty."""
    a, b = np.asarray(prediction, dtype=bool), np.asarray(reference, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def ensemble_means(samples: np.ndarray) -> list[np.ndarray]:
    """Mean probability of the first k samples, for k = 1..N."""
    running = np.zeros(samples.shape[1:], dtype=np.float64)
    means = []
    for k, sample in enumerate(samples, start=1):
        running += sample
        means.append((running / k).astype(np.float32))
    return means


def size_curves(samples: np.ndarray, reference: Reference, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Scores of the ensembles of the first k samples, k = 1..N: ``dice`` (and ``ged``, ``hm_iou`` with raters).

    Args:
        samples: ``(N, ...)`` probabilities (cropped with :func:`crop_case` for speed).
        reference: the case's reference on the same grid.
        threshold: mean probability at which a voxel is foreground.
    """
    n = samples.shape[0]
    curves = {"dice": np.array([dice(mean >= threshold, reference.foreground) for mean in ensemble_means(samples)])}
    if reference.raters:
        binary = samples >= SAMPLE_THRESHOLD
        raters = reference.raters
        iou_ss, iou_sy, iou_yy = (
            pairwise_iou(binary, binary),
            pairwise_iou(binary, raters),
            pairwise_iou(raters, raters),
        )
        d_yy = float((1.0 - iou_yy).mean())
        ged, hm = np.zeros(n), np.zeros(n)
        for k in range(1, n + 1):
            ged[k - 1] = 2.0 * (1.0 - iou_sy[:k]).mean() - (1.0 - iou_ss[:k, :k]).mean() - d_yy
            matched = iou_sy[:k][:, [i % len(raters) for i in range(k)]].T  # (repeated raters, samples)
            rows, cols = linear_sum_assignment(1.0 - matched)
            hm[k - 1] = matched[rows, cols].mean()
        curves["ged"], curves["hm_iou"] = ged, hm
    return curves


def threshold_dice(mean: np.ndarray, reference: Reference, thresholds: Sequence[float]) -> list[float]:
    """Dice of ``mean >= t`` for every threshold ``t``."""
    return [dice(mean >= t, reference.foreground) for t in thresholds]
