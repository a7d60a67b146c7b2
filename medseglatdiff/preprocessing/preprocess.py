"""Preprocess raw cases as a plan says: crop to non-zero, normalise, resample; save arrays and properties.

Output per configuration (``WORK/<data_folder>/``)::

    <case>.npz    image float32 (C, ...), label uint8 (1, ...), raters uint8 (R, ...) when the dataset has raters
    <case>.json   properties: original shape and geometry, crop box, shapes and spacings before and after
                  resampling, the configuration and a hash of its preprocessing block, a signature of the raw files

and ``WORK/case_groups.json`` (the dataset's patient / sequence groups, for grouped cross-validation folds).

Both files are written atomically, the properties last, so a case whose JSON exists is complete. A case is
skipped when its properties name the same plan hash, raw-file signature and code version; ``clean`` redoes all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import atomic_path, write_json_atomic
from medseglatdiff.io.locks import folder_lock
from medseglatdiff.planning.pipeline import check_same_dataset
from medseglatdiff.planning.plans_io import load_plans, preprocessing_hash, strip_reasons
from medseglatdiff.preprocessing.case_io import CaseFiles, RawCase, read_case
from medseglatdiff.preprocessing.cropping import background_values, bbox_shape, crop, nonzero_bbox
from medseglatdiff.preprocessing.normalization import normalize_image
from medseglatdiff.preprocessing.resampling import (
    compute_new_shape,
    effective_spacing,
    resample_image,
    resample_label,
    separate_axis,
)

logger = logging.getLogger(__name__)

PREPROCESSING_VERSION = 2
CASE_GROUPS_FILE = "case_groups.json"


@dataclass(frozen=True)
class PreprocessJob:
    """One case of one configuration (a picklable work item)."""

    files: CaseFiles
    configuration: str
    preprocessing: Mapping[str, Any]
    plan_hash: str
    out_dir: Path


def preprocess_arrays(case: RawCase, preprocessing: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Crop, normalise and resample one case in memory.

    Args:
        case: the raw case.
        preprocessing: the configuration's ``preprocessing`` block (values only).

    Returns:
        The arrays to save (``image``, ``label``, ``raters``) and the geometry part of the properties.
    """
    spatial_shape = list(case.image.shape[1:])
    background = background_values(case.image)
    if preprocessing["crop_to_nonzero"]:
        bbox = nonzero_bbox(case.image, case.label, case.raters, background=background)
    else:
        bbox = [[0, s] for s in spatial_shape]
    image = normalize_image(crop(case.image, bbox), preprocessing["normalization"], background)
    spacing = list(case.geometry.spacing)
    target = list(preprocessing["target_spacing"])
    if len(target) != len(spacing):
        raise MedsegError(
            f"case {case.case_id}: the plan's target_spacing has {len(target)} axes, the image "
            f"{len(spacing)}; re-run `medseg plan`"
        )
    crop_shape = bbox_shape(bbox)
    new_shape = compute_new_shape(crop_shape, spacing, target)
    axis = separate_axis(spacing, target, float(preprocessing["anisotropy_threshold"]))
    arrays = {"image": resample_image(image, new_shape, axis)}
    if case.label is not None:
        arrays["label"] = resample_label(crop(case.label, bbox), new_shape, axis).astype(np.uint8)
    if case.raters is not None:
        arrays["raters"] = resample_label(crop(case.raters, bbox), new_shape, axis).astype(np.uint8)
    properties = {
        "original_shape": spatial_shape,
        "original_geometry": case.geometry.to_dict(),
        "background_values": background,
        "bbox": bbox,
        "shape_after_crop": crop_shape,
        "spacing_before": spacing,
        "shape_after_resampling": new_shape,
        "spacing_after": effective_spacing(crop_shape, spacing, new_shape),
        "separate_axis": axis,
        "classes_present": sorted(int(v) for v in np.unique(arrays["label"])) if "label" in arrays else [],
        "num_raters": int(arrays["raters"].shape[0]) if "raters" in arrays else 0,
    }
    return arrays, properties


def case_paths(out_dir: Path, case_id: str) -> tuple[Path, Path]:
    """The (arrays, properties) files of a preprocessed case."""
    return out_dir / f"{case_id}.npz", out_dir / f"{case_id}.json"


