"""Stop an autoencoder stage when it is good enough: a validation target reached, or a plateau.

Every ``interval`` epochs :class:`AutoencoderStopper` scores the stage's network on the validation loader:

- ``metric="reconstruction_dice"`` (the mask VAE): Dice of ``sigmoid(decode(encode_mean(mask))) >= 0.5`` against
  the reference mask, per validation case with foreground, then averaged (a Dice pooled over the cases let large
  lesions hide badly reconstructed small ones: measured on the demo data, the pooled score reached 0.957 while the
  held-out cases of 14-46 pixels were reconstructed at Dice 0.44-0.61, the ceiling of every sample); higher is
  better. The mask VAE bounds every latent
  sample, so it must reconstruct the labels well, but training it longer than that is wasted time;
- ``metric="reconstruction_l1"`` (the image autoencoder): mean absolute reconstruction error; lower is better.

The stage ends when the score reaches ``target`` (when given) or has not improved by ``min_delta`` for
``patience`` evaluations; the reason is kept in ``engine.state.stop_reason`` (and so in the stage's
``done.json``), and the scores go to TensorBoard (``<tag>``) and ``engine.state.metrics``. When the stage ends
(plateau, budget or last epoch) with its final evaluation worse than an earlier one, the best evaluated weights are
restored (and the reason says so): the demo's mask VAE plateaued at 0.958 and ended at 0.922.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from ignite.engine import Engine, Events
from torch import nn

logger = logging.getLogger(__name__)

METRICS = {"reconstruction_dice": "mask", "reconstruction_l1": "image"}


def _foreground_channels(
    network: nn.Module, logits: torch.Tensor, encoded: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructed and reference foreground channels (binary), ignored voxels (-1) zero in both."""
    valid = (encoded >= 0).float()
    if getattr(network, "activation", "sigmoid") == "softmax":
        winner = logits.argmax(dim=1, keepdim=True)
        predicted = torch.zeros_like(logits).scatter_(1, winner, 1.0)[:, 1:]
        return predicted * valid[:, 1:], encoded.clamp(min=0)[:, 1:]
    return (torch.sigmoid(logits) >= 0.5).float() * valid, (encoded > 0).float()


@torch.no_grad()
def reconstruction_score(
    network: nn.Module, loader: Iterable[Any], metric: str, device: torch.device | str, key: str | None = None
) -> float:
    """The autoencoder's validation score (see the module docstring) over every batch of ``loader``."""
    key = key or METRICS[metric]
    was_training = network.training
    network.eval()
    per_case: list[float] = []
    intersection = union = total = 0.0
    count = 0
    for batch in loader:
        x = torch.as_tensor(batch[key]).float().to(device)
        z_mu, _ = network.encode(x)
        out = network.decode(z_mu)
        if metric == "reconstruction_dice":
            predicted, reference = _foreground_channels(network, out, x)
            dims = tuple(range(1, predicted.ndim))
            overlap, sizes = (predicted * reference).sum(dims), predicted.sum(dims) + reference.sum(dims)
            intersection += float(overlap.sum())
            union += float(sizes.sum())
            has_foreground = reference.sum(dims) > 0
            per_case += (2 * overlap[has_foreground] / sizes[has_foreground]).tolist()
        else:
            total += float((out - x).abs().sum())
            count += x.numel()
    network.train(was_training)
    if metric == "reconstruction_dice":
        if per_case:  # each case counts once: a tiny lesion as much as a large one
            return float(sum(per_case) / len(per_case))
        return 2 * intersection / union if union > 0 else 1.0
    return total / max(count, 1)


