"""Map predictions on the preprocessed grid back to a case's original grid (the inverse of preprocessing).

The steps of :func:`~medseglatdiff.preprocessing.preprocess.preprocess_arrays` are undone in reverse order:
resample from ``shape_after_resampling`` back to ``shape_after_crop`` (labels: one-hot linear + arg-max, no class
lost; probabilities: linear), then paste into a background canvas of ``original_shape`` at the crop box. The result
lies on the original grid, with the original geometry (:func:`original_geometry`), ready for ``write_image``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.preprocessing.cropping import uncrop
from medseglatdiff.preprocessing.resampling import resample_label, resample_linear


def load_properties(path: str | os.PathLike) -> dict[str, Any]:
    """Read a preprocessed case's ``<case>.json`` properties."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MedsegError(f"{path}: properties not found; run `medseg preprocess` for this case") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MedsegError(f"{path}: not valid JSON ({exc}); delete it and re-run `medseg preprocess`") from exc


def original_geometry(properties: Mapping[str, Any]) -> Geometry:
    """The geometry of the case's original grid."""
    return Geometry.from_dict(properties["original_geometry"])


def _channel_first(array: np.ndarray, properties: Mapping[str, Any]) -> np.ndarray:
    array = np.asarray(array)
    expected = list(properties["shape_after_resampling"])
    if list(array.shape) == expected:
        array = array[None]
    if list(array.shape[1:]) != expected:
        raise MedsegError(
            f"case {properties.get('case_id')}: prediction shape {list(array.shape)} does not match the preprocessed "
            f"grid {expected}; predict on the preprocessed case of the same configuration"
        )
    return array


def restore_label(label: np.ndarray, properties: Mapping[str, Any]) -> np.ndarray:
    """An integer label map (or stack of masks) on the preprocessed grid, mapped to the original grid.

    Args:
        label: (C, ...) or (...) on the preprocessed grid.
        properties: the case's properties (``<case>.json``).

    Returns:
        (C, *original_shape) with the input's dtype; background (0) outside the crop box.
    """
    array = _channel_first(label, properties)
    resampled = resample_label(array, properties["shape_after_crop"], properties.get("separate_axis"))
    return uncrop(resampled.astype(array.dtype), properties["bbox"], properties["original_shape"], fill=0)


def restore_probabilities(
    probabilities: np.ndarray, properties: Mapping[str, Any], fill: float | None = None
) -> np.ndarray:
    """Soft maps (C, ...) on the preprocessed grid, mapped linearly to the original grid (float32).

    Args:
        probabilities: (C, ...) or (...) values in [0, 1].
        properties: the case's properties.
        fill: value outside the crop box; default 0 (for a C > 1 softmax, channel 0 gets 1: background).
    """
    array = _channel_first(probabilities, properties)
    resampled = np.clip(
        resample_linear(array, properties["shape_after_crop"], properties.get("separate_axis")), 0.0, 1.0
    )
    out = uncrop(resampled, properties["bbox"], properties["original_shape"], fill=0.0 if fill is None else fill)
    if fill is None and out.shape[0] > 1:
        inside = np.zeros(out.shape[1:], dtype=bool)
        inside[tuple(slice(s, e) for s, e in properties["bbox"])] = True
        out[0][~inside] = 1.0
    return out
