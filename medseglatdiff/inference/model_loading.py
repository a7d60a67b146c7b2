"""Find the trained folds of a model folder and rebuild their networks for sampling.

``TRAINED_DIR`` is either a configuration folder ``WORK/results/<bundle>/<configuration>`` holding ``fold_K/``
folders, or one ``fold_K`` folder. A fold is trained when its three stages wrote ``done.json`` and ``model.pt``;
its networks are rebuilt from ``model.json`` (see :mod:`medseglatdiff.training.model_info`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.networks import (
    LatentDiffusionSegmenter,
    LatentScaling,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
)
from medseglatdiff.training.model_info import NETWORKS, load_model_info, load_preprocessing
from medseglatdiff.training.stage import DONE_FILE, MODEL_FILE, load_trained

TRAIN_HINT = (
    "train it first (`medseg train WORK --bundle NAME --fold K`, or `python -m monai.bundle run training "
    "--config_file bundles/NAME/train.json --dataset_dir WORK --fold K`) "
    "and pass --model WORK/results/NAME/CONFIGURATION"
)


class UntrainedModelError(MedsegError):
    """The model folder holds no finished training."""


@dataclass
class TrainedFold:
    """One trained fold, ready to sample.

    Attributes:
        path: the ``fold_K`` folder.
        info: its ``model.json``.
        preprocessing: the plan's preprocessing block for its configuration.
        segmenter: the three networks and the latent scale factors, in eval mode.
    """

    path: Path
    info: dict[str, Any]
    preprocessing: dict[str, Any]
    segmenter: LatentDiffusionSegmenter

    @property
    def name(self) -> str:
        return self.path.name


def is_fold_dir(path: Path) -> bool:
    """A fold folder holds stage folders (or its model.json), not ``fold_K`` sub-folders."""
    return any((path / stage).is_dir() for stage in NETWORKS) or (path / "model.json").is_file()


def unfinished_stages(fold_dir: Path) -> list[str]:
    """Stages of ``fold_dir`` without both ``done.json`` and ``model.pt``."""
    return [s for s in NETWORKS if not ((fold_dir / s / DONE_FILE).is_file() and (fold_dir / s / MODEL_FILE).is_file())]


def _fold_key(path: Path) -> tuple[int, str]:
    suffix = path.name[len("fold_") :]
    return (int(suffix), "") if suffix.isdigit() else (10**6, suffix)


def _suggestion(model: Path) -> str:
    """'did you mean' the trained configuration folders below ``model`` (a WORK or results folder), if any."""
    found = sorted(
        {
            str(done.parents[2])
            for pattern in ("*/*/*/fold_*", "*/*/fold_*", "*/fold_*")
            for done in model.glob(f"{pattern}/denoiser/{DONE_FILE}")
        }
    )
    return f"did you mean {' or '.join(found[:3])}?" if found else ""


def find_folds(model: str | os.PathLike, fold: int | str | None = None) -> list[Path]:
    """The trained fold folders to use.

    Args:
        model: a configuration folder (with ``fold_K/``) or one ``fold_K`` folder.
        fold: ``K`` for ``fold_K`` only; None or ``"all"`` for every trained fold (``fold_all`` included).

    Raises:
        UntrainedModelError: the folder is missing, holds no trained fold, or the requested fold is not
            trained; the message names the folder, what is missing and how to train it.
    """
    model = Path(model)
    if not model.is_dir():
        raise UntrainedModelError(f"{model}: model folder not found; {TRAIN_HINT}")
    wanted = None if fold is None or str(fold).lower() == "all" else f"fold_{fold}"
    if is_fold_dir(model):
        if wanted is not None and model.name != wanted:
            raise UntrainedModelError(
                f"{model}: is one fold folder but --fold {fold} was asked; "
                f"pass the configuration folder {model.parent} or drop --fold"
            )
        candidates = [model]
    else:
        candidates = sorted((p for p in model.glob("fold_*") if p.is_dir()), key=_fold_key)
        if wanted is not None:
            candidates = [p for p in candidates if p.name == wanted]
            if not candidates:
                raise UntrainedModelError(
                    f"{model / wanted}: not found "
                    f"(fold folders here: {', '.join(p.name for p in model.glob('fold_*')) or 'none'}); {TRAIN_HINT}"
                )
    if not candidates:
        raise UntrainedModelError(
            f"{model}: not a trained model (no fold_K folder with finished stages); {_suggestion(model) or TRAIN_HINT}"
        )
    trained = [p for p in candidates if not unfinished_stages(p)]
    if wanted is not None or not trained:
        for path in candidates:
            missing = unfinished_stages(path)
            if missing:
                raise UntrainedModelError(
                    f"{path}: not trained, stage(s) {', '.join(missing)} have no {DONE_FILE}/{MODEL_FILE}; "
                    f"re-run its training command to finish them (finished stages are skipped)"
                )
    return trained


def build_segmenter(info: dict[str, Any]) -> LatentDiffusionSegmenter:
    """The three networks of ``model.json``, untrained (weights come from the stage folders)."""
    nets = info["networks"]
    return LatentDiffusionSegmenter(
        image_autoencoder(**nets["image_autoencoder"]),
        mask_autoencoder(**nets["mask_autoencoder"]),
        latent_denoiser(**nets["denoiser"]),
        LatentScaling(),
        conditioning=str(info.get("conditioning", "image_latent")),
    )


def load_fold(fold_dir: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedFold:
    """Rebuild one trained fold's networks, load their weights and latent scale factors, move them to ``device``."""
    fold_dir = Path(fold_dir)
    info = load_model_info(fold_dir)
    preprocessing = load_preprocessing(fold_dir, info["configuration"])
    segmenter = build_segmenter(info)
    try:
        load_trained(segmenter.image_autoencoder, fold_dir / "image_autoencoder")
        load_trained(segmenter.mask_autoencoder, fold_dir / "mask_autoencoder")
        load_trained(segmenter.denoiser, fold_dir / "denoiser")
        load_trained(segmenter.scaling, fold_dir / "denoiser", key="scaling")
    except RuntimeError as exc:  # state dict does not fit the networks of model.json
        raise MedsegError(
            f"{fold_dir}: the weights do not fit the networks described in model.json ({exc}); "
            "re-run the training command"
        ) from exc
    if not segmenter.scaling.is_set:
        raise MedsegError(
            f"{fold_dir / 'denoiser' / MODEL_FILE}: the latent scale factors are not set; "
            f"retrain the denoiser (delete {fold_dir / 'denoiser'})"
        )
    segmenter.to(torch.device(device)).eval()
    return TrainedFold(fold_dir, info, preprocessing, segmenter)


def check_compatible(folds: list[TrainedFold]) -> None:
    """Folds pooled into one ensemble must share the preprocessing, dimensions and channels."""
    first = folds[0]
    for other in folds[1:]:
        for key in ("configuration", "spatial_dims", "num_channels", "slice_axis"):
            if other.info.get(key) != first.info.get(key):
                raise MedsegError(
                    f"{other.path}: {key} {other.info.get(key)!r} differs from {first.path} ({first.info.get(key)!r}); "
                    "predict with one of them (--fold K)"
                )
        if other.preprocessing != first.preprocessing:
            raise MedsegError(
                f"{other.path}: planned preprocessing differs from {first.path}; "
                "the folds come from different plans, predict with one of them (--fold K)"
            )
