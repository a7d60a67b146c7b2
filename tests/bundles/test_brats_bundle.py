"""The 3D bundle trains a few steps on small crops of the BraTS sample (``medseg train``'s Python function)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medseglatdiff.training import train


@pytest.mark.slow
def test_brats_bundle_runs_in_3d(brats_work: Path, tmp_path: Path, tiny) -> None:
    out = tmp_path / "run"
    settings = {
        **tiny(3, 32, epochs=1, epoch_length=2),
        "output_dir": str(out),
        "num_val_cases": 1,
        "val_batch_size": 1,
    }
    settings["denoiser"]["val_num_samples"] = 1
    train(brats_work, bundle="brats", fold=0, settings=settings, logging_file=False)

    for stage in ("mask_autoencoder", "denoiser"):
        done = json.loads((out / stage / "done.json").read_text())
        assert done["epochs"] == 1 and done["iterations"] == 2
    # the default recipe conditions on the image's voxels: no image autoencoder is trained
    assert (
        "not on the image autoencoder" in json.loads((out / "image_autoencoder" / "done.json").read_text())["skipped"]
    )
    weights = torch.load(out / "denoiser" / "model.pt", weights_only=True)["network"]
    conv = next(v for k, v in weights.items() if k.startswith("unet.") and k.endswith("weight") and v.ndim > 2)
    encoder = [v for k, v in weights.items() if k.startswith("encoder.") and k.endswith("weight") and v.ndim > 2]
    assert conv.ndim == 5  # 3D convolutions: (out, in, x, y, z)
    assert encoder[0].shape[1] == 2  # the image encoder reads FLAIR and T1c at full resolution
    # mask latent + FLAIR and T1c space-to-depth by the latent factor 2 + the encoder's features on the latent grid
    assert conv.shape[1] == 1 + 2 * 2**3 + encoder[-1].shape[0]
    plan = json.loads((brats_work / "plans.json").read_text())
    assert list(plan["configurations"]) == ["3d"]
    # BraTS' four tumour classes (labels 0..4): a one-hot mask VAE with a background channel, softmax
    assert plan["label_scheme"]["kind"] == "classes" and len(plan["label_scheme"]["names"]) == 4
    vae = torch.load(out / "mask_autoencoder" / "model.pt", weights_only=True)["network"]
    first = next(v for k, v in vae.items() if k.startswith("encoder") and v.ndim == 5)
    last = [v for k, v in vae.items() if k.startswith("decoder") and v.ndim == 5][-1]
    assert first.shape[1] == 5 and last.shape[0] == 5
    assert list((out / "tensorboard" / "denoiser_images").glob("events.out.tfevents.*"))

    # the four classes predicted as a label map with a probability and confidence map each, scored per class
    from medseglatdiff.evaluation.evaluate import evaluate
    from medseglatdiff.inference.predict import predict

    raw = brats_work.parent / "raw"
    case = sorted(p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTr").glob("*_0000.nii.gz"))[0]
    record = predict(
        raw / "imagesTr" / f"{case}_0000.nii.gz", tmp_path / "pred", out, num_samples=2, num_inference_steps=1
    )
    names = ["necrosis", "edema", "non_enhancing", "enhancing"]
    assert record["label_scheme"]["kind"] == "classes" and sorted(
        record["cases"][0]["outputs"]["probability"]
    ) == sorted(names)
    summary = evaluate(tmp_path / "pred", raw, out=tmp_path / "eval", figures=False)
    assert list(summary["per_class"]) == names and summary["metrics"]["dice"]["n"] == 1
