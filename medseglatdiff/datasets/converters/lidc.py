"""LIDC-IDRI lung-nodule crops with the outlines of 4 readers (the public "LIDC-IDRI-slices" set).

Accepted layouts of ``--src``:

- as distributed: ``LIDC-IDRI-slices/<patient>/nodule-<k>/{images,mask-0,mask-1,mask-2,mask-3}/slice-<n>.png``;
  ``--src`` is the ``LIDC-IDRI-slices`` folder or its parent. Case id ``<patient>_n<k>_s<n>``. A slice without all
  four reader masks is skipped, and the number skipped is logged (the public set has such slices).
- the samples in ``shared/data/lidc_idri[_full]``: ``images/<id>.png`` + ``masks/<id>_a0.png`` .. ``_a3.png``, with the
  patient from ``manifest.csv`` (columns ``id``, ``patient``) or parsed from an id ``<patient>_n<k>_s<n>``.

Each reader mask goes to ``ratersTr`` (empty masks are real reader disagreement and are kept); ``labelsTr`` holds
their majority vote (at least 2 of 4). Cases are grouped by patient.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseglatdiff.datasets.converters.common import (
    check_src,
    column,
    converted_by,
    files_by_stem,
    find_layout,
    read_grey,
    read_manifest,
    read_mask,
)
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.geometry import Geometry

logger = logging.getLogger(__name__)

NAME = "lidc"
NUM_RATERS = 4
SLICES_DIR = "LIDC-IDRI-slices"
LAYOUTS = [
    f"{SLICES_DIR}/<patient>/nodule-<k>/{{images,mask-0,...,mask-3}}/slice-<n>.png (as distributed)",
    "images/<id>.png + masks/<id>_a0.png .. <id>_a3.png [+ manifest.csv with columns id, patient]",
]
_NODULE_RE = re.compile(r"^nodule-(\d+)$")
_SLICE_RE = re.compile(r"^slice-(\d+)\.png$")
_RATER_RE = re.compile(r"^(?P<case>.+)_a(?P<rater>\d+)$")
_ID_RE = re.compile(r"^(?P<patient>.+)_n\d+_s\d+$")


@dataclass(frozen=True)
class LidcSource:
    """One LIDC slice: the CT crop, its four reader masks and the patient (a picklable work item)."""

    case_id: str
    image: Path
    masks: tuple[Path, ...]
    patient: str


def _match(folder: Path) -> str | None:
    if any(folder.glob("*/nodule-*/images")):
        return "distributed"
    if (folder / "images").is_dir() and (folder / "masks").is_dir() and any((folder / "masks").glob("*_a0.png")):
        return "sample"
    return None


def _distributed_cases(root: Path) -> tuple[list[LidcSource], int]:
    """Cases of a LIDC-IDRI-slices tree and the number of slices skipped for a missing reader mask."""
    sources: list[LidcSource] = []
    skipped = 0
    for patient in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for nodule in sorted(p for p in patient.iterdir() if p.is_dir()):
            match = _NODULE_RE.match(nodule.name)
            if not match:
                continue
            mask_dirs = [nodule / f"mask-{k}" for k in range(NUM_RATERS)]
            images = {m[1]: p for p in (nodule / "images").glob("slice-*.png") if (m := _SLICE_RE.match(p.name))}
            for mask_dir in mask_dirs:
                for path in sorted(mask_dir.glob("slice-*.png")) if mask_dir.is_dir() else []:
                    slice_match = _SLICE_RE.match(path.name)
                    if slice_match and slice_match[1] not in images:
                        raise MedsegError(
                            f"{path}: reader mask without a CT slice in {nodule / 'images'}; "
                            "add the slice or remove the mask"
                        )
            for number in sorted(images, key=int):
                masks = tuple(d / f"slice-{number}.png" for d in mask_dirs)
                if not all(m.is_file() for m in masks):
                    skipped += 1
                    continue
                case_id = f"{patient.name}_n{match[1]}_s{number}"
                sources.append(LidcSource(case_id, images[number], masks, patient.name))
    return sources, skipped


def _patients_from_manifest(path: Path) -> dict[str, str]:
    rows = read_manifest(path)
    if not rows:
        return {}
    id_col, patient_col = column(rows, path, "id"), column(rows, path, "patient")
    return {row[id_col]: row[patient_col] for row in rows}


def _sample_cases(root: Path) -> list[LidcSource]:
    """Cases of the ``images/`` + ``masks/<id>_a<k>.png`` layout."""
    images = files_by_stem(root / "images", (".png",))
    masks: dict[str, dict[int, Path]] = {}
    for stem, path in files_by_stem(root / "masks", (".png",)).items():
        match = _RATER_RE.match(stem)
        if not match or int(match["rater"]) >= NUM_RATERS:
            raise MedsegError(
                f"{path}: reader masks must be named <id>_a0.png .. <id>_a{NUM_RATERS - 1}.png; "
                "rename or remove this file"
            )
        if match["case"] not in images:
            raise MedsegError(f"{path}: reader mask without an image {root / 'images' / (match['case'] + '.png')}")
        masks.setdefault(match["case"], {})[int(match["rater"])] = path
    manifest = root / "manifest.csv"
    patients = _patients_from_manifest(manifest) if manifest.is_file() else {}
    sources = []
    for case_id, image in sorted(images.items()):
        found = masks.get(case_id, {})
        missing = [k for k in range(NUM_RATERS) if k not in found]
        if missing:
            expected = root / "masks" / f"{case_id}_a{missing[0]}.png"
            raise MedsegError(
                f"{image}: no reader mask {expected}; each image needs {NUM_RATERS} masks (_a0 .. _a{NUM_RATERS - 1})"
            )
        patient = patients.get(case_id)
        if patient is None:
            match = _ID_RE.match(case_id)
            if not match:
                raise MedsegError(
                    f"{image}: patient unknown; add {manifest} with columns id,patient "
                    "or name the case <patient>_n<k>_s<n>"
                )
            patient = match["patient"]
        sources.append(LidcSource(case_id, image, tuple(found[k] for k in range(NUM_RATERS)), patient))
    return sources


def find_cases(src: str | os.PathLike) -> tuple[list[LidcSource], str, int]:
    """The cases under ``src``, the layout name and the number of slices skipped for a missing reader mask.

    Raises:
        MedsegError: unknown layout, unpaired files, or (sample layout) a case without its four reader masks.
    """
    root = check_src(src, NAME)
    folder, layout = find_layout(root, _match, NAME, LAYOUTS)
    if layout == "distributed":
        sources, skipped = _distributed_cases(folder)
        return sources, layout, skipped
    return _sample_cases(folder), layout, 0


def load_case(source: LidcSource) -> CaseData:
    """Read one CT crop (grey, ``(1, x, y)``) and its four reader masks (0/1; empty masks kept)."""
    image = read_grey(source.image)
    raters = [read_mask(path) for path in source.masks]
    for path, mask in zip(source.masks, raters):
        if mask.shape != image.shape:
            raise MedsegError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[2]} "
                f"but {source.image} is {image.shape[1]}x{image.shape[2]}"
            )
    return CaseData(
        case_id=source.case_id,
        channels=[image],
        geometry=Geometry.identity(2),
        raters=[np.asarray(r, dtype=np.uint8) for r in raters],
        group=source.patient,
    )


def convert_lidc(
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
) -> DatasetSpec:
    """Convert LIDC-IDRI nodule crops to the raw format (grey PNG, 4 rater masks, majority-vote label, patient groups).

    Args:
        src: the dataset folder (see the module docstring for the accepted layouts).
        out: the raw dataset folder to create.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
    """
    sources, layout, skipped = find_cases(src)
    if skipped:
        logger.warning(
            "lidc: skipped %d slice(s) without all %d reader masks (the public set has such slices)",
            skipped,
            NUM_RATERS,
        )
    extra = {
        "name": "LIDC-IDRI",
        "description": f"LIDC-IDRI lung-nodule CT crops with {NUM_RATERS} reader outlines ({layout} layout); "
        "labelsTr is the majority vote (at least 2 of 4 readers); empty reader masks are real disagreement",
        "reference": "Armato S.G. III et al., The Lung Image Database Consortium (LIDC) and Image Database Resource "
        "Initiative (IDRI), Medical Physics 38(2):915-931, 2011; "
        "Data from LIDC-IDRI, TCIA, doi:10.7937/K9/TCIA.2015.LO9QL9SX",
        "licence": "CC BY 3.0 (The Cancer Imaging Archive): attribution required",
        "converted_by": converted_by(NAME),
    }
    if layout == "distributed":
        extra["skipped_incomplete_slices"] = skipped
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names={"0": "CT"},
        labels={"background": 0, "nodule": 1},
        file_ending=".png",
        num_raters=NUM_RATERS,
        group_kind="patient",
        extra=extra,
        overwrite=overwrite,
    )
    return write_dataset(sources, load_case, writer, num_workers=num_workers, description=f"converting {NAME}")
