r"""Benchmark 1c: accuracy after an equal training budget: latent vs pixel-space diffusion vs a deterministic UNet.

For each dataset: convert it from ``--data_root`` into ``--work`` (outside the repository; converted and
preprocessed data are reused by later runs), plan it with this project's planner, preprocess it, take fold
``--fold`` of the project's splits (grouped by video sequence for CVC-ClinicDB and by patient for LIDC-IDRI;
Kvasir-SEG has no groups) and train every method for ``--budget_s`` seconds on the same training cases and the
same batches (:mod:`benchmarks.budget_training`). Then score the same validation cases:

- Kvasir-SEG, CVC-ClinicDB: Dice and IoU of the ensemble mean thresholded at 0.5 against the label, ECE;
- LIDC-IDRI (4 readers): GED, HM-IoU (:mod:`medseglatdiff.evaluation.multirater`) of the samples against the
  readers, ECE of the mean against the readers' mean, and Dice against the majority label.

The deterministic UNet's one probability map stands for all N samples (GED and HM-IoU of a deterministic model).
Images are made small to fit a CPU budget: ``resize`` datasets are planned with inputs of at most ``--size`` px
(the planner downsamples the whole image), LIDC's 128 px nodule-centred crops are cut to their central ``--size`` px
(no resampling: nodules are a few pixels across; a larger ``--size`` keeps the whole crop). Validation images are
centre-cropped / padded to the training patch. Metrics are also reported for the first 1 and 5 samples of each
ensemble (ensemble-size tuning). The exact commands of the documented runs are in ``docs/benchmarks.md``.

    python -m benchmarks.equal_budget_accuracy --device cpu --clock process --budget_s 120 --size 64 \
        --max_width 32 --steps 5
    python -m benchmarks.equal_budget_accuracy --device cuda --budget_s 1800 --size 256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, EnsureTyped, ResizeWithPadOrCropd
from monai.utils import set_determinism
from tqdm import tqdm

from benchmarks.baselines import pixel_denoiser_plan
from benchmarks.budget_training import VARIANTS, train_latent, train_pixel, train_unet
from benchmarks.common import (
    RESULTS_DIR,
    clock,
    machine_info,
    parse_with_presets,
    pyplot,
    save_figure,
    setup_device,
    write_results,
)
from benchmarks.planned import capped_planner
from medseglatdiff.datasets.converters import convert
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.evaluation.multirater import (
    expected_calibration_error,
    generalized_energy_distance,
    hungarian_matched_iou,
)
from medseglatdiff.evaluation.overlap import overlap_metrics
from medseglatdiff.networks import sampling_scheduler
from medseglatdiff.planning.pipeline import fingerprint_dataset
from medseglatdiff.planning.plans_io import PLANS_FILE, save_plans
from medseglatdiff.preprocessing.preprocess import preprocess
from medseglatdiff.training import data_loader, fold_split, training_dataset, training_plan
from medseglatdiff.training.transforms import LoadPreprocessedCased

REPO_ROOT = Path(__file__).resolve().parents[1]
METHODS = ("latent", "pixel", "unet")
METRIC_NAMES = {"dice": "Dice", "iou": "IoU", "ece": "ECE", "ged": "GED (lower\nis better)", "hm_iou": "HM-IoU"}
LABELS = {
    "latent": "latent diffusion (this project)",
    "pixel": "pixel-space diffusion",
    "unet": "deterministic DynUNet",
}


@dataclass(frozen=True)
class BenchmarkDataset:
    """How one dataset folder of ``--data_root`` is converted, downsized and scored."""

    converter: str
    scoring: str  # "overlap" (Dice/IoU against one label) or "multirater" (GED/HM-IoU against the readers)
    mode: str  # "resize": plan inputs of at most --size px; "crop": central --size px of the planned grid
    ensemble_size: int
    split: str


DATASETS = {
    "kvasir_seg_full": BenchmarkDataset(
        "kvasir_seg", "overlap", "resize", 5, "images (Kvasir-SEG has no patient or sequence ids)"
    ),
    "cvc_clinicdb_full": BenchmarkDataset("cvc_clinicdb", "overlap", "resize", 5, "video sequences"),
    "lidc_idri_full": BenchmarkDataset("lidc", "multirater", "crop", 16, "patients"),
    # the small samples, for smoke runs
    "kvasir_seg": BenchmarkDataset("kvasir_seg", "overlap", "resize", 5, "images"),
    "cvc_clinicdb": BenchmarkDataset("cvc_clinicdb", "overlap", "resize", 5, "video sequences"),
    "lidc_idri": BenchmarkDataset("lidc", "multirater", "crop", 16, "patients"),
}


@dataclass
class Prepared:
    """A converted, planned and preprocessed dataset with its split."""

    name: str
    work: Path
    plan: dict[str, Any]
    patch_size: list[int]
    train: list[str]
    val: list[str]


def prepare_dataset(
    name: str,
    data_root: Path,
    work_root: Path,
    size: int,
    memory_gb: float,
    max_width: int | None,
    fold: int,
    num_workers: int = 1,
) -> Prepared:
    """Convert (once), fingerprint, plan with the capped planner, preprocess (skips finished cases) and split."""
    if name not in DATASETS:
        raise MedsegError(f"unknown benchmark dataset {name!r}; choose from {', '.join(DATASETS)}")
    spec_ = DATASETS[name]
    src = Path(data_root) / name
    if not src.is_dir():
        raise MedsegError(f"{src}: dataset folder not found; pass --data_root, the folder that holds {name}/")
    root = Path(work_root).resolve()
    if REPO_ROOT in (root, *root.parents):
        raise MedsegError(
            f"--work {root} is inside the repository; converted data must stay outside it (e.g. /tmp/medseg_bench)"
        )
    raw = root / name / "raw"
    if not (raw / "dataset.json").is_file():
        convert(spec_.converter, src, raw, num_workers=num_workers, overwrite=True)
    work = root / name / f"{spec_.mode}{size}_width{max_width or 'planned'}_{memory_gb:g}gb"
    spec = DatasetSpec.load(raw)
    fingerprint, _ = fingerprint_dataset(spec, work, num_workers=num_workers, progress=True)
    planner = capped_planner(max_width, size if spec_.mode == "resize" else None)
    save_plans(planner(fingerprint, memory_gb).plan(["2d"]), work / PLANS_FILE)
    preprocess(spec, work, num_workers=num_workers, progress=True)
    plan = training_plan(work, "2d")
    patch = [int(p) if spec_.mode == "resize" else min(int(size), int(p)) for p in plan["patch_size"]]
    divisor = latent_factor(plan) * 2 ** (len(plan["denoiser"]["channels"]) - 1)
    if any(p % divisor for p in patch):
        raise MedsegError(
            f"--size {size}: the patch {patch} must be divisible by {divisor} "
            "(latent factor x 2^(denoiser levels - 1)) "
            f"for {name}'s plan; choose a multiple of {divisor}"
        )
    train, val = fold_split(work, plan, fold)
    return Prepared(name, work, plan, patch, train, val)


def latent_factor(plan: dict[str, Any]) -> int:
    """The autoencoders' downsampling factor: 2^(levels - 1)."""
    return 2 ** (len(plan["image_autoencoder"]["channels"]) - 1)


