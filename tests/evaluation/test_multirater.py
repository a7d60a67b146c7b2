"""Multi-rater metrics on hand-computed cases, empty masks included."""

from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.evaluation.multirater import (
    ci_score,
    diversity_agreement,
    expected_calibration_error,
    generalized_energy_distance,
    hungarian_matched_iou,
    pairwise_iou,
    reliability_curve,
)


def mask(*pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((4, 4), dtype=np.uint8)
    for p in pixels:
        m[p] = 1
    return m


A = mask((0, 0), (0, 1), (1, 0), (1, 1))  # 4 px
B = mask((2, 2), (2, 3), (3, 2), (3, 3))  # 4 px, disjoint from A
C = mask((0, 0), (0, 1), (0, 2), (0, 3))  # 4 px, 2 shared with A
EMPTY = mask()


def test_pairwise_iou_hand_values() -> None:
    iou = pairwise_iou([A, C, EMPTY], [A, B, EMPTY])
    expected = np.array([[1.0, 0.0, 0.0], [1 / 3, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(iou, expected)


@pytest.mark.parametrize(
    "samples, raters, expected",
    [
        ([A], [A], 0.0),
        ([A, B], [A, B], 0.0),  # the samples spread exactly like the raters
        ([A, A], [A, B], 0.5),  # 2*0.5 - 0 - 0.5
        ([EMPTY], [EMPTY], 0.0),  # d(empty, empty) = 0
        ([EMPTY], [A], 2.0),
        ([C], [A], 2 * (2 / 3)),
    ],
)
def test_ged(samples: list, raters: list, expected: float) -> None:
    assert generalized_energy_distance(samples, raters) == pytest.approx(expected)


@pytest.mark.parametrize(
    "samples, raters, expected",
    [
        ([A, B], [B, A], 1.0),
        ([A, A], [A, B], 0.5),
        ([A, A, A, A], [A, B], 0.5),  # raters repeated to the sample count
        ([EMPTY, A], [EMPTY, A], 1.0),
        ([C, B], [A, B], (1 / 3 + 1) / 2),
    ],
)
def test_hm_iou(samples: list, raters: list, expected: float) -> None:
    assert hungarian_matched_iou(samples, raters) == pytest.approx(expected)


def test_ci_perfect_and_collapsed() -> None:
    perfect = ci_score([A, B], [A, B])
    assert perfect == pytest.approx({"combined_sensitivity": 1.0, "d_max": 1.0, "diversity_agreement": 1.0, "ci": 1.0})
    collapsed = ci_score([A, A], [A, B])
    assert collapsed["combined_sensitivity"] == pytest.approx(0.5)
    assert collapsed["d_max"] == pytest.approx(0.5)
    assert collapsed["diversity_agreement"] == pytest.approx(0.0)
    assert collapsed["ci"] == 0.0


def test_ci_harmonic_combination() -> None:
    parts = ci_score([A, C], [A, B])
    # S_c: union(A, C) covers A (4 of 8 px of A∪B); D_max: A->1, B->0; D_a: V_Y = 1 (max=min),
    # V_S = 1 - Dice(A, C) = 0.5
    assert parts["combined_sensitivity"] == pytest.approx(0.5)
    assert parts["d_max"] == pytest.approx(0.5)
    assert parts["diversity_agreement"] == pytest.approx(0.5)
    assert parts["ci"] == pytest.approx(0.5)


def test_ci_with_empty_raters_counts_them() -> None:
    parts = ci_score([EMPTY, A], [EMPTY, A])
    assert parts["ci"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        diversity_agreement([A], [A, B])


def test_ece_hand_values() -> None:
    assert expected_calibration_error(np.array([0.05, 0.95]), np.array([0.0, 1.0])) == pytest.approx(0.05)
    assert expected_calibration_error(np.full(4, 0.7), np.array([1, 0, 1, 0.0])) == pytest.approx(0.2)
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.0)


def test_reliability_curve_bins() -> None:
    curve = reliability_curve(np.array([0.05, 0.07, 0.95, 1.0]), np.array([0, 0.25, 1, 1]), num_bins=10)
    assert curve["count"].tolist() == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert curve["mean_target"][0] == pytest.approx(0.125)
    assert np.isnan(curve["mean_probability"][5])
