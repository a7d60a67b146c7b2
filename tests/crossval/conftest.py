"""A tiny LIDC configuration on real crops: 10 slices of 4 patients (2-3 nodule slices each), planned once.

The slices come from ``lidc_idri_full`` (the 40-crop sample has one slice per patient, so grouping would never
matter there). Four of the ten majority-vote labels are empty (one reader only), so folds are stratified too.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

PATIENTS = ("LIDC-IDRI-0005", "LIDC-IDRI-0008", "LIDC-IDRI-0009", "LIDC-IDRI-0010")


def tiny_settings(patch: int = 64) -> dict[str, Any]:
    """Bundle settings for a fast CPU run: widths (8, 16), ``patch``-sized inputs, two iterations per stage."""
    ae_net = {
        "channels": [8, 16],
        "latent_channels": 1,
        "num_res_blocks": 1,
        "attention_levels": [False, False],
        "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False,
    }
    stage = {"max_epochs": 1, "epoch_length": 2, "lr": 2e-3, "batch_size": 4}
    return {
        "patch_size": [patch, patch],
        "num_workers": 0,
        "augment": False,
        "image_autoencoder": {**stage, "network_def": ae_net},
        "mask_autoencoder": {**stage, "network_def": ae_net},
        "denoiser": {
            **stage,
            "val_interval": 1000,  # no validation sampling
            "network_def": {
                "channels": [8, 16],
                "attention_levels": [False, False],
                "num_res_blocks": 1,
                "num_head_channels": 8,
            },
        },
    }


@dataclass(frozen=True)
class Planned:
    """The raw dataset and its planned work folder."""

    raw: Path
    work: Path


@pytest.fixture(scope="session")
def lidc_patients(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Planned:
    """The slices of :data:`PATIENTS` copied to a temporary folder, converted, planned and preprocessed."""
    from medseglatdiff.datasets.converters import convert
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    source = shared_data / "lidc_idri_full"
    root = tmp_path_factory.mktemp("lidc_patients")
    subset = root / "src"
    (subset / "images").mkdir(parents=True)
    (subset / "masks").mkdir()
    rows = [r for r in csv.DictReader((source / "manifest.csv").open()) if r["patient"] in PATIENTS]
    (subset / "manifest.csv").write_text("id,patient\n" + "".join(f"{r['id']},{r['patient']}\n" for r in rows))
    for row in rows:
        shutil.copy(source / "images" / f"{row['id']}.png", subset / "images")  # into tmp, never the repository
        for k in range(4):
            shutil.copy(source / "masks" / f"{row['id']}_a{k}.png", subset / "masks")
    convert("lidc", subset, root / "raw")
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    return Planned(root / "raw", root / "work")


@pytest.fixture
def tiny():
    return tiny_settings


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny networks run fastest on one thread, and stay fast when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
