"""`medseg predict` + `medseg evaluate` end to end with tiny models trained on real LIDC and BraTS crops."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from medseglatdiff.errors import ImageReadError, MedsegError
from medseglatdiff.evaluation.evaluate import evaluate
from medseglatdiff.inference.model_loading import UntrainedModelError
from medseglatdiff.inference.predict import PredictionFailures, predict
from medseglatdiff.inference.selection import ModelSelection, write_model_selection
from medseglatdiff.io import Geometry, read_image, write_image

FAST = {"num_samples": 2, "num_inference_steps": 2, "progress": False}


@pytest.mark.slow
def test_predict_and_evaluate_lidc_against_four_readers(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    cases = lidc_trained.held_out[:3]
    images = copy_raw_images(lidc_trained.raw, cases, tmp_path / "new_images")
    out = tmp_path / "pred"
    record = predict(images, out, lidc_trained.model, fold=0, save_samples=True, **{**FAST, "num_samples": 3})

    assert [c["case"] for c in record["cases"]] == sorted(cases)
    assert record["num_samples"] == 3 and record["num_inference_steps"] == 2 and record["threshold"] == 0.5
    assert record["sources"]["threshold"] == "plan" and record["postprocessing"] == []
    for case in cases:
        source = read_image(images / f"{case}_0000.png")
        for path in (out / f"{case}.png", out / "probability" / f"{case}.png", out / "confidence" / f"{case}.png"):
            written = read_image(path)
            assert (
                written.spatial_shape == source.spatial_shape == (128, 128)
            )  # the input's grid, sampled in 64 px windows
            assert written.geometry.allclose(source.geometry)
        assert set(np.unique(read_image(out / f"{case}.png").array)) <= {0, 1}
        assert len(list((out / "samples").glob(f"{case}_s*.png"))) == 3
        overlay = read_image(out / "overlays" / f"{case}.png")
        assert overlay.spatial_shape == (256, 128) and overlay.num_channels == 3  # image | confidence, side by side

    summary = evaluate(out, lidc_trained.raw, out=tmp_path / "eval")
    for metric in ("dice", "iou", "hd95", "ged", "hm_iou", "ci", "ece"):
        assert summary["metrics"][metric]["n"] >= 1, metric
    assert 0.0 <= summary["metrics"]["dice"]["mean"] <= 1.0 and summary["metrics"]["ged"]["mean"] >= 0.0
    rows = list(csv.DictReader((tmp_path / "eval" / "per_case.csv").open()))
    assert sorted(r["case"] for r in rows) == sorted(cases) and all(r["num_samples"] == "3" for r in rows)
    assert (tmp_path / "eval" / "figures" / "worst_cases.png").is_file()


@pytest.mark.slow
def test_fold_all_pools_samples_from_every_fold(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    record = predict(
        images, tmp_path / "all", lidc_trained.model, fold="all", save_samples=True, **{**FAST, "num_samples": 3}
    )
    assert record["folds"] == ["fold_0", "fold_1"] and record["samples_per_fold"] == {"fold_0": 2, "fold_1": 1}
    assert len(list((tmp_path / "all" / "samples").iterdir())) == 3
    assert predict(images, tmp_path / "one", lidc_trained.model, fold=1, **FAST)["folds"] == ["fold_1"]
    # the default (no fold) pools every trained fold too; one fold folder is a model on its own
    assert predict(images, tmp_path / "default", lidc_trained.model, **FAST)["folds"] == ["fold_0", "fold_1"]
    assert predict(images, tmp_path / "fold_dir", lidc_trained.model / "fold_1", **FAST)["folds"] == ["fold_1"]


@pytest.mark.slow
def test_nifti_input_is_resampled_and_restored_to_its_geometry(lidc_trained, tmp_path: Path) -> None:
    """A 2D NIfTI at 0.5 mm: the plan's 1 mm preprocessing halves it; every output comes back on the input's grid."""
    case = lidc_trained.held_out[0]
    pixels = read_image(lidc_trained.raw / "imagesTr" / f"{case}_0000.png").array[:, :100, :90]
    geometry = Geometry((0.5, 0.5), (12.0, -30.0), ((-1.0, 0.0), (0.0, 1.0)))
    write_image(pixels.astype(np.float32), geometry, tmp_path / "in" / "slice.nii.gz")
    record = predict(tmp_path / "in" / "slice.nii.gz", tmp_path / "out", lidc_trained.model, fold=0, **FAST)
    assert record["cases"][0]["preprocessed_shape"] == [50, 45]
    for path in (tmp_path / "out" / "slice.nii.gz", tmp_path / "out" / "confidence" / "slice.nii.gz"):
        written = read_image(path)
        assert written.spatial_shape == (100, 90) and written.geometry.allclose(geometry)
    confidence = read_image(tmp_path / "out" / "confidence" / "slice.nii.gz").array
    assert confidence.dtype == np.float32 and 0.0 <= confidence.min() and confidence.max() <= 1.0


def test_outside_the_crop_box_is_certain_background(lidc_trained, tmp_path: Path) -> None:
    """Preprocessing crops the zero border away; on the way back every sample is background there, confidence 1."""
    case = lidc_trained.held_out[0]
    pixels = read_image(lidc_trained.raw / "imagesTr" / f"{case}_0000.png").array
    padded = np.pad(np.maximum(pixels, 1), ((0, 0), (20, 12), (8, 16)))  # no zero inside, a zero frame around
    write_image(padded, Geometry.identity(2), tmp_path / "in" / "framed.png")
    record = predict(
        tmp_path / "in", tmp_path / "out", lidc_trained.model, fold=0, save_samples=True, **{**FAST, "num_samples": 3}
    )
    assert record["cases"][0]["preprocessed_shape"] == [128, 128]
    frame = np.ones(padded.shape[1:], bool)
    frame[20:-12, 8:-16] = False
    assert not read_image(tmp_path / "out" / "probability" / "framed.png").array[0][frame].any()
    assert (read_image(tmp_path / "out" / "confidence" / "framed.png").array[0][frame] == 255).all()
    for sample in sorted((tmp_path / "out" / "samples").iterdir()):
        assert not read_image(sample).array[0][frame].any()


@pytest.mark.slow
def test_3d_nifti_prediction_keeps_geometry_and_evaluates_three_regions(
    brats_trained, brats_crop, shared_data: Path, tmp_path: Path
) -> None:
    from medseglatdiff.io.writers import write_image as write

    case = brats_trained.held_out[0]
    # the held-out patient, a 36^3 crop with 2 mm slices: resampled to the plan's 1 mm, sampled in 16^3 windows
    crop = brats_crop(shared_data / "brats2015_deepmedic" / case, 36, spacing_z=2.0)
    for k, channel in enumerate(crop.channels):
        write(channel, crop.geometry, tmp_path / "in" / f"{case}_{k:04d}.nii.gz")
    record = predict(tmp_path / "in", tmp_path / "out", brats_trained.model, save_samples=True, **FAST)
    regions = ("whole_tumour", "tumour_core", "enhancing_tumour")
    assert record["label_scheme"]["kind"] == "regions" and tuple(record["label_scheme"]["names"]) == regions
    assert record["cases"][0]["preprocessed_shape"] == [36, 36, 72]
    outputs = record["cases"][0]["outputs"]
    assert sorted(outputs["probability"]) == sorted(regions) and sorted(outputs["confidence"]) == sorted(regions)
    for path in [
        tmp_path / "out" / f"{case}.nii.gz",
        *[tmp_path / "out" / "probability" / f"{case}_{name}.nii.gz" for name in regions],
        *[tmp_path / "out" / "confidence" / f"{case}_{name}.nii.gz" for name in regions],
        *sorted((tmp_path / "out" / "samples").iterdir()),
    ]:
        written = read_image(path)
        assert written.spatial_shape == (36, 36, 36)
        assert written.geometry.allclose(crop.geometry), path  # spacing, origin and direction of the input
    # the label map is painted in regions_class_order (2, 1, 4): its values say which regions a voxel is in
    assert set(np.unique(read_image(tmp_path / "out" / f"{case}.nii.gz").array).tolist()) <= {0, 1, 2, 4}
    whole = read_image(tmp_path / "out" / "probability" / f"{case}_whole_tumour.nii.gz").array
    enhancing = read_image(tmp_path / "out" / "probability" / f"{case}_enhancing_tumour.nii.gz").array
    assert not np.array_equal(whole, enhancing)  # one map per region, not copies
    assert (tmp_path / "out" / "overlays" / f"{case}.png").is_file()

    # scored against the raw dataset's (32^3) reference: a prediction of the raw image itself
    raw_pred = predict(
        brats_trained.raw / "imagesTr" / f"{case}_0000.nii.gz",
        tmp_path / "raw_pred",
        brats_trained.model,
        save_samples=True,
        **FAST,
    )
    assert [c["case"] for c in raw_pred["cases"]] == [case]  # the _0001 sibling was found
    summary = evaluate(tmp_path / "raw_pred", brats_trained.raw, out=tmp_path / "eval")
    assert not summary["merged_classes"] and tuple(summary["per_class"]) == regions
    assert (tmp_path / "eval" / "figures" / "worst_cases.png").is_file()  # with the least confident region's map
    for name in regions:
        assert {"dice", "iou", "hd95", "ece"} <= set(summary["per_class"][name]), name
    mean = np.mean([summary["per_class"][n]["dice"]["mean"] for n in regions])
    assert summary["metrics"]["dice"]["n"] == 1 and summary["metrics"]["dice"]["mean"] == pytest.approx(mean)


def test_model_selection_sets_threshold_and_postprocessing(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    model = tmp_path / "model"
    model.mkdir()
    (model / "fold_0").symlink_to(lidc_trained.model / "fold_0", target_is_directory=True)
    write_model_selection(
        ModelSelection(threshold=0.3, postprocessing=("keep_largest_component", "fill_holes"), num_inference_steps=3),
        model,
    )
    record = predict(images, tmp_path / "out", model, num_samples=2, progress=False)
    assert record["threshold"] == 0.3 and record["num_inference_steps"] == 3
    assert record["postprocessing"] == ["keep_largest_component", "fill_holes"]
    assert (
        record["sources"]["threshold"].endswith("model_selection.json")
        and record["sources"]["num_samples"] == "argument"
    )
    mask = read_image(tmp_path / "out" / f"{lidc_trained.held_out[0]}.png").array[0]
    assert ndimage.label(mask)[1] <= 1  # at most one component kept
    (model / "model_selection.json").write_text(json.dumps({"threshold": 2, "postprocessing": ["smooth"]}))
    with pytest.raises(MedsegError, match="model_selection.json.*threshold.*postprocessing"):
        predict(images, tmp_path / "bad", model, **FAST)


def test_unreadable_input_is_named(lidc_trained, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken_0000.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PredictionFailures, match="1 of 1 image.*broken_0000.png.*cannot read"):  # reported, not fatal
        predict(folder, tmp_path / "out", lidc_trained.model, fold=0, **FAST)
    with pytest.raises(ImageReadError, match="input not found"):
        predict(tmp_path / "absent", tmp_path / "out", lidc_trained.model, **FAST)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.txt: unsupported file type"):
        predict(tmp_path / "notes.txt", tmp_path / "out", lidc_trained.model, **FAST)
    with pytest.raises(MedsegError, match="would overwrite the input"):
        predict(lidc_trained.raw / "labelsTr", lidc_trained.raw / "labelsTr", lidc_trained.model, fold=0, **FAST)
    rgb = np.zeros((3, 32, 32), np.uint8)
    rgb[0] = 200
    write_image(rgb, Geometry.identity(2), tmp_path / "rgb" / "colour.png")
    with pytest.raises(MedsegError, match="3 channel.*trained on 1"):
        predict(tmp_path / "rgb", tmp_path / "out", lidc_trained.model, fold=0, **FAST)


def test_untrained_model_folder_is_explained(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    with pytest.raises(UntrainedModelError, match="model folder not found.*medseg train"):
        predict(images, tmp_path / "out", tmp_path / "missing", **FAST)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UntrainedModelError, match="not a trained model.*medseg train"):
        predict(images, tmp_path / "out", tmp_path / "empty", **FAST)
    with pytest.raises(UntrainedModelError, match="did you mean .*results/lidc/2d"):
        predict(images, tmp_path / "out", lidc_trained.work, **FAST)  # the WORK folder, not the model inside it
    half = tmp_path / "half" / "fold_0"
    for stage in ("image_autoencoder", "mask_autoencoder"):
        (half / stage).mkdir(parents=True)
        for name in ("done.json", "model.pt"):
            (half / stage / name).write_bytes((lidc_trained.model / "fold_0" / stage / name).read_bytes())
    with pytest.raises(UntrainedModelError, match="fold_0: not trained, stage.*denoiser.*re-run"):
        predict(images, tmp_path / "out", tmp_path / "half", fold=0, **FAST)
    with pytest.raises(UntrainedModelError, match="fold_3: not found"):
        predict(images, tmp_path / "out", lidc_trained.model, fold=3, **FAST)
    copied = tmp_path / "copied" / "fold_0"
    for stage in ("image_autoencoder", "mask_autoencoder", "denoiser"):
        (copied / stage).mkdir(parents=True)
        for name in ("done.json", "model.pt"):
            (copied / stage / name).write_bytes((lidc_trained.model / "fold_0" / stage / name).read_bytes())
    with pytest.raises(MedsegError, match="model.json: missing.*re-run the training command"):
        predict(images, tmp_path / "out", copied, **FAST)


def test_model_folder_is_self_contained(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    """A copied fold folder predicts without the work folder: model.json and plans.json travel with it."""
    import shutil

    fold = lidc_trained.model / "fold_0"
    info = json.loads((fold / "model.json").read_text())
    assert info["networks"]["denoiser"]["channels"] == [8, 16] and info["patch_size"] == [64, 64]
    assert info["file_ending"] == ".png" and info["channel_names"] == {"0": "CT"} and info["num_raters"] == 4
    assert (fold / "plans.json").is_file()
    copy = tmp_path / "elsewhere" / "fold_0"
    shutil.copytree(fold, copy, ignore=shutil.ignore_patterns("tensorboard", "checkpoint.pt"))
    images = copy_raw_images(lidc_trained.raw, lidc_trained.held_out[:1], tmp_path / "img")
    first = predict(images, tmp_path / "a", copy, **FAST)
    predict(images, tmp_path / "b", lidc_trained.model, fold=0, **FAST)
    case = lidc_trained.held_out[0]
    assert first["folds"] == ["fold_0"]
    np.testing.assert_array_equal(
        read_image(tmp_path / "a" / "probability" / f"{case}.png").array,
        read_image(tmp_path / "b" / "probability" / f"{case}.png").array,
    )  # same seed, same samples
