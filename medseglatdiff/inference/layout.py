"""Where ``medseg predict`` writes each output, and how ``medseg evaluate`` finds it.

::

    OUT/{case}{ending}                      final mask (label map), the input's format and geometry
    OUT/probability/{case}{ending}          mean foreground probability of the samples
    OUT/confidence/{case}{ending}           confidence map, 1 - binary entropy of the mean (see ensemble.py)
    OUT/probability/{case}_{name}{ending}   with several classes or regions: one map per class/region ``name``
    OUT/confidence/{case}_{name}{ending}    (the names of dataset.json ``labels``)
    OUT/samples/{case}_s{k:02d}{ending}     every sampled mask (with --save_samples)
    OUT/overlays/{case}.png                 image, mask outline and confidence heat map, for a person to look at

Probability and confidence maps are float32 in NIfTI/MHA; in 8-bit natural-image formats (PNG) they are stored
as round(255 * value) and read back divided by 255.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseglatdiff.io.readers import NATURAL_SUFFIXES, read_image


def channel_suffix(channel: str | None) -> str:
    """``_<name>`` for a class/region's maps, the name's characters other than letters, digits, ``-`` and ``.``
    replaced by ``_`` (dataset.json names may hold spaces or slashes); empty for one channel."""
    return "_" + re.sub(r"[^A-Za-z0-9.-]", "_", channel) if channel else ""


@dataclass(frozen=True)
class PredictionLayout:
    """File names of one prediction folder."""

    root: Path
    file_ending: str
    samples_dir: Path | None = None

    @property
    def samples_folder(self) -> Path:
        """``root/samples`` unless another folder was given (``medseg evaluate --samples``)."""
        return self.samples_dir if self.samples_dir is not None else self.root / "samples"

    def mask(self, case: str) -> Path:
        return self.root / f"{case}{self.file_ending}"

    def probability(self, case: str, channel: str | None = None) -> Path:
        """The mean probability map (of one class or region ``channel`` when there are several)."""
        return self.root / "probability" / f"{case}{channel_suffix(channel)}{self.file_ending}"

    def confidence(self, case: str, channel: str | None = None) -> Path:
        """The confidence map (of one class or region ``channel`` when there are several)."""
        return self.root / "confidence" / f"{case}{channel_suffix(channel)}{self.file_ending}"

    def sample(self, case: str, index: int) -> Path:
        return self.samples_folder / f"{case}_s{index:02d}{self.file_ending}"

    def overlay(self, case: str) -> Path:
        return self.root / "overlays" / f"{case}.png"

    @property
    def stores_8bit_maps(self) -> bool:
        return self.file_ending.lower() in NATURAL_SUFFIXES

    def predicted_cases(self) -> list[str]:
        """Cases with a final mask in the folder."""
        return sorted(p.name[: -len(self.file_ending)] for p in self.root.glob(f"*{self.file_ending}") if p.is_file())

    def sample_files(self, case: str) -> list[Path]:
        pattern = re.compile(re.escape(case) + r"_s\d{2,}" + re.escape(self.file_ending) + "$")
        folder = self.samples_folder
        return (
            sorted(p for p in folder.glob(f"{case}_s*{self.file_ending}") if pattern.match(p.name))
            if folder.is_dir()
            else []
        )

    def read_map(self, path: Path) -> np.ndarray:
        """A probability/confidence map as float in [0, 1], without the channel axis."""
        array = read_image(path).array[0].astype(np.float32)
        return array / 255.0 if self.stores_8bit_maps else array