def is_up_to_date(out_dir: Path, case_id: str, plan_hash: str, signature: str) -> bool:
    """Whether a finished case matches the plan, the raw files and this code version."""
    arrays, props = case_paths(out_dir, case_id)
    if not (arrays.is_file() and props.is_file()):
        return False
    try:
        properties = json.loads(props.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return (
        properties.get("plan_hash") == plan_hash
        and properties.get("source_signature") == signature
        and properties.get("preprocessing_version") == PREPROCESSING_VERSION
    )


def preprocess_case(job: PreprocessJob) -> tuple[str, bool]:
    """Preprocess one case unless it is up to date; returns (case id, whether it was (re)written)."""
    signature = job.files.signature()
    if is_up_to_date(job.out_dir, job.files.case_id, job.plan_hash, signature):
        return job.files.case_id, False
    arrays, properties = preprocess_arrays(read_case(job.files), job.preprocessing)
    array_path, props_path = case_paths(job.out_dir, job.files.case_id)
    with atomic_path(array_path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    properties = {
        "case_id": job.files.case_id,
        "configuration": job.configuration,
        "plan_hash": job.plan_hash,
        "source_signature": signature,
        "preprocessing_version": PREPROCESSING_VERSION,
        **properties,
    }
    write_json_atomic(props_path, properties)
    return job.files.case_id, True


def _init_worker() -> None:
    torch.set_num_threads(1)


def write_case_groups(spec: DatasetSpec, out: Path) -> Path:
    """``out/case_groups.json``: the dataset's case groups (patients, sequences) for grouped folds, kept in WORK
    so that cross-validation splits stay grouped when the raw dataset moves (empty when it has none)."""
    groups = {case: spec.case_groups[case] for case in spec.case_ids() if case in spec.case_groups}
    return write_json_atomic(
        out / CASE_GROUPS_FILE, {"group_kind": spec.group_kind, "source": str(spec.root), "case_groups": groups}
    )


def preprocess(
    dataset: str | os.PathLike | DatasetSpec,
    out: str | os.PathLike,
    plans: str | os.PathLike | Mapping[str, Any] | None = None,
    configurations: Sequence[str] | None = None,
    num_workers: int = 1,
    clean: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Preprocess every case of ``dataset`` for the planned configurations.

    Args:
        dataset: the raw dataset folder or its spec.
        out: the work folder; cases go to ``out/<data_folder>/``.
        plans: plans.json (path or content); default ``out/plans.json``. It is validated first.
        configurations: names to preprocess; default every planned configuration.
        num_workers: processes working on cases in parallel.
        clean: delete each configuration's folder first and redo every case.
        progress: show progress bars.

    Returns:
        ``{configuration: {"written": n, "skipped": m, "removed": k}}`` (``removed``: cases no longer in the raw
        dataset, deleted from the work folder).
    """
    spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec.load(dataset)
    out = Path(out)
    with folder_lock(out, "preprocess"):
        if plans is None:
            check_same_dataset(out, spec, clean)
        return _preprocess(spec, out, plans, configurations, num_workers, clean, progress)


def _preprocess(
    spec: DatasetSpec,
    out: Path,
    plans: str | os.PathLike | Mapping[str, Any] | None,
    configurations: Sequence[str] | None,
    num_workers: int,
    clean: bool,
    progress: bool,
) -> dict[str, dict[str, int]]:
    if plans is None or not isinstance(plans, Mapping):
        plans = load_plans(out if plans is None else plans)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise MedsegError(f"--num_workers {num_workers!r}: must be a positive integer")
    names = list(configurations or plans["configurations"])
    missing = [n for n in names if n not in plans["configurations"]]
    if missing:
        planned = ", ".join(plans["configurations"])
        raise MedsegError(
            f"configuration(s) {', '.join(missing)} not in plans.json (it has {planned}); "
            "re-run `medseg plan --configurations ...`"
        )
    cases = spec.case_ids()
    if not cases:
        raise MedsegError(f"{spec.root}: no cases found in imagesTr; run `medseg verify_dataset` on it")
    write_case_groups(spec, out)
    summary: dict[str, dict[str, int]] = {}
    for name in names:
        config = plans["configurations"][name]
        out_dir = out / config["data_folder"]
        if clean and out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plan_hash = preprocessing_hash(config)
        block = strip_reasons(config["preprocessing"])
        jobs = [PreprocessJob(CaseFiles.from_spec(spec, case), name, block, plan_hash, out_dir) for case in cases]
        bar = dict(total=len(jobs), desc=f"preprocessing {name}", unit="case", disable=None if progress else True)
        if num_workers > 1:
            with ProcessPoolExecutor(max_workers=num_workers, initializer=_init_worker) as pool:
                results = list(tqdm(pool.map(preprocess_case, jobs, chunksize=4), **bar))
        else:
            results = [preprocess_case(job) for job in tqdm(jobs, **bar)]
        written = sum(done for _, done in results)
        removed = remove_stale_cases(out_dir, set(cases))
        summary[name] = {"written": written, "skipped": len(results) - written, "removed": len(removed)}
    return summary


def remove_stale_cases(out_dir: Path, cases: set[str]) -> list[str]:
    """Delete preprocessed cases that are no longer in the raw dataset (so they are never trained on)."""
    stale = sorted(p.stem for p in out_dir.glob("*.npz") if p.stem not in cases)
    for case in stale:
        for path in case_paths(out_dir, case):
            path.unlink(missing_ok=True)
    if stale:
        logger.warning(
            "%s: removed %d preprocessed case(s) no longer in the raw dataset: %s",
            out_dir,
            len(stale),
            ", ".join(stale[:10]) + (" ..." if len(stale) > 10 else ""),
        )
    return stale
