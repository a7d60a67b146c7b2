"""ISIC 2018 Task 1 (skin lesion segmentation): dermoscopy JPEGs with binary lesion masks.

Accepted layouts of ``--src``:

- as distributed: ``ISIC2018_Task1-2_Training_Input/ISIC_<id>.jpg`` and
  ``ISIC2018_Task1_Training_GroundTruth/ISIC_<id>_segmentation.png`` (``--subset Validation`` / ``Test`` for the other
  two releases). ``--src`` may be the folder that holds both, one folder above it, or one of the two folders.
- the sample layout of ``shared/data/isic_skin_lesion``: ``images/<id>.jpg`` and ``masks/<id>.png``
  (``<id>_segmentation.png`` is accepted too).
"""

from __future__ import annotations

import os
from pathlib import Path

from medseglatdiff.datasets.converters.common import (
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
from medseglatdiff.errors import MedsegError

NAME = "isic2018"
SUBSETS = ("Training", "Validation", "Test")
MASK_SUFFIX = "_segmentation"


def distributed_folders(subset: str) -> tuple[str, str]:
    """The (image folder, mask folder) names of one ISIC 2018 Task 1 release."""
    return f"ISIC2018_Task1-2_{subset}_Input", f"ISIC2018_Task1_{subset}_GroundTruth"


def _layouts(subset: str) -> list[str]:
    images, masks = distributed_folders(subset)
    return [
        f"{images}/ISIC_<id>.jpg + {masks}/ISIC_<id>{MASK_SUFFIX}.png (as distributed)",
        "images/<id>.jpg + masks/<id>.png",
    ]


def _mask_key(stem: str) -> str:
    return stem[: -len(MASK_SUFFIX)] if stem.endswith(MASK_SUFFIX) else stem


def _match(folder: Path, subset: str) -> tuple[Path, Path, str] | None:
    image_dir, mask_dir = distributed_folders(subset)
    if (folder / image_dir).is_dir() and (folder / mask_dir).is_dir():
        return folder / image_dir, folder / mask_dir, "distributed"
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return folder / "images", folder / "masks", "sample"
    return None


def find_cases(
    src: str | os.PathLike, subset: str = "Training", max_size: int | None = None
) -> tuple[list[PairSource], str]:
    """The cases under ``src`` and the layout name ("distributed" or "sample").

    Raises:
        MedsegError: unknown layout, an image without a mask or a mask without an image.
    """
    if subset not in SUBSETS:
        raise MedsegError(f"--subset {subset!r}: must be one of {', '.join(SUBSETS)}")
    root = check_src(src, NAME)
    image_dir, mask_dir = distributed_folders(subset)
    if root.name in (image_dir, mask_dir):
        root = root.parent
    _, (images, masks, layout) = find_layout(root, lambda folder: _match(folder, subset), NAME, _layouts(subset))
    masks_by_key: dict[str, Path] = {}
    for stem, path in files_by_stem(masks, (".png",)).items():
        key = _mask_key(stem)
        if key in masks_by_key:
            raise MedsegError(
                f"{path}: a second mask for {key} (also {masks_by_key[key].name}); keep one mask per image"
            )
        masks_by_key[key] = path
    pairs = pair_files(files_by_stem(images, (".jpg", ".jpeg", ".png")), masks_by_key)
    return [PairSource(case_id, image, mask, None, max_size) for case_id, image, mask in pairs], layout


def load_case(source: PairSource) -> CaseData:
    """Read one ISIC image (RGB) and its lesion mask (0/1)."""
    return load_pair(source)


def convert_isic2018(
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
    max_size: int | None = None,
    subset: str = "Training",
) -> DatasetSpec:
    """Convert ISIC 2018 Task 1 to the raw format (RGB ``_0000.png`` images, 0/1 PNG labels, no groups).

    Args:
        src: the dataset folder (see the module docstring for the accepted layouts).
        out: the raw dataset folder to create.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        max_size: shrink images whose long side is larger to this many pixels (Lanczos for the image, nearest
            neighbour for the mask); None keeps the original size (the distributed images are up to 6000x4000).
        subset: "Training", "Validation" or "Test": which distributed release to read.
    """
    sources, layout = find_cases(src, subset=subset, max_size=check_max_size(max_size))
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names=dict(RGB_CHANNELS),
        labels={"background": 0, "lesion": 1},
        file_ending=".png",
        extra={
            "name": "ISIC2018_Task1",
            "description": f"ISIC 2018 Task 1 skin lesion segmentation ({subset} release, {layout} layout)"
            + (f", long side at most {max_size} px" if max_size else ""),
            "reference": "Codella N. et al., Skin Lesion Analysis Toward Melanoma Detection 2018, arXiv:1902.03368; "
            "Tschandl P. et al., The HAM10000 dataset, Sci Data 5:180161, 2018",
            "licence": "CC BY-NC 4.0 (ISIC 2018 challenge data): attribution, non-commercial use only",
            "converted_by": converted_by(NAME),
        },
        overwrite=overwrite,
    )
    return write_dataset(sources, load_case, writer, num_workers=num_workers, description=f"converting {NAME}")
