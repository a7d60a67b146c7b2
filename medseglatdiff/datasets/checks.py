"""Problem kinds, the :class:`Problem` record, and the checks that read one case's files.

The kinds and their meaning are documented in :mod:`medseglatdiff.datasets.verify`. :func:`check_case` reads
each file of a case exactly once and runs every per-case check on what it read; it is a module-level function
of a picklable :class:`CaseJob`, so a process pool can run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medseglatdiff.errors import ImageReadError
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import LoadedImage, read_image

Severity = Literal["error", "warning"]

DATASET_JSON_MISSING = "dataset_json_missing"
DATASET_JSON_INVALID = "dataset_json_invalid"
EMPTY_DATASET = "empty_dataset"
NUM_TRAINING_MISMATCH = "num_training_mismatch"
BAD_FILE_NAME = "bad_file_name"
IMAGE_WITHOUT_LABEL = "image_without_label"
LABEL_WITHOUT_IMAGE = "label_without_image"
MISSING_CHANNEL_FILE = "missing_channel_file"
RATER_COUNT_MISMATCH = "rater_count_mismatch"
CASE_GROUPS_UNKNOWN_CASE = "case_groups_unknown_case"
CASE_WITHOUT_GROUP = "case_without_group"
UNREADABLE_FILE = "unreadable_file"
CHANNEL_COUNT_MISMATCH = "channel_count_mismatch"
SHAPE_MISMATCH = "shape_mismatch"
SPACING_MISMATCH = "spacing_mismatch"
GEOMETRY_MISMATCH = "geometry_mismatch"
NAN_OR_INF_IN_IMAGE = "nan_or_inf_in_image"
LABEL_NOT_SINGLE_CHANNEL = "label_not_single_channel"
UNEXPECTED_LABEL_VALUES = "unexpected_label_values"
UNEXPECTED_RATER_VALUES = "unexpected_rater_values"
ALL_BACKGROUND_LABEL = "all_background_label"
INVALID_LABEL_SCHEME = "invalid_label_scheme"
IGNORED_DATASET_KEY = "ignored_dataset_key"

#: Every kind in report order, with its severity.
KINDS: dict[str, Severity] = {
    DATASET_JSON_MISSING: "error",
    DATASET_JSON_INVALID: "error",
    EMPTY_DATASET: "error",
    NUM_TRAINING_MISMATCH: "error",
    BAD_FILE_NAME: "error",
    IMAGE_WITHOUT_LABEL: "error",
    LABEL_WITHOUT_IMAGE: "error",
    MISSING_CHANNEL_FILE: "error",
    RATER_COUNT_MISMATCH: "error",
    CASE_GROUPS_UNKNOWN_CASE: "error",
    CASE_WITHOUT_GROUP: "warning",
    UNREADABLE_FILE: "error",
    CHANNEL_COUNT_MISMATCH: "error",
    SHAPE_MISMATCH: "error",
    SPACING_MISMATCH: "error",
    GEOMETRY_MISMATCH: "error",
    NAN_OR_INF_IN_IMAGE: "error",
    LABEL_NOT_SINGLE_CHANNEL: "error",
    UNEXPECTED_LABEL_VALUES: "error",
    UNEXPECTED_RATER_VALUES: "error",
    ALL_BACKGROUND_LABEL: "warning",
    INVALID_LABEL_SCHEME: "error",
    IGNORED_DATASET_KEY: "warning",
}

#: Absolute and relative tolerance when comparing spacing, origin and direction of a case's files.
GEOMETRY_ATOL = 1e-3
GEOMETRY_RTOL = 1e-4

HINT_0_255 = "masks look saved as 0/255; divide by 255 (medseg convert does this) or map 255 -> 1"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset.

    Attributes:
        kind: a stable identifier, one of :data:`KINDS`.
        severity: "error" (the dataset cannot be used as it is) or "warning" (allowed, but probably a mistake).
        files: the files involved; the first is the offending one. A missing file is named by its expected path.
        message: what is wrong.
        hint: how to fix it.
    """

    kind: str
    severity: Severity
    files: tuple[Path, ...]
    message: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "files": [str(f) for f in self.files],
            "message": self.message,
            "hint": self.hint,
        }


