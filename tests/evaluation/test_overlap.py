"""Dice, IoU, HD95, ASSD through MONAI, with the empty-mask conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medseglatdiff.evaluation.multirater import pairwise_dice, pairwise_iou
from medseglatdiff.evaluation.overlap import overlap_metrics


def square(offset: int, size: int = 10, shape: tuple[int, int] = (32, 32)) -> np.ndarray:
    m = np.zeros(shape, dtype=np.uint8)
    m[offset : offset + size, 5 : 5 + size] = 1
    return m


def test_shifted_square() -> None:
    scores = overlap_metrics(square(5), square(7))[1]
    assert scores["dice"] == pytest.approx(0.8)  # 80 shared of 100 + 100
    assert scores["iou"] == pytest.approx(80 / 120)
    assert scores["hd95"] == pytest.approx(2.0)
    assert 0 < scores["assd"] < 2.0


def test_spacing_scales_distances() -> None:
    scores = overlap_metrics(square(5), square(7), spacing=(0.5, 0.5))[1]
    assert scores["hd95"] == pytest.approx(1.0)


def test_empty_conventions() -> None:
    empty = np.zeros((8, 8), np.uint8)
    both = overlap_metrics(empty, empty)[1]
    assert both == {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "assd": 0.0}
    one = overlap_metrics(square(1, 4, (8, 8)), empty)[1]
    assert one["dice"] == 0.0 and one["iou"] == 0.0 and math.isnan(one["hd95"])


def test_multiclass_and_agreement_with_pairwise() -> None:
    pred = square(5) + 2 * square(20, 5)
    ref = square(7)
    scores = overlap_metrics(pred, ref, classes=(1, 2), surface=False)
    assert scores[2]["dice"] == 0.0
    assert scores[1]["iou"] == pytest.approx(pairwise_iou([square(5)], [ref])[0, 0])
    assert scores[1]["dice"] == pytest.approx(pairwise_dice([square(5)], [ref])[0, 0])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differs"):
        overlap_metrics(np.zeros((4, 4)), np.zeros((4, 5)))
