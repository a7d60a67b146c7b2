"""Dataset verification: a clean dataset passes; each kind of problem is found, named and explained."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.cli import main
from medseglatdiff.datasets import checks
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter
from medseglatdiff.datasets.verify import KINDS, Problem, VerifyReport, verify_dataset
from medseglatdiff.io import Geometry, read_image, write_image

LIDC_CASES = ("LIDC-IDRI-0001_n0_s3", "LIDC-IDRI-0046_n6_s1", "LIDC-IDRI-0413_n0_s1")  # 0413: rater a3 is empty
KVASIR_CASES = ("cju0qkwl35piu0993l0dewei2", "cju16whaj0e7n0855q7b6cjkm", "cju1cbokpuiw70988j4lq1fpi")
BRATS_CASES = ("brats_2013_pat0001_1", "brats_2013_pat0005_1")


def _crop(array: np.ndarray, centre: np.ndarray, size: int) -> tuple[slice, ...]:
    """Slices of a ``size`` box around ``centre`` over the spatial axes of a (C, ...) array, kept inside it."""
    starts = [int(np.clip(c - size // 2, 0, s - size)) for c, s in zip(centre, array.shape[1:])]
    return (slice(None), *(slice(a, a + size) for a in starts))


def _write(cases: list[CaseData], out: Path, **settings: object) -> Path:
    writer = RawDatasetWriter(out=out, **settings)
    writer.start()
    writer.finish([writer.write_case(case) for case in cases])
    return out


def _lidc(src: Path, out: Path) -> Path:
    cases = []
    for case in LIDC_CASES:
        image = read_image(src / "images" / f"{case}.png").array
        raters = [(read_image(src / "masks" / f"{case}_a{r}.png").array > 127).astype(np.uint8) for r in range(4)]
        box = _crop(image, np.argwhere(np.max(raters, axis=0)[0]).mean(axis=0), 40)
        cases.append(
            CaseData(
                case, [image[box]], Geometry.identity(2), raters=[r[box] for r in raters], group=case.split("_")[0]
            )
        )
    return _write(
        cases,
        out,
        channel_names={"0": "CT"},
        labels={"background": 0, "nodule": 1},
        file_ending=".png",
        num_raters=4,
        group_kind="patient",
    )


def _kvasir(src: Path, out: Path) -> Path:
    cases = []
    for case in KVASIR_CASES:
        rgb = Image.open(src / "images" / f"{case}.jpg").convert("RGB").resize((40, 32), Image.BILINEAR)
        mask = Image.open(src / "masks" / f"{case}.png").convert("L").resize((40, 32), Image.NEAREST)
        image = np.asarray(rgb).transpose(2, 1, 0)  # (y, x, C) -> (C, x, y)
        label = (np.asarray(mask).T[None] > 127).astype(np.uint8)
        cases.append(CaseData(case, [image], Geometry.identity(2), label=label))
    return _write(
        cases,
        out,
        channel_names={"0": "R", "1": "G", "2": "B"},
        labels={"background": 0, "polyp": 1},
        file_ending=".png",
    )


def _brats(src: Path, out: Path) -> Path:
    cases = []
    for case in BRATS_CASES:
        label = read_image(src / case / "OTMultiClass.nii.gz")
        box = _crop(label.array, np.argwhere(label.array[0] > 0).mean(axis=0), 16)
        channels = [read_image(src / case / f"{name}_subtrMeanDivStd.nii.gz").array[box] for name in ("Flair", "T1c")]
        cases.append(CaseData(case, channels, label.geometry, label=label.array[box]))
    regions = {"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing_tumour": [4]}
    return _write(
        cases,
        out,
        channel_names={"0": "FLAIR", "1": "T1c"},
        labels=regions,
        file_ending=".nii.gz",
        extra={"regions_class_order": [2, 1, 4]},
    )


@pytest.fixture(scope="session")
def bases(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small valid datasets from real data, written once: LIDC (4 raters, groups), Kvasir (RGB), BraTS (3D, 2 files)."""
    root = tmp_path_factory.mktemp("verify_bases")
    return {
        "lidc": _lidc(shared_data / "lidc_idri", root / "lidc"),
        "kvasir": _kvasir(shared_data / "kvasir_seg", root / "kvasir"),
        "brats": _brats(shared_data / "brats2015_deepmedic", root / "brats"),
    }


