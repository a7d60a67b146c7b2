from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.preprocessing.cropping import background_values, bbox_shape, crop, nonzero_bbox, uncrop


def test_bbox_covers_image_and_masks():
    image = np.zeros((2, 20, 30), dtype=np.float32)
    image[1, 5:8, 10:12] = 3.0
    label = np.zeros((1, 20, 30), dtype=np.uint8)
    label[0, 15, 25] = 1  # annotated voxel outside the non-zero image region
    assert nonzero_bbox(image) == [[5, 8], [10, 12]]
    assert nonzero_bbox(image, label) == [[5, 16], [10, 26]]
    assert nonzero_bbox(image, None, label) == [[5, 16], [10, 26]]


def test_negative_values_count_as_nonzero():
    image = np.zeros((1, 10, 10, 10), dtype=np.float32)
    image[0, 2, 3, 4] = -1.5
    assert nonzero_bbox(image) == [[2, 3], [3, 4], [4, 5]]


def test_all_zero_gives_whole_grid():
    assert nonzero_bbox(np.zeros((1, 7, 9))) == [[0, 7], [0, 9]]


def test_needs_an_array():
    with pytest.raises(ValueError):
        nonzero_bbox(None)


def test_crop_uncrop_round_trip():
    rng = np.random.default_rng(0)
    array = np.zeros((3, 12, 14, 9), dtype=np.int16)
    array[:, 2:10, 3:11, 1:8] = rng.integers(1, 5, size=(3, 8, 8, 7))
    box = nonzero_bbox(array)
    cropped = crop(array, box)
    assert list(cropped.shape[1:]) == bbox_shape(box) == [8, 8, 7]
    np.testing.assert_array_equal(uncrop(cropped, box, array.shape[1:]), array)
    assert uncrop(cropped, box, array.shape[1:], fill=7)[0, 0, 0, 0] == 7


@pytest.mark.parametrize(
    "fill, border_share, expected",
    [(-3.6, 1.0, -3.6), (0.0, 1.0, 0.0), (7.0, 0.6, 7.0), (7.0, 0.3, 0.0)],
)
def test_background_value_from_the_border(fill, border_share, expected):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 20, 20)).astype(np.float32)
    border = np.zeros((20, 20), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    positions = np.argwhere(border)
    chosen = positions[: int(round(border_share * len(positions)))]
    image[0][tuple(chosen.T)] = fill
    assert background_values(image) == [pytest.approx(expected)]


def test_constant_background_is_cropped():
    image = np.full((2, 30, 30, 20), -3.6, dtype=np.float32)  # DeepMedic-style z-scored background
    image[:, 5:25, 8:20, 3:17] = 1.0
    background = background_values(image)
    assert nonzero_bbox(image) == [[0, 30], [0, 30], [0, 20]]  # plain non-zero: nothing to crop
    assert nonzero_bbox(image, background=background) == [[5, 25], [8, 20], [3, 17]]
