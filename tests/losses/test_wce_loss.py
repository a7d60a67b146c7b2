"""The weighted cross-entropy against a hand computation, and the autoencoders' losses."""

from __future__ import annotations

import math

import pytest
import torch

from medseglatdiff.losses import (
    ImageAutoencoderLoss,
    MaskAutoencoderLoss,
    WeightedCrossEntropyLoss,
    kl_divergence,
    weighted_cross_entropy,
)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_wce_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]])
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    w_fg, w_bg = 50.0, 1.0
    expected = [
        -w_fg * math.log(_sigmoid(2.0)),
        -w_fg * math.log(_sigmoid(-1.0)),
        -w_bg * math.log(1 - _sigmoid(0.5)),
        -w_bg * math.log(1 - _sigmoid(-3.0)),
    ]
    loss = weighted_cross_entropy(logits, target, w_fg, w_bg, reduction="none")
    assert torch.allclose(loss.flatten(), torch.tensor(expected), rtol=1e-6)
    assert WeightedCrossEntropyLoss(w_fg, w_bg)(logits, target).item() == pytest.approx(sum(expected) / 4, rel=1e-6)
    assert weighted_cross_entropy(logits, target, w_fg, w_bg, reduction="sum").item() == pytest.approx(
        sum(expected), rel=1e-6
    )


def test_wce_soft_target_and_background_weight() -> None:
    logits = torch.tensor([0.3])
    target = torch.tensor([0.25])
    w_fg, w_bg = 4.0, 2.0
    p = _sigmoid(0.3)
    expected = -(w_fg * 0.25 * math.log(p) + w_bg * 0.75 * math.log(1 - p))
    assert weighted_cross_entropy(logits, target, w_fg, w_bg).item() == pytest.approx(expected, rel=1e-6)


def test_wce_equals_bce_with_unit_weights() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=generator)
    target = (torch.rand(2, 1, 8, 8, generator=generator) > 0.7).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert weighted_cross_entropy(logits, target).item() == pytest.approx(bce.item(), rel=1e-6)


def test_wce_penalises_missed_foreground_more() -> None:
    target = torch.zeros(1, 1, 16, 16)
    target[..., 7:9, 7:9] = 1  # a tiny structure
    all_background = torch.full_like(target, -4.0)
    weighted = WeightedCrossEntropyLoss(50.0, 1.0)(all_background, target)
    plain = WeightedCrossEntropyLoss(1.0, 1.0)(all_background, target)
    assert weighted > 10 * plain


def test_wce_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        weighted_cross_entropy(torch.zeros(2), torch.zeros(2), foreground_weight=0.0)
    with pytest.raises(ValueError, match="shape"):
        weighted_cross_entropy(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        weighted_cross_entropy(torch.zeros(2), torch.zeros(2), reduction="max")


def test_kl_divergence_zero_for_standard_normal_and_positive_otherwise() -> None:
    mu, sigma = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    assert kl_divergence(mu, sigma).item() == pytest.approx(0.0, abs=1e-6)
    # one element with mu = 1: 0.5 * 1 per batch item
    mu[:, 0, 0, 0] = 1.0
    assert kl_divergence(mu, sigma).item() == pytest.approx(0.5, rel=1e-5)


def test_autoencoder_losses_combine_reconstruction_and_kl() -> None:
    target = torch.rand(2, 1, 8, 8)
    mu, sigma = torch.ones(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    kl = kl_divergence(mu, sigma).item()
    image_loss = ImageAutoencoderLoss(kl_weight=0.1, reconstruction="l1")((target + 0.5, mu, sigma), target)
    assert image_loss.item() == pytest.approx(0.5 + 0.1 * kl, rel=1e-5)
    mse_loss = ImageAutoencoderLoss(kl_weight=0.0, reconstruction="mse")((target + 0.5, mu, sigma), target)
    assert mse_loss.item() == pytest.approx(0.25, rel=1e-5)
    mask = (target > 0.5).float()
    logits = torch.zeros_like(mask)
    mask_loss = MaskAutoencoderLoss(foreground_weight=3.0, kl_weight=0.0)((logits, mu, sigma), mask)
    assert mask_loss.item() == pytest.approx(weighted_cross_entropy(logits, mask, 3.0, 1.0).item(), rel=1e-6)
    with pytest.raises(ValueError, match="l1"):
        ImageAutoencoderLoss(reconstruction="huber")
