from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.planning.label_stats import (
    class_fractions,
    component_stats,
    dice,
    equivalent_diameter,
    percentiles,
    rater_stats,
)


@pytest.mark.parametrize(
    "volume, dims, expected", [(np.pi, 2, 2.0), (np.pi / 6, 3, 1.0), (0, 2, 0.0), (100 * np.pi, 2, 20.0)]
)
def test_equivalent_diameter(volume, dims, expected):
    assert equivalent_diameter(volume, dims) == pytest.approx(expected)


def test_components_objects_and_mm():
    mask = np.zeros((40, 40), dtype=bool)
    mask[2:22, 2:22] = True  # 400 px
    mask[30:35, 30:35] = True  # 25 px: 6% of the foreground, an object
    mask[38, 1] = True  # 1 px speckle: < 1%, not an object
    mask[25, 25] = mask[26, 26] = True  # diagonal neighbours: one component with full connectivity
    stats = component_stats(mask, spacing=(0.5, 0.5))
    assert stats["sizes_vox"] == [400, 25, 2, 1]
    assert stats["is_object"] == [True, True, False, False]
    assert stats["diameters_vox"][0] == pytest.approx(np.sqrt(1600 / np.pi), rel=1e-3)
    assert stats["diameters_mm"][0] == pytest.approx(0.5 * stats["diameters_vox"][0], rel=1e-3)


def test_components_of_empty_mask():
    stats = component_stats(np.zeros((5, 5, 5), bool), spacing=(1, 1, 1))
    assert stats == {"sizes_vox": [], "diameters_vox": [], "diameters_mm": [], "is_object": []}


def test_class_fractions():
    label = np.zeros((10, 10), np.uint8)
    label[:5, :2] = 1
    label[9, 9] = 2
    assert class_fractions(label, [1, 2, 3]) == {"1": 0.1, "2": 0.01, "3": 0.0}


@pytest.mark.parametrize(
    "masks, empty, mean_dice",
    [
        ([[1, 1, 0, 0], [1, 1, 0, 0]], 0, 1.0),
        ([[1, 1, 0, 0], [0, 0, 1, 1]], 0, 0.0),
        ([[0, 0, 0, 0], [0, 0, 0, 0]], 2, 1.0),  # two empty masks agree
        ([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], 1, (2 / 3 + 0 + 0) / 3),
    ],
)
def test_rater_stats(masks, empty, mean_dice):
    stats = rater_stats(np.array(masks))
    assert stats["num_raters"] == len(masks) and stats["num_empty"] == empty
    assert stats["mean_pairwise_dice"] == pytest.approx(mean_dice)
    assert dice(np.array(masks[0]), np.array(masks[0])) == 1.0


def test_percentiles():
    assert percentiles(range(101)) == {"p5": 5.0, "p50": 50.0, "p95": 95.0}
    assert percentiles([]) == {"p5": None, "p50": None, "p95": None}
