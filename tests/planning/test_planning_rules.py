"""Each ``determine_*`` rule as a pure function, with a table of cases."""

from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.planning.memory import GIB, MemoryEstimate
from medseglatdiff.planning.rules import PlanningRules, floor_power_of_two

RULES = PlanningRules()


@pytest.mark.parametrize(
    "memory_gb, dims, expected", [(4, 2, 128), (24, 2, 256), (16, 2, 256), (4, 3, 64), (80, 3, 128)]
)
def test_max_input_size(memory_gb, dims, expected):
    assert RULES.determine_max_input_size(memory_gb, dims).value == expected


@pytest.mark.parametrize(
    "spacings, shapes, natural, max_input, expected",
    [
        ([[1, 1]] * 3, [[1024, 681], [1024, 700], [1000, 650]], True, 256, [4.0, 4.0]),  # ISIC-like
        ([[1, 1]] * 3, [[320, 272], [320, 256], [320, 300]], True, 128, [2.5, 2.5]),  # Kvasir-like, CPU budget
        ([[1, 1]] * 2, [[128, 128], [128, 128]], True, 256, [1.0, 1.0]),  # LIDC crops are never upsampled
        ([[1, 1, 1], [1, 1, 1.2], [1, 1, 1]], [[140, 170, 140]] * 3, False, 128, [1.0, 1.0, 1.0]),
        ([[0.7, 0.7, 5.0], [0.8, 0.8, 5.0], [0.7, 0.7, 2.5]], [[512, 512, 30]] * 3, False, 128, [0.7, 0.7, 3.0]),
        ([[0.7, 0.7, 5.0]] * 3, [[100, 100, 80]] * 3, False, 128, [0.7, 0.7, 5.0]),  # anisotropic spacing, not voxels
    ],
)
def test_target_spacing(spacings, shapes, natural, max_input, expected):
    decision = RULES.determine_target_spacing(np.array(spacings), np.array(shapes), natural, max_input)
    assert decision.value == pytest.approx(expected)
    assert decision.reason


@pytest.mark.parametrize("spacing, axis", [([1, 1, 1], 2), ([1, 5, 1], 1), ([0.7, 0.7, 3.0], 2), ([4, 1, 1], 0)])
def test_slice_axis(spacing, axis):
    assert RULES.determine_slice_axis(spacing).value == axis


@pytest.mark.parametrize("ratio, expected", [(0.5, True), (0.74, True), (0.75, False), (1.0, False)])
def test_use_nonzero_mask(ratio, expected):
    assert RULES.determine_use_nonzero_mask(ratio).value is expected


STATS = {"mean": 100.0, "std": 20.0, "median": 98.0, "percentile_00_5": 40.0, "percentile_99_5": 180.0}


@pytest.mark.parametrize(
    "names, ranges, use_mask, schemes",
    [
        ({"0": "CT"}, [[-1024, 3000]], False, ["ct"]),
        ({"0": "R", "1": "G", "2": "B"}, [[0, 255]] * 3, False, ["unit_range"] * 3),
        ({"0": "R", "1": "G", "2": "B"}, [[0, 4095]] * 3, False, ["zscore"] * 3),  # not 8-bit: z-score
        ({"0": "FLAIR", "1": "T1c"}, [[-3, 9]] * 2, True, ["zscore", "zscore"]),
        ({"0": "noNorm"}, [[0, 1]], False, ["none"]),
    ],
)
def test_normalization(names, ranges, use_mask, schemes):
    decision = RULES.determine_normalization(names, [STATS] * len(names), ranges, use_mask)
    assert [e["scheme"] for e in decision.value] == schemes
    assert [e["channel"] for e in decision.value] == list(range(len(names)))
    for entry in decision.value:
        if entry["scheme"] == "ct":
            assert entry["params"] == {"clip_low": 40.0, "clip_high": 180.0, "mean": 100.0, "std": 20.0}
        if entry["scheme"] == "zscore":
            assert entry["params"] == {"use_nonzero_mask": use_mask}


@pytest.mark.parametrize(
    "diameter, spacing, factor",
    [
        (4.4, [1.0, 1.0], 2),  # LIDC nodules
        (1.0, [1.0, 1.0], 2),  # below the bound: the minimum
        (8.0, [1.0, 1.0], 4),
        (12.0, [1.0, 1.0], 4),
        (16.0, [1.0, 1.0], 8),
        (43.5, [2.5, 2.5], 8),  # Kvasir polyps at the CPU input size
        (29.5, [2.5, 2.5], 4),
        (500.0, [1.0, 1.0], 8),  # the maximum
        (10.0, [1.0, 1.0, 4.0], 2),  # geometric mean spacing 1.59
        (None, [1.0, 1.0], 8),
    ],
)
def test_latent_factor(diameter, spacing, factor):
    assert RULES.determine_latent_factor(diameter, spacing).value == factor


