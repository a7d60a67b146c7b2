"""The ``medseg`` command line: a thin `fire <https://github.com/google/python-fire>`_ layer.

Every command is a plain Python function elsewhere in the package; the wrappers here only turn results
into printed summaries and exit codes. Errors meant for the user (:class:`MedsegError`) and known system errors
(``OSError``: disk full, permission denied; ``MemoryError``) print one line, ``error: ...``, and exit with status
2; a failed verification exits with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from medseglatdiff.errors import MedsegError


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MedsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as exc:  # a full disk, a missing permission, a vanished file: the system's own words
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except MemoryError:
            print(
                "error: out of memory; plan with less memory (medseg plan_and_preprocess --memory_gb G), lower the "
                "batch size, or predict fewer samples at once",
                file=sys.stderr,
            )
            raise SystemExit(2) from None

    return wrapper


@_user_errors
def convert(name: str, src: str, out: str, num_workers: int = 1, overwrite: bool = False, **options: Any) -> None:
    """Convert a public dataset, as distributed or as sampled in ../shared/data, to the raw format.

    Args:
        name: one of isic2018, kvasir_seg, cvc_clinicdb, lidc, brats.
        src: the dataset folder as downloaded.
        out: the raw dataset folder to create (must not exist or be empty, unless --overwrite).
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        options: converter-specific options (see ``docs/dataset_format.md``).
    """
    from medseglatdiff.datasets.converters import convert as run_convert

    spec = run_convert(name, src, out, num_workers=num_workers, overwrite=overwrite, **options)
    groups = f", {len(set(spec.case_groups.values()))} {spec.group_kind} groups" if spec.case_groups else ""
    raters = f", {spec.num_raters} raters per case" if spec.num_raters else ""
    print(f"wrote {spec.num_training} cases to {spec.root}{raters}{groups}")


@_user_errors
def verify_dataset(dataset: str, num_workers: int = 1) -> None:
    """Check a raw dataset and list every problem at once (never writes into it).

    Args:
        dataset: the raw dataset folder (with dataset.json).
        num_workers: processes used to read cases in parallel.
    """
    from medseglatdiff.datasets.verify import verify_dataset as run_verify

    report = run_verify(dataset, num_workers=num_workers)
    print(report.format())
    if not report.ok:
        raise SystemExit(1)


@_user_errors
def demo_data(
    out: str, num_cases: int = 24, spatial_dims: int = 2, num_raters: int = 4, seed: int = 0, overwrite: bool = False
) -> None:
    """Generate the small deterministic multi-rater demo dataset (2D by default, 3D with --spatial_dims 3).

    Args:
        out: the raw dataset folder to create.
        num_cases: number of cases.
        spatial_dims: 2 or 3.
        num_raters: rater masks per case.
        seed: random seed; the same seed gives the same files.
        overwrite: replace an existing output folder.
    """
    from medseglatdiff.datasets.demo_data import generate_demo_dataset

    spec = generate_demo_dataset(
        out, num_cases=num_cases, spatial_dims=spatial_dims, num_raters=num_raters, seed=seed, overwrite=overwrite
    )
    print(f"wrote {spec.num_training} {spatial_dims}D demo cases with {spec.num_raters} raters to {spec.root}")


@_user_errors
def demo(
    out: str = "demo_output",
    num_cases: int = 24,
    seed: int = 0,
    epochs: int = 1,
    num_samples: int = 8,
    num_inference_steps: int = 5,
) -> None:
    """The main job end to end on generated demo data (what ``make demo`` runs): data, verify, plan, train, predict,
    evaluate.

    Args:
        out: folder for every demo artefact.
        num_cases: demo cases (two per simulated patient).
        seed: seed of the demo data.
        epochs: training length multiplier (1: about 2 CPU-core minutes of training).
        num_samples: masks sampled per held-out image.
        num_inference_steps: DDIM steps per sample.
    """
    from medseglatdiff.demo import run_demo

    run_demo(
        out,
        num_cases=num_cases,
        seed=seed,
        epochs=epochs,
        num_samples=num_samples,
        num_inference_steps=num_inference_steps,
    )


def _configurations(
    configurations: str | list[str] | tuple[str, ...] | None, more: tuple[str, ...]
) -> list[str] | None:
    from medseglatdiff.planning.planner import parse_configurations

    return parse_configurations(configurations, *more)


@_user_errors
def extract_fingerprint(dataset: str, out: str, num_workers: int = 1) -> None:
    """Fingerprint a raw dataset: shapes, spacings, intensities, objects, raters -> OUT/dataset_fingerprint.json.

    Args:
        dataset: the raw dataset folder (with dataset.json).
        out: the work folder (or a .json file) to write.
        num_workers: processes reading cases in parallel.
    """
    from medseglatdiff.planning.fingerprint import FINGERPRINT_FILE
    from medseglatdiff.planning.fingerprint import extract_fingerprint as run_fingerprint

    fingerprint = run_fingerprint(dataset, out, num_workers=num_workers)
    summary = fingerprint["summary"]
    target = out if str(out).endswith(".json") else f"{out}/{FINGERPRINT_FILE}"
    print(f"fingerprinted {summary['num_cases']} {summary['spatial_dims']}D cases -> {target}")


@_user_errors
def plan(
    out: str,
    *more_configurations: str,
    dataset: str | None = None,
    memory_gb: float | None = None,
    configurations: str | None = None,
    num_workers: int = 1,
    recipe: str = "default",
) -> None:
    """Plan every configuration from OUT/dataset_fingerprint.json -> OUT/plans.json (each value with its reason).

    Args:
        out: the work folder.
        dataset: the raw dataset; given, the fingerprint is computed first when missing or stale.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes for fingerprinting.
        recipe: the denoiser training recipe: "default" (chosen by measurement) or "published" (the method as
            published).
    """
    from medseglatdiff.planning.pipeline import plan as run_plan

    plans = run_plan(
        out,
        dataset=dataset,
        memory_gb=memory_gb,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        recipe=recipe,
    )
    for name, config in plans["configurations"].items():
        print(
            f"{name}: patch {config['patch_size']}, latent factor {config['latent_factor']}, "
            f"batch {config['image_autoencoder']['batch_size']}/{config['mask_autoencoder']['batch_size']}/"
            f"{config['denoiser']['batch_size']}"
        )
    print(f"wrote {out}/plans.json")


@_user_errors
def preprocess(
    dataset: str,
    out: str,
    *more_configurations: str,
    configurations: str | None = None,
    num_workers: int = 1,
    clean: bool = False,
) -> None:
    """Preprocess a raw dataset as OUT/plans.json says -> OUT/<configuration>/<case>.npz + .json.

    Args:
        dataset: the raw dataset folder.
        out: the work folder holding plans.json.
        configurations: which planned configurations (``--configurations 2d 3d``); default all.
        num_workers: processes working on cases in parallel.
        clean: delete earlier results and redo every case.
    """
    from medseglatdiff.preprocessing.preprocess import preprocess as run_preprocess

    counts = run_preprocess(
        dataset,
        out,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        clean=clean,
    )
    for name, count in counts.items():
        removed = f", {count['removed']} removed (no longer in the raw dataset)" if count.get("removed") else ""
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date{removed}")


@_user_errors
def plan_and_preprocess(
    dataset: str,
    out: str,
    *more_configurations: str,
    memory_gb: float | None = None,
    configurations: str | None = None,
    num_workers: int = 1,
    clean: bool = False,
    recipe: str = "default",
) -> None:
    """Verify, fingerprint, plan and preprocess a raw dataset into the work folder OUT.

    Args:
        dataset: the raw dataset folder (with dataset.json).
        out: the work folder: dataset_fingerprint.json, plans.json and one folder per configuration.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes working on cases in parallel.
        clean: recompute the fingerprint and redo every case.
        recipe: the denoiser training recipe: "default" (chosen by measurement) or "published" (the method as
            published).
    """
    from medseglatdiff.planning.pipeline import plan_and_preprocess as run

    result = run(
        dataset,
        out,
        memory_gb=memory_gb,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        clean=clean,
        recipe=recipe,
    )
    print(f"fingerprint: {result['fingerprint']}" + ("" if result["fingerprint_computed"] else " (up to date)"))
    print(f"plans: {result['plans']}")
    for name, count in result["preprocessed"].items():
        removed = f", {count['removed']} removed (no longer in the raw dataset)" if count.get("removed") else ""
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date{removed}")


@_user_errors
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


@_user_errors
def predict(
    input: str,
    output: str,
    model: str,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    fold: int | str | None = None,
    save_samples: bool = False,
    threshold: float | None = None,
    device: str | None = None,
    seed: int = 0,
    window_overlap: float = 0.25,
) -> None:
    """Sample masks for raw images: mask, mean probability, confidence map, overlay PNG (and every sample).

    ``medseg predict -i FILE_OR_DIR -o OUT --model TRAINED_DIR [--num_samples N] [--num_inference_steps S]
    [--fold K|all] [--save_samples]``

    Args:
        input: an image file or a folder (``{case}_0000.nii.gz``, ``{case}_0001.nii.gz`` for several channels).
        output: the folder to write; see docs/inference.md for its layout.
        model: WORK/results/<bundle>/<configuration> (holding fold_K/) or one fold_K folder.
        num_samples: masks per image (default: model selection, else the plan's ensemble size).
        num_inference_steps: DDIM steps (default: model selection, else the plan's).
        fold: K for fold_K only, or "all" (default) to pool samples from every trained fold.
        save_samples: also write every sampled mask to OUT/samples/.
        threshold: mean probability at which a pixel is foreground (default: model selection, else the plan's).
        device: cuda, cpu, cuda:1 ...; default cuda when available.
        seed: seed of the starting noise.
        window_overlap: overlap of sliding windows on images larger than the training patch.
    """
    from medseglatdiff.inference.predict import PREDICTION_FILE
    from medseglatdiff.inference.predict import predict as run_predict

    record = run_predict(
        input,
        output,
        model,
        num_samples=num_samples,
        num_inference_steps=num_inference_steps,
        fold=fold,
        save_samples=save_samples,
        threshold=threshold,
        device=device,
        seed=seed,
        window_overlap=window_overlap,
    )
    print(
        f"predicted {len(record['cases'])} image(s) with {', '.join(record['folds'])}: "
        f"{record['num_samples']} samples, "
        f"{record['num_inference_steps']} DDIM steps, threshold {record['threshold']}"
        + (f", postprocessing {' + '.join(record['postprocessing'])}" if record["postprocessing"] else "")
    )
    print(
        f"masks in {output}/, probability/, confidence/, overlays/{', samples/' if save_samples else ''}; "
        f"record: {output}/{PREDICTION_FILE}"
    )


@_user_errors
def evaluate(
    pred: str,
    ref: str,
    samples: str | None = None,
    out: str | None = None,
    num_workers: int = 1,
    surface: bool = True,
    figures: bool = True,
    strict: bool = False,
) -> None:
    """Score predictions against a raw dataset: per_case.csv, summary.json and figures.

    ``medseg evaluate --pred DIR --ref RAW_DATASET [--samples DIR] [--strict]``

    Args:
        pred: the folder ``medseg predict`` wrote.
        ref: the raw dataset (dataset.json, labelsTr/, ratersTr/) with the reference masks.
        samples: folder of the sampled masks when not PRED/samples (needed for GED, HM-IoU, CI).
        out: where to write (default PRED/evaluation).
        num_workers: processes scoring cases in parallel.
        surface: compute HD95 and ASSD (slower).
        figures: draw histograms, the reliability diagram and the worst-case grid.
        strict: a reference case without a prediction is an error (default: listed, and the rest scored).
    """
    from medseglatdiff.evaluation.evaluate import evaluate as run_evaluate
    from medseglatdiff.evaluation.evaluate import summary_lines

    summary = run_evaluate(
        pred, ref, out=out, samples=samples, num_workers=num_workers, surface=surface, figures=figures, strict=strict
    )
    where = out or f"{pred}/evaluation"
    print("\n".join(summary_lines(summary, ref)))
    print(f"wrote {where}/per_case.csv, {where}/summary.json" + (f", {where}/figures/" if figures else ""))


@_user_errors
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


@_user_errors
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


@_user_errors
def export(
    model: str,
    out: str,
    fold: int | str | None = None,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    name: str | None = None,
    version: str = "0.1.0",
    overwrite: bool = False,
    verify: bool = True,
) -> None:
    """Export a trained model as a MONAI bundle: configs/, models/ (state dicts + TorchScript), docs/README.md, LICENSE.

    ``medseg export --model WORK/results/<bundle>/<configuration> --out dist/<name>``; see docs/deployment.md.

    Args:
        model: WORK/results/<bundle>/<configuration> (every trained fold_K is exported) or one fold_K folder.
        out: the bundle folder to create, e.g. dist/lidc.
        fold: export fold_K only; default: every trained fold (predict pools their samples).
        num_samples: ensemble size of the exported network and the bundle's default (default: model selection,
            else plan).
        num_inference_steps: DDIM steps (default: model selection, else plan).
        name: the bundle's name in its metadata (default: the folder name of OUT).
        version: the bundle's version.
        overwrite: replace an existing OUT (only once the new bundle passed its checks).
        verify: also run MONAI's verify_net_in_out before writing (verify_metadata always runs).
    """
    from medseglatdiff.export import export as run_export

    path = run_export(
        model,
        out,
        fold=fold,
        num_samples=num_samples,
        num_inference_steps=num_inference_steps,
        name=name,
        version=version,
        overwrite=overwrite,
        verify=verify,
    )
    print(f"wrote the MONAI bundle {path} (configs/, models/model.pt + model.ts, docs/README.md, LICENSE)")
    print(
        f"run it: python -m monai.bundle run --config_file {path}/configs/inference.json "
        "--input_dir IN --output_dir OUT"
    )


def commands() -> dict[str, Callable[..., Any]]:
    """The CLI's commands by name."""
    return {
        "convert": convert,
        "verify_dataset": verify_dataset,
        "demo_data": demo_data,
        "demo": demo,
        "extract_fingerprint": extract_fingerprint,
        "plan": plan,
        "preprocess": preprocess,
        "plan_and_preprocess": plan_and_preprocess,
        "train": train,
        "predict": predict,
        "evaluate": evaluate,
        "cv": cv,
        "find_best_configuration": find_best_configuration,
        "export": export,
    }


HELP_FLAGS = ("--help", "-h")


def help_as_fire_flag(argv: list[str]) -> list[str]:
    """``medseg CMD ... --help`` -> ``medseg CMD -- --help``.

    Fire hands ``--help`` to a command that takes ``**kwargs`` (train, cv, ...) as one more keyword and then
    fails on the missing required ones; after ``--`` it is fire's own flag and shows the help.
    """
    head = argv[: argv.index("--")] if "--" in argv else argv
    if not any(flag in head for flag in HELP_FLAGS):
        return argv
    words = [word for word in head if word not in HELP_FLAGS]
    return [*words[:1], "--", "--help"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``medseg`` console script."""
    import warnings

    import fire

    # `import monai` imports Holoscan when the deploy extra is installed, which warns about the shell's stack size;
    # that matters to the MONAI Deploy app (python -m medseglatdiff.deploy, which keeps the warning), not here
    warnings.filterwarnings("ignore", message="Current stack size", category=RuntimeWarning)

    fire.Fire(commands(), command=help_as_fire_flag(sys.argv[1:] if argv is None else list(argv)), name="medseg")


if __name__ == "__main__":
    main()
