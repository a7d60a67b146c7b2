"""Input discovery (channel files, one-file cases), the model selection file, and how samples are shared by folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.errors import ImageReadError, MedsegError
from medseglatdiff.inference.inputs import InputCase, find_input_cases, read_input_case
from medseglatdiff.inference.predict import resolve_settings, split_samples
from medseglatdiff.inference.selection import (
    ModelSelection,
    find_model_selection,
    load_model_selection,
    write_model_selection,
)
from medseglatdiff.io import Geometry, write_image

PLAN_INFO = {"inference": {"num_samples": 5, "num_inference_steps": 50, "threshold": 0.5}}


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_cases_from_channel_files_and_single_files(tmp_path: Path) -> None:
    _touch(
        tmp_path / "in", "brain_0000.nii.gz", "brain_0001.nii.gz", "polyp.jpg", "slice.png", ".hidden.png", "notes.txt"
    )
    cases = find_input_cases(tmp_path / "in")
    assert [(c.case_id, [f.name for f in c.files], c.output_ending) for c in cases] == [
        ("brain", ["brain_0000.nii.gz", "brain_0001.nii.gz"], ".nii.gz"),
        ("polyp", ["polyp.jpg"], ".png"),  # masks of natural images are PNG, never lossy JPEG
        ("slice", ["slice.png"], ".png"),
    ]
    one = find_input_cases(tmp_path / "in" / "brain_0000.nii.gz")  # a channel file brings its siblings
    assert [f.name for f in one[0].files] == ["brain_0000.nii.gz", "brain_0001.nii.gz"]
    assert InputCase("v", (tmp_path / "v.mhd",)).output_ending == ".mha"


def test_input_problems_are_named(tmp_path: Path) -> None:
    _touch(tmp_path / "gap", "c_0000.nii.gz", "c_0002.nii.gz")
    with pytest.raises(MedsegError, match="numbered _0000, _0001.*c_0002"):
        find_input_cases(tmp_path / "gap")
    _touch(tmp_path / "clash", "a.png", "a.jpg")
    with pytest.raises(MedsegError, match="case name 'a'"):
        find_input_cases(tmp_path / "clash")
    _touch(tmp_path / "raw" / "imagesTr", "x_0000.png")
    with pytest.raises(ImageReadError, match="no image files.*did you mean .*imagesTr"):
        find_input_cases(tmp_path / "raw")


def test_channels_fitted_or_refused(tmp_path: Path) -> None:
    grey = np.full((1, 8, 6), 7, np.uint8)
    write_image(np.repeat(grey, 3, axis=0), Geometry.identity(2), tmp_path / "rgb_grey.png")
    write_image(np.concatenate([grey] * 4), Geometry.identity(2), tmp_path / "rgba.png")
    assert read_input_case(InputCase("g", (tmp_path / "rgb_grey.png",)), 1, 2).image.shape == (1, 8, 6)
    assert read_input_case(InputCase("a", (tmp_path / "rgba.png",)), 3, 2).image.shape == (3, 8, 6)
    assert read_input_case(InputCase("g", (tmp_path / "rgb_grey.png",)), 3, 2).image.shape == (3, 8, 6)
    with pytest.raises(MedsegError, match="a 2D image, but the model was trained on 3D volumes"):
        read_input_case(InputCase("g", (tmp_path / "rgb_grey.png",)), 1, 3)
    write_image(np.zeros((1, 4, 4, 4), np.float32), Geometry.identity(3), tmp_path / "v_0000.nii.gz")
    write_image(np.zeros((1, 4, 4, 5), np.float32), Geometry.identity(3), tmp_path / "v_0001.nii.gz")
    with pytest.raises(MedsegError, match="v_0001.nii.gz: shape .* differs"):
        read_input_case(InputCase("v", (tmp_path / "v_0000.nii.gz", tmp_path / "v_0001.nii.gz")), 2, 3)


def test_samples_are_shared_among_folds() -> None:
    assert split_samples(5, 1) == [5]
    assert split_samples(5, 2) == [3, 2]
    assert split_samples(10, 5) == [2, 2, 2, 2, 2]
    assert split_samples(3, 5) == [1, 1, 1, 1, 1]  # every fold draws at least one


def test_settings_precedence_argument_selection_plan(tmp_path: Path) -> None:
    selection = ModelSelection(
        num_samples=8, threshold=0.4, postprocessing=("fill_holes",), path=tmp_path / "model_selection.json"
    )
    values, sources = resolve_settings(PLAN_INFO, selection, None, 7, None)
    assert values == {"num_samples": 8, "num_inference_steps": 7, "threshold": 0.4, "postprocessing": ["fill_holes"]}
    assert sources["num_samples"].endswith("model_selection.json") and sources["num_inference_steps"] == "argument"
    values, sources = resolve_settings(PLAN_INFO, ModelSelection(), None, None, None)
    assert values == {"num_samples": 5, "num_inference_steps": 50, "threshold": 0.5, "postprocessing": []}
    assert sources["threshold"] == "plan" and sources["postprocessing"].startswith("none")
    # a model trained before plans version 2 records ensemble_size
    old = {"inference": {"ensemble_size": 6, "num_inference_steps": 50, "threshold": 0.5}}
    assert resolve_settings(old, ModelSelection(), None, None, None)[0]["num_samples"] == 6
    with pytest.raises(MedsegError, match="--num_samples 0"):
        resolve_settings(PLAN_INFO, ModelSelection(), 0, None, None)


def test_model_selection_file_round_trip_and_lookup(tmp_path: Path) -> None:
    config = tmp_path / "2d"
    (config / "fold_0").mkdir(parents=True)
    assert load_model_selection(config) == ModelSelection()  # no file: plan defaults, no postprocessing
    chosen = ModelSelection(
        num_samples=8,
        num_inference_steps=20,
        threshold=0.45,
        postprocessing=("keep_largest_component",),
        reasons={"postprocessing": "mean Dice 0.70 -> 0.72, no class worse"},
    )
    path = write_model_selection(chosen, config)
    assert json.loads(path.read_text())["selection_version"] == 2
    assert find_model_selection(config / "fold_0") == path  # a fold folder finds its configuration's file
    loaded = load_model_selection(config / "fold_0")
    assert (loaded.num_samples, loaded.threshold, loaded.postprocessing) == (8, 0.45, ("keep_largest_component",))
    # a version-1 file (ensemble_size) still reads
    path.write_text(json.dumps({"selection_version": 1, "ensemble_size": 6, "postprocessing": []}))
    assert load_model_selection(config).num_samples == 6
    path.write_text(json.dumps({"num_samples": 0, "postprocessing": "fill_holes", "colour": "red"}))
    with pytest.raises(
        MedsegError,
        match="num_samples must be a positive integer.*postprocessing must be a list.*unknown keys colour",
    ):
        load_model_selection(config)
    path.write_text("{not json")
    with pytest.raises(MedsegError, match="model_selection.json: not valid JSON"):
        load_model_selection(config)
