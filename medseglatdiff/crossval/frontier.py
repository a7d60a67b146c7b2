"""The speed/accuracy frontier of ensemble size and DDIM step count: table, choice rule and plot.

Each point is one (``num_inference_steps``, ``num_samples``) pair with its cross-validation accuracy (mean over
cases) and its cost (seconds of sampling per image). A point is on the **frontier** (Pareto-optimal) when no other
point is at least as fast and at least as accurate, and strictly better in one. The **choice** is the fastest point
whose accuracy is within ``tolerance`` of the best point's: more samples or steps that buy less than that are not
worth their time (the differences are within the noise of a cross-validation). Only ensembles of at least
``min_num_samples`` samples (2 by default) compete: one sample has no disagreement to show in a confidence map.
Cost model: sampling time per image is measured at 1 sample and at N samples for every step count, and interpolated
linearly for k samples in between, ``t(k) = t(1) + (t(N) - t(1)) (k - 1) / (N - 1)``: a fixed part (encoding the
image, overheads) plus a part per sample. On a GPU the per-sample part is small while a batch fits.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseglatdiff.io.atomic import atomic_path, write_text_atomic

HIGHER_IS_BETTER = {"dice": True, "hm_iou": True, "ged": False}
COLUMNS = ("num_inference_steps", "num_samples", "seconds_per_image", "dice", "ged", "hm_iou", "on_frontier", "chosen")


def interpolated_seconds(one: float, full: float, k: int, n: int) -> float:
    """Seconds per image for ``k`` samples from the measured times of 1 and ``n`` samples (see the module doc)."""
    if n <= 1:
        return float(full)
    return float(one + (full - one) * (k - 1) / (n - 1))


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def mark_frontier(rows: list[dict[str, Any]], metric: str = "dice") -> None:
    """Set ``on_frontier`` of every row (Pareto-optimal in seconds and ``metric``)."""
    higher = HIGHER_IS_BETTER[metric]
    for row in rows:
        dominated = False
        for other in rows:
            if other is row:
                continue
            no_worse = other["seconds_per_image"] <= row["seconds_per_image"] and not _better(
                row[metric], other[metric], higher
            )
            strictly = other["seconds_per_image"] < row["seconds_per_image"] or _better(
                other[metric], row[metric], higher
            )
            if no_worse and strictly:
                dominated = True
                break
        row["on_frontier"] = not dominated


def choose(
    rows: list[dict[str, Any]], metric: str = "dice", tolerance: float = 0.005, min_num_samples: int = 1
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fastest row within ``tolerance`` of the best ``metric`` (marked ``chosen``), and the best row.

    Only rows with at least ``min_num_samples`` samples compete. Ties in time go to the more accurate row, so
    the choice is on the frontier of the competing rows.
    """
    higher = HIGHER_IS_BETTER[metric]
    valid = [
        r
        for r in rows
        if isinstance(r[metric], float) and math.isfinite(r[metric]) and r["num_samples"] >= min_num_samples
    ]
    if not valid:
        raise ValueError(f"no point with a finite {metric} and at least {min_num_samples} samples")
    best = max(valid, key=lambda r: (r[metric] if higher else -r[metric], -r["seconds_per_image"]))
    good = [
        r for r in valid if (r[metric] >= best[metric] - tolerance if higher else r[metric] <= best[metric] + tolerance)
    ]
    chosen = min(good, key=lambda r: (r["seconds_per_image"], -r[metric] if higher else r[metric]))
    for row in rows:
        row["chosen"] = row is chosen
    return chosen, best


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def frontier_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The frontier as CSV (every point, with its frontier and choice flags)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [
                _format(row.get(c, float("nan"))) if not isinstance(row.get(c), bool) else str(row[c]).lower()
                for c in COLUMNS
            ]
        )
    return buffer.getvalue()


def frontier_markdown(rows: Sequence[Mapping[str, Any]], metric: str, num_cases: int, reason: str) -> str:
    """The frontier as a Markdown table (frontier points in bold, the choice marked)."""
    lines = [
        "# Speed/accuracy frontier: DDIM steps x ensemble size",
        "",
        f"{num_cases} cross-validation case(s); accuracy: mean {metric} over cases; "
        "time: seconds of sampling per image. "
        "Points on the frontier (no other point faster and at least as accurate) are marked; "
        "the choice is in the last column.",
        "",
        "| steps | ensemble size | seconds / image | Dice | GED (lower is better) | HM-IoU | on frontier | chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [_format(row.get(c, float("nan"))) for c in COLUMNS]
        if row.get("on_frontier"):
            cells[:6] = [f"**{c}**" if c else c for c in cells[:6]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Choice: {reason}", ""]
    return "\n".join(lines)


def plot_frontier(rows: Sequence[Mapping[str, Any]], path: Path, metric: str = "dice") -> Path:
    """``frontier.png``: accuracy against seconds per image, one line per step count, the frontier and the choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for steps in sorted({int(r["num_inference_steps"]) for r in rows}):
        line = sorted((r for r in rows if int(r["num_inference_steps"]) == steps), key=lambda r: r["num_samples"])
        ax.plot(
            [r["seconds_per_image"] for r in line],
            [r[metric] for r in line],
            marker="o",
            markersize=3,
            linewidth=1,
            label=f"{steps} DDIM steps",
        )
        for r in line:
            ax.annotate(
                str(r["num_samples"]),
                (r["seconds_per_image"], r[metric]),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
    front = sorted((r for r in rows if r.get("on_frontier")), key=lambda r: r["seconds_per_image"])
    if front:
        ax.step(
            [r["seconds_per_image"] for r in front],
            [r[metric] for r in front],
            where="post",
            color="black",
            linewidth=1.5,
            alpha=0.6,
            label="frontier",
        )
    for r in rows:
        if r.get("chosen"):
            ax.scatter(
                [r["seconds_per_image"]],
                [r[metric]],
                s=120,
                facecolors="none",
                edgecolors="red",
                linewidths=2,
                label=f"chosen: {r['num_samples']} samples, {r['num_inference_steps']} steps",
                zorder=5,
            )
    ax.set_xlabel("seconds of sampling per image (numbers: ensemble size)")
    ax.set_ylabel(f"mean {metric} (cross-validation)" + ("" if HIGHER_IS_BETTER[metric] else ", lower is better"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Speed/accuracy frontier")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def write_frontier(
    rows: list[dict[str, Any]], folder: Path, metric: str, num_cases: int, reason: str
) -> dict[str, Path]:
    """Write ``frontier.csv``, ``frontier.md`` and ``frontier.png`` into ``folder``."""
    return {
        "csv": write_text_atomic(folder / "frontier.csv", frontier_csv(rows)),
        "markdown": write_text_atomic(folder / "frontier.md", frontier_markdown(rows, metric, num_cases, reason)),
        "plot": plot_frontier(rows, folder / "frontier.png", metric),
    }
