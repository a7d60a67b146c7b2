"""Diagnosis: where does the latent denoiser lose the image? One command, one JSON + PNG.

For each latent variant (default: the published method and this project's default recipe), trained for
``--budget_s`` on fold 0 of a dataset exactly as :mod:`benchmarks.equal_budget_accuracy` trains it, measure on the
scored validation cases:

1. **One-step Dice against the timestep**: noise the mask latent of the reference to ``t``, let the denoiser
   estimate the clean latent in one step, decode it and score it against the reference. At ``t = T - 1`` the
   input is pure noise, so the estimate can only come from the image: a denoiser that uses the image scores well
   there, one that ignores it scores like a constant.
2. **True vs shuffled condition**: the same with every image's condition replaced by another image's. If the
   Dice does not drop, the denoiser does not use the image.
3. **Can the image latent segment at all?** A deterministic DynUNet trained (same budget share as the
   denoiser) on the frozen *image-autoencoder latent* instead of the image, against the same DynUNet on the image.
   If the latent version is far worse, the image autoencoder threw away what the segmentation needs, and no
   denoiser on that latent can recover it.

    python -m benchmarks.diagnosis --preset cpu
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import SimpleInferer
from monai.losses import DiceCELoss
from monai.utils import set_determinism
from torch import nn

from benchmarks.baselines import deterministic_unet
from benchmarks.budget_training import VARIANTS, train_for, train_latent
from benchmarks.common import (
    RESULTS_DIR,
    machine_info,
    parse_with_presets,
    pyplot,
    save_figure,
    setup_device,
    write_results,
)
from benchmarks.equal_budget_accuracy import REPO_ROOT, evaluation_loader, prepare_dataset
from medseglatdiff.engines import KeyPrepareBatch
from medseglatdiff.errors import MedsegError
from medseglatdiff.losses import clean_latent_estimate
from medseglatdiff.networks import LatentDiffusionSegmenter, decode_masks, encode_images, encode_masks, noise_scheduler
from medseglatdiff.networks.conditioning import image_condition, latent_factor_of
from medseglatdiff.training import data_loader, training_dataset

TIMESTEPS = (999, 900, 750, 500, 250, 100, 10)


def dice(probabilities: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per-image Dice of ``probabilities >= 0.5`` against binary ``labels`` ``(B, 1, ...)`` (1 when both empty)."""
    pred = (probabilities >= 0.5).float()
    inter = (pred * labels).flatten(1).sum(1)
    total = pred.flatten(1).sum(1) + labels.flatten(1).sum(1)
    return [float(2 * i / s) if s > 0 else 1.0 for i, s in zip(inter, total)]


