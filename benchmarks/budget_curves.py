"""Accuracy against the training budget, and against the DDIM steps, from runs of ``benchmarks.equal_budget_accuracy``.

Each budget is one run of the accuracy benchmark (same split, seed and clock), e.g.::

    for b in 120 300 900; do
        python -m benchmarks.equal_budget_accuracy --preset cpu --budget_s $b --methods latent unet --variant default \\
            --latent_steps 1 2 10 25 50 --out benchmarks/results/equal_budget_accuracy_cpu_${b}s.json
    done
    python -m benchmarks.budget_curves benchmarks/results/equal_budget_accuracy_cpu_*s.json

prints the tables (metrics per dataset, method and budget; the latent model's metrics per DDIM step count) and
draws ``benchmarks/results/budget_curves_cpu.png`` (Dice / HM-IoU / GED against the budget).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, pyplot, read_results, save_figure


def collect(paths: Sequence[Path]) -> dict[str, dict[str, dict[float, dict[str, Any]]]]:
    """``{dataset: {method: {budget_s: method entry (+ ensemble size)}}}`` from the given result files."""
    out: dict[str, dict[str, dict[float, dict[str, Any]]]] = {}
    for path in paths:
        for name, entry in read_results(path)["datasets"].items():
            budget = float(entry["settings"]["budget_s"])
            for method, value in entry["methods"].items():
                out.setdefault(name, {}).setdefault(method, {})[budget] = {
                    **value,
                    "ensemble_size": entry["ensemble_size"],
                    "steps": entry["steps"],
                    "scored": entry["num_val_scored"],
                }
    return out


def _metric(value: dict[str, Any], key: str, prefix: str | None = None) -> float | None:
    summary = value["evaluation"]["summary"][prefix or str(value["ensemble_size"])]
    return summary[key]["mean"] if key in summary else None


def budget_table(data: dict[str, Any]) -> str:
    rows = [
        "| dataset | method | budget (CPU-s) | Dice | Dice (1 sample) | GED | HM-IoU | iterations | "
        "mask VAE recon. Dice |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, methods in data.items():
        for method, budgets in methods.items():
            for budget in sorted(budgets):
                value = budgets[budget]

                def cell(key: str, prefix: str | None = None) -> str:
                    got = _metric(value, key, prefix)
                    return "-" if got is None else f"{got:.3f}"

                training = value["training"]
                iterations = (
                    " / ".join(
                        str(training[s]["iterations"]) for s in ("image_autoencoder", "mask_autoencoder", "denoiser")
                    )
                    if method == "latent"
                    else str(training["iterations"])
                )
                recon = value.get("mask_vae_reconstruction_dice", {}).get("mean")
                one = cell("dice", "1") if method == "latent" else "-"
                rows.append(
                    f"| {name} | {method} | {budget:g} | {cell('dice')} | {one} | {cell('ged')} | {cell('hm_iou')} | "
                    f"{iterations} | "
                    f"{'-' if recon is None else f'{recon:.3f}'} |"
                )
    return "\n".join(rows)


def steps_table(data: dict[str, Any]) -> str:
    rows = [
        "| dataset | budget (CPU-s) | DDIM steps | Dice | GED | HM-IoU | sampling CPU-s (all scored cases) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, methods in data.items():
        for budget, value in sorted(methods.get("latent", {}).items()):
            size = str(value["ensemble_size"])
            points = {
                int(value["steps"]): {
                    "summary": value["evaluation"]["summary"],
                    "seconds": value["evaluation"]["seconds"],
                }
            }
            points.update({int(k): v for k, v in value.get("steps_sweep", {}).items()})
            for steps in sorted(points):
                summary = points[steps]["summary"][size]

                def cell(key: str) -> str:
                    return f"{summary[key]['mean']:.3f}" if key in summary else "-"

                rows.append(
                    f"| {name} | {budget:g} | {steps} | {cell('dice')} | {cell('ged')} | {cell('hm_iou')} | "
                    f"{points[steps]['seconds']:.1f} |"
                )
    return "\n".join(rows)


def plot(data: dict[str, Any], path: Path) -> Path:
    plt = pyplot()
    names = list(data)
    fig, axes = plt.subplots(1, len(names), figsize=(4.3 * len(names), 3.3), squeeze=False)
    colors = {"latent": "#3182bd", "pixel": "#e6550d", "unet": "#31a354"}
    for ax, name in zip(axes[0], names):
        for method, budgets in data[name].items():
            xs = sorted(budgets)
            for key, style in (("dice", "-"), ("hm_iou", "--"), ("ged", ":")):
                ys = [_metric(budgets[b], key) for b in xs]
                if any(y is None for y in ys):
                    continue
                ax.plot([x / 60 for x in xs], ys, style, marker="o", color=colors.get(method), label=f"{method} {key}")
        ax.set_xlabel("training budget per method (CPU minutes)")
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(
        "accuracy against the training budget (same split, seed and clock); solid Dice, dashed HM-IoU, dotted GED",
        fontsize=8,
    )
    return save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("files", type=Path, nargs="+", help="equal_budget_accuracy result files, one per budget")
    parser.add_argument("--plot", type=Path, default=RESULTS_DIR / "budget_curves_cpu.png")
    args = parser.parse_args(argv)
    data = collect(args.files)
    if not data:
        print("error: no results in the given files", file=sys.stderr)
        return 1
    print(budget_table(data))
    print()
    print(steps_table(data))
    plot(data, args.plot)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
