"""The variant table: the latent method's training levers, each trained for the same budget on the same split.

Every variant of :data:`benchmarks.budget_training.VARIANTS` is trained and scored exactly as the ``latent``
method of :mod:`benchmarks.equal_budget_accuracy` (same split, seed, clock, batches, evaluation cases); only the
variant differs. One JSON (``benchmarks/results/latent_variants_<device>.json``) and a markdown table.

    python -m benchmarks.latent_variants --preset cpu                    # every variant, Kvasir-SEG, 120 CPU-s each
    python -m benchmarks.latent_variants --preset cpu --variants published default
    python -m benchmarks.latent_variants --merge RUN.json ...            # add runs of equal_budget_accuracy --variant V

Runs of ``equal_budget_accuracy --methods latent --variant V`` (side by side on several cores) are the same
measurement; ``--merge`` files them into the table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.budget_training import VARIANTS
from benchmarks.common import RESULTS_DIR, machine_info, parse_with_presets, read_results, setup_device, write_results
from benchmarks.equal_budget_accuracy import parse_args as parse_accuracy_args
from benchmarks.equal_budget_accuracy import run_dataset
from medseglatdiff.errors import MedsegError


def _mask_vae(entry: dict[str, Any], variant: dict[str, Any]) -> str:
    overrides = dict(tuple(pair) for pair in variant.get("mask_network") or [])
    planned = entry["plan"]["autoencoder_channels"]
    channels = overrides.get(
        "channels",
        [int(c * overrides["base_width"] / planned[0]) for c in planned] if "base_width" in overrides else planned,
    )
    return f"{channels}" + (", 1 block, no attn" if overrides else "")


def row(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    latent = entry["methods"]["latent"]
    variant = latent["training"].get("variant", {})
    summary = latent["evaluation"]["summary"]
    size = str(entry["ensemble_size"])
    training = latent["training"]
    return {
        "variant": name,
        "dataset": entry["dataset"],
        "budget_s": entry["settings"]["budget_s"],
        "conditioning": variant.get("conditioning", "image_latent"),
        "prediction_type": variant.get("prediction_type", "epsilon"),
        "mask_loss_weight": variant.get("mask_loss_weight", 0.0),
        "ema_warmup_clip": bool(variant.get("ema_decay"))
        or bool(variant.get("warmup"))
        or bool(variant.get("grad_clip")),
        "mask_vae": _mask_vae(entry, variant) if "plan" in entry else "-",
        "denoiser_width": variant.get("denoiser_width", 1.0),
        "iterations": " / ".join(
            str(training[s]["iterations"]) for s in ("image_autoencoder", "mask_autoencoder", "denoiser")
        ),
        "reconstruction_dice": latent.get("mask_vae_reconstruction_dice", {}).get("mean"),
        "dice": summary[size]["dice"]["mean"],
        "dice_1": summary.get("1", {}).get("dice", {}).get("mean"),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| variant | conditioning | prediction | mask loss | EMA + warm-up + clip | mask VAE widths | denoiser width "
        "| iterations (image AE / mask VAE / denoiser) "
        "| mask VAE recon. Dice | Dice (5 samples) | Dice (1 sample) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted((row(n, e) for n, e in results["variants"].items()), key=lambda r: -r["dice"])
    for r in rows:
        recon = f"{r['reconstruction_dice']:.3f}" if r["reconstruction_dice"] is not None else "-"
        one = f"{r['dice_1']:.3f}" if r["dice_1"] is not None else "-"
        lines.append(
            f"| {r['variant']} | {r['conditioning']} | {r['prediction_type']} | {r['mask_loss_weight']:g} | "
            f"{'yes' if r['ema_warmup_clip'] else 'no'} | {r['mask_vae']} | x{r['denoiser_width']:g} | "
            f"{r['iterations']} | {recon} | **{r['dice']:.3f}** | {one} |"
        )
    return "\n".join(lines)


PRESETS = {"cpu": {"device": "cpu", "clock": "process", "budget_s": 120.0}}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/latent_variants_<device>.json)"
    )
    parser.add_argument("--dataset", default="kvasir_seg_full")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", default="wall", choices=["wall", "process"])
    parser.add_argument("--budget_s", type=float, default=120.0)
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="equal_budget_accuracy JSON files of --methods latent --variant V runs",
    )
    return parse_with_presets(parser, PRESETS, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or RESULTS_DIR / f"latent_variants_{torch.device(args.device).type}.json"
    results: dict[str, Any] = read_results(out) if out.is_file() else {"benchmark": "latent_variants", "variants": {}}
    try:
        for path in args.merge:
            run = read_results(path)
            for name, entry in run["datasets"].items():
                variant = entry["settings"].get("variant", "published")
                results["variants"][variant] = {**entry, "command": entry.get("command", "")}
        if not args.merge:
            device = setup_device(args.device, 1, 0)
            results["machine"] = machine_info(device)
            for name in args.variants:
                accuracy = parse_accuracy_args(
                    [
                        "--preset",
                        "cpu" if args.device == "cpu" else "gpu",
                        "--budget_s",
                        str(args.budget_s),
                        "--datasets",
                        args.dataset,
                        "--methods",
                        "latent",
                        "--variant",
                        name,
                        "--latent_steps",
                        "--clock",
                        args.clock,
                        "--device",
                        args.device,
                    ]
                )
                entry = run_dataset(args.dataset, accuracy, device)
                results["variants"][name] = {
                    **entry,
                    "command": f"python -m benchmarks.latent_variants {' '.join(argv or sys.argv[1:])}",
                }
                write_results(out, results)
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_results(out, results)
    print(table(results))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
