"""The dataset fingerprint (``dataset_fingerprint.json``): what the planner needs to know about a raw dataset.

Per case: shape, spacing, channels, the non-zero crop, per-channel image range and foreground intensity statistics
(MONAI Auto3DSeg's ``FgImageStats``: mean, std, median, min, max, percentiles 0.5 and 99.5), class fractions
(within the non-zero crop, i.e. of what the networks see),
connected components with sizes and equivalent diameters (voxels and mm), and for multi-rater data the number of
empty rater masks and the mean pairwise Dice between raters. Summary: medians, dataset-wide foreground intensity
statistics from up to :data:`SAMPLES_PER_CASE` foreground voxels sampled per case (nnU-Net's scheme), object
diameter percentiles per class and over all classes, rater agreement.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.readers import NATURAL_SUFFIXES
from medseglatdiff.planning.label_stats import class_fractions, component_stats, percentiles, rater_stats
from medseglatdiff.preprocessing.case_io import CaseFiles, read_case
from medseglatdiff.preprocessing.cropping import background_values, bbox_shape, crop, nonzero_bbox

FINGERPRINT_FILE = "dataset_fingerprint.json"
FINGERPRINT_VERSION = 1
SAMPLES_PER_CASE = 10_000


@dataclass(frozen=True)
class FingerprintJob:
    """One case to analyse (a picklable work item)."""

    files: CaseFiles
    classes: tuple[int, ...]
    samples: int = SAMPLES_PER_CASE
    seed: int = 0


def _case_rng(case_id: str, seed: int) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def _foreground_intensity(image: np.ndarray, foreground: np.ndarray) -> list[dict[str, float]] | None:
    """Per-channel foreground statistics from MONAI's ``FgImageStats`` (None when the case has no foreground)."""
    if not foreground.any():
        return None
    from monai.auto3dseg import FgImageStats

    report = FgImageStats(image_key="image", label_key="label")(
        {"image": torch.as_tensor(image), "label": torch.as_tensor(foreground)}
    )["image_foreground_stats"]["intensity"]
    keys = {
        "mean": "mean",
        "std": "stdev",
        "median": "median",
        "min": "min",
        "max": "max",
        "percentile_00_5": "percentile_00_5",
        "percentile_99_5": "percentile_99_5",
    }
    return [{ours: float(channel[theirs]) for ours, theirs in keys.items()} for channel in report]


def analyse_case(job: FingerprintJob) -> tuple[str, dict[str, Any], np.ndarray]:
    """Fingerprint one case; returns (case id, its entry, sampled foreground intensities (C, n))."""
    case = read_case(job.files)
    spatial_dims = case.image.ndim - 1
    spacing = list(case.geometry.spacing)
    background = background_values(case.image)
    bbox = nonzero_bbox(case.image, case.label, case.raters, background=background)
    label = case.label[0] if case.label is not None else np.zeros(case.image.shape[1:], dtype=np.uint8)
    foreground = label > 0
    indices = np.flatnonzero(foreground)
    rng = _case_rng(job.files.case_id, job.seed)
    if indices.size > job.samples:
        indices = np.sort(rng.choice(indices, size=job.samples, replace=False))
    samples = case.image.reshape(case.image.shape[0], -1)[:, indices]
    crop_shape = bbox_shape(bbox)
    entry: dict[str, Any] = {
        "shape": list(case.image.shape[1:]),
        "spacing": spacing,
        "num_channels": int(case.image.shape[0]),
        "shape_after_crop": crop_shape,
        "crop_ratio": float(np.prod(crop_shape) / np.prod(case.image.shape[1:])),
        "background_values": background,
        "intensity_range": [[float(c.min()), float(c.max())] for c in case.image],
        "foreground_intensity": _foreground_intensity(case.image, foreground),
        "class_fractions": class_fractions(crop(label[None], bbox)[0], [c for c in job.classes if c != 0]),
        "components": {str(c): component_stats(label == c, spacing) for c in job.classes if c != 0},
        "raters": rater_stats(case.raters) if case.raters is not None else None,
        "spatial_dims": spatial_dims,
    }
    return job.files.case_id, entry, samples


