"""Tiny models trained once per session on real data crops, for the predict / evaluate tests.

LIDC (2D PNG, 4 readers): the 40 crops converted, planned and preprocessed; folds 0 and 1 trained for a few
iterations each. BraTS (3D NIfTI, FLAIR + T1c): both sample cases cropped to 32^3 around the tumour, planned in
3D, fold 0 trained (its validation case is the held-out one). Networks have widths (8, 16); the denoiser's
validation is skipped. The models predict badly; the tests check the pipeline, files and geometry.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


def tiny_settings(spatial_dims: int, patch: int) -> dict[str, Any]:
    """Bundle settings for a fast CPU run: widths (8, 16), ``patch``-sized inputs, two iterations per stage."""
    ae_net = {
        "channels": [8, 16],
        "latent_channels": 1,
        "num_res_blocks": 1,
        "attention_levels": [False, False],
        "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False,
    }
    stage = {"max_epochs": 1, "epoch_length": 2, "lr": 2e-3, "batch_size": 4 if spatial_dims == 2 else 2}
    return {
        "patch_size": [patch] * spatial_dims,
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
class TrainedSetup:
    """A raw dataset, its work folder, the trained model folder and the held-out (validation) cases of fold 0."""

    raw: Path
    work: Path
    model: Path
    held_out: list[str]


def _train(work: Path, bundle: str, fold: int, spatial_dims: int, patch: int) -> None:
    from medseglatdiff.training import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(work, bundle=bundle, fold=fold, settings=tiny_settings(spatial_dims, patch), logging_file=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def lidc_trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedSetup:
    """LIDC crops planned; folds 0 and 1 trained -> WORK/results/lidc/2d/fold_{0,1}."""
    from medseglatdiff.datasets.converters import convert
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("lidc_infer")
    convert("lidc", shared_data / "lidc_idri", root / "raw")
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    for fold in (0, 1):
        _train(root / "work", "lidc", fold, 2, 64)
    held_out = json.loads((root / "work" / "splits_final.json").read_text())[0]["val"]
    return TrainedSetup(root / "raw", root / "work", root / "work" / "results" / "lidc" / "2d", held_out)


def _brats_crop(case_dir: Path, size: int, spacing_z: float | None = None):
    """A ``size``^3 crop around the tumour of one BraTS sample (FLAIR, T1c, label), with its world position."""
    from medseglatdiff.datasets.raw_writer import CaseData
    from medseglatdiff.io.geometry import Geometry
    from medseglatdiff.io.readers import read_image

    label = read_image(case_dir / "OTMultiClass.nii.gz")
    centre = np.round(np.mean(np.argwhere(label.array[0] > 0), axis=0)).astype(int)
    start = [int(np.clip(c - size // 2, 0, s - size)) for c, s in zip(centre, label.spatial_shape)]
    box = (slice(None),) + tuple(slice(b, b + size) for b in start)
    channels = [
        read_image(case_dir / f"{n}_subtrMeanDivStd.nii.gz").array[box].astype(np.float32) for n in ("Flair", "T1c")
    ]
    origin = label.geometry.to_affine() @ np.array(start + [1], dtype=np.float64)
    spacing = label.geometry.spacing if spacing_z is None else (*label.geometry.spacing[:2], spacing_z)
    geometry = Geometry(tuple(spacing), tuple(float(o) for o in origin[:3]), label.geometry.direction)
    return CaseData(
        case_dir.name, channels, geometry, label=np.rint(label.array[box]).astype(np.uint8), group=case_dir.name
    )


@pytest.fixture(scope="session")
def brats_trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedSetup:
    """Both BraTS samples cropped to 32^3 with BraTS' regions (whole tumour, tumour core, enhancing tumour, as the
    converter writes them), planned in 3D; fold 0 trained with 16^3 patches."""
    from medseglatdiff.datasets.raw_writer import RawDatasetWriter
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("brats_infer")
    regions = {"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing_tumour": [4]}
    writer = RawDatasetWriter(
        root / "raw", {"0": "FLAIR", "1": "T1c"}, regions, ".nii.gz", extra={"regions_class_order": [2, 1, 4]}
    )
    writer.start()
    cases = sorted(p for p in (shared_data / "brats2015_deepmedic").iterdir() if p.is_dir())
    writer.finish([writer.write_case(_brats_crop(case, 32)) for case in cases])
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, configurations=["3d"], progress=False)
    _train(root / "work", "brats", 0, 3, 16)
    held_out = json.loads((root / "work" / "splits_final.json").read_text())[0]["val"]
    return TrainedSetup(root / "raw", root / "work", root / "work" / "results" / "brats" / "3d", held_out)


@pytest.fixture
def brats_crop():
    """:func:`_brats_crop` as a fixture (test modules do not import conftest)."""
    return _brats_crop


def copy_images(raw: Path, cases: list[str], folder: Path) -> Path:
    """Copy the raw image files of ``cases`` into ``folder`` (a folder of new images to predict)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((raw / "imagesTr").iterdir()):
        if any(re.fullmatch(rf"{re.escape(case)}_\d{{4}}\..+", path.name) for case in cases):
            shutil.copy2(path, folder / path.name)
    return folder


@pytest.fixture
def copy_raw_images():
    return copy_images


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny networks run fastest on one thread, and stay fast when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