def problem(kind: str, files: tuple[Path, ...] | list[Path] | Path, message: str, hint: str) -> Problem:
    """A :class:`Problem` with the severity that :data:`KINDS` gives ``kind``."""
    files = (files,) if isinstance(files, Path) else tuple(files)
    return Problem(kind=kind, severity=KINDS[kind], files=files, message=message, hint=hint)


@dataclass(frozen=True)
class CaseJob:
    """What :func:`check_case` needs to know about one case; every field is picklable.

    Attributes:
        case: the case id.
        images: the case's image files in channel-file order.
        label: its label file, or None when it has none.
        raters: its rater mask files.
        channel_names: ``channel_names`` of dataset.json, or None when dataset.json is unusable.
        label_values: the values ``labels`` allows, or None when dataset.json is unusable.
    """

    case: str
    images: tuple[Path, ...]
    label: Path | None = None
    raters: tuple[Path, ...] = ()
    channel_names: dict[str, str] | None = None
    label_values: tuple[int, ...] | None = None


def check_case(job: CaseJob) -> list[Problem]:
    """Read every file of one case once and return all its problems."""
    found: list[Problem] = []
    images = [_read(path, found) for path in job.images]
    readable = [image for image in images if image is not None]
    reference = readable[0] if readable else None
    for image in readable:
        if image is not reference:
            _compare_grid(reference, image, "channel file", found)
        bad = int(np.count_nonzero(~np.isfinite(image.array))) if np.issubdtype(image.array.dtype, np.floating) else 0
        if bad:
            found.append(
                problem(
                    NAN_OR_INF_IN_IMAGE,
                    image.path,
                    f"{bad} voxel(s) are NaN or infinite",
                    "replace them (e.g. numpy.nan_to_num) before saving; the network cannot learn from NaN inputs",
                )
            )
    if job.channel_names is not None and len(readable) == len(images) and images:
        _check_channel_count(job, readable, found)
    label = _read(job.label, found) if job.label is not None else None
    if label is not None:
        _check_mask(label, reference, job.label_values, UNEXPECTED_LABEL_VALUES, "label", found)
    any_rater_foreground = False
    for path in job.raters:
        rater = _read(path, found)
        if rater is not None:
            _check_mask(rater, reference, job.label_values, UNEXPECTED_RATER_VALUES, "rater mask", found)
            any_rater_foreground = any_rater_foreground or bool(rater.array.any())
    # With raters, an empty majority vote while some rater outlined something is ordinary disagreement.
    if label is not None and label.array.size and not label.array.any() and not any_rater_foreground:
        found.append(
            problem(
                ALL_BACKGROUND_LABEL,
                label.path,
                "the label is all background (0)" + (" and so is every rater mask" if job.raters else ""),
                "fine if the case really has no foreground; otherwise the label file is wrong or empty by mistake",
            )
        )
    return found


def _read(path: Path, found: list[Problem]) -> LoadedImage | None:
    try:
        return read_image(path)
    except ImageReadError as exc:
        found.append(
            problem(
                UNREADABLE_FILE,
                path,
                str(exc).removeprefix(f"{path}: "),
                "re-export or re-download this file "
                "(it may be truncated, corrupt or of another format than its name says)",
            )
        )
        return None


def _check_channel_count(job: CaseJob, images: list[LoadedImage], found: list[Problem]) -> None:
    expected = len(job.channel_names or {})
    counts = [image.num_channels for image in images]
    if sum(counts) == expected:
        return
    per_file = ", ".join(f"{image.path.name}: {count}" for image, count in zip(images, counts))
    names = ", ".join(f"{k}={v}" for k, v in (job.channel_names or {}).items())
    grey_in_rgb = expected == 3 and counts == [1]
    fix = "save this image as RGB (3 channels)" if grey_in_rgb else "add or remove channel files, or convert the image"
    found.append(
        problem(
            CHANNEL_COUNT_MISMATCH,
            tuple(image.path for image in images),
            f"the case's files hold {sum(counts)} channel(s) ({per_file}); "
            f"dataset.json channel_names expects {expected}",
            f"channel_names ({names}) expects {expected} channel(s) per case in total; {fix}, "
            "or correct channel_names in dataset.json",
        )
    )


