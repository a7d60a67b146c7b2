"""``medseg find_best_configuration``: ensemble size, DDIM steps, threshold and postprocessing from the CV predictions.

Run after ``medseg cv``. On the cross-validation's validation cases (each predicted by the fold that did not train
on it):

1. **Steps.** The CV stored N samples per case at its step count; the same cases are sampled again with N
   samples at each other candidate step count (stored too, so a re-run samples nothing).
2. **Ensemble size.** For every step count, ensembles of the first k stored samples, k = 1..N, are scored
   (:mod:`medseglatdiff.crossval.scoring`: Dice of the mean mask; GED and HM-IoU with raters), and sampling is
   timed at 1 and N samples on a few cases. The points form the speed/accuracy frontier, and the choice is its
   fastest point within ``tolerance`` of the best, among ensembles of at least ``min_num_samples`` samples
   (:mod:`medseglatdiff.crossval.frontier`).
3. **Threshold.** At the chosen point, the threshold with the best mean Dice (ties: the one nearest 0.5).
4. **Postprocessing**, nnU-Net's rule: each step of :data:`POSTPROCESSING_STEPS`, in order, is kept only when it
   raises the mean Dice and makes no class worse (the model predicts one foreground, so its Dice is the class's).

Writes ``MODEL/model_selection.json`` (what ``medseg predict`` reads, :mod:`medseglatdiff.inference.selection`),
``MODEL/inference_instructions.md`` and ``MODEL/crossval/selection/`` (frontier table, CSV and plot, thresholds,
the full report).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medseglatdiff.crossval.context import CrossvalContext
from medseglatdiff.crossval.frontier import (
    HIGHER_IS_BETTER,
    choose,
    interpolated_seconds,
    mark_frontier,
    write_frontier,
)
from medseglatdiff.crossval.instructions import inference_instructions
from medseglatdiff.crossval.layout import CrossvalLayout
from medseglatdiff.crossval.samples import load_samples, read_raw_case, sample_case, save_samples, stored
from medseglatdiff.crossval.scoring import Reference, crop_case, dice, ensemble_means, load_reference, size_curves
from medseglatdiff.crossval.summary import without_nan
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic, write_text_atomic
from medseglatdiff.postprocessing.connected_components import POSTPROCESSING_STEPS, apply_postprocessing

logger = logging.getLogger(__name__)

DEFAULT_STEPS = (10, 25, 50)
DEFAULT_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def load_cv_summary(layout: CrossvalLayout) -> dict[str, Any]:
    """The cross-validation summary, or a clear error saying to run ``medseg cv`` first."""
    if not layout.summary.is_file():
        raise MedsegError(
            f"{layout.summary}: no cross-validation of {layout.model_dir}; "
            "run `medseg cv --work WORK --bundle BUNDLE --folds 0 1 2 3 4` first"
        )
    try:
        return json.loads(layout.summary.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MedsegError(f"{layout.summary}: not valid JSON ({exc}); run `medseg cv` again to rewrite it") from exc


def _spread(items: list[Any], count: int | None) -> list[Any]:
    """``count`` items spread evenly over ``items`` (all when None or more)."""
    if not count or count >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, int(count)).round().astype(int)]


class FoldModels:
    """Trained folds loaded on first use (each once)."""

    def __init__(self, context: CrossvalContext, device: str) -> None:
        self.context, self.device, self.loaded = context, device, {}

    def __call__(self, fold: int):
        from medseglatdiff.inference.model_loading import load_fold

        if fold not in self.loaded:
            self.loaded[fold] = load_fold(self.context.fold_dir(fold), self.device)
        return self.loaded[fold]


def ensure_samples(
    cases: Sequence[tuple[int, str]],
    steps: int,
    cv: Mapping[str, Any],
    layout: CrossvalLayout,
    spec: DatasetSpec,
    models: FoldModels,
    window_overlap: float,
    max_batch: int | None,
    progress: bool,
) -> None:
    """Sample (and store) every case at ``steps`` with the CV's ensemble size and seed, unless stored already."""
    n, seed = int(cv["num_samples"]), int(cv["seed"])
    todo = [(f, c) for f, c in cases if not stored(layout.samples(steps, f, c), n, steps, seed)]
    for fold, case in tqdm(todo, desc=f"sampling at {steps} steps", unit="case", disable=None if progress else True):
        model = models(fold)
        sampled = sample_case(
            read_raw_case(spec, case, model), model, n, steps, seed, models.device, window_overlap, max_batch
        )
        save_samples(layout.samples(steps, fold, case), sampled.samples, steps, seed, sampled.seconds)


