"""``medseg predict``: sample masks for raw images with a trained model; mask, probability, confidence, overlay.

Per case: read the channel files -> preprocess exactly as the plan says (crop, normalise, resample) ->
sample N masks with DDIM (the N samples batched; sliding windows of the patch size over larger images) ->
map every sample back to the input's grid (:mod:`medseglatdiff.preprocessing.inverse`) -> summarise
(mean probability, mask = mean >= threshold, confidence = 1 - entropy of the mean; with several classes or
regions one map per class/region and the label map by the model's label scheme) -> postprocess the mask
when the model selection enabled it -> write everything in the input's format and geometry, plus an overlay
PNG. ``OUT/prediction.json`` records the model, folds, settings (and where each came from) and every file.

Settings, in order of precedence: the arguments, ``TRAINED_DIR/model_selection.json``
(:mod:`medseglatdiff.inference.selection`), the plan's ``inference`` block. With several folds
(``fold="all"``, or a configuration folder and no fold) the N samples are shared among the folds' models
and pooled into one ensemble.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from medseglatdiff.engines.ensemble_summary import ChannelSummary, EnsembleSummary, summarize_ensemble
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.inputs import InputCase, find_input_cases, read_input_case
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.inference.model_loading import TrainedFold, check_compatible, find_folds, load_fold
from medseglatdiff.inference.outputs import relative, write_case
from medseglatdiff.inference.sampling import sample_raw_case
from medseglatdiff.inference.selection import ModelSelection, load_model_selection
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.locks import folder_lock
from medseglatdiff.postprocessing.connected_components import apply_postprocessing
from medseglatdiff.preprocessing.inverse import original_geometry
from medseglatdiff.training.model_info import inference_num_samples, model_label_scheme

logger = logging.getLogger(__name__)

PREDICTION_FILE = "prediction.json"
OUTPUT_FOLDERS = ("probability", "confidence", "samples", "overlays")
PREDICTION_VERSION = 1
CONFIDENCE_DEFINITION = (
    "1 - H(mean probability), H the binary entropy in bits: 1 where all samples agree, 0 at a 50/50 split"
)


def split_samples(total: int, num_folds: int) -> list[int]:
    """Samples drawn by each fold's model so that together they make ``total`` (at least one each)."""
    total = max(int(total), num_folds)
    return [total // num_folds + (1 if k < total % num_folds else 0) for k in range(num_folds)]


def resolve_settings(
    info: Mapping[str, Any],
    selection: ModelSelection,
    num_samples: int | None,
    num_inference_steps: int | None,
    threshold: float | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each inference setting and where it came from ("argument", the selection file, or "plan")."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    chosen = {"num_samples": num_samples, "num_inference_steps": num_inference_steps, "threshold": threshold}
    from_selection = {
        "num_samples": selection.num_samples,
        "num_inference_steps": selection.num_inference_steps,
        "threshold": selection.threshold,
    }
    from_plan = {
        "num_samples": inference_num_samples(info["inference"]),
        "num_inference_steps": info["inference"]["num_inference_steps"],
        "threshold": info["inference"]["threshold"],
    }
    for key in chosen:
        if chosen[key] is not None:
            values[key], sources[key] = chosen[key], "argument"
        elif from_selection[key] is not None:
            values[key], sources[key] = from_selection[key], str(selection.path)
        else:
            values[key], sources[key] = from_plan[key], "plan"
    values["postprocessing"] = list(selection.postprocessing)
    sources["postprocessing"] = str(selection.path) if selection.path else "none (no model_selection.json)"
    if isinstance(values["num_samples"], bool) or int(values["num_samples"]) < 1:
        raise MedsegError(f"--num_samples {values['num_samples']!r}: must be a positive integer")
    if isinstance(values["num_inference_steps"], bool) or int(values["num_inference_steps"]) < 1:
        raise MedsegError(f"--num_inference_steps {values['num_inference_steps']!r}: must be a positive integer")
    if not 0.0 < float(values["threshold"]) < 1.0:
        raise MedsegError(f"threshold {values['threshold']!r}: must lie strictly between 0 and 1")
    values["num_samples"], values["num_inference_steps"], values["threshold"] = (
        int(values["num_samples"]),
        int(values["num_inference_steps"]),
        float(values["threshold"]),
    )
    return values, sources


SampleSink = Callable[[str, np.ndarray, float], None]


def predict_case(
    case: InputCase,
    folds: Sequence[TrainedFold],
    shares: Sequence[int],
    settings: Mapping[str, Any],
    output: Path,
    save_samples: bool = False,
    seed: int = 0,
    window_overlap: float = 0.25,
    max_batch: int | None = None,
    device: str | torch.device = "cpu",
    sample_sink: SampleSink | None = None,
) -> dict[str, Any]:
    """Predict one case with the pooled folds and write its outputs; returns its record for prediction.json.

    ``sample_sink(case_id, samples, seconds)``, when given, receives the ``(N, K, *original shape)`` samples and
    the sampling seconds after the outputs are written (cross-validation stores them for model selection).
    """
    started = time.perf_counter()
    info = folds[0].info
    input_dims = 3 if info.get("slice_axis") is not None else int(info["spatial_dims"])
    raw = read_input_case(case, int(info["num_channels"]), input_dims)
    sampled = sample_raw_case(
        raw, folds, shares, settings["num_inference_steps"], seed, window_overlap, max_batch, device
    )
    samples, properties = sampled.samples, sampled.properties
    if not np.isfinite(samples).all():
        raise MedsegError(
            f"{case.files[0]}: the model sampled NaN or infinite probabilities (its weights are broken, e.g. a "
            f"diverged training); nothing written for this case. Retrain the model in {folds[0].path}"
        )
    scheme = model_label_scheme(info)
    summary = summarize_ensemble(samples, scheme, settings["threshold"])
    mask = summary.label_map
    if settings["postprocessing"]:
        mask = apply_postprocessing(mask, settings["postprocessing"], scheme.label_values)
    layout = PredictionLayout(output, case.output_ending)
    geometry, image = original_geometry(properties), raw.image
    if raw.source_geometry is not None:  # a one-slice volume predicted as 2D: back onto its own 3D grid
        summary = ChannelSummary(
            [EnsembleSummary(**{f.name: getattr(c, f.name)[..., None] for f in fields(c)}) for c in summary.channels],
            summary.label_map[..., None],
        )
        mask, samples, image, geometry = mask[..., None], samples[..., None], image[..., None], raw.source_geometry
    paths = write_case(
        layout,
        case.case_id,
        summary,
        mask,
        image,
        geometry,
        samples if save_samples else None,
        settings["threshold"],
        scheme,
    )
    if sample_sink is not None:
        sample_sink(case.case_id, sampled.samples, sampled.seconds)
    return {
        "case": case.case_id,
        "inputs": [str(f) for f in case.files],
        "outputs": relative(paths, output),
        "shape": list(properties["original_shape"]),
        "preprocessed_shape": list(properties["shape_after_resampling"]),
        "foreground_voxels": int((mask > 0).sum()),
        "sampling_seconds": round(sampled.seconds, 4),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _refuse_overwriting_inputs(cases: Sequence[InputCase], output: Path) -> None:
    inputs = {f.resolve() for case in cases for f in case.files}
    clash = [case for case in cases if (output / f"{case.case_id}{case.output_ending}").resolve() in inputs]
    if clash:
        raise MedsegError(
            f"{output}: writing the masks there would overwrite the input {clash[0].files[0]}; "
            "choose another output folder (-o)"
        )


def predict(
    input: str | os.PathLike,
    output: str | os.PathLike,
    model: str | os.PathLike,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    fold: int | str | None = None,
    save_samples: bool = False,
    threshold: float | None = None,
    device: str | None = None,
    seed: int = 0,
    window_overlap: float = 0.25,
    max_batch: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every image of ``input`` with the trained model ``model``; write the results into ``output``.

    Args:
        input: an image file or a folder of images (``{case}_{channel:04d}{ending}`` for several channel files;
            any other name is a one-file case). PNG/JPEG/BMP/TIFF, NIfTI, MHA/NRRD or a DICOM series folder.
        output: the folder to write (see :mod:`medseglatdiff.inference.layout`), created when missing.
        model: ``WORK/results/<bundle>/<configuration>`` (holding ``fold_K/``) or one ``fold_K`` folder.
        num_samples: masks sampled per image (default: model selection, else the plan's ensemble size).
        num_inference_steps: DDIM steps (default: model selection, else the plan's).
        fold: ``K`` to use ``fold_K`` only; None or "all": every trained fold, samples pooled.
        save_samples: also write every sampled mask (``samples/{case}_sNN``).
        threshold: mean probability at which a pixel is foreground (default: model selection, else the plan's).
        device: "cuda", "cpu", ...; default cuda when available.
        seed: seed of the starting noise; the same seed gives the same samples.
        window_overlap: overlap of the sliding windows (images larger than the patch).
        max_batch: largest number of latents denoised at once (default: all samples of a window).
        progress: show a progress bar over images.

    Returns:
        The content written to ``output/prediction.json``.

    Raises:
        ImageReadError: the input is missing or holds no supported image (the message names it).
        MedsegError: the model folder is not trained, or ``output`` cannot be written (checked before any work).
        PredictionFailures: after every other image was predicted and ``prediction.json`` written, when some
            inputs were unreadable or did not fit the model (each is listed under ``failures``).
    """
    return predict_cases(
        find_input_cases(input),
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
        max_batch=max_batch,
        progress=progress,
    )


def predict_cases(
    cases: Sequence[InputCase],
    output: str | os.PathLike,
    model: str | os.PathLike,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    fold: int | str | None = None,
    save_samples: bool = False,
    threshold: float | None = None,
    device: str | None = None,
    seed: int = 0,
    window_overlap: float = 0.25,
    max_batch: int | None = None,
    progress: bool = True,
    use_model_selection: bool = True,
    sample_sink: SampleSink | None = None,
    skip: Callable[[InputCase], bool] | None = None,
    note: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`predict` of given cases: the one prediction function of ``medseg predict``, cross-validation and the
    bundles' ``inference`` / ``evaluate`` run ids.

    Args beyond :func:`predict`'s:
        use_model_selection: read ``model_selection.json`` (False: the plan's settings and no postprocessing, as
            cross-validation needs to select them).
        sample_sink: receives each case's samples (see :func:`predict_case`).
        skip: cases for which it returns True are not predicted (finished by an earlier, interrupted run; their
            entries in an earlier ``prediction.json`` of ``output`` are kept).
        note: extra keys for ``prediction.json``.
    """
    output = Path(output)
    check_output_folder(output)
    _refuse_overwriting_inputs(cases, output)
    fold_dirs = find_folds(model, fold)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    folds = [load_fold(path, device) for path in fold_dirs]
    check_compatible(folds)
    selection = load_model_selection(model) if use_model_selection else ModelSelection()
    settings, sources = resolve_settings(folds[0].info, selection, num_samples, num_inference_steps, threshold)
    shares = split_samples(settings["num_samples"], len(folds))
    if sum(shares) != settings["num_samples"]:
        logger.warning(
            "%d samples asked for %d folds: each fold draws one, %d in all",
            settings["num_samples"],
            len(folds),
            sum(shares),
        )
    todo = [case for case in cases if skip is None or not skip(case)]
    if len(todo) < len(cases):
        logger.info("%d of %d case(s) already predicted in %s: skipped", len(cases) - len(todo), len(cases), output)
    logger.info(
        "predicting %d case(s) with %s (%s), %s samples, %d DDIM steps",
        len(todo),
        model,
        ", ".join(f.name for f in folds),
        shares,
        settings["num_inference_steps"],
    )
    with folder_lock(output, "predict"):
        records, failures = [], []
        for case in tqdm(todo, desc="predicting", unit="image", disable=None if progress else True):
            try:
                records.append(
                    predict_case(
                        case,
                        folds,
                        shares,
                        settings,
                        output,
                        save_samples,
                        seed,
                        window_overlap,
                        max_batch,
                        device,
                        sample_sink,
                    )
                )
            except MedsegError as exc:  # an unreadable or unfit image: report it, predict the others
                logger.error("%s: not predicted: %s", case.case_id, exc)
                failures.append({"case": case.case_id, "inputs": [str(f) for f in case.files], "error": str(exc)})
        info = folds[0].info
        record = {
            "prediction_version": PREDICTION_VERSION,
            "model": str(Path(model).resolve()),
            "bundle_name": info.get("bundle_name"),
            "configuration": info["configuration"],
            "folds": [f.name for f in folds],
            "samples_per_fold": dict(zip([f.name for f in folds], shares)),
            **settings,
            "num_samples": sum(shares),
            "sources": sources,
            "model_selection": str(selection.path) if selection.path else None,
            "seed": seed,
            "patch_size": info["patch_size"],
            "window_overlap": window_overlap,
            "device": str(device),
            "mask": info.get("mask", {"value": 1, "meaning": "foreground"}),
            "label_scheme": model_label_scheme(info).to_json(),
            "confidence": CONFIDENCE_DEFINITION,
            **dict(note or {}),
            "cases": records,
            "failures": failures,
        }
        record = merge_with_earlier_record(record, output / PREDICTION_FILE)
        write_json_atomic(output / PREDICTION_FILE, record)
    if failures:
        raise PredictionFailures(failures, len(todo), output)
    return record


class PredictionFailures(MedsegError):
    """Some inputs could not be predicted; the others were, and ``prediction.json`` lists both."""

    def __init__(self, failures: Sequence[Mapping[str, Any]], total: int, output: Path) -> None:
        first = failures[0]["error"]
        super().__init__(
            f"{len(failures)} of {total} image(s) not predicted (first: {first}); the other "
            f"{total - len(failures)} are in {output}, and {output / PREDICTION_FILE} lists the failures"
        )
        self.failures = list(failures)


# What makes two predictions into one folder comparable: the same model and sampling settings.
RUN_KEYS = (
    "model",
    "folds",
    "num_samples",
    "num_inference_steps",
    "threshold",
    "postprocessing",
    "seed",
    "window_overlap",
)


def merge_with_earlier_record(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """``record`` plus what an earlier ``prediction.json`` in the same folder recorded of cases not predicted now.

    With the same model and settings the earlier cases join ``cases``; otherwise they are kept under
    ``earlier_runs`` with their own settings, so the record describes every mask in the folder.
    """
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return record
    if not isinstance(earlier, dict) or not isinstance(earlier.get("cases"), list):
        return record
    now = {c["case"] for c in record["cases"]} | {f["case"] for f in record["failures"]}
    kept = [c for c in earlier["cases"] if isinstance(c, dict) and c.get("case") not in now]
    merged = dict(record)
    runs = [r for r in earlier.get("earlier_runs", []) if isinstance(r, dict)]
    if all(earlier.get(key) == record.get(key) for key in RUN_KEYS):
        merged["cases"] = sorted([*kept, *record["cases"]], key=lambda c: str(c["case"]))
    elif kept:
        runs.append({**{key: earlier.get(key) for key in RUN_KEYS}, "cases": kept})
    for run in runs:
        run["cases"] = [c for c in run.get("cases", []) if c.get("case") not in now]
    runs = [run for run in runs if run["cases"]]
    if runs:
        merged["earlier_runs"] = runs
    return merged


def check_output_folder(output: Path) -> None:
    """Refuse, before any work, an output path that is a file or holds a file where a sub-folder must go."""
    if output.exists() and not output.is_dir():
        raise MedsegError(f"{output}: is a file; -o must name a folder (it is created when missing)")
    for name in OUTPUT_FOLDERS:
        if (output / name).exists() and not (output / name).is_dir():
            raise MedsegError(
                f"{output / name}: is a file, but predict writes the folder {name}/ there; move it or choose another -o"
            )
    existing = next((p for p in (output, *output.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise MedsegError(f"{existing}: not writable; choose an output folder you can write to (-o)")
