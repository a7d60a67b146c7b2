"""Which trained model a cross-validation is about: the work folder, the bundle and its merged settings.

The folds of a bundle live where its training puts them, ``WORK/results/<bundle_name>/<configuration>/fold_K``
(the training config's ``output_dir``); the folder above them is the model folder that ``medseg predict --model``
takes and where the cross-validation and the model selection write (:mod:`medseglatdiff.crossval.layout`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseglatdiff.crossval.layout import CrossvalLayout
from medseglatdiff.errors import MedsegError


@dataclass
class CrossvalContext:
    """A planned work folder, a bundle, and the settings its training runs with.

    Attributes:
        work: the folder ``medseg plan_and_preprocess`` wrote.
        bundle: a bundle name (isic, cvc, lidc, brats) or a path to a bundle folder / train.json.
        settings: the run's own settings as config ids (``a#b``), passed to every fold's training.
        overlays: shared configs applied on top (e.g. ``multi_gpu_train.json``).
        merged: the bundle's settings with ``settings`` on top, as config ids (what the training config sees).
        plan: the configuration's training values (:func:`medseglatdiff.training.training_plan`).
    """

    work: Path
    bundle: str | os.PathLike
    settings: dict[str, Any]
    overlays: list[str] = field(default_factory=list)
    merged: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        work: str | os.PathLike,
        bundle: str | os.PathLike,
        settings: Mapping[str, Any] | None = None,
        overlays: Sequence[str] = (),
        **overrides: Any,
    ) -> CrossvalContext:
        """Layer ``settings`` and ``overrides`` over the bundle's settings and load the plan (clear errors when
        unplanned)."""
        from monai.bundle import ConfigParser

        from medseglatdiff.training import bundle_path, layered_settings, training_plan

        own = layered_settings(
            settings, {(k[len("settings#") :] if k.startswith("settings#") else k): v for k, v in overrides.items()}
        )
        if "output_dir" in own:
            raise MedsegError(
                "--settings#output_dir: cross-validation keeps every fold under WORK/results/<bundle>/<configuration>; "
                "drop this setting"
            )
        merged = layered_settings(ConfigParser.load_config_file(bundle_path(bundle)).get("settings", {}), own)
        plan = training_plan(work, merged.get("configuration"))
        overlays = [overlays] if isinstance(overlays, str) else list(overlays)
        return cls(Path(work), bundle, own, overlays, merged, plan)

    def fold_dir(self, fold: int) -> Path:
        """``fold_K`` as the training config names it (``output_dir``)."""
        from medseglatdiff.training import build_parser

        parser = build_parser("train.json", self.merged, self.overlays, dataset_dir=str(self.work), fold=fold)
        return Path(parser.get_parsed_content("output_dir"))

    @property
    def model_dir(self) -> Path:
        """The configuration folder holding the ``fold_K`` folders (``medseg predict --model``)."""
        return self.fold_dir(0).parent

    @property
    def layout(self) -> CrossvalLayout:
        return CrossvalLayout(self.model_dir)

    @property
    def seed(self) -> int:
        """The training seed, which also seeds new folds (as training does when it creates them)."""
        return int(self.merged.get("seed", 12345))
