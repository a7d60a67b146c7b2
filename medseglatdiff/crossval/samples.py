"""The sample store of cross-validation: every sample's probability of every validation case, for model selection.

Cross-validation predicts its validation cases with ``medseg predict``'s function
(:func:`medseglatdiff.inference.predict.predict_cases`) and keeps each case's samples here, as ``uint8``
probabilities (``round(255 p)``, compressed) with the steps, seed and sampling seconds, so that model selection can
re-threshold and re-ensemble them later without sampling again. Model selection samples the other step counts
with the same sampler (:func:`medseglatdiff.inference.sampling.sample_raw_case`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.inputs import dataset_input_case, read_input_case
from medseglatdiff.inference.model_loading import TrainedFold
from medseglatdiff.inference.sampling import SampledCase, sample_raw_case
from medseglatdiff.io.atomic import atomic_path
from medseglatdiff.preprocessing.case_io import RawCase
from medseglatdiff.training.model_info import model_label_scheme


def read_raw_case(spec: DatasetSpec, case: str, fold: TrainedFold) -> RawCase:
    """Read a raw dataset case's image files as ``medseg predict`` reads an input."""
    input_dims = 3 if fold.info.get("slice_axis") is not None else int(fold.info["spatial_dims"])
    return read_input_case(dataset_input_case(spec, case), int(fold.info["num_channels"]), input_dims)


def sample_case(
    raw: RawCase,
    fold: TrainedFold,
    num_samples: int,
    steps: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    window_overlap: float = 0.25,
    max_batch: int | None = None,
) -> SampledCase:
    """``num_samples`` one-foreground samples ``(N, *original shape)`` of ``raw`` at ``steps`` DDIM steps, through
    ``medseg predict``'s sampler."""
    scheme = model_label_scheme(fold.info)
    if scheme.num_channels != 1:
        raise MedsegError(
            f"{fold.path}: cross-validation scores one foreground; this model has {scheme.describe()}. "
            "Use `medseg predict` and `medseg evaluate` (per class/region)"
        )
    sampled = sample_raw_case(raw, [fold], [num_samples], steps, seed, window_overlap, max_batch, device)
    return SampledCase(sampled.properties, sampled.samples[:, 0], sampled.seconds)


def save_samples(path: Path, samples: np.ndarray, steps: int, seed: int, seconds: float) -> Path:
    """Store ``(N, ...)`` probabilities as compressed ``uint8`` (1/255 steps) with how they were made."""
    quantised = np.rint(np.clip(np.asarray(samples, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            samples=quantised,
            num_samples=np.int64(quantised.shape[0]),
            steps=np.int64(steps),
            seed=np.int64(seed),
            seconds=np.float64(seconds),
        )
    return path


def load_samples(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """``(N, ...)`` float32 probabilities and ``{"steps", "seed", "seconds", "num_samples"}`` of a stored file."""
    try:
        with np.load(path) as data:
            samples = data["samples"].astype(np.float32) / 255.0
            meta = {
                "steps": int(data["steps"]),
                "seed": int(data["seed"]),
                "seconds": float(data["seconds"]),
                "num_samples": int(samples.shape[0]),
            }
    except (OSError, KeyError, ValueError) as exc:
        raise MedsegError(
            f"{path}: unreadable stored samples ({exc}); delete it and run the command again to sample the case anew"
        ) from exc
    return samples, meta


def stored(path: Path, num_samples: int, steps: int, seed: int) -> bool:
    """Whether ``path`` holds samples made with these settings (a finished case to skip)."""
    if not path.is_file():
        return False
    try:
        with np.load(path) as data:
            return (
                int(data["num_samples"]) == int(num_samples)
                and int(data["steps"]) == int(steps)
                and int(data["seed"]) == int(seed)
            )
    except (OSError, KeyError, ValueError):
        return False
