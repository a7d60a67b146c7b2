"""Build and run the shared training configuration (``configs/``) with one bundle's settings.

A bundle (``medseglatdiff/bundles/<name>/train.json``) carries only what differs from the shared configuration,
under its ``settings`` key, plus the run's ``dataset_dir``, ``fold`` and ``overlays``. Its ``training`` entry calls
:func:`run_training`, which builds one MONAI :class:`~monai.bundle.ConfigParser` in MONAI's own idiom::

    configs/train.json          one definition per kind of stage: ``autoencoder_stage`` (both autoencoders are
                                ``"%autoencoder_stage"`` macros of it) and ``denoiser``
    <- configs/autoencoders.json  what differs between the image autoencoder and the mask VAE
    <- overlays                 e.g. configs/multi_gpu_train.json
    <- settings                 the bundle's, then the command line's
    <- dataset_dir, fold

Every layer after the first is a set of config ids applied as MONAI layers config files (``a#b#c`` reaches into
a nested block, ``+key`` merges a dict or list; later wins), so ``--settings#image_autoencoder#max_epochs 5``
changes one value and keeps its siblings. The macros are expanded before the layers apply; each copy's relative
ids (``@##lr``) then resolve where the copy lands, so each autoencoder block refers to its own values (MONAI
resolves macros and relative ids in one pass, which would leave them bound to the template).
The shared files are package data (:mod:`medseglatdiff.resources`), so the command works from any folder and from a
wheel install.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser
from monai.bundle.utils import merge_kv

from medseglatdiff.engines.distributed import is_main_process
from medseglatdiff.errors import BundleCommandError, MedsegError, user_error
from medseglatdiff.io.atomic import write_text_atomic
from medseglatdiff.io.locks import folder_lock
from medseglatdiff.resources import bundle_names, bundles_dir, configs_dir

logger = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
STAGE_DELTAS = "autoencoders.json"  # the layer that makes the image autoencoder and the mask VAE of one definition


def bundle_path(bundle: str | os.PathLike, config: str = "train.json") -> Path:
    """The shipped bundle ``<bundle>/<config>`` for a name, or ``<bundle>/<config>`` / the file itself for a path."""
    candidate = Path(bundle)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        path = candidate / config
    else:
        path = bundles_dir() / str(bundle) / config
    if not path.is_file():
        known = bundle_names(config)
        raise MedsegError(
            f"{path}: bundle config not found; use one of {', '.join(known) or 'the shipped bundles'} "
            "or a path to a bundle folder"
        )
    return path


def flatten_settings(settings: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested settings -> ``{"a#b#c": value}`` config ids; component dicts (with ``_target_``) stay whole.

    Ids already flat pass through unchanged. Empty dicts change nothing (bundles keep them as places for
    command-line overrides to go).
    """
    flat: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        name = f"{prefix}#{key}" if prefix else str(key)
        if isinstance(value, Mapping) and not any(str(k).startswith("_") for k in value):
            flat.update(flatten_settings(value, name))
        else:
            flat[name] = value
    return flat