def time_sampling(
    cases: Sequence[tuple[int, str]],
    steps: Sequence[int],
    n: int,
    spec: DatasetSpec,
    models: FoldModels,
    window_overlap: float,
    max_batch: int | None,
) -> dict[int, dict[str, float]]:
    """Median seconds per image of sampling 1 and ``n`` samples at each step count, on ``cases`` (after a warm-up)."""
    raws = [(models(f), read_raw_case(spec, c, models(f))) for f, c in cases]
    model, raw = raws[0]
    sample_case(
        raw, model, 1, min(steps), 0, models.device, window_overlap, max_batch
    )  # warm-up (allocations, kernels)
    timing = {}
    for s in steps:
        one = [
            sample_case(raw, model, 1, s, 0, models.device, window_overlap, max_batch).seconds for model, raw in raws
        ]
        full = [
            sample_case(raw, model, n, s, 0, models.device, window_overlap, max_batch).seconds for model, raw in raws
        ]
        timing[int(s)] = {"one_sample": float(np.median(one)), "all_samples": float(np.median(full))}
    return timing


def score_frontier(
    cases: Sequence[tuple[int, str]],
    steps: Sequence[int],
    sizes: Sequence[int],
    cv: Mapping[str, Any],
    layout: CrossvalLayout,
    references: Mapping[tuple[int, str], Reference],
    progress: bool,
) -> dict[int, dict[str, np.ndarray]]:
    """Per step count, the mean over cases of each score for ensembles of the first k samples, k in ``sizes``."""
    scores: dict[int, dict[str, list[np.ndarray]]] = {int(s): {} for s in steps}
    for fold, case in tqdm(cases, desc="scoring ensembles", unit="case", disable=None if progress else True):
        for s in steps:
            samples, _ = load_samples(layout.samples(s, fold, case))
            cropped, reference = crop_case(samples, references[(fold, case)], 0.5)
            for name, curve in size_curves(cropped, reference, float(cv["threshold"])).items():
                scores[int(s)].setdefault(name, []).append(curve[[k - 1 for k in sizes]])
    return {
        s: {name: np.mean(np.stack(values), axis=0) for name, values in by_name.items()}
        for s, by_name in scores.items()
    }


def choose_threshold(
    means: Sequence[np.ndarray], references: Sequence[Reference], thresholds: Sequence[float]
) -> tuple[float, list[dict[str, float]]]:
    """The threshold with the best mean Dice (ties: nearest 0.5) and every threshold's mean Dice."""
    table = [
        {"threshold": float(t), "dice": float(np.mean([dice(m >= t, r.foreground) for m, r in zip(means, references)]))}
        for t in thresholds
    ]
    best = max(table, key=lambda row: (round(row["dice"], 12), -abs(row["threshold"] - 0.5)))
    return best["threshold"], table


def choose_postprocessing(
    masks: Sequence[np.ndarray], references: Sequence[Reference]
) -> tuple[list[str], list[dict[str, Any]], float]:
    """nnU-Net's rule over :data:`POSTPROCESSING_STEPS` in order: keep a step when mean Dice rises and no class
    gets worse.

    Returns:
        The steps kept, each trial's evidence, and the mean Dice after the kept steps.
    """
    current = [np.asarray(m, dtype=np.uint8) for m in masks]
    baseline = float(np.mean([dice(m, r.foreground) for m, r in zip(current, references)]))
    enabled, trials = [], []
    for step in POSTPROCESSING_STEPS:
        candidate = [apply_postprocessing(m, [step]) for m in current]
        score = float(np.mean([dice(m, r.foreground) for m, r in zip(candidate, references)]))
        keep = score > baseline  # one foreground class: its Dice is the mean Dice, so "no class worse" holds with it
        trials.append({"step": step, "dice_before": baseline, "dice_after": score, "enabled": keep})
        if keep:
            enabled.append(step)
            current, baseline = candidate, score
    return enabled, trials, baseline


