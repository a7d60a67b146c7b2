"""Pieces that fit the three training stages onto MONAI's engines (``SupervisedTrainer``/``SupervisedEvaluator``).

No trainer subclass: each stage is a plain ``SupervisedTrainer`` given a ``prepare_batch``, an inferer, a
loss and handlers from this package (see ``configs/train.json``).
"""

from medseglatdiff.engines.checkpoint import (
    AtomicCheckpointSaver,
    RNGState,
    TransformRNGState,
    load_checkpoint,
    save_checkpoint,
)
from medseglatdiff.engines.distributed import (
    NullSummaryWriter,
    barrier,
    ddp,
    destroy_process_group,
    init_process_group,
    is_distributed,
    is_main_process,
    local_device,
    rank,
    summary_writer,
)
from medseglatdiff.engines.early_stopping import AutoencoderStopper, reconstruction_score
from medseglatdiff.engines.handlers import EnsembleImageGridHandler, EnsembleMeand, LatentScaleHandler, ensemble_grid
from medseglatdiff.engines.inferers import LatentEnsembleInferer
from medseglatdiff.engines.optimisation import GradientClipping, LearningRateLogger, warmup_polynomial_lr
from medseglatdiff.engines.prepare_batch import KeyPrepareBatch, LatentDiffusionPrepareBatch, unwrap
from medseglatdiff.engines.progress import TrainingProgress, parse_duration
from medseglatdiff.engines.weight_average import WeightAverage

__all__ = [
    "TrainingProgress",
    "parse_duration",
    "AutoencoderStopper",
    "reconstruction_score",
    "GradientClipping",
    "LearningRateLogger",
    "WeightAverage",
    "warmup_polynomial_lr",
    "AtomicCheckpointSaver",
    "EnsembleImageGridHandler",
    "EnsembleMeand",
    "KeyPrepareBatch",
    "LatentDiffusionPrepareBatch",
    "LatentEnsembleInferer",
    "LatentScaleHandler",
    "NullSummaryWriter",
    "RNGState",
    "TransformRNGState",
    "barrier",
    "ddp",
    "destroy_process_group",
    "ensemble_grid",
    "init_process_group",
    "is_distributed",
    "is_main_process",
    "local_device",
    "load_checkpoint",
    "rank",
    "save_checkpoint",
    "summary_writer",
    "unwrap",
]
