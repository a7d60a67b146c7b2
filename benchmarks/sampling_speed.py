"""Benchmark 1a: time and peak memory to sample an ensemble of N masks for one image, latent vs pixel space.

For each image size and ensemble size N, in one process and on the same input:

- ``latent`` (this project): :func:`medseglatdiff.networks.sample_masks` with the networks the planner builds for
  such an image (:mod:`benchmarks.planned`): image encoder -> N DDIM trajectories in the latent space (one batch)
  -> mask VAE decoder;
- ``pixel`` (the baseline, :mod:`benchmarks.baselines`): N DDIM trajectories of a full-resolution
  ``DiffusionModelUNet`` with the image concatenated, the same scheduler and step count, sized by the project's
  denoiser rules at full resolution with the latent denoiser's base width (MedSegDiff and Wolleb et al. also use
  128 channels at 256 px);
- ``pixel_planner`` (where it differs): the same pixel-space UNet with the base width the planner's *memory* rule
  would give it (the widest of 128/64/32 training 16 samples per batch in ``--memory_gb``).

Weights are untrained: the work per step does not depend on them. The first call of each sampler measures peak
memory (:class:`benchmarks.common.PeakMemory`); times are medians of up to ``--repeats`` calls, interleaved across
methods so that background load hits all of them alike, after ``--warmup`` untimed calls. A method whose calls
have taken ``--max_point_s`` in total stops repeating; a call predicted (linearly in N from the previous N) to take
more than ``--max_call_s`` is skipped and its prediction recorded. The time of a sampler is
``fixed + steps x per_step``: the latent sampler's fixed part (encoder, decoder) and one denoising step (denoiser
forward + DDIM update at batch N) are timed on their own, the pixel sampler has no fixed part. A run with fewer
steps than planned (``--steps``, to fit a CPU) also reports the time projected to the planned steps from these
parts (``parts_vs_measured`` checks them against the measured call); the speed-up measured at fewer steps is a
lower bound of the one at the planned steps.

    python -m benchmarks.sampling_speed --preset gpu          # the planned 50 DDIM steps
    python -m benchmarks.sampling_speed --preset cpu          # 1 step per call, projected to 50
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from benchmarks.baselines import PixelDiffusionSegmenter, pixel_denoiser, pixel_denoiser_plan
from benchmarks.common import (
    RESULTS_DIR,
    clock,
    machine_info,
    measure_calls,
    median,
    parameter_bytes,
    parse_with_presets,
    pyplot,
    save_figure,
    setup_device,
    time_call,
    write_results,
)
from benchmarks.planned import capped_planner, describe, latent_segmenter, planned_configuration
from medseglatdiff.errors import MedsegError
from medseglatdiff.networks import decode_masks, sampling_scheduler
from medseglatdiff.networks.conditioning import image_condition, latent_factor_of
from medseglatdiff.networks.image_encoder import sampling_network

METHODS = ("latent", "pixel", "pixel_planner")


def denoising_step(denoiser: torch.nn.Module, scheduler: Any, latents: torch.Tensor, condition: torch.Tensor) -> Any:
    """One DDIM step of the latent sampler on ``latents`` (as ``DiffusionInferer.sample`` in ``"concat"`` mode)."""
    timestep = scheduler.timesteps[0]

    @torch.no_grad()
    def step() -> torch.Tensor:
        noise = denoiser(
            torch.cat([latents, condition], dim=1),
            timesteps=torch.full((latents.shape[0],), int(timestep), device=latents.device),
        )
        return scheduler.step(noise, timestep, latents)[0]

    return step


def sampler_parts(
    model: Any, latent_shape: Sequence[int], image: torch.Tensor, ensemble: int, scheduler: Any
) -> dict[str, Any]:
    """The latent sampler's parts as calls: ``encode_s`` (the image's condition, once: the image autoencoder's
    latent, or the pixels and the denoiser's image encoder), ``decode_s`` (``ensemble`` masks), ``step_s`` (one DDIM
    step)."""
    device = image.device
    factor = latent_factor_of(model.mask_autoencoder)
    latents = torch.randn(ensemble, model.mask_autoencoder.latent_channels, *latent_shape, device=device)

    @torch.no_grad()
    def encode() -> Any:
        condition = image_condition(image, model.conditioning, factor, model.image_autoencoder)
        return sampling_network(model.denoiser, condition)

    network, condition = encode()

    @torch.no_grad()
    def decode() -> Any:
        return decode_masks(model.mask_autoencoder, latents)

    return {
        "encode_s": encode,
        "decode_s": decode,
        "step_s": denoising_step(network, scheduler, latents, condition.repeat_interleave(ensemble, dim=0)),
    }


def benchmark_size(
    size: int,
    ensemble_sizes: Sequence[int],
    steps: int | None,
    device: torch.device,
    repeats: int = 3,
    warmup: int = 1,
    kind: str = "polyp",
    memory_gb: float = 24.0,
    max_width: int | None = None,
    max_point_s: float | None = None,
    max_call_s: float | None = None,
    clock_name: str = "wall",
    seed: int = 0,
    attention_tokens: int | None = None,
) -> dict[str, Any]:
    """Latent and pixel-space sampling for every N at one image size."""
    planner = capped_planner(max_width, attention_tokens=attention_tokens)
    config = planned_configuration(size, kind, memory_gb, planner)
    channels = int(config["num_channels"])
    latent = latent_segmenter(config).to(device).eval()
    samplers: dict[str, Any] = {"latent": latent}
    pixel_plans = {
        "pixel": pixel_denoiser_plan(
            config["patch_size"],
            channels,
            memory_gb,
            max_width=max_width,
            base_width=int(config["denoiser"]["network"]["channels"][0]),
            planner_class=planner,
        ),
        "pixel_planner": pixel_denoiser_plan(
            config["patch_size"], channels, memory_gb, max_width=max_width, planner_class=planner
        ),
    }
    if pixel_plans["pixel_planner"]["channels"] == pixel_plans["pixel"]["channels"]:
        del pixel_plans["pixel_planner"]
    for name, plan in pixel_plans.items():
        samplers[name] = PixelDiffusionSegmenter(pixel_denoiser(plan, channels)).to(device).eval()
    planned_steps = int(config["inference"]["num_inference_steps"])
    steps = int(steps or planned_steps)
    scheduler = sampling_scheduler(steps)
    image = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(seed)).to(device)
    out: dict[str, Any] = {
        "size": size,
        "steps": steps,
        "planned_steps": planned_steps,
        "latent_plan": describe(config),
        "pixel_plans": {name: {k: v for k, v in plan.items() if k != "reasons"} for name, plan in pixel_plans.items()},
        "weights_mib": {name: round(parameter_bytes(m) / 2**20, 1) for name, m in samplers.items()},
        "by_ensemble": {},
    }
    per_sample: dict[str, float] = {}
    for n in tqdm(ensemble_sizes, desc=f"{size} px", leave=False):
        generator = torch.Generator(device=device).manual_seed(seed)
        calls, skipped = {}, {}
        for name, sampler in samplers.items():
            predicted = per_sample.get(name, 0.0) * n
            if max_call_s is not None and predicted > max_call_s:
                skipped[name] = {
                    "skipped": True,
                    "predicted_s": round(predicted, 1),
                    "reason": f"predicted {predicted:.0f} s per call (linear in N) > --max_call_s {max_call_s:g}",
                }
                continue
            calls[name] = lambda sampler=sampler: sampler.sample(image, scheduler, num_samples=n, generator=generator)
        measured = measure_calls(calls, device, repeats, warmup, max_point_s, clock_name)
        for name, entry in measured.items():
            per_sample[name] = entry["median_s"] / n
            entry["per_step_s"] = round(entry["median_s"] / steps, 5)
            entry["projected_s"] = round(planned_steps * entry["per_step_s"], 3)
        if "latent" in measured:
            lat = measured["latent"]
            parts = {
                name: median(time_call(call, device, max(repeats, 1), warmup=1, clock_name=clock_name))
                for name, call in sampler_parts(latent, config["latent_shape"], image, n, scheduler).items()
            }
            fixed, step_s = parts["encode_s"] + parts["decode_s"], parts["step_s"]
            lat["encode_decode_s"] = round(fixed, 4)
            lat["per_step_s"] = round(step_s, 5)
            lat["projected_s"] = round(fixed + planned_steps * step_s, 3)
            lat["parts_vs_measured"] = round((fixed + steps * step_s) / lat["median_s"], 3)
        entry = {**measured, **skipped, "speedup": {}, "speedup_projected": {}, "memory_ratio": {}}
        for name in pixel_plans:
            if name in measured and "latent" in measured:
                lat, pix = measured["latent"], measured[name]
                entry["speedup"][name] = round(pix["median_s"] / lat["median_s"], 2)
                entry["speedup_projected"][name] = round(pix["projected_s"] / lat["projected_s"], 2)
                entry["memory_ratio"][name] = round(pix["peak_mib"] / max(lat["peak_mib"], 1e-6), 2)
        out["by_ensemble"][str(n)] = entry
    return out


def plot(results: dict[str, Any], path: Path) -> Path:
    """Time per ensemble at the planned steps (log scale) against N, one panel per image size, with the speed-ups.

    When the run used fewer steps than planned, the times are the projections from the measured parts.
    """
    plt = pyplot()
    sizes = results["sizes"]
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(5.0 * len(sizes), 3.6), squeeze=False, gridspec_kw={"wspace": 0.35}
    )
    styles = {"latent": "o-", "pixel": "s--", "pixel_planner": "^:"}
    labels = {
        "latent": "latent (this project)",
        "pixel": "pixel space, same width",
        "pixel_planner": "pixel space, planner width",
    }
    for ax, entry in zip(axes[0], sizes):
        ns = [int(n) for n in entry["by_ensemble"]]
        ax.set_xlim(min(ns) / 1.5, max(ns) * 1.5)
        for method in METHODS:
            points = [
                (n, entry["by_ensemble"][str(n)][method]["projected_s"])
                for n in ns
                if "projected_s" in entry["by_ensemble"][str(n)].get(method, {})
            ]
            if points:
                ax.plot(*zip(*points), styles[method], label=labels[method])
        for n in ns:
            value = entry["by_ensemble"][str(n)]
            if "pixel" in value["speedup_projected"]:
                ax.annotate(
                    f"x{value['speedup_projected']['pixel']:.0f}",
                    (n, value["latent"]["projected_s"]),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=8,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.set_xlabel("ensemble size N")
        measured = "" if entry["steps"] == entry["planned_steps"] else f"\n(projected from {entry['steps']}-step runs)"
        ax.set_ylabel(f"seconds per image, {entry['planned_steps']} DDIM steps{measured}", fontsize=8)
        ax.set_title(
            f"{entry['size']} px, {results['machine']['device']} ({results.get('clock', 'wall')} clock)", fontsize=9
        )
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def run(
    out: str | Path,
    device: str = "cpu",
    sizes: Sequence[int] = (128, 256),
    ensemble_sizes: Sequence[int] = (1, 5, 16),
    steps: int | None = None,
    repeats: int = 3,
    warmup: int = 1,
    kind: str = "polyp",
    memory_gb: float = 24.0,
    max_width: int | None = None,
    max_point_s: float | None = None,
    max_call_s: float | None = None,
    threads: int | None = 1,
    plot_path: str | Path | None = None,
    clock_name: str = "wall",
    attention_tokens: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write the JSON results and the PNG plot."""
    dev = setup_device(device, threads)
    clock(clock_name, dev)  # fails early on a bad combination
    entries = [
        benchmark_size(
            s,
            ensemble_sizes,
            steps,
            dev,
            repeats,
            warmup,
            kind,
            memory_gb,
            max_width,
            max_point_s,
            max_call_s,
            clock_name,
            attention_tokens=attention_tokens,
        )
        for s in tqdm(sizes, desc="sizes")
    ]
    results = {
        "benchmark": "sampling_speed",
        "machine": machine_info(dev),
        "kind": kind,
        "memory_gb": memory_gb,
        "clock": clock_name,
        "repeats": repeats,
        "warmup": warmup,
        "max_width": max_width,
        "max_point_s": max_point_s,
        "max_call_s": max_call_s,
        "attention_tokens": attention_tokens,
        "command": " ".join(["python -m benchmarks.sampling_speed", *sys.argv[1:]]),
        "sizes": entries,
    }
    out = write_results(out, results)
    plot(results, Path(plot_path) if plot_path else out.with_suffix(".png"))
    return results


