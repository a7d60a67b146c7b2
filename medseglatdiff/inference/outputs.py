"""Write one case's prediction in the input's format and geometry (layout: :mod:`medseglatdiff.inference.layout`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseglatdiff.engines.ensemble_summary import EnsembleSummary
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.inference.overlay import write_overlay
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.writers import write_image


def _map_array(values: np.ndarray, layout: PredictionLayout) -> np.ndarray:
    """A [0, 1] map as stored: round(255 * value) in 8-bit formats, float32 otherwise; channel axis added."""
    values = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[None]
    return np.rint(values * 255).astype(np.uint8) if layout.stores_8bit_maps else values


def write_case(
    layout: PredictionLayout,
    case: str,
    summary: EnsembleSummary,
    mask: np.ndarray,
    image: np.ndarray,
    geometry: Geometry,
    samples: np.ndarray | None = None,
    threshold: float = 0.5,
) -> dict[str, str]:
    """Write the mask, probability and confidence maps, optionally the samples, and the overlay PNG.

    Args:
        layout: the output folder's layout (its file ending is the case's).
        case: the case identifier.
        summary: the ensemble summary on the original grid.
        mask: the final label map (after any postprocessing), shape (x, y[, z]).
        image: the input image (C, x, y[, z]) for the overlay.
        geometry: the input's geometry, given to every output.
        samples: sampled probabilities (N, x, y[, z]) to save as binary masks (at ``threshold``); None: not saved.
        threshold: probability at which a sample's pixel is foreground.

    Returns:
        ``{"mask": path, "probability": ..., "confidence": ..., "overlay": ..., "samples": [...]}``.
    """
    written: dict[str, object] = {
        "mask": write_image(np.asarray(mask, dtype=np.uint8)[None], geometry, layout.mask(case)),
        "probability": write_image(_map_array(summary.mean, layout), geometry, layout.probability(case)),
        "confidence": write_image(_map_array(summary.confidence, layout), geometry, layout.confidence(case)),
    }
    if samples is not None:
        written["samples"] = [
            write_image((np.asarray(s) >= threshold).astype(np.uint8)[None], geometry, layout.sample(case, k))
            for k, s in enumerate(samples)
        ]
    written["overlay"] = write_overlay(image, mask, summary.confidence, layout.overlay(case))
    return {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in written.items()}  # type: ignore[union-attr]


def relative(paths: dict[str, object], root: Path) -> dict[str, object]:
    """``paths`` relative to ``root`` (for prediction.json)."""

    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(root.resolve()))
        except ValueError:
            return p

    return {k: [rel(p) for p in v] if isinstance(v, list) else rel(str(v)) for k, v in paths.items()}
