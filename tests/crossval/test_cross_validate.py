"""`medseg cv` and `medseg find_best_configuration` end to end on a tiny LIDC configuration (real crops, 4 patients)."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from medseglatdiff.crossval import cross_validate, find_best_configuration
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.predict import predict
from medseglatdiff.inference.selection import MODEL_SELECTION_FILE, load_model_selection
from medseglatdiff.training import SplitsError

CV = {
    "folds": [0, 1],
    "num_samples": 4,
    "num_inference_steps": 2,
    "num_folds": 2,
    "logging_file": False,
    "figures": False,
    "surface": False,
    "progress": False,
}


def _groups(raw: Path) -> dict[str, str]:
    return json.loads((raw / "dataset.json").read_text())["case_groups"]


@pytest.mark.slow
def test_two_fold_cv_keeps_patients_apart_and_model_selection_feeds_predict(
    lidc_patients, tiny, tmp_path: Path
) -> None:
    work, raw = lidc_patients.work, lidc_patients.raw
    summary = cross_validate(work, "bundles/lidc", settings=tiny(), **CV)

    # folds are grouped by patient: no patient in two folds, none on both sides of a fold
    splits = json.loads((work / "splits_final.json").read_text())
    groups = _groups(raw)
    assert len(splits) == 2 and sorted(c for f in splits for c in f["val"]) == sorted(groups)
    folds_of = defaultdict(set)
    for k, fold in enumerate(splits):
        assert not {groups[c] for c in fold["train"]} & {groups[c] for c in fold["val"]}
        for case in fold["val"]:
            folds_of[groups[case]].add(k)
    assert len(folds_of) == 4 and all(len(f) == 1 for f in folds_of.values())
    assert summary["splits"]["groups_check"] == "4 groups, each validated in exactly one fold"
    assert summary["splits"]["method"].startswith("StratifiedGroupKFold")

    # CV summary: mean ± std over folds and over cases, with the multi-rater metrics
    model = work / "results" / "lidc" / "2d"
    cv_dir = model / "crossval"
    assert summary["num_cases"] == 10 and summary["over_cases"]["dice"]["n"] == 10
    for metric in ("dice", "iou", "ged", "hm_iou", "ci", "ece"):
        assert summary["over_folds"][metric]["n_folds"] == 2, metric
        assert set(summary["per_fold"]) == {"0", "1"}
    assert json.loads((cv_dir / "cv_summary.json").read_text())["over_folds"] == summary["over_folds"]
    table = (cv_dir / "cv_summary.md").read_text()
    assert "over folds (mean ± std of fold means)" in table and "| ged (lower is better) |" in table
    assert len((cv_dir / "per_case.csv").read_text().splitlines()) == 11
    for fold, cases in summary["validation_cases"].items():
        for case in cases:
            assert (cv_dir / f"fold_{fold}" / f"{case}.png").is_file()  # predict's layout, original geometry
            assert len(list((cv_dir / f"fold_{fold}" / "samples").glob(f"{case}_s*.png"))) == 4
            assert (cv_dir / "samples" / "steps_002" / f"fold_{fold}" / f"{case}.npz").is_file()  # probabilities kept
        # written by medseg predict's own function: its record, without model selection or postprocessing
        record = json.loads((cv_dir / f"fold_{fold}" / "prediction.json").read_text())
        assert sorted(c["case"] for c in record["cases"]) == sorted(cases) and record["postprocessing"] == []
        assert record["sources"]["num_samples"] == "argument" and record["label_scheme"]["kind"] == "binary"
        assert Path(record["samples_store"]) == cv_dir / "samples" / "steps_002" / f"fold_{fold}"
        assert all(c["sampling_seconds"] > 0 for c in record["cases"])

    # resumable: a second run trains and samples nothing
    stored = sorted((cv_dir / "samples").rglob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in stored]
    again = cross_validate(work, "bundles/lidc", settings=tiny(), **CV)
    assert [p.stat().st_mtime_ns for p in stored] == stamps and again["over_cases"] == summary["over_cases"]

    # model selection: frontier table + plot, threshold, postprocessing, instructions, the selection file
    report = find_best_configuration(
        work, "bundles/lidc", settings=tiny(), num_inference_steps=[1], timing_cases=1, progress=False
    )
    selection_dir = cv_dir / "selection"
    rows = (selection_dir / "frontier.csv").read_text().splitlines()
    assert (
        rows[0].startswith("num_inference_steps,num_samples,seconds_per_image,dice,ged,hm_iou")
        and len(rows) == 1 + 2 * 4
    )
    assert (
        sum(r["chosen"] for r in report["frontier"]) == 1 and report["chosen"]["num_samples"] >= 2
    )  # a confidence map needs 2+
    assert (selection_dir / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert "| steps | ensemble size | seconds / image |" in (selection_dir / "frontier.md").read_text()
    # the frontier at the CV's own point agrees with medseg evaluate's Dice of the CV predictions
    cv_point = next(r for r in report["frontier"] if r["num_inference_steps"] == 2 and r["num_samples"] == 4)
    assert cv_point["dice"] == pytest.approx(summary["over_cases"]["dice"]["mean"], abs=0.02)
    assert cv_point["ged"] == pytest.approx(summary["over_cases"]["ged"]["mean"], abs=0.02)
    selection = load_model_selection(model)
    assert selection.path == model / MODEL_SELECTION_FILE and selection.to_dict() == report["selection"]
    assert (
        selection.num_inference_steps in (1, 2)
        and 2 <= selection.num_samples <= 4
        and set(selection.reasons) >= {"threshold", "postprocessing"}
    )
    instructions = (model / "inference_instructions.md").read_text()
    assert f"medseg predict -i INPUT_FOLDER -o OUTPUT_FOLDER --model {model.resolve()} --fold all" in instructions
    assert "medseg export --model" in instructions and "frontier.png" in instructions

    # medseg predict uses what was chosen
    case = summary["validation_cases"]["0"][0]
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(raw / "imagesTr" / f"{case}_0000.png", images)
    record = predict(images, tmp_path / "pred", model, fold=0, progress=False)
    assert (
        record["num_inference_steps"] == selection.num_inference_steps
        and record["num_samples"] == selection.num_samples
    )
    assert record["threshold"] == selection.threshold and record["postprocessing"] == list(selection.postprocessing)
    assert record["sources"]["threshold"] == str(model / MODEL_SELECTION_FILE)


def _copy_work(work: Path, target: Path) -> Path:
    """The planned files of ``work`` (no splits, no results) in ``target``."""
    target.mkdir()
    for name in ("plans.json", "dataset_fingerprint.json", "case_groups.json"):
        shutil.copy(work / name, target / name)
    shutil.copytree(work / "2d", target / "2d")
    return target


def test_user_splits_file_is_checked_installed_and_respected(lidc_patients, tiny, tmp_path: Path) -> None:
    work = _copy_work(lidc_patients.work, tmp_path / "work")
    groups = _groups(lidc_patients.raw)
    cases = sorted(groups)
    by_patient = defaultdict(list)
    for case in cases:
        by_patient[groups[case]].append(case)
    patients = sorted(by_patient)
    first = [c for p in patients[:2] for c in by_patient[p]]
    second = [c for p in patients[2:] for c in by_patient[p]]

    bad = tmp_path / "bad_splits.json"
    leak = by_patient[patients[0]]
    bad.write_text(
        json.dumps(
            [
                {"train": second + leak[1:] + ["not_a_case"], "val": [c for c in first if c not in leak[1:]]},
                {"train": first, "val": second + [first[-1]]},
            ]
        )
    )
    with pytest.raises(SplitsError) as error:
        cross_validate(
            work, "lidc", settings=tiny(), splits=bad, train=False, **{k: v for k, v in CV.items() if k != "num_folds"}
        )
    message = str(error.value)
    assert str(bad) in message and "not_a_case" in message and patients[0] in message
    assert f"case {first[-1]} is validated in folds 0 and 1" in message and "in both 'train' and 'val'" in message
    assert not (work / "splits_final.json").exists()  # nothing installed

    good = tmp_path / "my_splits.json"
    folds = [{"train": second, "val": first}, {"train": first, "val": second}]
    good.write_text(json.dumps(folds))
    with pytest.raises(MedsegError, match="fold 0 is not trained"):
        cross_validate(
            work, "lidc", settings=tiny(), splits=good, train=False, **{k: v for k, v in CV.items() if k != "num_folds"}
        )
    assert json.loads((work / "splits_final.json").read_text()) == folds  # installed as the work folder's folds

    other = tmp_path / "other_splits.json"
    other.write_text(json.dumps(folds[::-1]))
    with pytest.raises(SplitsError, match="already holds other folds"):
        cross_validate(work, "lidc", settings=tiny(), splits=other, train=False, **CV)
    with pytest.raises(MedsegError, match="fold 0 is not trained"):  # the installed file is respected from now on
        cross_validate(work, "lidc", settings=tiny(), train=False, **{**CV, "num_folds": 5})
    assert json.loads((work / "splits_final.json").read_text()) == folds


def test_find_best_needs_a_cross_validation_first(lidc_patients, tiny, tmp_path: Path) -> None:
    work = _copy_work(lidc_patients.work, tmp_path / "work")
    with pytest.raises(MedsegError, match="run `medseg cv"):
        find_best_configuration(work, "lidc", settings=tiny())
    with pytest.raises(MedsegError, match="output_dir"):
        cross_validate(work, "lidc", settings={"output_dir": str(tmp_path)})
