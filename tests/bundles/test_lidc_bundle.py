"""End to end on real LIDC crops through the bundle command: three stages, checkpoints, TensorBoard, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from medseglatdiff.errors import MedsegError
from medseglatdiff.io import read_image
from medseglatdiff.training import flatten_settings, layered_settings, nested_settings, train

REPO_ROOT = Path(__file__).resolve().parents[2]
LIDC_BUNDLE = REPO_ROOT / "bundles" / "lidc" / "train.json"
STAGES = ("image_autoencoder", "mask_autoencoder", "denoiser")


def _with_bundle_settings(settings: dict) -> dict:
    """The lidc bundle's own settings with ``settings`` layered on top (what the command line would build up)."""
    return nested_settings(layered_settings(json.loads(LIDC_BUNDLE.read_text())["settings"], settings))


def _events(folder: Path) -> EventAccumulator:
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file in {folder}"
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_bundle_trains_three_stages_and_skips_finished_ones(lidc_work: Path, tmp_path: Path, tiny) -> None:
    """The published recipe (image-latent condition, epsilon), as a person selects it with bundle settings."""
    from monai.bundle import run

    out = tmp_path / "run"
    settings = {**tiny(2, 64, epochs=5, epoch_length=3), "output_dir": str(out)}
    settings["mask_autoencoder"].update(max_epochs=1, epoch_length=2)
    settings["denoiser"].update(
        max_epochs=2,
        epoch_length=2,
        conditioning="image_latent",
        prediction_type="epsilon",
        mask_loss_weight=0.0,
        ema_decay=0.0,
    )
    run(
        "training",
        config_file=str(LIDC_BUNDLE),
        logging_file=False,
        dataset_dir=str(lidc_work),
        fold=0,
        settings=_with_bundle_settings(settings),
    )

    for stage in STAGES:
        assert (out / stage / "checkpoint.pt").is_file() and (out / stage / "model.pt").is_file()
        assert not list((out / stage).glob(".*tmp*")), "temporary checkpoint files left behind"
    image_done = json.loads((out / "image_autoencoder" / "done.json").read_text())
    assert (
        image_done["epochs"] == 5
        and image_done["iterations"] == 15
        and image_done["stop_reason"].startswith("all 5 epochs trained")  # (+ "; the weights of epoch k restored")
    )
    assert len(image_done["epoch_losses"]) == 5
    # the validation reconstruction error on fixed cases (less noisy than 3 random training batches) fell
    history = torch.load(out / "image_autoencoder" / "checkpoint.pt", weights_only=True)["stopper"]["history"]
    assert len(history) == 5 and history[-1][1] < history[0][1], (
        f"image autoencoder validation L1 did not fall: {history}"
    )
    assert (
        "mask_autoencoder/val_reconstruction_dice"
        in _events(out / "tensorboard" / "mask_autoencoder").Tags()["scalars"]
    )
    denoiser = torch.load(out / "denoiser" / "model.pt", weights_only=True)
    assert float(denoiser["scaling"]["image"]) > 0 and float(denoiser["scaling"]["mask"]) > 0  # scale factors stored
    checkpoint = torch.load(out / "denoiser" / "checkpoint.pt", weights_only=True)
    assert {"network", "optimizer", "lr_scheduler", "trainer", "scaling", "weight_average", "rng", "history"} <= set(
        checkpoint
    )
    assert json.loads((out / "model.json").read_text())["conditioning"] == "image_latent"
    assert checkpoint["trainer"]["iteration"] == 4  # 2 epochs of 2 iterations

    scalars = _events(out / "tensorboard" / "image_autoencoder").Tags()["scalars"]
    assert "image_autoencoder/loss" in scalars and "image_autoencoder_epoch_loss" in scalars
    denoiser_tags = _events(out / "tensorboard" / "denoiser").Tags()["scalars"]
    assert "val_mean_dice" in denoiser_tags and "denoiser/loss" in denoiser_tags and "denoiser/lr" in denoiser_tags
    images = _events(out / "tensorboard" / "denoiser_images")
    assert images.Tags()["images"] == ["validation/ensemble"]
    assert len(images.Images("validation/ensemble")) == 2  # one grid per validation epoch
    assert json.loads((lidc_work / "splits_final.json").read_text())[0]["val"]

    # the inference bundle predicts validation cases from the raw dataset with medseg predict's function, in the
    # cases' own geometry (128 px, sampled in 64 px windows); evaluate adds medseg evaluate's scores with the raters
    case = json.loads((lidc_work / "splits_final.json").read_text())[0]["val"][0]
    bundle_settings = {
        "bundle_name": "lidc",
        "configuration": "2d",
        "output_dir": str(out),
        "inference_cases": [case],
        "num_samples": 3,
        "num_inference_steps": 2,
    }
    run(
        "inference",
        config_file=str(REPO_ROOT / "bundles" / "lidc" / "inference.json"),
        logging_file=False,
        dataset_dir=str(lidc_work),
        fold=0,
        settings=bundle_settings,
    )
    record = json.loads((out / "inference" / "prediction.json").read_text())
    assert [c["case"] for c in record["cases"]] == [case] and record["num_samples"] == 3
    assert record["num_inference_steps"] == 2 and record["folds"] == [out.name]  # the trained fold folder
    assert read_image(out / "inference" / f"{case}.png").spatial_shape == (128, 128)
    assert read_image(out / "inference" / "confidence" / f"{case}.png").spatial_shape == (128, 128)
    run(
        "evaluate",
        config_file=str(REPO_ROOT / "bundles" / "lidc" / "evaluate.json"),
        logging_file=False,
        dataset_dir=str(lidc_work),
        fold=0,
        settings={**bundle_settings, "figures": False},
    )
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert summary["num_cases"] == 1 and 0.0 <= summary["metrics"]["dice"]["mean"] <= 1.0
    assert "ged" in summary["metrics"] and "hm_iou" in summary["metrics"]  # the 4 LIDC readers

    # a second run finds every stage finished and trains nothing
    marker = (out / "denoiser" / "done.json").stat().st_mtime_ns
    run(
        "training",
        config_file=str(LIDC_BUNDLE),
        logging_file=False,
        dataset_dir=str(lidc_work),
        fold=0,
        settings=_with_bundle_settings(settings),
    )
    assert (out / "denoiser" / "done.json").stat().st_mtime_ns == marker


