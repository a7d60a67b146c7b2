"""Weighted binary cross-entropy on logits: the mask VAE's reconstruction loss (MedSegLatDiff).

.. math::

    \\mathrm{WCE}(z, y) = -\\big[w_{fg}\\, y \\log \\sigma(z) + w_{bg}\\, (1 - y) \\log (1 - \\sigma(z))\\big]

averaged over every element. With ``w_fg >> w_bg`` a missed foreground pixel costs much more than a false
positive, so tiny structures (small lung nodules) survive encode -> decode, which plain MSE lets vanish.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.utils import LossReduction
from torch import nn


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    foreground_weight: float = 1.0,
    background_weight: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Element-wise weighted binary cross-entropy of ``logits`` against ``target`` in [0, 1].

    Computed with ``binary_cross_entropy_with_logits`` (log-sum-exp stable): ``pos_weight = w_fg / w_bg``
    and the whole term scaled by ``w_bg`` give exactly the formula above, also for soft targets.

    Args:
        logits: decoder output before the sigmoid, any shape.
        target: same shape, values in [0, 1].
        foreground_weight: ``w_fg`` (> 0).
        background_weight: ``w_bg`` (> 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    if foreground_weight <= 0 or background_weight <= 0:
        raise ValueError(f"class weights must be positive, got fg={foreground_weight}, bg={background_weight}")
    if logits.shape != target.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} differs from target shape {tuple(target.shape)}")
    target = target.to(logits.dtype)
    pos_weight = torch.as_tensor(foreground_weight / background_weight, dtype=logits.dtype, device=logits.device)
    loss = background_weight * F.binary_cross_entropy_with_logits(
        logits, target, pos_weight=pos_weight, reduction="none"
    )
    if reduction == LossReduction.MEAN:
        return loss.mean()
    if reduction == LossReduction.SUM:
        return loss.sum()
    if reduction == LossReduction.NONE:
        return loss
    raise ValueError(f"unsupported reduction {reduction!r}; use 'mean', 'sum' or 'none'")


class WeightedCrossEntropyLoss(nn.Module):
    """:func:`weighted_cross_entropy` as a loss module.

    Args:
        foreground_weight: weight of foreground (``y = 1``) terms, e.g. about 50 for LIDC nodules.
        background_weight: weight of background terms.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
    """

    def __init__(self, foreground_weight: float = 1.0, background_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.foreground_weight = float(foreground_weight)
        self.background_weight = float(background_weight)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return weighted_cross_entropy(logits, target, self.foreground_weight, self.background_weight, self.reduction)
