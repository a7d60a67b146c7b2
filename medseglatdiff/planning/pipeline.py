"""The self-configuration commands: fingerprint -> plan -> preprocess, alone or together.

``plan_and_preprocess`` runs the dataset verification first and stops with every problem listed when it fails.
Paths are arguments; nothing is read from the environment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.json_files import read_json
from medseglatdiff.io.locks import folder_lock
from medseglatdiff.planning.fingerprint import (
    FINGERPRINT_FILE,
    FINGERPRINT_VERSION,
    dataset_signature,
    extract_fingerprint,
)
from medseglatdiff.planning.planner import Planner
from medseglatdiff.planning.plans_io import PLANS_FILE, save_plans

logger = logging.getLogger(__name__)

# Written into the work folder by later stages; they belong to the dataset it was planned from.
SPLITS_FILE = "splits_final.json"


def load_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``dataset_fingerprint.json`` (``path`` may be the work folder)."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / FINGERPRINT_FILE
    fingerprint = read_json(
        path,
        fix="delete it and re-run `medseg extract_fingerprint`",
        missing=f"not found; create it with `medseg extract_fingerprint --dataset RAW --out {path.parent}`",
    )
    if not isinstance(fingerprint, dict) or fingerprint.get("fingerprint_version") != FINGERPRINT_VERSION:
        raise MedsegError(
            f"{path}: not a fingerprint of version {FINGERPRINT_VERSION}; re-run `medseg extract_fingerprint`"
        )
    return fingerprint


def fingerprint_dataset(
    dataset: str | os.PathLike | DatasetSpec,
    out: str | os.PathLike,
    num_workers: int = 1,
    clean: bool = False,
    progress: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Fingerprint into ``out`` unless an up-to-date fingerprint of the same files is there; returns (it, computed)."""
    spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec.load(dataset)
    path = Path(out) / FINGERPRINT_FILE
    if path.is_file() and not clean:
        try:
            existing = load_fingerprint(path)
        except MedsegError:
            existing = None
        if existing is not None and existing.get("dataset_signature") == dataset_signature(spec):
            return existing, False
    return extract_fingerprint(spec, out, num_workers=num_workers, progress=progress), True


def check_same_dataset(out: Path, spec: DatasetSpec, clean: bool) -> None:
    """Refuse a work folder planned from another raw dataset (unless ``clean``: then its splits are dropped too)."""
    planned = _planned_dataset(out)
    here = str(Path(spec.root).resolve())
    if planned is None or planned == here:
        return
    if _same_files(out, spec):
        return  # the same dataset, moved
    if not clean:
        raise MedsegError(
            f"{out}: planned from {planned}, not {here}; use another work folder for this dataset, or pass --clean to "
            "plan it anew from this one (its fingerprint, plans, preprocessed cases and splits are replaced)"
        )
    logger.warning("%s was planned from %s; --clean: planning it anew from %s", out, planned, here)
    from medseglatdiff.preprocessing.preprocess import CASE_GROUPS_FILE

    for name in (SPLITS_FILE, CASE_GROUPS_FILE):
        (out / name).unlink(missing_ok=True)


def _planned_dataset(out: Path) -> str | None:
    try:
        plans = json.loads((out / PLANS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    raw = plans.get("raw_dataset") if isinstance(plans, dict) else None
    return str(raw) if raw else None


def _same_files(out: Path, spec: DatasetSpec) -> bool:
    try:
        fingerprint = json.loads((out / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(fingerprint, dict) and fingerprint.get("dataset_signature") == dataset_signature(spec)


def plan(
    out: str | os.PathLike,
    dataset: str | os.PathLike | None = None,
    memory_gb: float | None = None,
    configurations: Sequence[str] | None = None,
    num_workers: int = 1,
    progress: bool = True,
    recipe: str = "default",
) -> dict[str, Any]:
    """Plan from ``out/dataset_fingerprint.json`` (fingerprinting ``dataset`` first when given) and write plans.json.

    Args:
        out: the work folder.
        dataset: the raw dataset; when given, the fingerprint is (re)computed if missing or stale.
        memory_gb: training memory budget; default 24 with CUDA, else 4.
        configurations: names to plan ("2d", "3d"); default all available.
        num_workers: processes for fingerprinting.
        progress: show progress bars.
        recipe: the denoiser training recipe, ``"default"`` or ``"published"`` (:mod:`medseglatdiff.planning.recipes`).
    """
    if dataset is not None:
        fingerprint, _ = fingerprint_dataset(dataset, out, num_workers=num_workers, progress=progress)
    else:
        fingerprint = load_fingerprint(out)
    plans = Planner(fingerprint, memory_gb=memory_gb, recipe=recipe).plan(configurations)
    save_plans(plans, Path(out) / PLANS_FILE)
    return plans


def plan_and_preprocess(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    memory_gb: float | None = None,
    configurations: Sequence[str] | None = None,
    num_workers: int = 1,
    clean: bool = False,
    progress: bool = True,
    recipe: str = "default",
) -> dict[str, Any]:
    """Verify, fingerprint, plan and preprocess a raw dataset into the work folder ``out``.

    ``recipe`` names the denoiser training recipe (``"default"``, or ``"published"`` for the method as published).

    Re-running skips finished work: the fingerprint is reused while the raw files are unchanged, and preprocessed
    cases whose plan hash and raw files match are skipped; cases no longer in the raw dataset are removed. A work
    folder planned from another dataset is refused unless ``clean``, which recomputes everything. The work folder is
    locked while this runs.

    Returns:
        ``{"fingerprint": path, "fingerprint_computed": bool, "plans": path, "preprocessed": {config: counts}}``.

    Raises:
        MedsegError: the dataset fails verification (every problem listed), the work folder belongs to another
            dataset or is locked by another run, or a later stage fails.
    """
    from medseglatdiff.datasets.verify import verify_dataset
    from medseglatdiff.preprocessing.preprocess import preprocess

    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise MedsegError(f"--num_workers {num_workers!r}: must be a positive integer")
    report = verify_dataset(dataset, num_workers=num_workers, progress=progress)
    if not report.ok:
        raise MedsegError(report.format())
    out = Path(out)
    spec = DatasetSpec.load(dataset)
    with folder_lock(out, "plan_and_preprocess"):
        check_same_dataset(out, spec, clean)
        fingerprint, computed = fingerprint_dataset(spec, out, num_workers=num_workers, clean=clean, progress=progress)
        plans = Planner(fingerprint, memory_gb=memory_gb, recipe=recipe).plan(configurations)
        plans_path = save_plans(plans, out / PLANS_FILE)
        counts = preprocess(spec, out, plans=plans, num_workers=num_workers, clean=clean, progress=progress)
    return {
        "fingerprint": str(out / FINGERPRINT_FILE),
        "fingerprint_computed": computed,
        "plans": str(plans_path),
        "preprocessed": counts,
    }
