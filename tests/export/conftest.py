"""A tiny LIDC model trained once per session (real crops, 2D), and its exported bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PATCH = 64


def tiny_settings(spatial_dims: int, patch: int) -> dict[str, Any]:
    """One iteration per stage with networks of widths (8, 16): a trained model in seconds on a CPU."""
    ae = {
        "channels": [8, 16],
        "latent_channels": 1,
        "num_res_blocks": 1,
        "attention_levels": [False, False],
        "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False,
    }
    stage = {"max_epochs": 1, "epoch_length": 1, "lr": 2e-3, "batch_size": 2}
    return {
        "patch_size": [patch] * spatial_dims,
        "num_workers": 0,
        "num_val_cases": 1,
        "val_batch_size": 1,
        "image_autoencoder": {**stage, "network_def": ae},
        "mask_autoencoder": {**stage, "network_def": ae},
        "denoiser": {
            **stage,
            "val_interval": 100,
            "val_num_samples": 1,
            "val_num_inference_steps": 1,
            "network_def": {
                "channels": [8, 16],
                "attention_levels": [False, False],
                "num_res_blocks": 1,
                "num_head_channels": 8,
            },
        },
    }


@pytest.fixture(scope="session")
def lidc_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``WORK/results/lidc/2d`` of a tiny model trained on fold 0 of the 40 LIDC crops."""
    import torch

    from medseglatdiff.datasets.converters import convert
    from medseglatdiff.planning.pipeline import plan_and_preprocess
    from medseglatdiff.training import train

    root = tmp_path_factory.mktemp("lidc_export")
    convert("lidc", shared_data / "lidc_idri", root / "raw")
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(root / "work", bundle="lidc", fold=0, settings=tiny_settings(2, PATCH), logging_file=False)
    finally:
        torch.set_num_threads(threads)
    return root / "work" / "results" / "lidc" / "2d"


@pytest.fixture(scope="session")
def lidc_bundle(lidc_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dist/lidc``: the tiny model exported with 2 samples and 2 DDIM steps."""
    from medseglatdiff.export import export

    return export(lidc_model, tmp_path_factory.mktemp("dist") / "lidc", num_samples=2, num_inference_steps=2)


@pytest.fixture(autouse=True)
def single_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny networks run fastest on one thread, also in the subprocesses the tests start."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)