def _reasons(
    chosen: Mapping[str, Any],
    best: Mapping[str, Any],
    metric: str,
    tolerance: float,
    min_size: int,
    threshold: float,
    threshold_table: Sequence[Mapping[str, float]],
    trials: Sequence[Mapping[str, Any]],
    num_cases: int,
) -> dict[str, str]:
    point = (
        f"the fastest point of the speed/accuracy frontier (ensembles of {min_size}+ samples) "
        f"within {tolerance:g} {metric} of the best "
        f"({best[metric]:.4f} with {best['num_samples']} samples at {best['num_inference_steps']} steps, "
        f"{best['seconds_per_image']:.3g} s/image): "
        f"{chosen[metric]:.4f} with {chosen['num_samples']} samples at {chosen['num_inference_steps']} steps, "
        f"{chosen['seconds_per_image']:.3g} s/image, on {num_cases} cross-validation cases "
        "(crossval/selection/frontier.md)"
    )
    at_half = next((row["dice"] for row in threshold_table if abs(row["threshold"] - 0.5) < 1e-9), float("nan"))
    at_chosen = next(row["dice"] for row in threshold_table if abs(row["threshold"] - threshold) < 1e-9)
    tried = ", ".join(f"{row['threshold']:g}" for row in threshold_table)
    post = "; ".join(
        f"{t['step']}: mean Dice {t['dice_before']:.4f} -> {t['dice_after']:.4f} "
        f"({'enabled' if t['enabled'] else 'not enabled: no gain'})"
        for t in trials
    )
    return {
        "num_samples": point,
        "num_inference_steps": point,
        "threshold": f"best mean Dice of the thresholds {tried}: {at_chosen:.4f} at {threshold:g} "
        f"(0.5: {at_half:.4f}); crossval/selection/thresholds.csv",
        "postprocessing": "nnU-Net's rule (a step is kept when it raises the mean Dice and makes no class worse): "
        f"{post}",
    }


