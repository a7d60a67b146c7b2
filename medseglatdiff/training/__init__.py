"""Training of the latent diffusion segmenter: data, plan adapter, stages, and the bundle entry point.

``train(dataset_dir, bundle, fold, **overrides)`` is what ``medseg train`` calls; bundles call
:func:`run_training`. See ``docs/training.md``.
"""

from medseglatdiff.resources import configs_dir
from medseglatdiff.training.bundle import (
    build_parser,
    bundle_path,
    flatten_settings,
    layered_settings,
    nested_settings,
    run_training,
    train,
)
from medseglatdiff.training.data import (
    data_loader,
    preprocessed_cases,
    training_dataset,
    validation_dataset,
)
from medseglatdiff.training.plans import case_groups, case_strata, fold_split, read_case_groups, training_plan
from medseglatdiff.training.splits import (
    SplitsError,
    fold_cases,
    install_splits,
    load_or_create_splits,
    make_splits,
    read_splits,
    validate_splits,
)
from medseglatdiff.training.stage import LossHistory, TrainingStage, load_trained, stage_finished

__all__ = [
    "LossHistory",
    "SplitsError",
    "TrainingStage",
    "build_parser",
    "bundle_path",
    "case_groups",
    "case_strata",
    "configs_dir",
    "data_loader",
    "flatten_settings",
    "fold_cases",
    "fold_split",
    "install_splits",
    "load_or_create_splits",
    "load_trained",
    "make_splits",
    "layered_settings",
    "nested_settings",
    "preprocessed_cases",
    "read_case_groups",
    "read_splits",
    "run_training",
    "stage_finished",
    "train",
    "training_dataset",
    "training_plan",
    "validate_splits",
    "validation_dataset",
]