class AutoencoderStopper:
    """Ignite handler: score every ``interval`` epochs; terminate at ``target`` or after ``patience`` flat evaluations.

    Args:
        network: the autoencoder being trained (its unwrapped module under DDP).
        loader: validation batches (``mask`` / ``image`` keys).
        metric: ``"reconstruction_dice"`` or ``"reconstruction_l1"``.
        target: stop once the score is at least (Dice) / at most (L1) this; None: plateau only.
        patience: evaluations without an improvement of ``min_delta`` before stopping (0: never on a plateau).
        min_delta: the smallest change that counts as an improvement.
        interval: epochs between evaluations.
        summary_writer: TensorBoard writer (or None).
        tag: TensorBoard tag of the score.
    """

    def __init__(
        self,
        network: nn.Module,
        loader: Iterable[Any],
        metric: str = "reconstruction_dice",
        target: float | None = None,
        patience: int = 0,
        min_delta: float = 0.0,
        interval: int = 1,
        summary_writer: Any = None,
        tag: str | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        self.network = network
        self.loader = loader
        self.metric = metric
        self.higher_is_better = metric == "reconstruction_dice"
        self.target = None if target is None else float(target)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.interval = max(int(interval), 1)
        self.writer = summary_writer
        self.tag = tag or f"val_{metric}"
        self.best: float | None = None
        self.flat = 0
        self.history: list[tuple[int, float]] = []
        self.top: tuple[int, float] | None = None  # the best evaluation (epoch, score) and its weights
        self.top_weights: dict[str, torch.Tensor] | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)
        engine.add_event_handler(Events.COMPLETED, self.restore_best)

    def restore_best(self, engine: Engine) -> None:
        """At the end of the stage, go back to the best evaluated weights when the last evaluation (of the final
        weights) scored worse: a stage that ends on a plateau, a budget or its last epoch keeps its best network."""
        if self.top is None or self.top_weights is None or not self.history:
            return
        last_epoch, last_score = self.history[-1]
        top_epoch, top_score = self.top
        if last_epoch != int(engine.state.epoch) or not self._strictly_better(top_score, last_score):
            return
        self.network.load_state_dict(self.top_weights)
        note = f"the weights of epoch {top_epoch} ({self.tag} {top_score:.4f}) restored"
        engine.state.metrics[self.tag] = top_score
        reason = getattr(engine.state, "stop_reason", None) or f"all {engine.state.max_epochs} epochs trained"
        engine.state.stop_reason = f"{reason}; {note}"
        logger.info("%s", note)

    def _strictly_better(self, score: float, than: float) -> bool:
        return score > than if self.higher_is_better else score < than

    def _better(self, score: float, than: float) -> bool:
        return score > than + self.min_delta if self.higher_is_better else score < than - self.min_delta

    def _reached(self, score: float) -> bool:
        if self.target is None:
            return False
        return score >= self.target if self.higher_is_better else score <= self.target

    def __call__(self, engine: Engine) -> None:
        score = reconstruction_score(self.network, self.loader, self.metric, engine.state.device)
        epoch = int(engine.state.epoch)
        self.history.append((epoch, score))
        engine.state.metrics[self.tag] = score
        if self.writer is not None:
            self.writer.add_scalar(self.tag, score, epoch)
        logger.info("epoch %d: %s %.4f", epoch, self.tag, score)
        if self.top is None or self._strictly_better(score, self.top[1]):
            self.top = (epoch, score)
            self.top_weights = {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}
        if self._reached(score):
            engine.state.stop_reason = f"{self.tag} {score:.4f} reached the target {self.target:g} at epoch {epoch}"
            engine.terminate()
            return
        if self.best is None or self._better(score, self.best):
            self.best, self.flat = score, 0
            return
        self.flat += 1
        if self.patience and self.flat >= self.patience:
            engine.state.stop_reason = (
                f"{self.tag} plateaued at {self.best:.4f} (no gain of {self.min_delta:g} in {self.patience} "
                f"evaluations) at epoch {epoch}"
            )
            engine.terminate()

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "flat": self.flat,
            "history": list(self.history),
            "top": self.top,
            "top_weights": self.top_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.flat = state.get("best"), int(state.get("flat", 0))
        self.history = [tuple(h) for h in state.get("history", [])]
        self.top = tuple(state["top"]) if state.get("top") is not None else None
        self.top_weights = state.get("top_weights")
