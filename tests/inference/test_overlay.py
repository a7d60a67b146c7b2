"""Overlay PNG: outline drawn where the mask boundary is, heat map beside, 3D picks the largest slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medseglatdiff.inference.overlay import OUTLINE_RGB, write_overlay


def test_2d_overlay_has_outline_and_heat_map(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (3, 40, 30)).astype(np.uint8)
    mask = np.zeros((40, 30), np.uint8)
    mask[10:20, 5:15] = 1
    confidence = np.linspace(0, 1, 40 * 30).reshape(40, 30)
    panel = np.asarray(Image.open(write_overlay(image, mask, confidence, tmp_path / "o.png")))
    assert panel.shape == (30, 80, 3)  # (y, 2x, RGB)
    assert tuple(panel[5, 10]) == OUTLINE_RGB  # boundary pixel x=10, y=5
    assert tuple(panel[10, 15]) != OUTLINE_RGB  # interior
    assert not np.array_equal(panel[0, 40], panel[-1, -1])  # heat map varies


def test_3d_overlay_uses_largest_slice(tmp_path: Path) -> None:
    image = np.zeros((1, 16, 16, 5), np.float32)
    mask = np.zeros((16, 16, 5), np.uint8)
    mask[4:12, 4:12, 3] = 1
    panel = np.asarray(Image.open(write_overlay(image, mask, np.ones_like(image[0]), tmp_path / "v.png")))
    assert (panel[..., 0] == 255).sum() >= 28  # the outline of the 8x8 square on slice 3


def test_largest_slice_ties_go_to_the_middle() -> None:
    from medseglatdiff.inference.overlay import largest_slice

    mask = np.zeros((4, 4, 9), np.uint8)
    assert largest_slice(mask) == 4  # empty: the middle slice
    mask[:, :, 2:8] = 1  # six equal slices (a mask filling its crop box): not the first, the middle one
    assert largest_slice(mask) in (4, 5)
    mask[0, 0, 6] = 0
    mask[:2, :2, 1] = 1
    assert largest_slice(mask) in (4, 5)
