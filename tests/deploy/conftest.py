"""A tiny one-channel 3D model (BraTS FLAIR crops), its exported bundle, and DICOM series written with SimpleITK."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

SIZE = 32


def write_dicom_series(
    volume: np.ndarray,
    folder: Path,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: Sequence[float] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> list[Path]:
    """Write an ``(x, y, z)`` volume as an MR DICOM series (one int16 file per z slice) with SimpleITK.

    ``origin`` and ``direction`` (row-major, columns = axis directions) are in DICOM's LPS world.
    """
    import pydicom
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.transpose(np.asarray(volume), (2, 1, 0)).astype(np.int16))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin])
    image.SetDirection([float(d) for d in direction])
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    orientation = "\\".join(f"{v:.6f}" for v in (*d[:, 0], *d[:, 1]))
    uid = pydicom.uid.generate_uid
    today, now = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    tags = {
        "0010|0010": "Test^Patient",
        "0010|0020": "TEST001",
        "0010|0030": "19700101",
        "0010|0040": "O",
        "0008|0020": today,
        "0008|0030": now,
        "0008|0021": today,
        "0008|0031": now,
        "0008|0050": "ACC001",
        "0008|0090": "Ref^Doc",
        "0020|0010": "1",
        "0020|0011": "1",
        "0008|0060": "MR",
        "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
        "0008|103e": "FLAIR crop",
        "0020|0037": orientation,
        "0020|000d": uid(),
        "0020|000e": uid(),
        "0020|0052": uid(),
        "0018|0050": f"{spacing[2]:.6f}",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        piece.SetMetaData("0008|0018", uid())
        piece.SetMetaData("0020|0013", str(k + 1))
        piece.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))))
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(piece)
        files.append(folder / f"slice_{k:03d}.dcm")
    return files


@pytest.fixture
def dicom_writer() -> Callable[..., list[Path]]:
    """:func:`write_dicom_series` as a fixture (test modules do not import conftest)."""
    return write_dicom_series


def _flair_case(case_dir: Path) -> Any:
    from medseglatdiff.datasets.raw_writer import CaseData
    from medseglatdiff.io.geometry import Geometry
    from medseglatdiff.io.readers import read_image

    label = read_image(case_dir / "OTMultiClass.nii.gz")
    centre = np.round(np.mean(np.argwhere(label.array[0] > 0), axis=0)).astype(int)
    start = [int(np.clip(c - SIZE // 2, 0, s - SIZE)) for c, s in zip(centre, label.spatial_shape)]
    box = (slice(None),) + tuple(slice(b, b + SIZE) for b in start)
    flair = read_image(case_dir / "Flair_subtrMeanDivStd.nii.gz").array[box].astype(np.float32)
    origin = label.geometry.to_affine() @ np.array(start + [1], dtype=np.float64)
    geometry = Geometry(label.geometry.spacing, tuple(float(o) for o in origin[:3]), label.geometry.direction)
    return CaseData(
        case_dir.name, [flair], geometry, label=(np.rint(label.array[box]) > 0).astype(np.uint8), group=case_dir.name
    )


@pytest.fixture(scope="session")
def flair_raw(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both BraTS cases as one-channel (FLAIR) 32^3 crops around the tumour, whole tumour as the label."""
    from medseglatdiff.datasets.raw_writer import RawDatasetWriter

    root = tmp_path_factory.mktemp("flair") / "raw"
    writer = RawDatasetWriter(root, {"0": "FLAIR"}, {"background": 0, "tumour": 1}, ".nii.gz")
    writer.start()
    writer.finish(
        [
            writer.write_case(_flair_case(case))
            for case in sorted(p for p in (shared_data / "brats2015_deepmedic").iterdir() if p.is_dir())
        ]
    )
    return root


@pytest.fixture(scope="session")
def flair_bundle(flair_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3D model trained one iteration per stage on the FLAIR crops, exported with 2 samples, 2 steps."""
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    work = flair_raw.parent / "work"
    plan_and_preprocess(flair_raw, work, memory_gb=4, configurations=["3d"], progress=False)
    return _train_and_export(work, "brats", "3d", 3, tmp_path_factory.mktemp("dist") / "flair")


def _train_and_export(work: Path, bundle: str, configuration: str, spatial_dims: int, out: Path) -> Path:
    """Train a tiny model one iteration per stage on ``work`` (one thread) and export it with 2 samples, 2 steps."""
    import torch

    from medseglatdiff.export import export
    from medseglatdiff.training import train

    ae = {
        "channels": [8, 16],
        "latent_channels": 1,
        "num_res_blocks": 1,
        "attention_levels": [False, False],
        "with_encoder_nonlocal_attn": False,
        "with_decoder_nonlocal_attn": False,
    }
    stage = {"max_epochs": 1, "epoch_length": 1, "lr": 2e-3, "batch_size": 2}
    denoiser_net = {
        "channels": [8, 16],
        "attention_levels": [False, False],
        "num_res_blocks": 1,
        "num_head_channels": 8,
    }
    settings = {
        "patch_size": [SIZE] * spatial_dims,
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
            "network_def": denoiser_net,
        },
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(work, bundle=bundle, fold=0, settings=settings, logging_file=False)
        return export(work / "results" / bundle / configuration, out, num_samples=2, num_inference_steps=2)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def single_thread(monkeypatch: pytest.MonkeyPatch):
    """Tiny networks run fastest on one thread, also in the subprocesses the tests start."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def flair_slice_bundle(flair_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 2D model (one axial FLAIR slice per case, as 2D NIfTI), exported with 2 samples, 2 steps."""
    from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter
    from medseglatdiff.io.geometry import Geometry
    from medseglatdiff.io.readers import read_image
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("flair_slices")
    writer = RawDatasetWriter(root / "raw", {"0": "FLAIR"}, {"background": 0, "tumour": 1}, ".nii.gz")
    writer.start()
    cases = []
    for image_path in sorted((flair_raw / "imagesTr").glob("*_0000.nii.gz")):
        case = image_path.name[: -len("_0000.nii.gz")]
        image, label = read_image(image_path), read_image(flair_raw / "labelsTr" / f"{case}.nii.gz")
        for k in (SIZE // 2 - 2, SIZE // 2 + 2):
            geometry = Geometry(image.geometry.spacing[:2], image.geometry.origin[:2], ((1.0, 0.0), (0.0, 1.0)))
            data = CaseData(f"{case}_z{k}", [image.array[..., k]], geometry, label=label.array[..., k], group=case)
            cases.append(writer.write_case(data))
    writer.finish(cases)
    work = root / "work"
    plan_and_preprocess(root / "raw", work, memory_gb=4, progress=False)
    return _train_and_export(work, "lidc", "2d", 2, tmp_path_factory.mktemp("dist") / "slice")