PRESETS = {
    # one thread, CPU seconds, 1 DDIM step per call projected to the plan's 50; the pixel 256 px N = 16 call is skipped
    "cpu": {
        "device": "cpu",
        "clock": "process",
        "steps": 1,
        "warmup": 1,
        "repeats": 3,
        "max_point_s": 20.0,
        "max_call_s": 300.0,
    },
    "gpu": {"device": "cuda"},
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/sampling_speed_<device>.json)"
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --out)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="image sizes in px")
    parser.add_argument("--ensemble", type=int, nargs="+", default=[1, 5, 16], help="ensemble sizes N")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps for every method (default: the plan's 50)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median reported)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed calls first (the first call measures memory either way)"
    )
    parser.add_argument(
        "--max_point_s", type=float, default=None, help="stop repeating a method once its calls took this long"
    )
    parser.add_argument("--max_call_s", type=float, default=None, help="skip calls predicted to take longer than this")
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
    parser.add_argument(
        "--attention_tokens",
        type=int,
        default=None,
        help="attention only at levels with at most this many positions (default: the planner's rule, 256)",
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: PyTorch's default)")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "process"],
        help="wall-clock seconds, or this process's CPU seconds (a shared CPU; not with cuda)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a seconds-long smoke run: 32 px, N = 1, 2, 2 steps, 1 repeat, width 32"
    )
    args = parse_with_presets(parser, PRESETS, argv)
    if args.quick:
        args.sizes, args.ensemble, args.steps, args.repeats, args.warmup, args.max_width = [32], [1, 2], 2, 1, 0, 32
    out = args.out or RESULTS_DIR / f"sampling_speed_{torch.device(args.device).type}.json"
    try:
        results = run(
            out,
            args.device,
            args.sizes,
            args.ensemble,
            args.steps,
            args.repeats,
            args.warmup,
            args.kind,
            args.memory_gb,
            args.max_width,
            args.max_point_s,
            args.max_call_s,
            args.threads or None,
            args.plot,
            args.clock,
            args.attention_tokens,
        )
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry in results["sizes"]:
        for n, value in entry["by_ensemble"].items():
            parts = [f"{entry['size']} px N={n} ({entry['steps']} steps):"]
            for method in METHODS:
                if method in value:
                    m = value[method]
                    parts.append(
                        f"{method} {m['median_s']:.3f} s / {m['peak_mib']:.0f} MiB"
                        if "median_s" in m
                        else f"{method} skipped"
                    )
            parts.append(
                f"speed-up {value['speedup']} (projected to {entry['planned_steps']} steps "
                f"{value['speedup_projected']})"
            )
            print(" ".join(parts))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
