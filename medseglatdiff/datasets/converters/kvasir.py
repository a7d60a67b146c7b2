"""Kvasir-SEG (colonoscopy polyps): JPEG images with binary polyp masks.

Accepted layout of ``--src`` (the folder itself or one folder above it, e.g. the unzipped ``Kvasir-SEG/``):
``images/<id>.jpg`` with ``masks/<id>.jpg`` (as distributed: the masks are RGB JPEGs) or ``masks/<id>.png`` (the
samples in ``shared/data/kvasir_seg`` and ``kvasir_seg_full``). Kvasir-SEG has no patient ids, so no groups are written.
"""

from __future__ import annotations

import os
from pathlib import Path

from medseglatdiff.datasets.converters.common import (
    IMAGE_SUFFIXES,
    RGB_CHANNELS,
    PairSource,
    check_max_size,
    check_src,
    converted_by,
    files_by_stem,
    find_layout,
    load_pair,
    pair_files,
)
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset

NAME = "kvasir_seg"
LAYOUTS = ["images/<id>.jpg + masks/<id>.jpg (as distributed, RGB JPEG masks) or masks/<id>.png"]


def _match(folder: Path) -> bool | None:
    return True if (folder / "images").is_dir() and (folder / "masks").is_dir() else None


def find_cases(src: str | os.PathLike, max_size: int | None = None) -> list[PairSource]:
    """The cases under ``src``.

    Raises:
        MedsegError: unknown layout, an image without a mask or a mask without an image.
    """
    root = check_src(src, NAME)
    found, _ = find_layout(root, _match, NAME, LAYOUTS)
    pairs = pair_files(files_by_stem(found / "images", IMAGE_SUFFIXES), files_by_stem(found / "masks", IMAGE_SUFFIXES))
    return [PairSource(case_id, image, mask, None, max_size) for case_id, image, mask in pairs]


def load_case(source: PairSource) -> CaseData:
    """Read one Kvasir image (RGB) and its polyp mask (RGB JPEG or grey PNG, binarised to 0/1)."""
    return load_pair(source)


def convert_kvasir_seg(
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
    max_size: int | None = None,
) -> DatasetSpec:
    """Convert Kvasir-SEG to the raw format (RGB ``_0000.png`` images, 0/1 PNG labels, no groups).

    Args:
        src: the dataset folder (see the module docstring for the accepted layout).
        out: the raw dataset folder to create.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        max_size: shrink images whose long side is larger to this many pixels (Lanczos for the image, nearest
            neighbour for the mask); None keeps the original size.
    """
    sources = find_cases(src, max_size=check_max_size(max_size))
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names=dict(RGB_CHANNELS),
        labels={"background": 0, "polyp": 1},
        file_ending=".png",
        extra={
            "name": "Kvasir-SEG",
            "description": "Kvasir-SEG colonoscopy polyp segmentation (no patient ids: cases are not grouped)"
            + (f", long side at most {max_size} px" if max_size else ""),
            "reference": "Jha D. et al., Kvasir-SEG: A Segmented Polyp Dataset, MMM 2020, arXiv:1911.07069",
            "licence": "free for academic and research use (cite Jha et al. 2020); "
            "commercial use needs the authors' permission",
            "converted_by": converted_by(NAME),
        },
        overwrite=overwrite,
    )
    return write_dataset(sources, load_case, writer, num_workers=num_workers, description=f"converting {NAME}")
