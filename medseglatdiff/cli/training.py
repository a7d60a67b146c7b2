"""Commands that train and cross-validate: ``train``, ``cv``, ``find_best_configuration``."""

from __future__ import annotations

from typing import Any

from medseglatdiff.cli.errors import user_errors
from medseglatdiff.errors import MedsegError


@user_errors
def train(
    work: str,
    bundle: str = "lidc",
    fold: int | str = 0,
    overlays: tuple[str, ...] | list[str] = (),
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> None:
    """Train the three stages of a bundle on a planned work folder -> WORK/results/<bundle>/<configuration>/fold_K.

    ``medseg train WORK --bundle lidc [--fold K] [--time_budget 20m]``; same as ``python -m monai.bundle run training
    --config_file bundles/<bundle>/train.json --dataset_dir WORK``;
    finished stages are skipped and an interrupted stage resumes.

    Args:
        work: the work folder written by ``medseg plan_and_preprocess`` (``--dataset`` always names a raw dataset).
        bundle: isic, cvc, lidc, brats, or a path to a bundle folder.
        fold: cross-validation fold 0..4, or "all" (train on every case).
        overlays: extra shared configs, e.g. ``--overlays "['multi_gpu_train.json']"``.
        settings: nested overrides as a dict, e.g. ``--settings "{'denoiser': {'max_epochs': 5}}"``.
        overrides: flat overrides, ``--denoiser#max_epochs 5`` (``--settings#denoiser#max_epochs 5`` works too).
    """
    from medseglatdiff.training import train as run_train

    if "dataset" in overrides or "dataset_dir" in overrides:
        raise MedsegError(
            "medseg train takes the work folder as its first argument (medseg train WORK --bundle NAME); "
            "--dataset names a raw dataset (medseg plan_and_preprocess --dataset RAW --out WORK)"
        )
    flat = {(k[len("settings#") :] if k.startswith("settings#") else k): v for k, v in overrides.items()}
    run_train(
        work,
        bundle=bundle,
        fold=fold,
        overlays=list(overlays) if not isinstance(overlays, str) else [overlays],
        settings=settings,
        **flat,
    )


@user_errors
def cv(
    *more_folds: int,
    work: str,
    bundle: str = "lidc",
    folds: int | str | tuple[int, ...] | list[int] | None = None,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    threshold: float | None = None,
    num_folds: int = 5,
    splits: str | None = None,
    raw: str | None = None,
    device: str | None = None,
    seed: int = 0,
    train: bool = True,
    surface: bool = True,
    figures: bool = True,
    num_workers: int = 1,
    overlays: tuple[str, ...] | list[str] = (),
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> None:
    """Cross-validate a bundle: train each fold, predict its validation cases, evaluate, summarise over folds.

    ``medseg cv --work WORK --bundle bundles/lidc --folds 0 1 2 3 4 [--num_samples 16] [--splits FILE]``;
    finished folds, stages and cases are skipped. Writes WORK/results/<bundle>/<configuration>/crossval/.

    Args:
        work: the work folder written by ``medseg plan_and_preprocess``.
        bundle: isic, cvc, lidc, brats, or a bundle folder (``bundles/lidc``).
        folds: folds to run (``--folds 0 1 2 3 4``); default every fold of WORK/splits_final.json.
        num_samples: samples per validation image (default 16, enough for find_best_configuration).
        num_inference_steps: DDIM steps (default: the plan's).
        threshold: mean probability at which a pixel is foreground (default: the plan's).
        num_folds: folds to create when WORK/splits_final.json does not exist yet (grouped by patient / sequence).
        splits: your own splits file (nnU-Net's splits_final.json format); checked, then used.
        raw: the raw dataset (default: the one plans.json names).
        device: cuda, cpu, cuda:1 ...; default cuda when available.
        seed: seed of the sampling noise.
        train: train unfinished folds (False: stop instead).
        surface: compute HD95 and ASSD.
        figures: draw each fold's evaluation figures.
        num_workers: processes scoring cases.
        overlays: extra shared training configs, e.g. ``--overlays "['multi_gpu_train.json']"``.
        settings: nested training settings as a dict, as for ``medseg train``.
        overrides: flat training settings, ``--denoiser#max_epochs 5`` (``--settings#denoiser#max_epochs 5`` works too).
    """
    from medseglatdiff.crossval import cross_validate

    chosen = [*(folds if isinstance(folds, (list, tuple)) else [] if folds is None else [folds]), *more_folds]
    summary = cross_validate(
        work,
        bundle,
        folds=[int(f) for f in chosen] or None,
        settings=settings,
        num_samples=num_samples,
        num_inference_steps=num_inference_steps,
        threshold=threshold,
        num_folds=num_folds,
        splits=splits,
        raw=raw,
        seed=seed,
        device=device,
        train=train,
        surface=surface,
        figures=figures,
        num_workers=num_workers,
        overlays=list(overlays) if not isinstance(overlays, str) else [overlays],
        **overrides,
    )
    print(
        f"cross-validation of {summary['model']}: folds {', '.join(map(str, summary['folds']))} "
        f"of {summary['splits']['num_folds']}, "
        f"{summary['num_cases']} cases; groups: {summary['splits']['groups_check']}"
    )
    for name in ("dice", "iou", "hd95", "ged", "hm_iou", "ci", "ece"):
        folded, cases = summary["over_folds"].get(name), summary["over_cases"].get(name)
        if folded and cases and cases.get("n") and folded.get("mean") is not None:
            print(
                f"  {name:8s} over folds {folded['mean']:.4f} +- {folded['std']:.4f}   "
                f"over cases {cases['mean']:.4f} +- {cases['std']:.4f} (n={cases['n']})"
            )
    print(
        f"wrote {summary['model']}/crossval/cv_summary.md, cv_summary.json, per_case.csv; "
        f"next: medseg find_best_configuration --work {work} --bundle {bundle} (with the same training settings)"
    )


@user_errors
def find_best_configuration(
    *more_num_inference_steps: int,
    work: str,
    bundle: str = "lidc",
    num_inference_steps: int | tuple[int, ...] | list[int] = (10, 25, 50),
    num_samples: int | tuple[int, ...] | list[int] | None = None,
    thresholds: tuple[float, ...] | list[float] | None = None,
    tolerance: float = 0.005,
    metric: str = "dice",
    min_num_samples: int = 2,
    max_cases: int | None = None,
    timing_cases: int = 3,
    raw: str | None = None,
    device: str | None = None,
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> None:
    """Choose ensemble size, DDIM steps, threshold and postprocessing from ``medseg cv``'s predictions.

    ``medseg find_best_configuration --work WORK --bundle bundles/lidc [--num_inference_steps 10 25 50]``: writes
    MODEL/model_selection.json (read by ``medseg predict``), MODEL/inference_instructions.md and the
    speed/accuracy frontier (table, CSV, plot) in MODEL/crossval/selection/.

    Args:
        work: the work folder ``medseg cv`` ran on.
        bundle: the bundle it ran (with the same training settings, which name the model folder).
        num_inference_steps: candidate DDIM step counts (``--num_inference_steps 10 25 50``); the CV's own is
            always one.
        num_samples: candidate ensemble sizes, e.g. ``--num_samples "[1,2,4,8,16]"`` (default 1..N of the CV).
        thresholds: candidate thresholds, e.g. ``--thresholds "[0.4,0.5,0.6]"`` (default 0.30 .. 0.70 by 0.05).
        tolerance: how much worse than the best a faster choice may be (in ``metric``).
        metric: dice (default), hm_iou or ged (lower is better).
        min_num_samples: the smallest ensemble that may be chosen (default 2: a confidence map needs two samples).
        max_cases: re-sample at most this many CV cases per step count (spread over folds); default all.
        timing_cases: cases on which sampling is timed.
        raw: the raw dataset (default: the CV's).
        device: cuda, cpu, ...; default cuda when available.
        settings: the training settings given to ``medseg cv`` (dict), if any.
        overrides: flat training settings given to ``medseg cv``, if any.
    """
    from medseglatdiff.crossval import find_best_configuration as run_find_best
    from medseglatdiff.crossval.find_best import DEFAULT_THRESHOLDS

    candidates = [
        *(num_inference_steps if isinstance(num_inference_steps, (list, tuple)) else [num_inference_steps]),
        *more_num_inference_steps,
    ]
    report = run_find_best(
        work,
        bundle,
        settings=settings,
        num_inference_steps=[int(s) for s in candidates],
        num_samples=[int(k) for k in (num_samples if isinstance(num_samples, (list, tuple)) else [num_samples])]
        if num_samples
        else None,
        thresholds=list(thresholds) if thresholds else DEFAULT_THRESHOLDS,
        tolerance=tolerance,
        metric=metric,
        min_num_samples=min_num_samples,
        max_cases=max_cases,
        timing_cases=timing_cases,
        raw=raw,
        device=device,
        **overrides,
    )
    chosen, selection = report["chosen"], report["selection"]
    print(
        f"chosen on {report['num_cases']} CV cases: {selection['num_samples']} samples, "
        f"{selection['num_inference_steps']} DDIM steps "
        f"({chosen['seconds_per_image']:.3g} s/image), threshold {selection['threshold']}, "
        f"postprocessing {' + '.join(selection['postprocessing']) or 'none'}; "
        f"expected Dice {report['expected']['dice']:.4f}"
    )
    print(f"wrote {report['selection_file']}, {report['files']['instructions']}")
    print(f"frontier: {report['files']['markdown']}, {report['files']['csv']}, {report['files']['plot']}")
