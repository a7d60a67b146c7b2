"""Postprocessing steps on binary masks."""

from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.postprocessing.connected_components import apply_postprocessing


def test_keep_largest_component_2d_and_3d() -> None:
    mask = np.zeros((12, 12), np.uint8)
    mask[1:6, 1:6] = 1
    mask[9:11, 9:11] = 1
    kept = apply_postprocessing(mask, ["keep_largest_component"])
    assert kept.sum() == 25 and kept[10, 10] == 0
    volume = np.zeros((8, 8, 8), np.uint8)
    volume[1:4, 1:4, 1:4] = 1
    volume[6, 6, 6] = 1
    assert apply_postprocessing(volume, ["keep_largest_component"]).sum() == 27


def test_fill_holes_and_order() -> None:
    ring = np.zeros((9, 9), np.uint8)
    ring[2:7, 2:7] = 1
    ring[4, 4] = 0
    assert apply_postprocessing(ring, ["fill_holes"])[4, 4] == 1
    assert apply_postprocessing(ring, []).sum() == ring.sum()


def test_unknown_step() -> None:
    with pytest.raises(ValueError, match="unknown postprocessing step"):
        apply_postprocessing(np.zeros((4, 4)), ["dilate"])
