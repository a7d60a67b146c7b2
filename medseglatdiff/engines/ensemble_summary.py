"""From N sampled masks to a segmentation and confidence maps (the "panel of readers" summary).

Given N decoded samples (probabilities in [0, 1], or binary masks) of one image:

- ``mean``: the mean probability over samples, p̄; the segmentation is p̄ >= threshold (0.5 unless the model
  selection chose another).
- ``variance``: per-pixel variance of the samples (the method's uncertainty map).
- ``agreement``: share of samples whose binarised mask agrees with the final mask, in [0, 1] (1: all agree).
- ``entropy``: binary entropy of p̄ in bits, in [0, 1] (1: p̄ = 0.5).
- ``confidence``: 1 - entropy, the map shown to a person: 1 where the panel is unanimous, 0 where it is split.

With several foreground channels (classes or regions, :mod:`medseglatdiff.datasets.label_scheme`),
:func:`summarize_ensemble` makes these maps per channel and the label map by the scheme's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medseglatdiff.datasets.label_scheme import LabelScheme


@dataclass
class EnsembleSummary:
    """Per-pixel maps summarising an ensemble; every array has the samples' spatial shape."""

    mean: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    agreement: np.ndarray
    entropy: np.ndarray

    @property
    def confidence(self) -> np.ndarray:
        return 1.0 - self.entropy


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in bits, with H(0) = H(1) = 0."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(h, nan=0.0)


def summarize_samples(samples: np.ndarray, threshold: float = 0.5) -> EnsembleSummary:
    """Summarise ``samples`` of shape (N, x, y[, z]) (probabilities or binary masks) into maps.

    Args:
        samples: N sampled foreground probabilities (or 0/1 masks) for one image.
        threshold: probability at which the mean becomes foreground, and at which each sample is binarised
            for the agreement map.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim < 2 or samples.shape[0] < 1:
        raise ValueError(f"samples must have shape (N, x, y[, z]) with N >= 1, got {samples.shape}")
    mean = samples.mean(axis=0)
    mask = (mean >= threshold).astype(np.uint8)
    votes = samples >= threshold
    agreement = (votes == mask.astype(bool)).mean(axis=0).astype(np.float32)
    return EnsembleSummary(
        mean=mean,
        mask=mask,
        variance=samples.var(axis=0),
        agreement=agreement,
        entropy=binary_entropy(mean).astype(np.float32),
    )


@dataclass
class ChannelSummary:
    """An ensemble of K foreground channels: one :class:`EnsembleSummary` per channel and the label map."""

    channels: list[EnsembleSummary]
    label_map: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """``(K, *spatial)`` mean probabilities."""
        return np.stack([c.mean for c in self.channels])

    @property
    def confidence(self) -> np.ndarray:
        """``(K, *spatial)`` confidence maps."""
        return np.stack([c.confidence for c in self.channels])


def summarize_ensemble(
    samples: np.ndarray, scheme: LabelScheme | None = None, threshold: float = 0.5
) -> ChannelSummary:
    """Summarise ``samples`` ``(N, K, *spatial)`` channel by channel; the label map follows ``scheme``.

    Without a scheme the K must be 1 and the label map is the binary mask (``mean >= threshold``).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim < 3:
        raise ValueError(f"samples must have shape (N, K, x, y[, z]), got {samples.shape}")
    channels = [summarize_samples(samples[:, k], threshold) for k in range(samples.shape[1])]
    return ChannelSummary(channels, label_map_of(np.stack([c.mean for c in channels]), scheme, threshold))


def label_map_of(probabilities: np.ndarray, scheme: LabelScheme | None, threshold: float = 0.5) -> np.ndarray:
    """``(K, *spatial)`` probabilities -> label map by ``scheme``; without one K must be 1 (``p >= threshold``)."""
    if scheme is not None:
        return scheme.label_map(probabilities, threshold)
    if len(probabilities) != 1:
        raise ValueError(f"{len(probabilities)} channels need a label scheme to make a label map")
    return (np.asarray(probabilities[0]) >= threshold).astype(np.uint8)
