from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.preprocessing.resampling import (
    compute_new_shape,
    effective_spacing,
    resample_image,
    resample_label,
    resample_linear,
    separate_axis,
)


@pytest.mark.parametrize(
    "shape, spacing, target, expected",
    [
        ((100, 80), (1.0, 1.0), (2.0, 2.0), [50, 40]),
        ((1024, 681), (1.0, 1.0), (4.0, 4.0), [256, 170]),
        ((64, 64, 20), (0.8, 0.8, 5.0), (0.8, 0.8, None), [64, 64, 20]),
        ((64, 64, 20), (0.5, 0.5, 2.5), (1.0, 1.0, 1.25), [32, 32, 40]),
        ((3, 3), (1.0, 1.0), (10.0, 10.0), [1, 1]),
    ],
)
def test_compute_new_shape(shape, spacing, target, expected):
    assert compute_new_shape(shape, spacing, target) == expected


def test_effective_spacing_keeps_extent():
    spacing = effective_spacing((1024, 681), (1.0, 1.0), (256, 170))
    assert spacing[0] == pytest.approx(4.0)
    assert spacing[1] * 170 == pytest.approx(681.0)


@pytest.mark.parametrize(
    "spacing, target, expected",
    [
        ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), None),
        ((0.7, 0.7, 5.0), (0.7, 0.7, 5.0), 2),
        ((0.7, 5.0, 0.7), (1.0, 1.0, 1.0), 1),
        ((1.0, 1.0, 1.0), (0.5, 0.5, 4.0), 2),
        ((1.0, 1.0), (3.5, 1.0), None),  # 2D never separates
        ((0.7, 0.7, 5.0), (0.7, 0.7, None), 2),
    ],
)
def test_separate_axis(spacing, target, expected):
    assert separate_axis(spacing, target) == expected


def test_resample_image_shape_dtype_and_identity():
    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 30)).astype(np.float32)
    out = resample_image(image, (20, 15))
    assert out.shape == (3, 20, 15) and out.dtype == np.float32
    assert abs(out.mean() - image.mean()) < 0.02
    np.testing.assert_array_equal(resample_image(image, (40, 30)), image)


def test_small_class_survives_downsampling():
    label = np.zeros((1, 64, 64), dtype=np.uint8)
    label[0, 10:40, 10:40] = 1
    label[0, 50, 50] = 2  # one voxel: linear one-hot + arg-max alone would lose it
    out = resample_label(label, (16, 16))
    assert set(np.unique(out)) == {0, 1, 2}
    assert out.dtype == np.uint8 and out.shape == (1, 16, 16)


def test_empty_and_full_masks_stay_constant():
    stack = np.stack([np.zeros((20, 20), np.uint8), np.ones((20, 20), np.uint8)])
    out = resample_label(stack, (7, 9))
    assert not out[0].any() and out[1].all()


def test_anisotropic_axis_uses_nearest():
    label = np.zeros((1, 16, 16, 6), dtype=np.uint8)
    label[0, :, :, ::2] = 1  # alternating thick slices
    out = resample_label(label, (8, 8, 12), axis=2)
    # nearest-neighbour along z: each source slice becomes two identical slices
    np.testing.assert_array_equal(out[0, 4, 4], np.repeat(label[0, 8, 8], 2))


def test_resample_linear_keeps_range():
    prob = np.linspace(0, 1, 100, dtype=np.float32).reshape(1, 10, 10)
    out = resample_linear(prob, (25, 25))
    assert out.shape == (1, 25, 25) and 0.0 <= out.min() and out.max() <= 1.0
