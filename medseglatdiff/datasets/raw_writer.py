"""Write a raw dataset: cases go to a staging folder that becomes the dataset only when all are written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from medseglatdiff.datasets.dataset_json import DATASET_JSON, IMAGES_DIR, LABELS_DIR, RATERS_DIR, DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.writers import write_image

Source = TypeVar("Source")


def majority_vote(raters: Sequence[np.ndarray]) -> np.ndarray:
    """Reference label from several rater label maps: foreground where at least half the raters marked any class,
    with the class most raters gave there (ties: the smaller value). Binary masks give the binary majority."""
    stack = np.stack([np.asarray(r) for r in raters]).astype(np.int64)
    foreground = 2 * (stack > 0).sum(axis=0) >= len(raters)
    values = [int(v) for v in np.unique(stack) if v > 0]
    if not values:
        return np.zeros(stack.shape[1:], dtype=np.uint8)
    counts = np.stack([(stack == v).sum(axis=0) for v in values])
    winner = np.asarray(values, dtype=np.uint8)[counts.argmax(axis=0)]
    return np.where(foreground, winner, 0).astype(np.uint8)


@dataclass
class CaseData:
    """One case in memory, ready to be written.

    Attributes:
        case_id: identifier used in file names (no ``_0000`` suffix).
        channels: one array per image file, each (C, x, y[, z]); an RGB PNG is one array with C = 3.
        geometry: geometry shared by the image, label and rater masks.
        label: (1, x, y[, z]) integer label map, or None to derive it from ``raters`` by majority vote.
        raters: rater label maps (binary masks for one class), one per rater, each (1, x, y[, z]); None for
            single-label datasets.
        group: patient / video sequence id, or None.
    """

    case_id: str
    channels: list[np.ndarray]
    geometry: Geometry
    label: np.ndarray | None = None
    raters: list[np.ndarray] | None = None
    group: str | None = None


@dataclass
class RawDatasetWriter:
    """Writes cases into ``.<out>.partial`` and moves the folder to ``out`` in :meth:`finish`.

    Nothing appears under ``out`` unless every case was written, so an interrupted conversion never
    leaves a dataset that looks complete. The writer holds only paths and settings, so worker processes
    can call :meth:`write_case` in parallel.
    """

    out: Path
    channel_names: dict[str, str]
    labels: dict[str, Any]
    file_ending: str
    num_raters: int = 0
    group_kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    @property
    def staging(self) -> Path:
        return self.out.parent / f".{self.out.name}.partial"

    def start(self) -> None:
        """Check the destination and create a fresh staging folder."""
        if self.out.exists() and any(self.out.iterdir()):
            if not self.overwrite:
                raise MedsegError(
                    f"{self.out}: output folder exists and is not empty; choose another --out or pass --overwrite"
                )
        if self.staging.exists():
            shutil.rmtree(self.staging)
        for sub in (IMAGES_DIR, LABELS_DIR) + ((RATERS_DIR,) if self.num_raters else ()):
            (self.staging / sub).mkdir(parents=True, exist_ok=True)

    def write_case(self, case: CaseData) -> tuple[str, str | None]:
        """Write one case's files into the staging folder; returns (case id, group)."""
        ending = self.file_ending
        for index, channel in enumerate(case.channels):
            write_image(channel, case.geometry, self.staging / IMAGES_DIR / f"{case.case_id}_{index:04d}{ending}")
        raters = case.raters or []
        if self.num_raters and len(raters) != self.num_raters:
            raise MedsegError(f"case {case.case_id}: {len(raters)} rater masks, the dataset declares {self.num_raters}")
        for index, mask in enumerate(raters):
            write_image(
                (np.asarray(mask) > 0).astype(np.uint8),
                case.geometry,
                self.staging / RATERS_DIR / f"{case.case_id}_r{index}{ending}",
            )
        label = case.label if case.label is not None else majority_vote(raters)
        write_image(
            np.asarray(label).astype(np.uint8), case.geometry, self.staging / LABELS_DIR / f"{case.case_id}{ending}"
        )
        return case.case_id, case.group

    def finish(self, records: Iterable[tuple[str, str | None]]) -> DatasetSpec:
        """Write dataset.json and move the staging folder into place."""
        records = sorted(records)
        groups = {case: group for case, group in records if group is not None}
        spec = DatasetSpec(
            root=self.out,
            channel_names=self.channel_names,
            labels=self.labels,
            num_training=len(records),
            file_ending=self.file_ending,
            num_raters=self.num_raters,
            group_kind=self.group_kind if groups else None,
            case_groups=groups,
            extra=self.extra,
        )
        write_json_atomic(self.staging / DATASET_JSON, spec.to_dict())
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.staging, self.out)
        return DatasetSpec.load(self.out)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _load_and_write(args: tuple[Callable[[Any], CaseData], RawDatasetWriter, Any]) -> tuple[str, str | None]:
    load_case, writer, source = args
    return writer.write_case(load_case(source))


def write_dataset(
    sources: Sequence[Source],
    load_case: Callable[[Source], CaseData],
    writer: RawDatasetWriter,
    num_workers: int = 1,
    description: str = "converting",
) -> DatasetSpec:
    """Load every source with ``load_case`` and write it; parallel over cases, with a progress bar.

    ``load_case`` must be a module-level function (it is sent to worker processes). On any error the
    staging folder is removed and the error propagates; the destination is untouched.
    """
    if not sources:
        raise MedsegError("no cases found to write; check --src points at the dataset as distributed")
    writer.start()
    try:
        jobs = [(load_case, writer, source) for source in sources]
        bar = dict(total=len(jobs), desc=description, unit="case", disable=None)
        if num_workers > 1:
            with ProcessPoolExecutor(max_workers=num_workers) as pool:
                records = list(tqdm(pool.map(_load_and_write, jobs, chunksize=8), **bar))
        else:
            records = [_load_and_write(job) for job in tqdm(jobs, **bar)]
        return writer.finish(records)
    except BaseException:
        writer.abort()
        raise
