"""What the shipped bundles' ``inference`` and ``evaluate`` run ids predict: :func:`predict_cases` with a bundle's
settings, on a folder of raw images (``--input_dir``) or on a fold's validation cases of the raw dataset.

Both write what ``medseg predict`` writes (masks, probability and confidence maps, overlays, ``prediction.json``) in
the cases' own geometry; :mod:`medseglatdiff.bundle_command` scores the validation predictions with
``medseg evaluate`` for the ``evaluate`` run id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.inputs import InputCase, dataset_input_case
from medseglatdiff.inference.predict import predict, predict_cases
from medseglatdiff.planning.plans_io import PLANS_FILE
from medseglatdiff.training.bundle import check_renamed_settings
from medseglatdiff.training.splits import read_splits

SPLITS_FILE = "splits_final.json"


def _predict_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`predict` arguments a bundle's settings hold (absent: the model selection's, else the plan's)."""
    check_renamed_settings(settings)
    return {
        "num_samples": settings.get("num_samples"),
        "num_inference_steps": settings.get("num_inference_steps"),
        "threshold": settings.get("threshold"),
        "device": settings.get("device"),
        "seed": int(settings.get("seed", 0)),
        "window_overlap": float(settings.get("window_overlap", 0.25)),
        "max_batch": settings.get("max_batch"),
    }


def model_folder(dataset_dir: str | os.PathLike | None, settings: Mapping[str, Any]) -> Path:
    """``dataset_dir/results/<bundle_name>/<configuration>``, the folder ``medseg train`` trains a bundle into."""
    if not dataset_dir:
        raise MedsegError(
            "no model: pass --dataset_dir WORK (the planned dataset the bundle was trained on) "
            "or --model_dir TRAINED_DIR"
        )
    return Path(dataset_dir) / "results" / str(settings.get("bundle_name", "")) / str(settings.get("configuration", ""))


def predict_with_bundle(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike | None = None,
    settings: Mapping[str, Any] | None = None,
    fold: int | str | None = 0,
    model_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The bundles' ``inference.json`` on a folder of raw images: :func:`predict` with the bundle's settings.

    The model folder is ``model_dir``, else ``settings["output_dir"]`` (one trained fold), else
    ``dataset_dir/results/<bundle_name>/<configuration>`` with ``fold``. Settings read: ``num_samples``,
    ``num_inference_steps``, ``threshold``, ``window_overlap``, ``max_batch``, ``seed``, ``device``,
    ``save_samples``.
    """
    settings = dict(settings or {})
    if not str(output_dir or "").strip():
        raise MedsegError("--output_dir is empty: give the folder to write the predictions into")
    if model_dir:
        model: Path = Path(model_dir)
    elif settings.get("output_dir"):
        model, fold = Path(settings["output_dir"]), None
    else:
        model = model_folder(dataset_dir, settings)
    return predict(
        input_dir,
        output_dir,
        model,
        fold=fold,
        save_samples=bool(settings.get("save_samples", False)),
        **_predict_settings(settings),
    )


def validation_cases(dataset_dir: str | os.PathLike, fold: int | str) -> list[str]:
    """Fold ``fold``'s validation cases of ``dataset_dir/splits_final.json``."""
    path = Path(dataset_dir) / SPLITS_FILE
    if not path.is_file():
        raise MedsegError(f"{path}: not found; train the bundle first (training writes the splits)")
    splits = read_splits(path)
    try:
        index = int(fold)
    except (TypeError, ValueError):
        raise MedsegError(f"--fold {fold!r}: the validation cases are those of one fold; pass --fold K") from None
    if not 0 <= index < len(splits):
        raise MedsegError(f"--fold {fold}: {path} has folds 0..{len(splits) - 1}")
    return sorted(splits[index]["val"])


def raw_dataset_of(dataset_dir: str | os.PathLike) -> DatasetSpec:
    """The raw dataset ``dataset_dir/plans.json`` was planned from (its images are predicted, its labels score)."""
    plans = Path(dataset_dir) / PLANS_FILE
    raw = Path(str(json.loads(plans.read_text(encoding="utf-8")).get("raw_dataset") or ""))
    if not str(raw) or not (raw / "dataset.json").is_file():
        raise MedsegError(
            f"{raw}: the raw dataset {plans} was planned from is not there any more; the validation cases are "
            "predicted from its images: restore it, or predict a folder of images with --input_dir"
        )
    return DatasetSpec.load(raw)


def predict_validation_with_bundle(
    dataset_dir: str | os.PathLike,
    settings: Mapping[str, Any] | None = None,
    fold: int | str = 0,
    save_samples: bool = False,
    cases: Sequence[str] | None = None,
) -> tuple[dict[str, Any], DatasetSpec, Path]:
    """Predict fold ``fold``'s validation cases (or ``settings["inference_cases"]``) from the raw dataset into
    ``FOLD_DIR/inference``; returns the prediction record, the raw dataset and that folder.

    The fold folder is ``settings["output_dir"]`` when given, else ``dataset_dir/results/<bundle>/<configuration>/
    fold_<fold>``.
    """
    settings = dict(settings or {})
    spec = raw_dataset_of(dataset_dir)
    wanted = list(cases or settings.get("inference_cases") or validation_cases(dataset_dir, fold))
    unknown = sorted(set(wanted) - set(spec.case_ids()))
    if unknown:
        raise MedsegError(f"{spec.root}: case(s) {', '.join(unknown[:5])} are not in the raw dataset")
    inputs: list[InputCase] = [dataset_input_case(spec, case) for case in wanted]
    fold_dir = (
        Path(settings["output_dir"])
        if settings.get("output_dir")
        else model_folder(dataset_dir, settings) / f"fold_{fold}"
    )
    out = fold_dir / "inference"
    record = predict_cases(
        inputs,
        out,
        fold_dir,
        save_samples=save_samples or bool(settings.get("save_samples", False)),
        **_predict_settings(settings),
    )
    return record, spec, out
