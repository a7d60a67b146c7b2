"""The raw dataset format: nnU-Net v2's ``dataset.json`` layout plus several raters and case groups.

Layout (see ``docs/dataset_format.md``)::

    DATASET/
      dataset.json
      imagesTr/{case}_{channel:04d}{file_ending}     one file per channel file (an RGB PNG is one file, 3 channels)
      labelsTr/{case}{file_ending}                   the reference label (for several raters: their majority vote)
      ratersTr/{case}_r{rater}{file_ending}          optional: one mask per rater, rater = 0 .. num_raters-1

Extra ``dataset.json`` keys (nnU-Net ignores them): ``num_raters`` (int), ``group_kind`` (e.g. "patient")
and ``case_groups`` ({case: group id}) for grouped cross-validation splits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.label_scheme import LabelScheme, LabelSchemeError, label_values_of
from medseglatdiff.errors import DatasetFormatError
from medseglatdiff.io.json_files import read_json

DATASET_JSON = "dataset.json"
IMAGES_DIR = "imagesTr"
LABELS_DIR = "labelsTr"
RATERS_DIR = "ratersTr"
REQUIRED_KEYS = ("channel_names", "labels", "numTraining", "file_ending")

_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_RATER_RE = re.compile(r"^(?P<case>.+)_r(?P<rater>\d+)$")


def _strip_ending(name: str, file_ending: str) -> str | None:
    return name[: -len(file_ending)] if name.endswith(file_ending) else None


def scan_images(root: Path, file_ending: str) -> dict[str, dict[int, Path]]:
    """``imagesTr`` files by case and channel index; files that do not match the pattern are skipped."""
    found: dict[str, dict[int, Path]] = {}
    folder = root / IMAGES_DIR
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # hidden files (macOS ._ resource forks, editors' temporaries)
        stem = _strip_ending(path.name, file_ending)
        match = _CHANNEL_RE.match(stem) if stem else None
        if match:
            found.setdefault(match["case"], {})[int(match["channel"])] = path
    return found


def scan_labels(root: Path, file_ending: str) -> dict[str, Path]:
    """``labelsTr`` files by case."""
    folder = root / LABELS_DIR
    if not folder.is_dir():
        return {}
    return {
        stem: path
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".") and (stem := _strip_ending(path.name, file_ending))
    }


def scan_raters(root: Path, file_ending: str) -> dict[str, dict[int, Path]]:
    """``ratersTr`` files by case and rater index."""
    found: dict[str, dict[int, Path]] = {}
    folder = root / RATERS_DIR
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        stem = _strip_ending(path.name, file_ending)
        match = _RATER_RE.match(stem) if stem else None
        if match:
            found.setdefault(match["case"], {})[int(match["rater"])] = path
    return found


def unmatched_files(root: Path, file_ending: str) -> list[Path]:
    """Files in the three data folders whose names do not follow the format (wrong ending or pattern)."""
    bad: list[Path] = []
    patterns = {IMAGES_DIR: _CHANNEL_RE, LABELS_DIR: None, RATERS_DIR: _RATER_RE}
    for folder, pattern in patterns.items():
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).iterdir()):
            if path.name.startswith("."):
                continue
            stem = _strip_ending(path.name, file_ending)
            if stem is None or (pattern is not None and not pattern.match(stem)):
                bad.append(path)
    return bad


@dataclass
class DatasetSpec:
    """A parsed ``dataset.json`` and where its files are.

    Attributes:
        root: the dataset folder.
        channel_names: {"0": "CT"} or {"0": "R", "1": "G", "2": "B"}, as in nnU-Net v2.
        labels: {"background": 0, "lesion": 1, ...}; nnU-Net region labels (lists) are kept as given.
        num_training: ``numTraining``.
        file_ending: e.g. ".png" or ".nii.gz".
        num_raters: 0 when the dataset has a single reference label only.
        group_kind: what a group is ("patient", "video_sequence"), or None.
        case_groups: {case: group id}; empty when unknown.
        extra: every other key of dataset.json, kept on round trips.
    """

    root: Path
    channel_names: dict[str, str]
    labels: dict[str, Any]
    num_training: int
    file_ending: str
    num_raters: int = 0
    group_kind: str | None = None
    case_groups: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _image_index: dict[str, dict[int, Path]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def label_values(self) -> list[int]:
        """The integer values a label file may contain."""
        return label_values_of(self.labels)

    @property
    def label_scheme(self) -> LabelScheme:
        """What the label values mean (binary, classes or regions; see :mod:`medseglatdiff.datasets.label_scheme`).

        Raises:
            LabelSchemeError: regions without a matching ``regions_class_order`` or a misplaced ``ignore`` label.
        """
        return LabelScheme.from_labels(self.labels, self.extra.get("regions_class_order"))

    def checked_label_scheme(self) -> LabelScheme:
        """:attr:`label_scheme`, its rule violations as a :class:`DatasetFormatError` naming dataset.json."""
        try:
            return self.label_scheme
        except LabelSchemeError as exc:
            raise DatasetFormatError(f"{self.root / DATASET_JSON}: {exc}", [str(exc)]) from exc

    @classmethod
    def from_dict(cls, root: str | os.PathLike, data: dict[str, Any]) -> DatasetSpec:
        """Parse dataset.json content; raises :class:`DatasetFormatError` listing every bad key at once."""
        root = Path(root)
        where = root / DATASET_JSON
        problems = [f"missing key '{key}'" for key in REQUIRED_KEYS if key not in data]
        if "channel_names" in data and not (isinstance(data["channel_names"], dict) and data["channel_names"]):
            problems.append('\'channel_names\' must be a non-empty object such as {"0": "CT"}')
        if "labels" in data:
            labels = data["labels"]
            if not isinstance(labels, dict) or labels.get("background") != 0:
                problems.append(
                    '\'labels\' must be an object with "background": 0, e.g. {"background": 0, "lesion": 1}'
                )
            elif not all(
                isinstance(v, int) or (isinstance(v, list) and all(isinstance(i, int) for i in v))
                for v in labels.values()
            ):
                problems.append("'labels' values must be integers (or lists of integers for nnU-Net regions)")
        if "numTraining" in data and not (isinstance(data["numTraining"], int) and data["numTraining"] >= 0):
            problems.append("'numTraining' must be a non-negative integer")
        if "file_ending" in data and not (isinstance(data["file_ending"], str) and data["file_ending"].startswith(".")):
            problems.append("'file_ending' must be a string starting with '.', e.g. \".png\" or \".nii.gz\"")
        num_raters = data.get("num_raters", 0)
        if not (isinstance(num_raters, int) and num_raters >= 0):
            problems.append("'num_raters' must be a non-negative integer (0 or absent: no ratersTr folder)")
        groups = data.get("case_groups", {})
        if not isinstance(groups, dict):
            problems.append("'case_groups' must be an object {case: group id}")
        if problems:
            raise DatasetFormatError(f"{where}: " + "; ".join(problems), problems)
        known = set(REQUIRED_KEYS) | {"num_raters", "group_kind", "case_groups"}
        return cls(
            root=root,
            channel_names={str(k): str(v) for k, v in data["channel_names"].items()},
            labels=dict(data["labels"]),
            num_training=int(data["numTraining"]),
            file_ending=str(data["file_ending"]),
            num_raters=int(num_raters),
            group_kind=data.get("group_kind"),
            case_groups={str(k): str(v) for k, v in groups.items()},
            extra={k: v for k, v in data.items() if k not in known},
        )

    @classmethod
    def load(cls, root: str | os.PathLike) -> DatasetSpec:
        """Read ``root/dataset.json``; raises :class:`DatasetFormatError` naming the file and the problem."""
        root = Path(root)
        path = root / DATASET_JSON
        if not root.is_dir():
            raise DatasetFormatError(f"{root}: dataset folder not found")
        if not path.is_file():
            raise DatasetFormatError(
                f"{path}: missing; a raw dataset needs dataset.json (see docs/dataset_format.md, "
                "or create one with `medseg convert`)"
            )
        data = read_json(path, fix="", error=DatasetFormatError, require_object=True)
        return cls.from_dict(root, data)

    def to_dict(self) -> dict[str, Any]:
        """The dataset.json content (nnU-Net keys first, then ours, then any others)."""
        data: dict[str, Any] = {
            "channel_names": self.channel_names,
            "labels": self.labels,
            "numTraining": self.num_training,
            "file_ending": self.file_ending,
        }
        data.update(self.extra)
        if self.num_raters:
            data["num_raters"] = self.num_raters
        if self.group_kind:
            data["group_kind"] = self.group_kind
        if self.case_groups:
            data["case_groups"] = self.case_groups
        return data

    def _images(self) -> dict[str, dict[int, Path]]:
        if self._image_index is None:
            self._image_index = scan_images(self.root, self.file_ending)
        return self._image_index

    def case_ids(self) -> list[str]:
        """Cases that have at least one image file, sorted."""
        return sorted(self._images())

    def image_files(self, case: str) -> list[Path]:
        """The image files of ``case`` in channel-file order (``_0000``, ``_0001``, ...)."""
        files = self._images().get(case, {})
        return [files[i] for i in sorted(files)] or [self.root / IMAGES_DIR / f"{case}_0000{self.file_ending}"]

    def label_file(self, case: str) -> Path:
        return self.root / LABELS_DIR / f"{case}{self.file_ending}"

    def rater_files(self, case: str) -> list[Path]:
        """One mask per rater (empty list when the dataset has no raters)."""
        return [self.root / RATERS_DIR / f"{case}_r{r}{self.file_ending}" for r in range(self.num_raters)]

    def group_of(self, case: str) -> str | None:
        return self.case_groups.get(case)
