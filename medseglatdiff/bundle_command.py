"""The entry of every shipped bundle's run ids (``training``, ``inference``, ``evaluate``) under ``monai.bundle run``.

``python -m monai.bundle run training --config_file bundles/isic/train.json`` evaluates one expression of the
bundle file, which calls :func:`run`. Without ``--dataset_dir`` it uses the bundle's documented work folder
(``work/Dataset010_ISIC`` for isic, relative to the current folder); when that folder is not a planned dataset it
stops with one message that gives the commands preparing it. Every user error (:class:`MedsegError`) leaves as
that one message and exit status 1, not as MONAI's chained tracebacks; :func:`medseglatdiff.training.train`
(``medseg train``) turns it back into the :class:`MedsegError` it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseglatdiff.errors import BundleCommandError, MedsegError, user_error
from medseglatdiff.planning.plans_io import PLANS_FILE

RUN_IDS = ("training", "inference", "evaluate")


def run(
    run_id: str,
    settings: Mapping[str, Any],
    overlays: Sequence[str] = (),
    dataset_dir: str | os.PathLike = "",
    fold: int | str = 0,
    prepare: Sequence[str] = (),
    input_dir: str | os.PathLike = "",
    output_dir: str | os.PathLike = "",
    model_dir: str | os.PathLike = "",
) -> Any:
    """Run a bundle's ``run_id`` on ``dataset_dir`` (the work folder); see the module doc.

    Args:
        run_id: training, inference (predicts ``input_dir`` into ``output_dir`` when given, else the fold's
            validation cases) or evaluate.
        settings: the bundle's settings (merged over the shared ``configs/train.json``).
        overlays: extra shared configs (e.g. ``multi_gpu_train.json``).
        dataset_dir: the planned work folder (the bundle file's default: its documented one).
        fold: cross-validation fold, or "all".
        prepare: the commands that create ``dataset_dir`` (shown when it is missing).
        input_dir, output_dir, model_dir: raw images to predict, where to write, which trained model folder.
    """
    if run_id not in RUN_IDS:
        raise BundleCommandError(MedsegError(f"unknown run id {run_id!r}; a bundle runs one of {', '.join(RUN_IDS)}"))
    try:
        _check_work_folder(dataset_dir, prepare, needed=not (run_id == "inference" and model_dir))
        return _run(run_id, settings, list(overlays), dataset_dir, fold, input_dir, output_dir, model_dir)
    except BundleCommandError:
        raise
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        raise BundleCommandError(error) from None


def _run(
    run_id: str,
    settings: Mapping[str, Any],
    overlays: list[str],
    dataset_dir: str | os.PathLike,
    fold: int | str,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
) -> Any:
    if run_id == "training":
        from medseglatdiff.training import run_training

        return run_training(settings, overlays, dataset_dir=str(dataset_dir), fold=fold)
    from medseglatdiff.inference.bundle_runs import predict_validation_with_bundle, predict_with_bundle

    if run_id == "inference" and str(input_dir or "").strip():
        return predict_with_bundle(input_dir, output_dir, dataset_dir or None, settings, fold, model_dir or None)
    record, spec, predictions = predict_validation_with_bundle(
        dataset_dir, settings, fold, save_samples=run_id == "evaluate"
    )
    if run_id == "inference":
        return record
    from medseglatdiff.evaluation.evaluate import evaluate, summary_lines

    out = predictions.parent / "evaluation"
    summary = evaluate(predictions, spec.root, out=out, figures=bool(dict(settings).get("figures", True)))
    print("\n".join(summary_lines(summary, spec.root)))
    return summary


def _check_work_folder(dataset_dir: str | os.PathLike, prepare: Sequence[str], needed: bool) -> None:
    """A missing or unplanned work folder: one message with the commands that prepare it."""
    if not needed:
        return
    folder = str(dataset_dir or "").strip()
    if folder and (Path(folder) / PLANS_FILE).is_file():
        return
    where = (
        f"{folder}: not a planned dataset (no {PLANS_FILE})"
        if folder
        else "no work folder given (--dataset_dir is empty)"
    )
    steps = (
        "; then ".join(f"`{command}`" for command in prepare)
        if prepare
        else "`medseg plan_and_preprocess --dataset RAW --out WORK`"
    )
    raise MedsegError(f"{where}. Prepare it with {steps} (from {Path.cwd()}), or pass --dataset_dir WORK")
