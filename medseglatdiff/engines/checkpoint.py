"""Atomic, resumable checkpoints for MONAI/Ignite trainers.

MONAI's ``CheckpointSaver`` writes in place (``atomic=False``), so a crash during ``torch.save`` can leave a
truncated file that a resumed run would trust. :class:`AtomicCheckpointSaver` writes a temporary file and
renames it (``medseglatdiff.io.atomic``), keeping one rolling ``checkpoint.pt`` per stage. A checkpoint
holds the ``state_dict`` of every object given (networks, optimizer, LR scheduler, the trainer's
epoch/iteration, latent scaling, :class:`RNGState`), and :func:`load_checkpoint` restores them with
``weights_only=True``.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from medseglatdiff.engines.distributed import is_main_process
from medseglatdiff.engines.prepare_batch import unwrap
from medseglatdiff.io.atomic import atomic_path
from medseglatdiff.io.torch_files import load_torch_file

logger = logging.getLogger(__name__)


class TransformRNGState:
    """The random generators of a dataset's MONAI transforms (``Randomizable.R``), as a checkpointable object.

    With ``num_workers=0`` the transforms run in the training process and their generators advance from epoch to
    epoch; without this object a resumed stage would draw the augmentations of its first epochs again. (Loader
    workers reseed their copies every epoch from the torch generator, which :class:`RNGState` restores.)
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def _transforms(self) -> list[Any]:
        from monai.transforms import Randomizable

        found: list[Any] = []

        def walk(transform: Any) -> None:
            if isinstance(transform, Randomizable):
                found.append(transform)
            for child in getattr(transform, "transforms", None) or []:
                walk(child)

        walk(getattr(self.dataset, "transform", None))
        return found

    def state_dict(self) -> dict[str, Any]:
        states = {}
        for index, transform in enumerate(self._transforms()):
            _, keys, pos, has_gauss, cached = transform.R.get_state()
            states[str(index)] = {
                "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            }
        return {"transforms": states}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state.get("transforms", {})
        for index, transform in enumerate(self._transforms()):
            if str(index) not in saved:
                continue
            item = saved[str(index)]
            generator = np.random.RandomState()
            keys = np.asarray(item["keys"].numpy(), dtype=np.uint32)
            generator.set_state(("MT19937", keys, int(item["pos"]), int(item["has_gauss"]), float(item["cached"])))
            transform.R = generator  # not set_random_state: on a Compose it would reseed the children


class RNGState:
    """The process's random generators (Python, NumPy global, torch CPU and CUDA) as a checkpointable object."""

    def state_dict(self) -> dict[str, Any]:
        keys, pos, has_gauss, cached = np.random.get_state()[1:]
        version, internal, gauss_next = random.getstate()
        state: dict[str, Any] = {
            "python": [version, list(internal), gauss_next],
            "numpy": {
                "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss_next = state["python"]
        random.setstate((int(version), tuple(int(i) for i in internal), gauss_next))
        numpy_state = state["numpy"]
        keys = np.asarray(numpy_state["keys"].numpy(), dtype=np.uint32)
        np.random.set_state(
            ("MT19937", keys, int(numpy_state["pos"]), int(numpy_state["has_gauss"]), float(numpy_state["cached"]))
        )
        torch.set_rng_state(state["torch"].cpu())
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def checkpoint_state(objects: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: state_dict}`` of every object, unwrapping DistributedDataParallel modules."""
    return {
        name: unwrap(obj).state_dict() if isinstance(obj, torch.nn.Module) else obj.state_dict()
        for name, obj in objects.items()
    }


def save_checkpoint(
    path: str | os.PathLike, objects: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write the objects' state (plus JSON-like ``extra``) to ``path`` atomically."""
    state = checkpoint_state(objects)
    if extra:
        state.update(extra)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike, objects: Mapping[str, Any], map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Restore ``objects`` in place from ``path`` (keys missing from the file are an error) and return the raw state.

    An Ignite engine among the objects gets its epoch and iteration back; its ``max_epochs`` and
    ``epoch_length`` stay as configured, so a resumed run can be given more epochs than the first one.

    Raises:
        BrokenFileError: the file is damaged (e.g. truncated by a full disk); the message says to delete it.
    """
    fix = f"delete it to restart this stage from its first epoch (rm {path}), then run the same command again"
    state = load_torch_file(path, fix, map_location=map_location)
    engines = {name: obj for name, obj in objects.items() if isinstance(obj, Engine)}
    kept = {name: (e.state.max_epochs, e.state.epoch_length) for name, e in engines.items()}
    Checkpoint.load_objects(to_load=dict(objects), checkpoint=state, strict=True)
    for name, engine in engines.items():
        max_epochs, epoch_length = kept[name]
        engine.state.max_epochs = max_epochs
        engine.state.epoch_length = epoch_length
        engine.state.epoch = min(engine.state.epoch, max_epochs) if max_epochs else engine.state.epoch
    return state


class AtomicCheckpointSaver:
    """Save ``objects`` to ``save_dir/filename`` every ``epoch_interval`` epochs and at completion, atomically.

    Only the main process writes (under ``torchrun`` every rank holds the same weights).

    Args:
        save_dir: folder of the checkpoint.
        objects: ``{name: object with state_dict()}``; include the trainer to resume epoch and iteration.
        filename: name of the rolling checkpoint file.
        epoch_interval: save every N epochs.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        objects: Mapping[str, Any],
        filename: str = "checkpoint.pt",
        epoch_interval: int = 1,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.objects = dict(objects)
        self.epoch_interval = max(int(epoch_interval), 1)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval), self)
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if is_main_process():
            save_checkpoint(self.path, self.objects)
            logger.debug("saved %s at epoch %d", self.path, engine.state.epoch)
