"""The multi-GPU overlay runs the same training under torchrun: two CPU processes, gloo, DistributedSampler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medseglatdiff.training import build_parser, flatten_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_overlay_only_changes_distribution(lidc_work: Path) -> None:
    base = build_parser("train.json", dataset_dir=str(lidc_work))
    overlay = build_parser("train.json", overlays=["multi_gpu_train.json"], dataset_dir=str(lidc_work))
    assert base["train_sampler"] is None
    assert overlay["train_sampler"]["_target_"] == "DistributedSampler"
    assert (
        "ddp(" in overlay["denoiser"]["trainer"]["network"]
        and base["denoiser"]["trainer"]["network"].replace("::", "#") == "@denoiser#network"
    )
    assert overlay["denoiser"]["network_def"] == base["denoiser"]["network_def"]  # the rest is untouched


@pytest.mark.slow
def test_two_process_gloo_training(lidc_work: Path, tmp_path: Path, tiny) -> None:
    out = tmp_path / "run"
    settings = {**tiny(2, 64, epochs=1, epoch_length=2), "output_dir": str(out)}
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        "bundles/lidc/train.json",
        "--dataset_dir",
        str(lidc_work),
        "--overlays",
        "['multi_gpu_train.json']",
    ]
    for key, value in flatten_settings(settings).items():
        args += [f"--settings#{key}", repr(value)]
    try:
        result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired as exc:  # show where the ranks were
        out, err = (x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr))
        pytest.fail(f"torchrun timed out; output tail:\n{out[-3000:]}\n{err[-5000:]}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "skipped" in json.loads(
        (out / "image_autoencoder" / "done.json").read_text()
    )  # the default recipe needs no image autoencoder
    for stage in ("mask_autoencoder", "denoiser"):
        done = json.loads((out / stage / "done.json").read_text())
        assert done["iterations"] == 2
        # both ranks trained (each logs its own losses), only rank 0 wrote TensorBoard files
        assert output.count(f"stage {stage} finished") == 2
        assert len(list((out / "tensorboard" / stage).glob("events.out.tfevents.*"))) == 1
