"""Grouped folds, and the adapter from a real plans.json to the training values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.training import (
    SplitsError,
    case_groups,
    fold_cases,
    fold_split,
    load_or_create_splits,
    make_splits,
    training_plan,
    validate_splits,
)
from medseglatdiff.training.splits import splitting_method


def test_groups_never_straddle_train_and_validation() -> None:
    cases = [f"p{p}_s{s}" for p in range(7) for s in range(3)]
    groups = {case: case.split("_")[0] for case in cases}
    splits = make_splits(cases, groups, num_folds=5, seed=0)
    assert len(splits) == 5
    assert sorted(c for fold in splits for c in fold["val"]) == sorted(cases)  # every case validated once
    for fold in splits:
        assert not {groups[c] for c in fold["train"]} & {groups[c] for c in fold["val"]}
    assert len(make_splits(cases[:3], None, num_folds=5)) == 3  # never more folds than cases
    with pytest.raises(MedsegError, match="at least 2"):
        make_splits(["only"], None)


def test_stratified_group_folds_are_seeded_and_balanced() -> None:
    cases = [f"p{p:02d}_s{s}" for p in range(12) for s in range(2)]
    groups = {case: case.split("_")[0] for case in cases}
    strata = {case: "empty" if int(case[1:3]) % 3 == 0 else "foreground" for case in cases}  # 4 of 12 patients empty
    assert splitting_method(groups, strata) == "StratifiedGroupKFold" and splitting_method(groups, None) == "GroupKFold"
    assert splitting_method(None, strata) == "StratifiedKFold" and splitting_method(None, None) == "KFold"
    splits = make_splits(cases, groups, num_folds=4, seed=3, strata=strata)
    assert splits == make_splits(cases, groups, num_folds=4, seed=3, strata=strata)  # seeded
    assert splits != make_splits(cases, groups, num_folds=4, seed=4, strata=strata)
    for fold in splits:
        assert not {groups[c] for c in fold["train"]} & {groups[c] for c in fold["val"]}
        assert {strata[c] for c in fold["val"]} == {"empty", "foreground"}  # every fold validates both kinds
    assert validate_splits(splits, cases, groups) == []
    with pytest.raises(MedsegError, match="at least 2 folds"):
        make_splits(cases, groups, num_folds=1)


def test_validate_splits_lists_every_problem() -> None:
    cases = ["a1", "a2", "b1", "c1"]
    groups = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}
    bad = [{"train": ["a2", "b1", "b1"], "val": ["a1", "zz"]}, {"train": ["a1"], "val": ["a1", "c1"]}]
    with pytest.raises(SplitsError) as error:
        validate_splits(bad, cases, groups, "my.json")
    message = str(error.value)
    for part in (
        "my.json",
        "not preprocessed: zz",
        "b1 twice in 'train'",
        "A in both 'train' and 'val'",
        "a1 in both 'train' and 'val'",
        "case a1 is validated in folds 0 and 1",
        "delete it to create grouped folds",
    ):
        assert part in message, part
    assert validate_splits([{"train": ["a1", "a2"], "val": ["b1"]}], cases, groups) == [
        "splits_final.json: 3 case(s) are validated in no fold (e.g. a1, a2, c1)"
    ]


def test_splits_are_written_once_and_reused(tmp_path: Path) -> None:
    cases = [f"c{i}" for i in range(10)]
    first = load_or_create_splits(tmp_path, cases, num_folds=5, seed=1)
    assert json.loads((tmp_path / "splits_final.json").read_text()) == first
    assert load_or_create_splits(tmp_path, cases[:4], num_folds=2, seed=9) == first  # the file wins
    train, val = fold_cases(first, 2)
    assert set(train) | set(val) == set(cases) and not set(train) & set(val)
    assert fold_cases(first, "all")[0] == sorted(cases)
    with pytest.raises(MedsegError, match="fold 7 does not exist"):
        fold_cases(first, 7)
    (tmp_path / "splits_final.json").write_text("{broken")
    with pytest.raises(MedsegError, match="not valid JSON"):
        load_or_create_splits(tmp_path, cases)


@pytest.fixture(scope="module")
def planned_lidc(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight LIDC cases from the shared sample, converted, planned and preprocessed."""
    import shutil

    from medseglatdiff.datasets.converters import convert
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("planned_lidc")
    subset = root / "lidc_subset"
    (subset / "images").mkdir(parents=True)
    (subset / "masks").mkdir()
    lines = (shared_data / "lidc_idri" / "manifest.csv").read_text().splitlines()
    (subset / "manifest.csv").write_text("\n".join(lines[:9]) + "\n")
    for line in lines[1:9]:
        case = line.split(",")[0]
        shutil.copy(
            shared_data / "lidc_idri" / "images" / f"{case}.png", subset / "images"
        )  # into tmp, not the repository
        for k in range(4):
            shutil.copy(shared_data / "lidc_idri" / "masks" / f"{case}_a{k}.png", subset / "masks")
    convert("lidc", subset, root / "raw")
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    return root / "work"


def test_training_plan_maps_plans_json(planned_lidc: Path) -> None:
    plan = training_plan(planned_lidc)
    assert plan["configuration"] == "2d" and plan["spatial_dims"] == 2 and plan["num_channels"] == 1
    assert plan["num_raters"] == 4 and Path(plan["data_folder"]) == planned_lidc / "2d"
    raw = json.loads((planned_lidc / "plans.json").read_text())["configurations"]["2d"]
    assert plan["patch_size"] == raw["patch_size"]
    assert plan["image_autoencoder"]["channels"] == raw["image_autoencoder"]["network"]["channels"]
    assert plan["mask_autoencoder"]["foreground_weight"] == raw["mask_autoencoder"]["class_weights"][1]
    assert plan["denoiser"]["batch_size"] == raw["denoiser"]["batch_size"]
    assert plan["diffusion"]["num_train_timesteps"] == 1000 and plan["inference"]["num_samples"] >= 1
    train, val = fold_split(planned_lidc, plan, fold=0)
    assert len(train) + len(val) == 8 and not set(train) & set(val)
    groups = json.loads((planned_lidc.parent / "raw" / "dataset.json").read_text())["case_groups"]
    assert not {groups[c] for c in train} & {groups[c] for c in val}


def test_missing_or_unplanned_datasets_are_explained(planned_lidc: Path, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="--dataset_dir is empty"):
        training_plan("")
    with pytest.raises(MedsegError, match="folder not found"):
        training_plan(tmp_path / "nothing")
    with pytest.raises(MedsegError, match="looks like a raw dataset.*plan_and_preprocess"):
        training_plan(planned_lidc.parent / "raw")
    with pytest.raises(MedsegError, match="'3d' not planned"):
        training_plan(planned_lidc, "3d")


def test_case_groups_survive_a_moved_raw_dataset(planned_lidc: Path, tmp_path: Path) -> None:
    plan = training_plan(planned_lidc)
    expected = json.loads((planned_lidc.parent / "raw" / "dataset.json").read_text())["case_groups"]
    moved = {**plan, "raw_dataset": str(tmp_path / "moved_away")}
    assert case_groups(moved, planned_lidc) == expected  # from WORK/case_groups.json, written by preprocessing
    assert case_groups(plan, tmp_path) == expected  # an older work folder without the file: the raw dataset's
    with pytest.raises(MedsegError, match="case_groups.json is missing and the raw dataset .* is not found"):
        case_groups(moved, tmp_path)
