"""Small raw datasets built from crops of the real data in ../shared/data (test helpers, written under tmp paths).

Used by ``tests/planning`` and ``tests/preprocessing`` (``tests/conftest.py`` loads this module by path for their
fixtures).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import read_image


def _mask(path: Path) -> np.ndarray:
    return (read_image(path).array[:1] > 127).astype(np.uint8)


def _load_lidc(source: tuple[Path, str, str]) -> CaseData:
    root, case, patient = source
    image = read_image(root / "images" / f"{case}.png")
    raters = [(read_image(root / "masks" / f"{case}_a{k}.png").array[:1] > 0).astype(np.uint8) for k in range(4)]
    return CaseData(case, [image.array[:1].astype(np.uint8)], Geometry.identity(2), raters=raters, group=patient)


def make_lidc(shared_data: Path, out: Path, num_cases: int = 8) -> DatasetSpec:
    """LIDC-IDRI CT nodule crops (128x128 PNG, 4 raters, grouped by patient)."""
    root = shared_data / "lidc_idri"
    rows = list(csv.DictReader(open(root / "manifest.csv", encoding="utf-8")))[:num_cases]
    writer = RawDatasetWriter(
        out, {"0": "CT"}, {"background": 0, "nodule": 1}, ".png", num_raters=4, group_kind="patient"
    )
    return write_dataset(
        [(root, r["id"], r["patient"]) for r in rows], _load_lidc, writer, description="lidc test data"
    )


def _load_kvasir(source: tuple[Path, str]) -> CaseData:
    root, case = source
    image = read_image(root / "images" / f"{case}.jpg").array[:3].astype(np.uint8)
    return CaseData(case, [image], Geometry.identity(2), label=_mask(root / "masks" / f"{case}.png"))


def make_kvasir(shared_data: Path, out: Path, num_cases: int = 5) -> DatasetSpec:
    """Kvasir-SEG colonoscopy frames (RGB, original sizes around 600 px, binary polyp masks)."""
    root = shared_data / "kvasir_seg"
    cases = sorted(p.stem for p in (root / "images").glob("*.jpg"))[:num_cases]
    writer = RawDatasetWriter(out, {"0": "R", "1": "G", "2": "B"}, {"background": 0, "polyp": 1}, ".png")
    return write_dataset([(root, c) for c in cases], _load_kvasir, writer, description="kvasir test data")


def _load_brats(source: tuple[Path, int, tuple[float, ...] | None]) -> CaseData:
    case_dir, size, spacing = source
    label = read_image(case_dir / "OTMultiClass.nii.gz")
    centre = np.round(np.mean(np.argwhere(label.array[0] > 0), axis=0)).astype(int)
    start = [int(np.clip(c - size // 2, 0, s - size)) for c, s in zip(centre, label.spatial_shape)]
    box = (slice(None),) + tuple(slice(b, b + size) for b in start)
    channels = [
        read_image(case_dir / f"{n}_subtrMeanDivStd.nii.gz").array[box].astype(np.float32) for n in ("Flair", "T1c")
    ]
    geometry = label.geometry
    origin = geometry.to_affine() @ np.array(start + [1], dtype=np.float64)  # world position of the crop's first voxel
    geometry = Geometry(
        tuple(spacing) if spacing is not None else geometry.spacing,
        tuple(float(o) for o in origin[:3]),
        geometry.direction,
    )
    return CaseData(
        case_dir.name, channels, geometry, label=np.rint(label.array[box]).astype(np.uint8), group=case_dir.name
    )


def make_brats(
    shared_data: Path, out: Path, size: int = 40, spacings: list[tuple[float, ...] | None] | None = None
) -> DatasetSpec:
    """BraTS 2015 (DeepMedic copy): both cases cropped to ``size``^3 around the tumour; FLAIR + T1c, labels 0..4.

    ``spacings`` optionally overrides each case's spacing (to exercise resampling).
    """
    root = shared_data / "brats2015_deepmedic"
    case_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    spacings = spacings or [None] * len(case_dirs)
    writer = RawDatasetWriter(
        out,
        {"0": "FLAIR", "1": "T1c"},
        {"background": 0, "necrosis": 1, "edema": 2, "non_enhancing": 3, "enhancing": 4},
        ".nii.gz",
    )
    sources = [(d, size, s) for d, s in zip(case_dirs, spacings)]
    return write_dataset(sources, _load_brats, writer, description="brats test data")