def find_best_configuration(
    work: str | os.PathLike,
    bundle: str | os.PathLike = "lidc",
    settings: Mapping[str, Any] | None = None,
    num_inference_steps: Sequence[int] | int = DEFAULT_STEPS,
    num_samples: Sequence[int] | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    tolerance: float = 0.005,
    metric: str = "dice",
    min_num_samples: int = 2,
    max_cases: int | None = None,
    timing_cases: int = 3,
    raw: str | os.PathLike | None = None,
    device: str | None = None,
    window_overlap: float | None = None,
    max_batch: int | None = None,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Choose the inference settings from the cross-validation and write them (see the module doc).

    Args:
        work: the planned work folder that ``medseg cv`` ran on.
        bundle: the bundle it ran (name or folder); with ``settings`` and ``overrides``, it locates the model.
        settings: the same training settings given to ``medseg cv`` (they decide the model folder's name).
        num_inference_steps: candidate DDIM step counts; the CV's own is always one of them.
        num_samples: candidate ensemble sizes (default 1..N, N the CV's samples per image).
        thresholds: candidate thresholds (0.5 is always tried).
        tolerance: how much worse than the best (in ``metric``) a faster choice may be.
        metric: "dice" (default), "hm_iou" (higher is better) or "ged" (lower is better; needs raters).
        min_num_samples: the smallest ensemble that may be chosen (2: a confidence map needs disagreement to show);
            smaller ones still appear in the frontier table.
        max_cases: score at most this many CV cases, spread over the folds (cheaper re-sampling); default all.
        timing_cases: cases on which sampling is timed.
        raw: the raw dataset (default: the one the CV used).
        device: "cuda", "cpu", ... (default cuda when available).
        window_overlap: sliding-window overlap (default: the CV's).
        max_batch: largest number of latents denoised at once.
        progress: show progress bars.
        overrides: flat training settings, as given to ``medseg cv``.

    Returns:
        The report written to ``crossval/selection/selection.json``.

    Raises:
        MedsegError: no cross-validation yet, bad candidates, or a missing raw dataset.
    """
    from medseglatdiff.crossval.cross_validate import raw_dataset
    from medseglatdiff.inference.model_loading import find_folds
    from medseglatdiff.inference.selection import MODEL_SELECTION_FILE, ModelSelection, write_model_selection

    context = CrossvalContext.create(work, bundle, settings, **overrides)
    layout = context.layout
    cv = load_cv_summary(layout)
    spec = raw_dataset(context, raw or cv.get("raw"))
    n = int(cv["num_samples"])
    steps = sorted(
        {int(s) for s in ([num_inference_steps] if isinstance(num_inference_steps, int) else num_inference_steps)}
        | {int(cv["num_inference_steps"])}
    )
    sizes = sorted(
        {int(k) for k in ([num_samples] if isinstance(num_samples, int) else num_samples or range(1, n + 1))}
    )
    thresholds = sorted({float(t) for t in thresholds} | {0.5})
    if metric not in HIGHER_IS_BETTER:
        raise MedsegError(f"--metric {metric!r}: choose one of {', '.join(HIGHER_IS_BETTER)}")
    if min(steps) < 1 or not sizes or min(sizes) < 1 or max(sizes) > n:
        raise MedsegError(
            f"--num_inference_steps {steps} / --num_samples {sizes}: step counts must be positive "
            f"and ensemble sizes within 1..{n} (the CV's samples per image; run `medseg cv --num_samples` for more)"
        )
    if not all(0.0 < t < 1.0 for t in thresholds):
        raise MedsegError(f"--thresholds {thresholds}: every threshold must lie strictly between 0 and 1")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    overlap = float(window_overlap if window_overlap is not None else cv.get("window_overlap", 0.25))
    all_cases = [(int(f), c) for f in cv["folds"] for c in cv["validation_cases"][str(f)]]
    cases = _spread(all_cases, max_cases)
    models = FoldModels(context, device)
    for s in steps:
        ensure_samples(cases, s, cv, layout, spec, models, overlap, max_batch, progress)
    timing = time_sampling(_spread(cases, timing_cases), steps, n, spec, models, overlap, max_batch)
    references = {key: load_reference(spec, key[1]) for key in cases}
    if metric != "dice" and not any(r.raters for r in references.values()):
        raise MedsegError(f"--metric {metric}: needs rater masks, and {spec.root} has none; use --metric dice")
    scores = score_frontier(cases, steps, sizes, cv, layout, references, progress)
    rows = []
    for s in steps:
        for i, k in enumerate(sizes):
            row: dict[str, Any] = {
                "num_inference_steps": s,
                "num_samples": k,
                "seconds_per_image": interpolated_seconds(timing[s]["one_sample"], timing[s]["all_samples"], k, n),
            }
            for name in ("dice", "ged", "hm_iou"):
                row[name] = float(scores[s][name][i]) if name in scores[s] else float("nan")
            rows.append(row)
    mark_frontier(rows, metric)
    min_size = min(int(min_num_samples), max(sizes))
    chosen, best = choose(rows, metric, tolerance, min_size)
    # threshold and postprocessing at the chosen point
    keys = list(cases)
    means, refs = [], []
    for fold, case in keys:
        samples, _ = load_samples(layout.samples(chosen["num_inference_steps"], fold, case))
        cropped, reference = crop_case(samples[: chosen["num_samples"]], references[(fold, case)], min(thresholds))
        means.append(ensemble_means(cropped)[-1])
        refs.append(reference)
    threshold, threshold_table = choose_threshold(means, refs, thresholds)
    postprocessing, trials, final_dice = choose_postprocessing([(m >= threshold).astype(np.uint8) for m in means], refs)
    reasons = _reasons(chosen, best, metric, tolerance, min_size, threshold, threshold_table, trials, len(cases))
    selection = ModelSelection(
        int(chosen["num_samples"]), int(chosen["num_inference_steps"]), threshold, tuple(postprocessing), reasons
    )
    selection_file = write_model_selection(selection, layout.model_dir)
    folder = layout.selection
    frontier_files = write_frontier(rows, folder, metric, len(cases), reasons["num_samples"])
    write_text_atomic(
        folder / "thresholds.csv",
        "threshold,dice\n" + "".join(f"{r['threshold']:g},{r['dice']:.6f}\n" for r in threshold_table),
    )
    report = {
        "model": str(layout.model_dir.resolve()),
        "selection_file": str(selection_file),
        "selection": selection.to_dict(),
        "metric": metric,
        "tolerance": tolerance,
        "min_num_samples": min_size,
        "num_cases": len(cases),
        "cases": [f"fold_{f}/{c}" for f, c in cases],
        "candidates": {"num_inference_steps": steps, "num_samples": sizes, "thresholds": thresholds},
        "timing": {
            "device": str(device),
            "cases": [f"fold_{f}/{c}" for f, c in _spread(cases, timing_cases)],
            "seconds_per_image": {str(s): t for s, t in timing.items()},
        },
        "frontier": rows,
        "chosen": chosen,
        "best": best,
        "thresholds": threshold_table,
        "postprocessing": trials,
        "expected": {
            **{k: chosen[k] for k in ("ged", "hm_iou", "seconds_per_image") if np.isfinite(chosen[k])},
            "dice": final_dice,
            "dice_before_threshold_and_postprocessing": chosen["dice"],
        },
        "files": {
            **{k: str(v) for k, v in frontier_files.items()},
            "thresholds": str(folder / "thresholds.csv"),
            "instructions": str(layout.instructions),
            MODEL_SELECTION_FILE: str(selection_file),
        },
    }
    report = without_nan(report)
    write_json_atomic(folder / "selection.json", report)
    folds = [p.name for p in find_folds(layout.model_dir)]
    write_text_atomic(
        layout.instructions, inference_instructions(layout.model_dir, selection.to_dict(), report, cv, folds)
    )
    logger.info("model selection of %s: %s", layout.model_dir, selection.to_dict())
    return report
