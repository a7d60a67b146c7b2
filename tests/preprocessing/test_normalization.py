from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.preprocessing.normalization import get_normalization, nonzero_mask, normalize_image


def test_ct_clips_then_zscores():
    norm = get_normalization("ct", {"clip_low": -100.0, "clip_high": 100.0, "mean": 10.0, "std": 20.0})
    out = norm(np.array([-1000.0, 10.0, 50.0, 3000.0]))
    np.testing.assert_allclose(out, [(-100 - 10) / 20, 0.0, 2.0, (100 - 10) / 20])
    assert out.dtype == np.float32


def test_zscore_inside_nonzero_mask():
    image = np.zeros((1, 10, 10), dtype=np.float32)
    image[0, 2:8, 2:8] = np.arange(36).reshape(6, 6) + 1.0
    out = normalize_image(image, [{"channel": 0, "scheme": "zscore", "params": {"use_nonzero_mask": True}}])
    inside = nonzero_mask(image)
    assert out[0][~inside].max() == 0.0
    assert out[0][inside].mean() == pytest.approx(0.0, abs=1e-5)
    assert out[0][inside].std() == pytest.approx(1.0, abs=1e-4)


def test_zscore_whole_image():
    image = np.random.default_rng(0).normal(5.0, 3.0, size=(1, 50, 50))
    out = normalize_image(image, [{"channel": 0, "scheme": "zscore", "params": {"use_nonzero_mask": False}}])
    assert out.mean() == pytest.approx(0.0, abs=1e-5) and out.std() == pytest.approx(1.0, abs=1e-4)


def test_rgb_unit_range_and_none():
    image = np.stack([np.full((4, 4), 255.0), np.full((4, 4), 51.0), np.full((4, 4), 7.0)])
    plan = [
        {"channel": 0, "scheme": "unit_range", "params": {"max_value": 255.0}},
        {"channel": 1, "scheme": "unit_range", "params": {"max_value": 255.0}},
        {"channel": 2, "scheme": "none", "params": {}},
    ]
    out = normalize_image(image, plan)
    assert out[0].max() == 1.0 and out[1][0, 0] == pytest.approx(0.2) and out[2][0, 0] == 7.0


@pytest.mark.parametrize(
    "scheme, params, match",
    [("minmax", {}, "unknown normalisation scheme 'minmax'"), ("ct", {"mean": 0.0}, "needs params clip_low")],
)
def test_bad_scheme_or_params(scheme, params, match):
    with pytest.raises(MedsegError, match=match):
        get_normalization(scheme, params)


def test_channel_count_must_match():
    with pytest.raises(MedsegError, match="normalises 1 channels but the image has 2"):
        normalize_image(np.zeros((2, 3, 3)), [{"channel": 0, "scheme": "none", "params": {}}])
