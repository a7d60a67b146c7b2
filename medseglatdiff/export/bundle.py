"""``medseg export``: a trained model folder -> a MONAI bundle in the specification's layout.

::

    dist/NAME/
      configs/metadata.json    MONAI metadata (network_data_format, versions, changelog)    metadata.py
      configs/inference.json   runs medseg predict; network_def                            config.py
      configs/logging.conf
      models/model.pt          state dict of network_def (the first exported fold)        network.py
      models/model.ts          TorchScript trace of network_def (monai.bundle ckpt_export)
      models/<configuration>/  the trained folds predict uses: fold_K/{model.json, plans.json, settings.json,
                               <stage>/model.pt, <stage>/done.json}, plus model_selection.json when there is one
      docs/README.md                                                                         readme.py
      LICENSE

The bundle is built in a temporary folder beside ``out``, checked with MONAI's ``verify_metadata`` and
``verify_net_in_out``, and renamed into place: ``out`` appears complete or not at all. Checkpoints, TensorBoard
logs and earlier predictions are left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.export.config import INFERENCE_CONFIG, inference_config
from medseglatdiff.export.metadata import bundle_metadata, verify_bundle
from medseglatdiff.export.readme import bundle_readme
from medseglatdiff.inference.model_loading import TrainedFold, check_compatible, find_folds, load_fold
from medseglatdiff.inference.predict import resolve_settings
from medseglatdiff.inference.selection import MODEL_SELECTION_FILE, find_model_selection, load_model_selection
from medseglatdiff.io.atomic import permissions_for, write_json_atomic, write_text_atomic
from medseglatdiff.planning.plans_io import PLANS_FILE
from medseglatdiff.resources import license_text
from medseglatdiff.training.bundle import SETTINGS_FILE
from medseglatdiff.training.model_info import MODEL_INFO_FILE, NETWORKS
from medseglatdiff.training.stage import DONE_FILE, MODEL_FILE

logger = logging.getLogger(__name__)

FOLD_FILES = (MODEL_INFO_FILE, PLANS_FILE, SETTINGS_FILE)
STAGE_FILES = (MODEL_FILE, DONE_FILE)
LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


def _copy_fold(fold: TrainedFold, target: Path) -> None:
    """The files predict needs from one fold (no checkpoints, logs or predictions)."""
    for name in FOLD_FILES:
        if (fold.path / name).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(fold.path / name, target / name)
    for stage in NETWORKS:
        (target / stage).mkdir(parents=True, exist_ok=True)
        for name in STAGE_FILES:
            shutil.copy2(fold.path / stage / name, target / stage / name)


def _export_torchscript(bundle: Path, input_shape: list[int]) -> None:
    """``models/model.ts`` from ``models/model.pt`` with MONAI's ``ckpt_export``, tracing (scripting fails)."""
    from monai.bundle import ckpt_export

    torch.manual_seed(0)
    ckpt_export(
        net_id="network_def",
        filepath=str(bundle / "models" / "model.ts"),
        ckpt_file=str(bundle / "models" / "model.pt"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / INFERENCE_CONFIG),
        use_trace=True,
        input_shape=input_shape,
        converter_kwargs={"check_trace": False},  # the samples are random: two traced runs never agree
    )


def _install(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``out`` (replacing an old bundle only with ``overwrite``)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if not overwrite:
        raise MedsegError(f"{out}: exists; pass --overwrite True to replace it, or choose another --out")
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def export(
    model: str | os.PathLike,
    out: str | os.PathLike,
    fold: int | str | None = None,
    num_samples: int | None = None,
    num_inference_steps: int | None = None,
    name: str | None = None,
    version: str = "0.1.0",
    overwrite: bool = False,
    verify: bool = True,
) -> Path:
    """Export a trained model as a MONAI bundle (layout in the module doc); returns the bundle folder.

    Args:
        model: ``WORK/results/<bundle>/<configuration>`` (every trained ``fold_K`` is exported) or one ``fold_K``.
        out: the bundle folder to create, e.g. ``dist/lidc``.
        fold: export ``fold_K`` only; None or "all": every trained fold (``medseg predict`` pools them).
        num_samples: ensemble size of the exported network and the bundle's default (default: the model
            selection's, else the plan's).
        num_inference_steps: DDIM steps (default: the model selection's, else the plan's).
        name: the bundle's name in its metadata (default: the folder name of ``out``).
        version: the bundle's version.
        overwrite: replace an existing ``out``.
        verify: run ``verify_net_in_out`` (one forward pass of the network) before installing the bundle;
            ``verify_metadata`` always runs.

    Raises:
        UntrainedModelError: ``model`` holds no finished training (the message says how to train it).
        MedsegError: ``out`` exists (without ``overwrite``), folds do not fit together, or a check failed.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise MedsegError(f"{out}: exists; pass --overwrite True to replace it, or choose another --out")
    folds = [load_fold(path) for path in find_folds(model, fold)]
    check_compatible(folds)
    first = folds[0]
    info = first.info
    selection_file = find_model_selection(model)
    settings, _ = resolve_settings(info, load_model_selection(model), num_samples, num_inference_steps, None)
    configuration = str(info["configuration"])
    name = name or out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(tmp, permissions_for("folder"))  # mkdtemp makes it 0700; the bundle is shared like any folder
    try:
        models = tmp / "models"
        for trained in folds:
            _copy_fold(trained, models / configuration / trained.name)
        selection: dict[str, Any] | None = None
        if selection_file is not None:
            shutil.copy2(selection_file, models / configuration / MODEL_SELECTION_FILE)
            selection = load_model_selection(models / configuration).to_dict()
        torch.save(first.segmenter.state_dict(), models / MODEL_FILE)
        metadata = bundle_metadata(
            info, name, [f.name for f in folds], settings["num_samples"], settings["num_inference_steps"], version
        )
        write_json_atomic(tmp / "configs" / "metadata.json", metadata)
        config = inference_config(
            uuid.uuid4().hex,
            configuration,
            info["networks"],
            info["diffusion"],
            settings["num_samples"],
            settings["num_inference_steps"],
            str(info.get("conditioning", "image_latent")),
        )
        write_json_atomic(tmp / "configs" / INFERENCE_CONFIG, config)
        write_text_atomic(tmp / "configs" / "logging.conf", LOGGING_CONF)
        write_text_atomic(
            tmp / "docs" / "README.md", bundle_readme(name, metadata, configuration, [f.name for f in folds], selection)
        )
        write_text_atomic(tmp / "LICENSE", license_text())
        logger.info(
            "tracing network_def to TorchScript (%d samples, %d DDIM steps)",
            settings["num_samples"],
            settings["num_inference_steps"],
        )
        _export_torchscript(tmp, [1, int(info["num_channels"]), *[int(p) for p in info["patch_size"]]])
        try:
            verify_bundle(tmp, net_in_out=verify)
        except ValueError as exc:
            raise MedsegError(f"{out}: the exported bundle fails MONAI's checks ({exc}); nothing was written") from exc
        _install(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s (%s) to %s", model, ", ".join(f.name for f in folds), out)
    return out
