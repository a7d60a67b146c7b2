"""CVC-ClinicDB (colonoscopy polyps): 612 frames from 29 video sequences, with binary polyp masks.

Accepted layouts of ``--src`` (the folder itself or one folder above it):

- as distributed: ``Original/<n>.tif`` + ``Ground Truth/<n>.tif`` (``.tiff``, ``.png`` and ``.bmp`` too), also inside
  ``TIF/`` or ``PNG/`` sub-folders;
- the samples in ``shared/data/cvc_clinicdb[_full]``: ``images/<n>.png`` + ``masks/<n>.png`` + ``manifest.csv``.

Case ids are the frame numbers zero-padded to 3 digits ("001"). Each case's group is its video sequence, taken from
the ``frame_table`` option, else from the folder's ``manifest.csv``, else from :data:`README_SEQUENCES`.
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
    column,
    converted_by,
    files_by_stem,
    find_layout,
    load_pair,
    pair_files,
    read_manifest,
)
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset
from medseglatdiff.errors import MedsegError

NAME = "cvc_clinicdb"
IMAGE_DIRS = ("Original",)
MASK_DIRS = ("Ground Truth", "GroundTruth")
LAYOUTS = [
    "Original/<n>.tif + Ground Truth/<n>.tif (as distributed; also .tiff/.png, also under TIF/ or PNG/)",
    "images/<n>.png + masks/<n>.png [+ manifest.csv with columns frame (or id(frame)) and sequence]",
]

# (sequence, first frame, last frame) from the frame->sequence table of the dataset's README.txt. Checked against
# shared/data/cvc_clinicdb_full/manifest.csv for the 23 sequences it holds; the 6/7 boundary (frames 104-151 hold
# sequences 6 and 7) is not covered by that file.
README_SEQUENCES: tuple[tuple[int, int, int], ...] = (
    (1, 1, 25), (2, 26, 50), (3, 51, 67), (4, 68, 78), (5, 79, 103), (6, 104, 126), (7, 127, 151),
    (8, 152, 177), (9, 178, 199), (10, 200, 205), (11, 206, 227), (12, 228, 252), (13, 253, 277),
    (14, 278, 297), (15, 298, 317), (16, 318, 342), (17, 343, 363), (18, 364, 383), (19, 384, 408),
    (20, 409, 428), (21, 429, 447), (22, 448, 466), (23, 467, 478), (24, 479, 503), (25, 504, 528),
    (26, 529, 546), (27, 547, 571), (28, 572, 591), (29, 592, 612),
)  # fmt: skip


def readme_frame_table() -> dict[int, int]:
    """Frame number -> sequence number, from :data:`README_SEQUENCES` (frames 1..612)."""
    return {frame: seq for seq, first, last in README_SEQUENCES for frame in range(first, last + 1)}


def sequence_group(sequence: str) -> str:
    """Group id of a sequence: "sequence_07" for "7" (non-numeric names are kept as they are)."""
    return f"sequence_{int(sequence):02d}" if sequence.strip().isdigit() else sequence.strip()


def read_frame_table(path: Path) -> dict[int, str]:
    """Frame number -> sequence from a CSV with columns ``frame`` (or ``id(frame)``/``id``) and ``sequence``."""
    rows = read_manifest(path)
    if not rows:
        raise MedsegError(f"{path}: empty; a frame table needs one row per frame with columns frame,sequence")
    frame_col, seq_col = column(rows, path, "frame", "id(frame)", "id"), column(rows, path, "sequence")
    table: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        if not row[frame_col].isdigit() or not row[seq_col]:
            raise MedsegError(
                f"{path}, line {line}: frame {row[frame_col]!r} / sequence {row[seq_col]!r}; "
                "frame must be a number and sequence non-empty"
            )
        table[int(row[frame_col])] = row[seq_col]
    return table


def _by_frame(folder: Path) -> dict[int, Path]:
    """Image files of ``folder`` by frame number (the file stem)."""
    frames: dict[int, Path] = {}
    for stem, path in files_by_stem(folder, IMAGE_SUFFIXES).items():
        if not stem.isdigit():
            raise MedsegError(
                f"{path}: CVC-ClinicDB files are named by frame number (<n>.tif); rename or remove this file"
            )
        if int(stem) in frames:
            raise MedsegError(
                f"{path}: frame {int(stem)} again (also {frames[int(stem)].name}); keep one file per frame"
            )
        frames[int(stem)] = path
    return frames


def _match(folder: Path) -> tuple[Path, Path, str] | None:
    for base in (folder, folder / "TIF", folder / "PNG"):
        images = next((base / d for d in IMAGE_DIRS if (base / d).is_dir()), None)
        masks = next((base / d for d in MASK_DIRS if (base / d).is_dir()), None)
        if images and masks:
            return images, masks, "distributed"
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return folder / "images", folder / "masks", "sample"
    return None


def find_cases(
    src: str | os.PathLike, frame_table: str | os.PathLike | None = None, max_size: int | None = None
) -> tuple[list[PairSource], str, str]:
    """The cases under ``src``, the layout name and where the frame -> sequence table came from.

    Raises:
        MedsegError: unknown layout, unpaired files, file names that are not frame numbers, or a frame missing
            from the frame table.
    """
    root = check_src(src, NAME)
    _, (images, masks, layout) = find_layout(root, _match, NAME, LAYOUTS)
    if frame_table is not None:
        table_path = Path(frame_table).expanduser()
        if not table_path.is_file():
            raise MedsegError(f"{table_path}: --frame_table file not found; give a CSV with columns frame,sequence")
        table, table_source = read_frame_table(table_path), f"--frame_table {table_path.name}"
    elif (images.parent / "manifest.csv").is_file():
        table_path = images.parent / "manifest.csv"
        table, table_source = read_frame_table(table_path), "manifest.csv"
    else:
        table_path = None
        table, table_source = {k: str(v) for k, v in readme_frame_table().items()}, "dataset README table"
    pairs = pair_files(_by_frame(images), _by_frame(masks))
    sources = []
    for frame, image, mask in pairs:
        if frame not in table:
            where = table_path or "the built-in README table (frames 1-612)"
            raise MedsegError(
                f"{image}: frame {frame} has no sequence in {where}; pass --frame_table with columns frame,sequence"
            )
        sources.append(PairSource(f"{frame:03d}", image, mask, sequence_group(table[frame]), max_size))
    return sources, layout, table_source


def load_case(source: PairSource) -> CaseData:
    """Read one CVC-ClinicDB frame (RGB) and its polyp mask (0/1)."""
    return load_pair(source)


def convert_cvc_clinicdb(
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
    frame_table: str | None = None,
    max_size: int | None = None,
) -> DatasetSpec:
    """Convert CVC-ClinicDB to the raw format (RGB ``_0000.png``, 0/1 PNG labels, grouped by video sequence).

    Args:
        src: the dataset folder (see the module docstring for the accepted layouts).
        out: the raw dataset folder to create.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        frame_table: CSV with columns ``frame,sequence`` that overrides the frame -> video sequence table.
        max_size: shrink frames whose long side is larger (Lanczos for the image, nearest for the mask); None keeps
            the size (384x288 as distributed).
    """
    sources, layout, table_source = find_cases(src, frame_table=frame_table, max_size=check_max_size(max_size))
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names=dict(RGB_CHANNELS),
        labels={"background": 0, "polyp": 1},
        file_ending=".png",
        group_kind="video_sequence",
        extra={
            "name": "CVC-ClinicDB",
            "description": f"CVC-ClinicDB colonoscopy polyp frames ({layout} layout); groups are video sequences "
            f"(from the {table_source}), whose frames are near-duplicates",
            "reference": "Bernal J. et al., WM-DOVA maps for accurate polyp highlighting in colonoscopy: "
            "Validation vs. saliency maps from physicians, Comput Med Imaging Graph 43:99-111, 2015",
            "licence": "research and educational use only; commercial use forbidden (dataset README). "
            "Images (c) Hospital Clinic Barcelona, ground truth (c) Computer Vision Center Barcelona",
            "converted_by": converted_by(NAME),
        },
        overwrite=overwrite,
    )
    return write_dataset(sources, load_case, writer, num_workers=num_workers, description=f"converting {NAME}")
