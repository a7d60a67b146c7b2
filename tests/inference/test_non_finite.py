"""No silent garbage: NaN inputs and NaN-producing models are errors naming the file; a folder is predicted robustly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.predict import PredictionFailures, predict
from medseglatdiff.io import Geometry, read_image, write_image

FAST = {"num_samples": 2, "num_inference_steps": 2, "progress": False}


def test_non_finite_voxels_are_an_error_naming_the_file(tmp_path: Path) -> None:
    pixels = np.ones((1, 8, 8), dtype=np.float32)
    pixels[0, 2, 3], pixels[0, 4, 4] = np.nan, np.inf
    path = write_image(pixels, Geometry.identity(2), tmp_path / "bad.nii.gz")
    with pytest.raises(MedsegError, match=r"bad\.nii\.gz: 2 of 64 voxel\(s\) are NaN or infinite"):
        read_image(path).require_finite()
    assert read_image(write_image(np.ones((1, 4, 4)), Geometry.identity(2), tmp_path / "ok.nii.gz")).require_finite()


@pytest.mark.slow
def test_predict_refuses_a_nan_image_and_writes_nothing(lidc_trained, tmp_path: Path) -> None:
    case = lidc_trained.held_out[0]
    pixels = read_image(lidc_trained.raw / "imagesTr" / f"{case}_0000.png").array.astype(np.float32)
    pixels[0, 10, 10] = np.nan
    write_image(pixels, Geometry.identity(2), tmp_path / "in" / "slice.nii.gz")
    out = tmp_path / "out"
    with pytest.raises(MedsegError, match=r"slice\.nii\.gz: 1 of \d+ voxel\(s\) are NaN or infinite"):
        predict(tmp_path / "in" / "slice.nii.gz", out, lidc_trained.model, fold=0, **FAST)
    assert not (out / "slice.nii.gz").exists() and not (out / "probability" / "slice.nii.gz").exists()


@pytest.mark.slow
def test_a_model_that_samples_nan_writes_no_prediction(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    broken = tmp_path / "model" / "fold_0"
    shutil.copytree(lidc_trained.model / "fold_0", broken)
    weights = torch.load(broken / "denoiser" / "model.pt", weights_only=True)
    network = weights["network"] if "network" in weights else weights
    first = next(key for key, value in network.items() if torch.is_floating_point(value))
    network[first] = torch.full_like(network[first], float("nan"))
    torch.save(weights, broken / "denoiser" / "model.pt")
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    with pytest.raises(MedsegError, match="sampled NaN or infinite probabilities"):
        predict(images, tmp_path / "out", broken, **FAST)
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.slow
def test_one_unreadable_image_is_reported_and_the_others_predicted(
    lidc_trained, copy_raw_images, tmp_path: Path
) -> None:
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:2], tmp_path / "img")
    broken = sorted(images.glob("*.png"))[0]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated
    out = tmp_path / "out"
    with pytest.raises(PredictionFailures, match=r"1 of 2 image\(s\) not predicted") as raised:
        predict(images, out, lidc_trained.model, fold=0, **FAST)
    record = json.loads((out / "prediction.json").read_text())
    good = lidc_trained.held_out[1] if broken.name.startswith(lidc_trained.held_out[0]) else lidc_trained.held_out[0]
    assert [c["case"] for c in record["cases"]] == [good] and (out / f"{good}.png").is_file()
    assert len(record["failures"]) == 1 and str(broken) in record["failures"][0]["inputs"]
    assert raised.value.failures == record["failures"]


@pytest.mark.slow
def test_output_path_problems_stop_before_any_work(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MedsegError, match=r"file: is a file; -o must name a folder"):
        predict(images, tmp_path / "file", lidc_trained.model, fold=0, **FAST)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "probability").write_text("x")
    with pytest.raises(MedsegError, match=r"probability: is a file, but predict writes the folder probability/"):
        predict(images, tmp_path / "out", lidc_trained.model, fold=0, **FAST)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["probability"]  # nothing half-written


@pytest.mark.slow
def test_two_predicts_into_one_folder_are_both_recorded(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    first, second = lidc_trained.held_out[:2]
    out = tmp_path / "out"
    predict(copy_raw_images(lidc_trained.raw, [first], tmp_path / "a"), out, lidc_trained.model, fold=0, **FAST)
    predict(copy_raw_images(lidc_trained.raw, [second], tmp_path / "b"), out, lidc_trained.model, fold=0, **FAST)
    record = json.loads((out / "prediction.json").read_text())
    assert sorted(c["case"] for c in record["cases"]) == sorted([first, second]) and "earlier_runs" not in record
    predict(
        copy_raw_images(lidc_trained.raw, [second], tmp_path / "c"),
        out,
        lidc_trained.model,
        fold=0,
        **{**FAST, "num_inference_steps": 3},
    )  # other settings: the earlier case keeps its own record
    record = json.loads((out / "prediction.json").read_text())
    assert [c["case"] for c in record["cases"]] == [second] and record["num_inference_steps"] == 3
    assert [c["case"] for c in record["earlier_runs"][0]["cases"]] == [first]
    assert record["earlier_runs"][0]["num_inference_steps"] == 2
