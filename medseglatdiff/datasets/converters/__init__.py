"""Converters from public datasets, as their owners distribute them, to the raw format (``medseg convert``).

Each converter finds light "source" records under ``--src`` (paths, case id, group), reads one case at a time
with a module-level ``load_case`` and writes it with :func:`~medseglatdiff.datasets.raw_writer.write_dataset`
(staging folder, progress bar, optional process pool). See ``docs/converters.md``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from medseglatdiff.datasets.converters.brats import convert_brats
from medseglatdiff.datasets.converters.cvc import convert_cvc_clinicdb
from medseglatdiff.datasets.converters.isic import convert_isic2018
from medseglatdiff.datasets.converters.kvasir import convert_kvasir_seg
from medseglatdiff.datasets.converters.lidc import convert_lidc
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError

CONVERTERS: dict[str, Callable[..., DatasetSpec]] = {
    "isic2018": convert_isic2018,
    "kvasir_seg": convert_kvasir_seg,
    "cvc_clinicdb": convert_cvc_clinicdb,
    "lidc": convert_lidc,
    "brats": convert_brats,
}
_COMMON_ARGS = ("src", "out", "num_workers", "overwrite")


def converter_options(name: str) -> dict[str, Any]:
    """The converter-specific options of ``name`` with their defaults."""
    parameters = inspect.signature(get_converter(name)).parameters
    return {key: p.default for key, p in parameters.items() if key not in _COMMON_ARGS}


def get_converter(name: str) -> Callable[..., DatasetSpec]:
    """The conversion function registered as ``name``; raises MedsegError listing the names."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in CONVERTERS:
        raise MedsegError(f"unknown converter {name!r}; choose one of: {', '.join(CONVERTERS)}")
    return CONVERTERS[key]


def convert(
    name: str,
    src: str | os.PathLike,
    out: str | os.PathLike,
    num_workers: int = 1,
    overwrite: bool = False,
    **options: Any,
) -> DatasetSpec:
    """Convert the public dataset ``name`` found in ``src`` into a raw dataset at ``out``.

    Args:
        name: one of :data:`CONVERTERS` (isic2018, kvasir_seg, cvc_clinicdb, lidc, brats).
        src: the dataset folder as distributed (or as sampled in ``shared/data``).
        out: the raw dataset folder to create; it must not exist or be empty unless ``overwrite``.
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        options: converter-specific options, e.g. ``max_size`` (isic2018, kvasir_seg, cvc_clinicdb) or
            ``frame_table`` (cvc_clinicdb).

    Returns:
        The written dataset's spec.

    Raises:
        MedsegError: unknown converter or option, a --src layout the converter does not accept, unpaired
            files, or an existing output folder; nothing is written then.
    """
    func = get_converter(name)
    allowed = converter_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(f"--{k}" for k in allowed) or "none"
        raise MedsegError(
            f"converter {name!r} has no option {', '.join('--' + k for k in unknown)}; its options: {accepted}"
        )
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise MedsegError(f"--num_workers {num_workers!r}: must be a positive integer")
    return func(src, out, num_workers=num_workers, overwrite=overwrite, **options)


__all__ = ["CONVERTERS", "convert", "converter_options", "get_converter"]
