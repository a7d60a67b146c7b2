"""One training stage: run a MONAI trainer with resume, atomic checkpoints and a "finished" marker.

Layout of a stage folder::

    <output_dir>/<stage>/checkpoint.pt   rolling checkpoint (every N epochs and at the end), written atomically
    <output_dir>/<stage>/model.pt        the trained weights (+ latent scaling for the denoiser), for later stages
    <output_dir>/<stage>/done.json       written last: the stage is finished and is skipped from then on

A run that finds ``done.json`` skips the stage; one that finds only ``checkpoint.pt`` restores every
object in it (weights, optimizer, LR scheduler, epoch/iteration, latent scale factors, RNG state) and
continues from the last saved epoch. Delete the stage folder to train it again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events

from medseglatdiff.engines.checkpoint import AtomicCheckpointSaver, load_checkpoint, save_checkpoint
from medseglatdiff.engines.distributed import barrier, is_main_process
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.torch_files import load_torch_file, readable_torch_file

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
DONE_FILE = "done.json"


def stage_finished(stage_dir: str | os.PathLike) -> bool:
    """True when the stage wrote its ``done.json`` marker and its ``model.pt`` is readable."""
    stage_dir = Path(stage_dir)
    return (stage_dir / DONE_FILE).is_file() and readable_torch_file(stage_dir / MODEL_FILE)


def load_trained(
    network: torch.nn.Module, stage_dir: str | os.PathLike, key: str = "network", freeze: bool = True
) -> torch.nn.Module:
    """Load a finished stage's weights from ``stage_dir/model.pt`` into ``network`` (frozen, eval mode by default).

    Raises:
        MedsegError: the stage has not finished (its model file is missing) or its model file is unreadable.
    """
    path = Path(stage_dir) / MODEL_FILE
    if not path.is_file():
        raise MedsegError(
            f"{path}: missing; the stage '{Path(stage_dir).name}' must finish before the next one (re-run training)"
        )
    fix = (
        f"re-run the training command: a stage whose {MODEL_FILE} is unreadable is trained again "
        f"(from its checkpoint.pt when that is readable)"
    )
    state = load_torch_file(path, fix)
    network.load_state_dict(state[key])
    if freeze:
        network.eval().requires_grad_(False)
    return network


class LossHistory:
    """Mean training loss of each epoch (checkpointed, so a resumed stage reports its whole history)."""

    def __init__(self) -> None:
        self.epoch_losses: list[float] = []
        self._sum = 0.0
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._close_epoch)

    def _reset(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0

    def _accumulate(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output.get("loss") if isinstance(output, Mapping) else None
        if loss is not None:
            self._sum += float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            self._count += 1

    def _close_epoch(self, engine: Engine) -> None:
        if self._count:
            self.epoch_losses.append(self._sum / self._count)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_losses": list(self.epoch_losses)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch_losses = [float(v) for v in state["epoch_losses"]]


class TrainingStage:
    """Run ``trainer`` once: skip when finished, resume from ``checkpoint.pt``, save ``model.pt`` and ``done.json``.

    Args:
        name: stage name (used in logs and the marker).
        stage_dir: the stage's folder.
        trainer: a MONAI ``SupervisedTrainer`` (handlers already attached).
        checkpoint: objects saved in and restored from the checkpoint (include the trainer itself).
        model: objects whose ``state_dict`` forms ``model.pt`` (e.g. ``{"network": net, "scaling": scaling}``).
        checkpoint_interval: save a checkpoint every N epochs (and always at the end).
        map_location: where checkpoint tensors are loaded.
        enabled: False skips the training (e.g. the image autoencoder when the denoiser does not use it): the
            stage writes its untrained ``model.pt`` and a ``done.json`` with ``skipped`` = ``skip_reason``.
        skip_reason: why the stage is not trained.
        progress: the run's :class:`~medseglatdiff.engines.TrainingProgress`, told when the stage is not trained (its
            share of a time budget goes to the later stages).
    """

    def __init__(
        self,
        name: str,
        stage_dir: str | os.PathLike,
        trainer: Engine,
        checkpoint: Mapping[str, Any],
        model: Mapping[str, Any],
        checkpoint_interval: int = 1,
        map_location: str | torch.device | None = "cpu",
        enabled: bool = True,
        skip_reason: str = "",
        progress: Any = None,
    ) -> None:
        self.name = name
        self.stage_dir = Path(stage_dir)
        self.trainer = trainer
        self.history = LossHistory()
        self.checkpoint_objects = {**dict(checkpoint), "history": self.history}
        self.model_objects = dict(model)
        self.checkpoint_interval = checkpoint_interval
        self.map_location = map_location
        self.enabled = bool(enabled)
        self.skip_reason = skip_reason or "disabled"
        self.progress = progress

    @property
    def finished(self) -> bool:
        return stage_finished(self.stage_dir)

    def run(self) -> dict[str, Any] | None:
        """Train (or skip, or resume) the stage; returns the content of ``done.json``."""
        marker = self.stage_dir / DONE_FILE
        broken = marker.is_file() and not readable_torch_file(self.stage_dir / MODEL_FILE)
        finished = marker.is_file() and not broken
        barrier()  # every rank has looked at the marker before any rank writes one (else a rank skips, one waits)
        if broken:
            logger.warning(
                "stage %s: %s is missing or unreadable although %s exists; training the stage again",
                self.name,
                self.stage_dir / MODEL_FILE,
                marker,
            )
            if is_main_process():
                marker.unlink(missing_ok=True)
        if finished:
            logger.info("stage %s already finished (%s): skipped", self.name, marker)
            if self.progress is not None:
                self.progress.skip(self.name)
            return None
        if not self.enabled:
            if self.progress is not None:
                self.progress.skip(self.name)
            return self._skip(marker)
        checkpoint = self.stage_dir / CHECKPOINT_FILE
        if checkpoint.is_file():
            load_checkpoint(checkpoint, self.checkpoint_objects, map_location=self.map_location)
            logger.info(
                "stage %s: resuming from %s at epoch %d / %s",
                self.name,
                checkpoint,
                self.trainer.state.epoch,
                self.trainer.state.max_epochs,
            )
        else:
            logger.info("stage %s: starting, %s epochs", self.name, self.trainer.state.max_epochs)
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        self.history.attach(self.trainer)
        AtomicCheckpointSaver(
            self.stage_dir, self.checkpoint_objects, CHECKPOINT_FILE, self.checkpoint_interval
        ).attach(self.trainer)
        started = time.time()
        max_epochs = self.trainer.state.max_epochs
        if max_epochs is not None and self.trainer.state.epoch >= max_epochs:
            logger.info(
                "stage %s: the checkpoint already holds all %d epochs", self.name, max_epochs
            )  # crash before done.json
        else:
            self.trainer.run()
        stop_reason = getattr(self.trainer.state, "stop_reason", None)
        if stop_reason is None:
            stop_reason = f"all {self.trainer.state.max_epochs} epochs trained"
        summary = {
            "stage": self.name,
            "epochs": int(self.trainer.state.epoch),
            "iterations": int(self.trainer.state.iteration),
            "epoch_losses": self.history.epoch_losses,
            "metrics": {k: float(v) for k, v in self.trainer.state.metrics.items() if isinstance(v, (int, float))},
            "best_metric": float(getattr(self.trainer.state, "best_metric", -1)),
            "stop_reason": stop_reason,
            "seconds_this_run": round(time.time() - started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if is_main_process():
            save_checkpoint(self.stage_dir / MODEL_FILE, self.model_objects)
            write_json_atomic(marker, summary)
        barrier()
        logger.info(
            "stage %s finished: %d epochs, epoch losses %s",
            self.name,
            summary["epochs"],
            [round(v, 5) for v in summary["epoch_losses"]],
        )
        return summary

    def _skip(self, marker: Path) -> dict[str, Any]:
        summary = {
            "stage": self.name,
            "epochs": 0,
            "iterations": 0,
            "epoch_losses": [],
            "metrics": {},
            "skipped": self.skip_reason,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if is_main_process():
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self.stage_dir / MODEL_FILE, self.model_objects)
            write_json_atomic(marker, summary)
        barrier()
        logger.info("stage %s not trained: %s", self.name, self.skip_reason)
        return summary