def evaluation_loader(prepared: Prepared, cases: Sequence[str], batch_size: int) -> DataLoader:
    """Whole validation cases, centre-cropped / padded to the training patch (image, label, raters)."""
    keys = ["image", "label", "raters"]
    transform = Compose(
        [
            LoadPreprocessedCased(),
            ResizeWithPadOrCropd(keys, prepared.patch_size, allow_missing_keys=True),
            EnsureTyped(keys, allow_missing_keys=True, track_meta=False),
        ]
    )
    folder = Path(prepared.plan["data_folder"])
    return DataLoader(
        Dataset([{"path": str(folder / f"{c}.npz")} for c in cases], transform), batch_size=batch_size, num_workers=0
    )


def score_case(
    samples: np.ndarray, label: np.ndarray, raters: np.ndarray | None, prefixes: Sequence[int], threshold: float = 0.5
) -> dict[str, dict[str, float]]:
    """Metrics of the first ``k`` samples (probabilities ``(N, *spatial)``) for every ``k`` in ``prefixes``."""
    out: dict[str, dict[str, float]] = {}
    for k in prefixes:
        mean = samples[:k].mean(axis=0)
        mask = (mean >= threshold).astype(np.uint8)
        scores = overlap_metrics(mask, label, classes=(1,), surface=False)[1]
        if raters is not None:
            binary = samples[:k] >= threshold
            scores["ged"] = generalized_energy_distance(list(binary), list(raters))
            if k >= len(raters):
                scores["hm_iou"] = hungarian_matched_iou(list(binary), list(raters))
            scores["ece"] = expected_calibration_error(mean, raters.mean(axis=0))
        else:
            scores["ece"] = expected_calibration_error(mean, label)
        out[str(k)] = {key: round(float(v), 4) for key, v in scores.items()}
    return out


