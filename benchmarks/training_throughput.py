"""Benchmark 1b: training throughput (images/s) and peak memory per stage, latent stages vs the pixel-space denoiser.

One optimisation step (forward, loss, backward, AdamW step) on random data of the planned shapes, for each stage
of this project and for the pixel-space baseline (:mod:`benchmarks.baselines`), at each image size:

- ``image_autoencoder``: ``AutoencoderKL`` reconstructing the image (L1 + KL, :class:`ImageAutoencoderLoss`);
- ``mask_autoencoder``: the mask VAE (weighted CE + KL, :class:`MaskAutoencoderLoss`, the plan's weights);
- ``denoiser``: the latent denoiser, **including** the frozen encoders that turn each batch into latents
  (:class:`~medseglatdiff.engines.LatentDiffusionPrepareBatch` + MONAI ``DiffusionInferer``), as in training;
- ``pixel`` / ``pixel_planner``: the pixel-space denoiser (same width as the latent denoiser / the planner's
  memory rule), epsilon-prediction MSE on the full-resolution mask.

Images/s = batch / median step time; peak memory = the first step's peak above the weights already loaded
(gradients, AdamW state, activations; see :class:`benchmarks.common.PeakMemory`). ``all_stages`` is the latent
method's cost of one image through all three stages (1 / sum of 1 / throughput), compared with the pixel denoiser.

    python -m benchmarks.training_throughput --device cuda                 # the planned batch sizes
    python -m benchmarks.training_throughput --device cpu --batch_size 1 --warmup 0 --max_point_s 20
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.inferers import DiffusionInferer
from tqdm import tqdm

from benchmarks.baselines import PixelDiffusionSegmenter, pixel_denoiser, pixel_denoiser_plan
from benchmarks.common import (
    RESULTS_DIR,
    clock,
    machine_info,
    measure_calls,
    parameter_bytes,
    parse_with_presets,
    pyplot,
    save_figure,
    setup_device,
    write_results,
)
from benchmarks.planned import capped_planner, describe, latent_segmenter, planned_configuration
from medseglatdiff.engines import LatentDiffusionPrepareBatch
from medseglatdiff.errors import MedsegError
from medseglatdiff.losses import ImageAutoencoderLoss, MaskAutoencoderLoss
from medseglatdiff.networks import noise_scheduler

STAGES = ("image_autoencoder", "mask_autoencoder", "denoiser")


def _step(network: torch.nn.Module, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One AdamW step of ``network`` on the loss that ``loss_of`` computes."""
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        optimizer.step()

    return step


