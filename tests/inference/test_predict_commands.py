"""`medseg predict` / `medseg evaluate` / `medseg train` on the command line, and the bundles' inference.json on
raw images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medseglatdiff import cli
from medseglatdiff.io import read_image

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cli_predict_short_flags_then_evaluate(lidc_trained, copy_raw_images, tmp_path: Path, capsys) -> None:
    case = lidc_trained.held_out[0]
    images = copy_raw_images(lidc_trained.raw, [case], tmp_path / "img")
    out = tmp_path / "pred"
    cli.main(
        [
            "predict",
            "-i",
            str(images),
            "-o",
            str(out),
            "--model",
            str(lidc_trained.model),
            "--num_samples",
            "2",
            "--num_inference_steps",
            "2",
            "--fold",
            "all",
            "--save_samples",
        ]
    )
    printed = capsys.readouterr().out
    assert "predicted 1 image(s) with fold_0, fold_1: 2 samples, 2 DDIM steps" in printed
    assert len(list((out / "samples").iterdir())) == 2 and (out / "overlays" / f"{case}.png").is_file()
    cli.main(
        ["evaluate", "--pred", str(out), "--ref", str(lidc_trained.raw), "--figures", "False", "--surface", "False"]
    )
    printed = capsys.readouterr().out
    assert "1 case(s) scored" in printed and "ged" in printed and "hm_iou" in printed
    assert json.loads((out / "evaluation" / "summary.json").read_text())["num_cases"] == 1


def test_cli_errors_exit_with_status_2(lidc_trained, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["predict", "-i", str(tmp_path / "none"), "-o", str(tmp_path / "out"), "--model", str(lidc_trained.model)]
        )
    assert exit_info.value.code == 2 and "input not found" in capsys.readouterr().err
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["predict", "-i", str(tmp_path / "img"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "img")]
        )
    assert exit_info.value.code == 2 and "not a trained model" in capsys.readouterr().err


def test_bundle_inference_predicts_a_folder_of_raw_images(lidc_trained, copy_raw_images, tmp_path: Path) -> None:
    from monai.bundle import run

    case = lidc_trained.held_out[0]
    images = copy_raw_images(lidc_trained.raw, [case], tmp_path / "img")
    run(
        config_file=str(REPO_ROOT / "bundles" / "lidc" / "inference.json"),
        logging_file=False,
        dataset_dir=str(lidc_trained.work),
        input_dir=str(images),
        output_dir=str(tmp_path / "out"),
        fold=1,
        settings={"bundle_name": "lidc", "configuration": "2d", "num_samples": 2, "num_inference_steps": 2},
    )
    record = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert (
        record["folds"] == ["fold_1"] and record["num_samples"] == 2 and record["sources"]["num_samples"] == "argument"
    )
    assert read_image(tmp_path / "out" / f"{case}.png").spatial_shape == (128, 128)


def test_cli_train_passes_flat_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_train(dataset, bundle, fold, overlays, settings, **overrides):
        seen.update(
            dataset=dataset, bundle=bundle, fold=fold, overlays=overlays, settings=settings, overrides=overrides
        )

    monkeypatch.setattr("medseglatdiff.training.train", fake_train)
    cli.main(
        [
            "train",
            "WORK",
            "--bundle",
            "cvc",
            "--fold",
            "all",
            "--denoiser#max_epochs",
            "5",
            "--settings#num_workers",
            "0",
        ]
    )
    assert seen == {
        "dataset": "WORK",
        "bundle": "cvc",
        "fold": "all",
        "overlays": [],
        "settings": None,
        "overrides": {"denoiser#max_epochs": 5, "num_workers": 0},
    }
