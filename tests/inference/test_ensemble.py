"""Ensemble summary maps: mean, mask, variance, agreement, entropy, confidence."""

from __future__ import annotations

import numpy as np
import pytest

from medseglatdiff.engines.ensemble_summary import binary_entropy, summarize_samples


def test_unanimous_and_split_pixels() -> None:
    # 4 samples, 3 pixels: unanimous foreground, split 2/2, one of four
    samples = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=np.float32)[:, None, :]
    summary = summarize_samples(samples)
    np.testing.assert_allclose(summary.mean[0], [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(summary.mask[0], [1, 1, 0])  # p >= 0.5 is foreground
    np.testing.assert_allclose(summary.variance[0], [0.0, 0.25, 0.1875])
    np.testing.assert_allclose(summary.agreement[0], [1.0, 0.5, 0.75])
    np.testing.assert_allclose(summary.confidence[0], [1.0, 0.0, 1 - binary_entropy(np.array(0.25))], atol=1e-6)


def test_threshold_and_bad_shape() -> None:
    samples = np.full((3, 2, 2), 0.6, np.float32)
    assert summarize_samples(samples, threshold=0.7).mask.sum() == 0
    with pytest.raises(ValueError):
        summarize_samples(np.zeros(3))


def test_entropy_endpoints() -> None:
    np.testing.assert_allclose(binary_entropy(np.array([0.0, 0.5, 1.0])), [0.0, 1.0, 0.0])