def _copy(bases: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bases[name], tmp_path / name))


# --- ways to break a dataset: each takes the dataset folder and returns the offending path -------------------------


def _edit_json(root: Path, edit: Callable[[dict], None]) -> Path:
    path = root / "dataset.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def _rewrite(path: Path, change: Callable[[np.ndarray], np.ndarray], geometry: Geometry | None = None) -> Path:
    loaded = read_image(path)
    write_image(change(loaded.array), geometry or loaded.geometry, path)
    return path


def _first(root: Path, folder: str, suffix: str = "") -> Path:
    return sorted((root / folder).glob(f"*{suffix}"))[0]


def _no_json(root: Path) -> Path:
    (root / "dataset.json").unlink()
    return root / "dataset.json"


def _empty(root: Path) -> Path:
    for folder in ("imagesTr", "labelsTr"):
        for path in (root / folder).iterdir():
            path.unlink()
    return root / "imagesTr"


def _renamed(root: Path) -> Path:
    path = _first(root, "imagesTr")
    return path.rename(path.with_name(path.name.replace("_0000", "")))


def _wrong_ending(root: Path) -> Path:
    path = _first(root, "imagesTr")
    return Path(shutil.copy(path, path.with_name("extra_0000.jpg")))


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:60])
    return path


def _gap(root: Path) -> Path:
    second = sorted((root / "imagesTr").glob("*_0001.nii.gz"))[-1]
    second.rename(second.with_name(second.name.replace("_0001", "_0002")))
    return second


def _shifted(path: Path, spacing_factor: float = 1.0, shift: float = 0.0) -> Path:
    geometry = read_image(path).geometry
    moved = Geometry(
        tuple(s * spacing_factor for s in geometry.spacing),
        tuple(o + shift for o in geometry.origin),
        geometry.direction,
    )
    return _rewrite(path, lambda a: a, moved)


def _rater_files_without_raters(root: Path) -> Path:
    (root / "ratersTr").mkdir()
    shutil.copy(_first(root, "labelsTr"), root / "ratersTr" / _first(root, "labelsTr").name.replace(".png", "_r0.png"))
    return root / "ratersTr"