def benchmark_size(
    size: int,
    device: torch.device,
    batch_size: int | None = None,
    repeats: int = 3,
    warmup: int = 1,
    kind: str = "polyp",
    memory_gb: float = 24.0,
    max_width: int | None = None,
    max_point_s: float | None = None,
    clock_name: str = "wall",
    seed: int = 0,
) -> dict[str, Any]:
    """Step times and peak memory of the three latent stages and the pixel-space denoiser at one image size."""
    config = planned_configuration(size, kind, memory_gb, capped_planner(max_width))
    channels = int(config["num_channels"])
    model = latent_segmenter(config, conditioning="image_latent").to(device)  # the three stages as published
    pixel_plans = {
        "pixel": pixel_denoiser_plan(
            config["patch_size"],
            channels,
            memory_gb,
            max_width=max_width,
            base_width=int(config["denoiser"]["network"]["channels"][0]),
        ),
        "pixel_planner": pixel_denoiser_plan(config["patch_size"], channels, memory_gb, max_width=max_width),
    }
    if pixel_plans["pixel_planner"]["channels"] == pixel_plans["pixel"]["channels"]:
        del pixel_plans["pixel_planner"]
    batches = {stage: int(batch_size or config[stage]["batch_size"]) for stage in STAGES}
    batches.update({name: int(batch_size or plan["batch_size"]) for name, plan in pixel_plans.items()})
    gen = torch.Generator().manual_seed(seed)

    def data(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.rand(batch, channels, size, size, generator=gen).to(device)
        masks = (torch.rand(batch, 1, size, size, generator=gen) > 0.9).float().to(device)
        return images, masks

    image_loss = ImageAutoencoderLoss(config["image_autoencoder"]["kl_weight"])
    weights = config["mask_autoencoder"]["class_weights"]
    mask_loss = MaskAutoencoderLoss(weights[1], weights[0], config["mask_autoencoder"]["kl_weight"])
    ddpm = noise_scheduler(
        config["diffusion"]["num_train_timesteps"], config["diffusion"]["beta_start"], config["diffusion"]["beta_end"]
    )
    inferer = DiffusionInferer(ddpm)

    images_a, _ = data(batches["image_autoencoder"])
    _, masks_b = data(batches["mask_autoencoder"])
    images_c, masks_c = data(batches["denoiser"])
    calls = {
        "image_autoencoder": _step(
            model.image_autoencoder, lambda: image_loss(model.image_autoencoder(images_a), images_a)
        ),
        "mask_autoencoder": _step(model.mask_autoencoder, lambda: mask_loss(model.mask_autoencoder(masks_b), masks_b)),
    }
    # stage 3 trains the denoiser on latents of the frozen autoencoders (copies, so stages 1-2 above stay trainable)
    frozen_image = copy.deepcopy(model.image_autoencoder)
    frozen_mask = copy.deepcopy(model.mask_autoencoder)
    prepare = LatentDiffusionPrepareBatch(
        frozen_image, frozen_mask, model.scaling, config["diffusion"]["num_train_timesteps"]
    )

    def denoiser_loss() -> torch.Tensor:
        latents, target, _, kwargs = prepare({"image": images_c, "mask": masks_c}, device)
        prediction = inferer(inputs=latents, diffusion_model=model.denoiser, **kwargs)
        return torch.nn.functional.mse_loss(prediction, target["target"])

    calls["denoiser"] = _step(model.denoiser, denoiser_loss)
    networks: dict[str, torch.nn.Module] = {
        "image_autoencoder": model.image_autoencoder,
        "mask_autoencoder": model.mask_autoencoder,
        "denoiser": model.denoiser,
    }
    for name, plan in pixel_plans.items():
        pixel = PixelDiffusionSegmenter(pixel_denoiser(plan, channels)).to(device)
        images_p, masks_p = data(batches[name])
        calls[name] = _step(
            pixel,
            lambda pixel=pixel, images_p=images_p, masks_p=masks_p: pixel.training_loss(
                images_p, masks_p, inferer, config["diffusion"]["num_train_timesteps"]
            ),
        )
        networks[name] = pixel
    measured = measure_calls(calls, device, repeats, warmup, max_point_s, clock_name)
    for name, entry in measured.items():
        entry["batch_size"] = batches[name]
        entry["images_per_s"] = round(batches[name] / entry["median_s"], 3)
        entry["weights_mib"] = round(parameter_bytes(networks[name]) / 2**20, 1)
        entry["peak_total_mib"] = round(entry["peak_mib"] + entry["weights_mib"], 1)
    seconds_per_image = sum(1.0 / measured[stage]["images_per_s"] for stage in STAGES)
    all_stages = {
        "images_per_s": round(1.0 / seconds_per_image, 3),
        "peak_total_mib": max(measured[stage]["peak_total_mib"] for stage in STAGES),
    }
    ratios = {}
    for name in pixel_plans:
        pix = measured[name]
        ratios[name] = {
            "denoiser_throughput": round(measured["denoiser"]["images_per_s"] / pix["images_per_s"], 2),
            "all_stages_throughput": round(all_stages["images_per_s"] / pix["images_per_s"], 2),
            "denoiser_memory": round(measured["denoiser"]["peak_total_mib"] / pix["peak_total_mib"], 3),
            "all_stages_memory": round(all_stages["peak_total_mib"] / pix["peak_total_mib"], 3),
        }
    return {
        "size": size,
        "latent_plan": describe(config),
        "pixel_plans": {name: {k: v for k, v in plan.items() if k != "reasons"} for name, plan in pixel_plans.items()},
        "stages": measured,
        "all_stages": all_stages,
        "latent_vs_pixel": ratios,
    }


def plot(results: dict[str, Any], path: Path) -> Path:
    """Images/s (log scale) and peak memory per stage, one group of bars per image size."""
    plt = pyplot()
    names = ["image_autoencoder", "mask_autoencoder", "denoiser", "all_stages", "pixel", "pixel_planner"]
    labels = {
        "image_autoencoder": "image AE",
        "mask_autoencoder": "mask VAE",
        "denoiser": "latent denoiser",
        "all_stages": "latent, all 3 stages",
        "pixel": "pixel, same width",
        "pixel_planner": "pixel, planner width",
    }
    colors = {
        "image_autoencoder": "#9ecae1",
        "mask_autoencoder": "#6baed6",
        "denoiser": "#3182bd",
        "all_stages": "#08519c",
        "pixel": "#e6550d",
        "pixel_planner": "#fdae6b",
    }
    fig, (ax_speed, ax_mem) = plt.subplots(1, 2, figsize=(10, 3.6))
    sizes = results["sizes"]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, speed, memory = [], [], []
        for j, entry in enumerate(sizes):
            value = entry["all_stages"] if name == "all_stages" else entry["stages"].get(name)
            if value is None:
                continue
            xs.append(j + (i - len(names) / 2 + 0.5) * width)
            speed.append(value["images_per_s"])
            memory.append(value["peak_total_mib"])
        if xs:
            ax_speed.bar(xs, speed, width, label=labels[name], color=colors[name])
            ax_mem.bar(xs, memory, width, label=labels[name], color=colors[name])
    for ax, title in ((ax_speed, "training images / s (log)"), (ax_mem, "peak training memory, MiB (log)")):
        ax.set_yscale("log")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"{e['size']} px" for e in sizes])
        ax.set_title(f"{title}, {results['machine']['device']}", fontsize=9)
    ax_mem.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)