@torch.no_grad()
def one_step_scores(
    model: LatentDiffusionSegmenter,
    prediction_type: str,
    plan: dict[str, Any],
    loader: Any,
    device: torch.device,
    timesteps: Sequence[int] = TIMESTEPS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Mean one-step Dice per timestep, with the true and with a shuffled (rolled across the batch) condition."""
    diffusion = plan["diffusion"]
    ddpm = noise_scheduler(
        diffusion["num_train_timesteps"],
        diffusion["beta_start"],
        diffusion["beta_end"],
        diffusion["schedule"],
        prediction_type=prediction_type,
    )
    generator = torch.Generator().manual_seed(seed)
    scores: dict[str, dict[str, list[float]]] = {
        "true": {str(t): [] for t in timesteps},
        "shuffled": {str(t): [] for t in timesteps},
    }
    factor = latent_factor_of(model.mask_autoencoder)
    for batch in loader:
        images = batch["image"].float().to(device)
        labels = (batch["label"] > 0).float().to(device)
        if images.shape[0] < 2:
            continue
        condition = image_condition(images, model.conditioning, factor, model.image_autoencoder, model.scaling.image)
        latents = encode_masks(model.mask_autoencoder, labels, model.scaling.mask)
        for name, cond in (("true", condition), ("shuffled", condition.roll(1, dims=0))):
            for t in timesteps:
                noise = torch.randn(latents.shape, generator=generator).to(device)
                steps = torch.full((latents.shape[0],), int(t), device=device, dtype=torch.long)
                noisy = ddpm.add_noise(latents, noise, steps)
                prediction = model.denoiser(torch.cat([noisy, cond], dim=1), timesteps=steps)
                estimate = clean_latent_estimate(prediction, noisy, steps, ddpm.alphas_cumprod, prediction_type)
                scores[name][str(t)] += dice(decode_masks(model.mask_autoencoder, estimate, model.scaling.mask), labels)
    return {name: {t: round(float(np.mean(v)), 4) for t, v in by_t.items()} for name, by_t in scores.items()}


class LatentInputUNet(nn.Module):
    """A DynUNet on the frozen image-autoencoder latent; its logits are upsampled to the image grid."""

    def __init__(self, image_autoencoder: nn.Module, unet: nn.Module, scale: float) -> None:
        super().__init__()
        self.image_autoencoder = image_autoencoder.eval().requires_grad_(False)
        self.unet = unet
        self.scale = float(scale)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        latent = encode_images(self.image_autoencoder, images, self.scale)
        return F.interpolate(self.unet(latent), size=images.shape[2:], mode="bilinear", align_corners=False)


def score_deterministic(network: nn.Module, loader: Any, device: torch.device) -> float:
    network.eval()
    values: list[float] = []
    with torch.no_grad():
        for batch in loader:
            values += dice(
                torch.sigmoid(network(batch["image"].float().to(device))), (batch["label"] > 0).float().to(device)
            )
    return round(float(np.mean(values)), 4)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = setup_device(args.device, args.threads or None, args.seed)
    prepared = prepare_dataset(
        args.dataset, args.data_root, args.work, args.size, args.memory_gb, args.max_width, args.fold, args.num_workers
    )
    plan = prepared.plan
    rng = np.random.default_rng(args.seed)
    val = sorted(rng.choice(prepared.val, size=min(len(prepared.val), args.max_val_cases), replace=False).tolist())
    train_set = training_dataset(
        plan["data_folder"],
        prepared.train,
        prepared.patch_size,
        augment=False,
        cache_rate=1.0,
        seed=args.seed,
        slice_axis=plan["slice_axis"],
    )
    loader = data_loader(train_set, args.batch_size, shuffle=True, num_workers=0, drop_last=True)
    eval_loader = evaluation_loader(prepared, val, args.eval_batch)
    results: dict[str, Any] = {
        "benchmark": "diagnosis",
        "machine": machine_info(device),
        "dataset": args.dataset,
        "budget_s": args.budget_s,
        "clock": args.clock,
        "num_val_scored": len(val),
        "variants": {},
    }
    common = {"device": device, "seconds": args.budget_s, "lr": args.lr, "clock": args.clock, "amp": True}
    published_image_ae = None
    for name in args.variants:
        set_determinism(seed=args.seed)
        variant = VARIANTS[name]
        model, stats = train_latent(plan, loader, variant=variant, **common)
        entry = {
            "training": stats,
            "one_step_dice": one_step_scores(model, variant.prediction_type, plan, eval_loader, device, seed=args.seed),
        }
        results["variants"][name] = entry
        if model.image_autoencoder is not None and published_image_ae is None:
            published_image_ae = (model.image_autoencoder, float(model.scaling.image), stats["denoiser"]["seconds"])
        print(
            f"{name}: one-step Dice at t=999 true {entry['one_step_dice']['true']['999']:.3f} / shuffled "
            f"{entry['one_step_dice']['shuffled']['999']:.3f}; at t=10 {entry['one_step_dice']['true']['10']:.3f}",
            flush=True,
        )
    if published_image_ae is not None:
        image_ae, scale, seconds = published_image_ae
        latent_channels = int(image_ae.latent_channels)
        latent_patch = [p // latent_factor_of(image_ae) for p in prepared.patch_size]
        deterministic: dict[str, Any] = {}
        for label, network in (
            ("image", deterministic_unet(int(plan["num_channels"]), prepared.patch_size)),
            (
                "image_latent",
                LatentInputUNet(image_ae, deterministic_unet(latent_channels, latent_patch, min_edge=4), scale),
            ),
        ):
            set_determinism(seed=args.seed)
            network = network.to(device)
            stats = train_for(
                network,
                loader,
                DiceCELoss(sigmoid=True),
                KeyPrepareBatch("image", "mask"),
                SimpleInferer(),
                device,
                seconds,
                args.lr,
                args.clock,
                True,
                desc=f"DynUNet on the {label}",
            )
            deterministic[label] = {
                "dice": score_deterministic(network, eval_loader, device),
                "iterations": stats["iterations"],
                "seconds": stats["seconds"],
            }
            print(f"DynUNet on the {label}: Dice {deterministic[label]['dice']:.3f}", flush=True)
        results["deterministic_unet"] = deterministic
    return results


def plot(results: dict[str, Any], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, entry in results["variants"].items():
        for kind, style in (("true", "-"), ("shuffled", ":")):
            series = entry["one_step_dice"][kind]
            ts = sorted(int(t) for t in series)
            ax.plot(ts, [series[str(t)] for t in ts], style, marker="o", label=f"{name}, {kind} condition")
    for label, value in results.get("deterministic_unet", {}).items():
        ax.axhline(
            value["dice"],
            color="grey",
            linestyle="--" if label == "image" else "-.",
            linewidth=1,
            label=f"DynUNet on the {label}",
        )
    ax.set_xlabel("timestep t of the one-step x0 estimate (999: pure noise)")
    ax.set_ylabel("Dice of the decoded estimate")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6)
    ax.set_title(
        f"{results['dataset']}: {results['budget_s']:g} s ({results['clock']}) per method, "
        f"{results['num_val_scored']} val cases",
        fontsize=8,
    )
    return save_figure(fig, path)


PRESETS = {
    "cpu": {"device": "cpu", "clock": "process", "budget_s": 120.0, "size": 64, "max_width": 32, "max_val_cases": 40}
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/diagnosis_<device>.json)"
    )
    parser.add_argument("--dataset", default="kvasir_seg_full")
    parser.add_argument("--variants", nargs="+", default=["published", "default"], choices=list(VARIANTS))
    parser.add_argument("--data_root", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "medseglatdiff_benchmarks")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget_s", type=float, default=120.0)
    parser.add_argument("--clock", default="wall", choices=["wall", "process"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--memory_gb", type=float, default=4.0)
    parser.add_argument("--max_width", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max_val_cases", type=int, default=40)
    parser.add_argument("--eval_batch", type=int, default=8)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num_workers", type=int, default=1)
    return parse_with_presets(parser, PRESETS, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or RESULTS_DIR / f"diagnosis_{torch.device(args.device).type}.json"
    try:
        results = run(args)
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results["command"] = " ".join(["python -m benchmarks.diagnosis", *(argv if argv is not None else sys.argv[1:])])
    write_results(out, results)
    plot(results, out.with_suffix(".png"))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
