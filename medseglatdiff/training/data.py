"""Datasets and loaders of preprocessed cases (``WORK/<configuration>/<case>.npz``) for training and validation.

Training samples: a region around a random (or, with probability ``foreground_probability``, a foreground)
position, augmented with batchgenerators (image and all masks with the same parameters), then one rater
mask drawn as ``mask`` (see :mod:`medseglatdiff.training.transforms` for the multi-rater choice).
Validation samples: the patch centred on the foreground, no augmentation, all raters kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, Dataset
from monai.data.utils import worker_init_fn
from monai.transforms import Compose, EnsureTyped

from medseglatdiff.augmentation.batchgenerators_aug import (
    AugmentationParams,
    BatchgeneratorsTransformd,
    build_augmentation,
    initial_patch_size,
)
from medseglatdiff.errors import MedsegError
from medseglatdiff.training.transforms import (
    CenteredPatchCropd,
    EncodeMaskd,
    LoadPreprocessedCased,
    RandPatchCropd,
    RandRaterMaskd,
)

SAMPLE_KEYS = ("image", "label", "raters", "mask")


def preprocessed_cases(folder: str | os.PathLike) -> list[str]:
    """Case identifiers with a ``<case>.npz`` in ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MedsegError(f"{folder}: no preprocessed cases here; run `medseg plan_and_preprocess` first")
    return sorted(p.name[: -len(".npz")] for p in folder.glob("*.npz") if not p.name.startswith("."))


def augmentation_params(augmentation: AugmentationParams | Mapping[str, Any] | None) -> AugmentationParams:
    """Accept the dataclass, a plain dict of its fields (from a bundle config) or None (defaults)."""
    if augmentation is None:
        return AugmentationParams()
    if isinstance(augmentation, AugmentationParams):
        return augmentation
    params = dict(augmentation)
    for key in (
        "scale",
        "elastic_alpha",
        "elastic_sigma",
        "brightness",
        "contrast",
        "gamma",
        "noise_variance",
        "mirror_axes",
    ):
        if key in params and params[key] is not None:
            params[key] = tuple(params[key])
    try:
        return AugmentationParams(**params)
    except TypeError as exc:
        raise MedsegError(
            f"augmentation settings: {exc}; valid keys are the fields of AugmentationParams (see docs/training.md)"
        ) from exc


def training_transform(
    patch_size: Sequence[int],
    augmentation: AugmentationParams | Mapping[str, Any] | None = None,
    augment: bool = True,
    foreground_probability: float = 0.33,
    slice_axis: int | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Compose:
    """Load -> random (foreground-biased) region -> augmentation -> draw one rater -> encode it -> tensors.

    ``slice_axis``: for a 2D configuration of 3D volumes, the axis 2D patches are sliced across. ``labels``: the
    plan's label scheme the mask is encoded by (None: binary, foreground = any non-zero value).
    """
    patch_size = tuple(int(p) for p in patch_size)
    params = augmentation_params(augmentation)
    transforms: list[Any] = [LoadPreprocessedCased()]
    if augment:
        region = initial_patch_size(
            patch_size,
            params.rotation_degrees if params.p_rotation > 0 else 0.0,
            max(params.scale) if params.p_scale > 0 else 1.0,
        )
        transforms += [
            RandPatchCropd(region, foreground_probability, slice_axis),
            BatchgeneratorsTransformd(build_augmentation(patch_size, params)),
        ]
    else:
        transforms.append(RandPatchCropd(patch_size, foreground_probability, slice_axis))
    transforms += [
        RandRaterMaskd(),
        EncodeMaskd(labels),
        EnsureTyped(keys=SAMPLE_KEYS, allow_missing_keys=True, track_meta=False),
    ]
    return Compose(transforms)


def validation_transform(
    patch_size: Sequence[int], slice_axis: int | None = None, labels: Mapping[str, Any] | None = None
) -> Compose:
    """Load -> foreground-centred patch -> tensors (``mask`` = the encoded reference label, ``label`` the label
    map, raters kept for display)."""
    return Compose(
        [
            LoadPreprocessedCased(),
            CenteredPatchCropd(patch_size, slice_axis),
            RandRaterMaskd(raters_key="__none__"),  # mask = reference label
            EncodeMaskd(labels),
            EnsureTyped(keys=SAMPLE_KEYS, allow_missing_keys=True, track_meta=False),
        ]
    )


def case_dataset(
    folder: str | os.PathLike, cases: Sequence[str], transform: Compose, cache_rate: float = 0.0, seed: int = 0
) -> Dataset:
    """A MONAI dataset over ``folder/<case>.npz``; ``cache_rate > 0`` keeps loaded cases in memory.

    Raises:
        MedsegError: a listed case has no preprocessed file (the split and the folder disagree).
    """
    folder = Path(folder)
    records = [{"path": str(folder / f"{case}.npz")} for case in cases]
    missing = [r["path"] for r in records if not Path(r["path"]).is_file()]
    if missing:
        raise MedsegError(
            f"{len(missing)} case(s) of the split are not preprocessed, e.g. {missing[0]}; "
            "run `medseg plan_and_preprocess` again"
        )
    if not records:
        raise MedsegError(f"{folder}: no cases selected; check the fold and splits_final.json")
    transform.set_random_state(seed=seed)
    if cache_rate > 0:
        return CacheDataset(records, transform=transform, cache_rate=cache_rate, progress=False)
    return Dataset(records, transform=transform)


def training_dataset(
    folder: str | os.PathLike,
    cases: Sequence[str],
    patch_size: Sequence[int],
    augmentation: AugmentationParams | Mapping[str, Any] | None = None,
    augment: bool = True,
    foreground_probability: float = 0.33,
    cache_rate: float = 0.0,
    seed: int = 0,
    slice_axis: int | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Dataset:
    """The training dataset of ``cases`` (see :func:`training_transform`)."""
    transform = training_transform(patch_size, augmentation, augment, foreground_probability, slice_axis, labels)
    return case_dataset(folder, cases, transform, cache_rate, seed)


def validation_dataset(
    folder: str | os.PathLike,
    cases: Sequence[str],
    patch_size: Sequence[int],
    max_cases: int | None = None,
    slice_axis: int | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Dataset:
    """The validation dataset: the first ``max_cases`` of ``cases`` (all when None)."""
    cases = list(cases)[: max_cases or None]
    return case_dataset(folder, cases, validation_transform(patch_size, slice_axis, labels))


def seed_worker(worker_id: int) -> None:
    """Data-loader worker init: seed MONAI's random transforms and NumPy's global generator (batchgenerators)."""
    worker_init_fn(worker_id)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        np.random.seed(info.seed % 2**32)


def data_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    sampler: torch.utils.data.Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A MONAI ``DataLoader`` with :func:`seed_worker`; a ``sampler`` (e.g. ``DistributedSampler``) replaces
    shuffling."""
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=int(num_workers),
        worker_init_fn=seed_worker,
        drop_last=drop_last,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )
