"""The in-memory ensemble scores agree with the evaluation metrics; the frontier and the choice rule."""

from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.crossval.find_best import choose_postprocessing, choose_threshold
from medseglatdiff.crossval.frontier import choose, interpolated_seconds, mark_frontier
from medseglatdiff.crossval.scoring import Reference, crop_case, ensemble_means, size_curves
from medseglatdiff.evaluation.multirater import generalized_energy_distance, hungarian_matched_iou, pairwise_dice


def _blob(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_size_curves_match_the_evaluation_metrics_for_every_ensemble_size() -> None:
    rng = np.random.default_rng(0)
    shape = (40, 40)
    raters = [_blob(shape, (20, 20), r) for r in (5, 6, 7)] + [np.zeros(shape, bool)]
    samples = np.stack(
        [
            np.clip(_blob(shape, (20 + rng.integers(-3, 4), 20), rng.integers(3, 9)) * rng.uniform(0.6, 1.0), 0, 1)
            for _ in range(6)
        ]
    ).astype(np.float32)
    reference = Reference(raters[1], raters)
    cropped, small = crop_case(samples, reference)
    assert cropped.shape[1] < 40 and small.foreground.sum() == reference.foreground.sum()
    curves = size_curves(cropped, small)
    for k in range(1, 7):
        binary = [s >= 0.5 for s in samples[:k]]
        mean = samples[:k].mean(axis=0)
        assert curves["dice"][k - 1] == pytest.approx(pairwise_dice([mean >= 0.5], [reference.foreground])[0, 0])
        assert curves["ged"][k - 1] == pytest.approx(generalized_energy_distance(binary, raters))
        assert curves["hm_iou"][k - 1] == pytest.approx(hungarian_matched_iou(binary, raters))
    assert np.allclose(ensemble_means(samples)[-1], samples.mean(axis=0))
    assert set(size_curves(samples, Reference(raters[1], []))) == {"dice"}  # no raters: Dice only


def test_frontier_choice_is_the_fastest_point_near_the_best() -> None:
    assert interpolated_seconds(1.0, 4.0, 1, 4) == 1.0 and interpolated_seconds(1.0, 4.0, 4, 4) == 4.0
    assert interpolated_seconds(1.0, 4.0, 2, 4) == pytest.approx(2.0)
    rows = [
        {"num_inference_steps": 10, "num_samples": 1, "seconds_per_image": 1.0, "dice": 0.70},
        {"num_inference_steps": 10, "num_samples": 4, "seconds_per_image": 2.0, "dice": 0.745},
        {
            "num_inference_steps": 50,
            "num_samples": 1,
            "seconds_per_image": 3.0,
            "dice": 0.72,
        },  # slower and worse: off the frontier
        {"num_inference_steps": 50, "num_samples": 4, "seconds_per_image": 8.0, "dice": 0.748},
    ]
    mark_frontier(rows)
    assert [r["on_frontier"] for r in rows] == [True, True, False, True]
    chosen, best = choose(rows, tolerance=0.005)
    assert best is rows[3] and chosen is rows[1] and [r["chosen"] for r in rows] == [False, True, False, False]
    assert choose(rows, tolerance=0.0)[0] is rows[3]
    assert choose(rows, tolerance=0.05, min_num_samples=2)[0] is rows[1]  # single samples do not compete
    assert choose(rows, tolerance=0.05)[0] is rows[0]
    for row in rows:
        row["ged"] = 1.0 - row["dice"]
    mark_frontier(rows, "ged")
    assert choose(rows, "ged", tolerance=0.005)[0] is rows[1]


def test_threshold_and_postprocessing_rules() -> None:
    reference = Reference(_blob((30, 30), (15, 15), 6), [])
    mean = np.where(reference.foreground, 0.45, 0.0).astype(np.float32)  # under-confident: 0.4 beats 0.5
    threshold, table = choose_threshold([mean], [reference], [0.3, 0.4, 0.5, 0.6])
    assert threshold == 0.4 and {r["threshold"] for r in table} == {0.3, 0.4, 0.5, 0.6}
    assert (
        choose_threshold([reference.foreground.astype(np.float32)], [reference], [0.4, 0.5, 0.6])[0] == 0.5
    )  # ties: nearest 0.5
    speck = reference.foreground.copy()
    speck[0:2, 0:2] = True  # a false positive far away: keep_largest_component removes it
    hole = reference.foreground.copy()
    hole[15, 15] = False
    steps, trials, final = choose_postprocessing(
        [speck.astype(np.uint8), hole.astype(np.uint8)], [reference, reference]
    )
    assert steps == ["keep_largest_component", "fill_holes"] and final == pytest.approx(1.0)
    assert all(t["dice_after"] > t["dice_before"] for t in trials)
    steps, trials, _ = choose_postprocessing([reference.foreground.astype(np.uint8)], [reference])
    assert steps == [] and not any(t["enabled"] for t in trials)  # no gain: nothing enabled
