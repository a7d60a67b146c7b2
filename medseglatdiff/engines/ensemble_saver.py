"""Write each case's sampled ensemble and its scores, for the bundles' ``inference`` and ``evaluate`` runs.

Per case ``<save_dir>/<case>.npz`` holds (in the preprocessed space of the case) ``samples`` ``(N, *spatial)``
float16 probabilities, ``mean``, ``mask`` (mean >= threshold) and ``confidence`` (1 - binary entropy of the
mean, see :mod:`medseglatdiff.engines.ensemble_summary`). ``summary.json`` lists per-case Dice of the mask against
the reference label and, with ``multirater=True`` and rater masks, GED and HM-IoU of the binarised samples
against the raters (:mod:`medseglatdiff.evaluation.multirater`), plus their means.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medseglatdiff.engines.distributed import is_main_process
from medseglatdiff.engines.ensemble_summary import summarize_samples
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
    """

    def __init__(self, save_dir: str | os.PathLike, threshold: float = 0.5, multirater: bool = False) -> None:
        self.save_dir = Path(save_dir)
        self.threshold = float(threshold)
        self.multirater = bool(multirater)
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.save_iteration)
        engine.add_event_handler(Events.COMPLETED, self.write_summary)

    def score(self, samples: np.ndarray, label: np.ndarray | None, raters: np.ndarray | None) -> dict[str, float]:
        """Dice of the ensemble mask (and GED / HM-IoU of the samples against the raters when asked)."""
        scores: dict[str, float] = {}
        summary = summarize_samples(samples, self.threshold)
        if label is not None:
            scores["dice"] = float(pairwise_dice([summary.mask], [label > 0])[0, 0])
        if self.multirater and raters is not None and len(raters):
            binary = [s >= self.threshold for s in samples]
            scores["ged"] = generalized_energy_distance(binary, list(raters > 0))
            scores["hm_iou"] = hungarian_matched_iou(binary, list(raters > 0))
        return scores

    def save_iteration(self, engine: Engine) -> None:
        outputs: Sequence[Mapping[str, Any]] = engine.state.output or []
        batches: Sequence[Mapping[str, Any]] = engine.state.batch or []
        for output, batch in zip(outputs, batches):
            case = str(batch.get("case", f"case_{len(self.rows):04d}"))
            samples = _array(output["pred"])
            label = _array(batch["label"])[0] if "label" in batch else None
            raters = _array(batch["raters"]) if "raters" in batch else None
            summary = summarize_samples(samples, self.threshold)
            if is_main_process():
                with atomic_path(self.save_dir / f"{case}.npz") as tmp:
                    with open(tmp, "wb") as handle:
                        np.savez_compressed(
                            handle,
                            samples=samples.astype(np.float16),
                            mean=summary.mean,
                            mask=summary.mask,
                            confidence=summary.confidence,
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
