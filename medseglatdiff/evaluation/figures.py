"""Evaluation figures: metric histograms, reliability diagram, and a grid of the worst cases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.io.atomic import atomic_path
from medseglatdiff.io.readers import read_image

HISTOGRAM_METRICS = ("dice", "iou", "hd95", "ged", "hm_iou", "ci", "ece")
WORST_CASES = 6


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _pyplot().close(fig)


def _case_metric(row: dict[str, Any], metric: str) -> float:
    """A case's value of ``metric``, averaged over classes for per-class metrics."""
    if metric in row:
        return float(row[metric]) if row[metric] != "" else float("nan")
    values = [float(v) for k, v in row.items() if k.startswith(f"{metric}_") and v != ""]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def draw_figures(
    rows: list[dict[str, Any]], summary: dict[str, Any], spec: DatasetSpec, layout: PredictionLayout, out: Path
) -> list[Path]:
    """Draw every figure into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [_histograms(rows, out / "metric_histograms.png")]
    if sum(summary["reliability"]["count"]) > 0:
        written.append(_reliability(summary["reliability"], out / "reliability_diagram.png"))
    channels = list(summary.get("per_class") or []) if len(summary.get("per_class") or []) > 1 else [None]
    written.append(_worst_cases(rows, spec, layout, out / "worst_cases.png", channels))
    return written


def _histograms(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    metrics = [m for m in HISTOGRAM_METRICS if any(math.isfinite(_case_metric(r, m)) for r in rows)]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(3.2 * max(len(metrics), 1), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        values = [v for v in (_case_metric(r, metric) for r in rows) if math.isfinite(v)]
        ax.hist(values, bins=20, color="#4878d0")
        ax.set_title(f"{metric} (mean {np.mean(values):.3f})", fontsize=9)
        ax.set_xlabel(metric)
    axes[0][0].set_ylabel("cases")
    _save(fig, path)
    return path


def _reliability(curve: dict[str, list[float]], path: Path) -> Path:
    plt = _pyplot()
    edges = np.asarray(curve["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    mean_target = np.asarray(curve["mean_target"], dtype=float)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    filled = np.isfinite(mean_target)
    ax.bar(centres[filled], mean_target[filled], width=edges[1] - edges[0], alpha=0.7, edgecolor="k", label="observed")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("rater mean / reference")
    ax.set_title("reliability diagram")
    ax.legend(fontsize=8)
    _save(fig, path)
    return path


def _display_slice(array: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, int | None]:
    """2D view (y, x) of a (C, x, y[, z]) array: the slice with the most reference foreground in 3D."""
    if array.ndim == 4:
        index = (
            int(np.argmax((reference > 0).sum(axis=tuple(range(reference.ndim - 1)))))
            if reference.any()
            else array.shape[-1] // 2
        )
        return array[..., index], index
    return array, None


def _confidence(layout: PredictionLayout, case: str, channels: list[str | None]) -> np.ndarray | None:
    """The case's confidence map; with several classes/regions the least confident one at each voxel."""
    paths = [layout.confidence(case, channel) for channel in channels]
    if not all(p.exists() for p in paths):
        return None
    return np.min([layout.read_map(p) for p in paths], axis=0)


def _worst_cases(
    rows: list[dict[str, Any]],
    spec: DatasetSpec,
    layout: PredictionLayout,
    path: Path,
    channels: list[str | None] | None = None,
) -> Path:
    plt = _pyplot()
    ranked = sorted(rows, key=lambda r: (np.nan_to_num(_case_metric(r, "dice"), nan=2.0), r["case"]))[:WORST_CASES]
    fig, axes = plt.subplots(len(ranked), 2, figsize=(6, 3 * len(ranked)), squeeze=False)
    for (ax_image, ax_conf), row in zip(axes, ranked):
        case = row["case"]
        reference = read_image(spec.label_file(case)).array
        image, index = _display_slice(read_image(spec.image_files(case)[0]).array, reference)
        ref2d, _ = _display_slice(reference, reference)
        pred2d, _ = _display_slice(read_image(layout.mask(case)).array, reference)
        shown = np.moveaxis(image, 0, -1).swapaxes(0, 1).astype(np.float64)
        shown = (shown - shown.min()) / (np.ptp(shown) + 1e-8)
        ax_image.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray")
        ax_image.contour(ref2d[0].T > 0, levels=[0.5], colors="lime", linewidths=1)
        ax_image.contour(pred2d[0].T > 0, levels=[0.5], colors="red", linewidths=1)
        where = f" z={index}" if index is not None else ""
        ax_image.set_title(
            f"{case}{where}: Dice {_case_metric(row, 'dice'):.3f}\ngreen reference, red prediction", fontsize=8
        )
        confidence = _confidence(layout, case, channels or [None])
        if confidence is not None:
            conf, _ = _display_slice(confidence[None], reference)
            handle = ax_conf.imshow(conf[0].T, cmap="magma", vmin=0, vmax=1)
            fig.colorbar(handle, ax=ax_conf, fraction=0.046)
            ax_conf.set_title("confidence (1 = readers agree)", fontsize=8)
        else:
            ax_conf.text(0.5, 0.5, "no confidence map", ha="center", va="center")
        for ax in (ax_image, ax_conf):
            ax.set_axis_off()
    _save(fig, path)
    return path
