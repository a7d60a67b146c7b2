"""Helpers shared by the converters: finding the layout, pairing files, reading 2D images and masks.

2D images are read with PIL (mode conversion and resizing are PIL's) and returned channel-first in MONAI's
axis order, ``(C, x, y)``, as :func:`medseglatdiff.io.read_image` does.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from medseglatdiff.datasets.raw_writer import CaseData
from medseglatdiff.errors import ImageReadError, MedsegError
from medseglatdiff.io.geometry import Geometry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LOSSY_SUFFIXES = (".jpg", ".jpeg")
RGB_CHANNELS = {"0": "R", "1": "G", "2": "B"}

# A mask where more than this fraction of the pixels is clearly neither background nor foreground is a photo.
_MAX_GREY_FRACTION = 0.1

Key = TypeVar("Key", str, int)
Match = TypeVar("Match")


def converted_by(name: str) -> str:
    """The ``converted_by`` entry of dataset.json."""
    return f"medseglatdiff convert {name}"


def check_src(src: str | os.PathLike, name: str) -> Path:
    """``src`` as a Path; raises MedsegError when it is not a folder."""
    path = Path(src).expanduser()
    if not path.is_dir():
        raise MedsegError(
            f"{path}: folder not found; --src must be the {name} dataset folder as downloaded (see docs/converters.md)"
        )
    return path


def check_max_size(max_size: int | None) -> int | None:
    """Validate the ``max_size`` option (None keeps the original size)."""
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 8:
        raise MedsegError(
            f"--max_size {max_size!r}: must be an integer of at least 8 (long side in pixels), "
            "or left out to keep the size"
        )
    return max_size


def child_folders(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_layout(
    src: Path, match: Callable[[Path], Match | None], name: str, layouts: Iterable[str]
) -> tuple[Path, Match]:
    """The folder holding the dataset and what ``match`` found there: ``src`` itself, else its one matching child.

    Args:
        src: the --src folder.
        match: returns layout details for a folder that holds the dataset, None otherwise.
        name: converter name, for messages.
        layouts: accepted layouts, for the error message.

    Raises:
        MedsegError: no folder matches, or several children do (e.g. --src is a folder of several datasets).
    """
    found = match(src)
    if found is not None:
        return src, found
    hits = [(child, hit) for child in child_folders(src) if (hit := match(child)) is not None]
    if len(hits) > 1:
        names = ", ".join(child.name for child, _ in hits)
        raise MedsegError(
            f"{src}: several folders in it match a {name} layout ({names}); pass the one to convert as --src"
        )
    if not hits:
        raise unknown_layout(src, name, layouts)
    return hits[0]


def unknown_layout(src: Path, name: str, layouts: Iterable[str]) -> MedsegError:
    """The error for a --src folder whose layout is not one the converter accepts."""
    listed = "\n".join(f"  - {layout}" for layout in layouts)
    return MedsegError(
        f"{src}: not a {name} layout this converter accepts. "
        f"Accepted layouts (under --src or one folder below it):\n{listed}\n"
        "See docs/converters.md."
    )


def files_by_stem(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """Image files in ``folder`` by file stem; hidden and other files are ignored.

    Raises:
        MedsegError: two files share a stem (e.g. ``1.tif`` and ``1.png``), so the pairing would be ambiguous.
    """
    suffixes = tuple(s.lower() for s in suffixes)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        stem = path.name[: -len(path.suffix)]
        if stem in found:
            raise MedsegError(f"{path}: same name as {found[stem].name}; keep one file per case in {folder}")
        found[stem] = path
    return found


def pair_files(images: dict[Key, Path], masks: dict[Key, Path]) -> list[tuple[Key, Path, Path]]:
    """Match images and masks by key; an image without a mask (or a mask without an image) is an error."""
    for key, path in sorted(images.items()):
        if key not in masks:
            raise MedsegError(f"{path}: image has no mask{_in_folder(masks)}; add the mask or remove the image")
    for key, path in sorted(masks.items()):
        if key not in images:
            raise MedsegError(f"{path}: mask has no image{_in_folder(images)}; add the image or remove the mask")
    return [(key, images[key], masks[key]) for key in sorted(images)]


def _in_folder(files: dict[Key, Path]) -> str:
    return f" in {next(iter(files.values())).parent}" if files else " (the other folder holds no image files)"


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file with a header; raises MedsegError naming the file when it cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedsegError(f"{path}: cannot read this CSV file ({exc})") from exc


def column(rows: list[dict[str, str]], path: Path, *names: str) -> str:
    """The first of ``names`` that is a column of ``rows``; raises MedsegError naming the file."""
    header = rows[0].keys() if rows else []
    for name in names:
        if name in header:
            return name
    raise MedsegError(f"{path}: needs a column named {' or '.join(repr(n) for n in names)}; found {list(header)}")


def open_image(path: Path) -> Image.Image:
    """Open and decode an image file with PIL; raises ImageReadError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageReadError(
            f"{path}: cannot read ({type(exc).__name__}: {exc}); the file may be truncated or corrupt"
        ) from exc


