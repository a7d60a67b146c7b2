"""Markdown tables of the benchmark results, as ``docs/benchmarks.md`` shows them (no numbers typed by hand).

python -m benchmarks.report --device cpu            # reads benchmarks/results/*_cpu.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, read_results
from benchmarks.equal_budget_accuracy import table as accuracy_table
from medseglatdiff.errors import MedsegError


def sampling_table(results: dict[str, Any]) -> str:
    """Per size and N: seconds per image (measured; projected to the planned steps), peak MiB, speed-ups, memory
    ratios."""
    rows = [
        "| size | N | latent s (measured / at 50 steps) | pixel, same width s | pixel, planner width s | "
        "speed-up vs same width "
        "(measured / at 50 steps) | vs planner width | peak MiB latent / pixel / planner-width pixel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in results["sizes"]:
        for n, value in entry["by_ensemble"].items():

            def seconds(method: str) -> str:
                m = value.get(method)
                if m is None:
                    return "-"
                if "median_s" not in m:
                    return f"skipped (~{m['predicted_s']:.0f} s predicted)"
                return f"{m['median_s']:.3g} / {m['projected_s']:.4g}"

            def memory(method: str) -> str:
                m = value.get(method, {})
                return f"{m['peak_mib']:.0f}" if "peak_mib" in m else "-"

            speed = value["speedup"].get("pixel"), value["speedup_projected"].get("pixel")
            planner = value["speedup_projected"].get("pixel_planner")
            rows.append(
                f"| {entry['size']} px | {n} | {seconds('latent')} | {seconds('pixel')} | {seconds('pixel_planner')} | "
                f"{'-' if speed[0] is None else f'{speed[0]:.1f}x / **{speed[1]:.1f}x**'} | "
                f"{'-' if planner is None else f'{planner:.1f}x'} | "
                f"{memory('latent')} / {memory('pixel')} / {memory('pixel_planner')} |"
            )
    return "\n".join(rows)


def training_table(results: dict[str, Any]) -> str:
    """Per size and stage: batch, images/s, peak MiB (weights included), and the latent / pixel ratios."""
    rows = ["| size | stage | batch | images/s | peak MiB (weights + step) |", "|---|---|---|---|---|"]
    names = {
        "image_autoencoder": "image autoencoder",
        "mask_autoencoder": "mask VAE",
        "denoiser": "latent denoiser (+ frozen encoders)",
        "pixel": "pixel-space denoiser, same width",
        "pixel_planner": "pixel-space denoiser, planner width",
    }
    for entry in results["sizes"]:
        for stage, value in entry["stages"].items():
            rows.append(
                f"| {entry['size']} px | {names.get(stage, stage)} | {value['batch_size']} | "
                f"{value['images_per_s']:.3g} | "
                f"{value['peak_total_mib']:.0f} |"
            )
        rows.append(
            f"| {entry['size']} px | latent, all three stages | | {entry['all_stages']['images_per_s']:.3g} | "
            f"{entry['all_stages']['peak_total_mib']:.0f} |"
        )
    rows += [
        "",
        "| size | vs | denoiser throughput ratio | all-stages throughput ratio | denoiser memory ratio | "
        "all-stages memory ratio |",
        "|---|---|---|---|---|---|",
    ]
    for entry in results["sizes"]:
        for name, r in entry["latent_vs_pixel"].items():
            rows.append(
                f"| {entry['size']} px | {names[name]} | {r['denoiser_throughput']:.2f}x | "
                f"{r['all_stages_throughput']:.2f}x | "
                f"{r['denoiser_memory']:.2f} | {r['all_stages_memory']:.2f} |"
            )
    return "\n".join(rows)


def ensemble_table(results: dict[str, Any]) -> str:
    """Metrics of the first 1, 5, N samples, the latent model at other DDIM steps, and the mask VAE's reconstruction
    Dice."""
    rows = ["| dataset | method | samples | Dice | GED | HM-IoU | ECE |", "|---|---|---|---|---|---|---|"]
    ceilings = []
    for name, entry in results["datasets"].items():
        for method, value in entry["methods"].items():
            if "mask_vae_reconstruction_dice" in value:
                recon = value["mask_vae_reconstruction_dice"]
                ceilings.append(
                    f"| {name} | {recon['mean']:.3f} ± {recon['std']:.3f} | "
                    f"{value['training']['mask_autoencoder']['iterations']} |"
                )
            if method == "unet":
                continue
            for k, summary in value["evaluation"]["summary"].items():
                cells = [
                    f"{summary[key]['mean']:.3f}" if key in summary else "-" for key in ("dice", "ged", "hm_iou", "ece")
                ]
                rows.append(f"| {name} | {method} | {k} (DDIM {entry['steps']}) | " + " | ".join(cells) + " |")
            for steps, swept in value.get("steps_sweep", {}).items():
                summary = swept["summary"][str(entry["ensemble_size"])]
                cells = [
                    f"{summary[key]['mean']:.3f}" if key in summary else "-" for key in ("dice", "ged", "hm_iou", "ece")
                ]
                rows.append(
                    f"| {name} | {method} | {entry['ensemble_size']} (DDIM {steps}) | " + " | ".join(cells) + " |"
                )
    if ceilings:
        rows += [
            "",
            "| dataset | mask VAE reconstruction Dice (encode -> decode the label) | mask VAE iterations |",
            "|---|---|---|",
            *ceilings,
        ]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="which results to read: cpu or cuda")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of the results JSON files")
    args = parser.parse_args(argv)
    sections = (
        ("1a sampling speed", "sampling_speed", sampling_table),
        ("1b training throughput", "training_throughput", training_table),
        ("1c equal-budget accuracy", "equal_budget_accuracy", accuracy_table),
        ("1c ensemble size, DDIM steps and the mask VAE's ceiling", "equal_budget_accuracy", ensemble_table),
    )
    for title, name, render in sections:
        path = args.results / f"{name}_{args.device}.json"
        try:
            print(f"### {title} ({path.name})\n\n{render(read_results(path))}\n")
        except MedsegError as exc:
            print(f"### {name}: {exc}\n", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
