"""``medseg cv``: train every fold, predict its validation cases, evaluate them, and summarise over folds.

For each requested fold K of ``WORK/splits_final.json`` (made grouped and stratified when missing, see
:mod:`medseglatdiff.training.splits`; or a file of your own via ``splits``):

1. train the bundle on fold K (:func:`medseglatdiff.training.train`; finished stages are skipped, so a trained
   fold costs nothing);
2. predict fold K's validation cases from the **raw** dataset, as ``medseg predict`` would predict new images:
   mask, probability, confidence, samples, overlay, in the case's original geometry; every sample's probability
   is kept as well (:mod:`medseglatdiff.crossval.samples`) for model selection;
3. evaluate them with ``medseg evaluate`` (Dice, IoU, HD95, ASSD; GED, HM-IoU, CI, ECE with raters).

Then the folds are pooled (:mod:`medseglatdiff.crossval.summary`). Everything is resumable: a case whose stored
samples match the settings is not sampled again, so re-running after an interruption (or with more folds)
only does what is missing. Where the files go: :mod:`medseglatdiff.crossval.layout`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseglatdiff.crossval.context import CrossvalContext
from medseglatdiff.crossval.layout import CrossvalLayout
from medseglatdiff.crossval.samples import save_samples, stored
from medseglatdiff.crossval.summary import aggregate, read_rows, summary_table, without_nan, write_per_case
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.inputs import InputCase, dataset_input_case
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.inference.predict import predict_cases
from medseglatdiff.io.atomic import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CV_VERSION = 1
DEFAULT_NUM_SAMPLES = 16


def raw_dataset(context: CrossvalContext, raw: str | os.PathLike | None) -> DatasetSpec:
    """The raw dataset of the plan (or ``raw``), whose images are predicted and whose labels score them."""
    path = Path(raw) if raw else Path(str(context.plan.get("raw_dataset") or ""))
    if not str(path) or not (path / "dataset.json").is_file():
        hint = "pass --raw RAW" if not raw else "check --raw"
        raise MedsegError(
            f"{path}: raw dataset not found (plans.json names it as the planned dataset); "
            f"{hint} with the folder that was planned"
        )
    return DatasetSpec.load(path)


def prepare_splits(
    context: CrossvalContext, num_folds: int = 5, splits: str | os.PathLike | None = None
) -> tuple[list[dict[str, list[str]]], dict[str, Any]]:
    """The folds to use and a record of them; creates or installs ``WORK/splits_final.json`` and checks it.

    Raises:
        SplitsError: a given or existing splits file is malformed, names unknown cases, overlaps, or puts one
            group (patient) on both sides of a fold.
    """
    from medseglatdiff.training import (
        case_groups,
        case_strata,
        install_splits,
        load_or_create_splits,
        preprocessed_cases,
        read_case_groups,
    )
    from medseglatdiff.training.splits import SPLITS_FILE, read_splits, splitting_method, validate_splits

    cases = preprocessed_cases(context.plan["data_folder"])
    path = context.work / SPLITS_FILE
    method = "existing file (kept as it is)"
    if splits is not None:
        recorded = read_case_groups(context.work)
        groups = recorded if recorded is not None else _groups_or_empty(context)
        folds = install_splits(context.work, splits, cases, groups)
        method = f"user file {splits}"
    elif path.is_file():
        groups = _groups_or_empty(context)
        folds = read_splits(path)
        for warning in validate_splits(folds, cases, groups, str(path)):
            logger.warning(warning)
    else:
        groups = case_groups(context.plan, context.work)
        strata = case_strata(context.plan["data_folder"], cases)
        folds = load_or_create_splits(
            context.work, cases, groups, num_folds=num_folds, seed=context.seed, strata=strata
        )
        method = f"{splitting_method(groups, strata)} (seed {context.seed})"
    group_folds: dict[str, set[int]] = {}
    for k, fold in enumerate(folds):
        for case in fold["val"]:
            if case in groups:
                group_folds.setdefault(groups[case], set()).add(k)
    straddling = sorted(g for g, f in group_folds.items() if len(f) > 1)
    check = (
        (
            f"{len(group_folds)} groups, each validated in exactly one fold"
            if not straddling
            else f"groups in several folds: {', '.join(straddling)}"
        )
        if groups
        else "no groups known"
    )
    record = {
        "file": str(path),
        "method": method,
        "num_folds": len(folds),
        "group_kind": _group_kind(context),
        "groups_check": check,
    }
    return folds, record


def _groups_or_empty(context: CrossvalContext) -> dict[str, str]:
    from medseglatdiff.training import case_groups

    try:
        return case_groups(context.plan, context.work)
    except MedsegError as exc:
        logger.warning("%s; the splits' groups are not checked", exc)
        return {}


def _group_kind(context: CrossvalContext) -> str | None:
    from medseglatdiff.training.plans import CASE_GROUPS_FILE

    path = context.work / CASE_GROUPS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("group_kind") if path.is_file() else None
    except (OSError, ValueError):
        return None


def train_fold(context: CrossvalContext, fold: int, logging_file: str | bool | None = None) -> Path:
    """Train ``fold`` unless all three stages are finished; returns its folder."""
    from medseglatdiff.inference.model_loading import unfinished_stages
    from medseglatdiff.training import train

    fold_dir = context.fold_dir(fold)
    missing = unfinished_stages(fold_dir)
    if missing:
        logger.info("fold %d: training %s", fold, ", ".join(missing))
        train(
            context.work,
            context.bundle,
            fold,
            overlays=context.overlays,
            settings=context.settings,
            logging_file=logging_file,
        )
    else:
        logger.info("fold %d: trained (%s), skipping training", fold, fold_dir)
    return fold_dir


def predict_fold(
    fold_dir: Path,
    fold: int,
    cases: Sequence[str],
    spec: DatasetSpec,
    layout: CrossvalLayout,
    num_samples: int,
    steps: int,
    threshold: float,
    seed: int = 0,
    device: str | torch.device = "cpu",
    window_overlap: float = 0.25,
    max_batch: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict the fold's validation ``cases`` into ``layout.predictions(fold)`` with ``medseg predict``'s function
    (no model selection, no postprocessing: this is what selects them) and store every sample for model selection;
    cases already done are skipped."""
    out = layout.predictions(fold)

    def finished(case: InputCase) -> bool:
        store = layout.samples(steps, fold, case.case_id)
        return (
            stored(store, num_samples, steps, seed)
            and PredictionLayout(out, case.output_ending).mask(case.case_id).is_file()
        )

    def keep(case: str, samples: np.ndarray, seconds: float) -> None:  # last: marks the case finished
        save_samples(layout.samples(steps, fold, case), samples[:, 0], steps, seed, seconds)

    return predict_cases(
        [dataset_input_case(spec, case) for case in cases],
        out,
        fold_dir,
        num_samples=num_samples,
        num_inference_steps=steps,
        save_samples=True,
        threshold=threshold,
        device=str(device),
        seed=seed,
        window_overlap=window_overlap,
        max_batch=max_batch,
        progress=progress,
        use_model_selection=False,
        sample_sink=keep,
        skip=finished,
        note={"samples_store": str(layout.samples(steps, fold, "x").parent)},
    )