def channel_first(pixels: np.ndarray) -> np.ndarray:
    """PIL's (y, x[, C]) pixel array as (C, x, y)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(np.moveaxis(pixels, -1, 0).transpose(0, 2, 1))


def resized_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """(width, height) scaled so that the long side is at most ``max_size``; aspect ratio kept."""
    width, height = size
    if max_size is None or max(width, height) <= max_size:
        return size
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_grey(path: Path) -> np.ndarray:
    """A grey image (8 or 16 bit kept; colour converted to grey) as (1, x, y)."""
    image = open_image(path)
    if image.mode not in ("L", "I;16", "I;16B", "I;16L"):
        image = image.convert("L")
    pixels = np.asarray(image)
    if pixels.dtype.byteorder == ">" or pixels.dtype.kind == "i":
        pixels = pixels.astype(np.uint16)
    return channel_first(pixels)


def binarize_mask(pixels: np.ndarray, path: Path, lossy: bool = False) -> np.ndarray:
    """A 2D mask array (grey values) as uint8 0/1.

    Rules: values already in {0, 1} stay (unless ``lossy``: JPEG noise may produce stray 1s); otherwise the
    threshold is half the range: > 127 for 8-bit values, > 32767 for 16-bit ones.

    Raises:
        MedsegError: more than 10 % of the pixels are mid-grey, so the file looks like a photo, not a mask.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == bool:
        return pixels.astype(np.uint8)
    top = float(pixels.max()) if pixels.size else 0.0
    if top <= 1 and not lossy:
        return (pixels > 0).astype(np.uint8)
    full = 255.0 if top <= 255 else 65535.0
    grey = np.count_nonzero((pixels > full / 8) & (pixels < full * 7 / 8))
    if pixels.size and grey > _MAX_GREY_FRACTION * pixels.size:
        raise MedsegError(
            f"{path}: does not look like a mask ({100 * grey / pixels.size:.0f}% of the pixels are mid-grey); "
            "check that the image and mask folders are not swapped"
        )
    return (pixels > full // 2).astype(np.uint8)


def mask_from_pil(image: Image.Image, path: Path) -> np.ndarray:
    """A PIL mask as a 2D uint8 0/1 array (y, x); colour masks are converted to grey first."""
    if image.mode == "P":
        indices = np.asarray(image)
        if set(np.unique(indices).tolist()) <= {0, 1}:
            return indices.astype(np.uint8)  # a palette mask: index 1 is the foreground whatever its colour
    if image.mode in ("RGB", "RGBA", "LA", "P", "CMYK", "YCbCr", "HSV", "F"):
        image = image.convert("L")
    return binarize_mask(np.asarray(image), path, lossy=path.suffix.lower() in LOSSY_SUFFIXES)


def read_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A binary mask file as (1, x, y) uint8 0/1, optionally resized (nearest neighbour) to ``size`` (w, h)."""
    mask = mask_from_pil(open_image(path), path)
    if size is not None and (mask.shape[1], mask.shape[0]) != size:
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    return channel_first(mask)


@dataclass(frozen=True)
class PairSource:
    """One 2D case made of an RGB image and a binary mask (a picklable work item).

    Attributes:
        case_id: output case id.
        image: the image file.
        mask: the mask file (same size as the image).
        group: patient / video sequence id, or None.
        max_size: long side to shrink to (Lanczos for the image, nearest for the mask); None keeps the size.
    """

    case_id: str
    image: Path
    mask: Path
    group: str | None = None
    max_size: int | None = None


def load_pair(source: PairSource) -> CaseData:
    """Read an RGB image and its mask into a single-label case with identity geometry."""
    image = open_image(source.image)
    mask_image = open_image(source.mask)
    if image.size != mask_image.size:
        raise MedsegError(
            f"{source.mask}: mask is {mask_image.size[0]}x{mask_image.size[1]} but its image {source.image} is "
            f"{image.size[0]}x{image.size[1]}; image and mask must have the same size"
        )
    if image.mode != "RGB":
        image = image.convert("RGB")
    size = resized_size(image.size, source.max_size)
    mask = mask_from_pil(mask_image, source.mask)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    return CaseData(
        case_id=source.case_id,
        channels=[channel_first(np.asarray(image))],
        geometry=Geometry.identity(2),
        label=channel_first(mask),
        group=source.group,
    )
