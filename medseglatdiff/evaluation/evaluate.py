"""``medseg evaluate``: score a prediction folder against a raw dataset; per-case CSV, summary.json, figures.

Every metric is computed per class or region of the dataset's label scheme
(:mod:`medseglatdiff.datasets.label_scheme`) and averaged over them: single-reference metrics (Dice, IoU, HD95,
ASSD) compare the final label map's channel with ``labelsTr``'s (regions read back from both label maps); when the
dataset has raters and the prediction folder has samples, the ensemble metrics (GED, HM-IoU, CI) compare the
samples with every rater, channel by channel; ECE compares each channel's mean probability with the rater mean
(or the label). Voxels of the ``ignore`` label are not scored. A model trained, before label kinds, on the union
of several foreground classes says so in ``PRED/prediction.json`` (``mask.classes`` lists more than one class and
there is no ``label_scheme``); its mask is then scored against the union of the reference classes, as one class
``foreground``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medseglatdiff.datasets.checks import HINT_0_255
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.errors import MedsegError
from medseglatdiff.evaluation.multirater import (
    ci_score,
    expected_calibration_error,
    generalized_energy_distance,
    hungarian_matched_iou,
    reliability_curve,
)
from medseglatdiff.evaluation.overlap import overlap_metrics
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.io.atomic import write_json_atomic, write_text_atomic
from medseglatdiff.io.readers import read_image

NUM_BINS = 10


@dataclass(frozen=True)
class CaseJob:
    """What one worker needs to score one case."""

    case: str
    spec: DatasetSpec
    layout: PredictionLayout
    scheme: LabelScheme
    surface: bool


def merged_classes(pred: Path, spec: DatasetSpec) -> bool:
    """Whether ``pred/prediction.json`` says the masks are the union of the dataset's several foreground classes
    (models trained before label kinds)."""
    record = pred / "prediction.json"
    if not record.is_file() or spec.checked_label_scheme().kind == "binary":
        return False
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        classes = data.get("mask", {}).get("classes", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise MedsegError(
            f"{record}: not valid JSON ({exc}); delete it if the masks carry the dataset's own labels"
        ) from exc
    return "label_scheme" not in data and isinstance(classes, dict) and len(classes) > 1


def union_scheme(scheme: LabelScheme) -> LabelScheme:
    """One binary channel ``foreground``: the union of every class/region of ``scheme``."""
    values = tuple(sorted({v for vals in scheme.values for v in vals}))
    return LabelScheme("binary", ("foreground",), (values,), (1,), scheme.ignore)


def _channels(label_map: np.ndarray, scheme: LabelScheme, valid: np.ndarray) -> np.ndarray:
    return (scheme.channel_masks(label_map) & valid).astype(np.uint8)


def check_label_values(mask: np.ndarray, path: Path, spec: DatasetSpec) -> None:
    """A predicted mask may hold only the dataset's label values; anything else (e.g. 0/255) is an error."""
    values = np.unique(mask)
    allowed = set(spec.label_values)
    unexpected = [v for v in values.tolist() if v not in allowed]
    if not unexpected:
        return
    shown = ", ".join(f"{v:g}" for v in unexpected[:5])
    if set(values.tolist()) <= allowed | {255}:
        hint = HINT_0_255
    else:
        hint = "write the predicted classes with the label values of dataset.json (medseg predict does)"
    raise MedsegError(
        f"{path}: holds value(s) {shown}, but {spec.root / 'dataset.json'} labels allow only "
        f"{', '.join(str(v) for v in sorted(allowed))}; {hint}"
    )


