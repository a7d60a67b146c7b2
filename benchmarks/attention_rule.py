"""The cost of the planner's attention bound: the latent sampler's parts under two bounds, in one process.

The planner puts self-attention at the denoiser levels (and the autoencoders' latent level) with at most
``MAX_ATTENTION_TOKENS`` positions. This script plans the same image under each ``--tokens`` bound and times, for
an ensemble of ``--ensemble`` masks, the image encoder, the mask decoder and one denoising step, interleaved
(bound A, bound B, bound A, ...) so that background load hits both alike; medians of ``--repeats``. The time at
the planned 50 steps is ``encoder + decoder + 50 x step``.

    python -m benchmarks.attention_rule --preset cpu     # 256 px, N = 5, bounds 1024 (former) and 256 (current)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    RESULTS_DIR,
    machine_info,
    median,
    parse_with_presets,
    setup_device,
    time_call,
    write_results,
)
from benchmarks.planned import capped_planner, describe, latent_segmenter, planned_configuration
from benchmarks.sampling_speed import sampler_parts
from medseglatdiff.errors import MedsegError
from medseglatdiff.networks import sampling_scheduler

PARTS = ("encode_s", "decode_s", "step_s")


def part_calls(
    size: int, tokens: int, ensemble: int, memory_gb: float, device: torch.device
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The planned configuration under ``tokens`` and the three timed calls of its latent sampler."""
    config = planned_configuration(size, "polyp", memory_gb, capped_planner(attention_tokens=tokens))
    model = latent_segmenter(config, conditioning="image_latent").to(device).eval()  # the rule's measured networks
    image = torch.rand(1, int(config["num_channels"]), size, size, device=device)
    scheduler = sampling_scheduler(int(config["inference"]["num_inference_steps"]))
    calls = sampler_parts(model, config["latent_shape"], image, ensemble, scheduler)
    return config, calls


def run(
    out: Path,
    size: int,
    ensemble: int,
    tokens: Sequence[int],
    repeats: int,
    device_name: str,
    clock_name: str,
    memory_gb: float = 24.0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Time both bounds' parts interleaved; write and return the results."""
    device = setup_device(device_name, threads)
    planned = {t: part_calls(size, t, ensemble, memory_gb, device) for t in tokens}
    times: dict[int, dict[str, list[float]]] = {t: {p: [] for p in PARTS} for t in tokens}
    for t, (_, calls) in planned.items():  # one untimed call of each part first
        for fn in calls.values():
            fn()
    for _ in range(repeats):
        for part in PARTS:
            for t, (_, calls) in planned.items():
                times[t][part] += time_call(calls[part], device, 1, warmup=0, clock_name=clock_name)
    results: dict[str, Any] = {
        "benchmark": "attention_rule",
        "machine": machine_info(device),
        "size": size,
        "ensemble": ensemble,
        "clock": clock_name,
        "repeats": repeats,
        "command": " ".join(["python -m benchmarks.attention_rule", *sys.argv[1:]]),
        "bounds": {},
    }
    for t, (config, _) in planned.items():
        parts = {p: round(median(v), 4) for p, v in times[t].items()}
        steps = int(config["inference"]["num_inference_steps"])
        results["bounds"][str(t)] = {
            "plan": describe(config),
            "times_s": times[t],
            **parts,
            "at_planned_steps_s": round(parts["encode_s"] + parts["decode_s"] + steps * parts["step_s"], 3),
        }
    return {"path": str(write_results(out, results)), **results}


PRESETS = {"cpu": {"device": "cpu", "clock": "process"}, "gpu": {"device": "cuda", "clock": "wall"}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON (default benchmarks/results/attention_rule_<device>.json)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--clock", default="wall", choices=["wall", "process"], help="wall-clock or this process's CPU seconds"
    )
    parser.add_argument("--size", type=int, default=256, help="image size in px")
    parser.add_argument("--ensemble", type=int, default=5, help="ensemble size N")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 256], help="attention bounds to compare")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per part (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: PyTorch's default)")
    args = parse_with_presets(parser, PRESETS, argv)
    out = args.out or RESULTS_DIR / f"attention_rule_{torch.device(args.device).type}.json"
    try:
        results = run(
            out,
            args.size,
            args.ensemble,
            args.tokens,
            args.repeats,
            args.device,
            args.clock,
            threads=args.threads or None,
        )
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for t, v in results["bounds"].items():
        print(
            f"attention at <= {t} positions: levels {v['plan']['denoiser_attention_levels']}: "
            f"encode {v['encode_s']:.3f} s, decode {v['decode_s']:.3f} s, step {v['step_s']:.3f} s -> "
            f"{v['at_planned_steps_s']:.1f} s at the planned steps"
        )
    print(f"results: {results['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
