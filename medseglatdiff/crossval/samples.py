"""Sample the validation cases of a fold on their original grid, and keep every sample's probability.

A raw case (the dataset's own files, so the scores are those of ``medseg predict`` on new images) is read,
preprocessed as the fold's plan says, sampled with DDIM (:func:`medseglatdiff.inference.sampling.sample_image`)
and every sample is mapped back to the original grid. The samples are stored as ``uint8`` probabilities
(``round(255 p)``, compressed) so that model selection can re-threshold and re-ensemble them later without
sampling again; the seconds spent sampling are stored with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.inputs import InputCase, read_input_case
from medseglatdiff.inference.model_loading import TrainedFold
from medseglatdiff.inference.sampling import sample_image
from medseglatdiff.io.atomic import atomic_path
from medseglatdiff.preprocessing.case_io import RawCase
from medseglatdiff.preprocessing.inverse import restore_probabilities
from medseglatdiff.preprocessing.preprocess import preprocess_arrays
from medseglatdiff.training.model_info import model_label_scheme


@dataclass
class SampledCase:
    """One case's samples on its original grid.

    Attributes:
        raw: the raw case as read (image and geometry).
        properties: its preprocessing properties (crop box, shapes, original geometry).
        samples: ``(N, *original shape)`` foreground probabilities.
        seconds: time spent sampling (the networks only: no reading, preprocessing or writing).
    """

    raw: RawCase
    properties: dict[str, Any]
    samples: np.ndarray
    seconds: float


def read_raw_case(spec: DatasetSpec, case: str, fold: TrainedFold) -> RawCase:
    """Read a raw dataset case's image files as ``medseg predict`` reads an input."""
    files = tuple(spec.image_files(case))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MedsegError(
            f"{missing[0]}: image of validation case {case!r} not found in the raw dataset {spec.root}; "
            "pass --raw with the dataset that was planned"
        )
    input_dims = 3 if fold.info.get("slice_axis") is not None else int(fold.info["spatial_dims"])
    return read_input_case(InputCase(case, files), int(fold.info["num_channels"]), input_dims)


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
    """Preprocess ``raw`` with the fold's plan, sample ``num_samples`` masks with ``steps`` DDIM steps, map them
    back."""
    arrays, properties = preprocess_arrays(raw, fold.preprocessing)
    properties["case_id"] = raw.case_id
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    scheme = model_label_scheme(fold.info)
    if scheme.num_channels != 1:
        raise MedsegError(
            f"{fold.path}: cross-validation scores one foreground; this model has {scheme.describe()}. "
            "Use `medseg predict` and `medseg evaluate` (per class/region)"
        )
    probabilities = sample_image(
        fold, arrays["image"], num_samples, steps, seed=seed, overlap=window_overlap, max_batch=max_batch, device=device
    )[:, 0]  # the one foreground channel
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    samples = restore_probabilities(probabilities, properties, fill=0.0)  # (N, *original shape)
    return SampledCase(raw, properties, samples, seconds)


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
