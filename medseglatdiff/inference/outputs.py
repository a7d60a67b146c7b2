"""Write one case's prediction in the input's format and geometry (layout: :mod:`medseglatdiff.inference.layout`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.engines.ensemble_summary import ChannelSummary, label_map_of
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
    summary: ChannelSummary,
    mask: np.ndarray,
    image: np.ndarray,
    geometry: Geometry,
    samples: np.ndarray | None = None,
    threshold: float = 0.5,
    scheme: LabelScheme | None = None,
) -> dict[str, Any]:
    """Write the label map, probability and confidence maps, optionally the samples, and the overlay PNG.

    Args:
        layout: the output folder's layout (its file ending is the case's).
        case: the case identifier.
        summary: the ensemble summary on the original grid (one channel, or one per class/region).
        mask: the final label map (after any postprocessing), shape (x, y[, z]).
        image: the input image (C, x, y[, z]) for the overlay.
        geometry: the input's geometry, given to every output.
        samples: sampled probabilities (N, K, x, y[, z]) to save as label maps; None: not saved.
        threshold: probability at which a sample's channel is foreground.
        scheme: the label scheme (None: one binary channel); with several channels each gets its own maps.

    Returns:
        ``{"mask": path, "probability": ..., "confidence": ..., "overlay": ..., "samples": [...]}``; with several
        channels ``probability`` and ``confidence`` are ``{name: path}``.
    """
    names = scheme.names if scheme is not None and len(summary.channels) > 1 else None
    written: dict[str, Any] = {"mask": write_image(np.asarray(mask, dtype=np.uint8)[None], geometry, layout.mask(case))}
    if names is None:
        written["probability"] = write_image(_map_array(summary.mean[0], layout), geometry, layout.probability(case))
        written["confidence"] = write_image(
            _map_array(summary.confidence[0], layout), geometry, layout.confidence(case)
        )
    else:
        written["probability"] = {
            n: str(write_image(_map_array(m, layout), geometry, layout.probability(case, n)))
            for n, m in zip(names, summary.mean)
        }
        written["confidence"] = {
            n: str(write_image(_map_array(c, layout), geometry, layout.confidence(case, n)))
            for n, c in zip(names, summary.confidence)
        }
    if samples is not None:
        written["samples"] = [
            write_image(label_map_of(s, scheme, threshold)[None], geometry, layout.sample(case, k))
            for k, s in enumerate(samples)
        ]
    # the overlay shows the least confident channel at each pixel
    written["overlay"] = write_overlay(image, mask, summary.confidence.min(axis=0), layout.overlay(case))
    return {
        k: v if isinstance(v, dict) else [str(p) for p in v] if isinstance(v, list) else str(v)
        for k, v in written.items()
    }


def relative(paths: dict[str, object], root: Path) -> dict[str, object]:
    """``paths`` relative to ``root`` (for prediction.json)."""

    def rel(p: str) -> str:
        try:
            return str(Path(p).resolve().relative_to(root.resolve()))
        except ValueError:
            return p

    def convert(v: object) -> object:
        if isinstance(v, dict):
            return {name: rel(str(p)) for name, p in v.items()}
        return [rel(p) for p in v] if isinstance(v, list) else rel(str(v))

    return {k: convert(v) for k, v in paths.items()}