def layered_settings(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Settings layers (nested or ``#`` ids) as one set of config ids, later layers winning.

    A later id replaces an earlier one and everything below it (``a`` drops an earlier ``a#b``), as applying the
    layers to a config one after the other does.
    """
    ids: dict[str, Any] = {}
    for layer in layers:
        for key, value in flatten_settings(layer).items():
            for old in [k for k in ids if k == key or k.startswith(key + "#")]:
                del ids[old]
            ids[key] = value
    return ids


# settings renamed with plans version 2 (one name per concept: ``num_samples``, ``num_inference_steps``)
RENAMED_SETTINGS = {
    "denoiser#val_ensemble_size": "denoiser#val_num_samples",
    "denoiser#val_inference_steps": "denoiser#val_num_inference_steps",
    "ensemble_size": "num_samples",
}


def check_renamed_settings(ids: Iterable[str]) -> None:
    """A ``MedsegError`` naming the new name of every renamed setting in ``ids`` (they would be silently unused)."""
    old = [key for key in ids if key in RENAMED_SETTINGS]
    if old:
        raise MedsegError(
            "renamed setting(s): "
            + ", ".join(f"{key} is now {RENAMED_SETTINGS[key]}" for key in old)
            + "; use the new name(s)"
        )


def _shared_config(name: str | os.PathLike) -> str:
    path = Path(name)
    if not path.is_file():
        path = configs_dir() / str(name)
    if not path.is_file():
        raise MedsegError(f"{name}: shared config not found in {configs_dir()}")
    return str(path)


def build_parser(
    config: str = "train.json", settings: Mapping[str, Any] | None = None, overlays: Sequence[str] = (), **values: Any
) -> ConfigParser:
    """The layered MONAI config: shared ``config`` <- its stage deltas <- ``overlays`` <- ``settings`` <- ``values``
    (see the module doc; ``settings`` nested or as ``#`` ids)."""
    if isinstance(overlays, str):
        overlays = [overlays]
    parser = ConfigParser()
    parser.read_config(_shared_config(config))
    parser.resolve_macro_and_relative_ids()  # stage macros -> copies; their relative ids resolve on parse
    for layer in [STAGE_DELTAS, *overlays]:
        for key, value in ConfigParser.load_config_file(_shared_config(layer)).items():
            merge_kv(parser, key, value)
    ids = layered_settings(settings, {k: v for k, v in values.items() if v is not None})
    check_renamed_settings(ids)
    for key, value in ids.items():
        try:
            merge_kv(parser, key, value)
        except (KeyError, TypeError, ValueError) as exc:
            raise MedsegError(
                f"setting {key}: the configuration has no place for it ({exc}); "
                "check the id against medseglatdiff/configs/train.json"
            ) from None
    return parser


def run_expressions(parser: ConfigParser, id: str) -> list[Any]:
    """Evaluate ``id`` (an expression or a list of them, one at a time, as MONAI's ``ConfigWorkflow`` does).

    Items of a list are resolved lazily and in order, so a later stage's networks and data are only built
    after the earlier stages have run.
    """
    results: list[Any] = []
    if id not in parser:
        return results
    ids = [f"{id}#{i}" for i in range(len(parser[id]))] if isinstance(parser[id], list) else [id]
    for sub_id in ids:
        results.append(parser.get_parsed_content(sub_id))
        parser.ref_resolver.remove_resolved_content(sub_id)
    return results


def _output_dir(parser: ConfigParser) -> Path:
    parser.parse(reset=True)
    return Path(parser.get_parsed_content("output_dir"))


def _save_settings(path: Path, settings: Mapping[str, Any] | None) -> None:
    try:
        text = json.dumps(dict(settings or {}), indent=2)
    except TypeError:
        logger.warning(
            "settings hold values that are not JSON; %s not written (inference will need the same settings)", path
        )
        return
    if is_main_process():
        write_text_atomic(path, text + "\n")


def _save_model_files(parser: ConfigParser, output_dir: Path) -> None:
    """``model.json`` + a ``plans.json`` copy, so the fold folder predicts on its own (see training.model_info)."""
    from medseglatdiff.training.model_info import write_model_files

    if is_main_process():
        write_model_files(parser, output_dir)


def _announce(parser: ConfigParser) -> None:
    """Print what the training will do before it starts: stages, and the time budget's shares or, without a budget,
    the estimated time of the planned epochs (:mod:`medseglatdiff.training.estimate`; ``estimate_time`` False skips it).
    """
    from medseglatdiff.training.stage import DONE_FILE

    if "progress" not in parser or not is_main_process():
        return
    trained, notes = {}, []
    for stage in ("image_autoencoder", "mask_autoencoder", "denoiser"):
        finished = (Path(parser.get_parsed_content(f"{stage}#stage_dir")) / DONE_FILE).is_file()
        enabled = f"{stage}#stage#enabled" not in parser or bool(parser.get_parsed_content(f"{stage}#stage#enabled"))
        trained[stage] = enabled and not finished
        if finished:
            notes.append(f"{stage} already finished (skipped)")
        elif not enabled:
            notes.append(f"{stage} not trained: {parser.get_parsed_content(f'{stage}#stage#skip_reason')}")
    progress = parser.get_parsed_content("progress")
    planned = None
    if progress.budget is None and any(trained.values()) and bool(parser.get("estimate_time", True)):
        from medseglatdiff.training.estimate import estimate_stage_seconds

        planned = estimate_stage_seconds(parser, trained)
    print(
        f"training {parser.get_parsed_content('output_dir')}: {progress.describe(trained, planned)}"
        + (f" ({'; '.join(notes)})" if notes else ""),
        flush=True,
    )


def run_training(settings: Mapping[str, Any] | None = None, overlays: Sequence[str] = (), **values: Any) -> list[Any]:
    """Build the layered training config (:func:`build_parser`) and run its ``initialize``, ``training`` and
    ``finalize`` lists, with the fold folder locked (:mod:`medseglatdiff.io.locks`).

    The run records its settings (as config ids) in ``<output_dir>/settings.json`` and what inference needs in
    ``model.json`` + a ``plans.json`` copy (:mod:`medseglatdiff.training.model_info`), so the fold folder predicts
    on its own.
    """
    parser = build_parser("train.json", settings, overlays, **values)
    settings_file = _output_dir(parser) / SETTINGS_FILE
    if int(os.environ.get("RANK", "0")) == 0:  # one lock per fold (rank 0 under torchrun)
        with folder_lock(settings_file.parent, "training"):
            return _run_parsed(parser, settings, settings_file)
    return _run_parsed(parser, settings, settings_file)


def _run_parsed(parser: ConfigParser, settings: Mapping[str, Any] | None, settings_file: Path) -> list[Any]:
    parser.parse(reset=True)
    run_expressions(parser, "initialize")
    _save_settings(settings_file, layered_settings(settings))
    _save_model_files(parser, settings_file.parent)
    _announce(parser)
    try:
        return run_expressions(parser, "training")
    finally:
        run_expressions(parser, "finalize")


def nested_settings(ids: Mapping[str, Any]) -> dict[str, Any]:
    """Config ids (``{"a#b": 1}``) as the nested settings a bundle file holds (``{"a": {"b": 1}}``)."""
    nested: dict[str, Any] = {}
    for key, value in ids.items():
        *parents, last = str(key).split("#")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MedsegError(f"setting {key}: {part} is set to a value, not a block; set one or the other")
        node[last] = value
    return nested


def train(
    dataset_dir: str | os.PathLike,
    bundle: str | os.PathLike = "lidc",
    fold: int | str = 0,
    overlays: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
    logging_file: str | bool | None = None,
    **overrides: Any,
) -> None:
    """Train the three stages of a bundle on a planned and preprocessed dataset (what ``medseg train`` runs).

    Equivalent to ``python -m monai.bundle run training --config_file bundles/<bundle>/train.json
    --dataset_dir DIR --fold K --settings#KEY VALUE ...``; finished stages are skipped, an interrupted
    stage resumes from its last checkpoint.

    Args:
        dataset_dir: the folder written by ``medseg plan_and_preprocess`` (plans.json + preprocessed cases).
        bundle: a bundle name (isic, cvc, lidc, brats) or a path to a bundle folder / train.json.
        fold: cross-validation fold (0..4) or "all".
        overlays: extra shared configs applied on top (e.g. "multi_gpu_train.json").
        settings: overrides of the layered configuration, nested or as ``#`` ids, e.g.
            ``{"image_autoencoder": {"max_epochs": 5}}``.
        logging_file: logging configuration; None: the bundle's ``logging.conf``; False: leave logging alone.
        overrides: flat overrides, same as ``settings`` (ids may use ``#``: ``**{"denoiser#lr": 1e-4}``).

    Raises:
        MedsegError: unknown bundle, missing or unplanned dataset, or any other user error met while training.
    """
    from monai.bundle import run

    from medseglatdiff.training.plans import training_plan

    path = bundle_path(bundle)
    bundle_settings = ConfigParser.load_config_file(path).get("settings", {})
    merged = layered_settings(bundle_settings, settings, overrides)
    training_plan(dataset_dir, merged.get("configuration"))  # a missing or unplanned dataset fails here, clearly
    try:
        run(
            "training",
            config_file=str(path),
            meta_file=str(path.parent / "metadata.json"),
            logging_file=str(path.parent / "logging.conf") if logging_file is None else logging_file,
            dataset_dir=str(dataset_dir),
            fold=fold,
            overlays=list(overlays),
            settings=nested_settings(merged),
        )
    except (RuntimeError, BundleCommandError) as exc:  # MONAI wraps errors of config expressions; bundle entries exit
        cause = user_error(exc)
        if cause is None:
            raise
        raise cause from exc