def score_case(job: CaseJob) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of one case and its reliability bin sums (count, sum p, sum y) as a (3, bins) array."""
    spec, layout, case = job.spec, job.layout, job.case
    reference = read_image(spec.label_file(case))
    prediction = read_image(layout.mask(case)).array[0]
    check_label_values(prediction, layout.mask(case), spec)
    ref = reference.array[0]
    if prediction.shape != ref.shape:
        raise MedsegError(
            f"{layout.mask(case)}: shape {prediction.shape} differs from the reference {spec.label_file(case)} "
            f"{ref.shape}; predictions must be written in the input's original geometry"
        )
    scheme = job.scheme
    valid = scheme.valid(ref)
    predicted, referenced = _channels(prediction, scheme, valid), _channels(ref, scheme, valid)
    row: dict[str, Any] = {"case": case, "group": spec.group_of(case) or ""}
    for k, name in enumerate(scheme.names):
        scores = overlap_metrics(
            predicted[k], referenced[k], [1], spacing=reference.geometry.spacing, surface=job.surface
        )
        for metric, score in scores[1].items():
            row[f"{metric}_{name}"] = score
    raters = [_channels(read_image(f).array[0], scheme, valid).astype(bool) for f in spec.rater_files(case)]
    samples = [_channels(read_image(f).array[0], scheme, valid).astype(bool) for f in layout.sample_files(case)]
    row["num_samples"] = len(samples)
    several = scheme.num_channels > 1
    if raters and samples:
        for k, name in enumerate(scheme.names):
            suffix = f"_{name}" if several else ""
            channel_samples, channel_raters = [m[k] for m in samples], [m[k] for m in raters]
            row[f"ged{suffix}"] = generalized_energy_distance(channel_samples, channel_raters)
            row[f"hm_iou{suffix}"] = hungarian_matched_iou(channel_samples, channel_raters)
            if len(samples) >= 2 and len(raters) >= 2:
                row.update({f"{key}{suffix}": v for key, v in ci_score(channel_samples, channel_raters).items()})
    bins = np.zeros((3, NUM_BINS))
    for k, name in enumerate(scheme.names):
        path = layout.probability(case, name if several else None)
        if not path.exists():
            continue
        probability = layout.read_map(path)
        if raters:
            target = np.mean([m[k] for m in raters], axis=0)
        else:
            target = referenced[k].astype(np.float64)
        row[f"ece_{name}" if several else "ece"] = expected_calibration_error(
            probability[valid], target[valid], NUM_BINS
        )
        curve = reliability_curve(probability[valid], target[valid], NUM_BINS)
        counts = curve["count"]
        bins += np.stack(
            [counts, np.nan_to_num(curve["mean_probability"]) * counts, np.nan_to_num(curve["mean_target"]) * counts]
        )
    return row, bins


def _stats(values: list[float]) -> dict[str, float]:
    finite = np.asarray([v for v in values if isinstance(v, (int, float)) and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "median": float(np.median(finite)),
        "n": int(finite.size),
    }


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summarise(rows: list[dict[str, Any]], classes: Mapping[str, Any], bins: np.ndarray) -> dict[str, Any]:
    """Mean, std, median and count of every metric, overall (classes averaged) and per class."""
    metric_columns = sorted({k for row in rows for k in row if k not in ("case", "group", "num_samples")})
    per_class: dict[str, dict[str, Any]] = {}
    for name in classes:
        per_class[name] = {
            c[: -len(name) - 1]: _stats([r.get(c, float("nan")) for r in rows])
            for c in metric_columns
            if c.endswith(f"_{name}")
        }
    overall: dict[str, Any] = {}
    for metric in ("dice", "iou", "hd95", "assd"):
        means = [_nanmean([r.get(f"{metric}_{n}", float("nan")) for n in classes]) for r in rows]
        overall[metric] = _stats(list(means))
    for metric in ("ged", "hm_iou", "ci", "ece"):  # several channels: each one's column, their mean overall
        if len(classes) > 1 and any(f"{metric}_{n}" in r for r in rows for n in classes):
            means = [_nanmean([r.get(f"{metric}_{n}", float("nan")) for n in classes]) for r in rows]
            overall[metric] = _stats(list(means))
    for column in metric_columns:
        if not any(column.endswith(f"_{n}") for n in classes):
            overall[column] = _stats([r.get(column, float("nan")) for r in rows])
    counts = bins[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        reliability = {
            "edges": np.linspace(0, 1, NUM_BINS + 1).tolist(),
            "count": counts.tolist(),
            "mean_probability": (bins[1] / counts).tolist(),
            "mean_target": (bins[2] / counts).tolist(),
        }
    return {"num_cases": len(rows), "metrics": overall, "per_class": per_class, "reliability": reliability}


def summary_lines(summary: Mapping[str, Any], ref: str | os.PathLike) -> list[str]:
    """What ``medseg evaluate`` prints: cases scored, unpredicted references, every metric's mean, and with several
    classes/regions each one's main metrics."""
    lines = [f"{summary['num_cases']} case(s) scored against {ref}"]
    unpredicted = summary["unpredicted_cases"]
    if unpredicted:
        shown = ", ".join(unpredicted[:5]) + (", ..." if len(unpredicted) > 5 else "")
        lines.append(
            f"  {len(unpredicted)} reference case(s) have no prediction and are not scored: {shown} (--strict: error)"
        )
    several = len(summary["per_class"]) > 1
    if several:
        lines.append(f"  mean over {', '.join(summary['per_class'])}:")
    for name, stats in summary["metrics"].items():
        if stats["n"]:
            lines.append(f"  {name:22s} {stats['mean']:.4f} +- {stats['std']:.4f}  (n={stats['n']})")
    for label, metrics in summary["per_class"].items() if several else ():
        shown = ", ".join(f"{m} {metrics[m]['mean']:.4f}" for m in ("dice", "hd95", "ged", "ece") if m in metrics)
        lines.append(f"  {label}: {shown}")
    return lines


