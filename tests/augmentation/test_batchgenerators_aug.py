"""batchgenerators augmentation moves the image and every mask together and keeps masks binary."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from medseglatdiff.augmentation.batchgenerators_aug import (
    AugmentationParams,
    BatchgeneratorsTransformd,
    build_augmentation,
    initial_patch_size,
)


def _sample(spatial: tuple[int, ...], num_raters: int = 3) -> dict[str, np.ndarray]:
    grid = np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij")
    centre = [s // 2 for s in spatial]
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
    blob = (dist < spatial[0] // 5).astype(np.uint8)
    image = np.stack([blob * 2.0 - 1.0 + 0.01 * g for g in grid[:1]]).astype(np.float32)  # intensity = mask + ramp
    raters = np.stack([np.roll(blob, shift=k, axis=0) for k in range(num_raters)])
    raters[-1] = 0  # an empty rater mask
    return {"image": image, "label": blob[None], "raters": raters}


def test_no_unittest2_import() -> None:
    assert "unittest2" not in sys.modules


@pytest.mark.parametrize("rotation", [0.0, 45.0, 180.0])
def test_initial_patch_size_covers_rotation(rotation: float) -> None:
    size = initial_patch_size((64, 32), rotation)
    assert size[0] >= 64 and size[1] >= 32
    if rotation >= 45:
        # the 64 x 32 box turned by 45 degrees spans (64 + 32) / sqrt(2) ~ 68 on both axes
        assert min(size) >= 67
    assert initial_patch_size((32, 32), 0.0, max_scale=1.5) == (48, 48)
    assert len(initial_patch_size((16, 16, 16), 30.0)) == 3


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_spatial_augmentation_moves_image_and_masks_together(spatial_dims: int) -> None:
    np.random.seed(1)
    spatial = (48,) * spatial_dims
    patch = (32,) * spatial_dims
    params = AugmentationParams(
        p_rotation=1.0,
        rotation_degrees=90.0,
        p_scale=1.0,
        p_elastic=0.0,
        p_brightness=0.0,
        p_contrast=0.0,
        p_gamma=0.0,
        p_noise=0.0,
        mirror_axes=tuple(range(spatial_dims)),
    )
    transform = BatchgeneratorsTransformd(build_augmentation(patch, params))
    for _ in range(4):
        out = transform(_sample(spatial))
        assert out["image"].shape == (1, *patch)
        assert out["label"].shape == (1, *patch) and out["raters"].shape == (3, *patch)
        assert out["label"].dtype == np.uint8 and set(np.unique(out["raters"])) <= {0, 1}
        assert not out["raters"][-1].any()  # the empty rater stays empty
        # the image was built as 2 * label - 1 (+ a tiny ramp): where the label is 1 the image is high
        inside = out["label"][0] > 0
        if inside.any() and (~inside).any():
            assert out["image"][0][inside].mean() > out["image"][0][~inside].mean() + 1.0


def test_intensity_augmentation_changes_image_only() -> None:
    np.random.seed(0)
    params = AugmentationParams(
        p_rotation=0.0, p_scale=0.0, p_brightness=1.0, p_contrast=1.0, p_gamma=1.0, p_noise=1.0, mirror_axes=()
    )
    sample = _sample((32, 32))
    out = BatchgeneratorsTransformd(build_augmentation((32, 32), params))({k: v.copy() for k, v in sample.items()})
    np.testing.assert_array_equal(out["label"], sample["label"])
    np.testing.assert_array_equal(out["raters"], sample["raters"])
    assert not np.allclose(out["image"], sample["image"])
