"""Check a raw dataset and list every problem at once (``medseg verify_dataset DIR``); never writes into it.

:func:`verify_dataset` checks the folder layout from file names first, then reads every file of every case
exactly once (in parallel over cases with ``num_workers > 1``) and returns a :class:`VerifyReport` with all
problems found; it never stops at the first. Each :class:`Problem` names the files involved, says what is
wrong and how to fix it. Errors make the dataset unusable as it is; warnings are allowed but worth a look.

Problem kinds (``Problem.kind``; constants of the same name in upper case, e.g. ``SHAPE_MISMATCH``):

======================== ======== ==================================================================================
kind                     severity meaning
======================== ======== ==================================================================================
dataset_json_missing     error    the folder has no ``dataset.json``.
dataset_json_invalid     error    ``dataset.json`` is not valid JSON, not an object, or has missing / wrongly typed
                                  keys (one problem per key). The folder checks still run, guessing the file ending.
empty_dataset            error    ``imagesTr`` holds no file named ``{case}_{XXXX}{file_ending}``.
num_training_mismatch    error    ``numTraining`` differs from the number of cases found in ``imagesTr``.
bad_file_name            error    a file in ``imagesTr``/``labelsTr``/``ratersTr`` does not follow the naming pattern
                                  or does not end with ``file_ending``.
image_without_label      error    a case has image files but no ``labelsTr/{case}{file_ending}``.
label_without_image      error    a label or rater mask has no image (``imagesTr/{case}_0000{file_ending}``).
missing_channel_file     error    a case lacks a channel file that other cases have, or its channel files are not
                                  numbered ``_0000, _0001, ...`` without gaps.
rater_count_mismatch     error    a case's number of ``ratersTr`` masks differs from ``num_raters`` (or rater masks
                                  exist while ``num_raters`` is 0 or absent).
case_groups_unknown_case error    ``case_groups`` names a case that has no image files.
case_without_group       warning  ``case_groups`` is given but does not name this case.
unreadable_file          error    the file cannot be read (truncated, corrupt, or not what its ending says).
channel_count_mismatch   error    the channels of a case's image files do not add up to ``len(channel_names)``
                                  (e.g. a grey PNG in an RGB dataset).
shape_mismatch           error    the spatial shape of a label, rater mask or channel file differs from the image's.
spacing_mismatch         error    their voxel spacing differs beyond tolerance (never for PNG/JPEG: unit spacing).
geometry_mismatch        error    same spacing, but origin or direction differ beyond tolerance.
nan_or_inf_in_image      error    an image holds NaN or infinite values.
label_not_single_channel error    a label or rater mask has more than one channel (e.g. an RGB mask).
unexpected_label_values  error    a label holds values that ``labels`` does not list, or non-integer values; masks
                                  saved as 0/255 get a hint saying so.
unexpected_rater_values  error    a rater mask holds values ``labels`` does not list (or non-integer values).
all_background_label     warning  the label is all background and, with raters, so is every rater mask. An empty
                                  rater mask, or an empty majority vote while some rater outlined something, is
                                  ordinary reader disagreement and is not reported.
invalid_label_scheme     error    region labels (lists of values) without a matching ``regions_class_order``, or
                                  an ``ignore`` label that is not the highest value (nnU-Net's rules).
ignored_dataset_key      warning  ``overwrite_image_reader_writer``: the reader is chosen from the file ending.
======================== ======== ==================================================================================

Spacing, origin and direction are compared with ``numpy.allclose(rtol=1e-4, atol=1e-3)``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medseglatdiff.datasets.checks import (
    BAD_FILE_NAME,
    CASE_GROUPS_UNKNOWN_CASE,
    CASE_WITHOUT_GROUP,
    DATASET_JSON_INVALID,
    DATASET_JSON_MISSING,
    EMPTY_DATASET,
    IGNORED_DATASET_KEY,
    IMAGE_WITHOUT_LABEL,
    INVALID_LABEL_SCHEME,
    KINDS,
    LABEL_WITHOUT_IMAGE,
    MISSING_CHANNEL_FILE,
    NUM_TRAINING_MISMATCH,
    RATER_COUNT_MISMATCH,
    CaseJob,
    Problem,
    check_case,
    problem,
)
from medseglatdiff.datasets.dataset_json import (
    DATASET_JSON,
    IMAGES_DIR,
    LABELS_DIR,
    RATERS_DIR,
    DatasetSpec,
    scan_images,
    scan_labels,
    scan_raters,
    unmatched_files,
)
from medseglatdiff.datasets.label_scheme import LabelSchemeError
from medseglatdiff.errors import DatasetFormatError
from medseglatdiff.io.readers import supported_suffix

__all__ = ["KINDS", "Problem", "VerifyReport", "verify_dataset"]

#: At most this many problems of one kind are printed by :meth:`VerifyReport.format`.
MAX_SHOWN_PER_KIND = 20


@dataclass
class VerifyReport:
    """Every problem found in one dataset.

    Attributes:
        problems: all problems, folder-level ones first, then case by case.
        dataset: the dataset folder.
        num_cases: number of cases found in ``imagesTr``.
    """

    problems: list[Problem] = field(default_factory=list)
    dataset: Path | None = None
    num_cases: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    @property
    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dataset": str(self.dataset) if self.dataset is not None else None,
            "num_cases": self.num_cases,
            "ok": self.ok,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
        }

    def format(self, max_per_kind: int = MAX_SHOWN_PER_KIND) -> str:
        """Human-readable report: a header, then the problems grouped by kind (at most ``max_per_kind`` each)."""
        n_err, n_warn = len(self.errors), len(self.warnings)
        lines = [
            f"dataset {self.dataset}: {self.num_cases} cases, {n_err} error{'s' * (n_err != 1)}, "
            f"{n_warn} warning{'s' * (n_warn != 1)}"
        ]
        order = list(KINDS) + sorted(self.kinds - set(KINDS))
        for kind in order:
            group = self.of_kind(kind)
            for item in group[:max_per_kind]:
                files = ", ".join(self._show(f) for f in item.files)
                lines += [f"{item.severity:<7} {item.kind}: {files}", f"    {item.message}", f"    fix: {item.hint}"]
            if len(group) > max_per_kind:
                lines.append(
                    f"    ... and {len(group) - max_per_kind} more {kind} problems (all are in the report object)"
                )
        if not self.errors:
            lines.append("OK" + (" (with warnings)" if n_warn else ": no problems found"))
        else:
            lines.append(f"FAILED: fix the {n_err} error{'s' * (n_err != 1)} above, then run verify_dataset again")
        return "\n".join(lines)

    def _show(self, path: Path) -> str:
        if self.dataset is not None:
            try:
                return str(path.relative_to(self.dataset))
            except ValueError:
                pass
        return str(path)


def verify_dataset(dataset: str | os.PathLike, num_workers: int = 1, progress: bool = True) -> VerifyReport:
    """Check a raw dataset (nnU-Net v2 layout with optional raters) and report every problem at once.

    Args:
        dataset: the dataset folder, holding ``dataset.json``, ``imagesTr``, ``labelsTr`` and optionally ``ratersTr``.
        num_workers: processes that read cases in parallel (1: read in this process).
        progress: show a tqdm progress bar over cases (hidden anyway when output is not a terminal).

    Returns:
        the report; ``report.ok`` is False when any error was found.

    Raises:
        DatasetFormatError: ``dataset`` is not a folder.
    """
    root = Path(dataset)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: dataset folder not found; pass the folder that holds dataset.json")
    problems: list[Problem] = []
    spec = _load_spec(root, problems)
    ending = spec.file_ending if spec is not None else _guess_ending(root)
    images = scan_images(root, ending) if ending else {}
    labels = scan_labels(root, ending) if ending else {}
    raters = scan_raters(root, ending) if ending else {}

    if ending:
        problems += _bad_names(root, ending, spec)
    problems += _pairing(root, ending or "", images, labels, raters)
    problems += _channel_files(root, ending or "", images)
    if spec is not None:
        problems += _counts(spec, images, raters)
        problems += _groups(spec, images)
        problems += _label_semantics(spec)

    jobs = [
        CaseJob(
            case=case,
            images=tuple(files[i] for i in sorted(files)),
            label=labels.get(case),
            raters=tuple(raters.get(case, {})[r] for r in sorted(raters.get(case, {}))),
            channel_names=spec.channel_names if spec is not None else None,
            label_values=tuple(spec.label_values) if spec is not None else None,
        )
        for case, files in sorted(images.items())
    ]
    for found in _run(jobs, num_workers, progress):
        problems += found
    return VerifyReport(problems=problems, dataset=root, num_cases=len(images))


def _run(jobs: list[CaseJob], num_workers: int, progress: bool) -> Iterator[list[Problem]]:
    bar: dict[str, Any] = dict(total=len(jobs), desc="verifying", unit="case", disable=True if not progress else None)
    if num_workers > 1 and len(jobs) > 1:
        chunksize = max(1, len(jobs) // (num_workers * 8))
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            yield from tqdm(pool.map(check_case, jobs, chunksize=chunksize), **bar)
    else:
        yield from (check_case(job) for job in tqdm(jobs, **bar))


def _load_spec(root: Path, problems: list[Problem]) -> DatasetSpec | None:
    """Parse dataset.json, turning every problem with it into a :class:`Problem`; None when unusable."""
    path = root / DATASET_JSON
    if not path.is_file():
        problems.append(
            problem(
                DATASET_JSON_MISSING,
                path,
                "the dataset has no dataset.json",
                "write one (see docs/dataset_format.md) with channel_names, labels, numTraining and file_ending, "
                "or create the dataset with `medseg convert`",
            )
        )
        return None
    hint = (
        'see docs/dataset_format.md; e.g. {"channel_names": {"0": "CT"}, "labels": {"background": 0, "lesion": 1}, ...}'
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(problem(DATASET_JSON_INVALID, path, f"not valid JSON ({exc})", "fix the JSON syntax; " + hint))
        return None
    if not isinstance(data, dict):
        problems.append(problem(DATASET_JSON_INVALID, path, "must hold a JSON object", hint))
        return None
    try:
        return DatasetSpec.from_dict(root, data)
    except DatasetFormatError as exc:
        for item in exc.problems:
            problems.append(problem(DATASET_JSON_INVALID, path, item, "correct this key in dataset.json; " + hint))
        return None


def _guess_ending(root: Path) -> str | None:
    """The most common supported file ending in imagesTr/labelsTr (used when dataset.json is unusable)."""
    endings: Counter[str] = Counter()
    for folder in (IMAGES_DIR, LABELS_DIR):
        if (root / folder).is_dir():
            for path in (root / folder).iterdir():
                suffix = supported_suffix(path) if path.is_file() else None
                if suffix and suffix != "dicom":
                    endings[path.name[-len(suffix) :]] += 1
    return endings.most_common(1)[0][0] if endings else None


def _bad_names(root: Path, ending: str, spec: DatasetSpec | None) -> list[Problem]:
    patterns = {
        IMAGES_DIR: f"{IMAGES_DIR}/{{case}}_{{channel:04d}}{ending}, e.g. case001_0000{ending}",
        LABELS_DIR: f"{LABELS_DIR}/{{case}}{ending}",
        RATERS_DIR: f"{RATERS_DIR}/{{case}}_r{{rater}}{ending}, e.g. case001_r0{ending}",
    }
    found = []
    for path in unmatched_files(root, ending):
        where = "dataset.json file_ending" if spec is not None else "the file ending used by most files"
        if not path.name.endswith(ending):
            message = f"does not end with '{ending}' ({where})"
        else:
            message = f"name does not follow {patterns[path.parent.name].split(',')[0]}"
        found.append(
            problem(
                BAD_FILE_NAME,
                path,
                message,
                f"rename it to {patterns[path.parent.name]} (all files of a dataset share one file ending), "
                "or move it out",
            )
        )
    return found


def _pairing(
    root: Path,
    ending: str,
    images: dict[str, dict[int, Path]],
    labels: dict[str, Path],
    raters: dict[str, dict[int, Path]],
) -> list[Problem]:
    found = []
    for case, files in sorted(images.items()):
        if case not in labels:
            expected = root / LABELS_DIR / f"{case}{ending}"
            found.append(
                problem(
                    IMAGE_WITHOUT_LABEL,
                    (files[min(files)], expected),
                    f"case '{case}' has no label; expected {expected}",
                    f"add {LABELS_DIR}/{case}{ending}, or remove the case's image files",
                )
            )
    for case in sorted((set(labels) | set(raters)) - set(images)):
        masks = ([labels[case]] if case in labels else []) + [raters[case][r] for r in sorted(raters.get(case, {}))]
        expected = root / IMAGES_DIR / f"{case}_0000{ending}"
        found.append(
            problem(
                LABEL_WITHOUT_IMAGE,
                (*masks, expected),
                f"case '{case}' has masks but no image; expected {expected}",
                f"add {IMAGES_DIR}/{case}_0000{ending}, or remove the case's masks (check the spelling of the case id)",
            )
        )
    return found


def _channel_files(root: Path, ending: str, images: dict[str, dict[int, Path]]) -> list[Problem]:
    """Every case should have channel files _0000 .. _{n-1}, n being the most any case has."""
    count = max((len(files) for files in images.values()), default=0)
    found = []
    for case, files in sorted(images.items()):
        missing = [i for i in range(count) if i not in files]
        if not missing:
            continue
        paths = tuple(root / IMAGES_DIR / f"{case}_{i:04d}{ending}" for i in missing)
        gaps = max(files) + 1 != len(files)
        why = "its channel files are not numbered without gaps" if gaps else f"other cases have {count} channel files"
        found.append(
            problem(
                MISSING_CHANNEL_FILE,
                (*paths, *(files[i] for i in sorted(files))),
                f"case '{case}' lacks {', '.join(p.name for p in paths)} ({why}); "
                f"it has {', '.join(files[i].name for i in sorted(files))}",
                f"every case needs the same channel files _0000 .. _{count - 1:04d}, numbered without gaps; "
                "add the missing file or renumber the case's files",
            )
        )
    return found


def _counts(spec: DatasetSpec, images: dict[str, dict[int, Path]], raters: dict[str, dict[int, Path]]) -> list[Problem]:
    root, json_path, found = spec.root, spec.root / DATASET_JSON, []
    if not images:
        folder = root / IMAGES_DIR
        where = (
            "does not exist" if not folder.is_dir() else f"has no file named {{case}}_{{channel:04d}}{spec.file_ending}"
        )
        found.append(
            problem(
                EMPTY_DATASET,
                folder,
                f"no cases found: {IMAGES_DIR} {where}",
                f"put the images in {IMAGES_DIR}/{{case}}_0000{spec.file_ending} (check file_ending in dataset.json)",
            )
        )
    elif spec.num_training != len(images):
        found.append(
            problem(
                NUM_TRAINING_MISMATCH,
                json_path,
                f"numTraining is {spec.num_training} but {len(images)} cases were found in {IMAGES_DIR}",
                f"set numTraining to {len(images)} in dataset.json, or add the missing cases",
            )
        )
    if spec.num_raters == 0 and raters:
        count = sum(len(r) for r in raters.values())
        found.append(
            problem(
                RATER_COUNT_MISMATCH,
                (root / RATERS_DIR, json_path),
                f"{RATERS_DIR} holds {count} rater mask(s) but dataset.json declares no raters "
                "(num_raters 0 or absent)",
                "set num_raters in dataset.json to the number of masks per case, or remove the ratersTr folder",
            )
        )
    elif spec.num_raters:
        wanted = set(range(spec.num_raters))
        for case in sorted(images):
            have = raters.get(case, {})
            if set(have) == wanted:
                continue
            missing = [root / RATERS_DIR / f"{case}_r{r}{spec.file_ending}" for r in sorted(wanted - set(have))]
            extra = [have[r] for r in sorted(set(have) - wanted)]
            parts = [f"missing {', '.join(p.name for p in missing)}"] * bool(missing)
            parts += [f"unexpected {', '.join(p.name for p in extra)}"] * bool(extra)
            found.append(
                problem(
                    RATER_COUNT_MISMATCH,
                    (*missing, *extra),
                    f"case '{case}' has {len(have)} rater masks, dataset.json num_raters is {spec.num_raters} "
                    f"({'; '.join(parts)})",
                    f"every case needs {RATERS_DIR}/{{case}}_r0 .. _r{spec.num_raters - 1}{spec.file_ending}; "
                    "an all-empty mask is valid for a rater who outlined nothing",
                )
            )
    return found


def _label_semantics(spec: DatasetSpec) -> list[Problem]:
    """Label kinds nnU-Net's rules do not allow (regions without their order, a misplaced ignore), ignored keys."""
    path = spec.root / DATASET_JSON
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    try:
        spec.label_scheme
    except LabelSchemeError as exc:
        found.append(
            problem(
                INVALID_LABEL_SCHEME,
                path,
                str(exc),
                "see docs/dataset_format.md (label kinds): one integer per class, or regions as lists with "
                "'regions_class_order'; 'ignore' is the highest value",
            )
        )
    if "overwrite_image_reader_writer" in raw:
        found.append(
            problem(
                IGNORED_DATASET_KEY,
                path,
                f"'overwrite_image_reader_writer': {raw['overwrite_image_reader_writer']!r} is ignored",
                "nothing to do: the reader is chosen from the file ending (NIfTI: nibabel; MHA/NRRD/DICOM: "
                "SimpleITK; PNG/JPEG/TIFF: Pillow); remove the key to silence this",
            )
        )
    return found


def _groups(spec: DatasetSpec, images: dict[str, dict[int, Path]]) -> list[Problem]:
    if not spec.case_groups:
        return []
    json_path, found = spec.root / DATASET_JSON, []
    for case in sorted(set(spec.case_groups) - set(images)):
        found.append(
            problem(
                CASE_GROUPS_UNKNOWN_CASE,
                json_path,
                f"case_groups names case '{case}', which has no image files",
                "remove it from case_groups in dataset.json, or add the case's files (check the spelling)",
            )
        )
    kind = spec.group_kind or "group"
    for case in sorted(set(images) - set(spec.case_groups)):
        files = images[case]
        found.append(
            problem(
                CASE_WITHOUT_GROUP,
                files[min(files)],
                f"case '{case}' has no {kind} in case_groups",
                f'add "{case}": <{kind} id> to case_groups; an ungrouped case is split on its own, which can put one '
                f"{kind} in two folds",
            )
        )
    return found
