"""Training of the latent diffusion segmenter: data, plan adapter, stages, and the bundle entry point.

``train(dataset_dir, bundle, fold, **overrides)`` is what ``medseg train`` calls; bundles call
:func:`run_bundle`. See ``docs/training.md``.
"""

from medseglatdiff.training.bundle import build_parser, bundle_path, configs_dir, flatten_settings, merge_settings, run_bundle, train
from medseglatdiff.training.data import (
    data_loader,
    inference_dataset,
    preprocessed_cases,
    training_dataset,
    validation_dataset,
)
from medseglatdiff.training.plans import case_groups, fold_split, training_plan
from medseglatdiff.training.splits import fold_cases, load_or_create_splits, make_splits
from medseglatdiff.training.stage import LossHistory, TrainingStage, load_trained, stage_finished

__all__ = [
    "LossHistory",
    "TrainingStage",
    "build_parser",
    "bundle_path",
    "case_groups",
    "configs_dir",
    "data_loader",
    "flatten_settings",
    "inference_dataset",
    "fold_cases",
    "fold_split",
    "load_or_create_splits",
    "load_trained",
    "make_splits",
    "merge_settings",
    "preprocessed_cases",
    "run_bundle",
    "stage_finished",
    "train",
    "training_dataset",
    "training_plan",
    "validation_dataset",
]
