"""Write each case's sampled ensemble and its scores, for the bundles' ``inference`` and ``evaluate`` runs.

Per case ``<save_dir>/<case>.npz`` holds (in the preprocessed space of the case) ``samples`` ``(N, *spatial)``
float16 probabilities, ``mean``, ``mask`` (the label map: mean >= threshold for one class) and ``confidence``
(1 - binary entropy of the mean, see :mod:`medseglatdiff.engines.ensemble_summary`); with several classes or
regions ``samples`` is ``(N, K, *spatial)`` and ``mean`` / ``confidence`` ``(K, *spatial)``. ``summary.json``
lists per-case Dice of the mask against the reference label (the mean over classes/regions) and, with
``multirater=True`` and rater masks, GED and HM-IoU of the samples against the raters
(:mod:`medseglatdiff.evaluation.multirater`, per channel then averaged), plus their means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.engines.distributed import is_main_process
from medseglatdiff.engines.ensemble_summary import label_map_of, summarize_ensemble
from medseglatdiff.evaluation.multirater import generalized_energy_distance, hungarian_matched_iou, pairwise_dice
from medseglatdiff.io.atomic import atomic_path, write_json_atomic


def _array(value: Any) -> np.ndarray:
    return np.asarray(torch.as_tensor(value).detach().float().cpu())


class EnsembleSaver:
    """Save ensembles and scores of a ``SupervisedEvaluator`` whose decollated output holds ``pred`` samples.

    Args:
        save_dir: output folder.
        threshold: probability at which the mean becomes the mask.
        multirater: also score the samples against the rater masks (GED, HM-IoU).
        labels: the plan's label scheme (JSON form; None: one binary class).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        threshold: float = 0.5,
        multirater: bool = False,
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.threshold = float(threshold)
        self.multirater = bool(multirater)
        self.scheme = LabelScheme.from_json(labels) if labels else None
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.save_iteration)
        engine.add_event_handler(Events.COMPLETED, self.write_summary)

    def _channels(self, label_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, *spatial)`` foreground channels of a label map and its valid (not ignored) voxels."""
        if self.scheme is None:
            return (label_map > 0)[None], np.ones(label_map.shape, dtype=bool)
        return self.scheme.channel_masks(label_map), self.scheme.valid(label_map)

    def score(self, samples: np.ndarray, label: np.ndarray | None, raters: np.ndarray | None) -> dict[str, float]:
        """Dice of the ensemble mask (and GED / HM-IoU of the samples against the raters when asked), averaged
        over the foreground channels; ``samples`` ``(N, K, *spatial)``."""
        scores: dict[str, float] = {}
        summary = summarize_ensemble(samples, self.scheme, self.threshold)
        predicted, _ = self._channels(summary.label_map)
        if label is not None:
            reference, valid = self._channels(label)
            scores["dice"] = float(
                np.mean([pairwise_dice([p & valid], [r & valid])[0, 0] for p, r in zip(predicted, reference)])
            )
        if self.multirater and raters is not None and len(raters):
            sampled = [self._channels(label_map_of(s, self.scheme, self.threshold))[0] for s in samples]
            rated = [self._channels(r)[0] for r in raters]
            channels = range(predicted.shape[0])
            scores["ged"] = float(
                np.mean([generalized_energy_distance([s[k] for s in sampled], [r[k] for r in rated]) for k in channels])
            )
            scores["hm_iou"] = float(
                np.mean([hungarian_matched_iou([s[k] for s in sampled], [r[k] for r in rated]) for k in channels])
            )
        return scores

    def save_iteration(self, engine: Engine) -> None:
        outputs: Sequence[Mapping[str, Any]] = engine.state.output or []
        batches: Sequence[Mapping[str, Any]] = engine.state.batch or []
        for output, batch in zip(outputs, batches):
            case = str(batch.get("case", f"case_{len(self.rows):04d}"))
            samples = _array(output["pred"])  # (N, K, *spatial)
            label = _array(batch["label"])[0].astype(np.int64) if "label" in batch else None
            raters = _array(batch["raters"]).astype(np.int64) if "raters" in batch else None
            if label is not None and samples.ndim == label.ndim + 1:  # (N, *spatial): one channel
                samples = samples[:, None]
            summary = summarize_ensemble(samples, self.scheme, self.threshold)
            one = samples.shape[1] == 1  # one channel: stored without the channel axis, as before label kinds
            if is_main_process():
                with atomic_path(self.save_dir / f"{case}.npz") as tmp:
                    with open(tmp, "wb") as handle:
                        np.savez_compressed(
                            handle,
                            samples=(samples[:, 0] if one else samples).astype(np.float16),
                            mean=summary.mean[0] if one else summary.mean,
                            mask=summary.label_map,
                            confidence=summary.confidence[0] if one else summary.confidence,
                        )
            self.rows.append({"case": case, **self.score(samples, label, raters)})

    def write_summary(self, engine: Engine) -> None:
        if not is_main_process():
            return
        keys = sorted({k for row in self.rows for k in row if k != "case"})
        means = {k: float(np.mean([row[k] for row in self.rows if k in row])) for k in keys}
        write_json_atomic(
            self.save_dir / "summary.json", {"threshold": self.threshold, "mean": means, "cases": self.rows}
        )