def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device,
    ensemble_size: int,
    multirater: bool,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Per-case scores of ``predict`` (images -> probabilities ``(B, N, *spatial)``) and their means and deviations."""
    prefixes = sorted({k for k in (1, 5, ensemble_size) if k <= ensemble_size})
    per_case: dict[str, dict[str, dict[str, float]]] = {}
    for batch in tqdm(loader, desc="evaluate", leave=False):
        with torch.no_grad():
            probabilities = predict(batch["image"].float().to(device)).float().cpu().numpy()
        labels = (batch["label"].numpy()[:, 0] > 0).astype(np.uint8)
        raters = (batch["raters"].numpy() > 0).astype(np.uint8) if multirater and "raters" in batch else None
        for i, case in enumerate(batch["case"]):
            per_case[case] = score_case(
                probabilities[i], labels[i], raters[i] if raters is not None else None, prefixes, threshold
            )
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for k in map(str, prefixes):
        keys = sorted({key for scores in per_case.values() for key in scores[k]})
        summary[k] = {
            key: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4), "n": len(v)}
            for key in keys
            for v in [[s[k][key] for s in per_case.values() if key in s[k]]]
        }
    return {"ensemble_size": ensemble_size, "summary": summary, "per_case": per_case}


def mask_vae_dice(model: Any, loader: DataLoader, device: torch.device, threshold: float = 0.5) -> dict[str, float]:
    """Dice of the mask VAE's reconstruction (posterior mean, decoded) of each reference label: the latent method's
    ceiling."""
    scores = []
    with torch.no_grad():
        for batch in loader:
            labels = (batch["label"] > 0).float().to(device)
            z_mu, _ = model.mask_autoencoder.encode(labels)
            recon = torch.sigmoid(model.mask_autoencoder.decode(z_mu)) >= threshold
            for pred, ref in zip(recon.cpu().numpy(), labels.cpu().numpy()):
                scores.append(
                    overlap_metrics(pred[0].astype(np.uint8), ref[0].astype(np.uint8), classes=(1,), surface=False)[1][
                        "dice"
                    ]
                )
    return {"mean": round(float(np.mean(scores)), 4), "std": round(float(np.std(scores)), 4), "n": len(scores)}


def run_dataset(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Prepare ``name``, train and evaluate every method; returns its results entry."""
    spec = DATASETS[name]
    prepared = prepare_dataset(
        name, args.data_root, args.work, args.size, args.memory_gb, args.max_width, args.fold, args.num_workers
    )
    plan = prepared.plan
    ensemble = int(args.ensemble_size or spec.ensemble_size)
    steps = int(args.steps or plan["inference"]["num_inference_steps"])
    rng = np.random.default_rng(args.seed)
    val = sorted(
        rng.choice(prepared.val, size=min(len(prepared.val), args.max_val_cases), replace=False).tolist()
        if args.max_val_cases
        else prepared.val
    )
    train_set = training_dataset(
        plan["data_folder"],
        prepared.train,
        prepared.patch_size,
        augment=args.augment,
        cache_rate=1.0,
        seed=args.seed,
        slice_axis=plan["slice_axis"],
    )
    loader = data_loader(train_set, args.batch_size, shuffle=True, num_workers=0, drop_last=True)
    eval_loader = evaluation_loader(prepared, val, args.eval_batch)
    channels = int(plan["num_channels"])
    pixel_plan = pixel_denoiser_plan(
        prepared.patch_size,
        channels,
        args.memory_gb,
        num_samples=len(prepared.train),
        max_width=args.max_width,
        base_width=int(plan["denoiser"]["channels"][0]),
    )
    scheduler = sampling_scheduler(
        steps,
        plan["diffusion"]["num_train_timesteps"],
        plan["diffusion"]["beta_start"],
        plan["diffusion"]["beta_end"],
        plan["diffusion"]["schedule"],
    )
    entry: dict[str, Any] = {
        "dataset": name,
        "work": str(prepared.work),
        "split": f"fold {args.fold} of 5, grouped by {spec.split}",
        "num_train": len(prepared.train),
        "num_val": len(prepared.val),
        "num_val_scored": len(val),
        "patch_size": prepared.patch_size,
        "mode": spec.mode,
        "settings": {
            key: (str(v) if isinstance(v, Path) else v)
            for key, v in vars(args).items()
            if key not in ("out", "plot", "datasets")
        },
        "plan": {
            "latent_factor": latent_factor(plan),
            "autoencoder_channels": plan["image_autoencoder"]["channels"],
            "denoiser_channels": plan["denoiser"]["channels"],
            "latent_channels": [
                plan["image_autoencoder"]["latent_channels"],
                plan["mask_autoencoder"]["latent_channels"],
            ],
            "foreground_weight": plan["mask_autoencoder"]["foreground_weight"],
        },
        "pixel_plan": {k: v for k, v in pixel_plan.items() if k != "reasons"},
        "ensemble_size": ensemble,
        "steps": steps,
        "methods": {},
    }
    now = clock(args.clock, device)
    for method in args.methods:
        set_determinism(seed=args.seed)
        common = {"device": device, "seconds": args.budget_s, "lr": args.lr, "clock": args.clock, "amp": True}
        if method == "latent":
            variant = VARIANTS[args.variant]
            model, stats = train_latent(plan, loader, shares=args.shares, variant=variant, **common)
            latent_scheduler = sampling_scheduler(
                steps,
                plan["diffusion"]["num_train_timesteps"],
                plan["diffusion"]["beta_start"],
                plan["diffusion"]["beta_end"],
                plan["diffusion"]["schedule"],
                variant.prediction_type,
            )

            def predict(images: torch.Tensor, model: Any = model, sch: Any = latent_scheduler) -> torch.Tensor:
                return model.sample(
                    images, sch, num_samples=ensemble, generator=torch.Generator(device=device).manual_seed(args.seed)
                )[:, :, 0]  # the one foreground channel
        elif method == "pixel":
            model, stats = train_pixel(pixel_plan, plan, loader, **common)

            def predict(images: torch.Tensor, model: Any = model) -> torch.Tensor:
                return model.sample(
                    images,
                    scheduler,
                    num_samples=ensemble,
                    generator=torch.Generator(device=device).manual_seed(args.seed),
                )
        elif method == "unet":
            model, stats = train_unet(plan, prepared.patch_size, loader, **common)

            def predict(images: torch.Tensor, model: Any = model) -> torch.Tensor:
                return torch.sigmoid(model(images)).repeat(1, ensemble, *([1] * (images.ndim - 2)))
        else:
            raise MedsegError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        start, wall = now(), time.perf_counter()
        scores = evaluate(predict, eval_loader, device, ensemble, spec.scoring == "multirater")
        scores["seconds"] = round(now() - start, 2)
        scores["wall_seconds"] = round(time.perf_counter() - wall, 2)
        entry["methods"][method] = {"training": stats, "evaluation": scores}
        if method == "latent":
            entry["methods"][method]["mask_vae_reconstruction_dice"] = mask_vae_dice(model, eval_loader, device)
        if method == "latent" and args.latent_steps:
            sweep = {}
            for other in args.latent_steps:
                sweep_scheduler = sampling_scheduler(
                    other,
                    plan["diffusion"]["num_train_timesteps"],
                    plan["diffusion"]["beta_start"],
                    plan["diffusion"]["beta_end"],
                    plan["diffusion"]["schedule"],
                    VARIANTS[args.variant].prediction_type,
                )

                def predict_steps(images: torch.Tensor, model: Any = model, sch: Any = sweep_scheduler) -> torch.Tensor:
                    return model.sample(
                        images,
                        sch,
                        num_samples=ensemble,
                        generator=torch.Generator(device=device).manual_seed(args.seed),
                    )[:, :, 0]

                start = now()
                swept = evaluate(predict_steps, eval_loader, device, ensemble, spec.scoring == "multirater")
                sweep[str(other)] = {"summary": swept["summary"], "seconds": round(now() - start, 2)}
            entry["methods"][method]["steps_sweep"] = sweep
        print(
            f"{name} {method}: {format_summary(scores['summary'][str(ensemble)])} (trained {stats.get('seconds')} s, "
            f"evaluated in {scores['seconds']} s)",
            flush=True,
        )
    return entry


