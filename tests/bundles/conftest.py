"""Planned and preprocessed datasets built once per session from the real data, and tiny-network settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


def tiny_settings(spatial_dims: int, patch: int, epochs: int = 1, epoch_length: int = 1) -> dict[str, Any]:
    """Bundle settings for a fast CPU run: networks of widths (8, 16), ``patch``-sized inputs, few iterations."""
    ae_net = {
        "channels": [8, 16],
        "latent_channels": 1,
        "num_res_blocks": 1,
        "attention_levels": [False, False],
        "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False,
    }
    stage = {
        "max_epochs": epochs,
        "epoch_length": epoch_length,
        "lr": 2e-3,
        "batch_size": 4 if spatial_dims == 2 else 2,
    }
    return {
        "patch_size": [patch] * spatial_dims,
        "num_workers": 0,
        "num_val_cases": 2,
        "val_batch_size": 2,
        "image_autoencoder": {**stage, "network_def": ae_net},
        "mask_autoencoder": {**stage, "network_def": ae_net},
        "denoiser": {
            **stage,
            "val_interval": 1,
            "val_num_samples": 2,
            "val_num_inference_steps": 2,
            "network_def": {
                "channels": [8, 16],
                "attention_levels": [False, False],
                "num_res_blocks": 1,
                "num_head_channels": 8,
            },
        },
    }


@pytest.fixture(scope="session")
def lidc_work(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 40 LIDC crops converted, planned (4 GB budget) and preprocessed: the WORK folder."""
    from medseglatdiff.datasets.converters import convert
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("lidc")
    convert("lidc", shared_data / "lidc_idri", root / "raw")
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    return root / "work"


def _brats_case(case_dir: Path, size: int):
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
    geometry = Geometry(label.geometry.spacing, tuple(float(o) for o in origin[:3]), label.geometry.direction)
    return CaseData(
        case_dir.name, channels, geometry, label=np.rint(label.array[box]).astype(np.uint8), group=case_dir.name
    )


@pytest.fixture(scope="session")
def brats_work(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both BraTS cases cropped to 40^3 around the tumour (FLAIR + T1c), planned in 3D and preprocessed."""
    from medseglatdiff.datasets.raw_writer import RawDatasetWriter
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("brats")
    labels = {"background": 0, "necrosis": 1, "edema": 2, "non_enhancing": 3, "enhancing": 4}
    writer = RawDatasetWriter(root / "raw", {"0": "FLAIR", "1": "T1c"}, labels, ".nii.gz")
    writer.start()
    cases = sorted(p for p in (shared_data / "brats2015_deepmedic").iterdir() if p.is_dir())
    writer.finish([writer.write_case(_brats_case(case, 40)) for case in cases])
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, configurations=["3d"], progress=False)
    return root / "work"


@pytest.fixture
def tiny():
    """:func:`tiny_settings` as a fixture (test modules do not import conftest)."""
    return tiny_settings


@pytest.fixture(autouse=True)
def single_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny networks run fastest on one thread, and stay fast when other processes share the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the bundle commands run as subprocesses
    yield
    torch.set_num_threads(threads)
