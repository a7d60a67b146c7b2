"""The cross-validation summary: each fold's ``medseg evaluate`` results, pooled two ways.

- **over folds**: the mean and standard deviation of the folds' means (how much the result depends on the split);
- **over cases**: every validation case of every fold pooled (:func:`medseglatdiff.evaluation.evaluate.summarise`),
  mean, standard deviation and median (how much it varies from image to image).

Written as ``cv_summary.json`` (everything, machine-readable), ``cv_summary.md`` (a table to read) and
``per_case.csv`` (every case with its fold).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseglatdiff.evaluation.evaluate import NUM_BINS, summarise
from medseglatdiff.io.atomic import write_text_atomic

LOWER_IS_BETTER = ("hd95", "assd", "ged", "ece")


def without_nan(value: Any) -> Any:
    """``value`` with every NaN / infinity replaced by None (strict JSON), recursively."""
    if isinstance(value, Mapping):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an evaluation ``per_case.csv`` with numbers as floats (empty cells: NaN)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if key in ("case", "group"):
                    parsed[key] = value
                    continue
                try:
                    parsed[key] = float(value) if value != "" else float("nan")
                except ValueError:
                    parsed[key] = value
            rows.append(parsed)
    return rows


def _bins(summary: Mapping[str, Any]) -> np.ndarray:
    """A fold summary's reliability counts back as (count, sum p, sum y) per bin."""
    reliability = summary.get("reliability", {})
    counts = np.asarray(reliability.get("count", [0.0] * NUM_BINS), dtype=np.float64)
    mean_p = np.nan_to_num(np.asarray(reliability.get("mean_probability", [0.0] * NUM_BINS), dtype=np.float64))
    mean_y = np.nan_to_num(np.asarray(reliability.get("mean_target", [0.0] * NUM_BINS), dtype=np.float64))
    return np.stack([counts, mean_p * counts, mean_y * counts])


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def over_folds(fold_summaries: Mapping[int, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (over folds) of each metric's fold mean."""
    names = list(dict.fromkeys(name for s in fold_summaries.values() for name in s["metrics"]))
    result = {}
    for name in names:
        means = _finite([s["metrics"].get(name, {}).get("mean", float("nan")) for s in fold_summaries.values()])
        result[name] = {
            "mean": float(np.mean(means)) if means else float("nan"),
            "std": float(np.std(means)) if means else float("nan"),
            "n_folds": len(means),
        }
    return result


def aggregate(
    fold_summaries: Mapping[int, Mapping[str, Any]],
    fold_rows: Mapping[int, Sequence[Mapping[str, Any]]],
    classes: Mapping[str, int],
) -> dict[str, Any]:
    """The summary's metric blocks: per fold, over folds, over cases (see the module doc)."""
    pooled = [{**row} for fold in sorted(fold_rows) for row in fold_rows[fold]]
    bins = np.sum([_bins(s) for s in fold_summaries.values()], axis=0) if fold_summaries else np.zeros((3, NUM_BINS))
    cases = summarise(pooled, dict(classes), bins)
    return {
        "per_fold": {
            str(k): {"num_cases": s["num_cases"], "metrics": s["metrics"]} for k, s in sorted(fold_summaries.items())
        },
        "over_folds": over_folds(fold_summaries),
        "over_cases": cases["metrics"],
        "over_cases_per_class": cases["per_class"],
        "reliability": cases["reliability"],
    }


def write_per_case(path: Path, fold_rows: Mapping[int, Sequence[Mapping[str, Any]]]) -> Path:
    """Every case's row with its fold first."""
    rows = [{"fold": fold, **row} for fold in sorted(fold_rows) for row in fold_rows[fold]]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = [",".join(columns)]
    for row in rows:
        lines.append(
            ",".join(
                "" if isinstance(row.get(c), float) and not math.isfinite(row[c]) else str(row.get(c, ""))
                for c in columns
            )
        )
    return write_text_atomic(path, "\n".join(lines) + "\n")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else float("nan")


def _cell(mean: Any, std: Any) -> str:
    return "n/a" if not math.isfinite(_number(mean)) else f"{_number(mean):.4f} ± {_number(std):.4f}"


def summary_table(summary: Mapping[str, Any]) -> str:
    """``cv_summary.md``: one row per metric, mean ± std over folds and over cases, and each fold's mean."""
    folds = list(summary["per_fold"])
    lines = [
        f"# Cross-validation of {summary['model']}",
        "",
        f"{summary['num_cases']} validation case(s) in fold(s) {', '.join(folds)} of {summary['splits']['num_folds']} "
        f"({summary['splits']['file']}); {summary['num_samples']} samples per image, "
        f"{summary['num_inference_steps']} DDIM steps, "
        f"threshold {summary['threshold']}, seed {summary['seed']}.",
        "",
        f"Groups ({summary['splits']['group_kind'] or 'none'}): {summary['splits']['groups_check']}.",
        "",
        "| metric | over folds (mean ± std of fold means) | over cases (mean ± std) | cases | "
        + " | ".join(f"fold {k}" for k in folds)
        + " |",
        "|---|---|---|---|" + "---|" * len(folds),
    ]
    for name, stats in summary["over_cases"].items():
        if not stats.get("n"):
            continue
        folded = summary["over_folds"].get(name, {"mean": None, "std": None})
        arrow = " (lower is better)" if name in LOWER_IS_BETTER else ""
        per_fold = [_number(summary["per_fold"][k]["metrics"].get(name, {}).get("mean")) for k in folds]
        lines.append(
            f"| {name}{arrow} | {_cell(folded['mean'], folded['std'])} | "
            f"{_cell(stats['mean'], stats['std'])} | {stats['n']} | "
            + " | ".join("n/a" if not math.isfinite(v) else f"{v:.4f}" for v in per_fold)
            + " |"
        )
    lines += [
        "",
        "Per case: `per_case.csv`; per fold: `fold_K/evaluation/` (per_case.csv, summary.json, figures/). "
        "Metrics: docs/metrics.md.",
        "",
    ]
    return "\n".join(lines)