def _cli(work: Path, settings: dict) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        "bundles/lidc/train.json",
        "--dataset_dir",
        str(work),
        "--fold",
        "1",
    ]
    for key, value in flatten_settings(settings).items():  # as a person types them: --settings#a#b VALUE
        args += [f"--settings#{key}", repr(value)]
    return args


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(lidc_work: Path, tmp_path: Path, tiny) -> None:
    out = tmp_path / "run"
    settings = {**tiny(2, 64, epochs=1, epoch_length=2), "output_dir": str(out)}
    settings["mask_autoencoder"].update(max_epochs=200, epoch_length=2)  # long enough to be killed mid-stage
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(
        _cli(lidc_work, settings), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    checkpoint = out / "mask_autoencoder" / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # an abrupt interruption, as a crash or a lost machine
    process.wait()
    log.close()
    assert checkpoint.is_file(), (tmp_path / "first.log").read_text()[-3000:]
    assert (out / "image_autoencoder" / "done.json").is_file() and not (out / "mask_autoencoder" / "done.json").exists()
    image_marker = (out / "image_autoencoder" / "done.json").stat().st_mtime_ns
    saved_epoch = int(torch.load(checkpoint, weights_only=True)["trainer"]["iteration"]) // 2  # 2 iterations per epoch
    assert saved_epoch >= 1

    settings["mask_autoencoder"]["max_epochs"] = saved_epoch + 1
    finished = subprocess.run(_cli(lidc_work, settings), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    output = finished.stdout + finished.stderr
    assert "stage image_autoencoder already finished" in output
    assert "no time budget: the planned epochs take about" in output  # said before training, without a budget
    assert f"stage mask_autoencoder: resuming from {checkpoint} at epoch {saved_epoch}" in output
    done = json.loads((out / "mask_autoencoder" / "done.json").read_text())
    assert done["epochs"] == saved_epoch + 1 and done["iterations"] == 2 * (saved_epoch + 1)
    assert len(done["epoch_losses"]) == saved_epoch + 1  # the history before the interruption came back too
    assert (out / "image_autoencoder" / "done.json").stat().st_mtime_ns == image_marker
    assert (out / "denoiser" / "done.json").is_file()


def test_unplanned_dataset_gets_a_clear_message(lidc_work: Path, tmp_path: Path) -> None:
    raw = lidc_work.parent / "raw"
    with pytest.raises(MedsegError, match="not planned.*plan_and_preprocess"):
        train(raw, bundle="lidc", logging_file=False)
    with pytest.raises(MedsegError, match="folder not found.*plan_and_preprocess"):
        train(tmp_path / "missing", bundle="lidc", logging_file=False)
    with pytest.raises(MedsegError, match="bundle config not found"):
        train(lidc_work, bundle="no_such_bundle", logging_file=False)


@pytest.mark.slow
def test_time_budget_prints_the_plan_and_ends_on_time(lidc_work: Path, tmp_path: Path, tiny, capsys) -> None:
    out = tmp_path / "budgeted"
    settings = {**tiny(2, 64, epochs=10_000, epoch_length=4), "output_dir": str(out), "time_budget": "20s"}
    settings["denoiser"]["val_interval"] = 10_000
    started = time.perf_counter()
    train(lidc_work, bundle="lidc", fold=0, settings=settings, logging_file=False)
    took = time.perf_counter() - started
    printed = capsys.readouterr().out
    assert "time budget 20 s (ETA" in printed and "not trained: image autoencoder" in printed
    assert took < 20 * 1.1 + 10, took  # the budget, plus building the config and writing the model files
    for stage in ("mask_autoencoder", "denoiser"):
        done = json.loads((out / stage / "done.json").read_text())
        assert done["epochs"] < 10_000 and (
            "time budget" in done["stop_reason"]
            or "reached the target" in done["stop_reason"]
            or "plateaued" in done["stop_reason"]
        )
    assert (out / "progress.png").is_file()


@pytest.mark.slow
def test_a_resumed_stage_reproduces_the_uninterrupted_losses(
    lidc_work: Path, tmp_path: Path, tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed, CPU, epochs of one pass: resuming from the epoch-1 checkpoint gives the same epoch losses."""
    import shutil

    from medseglatdiff.engines import checkpoint

    save = checkpoint.save_checkpoint

    def save_and_keep(path, objects):  # keep each epoch's rolling checkpoint, to resume from the first
        written = save(path, objects)
        if Path(path).name == "checkpoint.pt":
            shutil.copy(path, Path(path).with_name(f"epoch_{int(objects['trainer'].state.epoch)}.pt"))
        return written

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_and_keep)

    def run(out: Path) -> None:
        settings = {**tiny(2, 64, epochs=3), "output_dir": str(out), "augment": True, "estimate_time": False}
        settings["mask_autoencoder"].update(epoch_length=None, stop_target=None, stop_patience=100)
        settings["denoiser"].update(max_epochs=1, epoch_length=1)
        train(lidc_work, bundle="lidc", fold=0, settings=settings, logging_file=False)

    run(tmp_path / "full")
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    stage = tmp_path / "resumed" / "mask_autoencoder"
    (stage / "done.json").unlink()
    (stage / "model.pt").unlink()
    shutil.copy(stage / "epoch_1.pt", stage / "checkpoint.pt")  # as if killed after epoch 1
    shutil.rmtree(tmp_path / "resumed" / "denoiser")
    run(tmp_path / "resumed")
    full = json.loads((tmp_path / "full" / "mask_autoencoder" / "done.json").read_text())["epoch_losses"]
    resumed = json.loads((stage / "done.json").read_text())["epoch_losses"]
    assert len(full) == 3 and resumed == pytest.approx(full, rel=1e-6, abs=1e-7)
