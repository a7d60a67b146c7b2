"""Find the cases of a ``medseg predict`` input (one file or a folder) and read them as the model expects.

Naming (nnU-Net's): ``{case}_{channel:04d}{ending}`` files are the channel files of one case (``_0000``,
``_0001``, ...: BraTS FLAIR + T1c); any other supported file is a case of its own, named after the file
(``polyp.jpg`` -> case ``polyp``). Given one ``{case}_0000`` file, its sibling channel files are used too.
An RGB PNG/JPEG is one file holding three channels. Outputs use the input's format: PNG for natural images
(whatever their format: a mask is never stored as lossy JPEG), the input's own suffix for NIfTI, MHA and NRRD
(``.mhd``/``.nhdr`` -> ``.mha``/``.nrrd``; DICOM folders -> ``.nii.gz``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import ImageReadError, MedsegError
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import (
    NATURAL_SUFFIXES,
    SUPPORTED_SUFFIXES,
    LoadedImage,
    read_image,
    supported_suffix,
)
from medseglatdiff.preprocessing.case_io import RawCase

logger = logging.getLogger(__name__)

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_OUTPUT_ENDINGS = {".mhd": ".mha", ".nhdr": ".nrrd", ".dcm": ".nii.gz", "dicom": ".nii.gz"}


@dataclass(frozen=True)
class InputCase:
    """One case to predict: its identifier and its channel files in order."""

    case_id: str
    files: tuple[Path, ...]

    @property
    def suffix(self) -> str:
        return supported_suffix(self.files[0]) or ""

    @property
    def output_ending(self) -> str:
        """The file ending of every output of this case (see the module doc)."""
        if self.suffix in NATURAL_SUFFIXES:
            return ".png"
        return _OUTPUT_ENDINGS.get(self.suffix, self.suffix)


def _stem(path: Path) -> str:
    suffix = supported_suffix(path) or ""
    return path.name[: len(path.name) - len(suffix)] if suffix and suffix != "dicom" else path.name


def _group(files: list[Path]) -> list[InputCase]:
    channel_files: dict[str, dict[int, Path]] = {}
    cases: list[InputCase] = []
    for path in files:
        match = _CHANNEL_RE.match(_stem(path))
        if match:
            channel_files.setdefault(match["case"], {})[int(match["channel"])] = path
        else:
            cases.append(InputCase(_stem(path), (path,)))
    for case_id, channels in channel_files.items():
        expected = list(range(len(channels)))
        if sorted(channels) != expected:
            found = ", ".join(p.name for _, p in sorted(channels.items()))
            raise MedsegError(
                f"case {case_id!r}: channel files must be numbered _0000, _0001, ... without gaps; found {found}"
            )
        cases.append(InputCase(case_id, tuple(channels[i] for i in expected)))
    ids = [c.case_id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        clash = [str(f) for c in cases if c.case_id in duplicates for f in c.files]
        raise MedsegError(
            f"several inputs give the case name {duplicates[0]!r} ({', '.join(clash[:4])}); rename one of them"
        )
    return sorted(cases, key=lambda c: c.case_id)


def find_input_cases(path: str | os.PathLike) -> list[InputCase]:
    """The cases of a file or a folder (not recursive; hidden files ignored).

    Raises:
        ImageReadError: the path does not exist, has an unsupported type, or the folder holds no image.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: input not found; pass an image file or a folder of images")
    if path.is_file():
        if supported_suffix(path) is None:
            raise ImageReadError(f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")
        match = _CHANNEL_RE.match(_stem(path))
        if match:
            siblings = [
                p
                for p in path.parent.iterdir()
                if p.is_file()
                and supported_suffix(p) == supported_suffix(path)
                and (m := _CHANNEL_RE.match(_stem(p)))
                and m["case"] == match["case"]
            ]
            return _group(sorted(siblings))
        return [InputCase(_stem(path), (path,))]
    if supported_suffix(path) == "dicom" and any(p.suffix.lower() == ".dcm" for p in path.iterdir()):
        return [InputCase(path.name, (path,))]
    files = sorted(
        p for p in path.iterdir() if not p.name.startswith(".") and p.is_file() and supported_suffix(p) is not None
    )
    if not files:
        hint = ""
        for sub in ("imagesTs", "imagesTr"):
            if (path / sub).is_dir():
                hint = f"; did you mean {path / sub}?"
                break
        raise ImageReadError(f"{path}: no image files ({', '.join(SUPPORTED_SUFFIXES)}) in this folder{hint}")
    return _group(files)


def _match_channels(image: np.ndarray, expected: int, case: InputCase) -> np.ndarray:
    """Fit common near-misses: RGBA -> RGB, grey -> RGB (repeated), RGB with equal channels -> grey."""
    found = image.shape[0]
    if found == expected:
        return image
    if found == 4 and expected == 3:
        return image[:3]
    if found == 1 and expected == 3:
        logger.warning("%s: grey image given to an RGB model; the channel is repeated", case.files[0])
        return np.repeat(image, 3, axis=0)
    if found in (3, 4) and expected == 1 and np.array_equal(image[0], image[1]) and np.array_equal(image[0], image[2]):
        return image[:1]
    names = ", ".join(str(f) for f in case.files)
    raise MedsegError(
        f"{names}: {found} channel(s), but the model was trained on {expected}; give one file per channel named "
        f"{case.case_id}_0000, {case.case_id}_0001, ... (an RGB PNG/JPEG counts as three)"
    )


def read_input_case(case: InputCase, num_channels: int, spatial_dims: int) -> RawCase:
    """Read every channel file of ``case`` into a :class:`RawCase` (no label) with the first file's geometry.

    Args:
        case: the case.
        num_channels: channels the model was trained on.
        spatial_dims: dimensions of the images the model was trained on (a 2D plan of volumes expects 3).

    Raises:
        ImageReadError: a file is unreadable (truncated, corrupt, unsupported); the message names it.
        MedsegError: channels or dimensions do not fit the model, channel files disagree in shape, or a voxel is
            NaN or infinite. A volume of one slice (a single DICOM file) given to a 2D model is read as a 2D image
            (``RawCase.source_geometry`` keeps its 3D grid for the outputs).
    """
    loaded = [read_image(path).require_finite() for path in case.files]
    first = loaded[0]
    for item in loaded[1:]:
        if item.spatial_shape != first.spatial_shape:
            raise MedsegError(
                f"{item.path}: shape {item.spatial_shape} differs from {first.path} {first.spatial_shape}; "
                "channel files of a case must share one grid"
            )
    source_geometry = None
    if spatial_dims == 2 and first.spatial_dims == 3 and first.spatial_shape[2] == 1:
        source_geometry = first.geometry  # one slice (a single DICOM file or a one-slice series) for a 2D model
        loaded = [single_slice_as_2d(item) for item in loaded]
        first = loaded[0]
    if first.spatial_dims != spatial_dims:
        kind = {2: "2D images", 3: "3D volumes"}.get(spatial_dims, f"{spatial_dims}D images")
        raise MedsegError(
            f"{first.path}: a {first.spatial_dims}D image, but the model was trained on {kind}; "
            "use a model trained on data like it"
        )
    image = np.concatenate([np.asarray(item.array, dtype=np.float32) for item in loaded], axis=0)
    image = _match_channels(image, num_channels, case)
    return RawCase(case.case_id, image, None, None, first.geometry, source_geometry)


def single_slice_as_2d(image: LoadedImage) -> LoadedImage:
    """A (C, x, y, 1) volume as the 2D image (C, x, y), with the in-plane part of its geometry."""
    geometry = image.geometry
    plane = Geometry(geometry.spacing[:2], geometry.origin[:2], tuple(tuple(row[:2]) for row in geometry.direction[:2]))
    return LoadedImage(image.array[..., 0], plane, image.path)


def dataset_input_case(spec: DatasetSpec, case: str) -> InputCase:
    """A raw dataset case as an input of ``medseg predict``; a ``MedsegError`` when its image files are missing."""
    files = tuple(spec.image_files(case))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MedsegError(
            f"{missing[0]}: image of case {case!r} not found in the raw dataset {spec.root}; "
            "pass the raw dataset that was planned (--raw)"
        )
    return InputCase(case, files)