def _check_mask(
    mask: LoadedImage,
    reference: LoadedImage | None,
    allowed: tuple[int, ...] | None,
    kind: str,
    what: str,
    found: list[Problem],
) -> None:
    if mask.num_channels > 1:
        found.append(
            problem(
                LABEL_NOT_SINGLE_CHANNEL,
                mask.path,
                f"the {what} has {mask.num_channels} channels (e.g. an RGB mask)",
                f"save the {what} as a single-channel (greyscale) integer map",
            )
        )
    if reference is not None:
        _compare_grid(reference, mask, what, found)
    values = np.unique(mask.array)
    finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    fractional = finite[finite != np.rint(finite)]
    if len(finite) < len(values) or len(fractional):
        example = values[~np.isfinite(values)] if len(finite) < len(values) else fractional
        found.append(
            problem(
                kind,
                mask.path,
                f"the {what} holds non-integer values (e.g. {float(example[0]):g})",
                f"save the {what} as an integer map (e.g. uint8); do not resample masks with linear interpolation",
            )
        )
        return
    present = sorted(int(v) for v in finite)
    if allowed is None:
        return
    unexpected = [v for v in present if v not in allowed]
    if not unexpected:
        return
    source = "dataset.json labels allow"
    if 255 in unexpected and set(present) <= {0, 255} | set(allowed):
        hint = HINT_0_255
    elif kind == UNEXPECTED_RATER_VALUES:
        hint = "save each rater mask as a label map with the values of 'labels' (0/1 for one class)"
    else:
        hint = "add the missing classes to 'labels' in dataset.json, or fix the label file"
    found.append(
        problem(
            kind,
            mask.path,
            f"the {what} holds values {_short(present)}, {source} only {_short(list(allowed))}; "
            f"unexpected: {_short(unexpected)}",
            hint,
        )
    )


def _compare_grid(reference: LoadedImage, other: LoadedImage, what: str, found: list[Problem]) -> None:
    files = (other.path, reference.path)
    if other.spatial_shape != reference.spatial_shape:
        found.append(
            problem(
                SHAPE_MISMATCH,
                files,
                f"{what} shape {other.spatial_shape} differs from image shape {reference.spatial_shape} "
                f"({reference.path.name})",
                "the image, its channel files, label and rater masks must share one grid; "
                f"resample or re-crop the {what}",
            )
        )
    ref, geo = reference.geometry, other.geometry
    if ref.spatial_dims != geo.spatial_dims:
        return
    if not _close(ref.spacing, geo.spacing):
        found.append(
            problem(
                SPACING_MISMATCH,
                files,
                f"{what} spacing {_fmt(geo.spacing)} differs from image spacing {_fmt(ref.spacing)}",
                f"resample the {what} onto the image grid (nearest neighbour for masks), or fix the header",
            )
        )
    elif not (_close(ref.origin, geo.origin) and _close(ref.direction, geo.direction)):
        found.append(
            problem(
                GEOMETRY_MISMATCH,
                files,
                f"{what} origin/direction {_fmt(geo.origin)} / {_fmt_direction(geo)} differ from the image's "
                f"{_fmt(ref.origin)} / {_fmt_direction(ref)}",
                f"resample the {what} onto the image grid, "
                "or copy the image header (origin, direction) if only the header is wrong",
            )
        )


def _close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=GEOMETRY_RTOL, atol=GEOMETRY_ATOL))


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _fmt_direction(geometry: Geometry) -> str:
    return "[" + ", ".join(_fmt(row) for row in geometry.direction) + "]"


def _short(values: list[int], limit: int = 10) -> str:
    text = ", ".join(str(v) for v in values[:limit])
    return "{" + text + (f", ... ({len(values)} values)" if len(values) > limit else "") + "}"
