"""No silent garbage: NaN / infinite input voxels and NaN-producing models stop with a message naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.predict import predict
from medseglatdiff.io import Geometry, read_image, write_image

FAST = {"num_samples": 2, "steps": 2, "progress": False}


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
