"""Patch sampling, rater drawing and the datasets of preprocessed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.errors import MedsegError
from medseglatdiff.training.data import (
    data_loader,
    preprocessed_cases,
    training_dataset,
    validation_dataset,
)
from medseglatdiff.training.transforms import (
    CenteredPatchCropd,
    EncodeMaskd,
    RandPatchCropd,
    RandRaterMaskd,
    crop_with_padding,
)


def _case(shape: tuple[int, ...], lesion: tuple[slice, ...], num_raters: int = 4) -> dict[str, np.ndarray]:
    label = np.zeros((1, *shape), dtype=np.uint8)
    label[(0, *lesion)] = 1
    raters = np.repeat(label, num_raters, axis=0)
    raters[-1] = 0  # one reader saw nothing
    image = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    return {"image": image, "label": label, "raters": raters}


def test_crop_with_padding_pads_outside_the_image() -> None:
    array = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = crop_with_padding(array, start=(-1, 2), size=(3, 3))
    assert out.shape == (1, 3, 3)
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])  # row -1 is padding
    np.testing.assert_array_equal(out[0, 1], [2, 3, 0])  # columns 2, 3, then padding


def test_foreground_patches_contain_the_lesion() -> None:
    crop = RandPatchCropd((16, 16), foreground_probability=1.0)
    crop.set_random_state(0)
    case = _case((64, 64), (slice(50, 53), slice(5, 8)))
    for _ in range(10):
        out = crop(case)
        assert out["image"].shape == (1, 16, 16) and out["raters"].shape == (4, 16, 16)
        assert out["label"].any()


def test_random_patches_stay_inside_and_small_cases_are_padded() -> None:
    crop = RandPatchCropd((32, 32), foreground_probability=0.0)
    crop.set_random_state(1)
    out = crop(_case((20, 40), (slice(2, 4), slice(2, 4))))
    assert out["image"].shape == (1, 32, 32)
    assert out["image"][0, :, :].std() > 0


def test_2d_patches_from_3d_volumes_take_a_slice() -> None:
    crop = RandPatchCropd((16, 16), foreground_probability=1.0)
    crop.set_random_state(2)
    out = crop(_case((32, 32, 10), (slice(10, 14), slice(10, 14), slice(7, 8))))
    assert out["image"].shape == (1, 16, 16) and out["label"].any()  # the only slice with the lesion
    centred = CenteredPatchCropd((16, 16))(_case((32, 32, 10), (slice(10, 14), slice(10, 14), slice(3, 4))))
    assert centred["label"].sum() == 16
    across_first = RandPatchCropd((16, 24), foreground_probability=1.0, slice_axis=0)
    across_first.set_random_state(4)
    out = across_first(_case((10, 32, 40), (slice(2, 3), slice(10, 14), slice(20, 24))))
    assert out["image"].shape == (1, 16, 24) and out["label"].sum() == 16  # sliced across axis 0, at the lesion
    centred = CenteredPatchCropd((16, 24), slice_axis=0)(_case((10, 32, 40), (slice(6, 7), slice(1, 4), slice(2, 5))))
    assert centred["raters"].shape == (4, 16, 24) and centred["label"].sum() == 9


def test_centered_crop_is_deterministic_and_holds_the_lesion() -> None:
    case = _case((64, 64), (slice(40, 50), slice(40, 50)))
    first = CenteredPatchCropd((32, 32))(case)
    second = CenteredPatchCropd((32, 32))(case)
    np.testing.assert_array_equal(first["image"], second["image"])
    assert first["label"].sum() == 100


def test_raters_are_drawn_uniformly_empty_ones_included() -> None:
    raters = np.stack([np.full((4, 4), k, dtype=np.uint8) > 0 for k in (1, 1, 1, 0)]).astype(np.uint8)
    raters[1, 0, 0] = 0  # make raters distinguishable
    raters[2, 0, 1] = 0
    draw = RandRaterMaskd()
    draw.set_random_state(3)
    counts = np.zeros(4)
    for _ in range(800):
        mask = draw({"raters": raters, "label": raters[:1]})["mask"]
        index = next(k for k in range(4) if np.array_equal(mask[0], raters[k]))
        counts[index] += 1
    assert np.all(np.abs(counts / 800 - 0.25) < 0.06), counts  # the empty rater is drawn as often as the others
    no_raters = draw({"label": np.array([[[0, 2], [1, 0]]], dtype=np.uint8)})
    np.testing.assert_array_equal(no_raters["mask"], [[[0, 2], [1, 0]]])  # a label map: encoded later
    binary = EncodeMaskd()(no_raters)["mask"]  # no scheme: any non-zero value is foreground
    np.testing.assert_array_equal(binary, [[[0, 1], [1, 0]]])


def test_masks_are_encoded_by_the_label_scheme() -> None:
    label = np.array([[[0, 1, 2], [4, 3, 5]]], dtype=np.uint8)
    regions = LabelScheme.from_labels(
        {"background": 0, "whole": [1, 2, 3, 4], "core": [1, 3, 4], "enhancing": [4], "ignore": 5}, [2, 1, 4]
    )
    encoded = EncodeMaskd(regions.to_json())({"mask": label})["mask"]
    assert encoded.shape == (3, 2, 3) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded[:, 0, 1], [1, 1, 0])  # necrosis: whole + core
    np.testing.assert_array_equal(encoded[:, 1, 0], [1, 1, 1])  # enhancing: every region
    np.testing.assert_array_equal(encoded[:, 1, 2], [-1, -1, -1])  # ignored everywhere
    classes = LabelScheme.from_labels({"background": 0, "a": 1, "b": 2})
    onehot = EncodeMaskd(classes)({"mask": np.array([[[0, 1, 2]]], dtype=np.uint8)})["mask"]
    np.testing.assert_array_equal(onehot[:, 0], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])  # background channel first


@pytest.fixture
def npz_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for index in range(6):
        label = np.zeros((1, 48, 48), dtype=np.uint8)
        label[0, 10 + index : 20 + index, 12:22] = 1
        raters = np.concatenate([label, label, np.zeros_like(label)])
        np.savez_compressed(
            tmp_path / f"case_{index}.npz",
            image=rng.normal(size=(1, 48, 48)).astype(np.float32),
            label=label,
            raters=raters,
        )
    return tmp_path


def test_training_dataset_and_loader_give_augmented_patches(npz_folder: Path) -> None:
    cases = preprocessed_cases(npz_folder)
    assert cases == [f"case_{i}" for i in range(6)]
    dataset = training_dataset(
        npz_folder, cases, (32, 32), augmentation={"p_rotation": 1.0, "mirror_axes": [0, 1]}, seed=0
    )
    batch = next(iter(data_loader(dataset, batch_size=3, shuffle=True)))
    assert batch["image"].shape == (3, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["raters"].shape == (3, 3, 32, 32) and batch["mask"].shape == (3, 1, 32, 32)
    assert set(torch.unique(batch["mask"]).tolist()) <= {0, 1}
    val = validation_dataset(npz_folder, cases, (32, 32), max_cases=2)
    assert len(val) == 2 and val[0]["label"].sum() == 100


def test_dataset_errors_name_the_fix(npz_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="not preprocessed"):
        training_dataset(npz_folder, ["missing_case"], (32, 32))
    with pytest.raises(MedsegError, match="plan_and_preprocess"):
        preprocessed_cases(tmp_path / "nowhere")
    with pytest.raises(MedsegError, match="augmentation settings"):
        training_dataset(npz_folder, ["case_0"], (32, 32), augmentation={"rotation": 3})