def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def evaluate(
    pred: str | os.PathLike,
    ref: str | os.PathLike,
    out: str | os.PathLike | None = None,
    samples: str | os.PathLike | None = None,
    num_workers: int = 1,
    surface: bool = True,
    figures: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    """Score every case predicted in ``pred`` against the raw dataset ``ref``; returns the summary.

    Reference cases without a prediction are listed in the summary (``unpredicted_cases``); ``strict`` makes them
    an error. A predicted mask holding values that are not labels of ``ref`` (e.g. 0/255) is an error.

    Args:
        pred: prediction folder written by ``medseg predict`` (see ``medseglatdiff.inference.layout``).
        ref: the raw dataset (with dataset.json) holding the references and raters.
        out: where to write ``per_case.csv``, ``summary.json`` and ``figures/`` (default: ``pred/evaluation``).
        samples: a folder holding ``samples/{case}_sNN`` files when they are not inside ``pred``.
        num_workers: processes scoring cases in parallel.
        surface: compute HD95 and ASSD (slower).
        figures: draw the metric histograms, reliability diagram and worst-case grid.
        strict: refuse to score when a reference case has no prediction.
    """
    spec = DatasetSpec.load(ref)
    pred = Path(pred)
    if not pred.is_dir():
        raise MedsegError(f"{pred}: prediction folder not found; run `medseg predict` first")
    samples_dir = Path(samples) if samples else None
    if samples_dir is not None and (samples_dir / "samples").is_dir():
        samples_dir = samples_dir / "samples"
    layout = PredictionLayout(pred, spec.file_ending, samples_dir)
    predicted = layout.predicted_cases()
    unknown = sorted(set(predicted) - set(spec.case_ids()))
    if unknown:
        raise MedsegError(
            f"{pred}: predictions for cases not in {spec.root}: {', '.join(unknown[:5])}; is --ref the right dataset?"
        )
    if not predicted:
        raise MedsegError(f"{pred}: no predicted masks named {{case}}{spec.file_ending} for the cases of {spec.root}")
    unpredicted = sorted(set(spec.case_ids()) - set(predicted))
    if unpredicted and strict:
        raise MedsegError(
            f"{pred}: {len(unpredicted)} reference case(s) of {spec.root} have no prediction, e.g. "
            f"{', '.join(unpredicted[:5])}; predict them, or leave out --strict to score only the predicted cases"
        )
    merge = merged_classes(pred, spec)
    scheme = union_scheme(spec.checked_label_scheme()) if merge else spec.checked_label_scheme()
    classes = {name: list(values) for name, values in zip(scheme.names, scheme.values)}
    jobs = [CaseJob(case, spec, layout, scheme, surface) for case in predicted]
    bar = dict(total=len(jobs), desc="evaluating", unit="case", disable=None)
    if num_workers > 1:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            results = list(tqdm(pool.map(score_case, jobs), **bar))
    else:
        results = [score_case(job) for job in tqdm(jobs, **bar)]
    rows = [row for row, _ in results]
    summary = summarise(rows, classes, np.sum([b for _, b in results], axis=0))
    summary.update(
        {
            "prediction": str(pred.resolve()),
            "reference": str(spec.root.resolve()),
            "num_reference_cases": len(spec.case_ids()),
            "unpredicted_cases": unpredicted,
            "classes": classes,
            "label_scheme": scheme.to_json(),
            "merged_classes": merge,
        }
    )
    out = Path(out) if out else pred / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "per_case.csv", _csv_text(rows))
    write_json_atomic(out / "summary.json", summary)
    if figures:
        from medseglatdiff.evaluation.figures import draw_figures

        draw_figures(rows, summary, spec, layout, out / "figures")
    return summary