def run(
    out: str | Path,
    device: str = "cpu",
    sizes: Sequence[int] = (128, 256),
    batch_size: int | None = None,
    repeats: int = 3,
    warmup: int = 1,
    kind: str = "polyp",
    memory_gb: float = 24.0,
    max_width: int | None = None,
    max_point_s: float | None = None,
    threads: int | None = 1,
    plot_path: str | Path | None = None,
    clock_name: str = "wall",
) -> dict[str, Any]:
    """Run the benchmark and write the JSON results and the PNG plot."""
    dev = setup_device(device, threads)
    clock(clock_name, dev)  # fails early on a bad combination
    entries = [
        benchmark_size(s, dev, batch_size, repeats, warmup, kind, memory_gb, max_width, max_point_s, clock_name)
        for s in tqdm(sizes, desc="sizes")
    ]
    results = {
        "benchmark": "training_throughput",
        "machine": machine_info(dev),
        "kind": kind,
        "memory_gb": memory_gb,
        "batch_size": batch_size or "planned",
        "clock": clock_name,
        "repeats": repeats,
        "warmup": warmup,
        "max_width": max_width,
        "max_point_s": max_point_s,
        "command": " ".join(["python -m benchmarks.training_throughput", *sys.argv[1:]]),
        "sizes": entries,
    }
    out = write_results(out, results)
    plot(results, Path(plot_path) if plot_path else out.with_suffix(".png"))
    return results


PRESETS = {
    "cpu": {"device": "cpu", "clock": "process", "batch_size": 1, "warmup": 1, "repeats": 3, "max_point_s": 20.0},
    "gpu": {"device": "cuda"},
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/training_throughput_<device>.json)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --out)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="image sizes in px")
    parser.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="one batch size for every stage (default: each stage's planned one)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per stage (median reported)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed steps first (the first step measures memory either way)"
    )
    parser.add_argument(
        "--max_point_s", type=float, default=None, help="stop repeating a stage once its steps took this long"
    )
    parser.add_argument(
        "--kind",
        default="polyp",
        choices=["polyp", "nodule"],
        help="image statistics the planner sizes the networks for",
    )
    parser.add_argument(
        "--memory_gb", type=float, default=24.0, help="memory budget the planner sizes the networks for"
    )
    parser.add_argument("--max_width", type=int, default=None, help="cap on the planner's base widths (default: none)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: PyTorch's default)")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "process"],
        help="wall-clock seconds, or this process's CPU seconds (a shared CPU; not with cuda)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a seconds-long smoke run: 32 px, batch 2, 1 step, width 32"
    )
    args = parse_with_presets(parser, PRESETS, argv)
    if args.quick:
        args.sizes, args.batch_size, args.repeats, args.warmup, args.max_width = [32], 2, 1, 0, 32
    out = args.out or RESULTS_DIR / f"training_throughput_{torch.device(args.device).type}.json"
    try:
        results = run(
            out,
            args.device,
            args.sizes,
            args.batch_size,
            args.repeats,
            args.warmup,
            args.kind,
            args.memory_gb,
            args.max_width,
            args.max_point_s,
            args.threads or None,
            args.plot,
            args.clock,
        )
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry in results["sizes"]:
        stages = ", ".join(
            f"{name} {v['images_per_s']:.3g} img/s {v['peak_total_mib']:.0f} MiB" for name, v in entry["stages"].items()
        )
        print(
            f"{entry['size']} px: {stages}; all stages {entry['all_stages']['images_per_s']:.3g} img/s; "
            f"latent/pixel {entry['latent_vs_pixel']}"
        )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
