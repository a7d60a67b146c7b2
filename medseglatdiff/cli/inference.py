"""Commands that use a trained model: ``predict``, ``evaluate``, ``export``."""

from __future__ import annotations

from medseglatdiff.cli.errors import user_errors


@user_errors
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


@user_errors
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


@user_errors
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
