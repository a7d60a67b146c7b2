"""BraTS brain-tumour MRI (3D NIfTI, several modalities, multi-class label maps).

Accepted layouts of ``--src`` (a folder of case folders, the case folders one level further down, e.g. DeepMedic's
``train/`` and ``test/``, or a single case folder):

- BraTS 2021 (and 2018-2020, same naming): ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` -> 4 channel files
  (``_0000`` FLAIR, ``_0001`` T1, ``_0002`` T1ce, ``_0003`` T2); labels {0, 1, 2, 4} become {0, 1, 2, 3}.
- the DeepMedic copy of BRATS 2015 in ``shared/data/brats2015_deepmedic``: ``<case>/Flair_subtrMeanDivStd.nii.gz``,
  ``T1c_subtrMeanDivStd.nii.gz``, ``OTMultiClass.nii.gz`` -> 2 channel files (FLAIR, T1c); labels 0..4 kept.

The NIfTI geometry is kept; the label map is written as uint8 (its values must be integers). Group = case folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseglatdiff.datasets.converters.common import check_src, converted_by, unknown_layout
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.readers import read_image

NAME = "brats"
NIFTI_ENDINGS = (".nii.gz", ".nii")


@dataclass(frozen=True)
class BratsLayout:
    """How one BraTS release names its files and labels.

    Attributes:
        name: layout name written to dataset.json.
        channel_files: file name pattern per channel, ``{case}`` replaced by the case folder name.
        label_file: file name pattern of the label map.
        channel_names: dataset.json ``channel_names``.
        labels: dataset.json ``labels`` (after remapping).
        label_map: source label value -> written value; other values are an error.
        regions: dataset.json ``labels`` as BraTS' evaluation regions (whole tumour, tumour core, enhancing).
        regions_class_order: the label value each region paints in a predicted label map (nnU-Net's rule), so
            the regions can be read back from it.
    """

    name: str
    channel_files: tuple[str, ...]
    label_file: str
    channel_names: dict[str, str]
    labels: dict[str, int]
    label_map: tuple[tuple[int, int], ...]
    regions: dict[str, list[int]]
    regions_class_order: tuple[int, ...]

    def file(self, case_dir: Path, pattern: str) -> Path:
        """The file of ``pattern`` in ``case_dir`` (``.nii.gz`` or ``.nii``); the ``.nii.gz`` path when neither
        exists."""
        stem = pattern.format(case=case_dir.name)
        for ending in NIFTI_ENDINGS:
            if (case_dir / f"{stem}{ending}").is_file():
                return case_dir / f"{stem}{ending}"
        return case_dir / f"{stem}{NIFTI_ENDINGS[0]}"

    def matches(self, case_dir: Path) -> bool:
        """Whether ``case_dir`` holds at least one file of this layout (then all of them are required)."""
        return any(self.file(case_dir, p).is_file() for p in self.channel_files + (self.label_file,))


BRATS2021 = BratsLayout(
    name="BraTS 2021",
    channel_files=("{case}_flair", "{case}_t1", "{case}_t1ce", "{case}_t2"),
    label_file="{case}_seg",
    channel_names={"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"},
    labels={"background": 0, "necrotic_core": 1, "edema": 2, "enhancing": 3},
    label_map=((0, 0), (1, 1), (2, 2), (4, 3)),
    regions={"background": 0, "whole_tumour": [1, 2, 3], "tumour_core": [1, 3], "enhancing_tumour": [3]},
    regions_class_order=(2, 1, 3),
)
DEEPMEDIC2015 = BratsLayout(
    name="BRATS 2015 (DeepMedic copy)",
    channel_files=("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd"),
    label_file="OTMultiClass",
    channel_names={"0": "FLAIR", "1": "T1c"},
    labels={"background": 0, "necrosis": 1, "edema": 2, "non_enhancing": 3, "enhancing": 4},
    label_map=((0, 0), (1, 1), (2, 2), (3, 3), (4, 4)),
    regions={"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing_tumour": [4]},
    regions_class_order=(2, 1, 4),
)
LAYOUTS = (BRATS2021, DEEPMEDIC2015)
LAYOUT_TEXT = [
    "<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz (BraTS 2021, as distributed)",
    "<case>/{Flair,T1c}_subtrMeanDivStd.nii.gz + <case>/OTMultiClass.nii.gz (DeepMedic's BRATS 2015 copy)",
]


@dataclass(frozen=True)
class BratsSource:
    """One case folder: the channel files, the label map and how to remap it (a picklable work item)."""

    case_id: str
    channels: tuple[Path, ...]
    label: Path
    label_map: tuple[tuple[int, int], ...]


def _case_dirs(folder: Path) -> list[tuple[Path, BratsLayout]]:
    found = []
    for path in [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        layout = next((lay for lay in LAYOUTS if lay.matches(path)), None)
        if layout is not None:
            found.append((path, layout))
    return found


def find_cases(src: str | os.PathLike) -> tuple[list[BratsSource], BratsLayout]:
    """The cases under ``src`` and their layout.

    Raises:
        MedsegError: unknown or mixed layouts, or a case folder with a missing file.
    """
    root = check_src(src, NAME)
    cases = _case_dirs(root)
    if not cases:
        for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            cases += _case_dirs(child)
    if not cases:
        raise unknown_layout(root, NAME, LAYOUT_TEXT)
    kinds = {layout.name for _, layout in cases}
    if len(kinds) > 1:
        raise MedsegError(
            f"{root}: holds case folders of several layouts ({', '.join(sorted(kinds))}); convert them separately"
        )
    layout = cases[0][1]
    sources = []
    ids: dict[str, Path] = {}
    for case_dir, _ in cases:
        files = [layout.file(case_dir, p) for p in layout.channel_files + (layout.label_file,)]
        for path in files:
            if not path.is_file():
                raise MedsegError(
                    f"{path}: missing; every {layout.name} case folder needs {', '.join(p.name for p in files)}"
                )
        if case_dir.name in ids:
            raise MedsegError(f"{case_dir}: same case name as {ids[case_dir.name]}; case folder names must be unique")
        ids[case_dir.name] = case_dir
        sources.append(BratsSource(case_dir.name, tuple(files[:-1]), files[-1], layout.label_map))
    return sources, layout


def remap_labels(values: np.ndarray, label_map: tuple[tuple[int, int], ...], path: Path) -> np.ndarray:
    """Integer label map -> uint8 with ``label_map`` applied.

    Raises:
        MedsegError: non-integer values, or values not in ``label_map``.
    """
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, np.round(values)):
        raise MedsegError(
            f"{path}: label map has non-integer values; it must hold the class numbers {[s for s, _ in label_map]}"
        )
    ints = np.round(values).astype(np.int64)
    present = np.unique(ints)
    unknown = sorted(set(present.tolist()) - {s for s, _ in label_map})
    if unknown:
        raise MedsegError(f"{path}: label values {unknown} are not in this layout's labels {[s for s, _ in label_map]}")
    lookup = np.zeros(int(present.max()) + 1 if present.size else 1, dtype=np.uint8)
    for source, target in label_map:
        if source < lookup.size:
            lookup[source] = target
    return lookup[ints]


def _compact(array: np.ndarray) -> np.ndarray:
    """Integer-valued volumes (BraTS 2021 ships int16) go back to int16; others stay float32 as read."""
    if np.issubdtype(array.dtype, np.floating) and array.size:
        low, high = float(array.min()), float(array.max())
        if -32768 <= low and high <= 32767 and np.array_equal(array, np.round(array)):
            return array.astype(np.int16)
    return array


def load_case(source: BratsSource) -> CaseData:
    """Read the channel volumes and the label map of one case; all must share shape and geometry."""
    label = read_image(source.label)
    channels = []
    for path in source.channels:
        image = read_image(path)
        if image.spatial_shape != label.spatial_shape or not image.geometry.allclose(label.geometry):
            raise MedsegError(
                f"{path}: grid {image.spatial_shape} / spacing {image.geometry.spacing} differs from the label map "
                f"{source.label} ({label.spatial_shape} / {label.geometry.spacing}); the channels must be co-registered"
            )
        if image.num_channels != 1:
            raise MedsegError(
                f"{path}: {image.num_channels} channels; each BraTS modality file must hold one 3D volume"
            )
        channels.append(_compact(image.array))
    return CaseData(
        case_id=source.case_id,
        channels=channels,
        geometry=label.geometry,
        label=remap_labels(label.array, source.label_map, source.label),
        group=source.case_id,
    )


def convert_brats(
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
    label_kind: str = "regions",
) -> DatasetSpec:
    """Convert BraTS case folders to the raw format (one NIfTI per modality, contiguous labels, geometry kept).

    Args:
        src: the dataset folder (see the module docstring for the accepted layouts).
        out: the raw dataset folder to create.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        label_kind: ``"regions"`` (default: whole tumour, tumour core and enhancing tumour, BraTS' evaluation
            regions, as nnU-Net trains BraTS) or ``"classes"`` (the label values as separate classes).
    """
    if label_kind not in ("regions", "classes"):
        raise MedsegError(f"label_kind {label_kind!r}: use 'regions' or 'classes'")
    sources, layout = find_cases(src)
    if layout is BRATS2021:
        extra = {
            "name": "BraTS2021",
            "description": "RSNA-ASNR-MICCAI BraTS 2021 glioma MRI (FLAIR, T1, T1ce, T2); "
            "labels 0/1/2/4 remapped to 0/1/2/3",
            "reference": "Baid U. et al., The RSNA-ASNR-MICCAI BraTS 2021 Benchmark on Brain Tumor Segmentation and "
            "Radiogenomic Classification, arXiv:2107.02314; Menze B.H. et al., IEEE TMI 34(10):1993-2024, 2015; "
            "Bakas S. et al., Sci Data 4:170117, 2017",
            "licence": "BraTS 2021 data use terms (as accepted on download); cite the papers above",
        }
    else:
        extra = {
            "name": "BRATS2015_DeepMedic",
            "description": "BRATS 2015 glioma MRI (FLAIR, T1c; intensity-normalised by DeepMedic), "
            "labels 0..4 as in BRATS 2013/2015",
            "reference": "Menze B.H. et al., The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS), "
            "IEEE TMI 34(10):1993-2024, 2015",
            "licence": "CC BY-NC-SA 3.0 CH: attribution, non-commercial, share-alike",
        }
    extra["converted_by"] = converted_by(NAME)
    if label_kind == "regions":
        extra["regions_class_order"] = list(layout.regions_class_order)
        extra["classes"] = dict(layout.labels)  # what each label value is, kept for reference
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names=dict(layout.channel_names),
        labels=dict(layout.regions if label_kind == "regions" else layout.labels),
        file_ending=".nii.gz",
        group_kind="patient",
        extra=extra,
        overwrite=overwrite,
    )
    return write_dataset(sources, load_case, writer, num_workers=num_workers, description=f"converting {NAME}")
