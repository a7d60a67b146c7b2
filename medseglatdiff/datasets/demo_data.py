"""The embedded default dataset: small, deterministic, multi-rater, 2D or 3D.

Each case shows one or two lesion-like blobs (smooth star-shaped outlines) on a textured background.
Four simulated raters outline each lesion with their own boundary (a different radius and a smooth
wobble), and small lesions are sometimes missed by some raters, as LIDC readers miss tiny nodules.
The reference label is the raters' majority vote. Cases are paired into "patients" so grouped splits
can be exercised. The same seed gives byte-identical files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.raw_writer import CaseData, RawDatasetWriter, write_dataset
from medseglatdiff.io.geometry import Geometry

DEMO_SPACING_3D = (0.8, 0.8, 1.5)


@dataclass(frozen=True)
class DemoCase:
    """Parameters of one generated case (a picklable work item)."""

    index: int
    seed: int
    size: int
    spatial_dims: int
    num_raters: int


def _texture(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Tissue-like background: smoothed noise at two scales plus a gentle intensity gradient."""
    coarse = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(shape) / 10)
    fine = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=1.0)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    gradient = sum(rng.uniform(-0.3, 0.3) * g for g in grid)
    return 0.35 + 0.6 * coarse / (np.abs(coarse).max() + 1e-8) * 0.25 + 0.08 * fine + gradient * 0.15


def _blob(shape: tuple[int, ...], centre: np.ndarray, radius: float, harmonics: np.ndarray) -> np.ndarray:
    """Mask of a star-shaped blob: radius modulated by a few angular harmonics (azimuth, and polar angle in 3D)."""
    grid = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij")
    offsets = [g - c for g, c in zip(grid, centre)]
    dist = np.sqrt(sum(o**2 for o in offsets))
    theta = np.arctan2(offsets[1], offsets[0])
    wobble = sum(a * np.cos((k + 2) * theta + p) for k, (a, p) in enumerate(harmonics))
    if len(shape) == 3:
        phi = np.arccos(np.clip(offsets[2] / (dist + 1e-8), -1, 1))
        wobble = wobble + 0.1 * harmonics[0, 0] * np.cos(2 * phi)
    return dist <= radius * (1.0 + wobble)


def make_case(case: DemoCase) -> CaseData:
    """Generate one case: image, rater masks and group (module-level so worker processes can call it)."""
    rng = np.random.default_rng([case.seed, case.index])
    shape = (case.size,) * case.spatial_dims
    image = _texture(rng, shape)
    raters = [np.zeros(shape, dtype=bool) for _ in range(case.num_raters)]
    num_lesions = 1 + int(rng.random() < 0.35)
    for lesion in range(num_lesions):
        tiny = lesion > 0 or rng.random() < 0.2
        radius = case.size * (rng.uniform(0.03, 0.06) if tiny else rng.uniform(0.12, 0.25))
        radius = max(radius, 1.5)
        margin = radius * 1.5 + 2
        centre = rng.uniform(margin, case.size - margin, size=case.spatial_dims)
        harmonics = np.stack([rng.uniform(0.0, 0.12, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
        truth = _blob(shape, centre, radius, harmonics)
        contrast = rng.uniform(0.25, 0.45)
        image = image + contrast * ndimage.gaussian_filter(truth.astype(np.float64), sigma=0.8)
        for r in range(case.num_raters):
            if tiny and rng.random() < 0.35:
                continue  # this rater missed the small lesion
            rater_radius = radius * (1.0 + rng.normal(0.0, 0.08)) + rng.normal(0.0, 0.4)
            rater_harmonics = harmonics + np.stack([rng.normal(0, 0.03, 3), rng.normal(0, 0.3, 3)], axis=1)
            raters[r] |= _blob(shape, centre, max(rater_radius, 1.0), rater_harmonics)
    image = image + rng.normal(0.0, 0.03, size=shape)
    pixels = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    geometry = (
        Geometry.identity(2)
        if case.spatial_dims == 2
        else Geometry(DEMO_SPACING_3D, (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3).tolist())))
    )
    data = pixels[None] if case.spatial_dims == 2 else image.astype(np.float32)[None]
    return CaseData(
        case_id=f"demo_{case.index:03d}",
        channels=[data],
        geometry=geometry,
        raters=[m[None].astype(np.uint8) for m in raters],
        group=f"patient_{case.index // 2:03d}",
    )


def generate_demo_dataset(
    out: str | os.PathLike,
    num_cases: int = 24,
    spatial_dims: int = 2,
    num_raters: int = 4,
    seed: int = 0,
    size: int | None = None,
    overwrite: bool = False,
    num_workers: int = 1,
) -> DatasetSpec:
    """Write the demo dataset in the raw format and return its spec.

    Args:
        out: folder to create.
        num_cases: number of cases (two per simulated patient).
        spatial_dims: 2 (PNG, 64x64 by default) or 3 (NIfTI, 32^3 at 0.8x0.8x1.5 mm by default).
        num_raters: rater masks per case (at least 1).
        seed: the same seed gives the same files.
        size: edge length in voxels (default 64 in 2D, 32 in 3D).
        overwrite: replace an existing output folder.
        num_workers: processes used to generate cases.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if num_cases < 1 or num_raters < 1:
        raise ValueError("num_cases and num_raters must be at least 1")
    size = size or (64 if spatial_dims == 2 else 32)
    writer = RawDatasetWriter(
        out=Path(out),
        channel_names={"0": "MRI"},
        labels={"background": 0, "lesion": 1},
        file_ending=".png" if spatial_dims == 2 else ".nii.gz",
        num_raters=num_raters,
        group_kind="patient",
        extra={
            "name": f"medseglatdiff demo ({spatial_dims}D)",
            "description": "Synthetic lesions on textured backgrounds with simulated rater disagreement.",
            "reference": "generated by `medseg demo_data`",
            "licence": "CC0 (synthetic)",
            "demo_seed": seed,
        },
        overwrite=overwrite,
    )
    cases = [DemoCase(i, seed, size, spatial_dims, num_raters) for i in range(num_cases)]
    return write_dataset(cases, make_case, writer, num_workers=num_workers, description="generating demo data")