def cross_validate(
    work: str | os.PathLike,
    bundle: str | os.PathLike = "lidc",
    folds: Sequence[int] | int | None = None,
    settings: Mapping[str, Any] | None = None,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    threshold: float | None = None,
    num_folds: int = 5,
    splits: str | os.PathLike | None = None,
    raw: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | None = None,
    train: bool = True,
    surface: bool = True,
    figures: bool = True,
    num_workers: int = 1,
    window_overlap: float = 0.25,
    max_batch: int | None = None,
    overlays: Sequence[str] = (),
    logging_file: str | bool | None = None,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Cross-validate a bundle on a planned dataset; returns the summary written to ``crossval/cv_summary.json``.

    Args:
        work: the folder ``medseg plan_and_preprocess`` wrote.
        bundle: isic, cvc, lidc, brats, or a path to a bundle folder (``bundles/lidc``).
        folds: the folds to run (each trained, predicted and evaluated; finished work is skipped); default every
            fold of ``WORK/splits_final.json``.
        settings: training settings for every fold, as for ``medseg train`` (``{"denoiser": {"max_epochs": 5}}``).
        num_samples: samples per validation image (default 16: enough to choose the ensemble size later).
        num_inference_steps: DDIM steps (default: the plan's).
        threshold: mean probability at which a pixel is foreground (default: the plan's).
        num_folds: folds to create when ``WORK/splits_final.json`` does not exist yet.
        splits: a splits file of your own (nnU-Net's format); checked, then installed as ``WORK/splits_final.json``.
        raw: the raw dataset (default: the one plans.json names).
        seed: seed of the sampling noise.
        device: "cuda", "cpu", ... (default cuda when available).
        train: train folds that are not finished; False: stop with an error instead.
        surface: compute HD95 and ASSD.
        figures: draw each fold's evaluation figures.
        num_workers: processes scoring cases.
        window_overlap: sliding-window overlap for images larger than the patch.
        max_batch: largest number of latents denoised at once.
        overlays: shared configs applied on top of training (e.g. ``multi_gpu_train.json``).
        logging_file: training's logging config; None: the bundle's ``logging.conf``; False: leave logging alone.
        progress: show progress bars.
        overrides: flat training settings (``**{"denoiser#max_epochs": 5}``), as ``medseg train`` takes them.

    Raises:
        MedsegError: unplanned work folder, unknown bundle, bad splits file, missing raw dataset, or an
            unfinished fold with ``train=False``.
    """
    from medseglatdiff.evaluation.evaluate import evaluate
    from medseglatdiff.inference.model_loading import unfinished_stages

    context = CrossvalContext.create(work, bundle, settings, overlays, **overrides)
    spec = raw_dataset(context, raw)
    splits_list, splits_record = prepare_splits(context, num_folds, splits)
    if folds is None:
        folds = list(range(len(splits_list)))
    folds = [folds] if isinstance(folds, int) else [int(f) for f in folds]
    absent = [f for f in folds if not 0 <= f < len(splits_list)]
    if not folds or absent:
        raise MedsegError(
            f"fold(s) {absent or folds}: {splits_record['file']} has folds 0..{len(splits_list) - 1}; "
            "pass --folds among them"
        )
    scheme = LabelScheme.from_json(context.plan.get("label_scheme"))
    if scheme.num_channels != 1:
        raise MedsegError(
            f"{work}: cross-validation scores one foreground, and this dataset has {scheme.describe()}; train the "
            "folds with `medseg train --fold N` and score them with `medseg predict` + `medseg evaluate` (per "
            "class/region metrics)"
        )
    inference = context.plan["inference"]
    num_samples = int(num_samples or DEFAULT_NUM_SAMPLES)
    steps = int(num_inference_steps or inference["num_inference_steps"])
    threshold = float(threshold if threshold is not None else inference["threshold"])
    if num_samples < 1 or steps < 1 or not 0.0 < threshold < 1.0:
        raise MedsegError(
            f"num_samples {num_samples}, num_inference_steps {steps}, threshold {threshold}: "
            "need positive counts and a threshold strictly between 0 and 1"
        )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    layout = context.layout
    missing_raw = sorted({c for f in folds for c in splits_list[f]["val"]} - set(spec.case_ids()))
    if missing_raw:
        raise MedsegError(
            f"{spec.root}: validation case(s) {', '.join(missing_raw[:5])} are not in this raw dataset; "
            "pass --raw with the dataset that was planned"
        )
    fold_summaries: dict[int, dict[str, Any]] = {}
    fold_rows: dict[int, list[dict[str, Any]]] = {}
    seconds: dict[int, list[float]] = {}
    for fold in folds:
        fold_dir = train_fold(context, fold, logging_file) if train else context.fold_dir(fold)
        if unfinished_stages(fold_dir):
            raise MedsegError(
                f"{fold_dir}: fold {fold} is not trained ({', '.join(unfinished_stages(fold_dir))} unfinished); "
                "run without --train False"
            )
        cases = sorted(splits_list[fold]["val"])
        record = predict_fold(
            fold_dir,
            fold,
            cases,
            spec,
            layout,
            num_samples,
            steps,
            threshold,
            seed,
            device,
            window_overlap,
            max_batch,
            progress,
        )
        seconds[fold] = [r["sampling_seconds"] for r in record["cases"] if "sampling_seconds" in r]
        out = layout.predictions(fold) / "evaluation"
        fold_summaries[fold] = evaluate(
            layout.predictions(fold), spec.root, out=out, num_workers=num_workers, surface=surface, figures=figures
        )
        fold_rows[fold] = read_rows(out / "per_case.csv")
    classes = (
        next(iter(fold_summaries.values()))["classes"]
        if fold_summaries
        else {name: list(values) for name, values in zip(scheme.names, scheme.values)}
    )
    summary = {
        "cv_version": CV_VERSION,
        "model": str(context.model_dir.resolve()),
        "work": str(context.work.resolve()),
        "raw": str(spec.root.resolve()),
        "bundle": str(context.bundle),
        "configuration": context.plan["configuration"],
        "settings": context.settings,
        "folds": folds,
        "splits": splits_record,
        "validation_cases": {str(f): sorted(splits_list[f]["val"]) for f in folds},
        "num_cases": sum(len(rows) for rows in fold_rows.values()),
        "num_samples": num_samples,
        "num_inference_steps": steps,
        "threshold": threshold,
        "seed": seed,
        "device": str(device),
        "window_overlap": window_overlap,
        "sampling_seconds_per_case": {str(f): (sum(s) / len(s) if s else None) for f, s in seconds.items()},
        "classes": classes,
        **aggregate(fold_summaries, fold_rows, classes),
    }
    summary = without_nan(summary)
    write_json_atomic(layout.summary, summary)
    write_per_case(layout.per_case, fold_rows)
    write_text_atomic(layout.summary_table, summary_table(summary))
    logger.info("cross-validation of %s: %s", context.model_dir, layout.summary_table)
    return summary