@pytest.mark.parametrize(
    "in_channels, factor, dims, expected",
    [(3, 4, 2, 3), (3, 8, 2, 4), (1, 2, 2, 1), (1, 8, 2, 2), (2, 2, 3, 2), (2, 4, 3, 3), (4, 8, 3, 8)],
)
def test_latent_channels(in_channels, factor, dims, expected):
    assert RULES.determine_latent_channels(in_channels, factor, dims).value == expected


@pytest.mark.parametrize(
    "fractions, values, expected",
    [
        ({1: 0.0035}, [0, 1], [1.0, 50.0]),  # LIDC: capped at the method's ~50
        ({1: 0.114}, [0, 1], [1.0, 7.772]),  # Kvasir
        ({1: 0.6}, [0, 1], [1.0, 1.0]),  # foreground majority: floor 1
        ({1: 0.2, 2: None}, [0, 1, 2], [1.0, 4.0, 1.0]),  # a class never present
    ],
)
def test_class_weights(fractions, values, expected):
    assert RULES.determine_class_weights(fractions, values).value == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("size, levels", [(64, 4), (32, 4), (28, 3), (16, 3), (8, 2), (4, 2), (2, 2), (0, 2)])
def test_denoiser_levels(size, levels):
    assert RULES.determine_denoiser_levels(size).value == levels


@pytest.mark.parametrize(
    "median, max_input, divisor, expected",
    [
        ([128.0, 108.8], 128, 16, [128, 112]),
        ([300.0, 300.0], 256, 32, [256, 256]),
        ([10.0, 10.0], 128, 16, [16, 16]),
        ([40.0, 40.0, 40.0], 64, 8, [40, 40, 40]),
        ([256.0, 170.0], 256, 32, [256, 192]),
    ],
)
def test_patch_size(median, max_input, divisor, expected):
    patch = RULES.determine_patch_size(median, max_input, divisor).value
    assert patch == expected and all(p % divisor == 0 for p in patch)


@pytest.mark.parametrize(
    "latent, levels, expected",
    [
        ((16, 16), 3, [True, True, True]),
        ((32, 32), 4, [False, True, True, True]),
        ((64, 64), 4, [False, False, True, True]),
        ((20, 20, 20), 3, [False, False, True]),
    ],
)
def test_attention_levels(latent, levels, expected):
    assert RULES.determine_attention_levels(latent, levels).value == expected


@pytest.mark.parametrize(
    "base, levels, expected", [(32, 3, [32, 64, 64]), (64, 4, [64, 128, 128, 256]), (16, 2, [16, 32])]
)
def test_widths(base, levels, expected):
    assert RULES.determine_widths(base, levels) == expected


@pytest.mark.parametrize(
    "per_sample_gib, memory_gb, num_samples, expected, fits",
    [
        (0.25, 4, 1000, 8, True),  # 3.5 GiB / 1.2 = 2.9 GiB: 11 fit -> 8
        (0.25, 4, 40, 2, True),  # 5% of 40 samples caps at 2
        (0.01, 80, 10_000, 32, True),  # the upper bound
        (10.0, 4, 1000, 2, False),  # does not fit: still the minimum, and the reason says so
    ],
)
def test_batch_size(per_sample_gib, memory_gb, num_samples, expected, fits):
    decision = RULES.determine_batch_size(MemoryEstimate(0, int(per_sample_gib * GIB)), memory_gb, num_samples)
    assert decision.value == expected
    assert ("does NOT fit" in decision.reason) is (not fits)


def test_width_picks_the_widest_that_fits():
    estimate = lambda base: MemoryEstimate(0, int(base / 64 * GIB))  # noqa: E731 - 1 GiB per sample at base 64
    assert RULES.determine_width((64, 32), estimate, 24, 8).value == 64
    assert RULES.determine_width((64, 32), estimate, 8, 8).value == 32
    assert RULES.determine_width((64, 32), estimate, 2, 8).value == 32


def test_defaults_with_reasons():
    assert RULES.determine_mask_targets(4).value == "random_rater"
    assert RULES.determine_mask_targets(0).value == "label"
    diffusion = RULES.determine_diffusion()
    assert diffusion["num_train_timesteps"].value == 1000
    assert (diffusion["beta_start"].value, diffusion["beta_end"].value) == (1e-4, 2e-2)
    inference = RULES.determine_inference()
    assert inference["num_inference_steps"].value == 50 and inference["num_samples"].value == 5
    assert RULES.determine_kl_weight().value == 1e-6
    assert all(d.reason for d in [*diffusion.values(), *inference.values()])


@pytest.mark.parametrize("value, expected", [(0.5, 1), (1, 1), (2, 2), (3.9, 2), (40, 32), (64, 64)])
def test_floor_power_of_two(value, expected):
    assert floor_power_of_two(value) == expected