def dataset_signature(spec: DatasetSpec) -> str:
    """A hash of every case's file names, sizes and modification times, and of dataset.json."""
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for case in spec.case_ids():
        digest.update(f"{case}={CaseFiles.from_spec(spec, case).signature()};".encode())
    return digest.hexdigest()[:16]


def _init_worker() -> None:
    torch.set_num_threads(1)


def _intensity_summary(samples: list[np.ndarray], num_channels: int) -> list[dict[str, float | int | None]]:
    pooled = np.concatenate(samples, axis=1) if samples else np.zeros((num_channels, 0))
    out: list[dict[str, float | int | None]] = []
    for channel in pooled:
        if channel.size == 0:
            keys = ("mean", "std", "median", "percentile_00_5", "percentile_99_5", "min", "max")
            out.append({k: None for k in keys} | {"num_samples": 0})
            continue
        out.append(
            {
                "mean": float(channel.mean()),
                "std": float(channel.std()),
                "median": float(np.median(channel)),
                "percentile_00_5": float(np.percentile(channel, 0.5)),
                "percentile_99_5": float(np.percentile(channel, 99.5)),
                "min": float(channel.min()),
                "max": float(channel.max()),
                "num_samples": int(channel.size),
            }
        )
    return out


def _object_diameters(
    cases: dict[str, dict[str, Any]], classes: Sequence[str], key: str, objects_only: bool = True
) -> list[float]:
    values: list[float] = []
    for entry in cases.values():
        for c in classes:
            comp = entry["components"][c]
            values.extend(d for d, is_obj in zip(comp[key], comp["is_object"]) if is_obj or not objects_only)
    return values


def summarise(cases: dict[str, dict[str, Any]], samples: list[np.ndarray], spec: DatasetSpec) -> dict[str, Any]:
    """The dataset-level summary of the per-case entries."""
    entries = list(cases.values())
    num_channels = entries[0]["num_channels"]
    fg_classes = [str(c) for c in spec.label_values if c != 0]
    names = {str(v): k for k, v in spec.labels.items() if isinstance(v, int)}
    per_class: dict[str, Any] = {}
    for c in fg_classes:
        fractions = np.array([e["class_fractions"][c] for e in entries])
        nonzero = fractions[fractions > 0]
        per_class[c] = {
            "name": names.get(c, c),
            "cases_with_class": int(nonzero.size),
            "fraction_median_nonzero": float(np.median(nonzero)) if nonzero.size else None,
            "fraction_mean": float(fractions.mean()),
            "num_components": int(sum(len(e["components"][c]["sizes_vox"]) for e in entries)),
            "num_objects": int(sum(sum(e["components"][c]["is_object"]) for e in entries)),
            "object_diameter_vox": percentiles(_object_diameters(cases, [c], "diameters_vox")),
            "object_diameter_mm": percentiles(_object_diameters(cases, [c], "diameters_mm")),
            "component_diameter_vox": percentiles(_object_diameters(cases, [c], "diameters_vox", objects_only=False)),
        }
    rater_entries = [e["raters"] for e in entries if e["raters"] is not None]
    raters = None
    if rater_entries:
        total = sum(r["num_raters"] for r in rater_entries)
        raters = {
            "num_raters": int(rater_entries[0]["num_raters"]),
            "empty_share": float(sum(r["num_empty"] for r in rater_entries) / max(total, 1)),
            "mean_pairwise_dice": float(np.mean([r["mean_pairwise_dice"] for r in rater_entries])),
            "cases_all_empty": int(sum(r["num_empty"] == r["num_raters"] for r in rater_entries)),
        }
    ranges = np.array([e["intensity_range"] for e in entries])  # (cases, C, 2)
    return {
        "num_cases": len(entries),
        "spatial_dims": int(entries[0]["spatial_dims"]),
        "num_channels": int(num_channels),
        "median_shape": [float(v) for v in np.median([e["shape"] for e in entries], axis=0)],
        "median_spacing": [float(v) for v in np.median([e["spacing"] for e in entries], axis=0)],
        "median_shape_after_crop": [float(v) for v in np.median([e["shape_after_crop"] for e in entries], axis=0)],
        "median_crop_ratio": float(np.median([e["crop_ratio"] for e in entries])),
        "intensity_range": [[float(ranges[:, c, 0].min()), float(ranges[:, c, 1].max())] for c in range(num_channels)],
        "foreground_intensity": _intensity_summary(samples, num_channels),
        "classes": per_class,
        "objects": {
            "count": len(_object_diameters(cases, fg_classes, "diameters_vox")),
            "diameter_vox": percentiles(_object_diameters(cases, fg_classes, "diameters_vox")),
            "diameter_mm": percentiles(_object_diameters(cases, fg_classes, "diameters_mm")),
        },
        "raters": raters,
    }


