"""Where cross-validation and model selection write, below the trained model folder.

::

    MODEL/                                     WORK/results/<bundle>/<configuration> (holds fold_K/)
      model_selection.json                     what find_best_configuration chose; `medseg predict` reads it
      inference_instructions.md                the exact commands to predict, evaluate and export with it
      crossval/
        cv_summary.json, cv_summary.md         metrics, mean ± std over folds and over cases
        per_case.csv                           every validation case of every fold, with its fold
        fold_K/                                the fold's validation predictions in `medseg predict`'s layout
                                               (mask, probability/, confidence/, samples/, overlays/, prediction.json)
          evaluation/                          `medseg evaluate` of it: per_case.csv, summary.json, figures/
        samples/steps_SSS/fold_K/<case>.npz    every sample's probability on the original grid (uint8, 1/255)
        selection/                             frontier.csv, frontier.md, frontier.png, thresholds.csv, selection.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CROSSVAL_DIR = "crossval"
SUMMARY_FILE = "cv_summary.json"
INSTRUCTIONS_FILE = "inference_instructions.md"


@dataclass(frozen=True)
class CrossvalLayout:
    """File names of one model's cross-validation and model selection."""

    model_dir: Path

    @property
    def root(self) -> Path:
        return self.model_dir / CROSSVAL_DIR

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def summary_table(self) -> Path:
        return self.root / "cv_summary.md"

    @property
    def per_case(self) -> Path:
        return self.root / "per_case.csv"

    def predictions(self, fold: int) -> Path:
        return self.root / f"fold_{fold}"

    def samples(self, steps: int, fold: int, case: str) -> Path:
        return self.root / "samples" / f"steps_{int(steps):03d}" / f"fold_{fold}" / f"{case}.npz"

    @property
    def selection(self) -> Path:
        return self.root / "selection"

    @property
    def instructions(self) -> Path:
        return self.model_dir / INSTRUCTIONS_FILE