def format_summary(summary: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{k} {v['mean']:.3f}" for k, v in summary.items())


def table(results: dict[str, Any]) -> str:
    """A markdown table: one row per dataset and method, the full-ensemble metrics (mean +- std over cases)."""
    rows = [
        "| dataset | method | Dice | IoU | GED | HM-IoU | ECE | training iterations | scored cases |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["datasets"].items():
        for method, value in entry["methods"].items():
            summary = value["evaluation"]["summary"][str(entry["ensemble_size"])]

            def cell(key: str) -> str:
                return f"{summary[key]['mean']:.3f} ± {summary[key]['std']:.3f}" if key in summary else "-"

            training = value["training"]
            iterations = (
                " / ".join(
                    str(training[s]["iterations"]) for s in ("image_autoencoder", "mask_autoencoder", "denoiser")
                )
                if method == "latent"
                else str(training["iterations"])
            )
            ece = cell("ece")
            rows.append(
                f"| {name} | {method} | {cell('dice')} | {cell('iou')} | {cell('ged')} | {cell('hm_iou')} | {ece} | "
                f"{iterations} | "
                f"{entry['num_val_scored']} |"
            )
    return "\n".join(rows)


def plot(results: dict[str, Any], path: Path) -> Path:
    """One panel per dataset: the scored metrics of each method (bars, with the std over cases)."""
    plt = pyplot()
    names = list(results["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    colors = {"latent": "#3182bd", "pixel": "#e6550d", "unet": "#31a354"}
    for ax, name in zip(axes[0], names):
        entry = results["datasets"][name]
        metrics = ["dice", "iou", "ece"] if DATASETS[name].scoring == "overlap" else ["ged", "hm_iou", "dice", "ece"]
        methods = list(entry["methods"])
        width = 0.8 / max(len(methods), 1)
        top = 1.05
        for i, method in enumerate(methods):
            summary = entry["methods"][method]["evaluation"]["summary"][str(entry["ensemble_size"])]
            xs = [j + (i - len(methods) / 2 + 0.5) * width for j in range(len(metrics))]
            means = [summary.get(m, {}).get("mean", np.nan) for m in metrics]
            stds = [summary.get(m, {}).get("std", 0) for m in metrics]
            ax.bar(xs, means, width, yerr=stds, capsize=2, color=colors.get(method), label=LABELS.get(method, method))
            top = max(top, *(m + s for m, s in zip(means, stds) if np.isfinite(m)))
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels([METRIC_NAMES.get(m, m) for m in metrics])
        ax.set_ylim(0, top * 1.02)
        ax.set_title(f"{name}: {entry['num_val_scored']} val cases, N={entry['ensemble_size']}", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="upper right")
    budgets = sorted(
        {f"{e['settings']['budget_s']:g} s ({e['settings']['clock']} clock)" for e in results["datasets"].values()}
    )
    fig.suptitle(f"equal training budget per method: {', '.join(budgets)}; {results['machine']['device']}", fontsize=9)
    return save_figure(fig, path)


PRESETS = {
    # 2 CPU minutes per method and dataset at 64 px, the narrowest planned widths, 5 DDIM steps, 40 scored cases
    "cpu": {
        "device": "cpu",
        "clock": "process",
        "budget_s": 120.0,
        "size": 64,
        "max_width": 32,
        "steps": 5,
        "max_val_cases": 40,
        "latent_steps": [25],
    },
    # half an hour per method at 256 px, the planned widths and 50 DDIM steps
    "gpu": {"device": "cuda", "budget_s": 1800.0, "size": 256},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/equal_budget_accuracy_<device>.json); "
        "entries of datasets not run this time are kept",
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot (default: beside --out)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["kvasir_seg_full", "cvc_clinicdb_full", "lidc_idri_full"],
        choices=list(DATASETS),
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--data_root",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "data",
        help="folder holding the dataset folders",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "medseglatdiff_benchmarks",
        help="where converted and preprocessed data go (outside the repository; reused)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--budget_s",
        type=float,
        default=240.0,
        help="training seconds per method and dataset (latent: all three stages)",
    )
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "process"],
        help="budget in wall-clock or this process's CPU seconds",
    )
    parser.add_argument(
        "--shares",
        type=float,
        nargs=3,
        default=None,
        help="latent budget shares: image AE, mask VAE, denoiser (default: the variant's)",
    )
    parser.add_argument(
        "--variant", default="published", choices=list(VARIANTS), help="the latent method's training variant"
    )
    parser.add_argument(
        "--size", type=int, default=128, help="largest input edge (resize datasets) / central crop (LIDC), px"
    )
    parser.add_argument(
        "--memory_gb", type=float, default=None, help="planner memory budget (default 24 with cuda, else 4)"
    )
    parser.add_argument(
        "--max_width", type=int, default=None, help="cap on the planner's base widths, for every method"
    )
    parser.add_argument("--batch_size", type=int, default=8, help="training batch size of every method and stage")
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="AdamW learning rate of every method (polynomial decay over the budget)"
    )
    parser.add_argument(
        "--augment", action="store_true", help="the project's batchgenerators augmentation (off: short budgets)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="DDIM steps at evaluation, both diffusion methods (default: the plan's 50)",
    )
    parser.add_argument(
        "--latent_steps", type=int, nargs="*", default=[], help="also score the latent model at these DDIM steps"
    )
    parser.add_argument(
        "--ensemble_size", type=int, default=None, help="samples per image (default 5; 16 for LIDC as published)"
    )
    parser.add_argument(
        "--max_val_cases", type=int, default=None, help="score a seeded random subset of the validation fold"
    )
    parser.add_argument("--eval_batch", type=int, default=8, help="validation images per sampling call")
    parser.add_argument("--fold", type=int, default=0, help="cross-validation fold (the project's splits_final.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--num_workers", type=int, default=1, help="processes for conversion and preprocessing")
    parser.add_argument(
        "--prepare_only", action="store_true", help="only convert, plan and preprocess the datasets (no timing)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run on the 40 LIDC sample crops: 32 px, 1 s per method, 2 cases scored",
    )
    args = parse_with_presets(parser, PRESETS, argv)
    if args.quick:
        args.datasets, args.size, args.budget_s, args.max_width, args.batch_size = ["lidc_idri"], 32, 1.0, 32, 4
        args.steps, args.ensemble_size, args.max_val_cases, args.clock = 2, 4, 2, "wall"
    if args.memory_gb is None:
        args.memory_gb = 24.0 if torch.device(args.device).type == "cuda" else 4.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or RESULTS_DIR / f"equal_budget_accuracy_{torch.device(args.device).type}.json"
    try:
        device = setup_device(args.device, args.threads or None, args.seed)
        clock(args.clock, device)
        results: dict[str, Any] = {"datasets": {}}
        if out.is_file():
            from benchmarks.common import read_results

            results = read_results(out)
        results.update({"benchmark": "equal_budget_accuracy", "machine": machine_info(device)})
        command = " ".join(
            ["python -m benchmarks.equal_budget_accuracy", *(argv if argv is not None else sys.argv[1:])]
        )
        if args.prepare_only:
            for name in args.datasets:
                prepared = prepare_dataset(
                    name,
                    args.data_root,
                    args.work,
                    args.size,
                    args.memory_gb,
                    args.max_width,
                    args.fold,
                    args.num_workers,
                )
                print(
                    f"{name}: {prepared.work} ({len(prepared.train)} training / {len(prepared.val)} validation cases, "
                    f"patch {prepared.patch_size})"
                )
            return 0
        for name in args.datasets:
            results["datasets"][name] = {"command": command, **run_dataset(name, args, device)}
            write_results(out, results)  # after each dataset, so a long run keeps what it finished
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    plot(results, Path(args.plot) if args.plot else out.with_suffix(".png"))
    print(table(results))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