def extract_fingerprint(
    dataset: str | os.PathLike | DatasetSpec,
    out: str | os.PathLike | None = None,
    num_workers: int = 1,
    progress: bool = True,
    samples_per_case: int = SAMPLES_PER_CASE,
    seed: int = 0,
) -> dict[str, Any]:
    """Fingerprint a raw dataset and optionally write it as JSON.

    Args:
        dataset: the raw dataset folder (with dataset.json) or its loaded spec.
        out: a file or folder to write (a folder gets ``dataset_fingerprint.json``); None writes nothing.
        num_workers: processes reading cases in parallel.
        progress: show a progress bar.
        samples_per_case: foreground voxels sampled per case for the dataset-wide intensity statistics.
        seed: seed of the sampling (the same seed gives the same fingerprint).

    Returns:
        The fingerprint: ``dataset`` (facts from dataset.json), ``summary`` and ``cases``.
    """
    spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec.load(dataset)
    scheme = spec.checked_label_scheme()  # before any work: regions without their order, a misplaced ignore label
    classes = tuple(spec.label_values)
    jobs = [
        FingerprintJob(CaseFiles.from_spec(spec, case), classes, samples_per_case, seed) for case in spec.case_ids()
    ]
    if not jobs:
        raise MedsegError(f"{spec.root}: no cases found in imagesTr; run `medseg verify_dataset` on it")
    bar = dict(total=len(jobs), desc="fingerprint", unit="case", disable=None if progress else True)
    if num_workers > 1:
        with ProcessPoolExecutor(max_workers=num_workers, initializer=_init_worker) as pool:
            results = list(tqdm(pool.map(analyse_case, jobs, chunksize=4), **bar))
    else:
        results = [analyse_case(job) for job in tqdm(jobs, **bar)]
    cases = {case: entry for case, entry, _ in results}
    fingerprint = {
        "fingerprint_version": FINGERPRINT_VERSION,
        "dataset_signature": dataset_signature(spec),
        "dataset": {
            "name": str(spec.extra.get("name", spec.root.name)),
            "root": str(Path(spec.root).resolve()),
            "channel_names": spec.channel_names,
            "labels": spec.labels,
            "label_values": list(spec.label_values),
            "label_scheme": scheme.to_json(),
            "num_raters": spec.num_raters,
            "file_ending": spec.file_ending,
            "natural_images": spec.file_ending.lower() in NATURAL_SUFFIXES,
            "num_training": len(cases),
        },
        "summary": summarise(cases, [s for _, _, s in results], spec),
        "cases": cases,
    }
    if out is not None:
        out = Path(out)
        write_json_atomic(out / FINGERPRINT_FILE if out.suffix != ".json" else out, fingerprint)
    return fingerprint