def _nifti_float(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    return _rewrite(path, lambda a: change(a.astype(np.float32)))


def _with_value(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array.flat[0] = value
        return array

    return change


def _all_raters_empty(root: Path) -> Path:
    label = _first(root, "labelsTr")
    for rater in sorted((root / "ratersTr").glob(label.name.replace(".png", "_r*.png"))):
        _rewrite(rater, np.zeros_like)
    return _rewrite(label, np.zeros_like)


BREAKERS: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("lidc", checks.DATASET_JSON_MISSING, _no_json),
    ("lidc", checks.DATASET_JSON_INVALID, lambda r: _edit_json(r, lambda d: d.pop("labels"))),
    (
        "kvasir",
        checks.DATASET_JSON_INVALID,
        lambda r: (r / "dataset.json").write_text("{not json") and r / "dataset.json",
    ),
    ("kvasir", checks.NUM_TRAINING_MISMATCH, lambda r: _edit_json(r, lambda d: d.update(numTraining=99))),
    ("kvasir", checks.EMPTY_DATASET, _empty),
    ("kvasir", checks.BAD_FILE_NAME, _renamed),
    ("kvasir", checks.BAD_FILE_NAME, _wrong_ending),
    ("kvasir", checks.IMAGE_WITHOUT_LABEL, lambda r: _unlink(_first(r, "labelsTr")) and _first(r, "imagesTr")),
    ("kvasir", checks.LABEL_WITHOUT_IMAGE, lambda r: _unlink(_first(r, "imagesTr")) and _first(r, "labelsTr")),
    ("lidc", checks.LABEL_WITHOUT_IMAGE, lambda r: _unlink(_first(r, "imagesTr")) and _first(r, "ratersTr")),
    ("brats", checks.MISSING_CHANNEL_FILE, lambda r: _unlink(_first(r, "imagesTr", "_0001.nii.gz"))),
    ("brats", checks.MISSING_CHANNEL_FILE, _gap),
    ("kvasir", checks.CHANNEL_COUNT_MISMATCH, lambda r: _rewrite(_first(r, "imagesTr"), lambda a: a[:1])),
    ("lidc", checks.UNREADABLE_FILE, lambda r: _truncated(_first(r, "imagesTr"))),
    ("brats", checks.UNREADABLE_FILE, lambda r: _truncated(_first(r, "labelsTr"))),
    ("kvasir", checks.SHAPE_MISMATCH, lambda r: _rewrite(_first(r, "labelsTr"), lambda a: a[:, 2:])),
    ("lidc", checks.SHAPE_MISMATCH, lambda r: _rewrite(_first(r, "ratersTr"), lambda a: a[:, :, :-3])),
    ("brats", checks.SHAPE_MISMATCH, lambda r: _rewrite(_first(r, "imagesTr", "_0001.nii.gz"), lambda a: a[:, 1:])),
    ("brats", checks.SPACING_MISMATCH, lambda r: _shifted(_first(r, "labelsTr"), spacing_factor=2.0)),
    ("brats", checks.GEOMETRY_MISMATCH, lambda r: _shifted(_first(r, "labelsTr"), shift=5.0)),
    ("brats", checks.GEOMETRY_MISMATCH, lambda r: _shifted(_first(r, "imagesTr", "_0001.nii.gz"), shift=1.0)),
    ("kvasir", checks.UNEXPECTED_LABEL_VALUES, lambda r: _rewrite(_first(r, "labelsTr"), _with_value(2))),
    ("brats", checks.UNEXPECTED_LABEL_VALUES, lambda r: _nifti_float(_first(r, "labelsTr"), _with_value(0.5))),
    (
        "kvasir",
        checks.LABEL_NOT_SINGLE_CHANNEL,
        lambda r: _rewrite(_first(r, "labelsTr"), lambda a: np.repeat(a, 3, axis=0)),
    ),
    ("brats", checks.NAN_OR_INF_IN_IMAGE, lambda r: _nifti_float(_first(r, "imagesTr"), _with_value(np.nan))),
    # nnU-Net's label rules: the ignore label is the highest value; regions need one order entry each
    ("lidc", checks.INVALID_LABEL_SCHEME, lambda r: _edit_json(r, lambda d: d["labels"].update(ignore=1, nodule=2))),
    ("lidc", checks.INVALID_LABEL_SCHEME, lambda r: _edit_json(r, lambda d: d.update(regions_class_order=[1, 2]))),
    ("brats", checks.INVALID_LABEL_SCHEME, lambda r: _edit_json(r, lambda d: d.pop("regions_class_order"))),
    (
        "lidc",
        checks.IGNORED_DATASET_KEY,
        lambda r: _edit_json(r, lambda d: d.update(overwrite_image_reader_writer="X")),
    ),
    ("lidc", checks.RATER_COUNT_MISMATCH, lambda r: _unlink(sorted((r / "ratersTr").glob("*_r3.png"))[0])),
    ("kvasir", checks.RATER_COUNT_MISMATCH, _rater_files_without_raters),
    ("lidc", checks.UNEXPECTED_RATER_VALUES, lambda r: _rewrite(_first(r, "ratersTr"), lambda a: a * 255)),
    (
        "lidc",
        checks.CASE_GROUPS_UNKNOWN_CASE,
        lambda r: _edit_json(r, lambda d: d["case_groups"].update(ghost_case="P9")),
    ),
    (
        "lidc",
        checks.CASE_WITHOUT_GROUP,
        lambda r: _edit_json(r, lambda d: d["case_groups"].pop(LIDC_CASES[0])) and _first(r, "imagesTr"),
    ),
    ("kvasir", checks.ALL_BACKGROUND_LABEL, lambda r: _rewrite(_first(r, "labelsTr"), np.zeros_like)),
    ("lidc", checks.ALL_BACKGROUND_LABEL, _all_raters_empty),
]


def test_empty_majority_vote_with_outlining_rater_is_not_a_warning(bases: dict[str, Path], tmp_path: Path) -> None:
    root = shutil.copytree(bases["lidc"], tmp_path / "lidc")
    _rewrite(_first(root, "labelsTr"), np.zeros_like)  # some raters still outline the nodule
    assert checks.ALL_BACKGROUND_LABEL not in verify_dataset(root, progress=False).kinds


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (folders too) with its mtime and size."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in [root, *root.rglob("*")]}


def test_valid_datasets_verify_clean(bases: dict[str, Path]) -> None:
    for name, root in bases.items():
        report = verify_dataset(root, progress=False)
        assert [p.kind for p in report.problems] == [], f"{name}: {report.format()}"
        assert report.ok and report.num_cases == len(DatasetSpec.load(root).case_ids()) > 0
    lidc = DatasetSpec.load(bases["lidc"])
    empty_raters = [f for case in lidc.case_ids() for f in lidc.rater_files(case) if not read_image(f).array.any()]
    assert empty_raters, "the LIDC base has an empty rater mask, which must not be reported"


@pytest.mark.parametrize(
    ("base", "kind", "breaker"), BREAKERS, ids=[f"{b}-{k}-{i}" for i, (b, k, _) in enumerate(BREAKERS)]
)
def test_each_problem_kind_is_found_and_names_the_file(
    bases: dict[str, Path], tmp_path: Path, base: str, kind: str, breaker: Callable[[Path], Path]
) -> None:
    root = _copy(bases, base, tmp_path)
    offending = breaker(root)
    report = verify_dataset(root, progress=False)
    found = report.of_kind(kind)
    assert found, report.format()
    assert all(p.severity == KINDS[kind] and p.message and p.hint for p in found)
    assert any(offending in p.files or offending.name in p.message for p in found), report.format()
    assert report.ok == (KINDS[kind] == "warning"), report.format()


def test_reports_every_problem_at_once_in_parallel_too(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "kvasir", tmp_path)
    no_label = _unlink(sorted((root / "labelsTr").iterdir())[0])
    wide = _rewrite(sorted((root / "labelsTr").iterdir())[0], lambda a: a * 255)
    grey = _rewrite(sorted((root / "imagesTr").iterdir())[2], lambda a: a[:1])
    stray = Path(shutil.copy(grey, root / "imagesTr" / "notes.txt"))
    _edit_json(root, lambda d: d.update(numTraining=7))
    report = verify_dataset(root, progress=False)
    expected = {
        checks.IMAGE_WITHOUT_LABEL: no_label.parent.parent / "imagesTr" / no_label.name.replace(".png", "_0000.png"),
        checks.UNEXPECTED_LABEL_VALUES: wide,
        checks.CHANNEL_COUNT_MISMATCH: grey,
        checks.BAD_FILE_NAME: stray,
        checks.NUM_TRAINING_MISMATCH: root / "dataset.json",
    }
    assert report.kinds == set(expected), report.format()
    for kind, path in expected.items():
        assert path in report.of_kind(kind)[0].files
    text = report.format()
    assert all(str(path.relative_to(root)) in text for path in expected.values())
    parallel = verify_dataset(root, num_workers=2, progress=False)
    assert parallel.problems == report.problems


def test_unusable_dataset_json_still_reports_folder_problems(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "lidc", tmp_path)
    _edit_json(root, lambda d: d.update(labels=[0, 1], numTraining="three"))
    orphan = _unlink(_first(root, "imagesTr"))
    report = verify_dataset(root, progress=False)
    invalid = report.of_kind(checks.DATASET_JSON_INVALID)
    assert len(invalid) == 2 and {"'labels'", "'numTraining'"} <= {w for p in invalid for w in p.message.split()}
    assert orphan in report.of_kind(checks.LABEL_WITHOUT_IMAGE)[0].files


def test_0_255_masks_get_the_classic_hint(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "lidc", tmp_path)
    label = _rewrite(_first(root, "labelsTr"), lambda a: a * 255)
    rater = _rewrite(_first(root, "ratersTr"), lambda a: a * 255)
    report = verify_dataset(root, progress=False)
    for kind, path in ((checks.UNEXPECTED_LABEL_VALUES, label), (checks.UNEXPECTED_RATER_VALUES, rater)):
        (found,) = report.of_kind(kind)
        assert found.files == (path,) and "255" in found.message
        assert "masks look saved as 0/255; divide by 255" in found.hint and "255 -> 1" in found.hint
    other = _copy(bases, "kvasir", tmp_path)
    _rewrite(_first(other, "labelsTr"), _with_value(7))
    (found,) = verify_dataset(other, progress=False).of_kind(checks.UNEXPECTED_LABEL_VALUES)
    assert "0/255" not in found.hint and "7" in found.message


def test_channel_count_hint_names_channel_names(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "kvasir", tmp_path)
    grey = _rewrite(_first(root, "imagesTr"), lambda a: a[:1])
    (found,) = verify_dataset(root, progress=False).of_kind(checks.CHANNEL_COUNT_MISMATCH)
    assert found.files == (grey,) and "channel_names" in found.hint and "R" in found.hint and "RGB" in found.hint


def test_channel_gap_blames_only_the_gapped_case(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "brats", tmp_path)
    missing = _gap(root)
    report = verify_dataset(root, progress=False)
    (found,) = report.of_kind(checks.MISSING_CHANNEL_FILE)
    assert found.files[0] == missing and "gaps" in found.message
    assert report.kinds == {checks.MISSING_CHANNEL_FILE}


def test_every_kind_is_documented() -> None:
    from medseglatdiff.datasets import verify

    documented = [
        line.split()[0] for line in (verify.__doc__ or "").splitlines() if line.split()[:1] and line.split()[0] in KINDS
    ]
    assert documented == list(KINDS)
    assert all(getattr(checks, kind.upper()) == kind for kind in KINDS)


def test_never_writes_into_the_dataset(bases: dict[str, Path], tmp_path: Path) -> None:
    root = _copy(bases, "lidc", tmp_path)
    _truncated(_first(root, "imagesTr"))
    _unlink(_first(root, "labelsTr"))
    before, beside = _snapshot(root), sorted(os.listdir(tmp_path))
    for workers in (1, 2):
        assert not verify_dataset(root, num_workers=workers, progress=False).ok
    assert _snapshot(root) == before and sorted(os.listdir(tmp_path)) == beside


def test_format_truncates_long_lists_but_report_keeps_all(tmp_path: Path) -> None:
    many = [
        checks.problem(checks.BAD_FILE_NAME, tmp_path / "imagesTr" / f"x{i}.txt", "bad", "rename") for i in range(25)
    ]
    warning = checks.problem(checks.ALL_BACKGROUND_LABEL, tmp_path / "labelsTr" / "a.png", "empty", "check")
    report = VerifyReport(problems=[warning, *many], dataset=tmp_path, num_cases=3)
    text = report.format()
    assert text.splitlines()[0] == f"dataset {tmp_path}: 3 cases, 25 errors, 1 warning"
    assert "imagesTr/x19.txt" in text and "imagesTr/x20.txt" not in text and "5 more bad_file_name" in text
    assert text.index("bad_file_name") < text.index("all_background_label"), "grouped in the documented kind order"
    assert len(report.errors) == 25 and len(report.warnings) == 1 and not report.ok
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["problems"]) == 26 and data["problems"][1]["files"] == [str(tmp_path / "imagesTr" / "x0.txt")]
    with pytest.raises(AttributeError):
        many[0].kind = "other"  # type: ignore[misc]
    assert isinstance(many[0], Problem) and VerifyReport(problems=[warning]).ok


def test_cli_exit_codes(bases: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["verify_dataset", str(bases["kvasir"])])
    assert "OK" in capsys.readouterr().out
    root = _copy(bases, "kvasir", tmp_path)
    broken = _truncated(_first(root, "labelsTr"))
    with pytest.raises(SystemExit) as exit_info:
        main(["verify_dataset", str(root)])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert broken.name in out and checks.UNREADABLE_FILE in out
    with pytest.raises(SystemExit) as exit_info:
        main(["verify_dataset", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
