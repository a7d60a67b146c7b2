"""Image geometry (spacing, origin, direction) in MONAI's RAS world convention."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Where an image's voxels lie in the world, in MONAI's convention (RAS, array axes x, y[, z]).

    Args:
        spacing: voxel size per spatial axis (mm for medical images, 1.0 for natural images).
        origin: world position of the first voxel's centre.
        direction: unit vector of each array axis in the world, one row per axis.
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[tuple[float, ...], ...]

    @property
    def spatial_dims(self) -> int:
        return len(self.spacing)

    @classmethod
    def identity(cls, spatial_dims: int) -> Geometry:
        """Unit spacing, zero origin, axis-aligned: what a natural image (PNG, JPEG) has."""
        eye = np.eye(spatial_dims)
        return cls(tuple([1.0] * spatial_dims), tuple([0.0] * spatial_dims), tuple(map(tuple, eye.tolist())))

    @classmethod
    def from_affine(cls, affine: np.ndarray, spatial_dims: int) -> Geometry:
        """Build from a (d+1)x(d+1) or 4x4 affine (columns: axis vectors times spacing)."""
        affine = np.asarray(affine, dtype=np.float64)
        linear = affine[:spatial_dims, :spatial_dims]
        spacing = np.linalg.norm(linear, axis=0)
        spacing = np.where(spacing > 0, spacing, 1.0)
        direction = (linear / spacing).T  # one row per array axis
        origin = affine[:spatial_dims, -1]
        return cls(
            tuple(float(s) for s in spacing),
            tuple(float(o) for o in origin),
            tuple(tuple(float(v) for v in row) for row in direction),
        )

    def to_affine(self) -> np.ndarray:
        """The (d+1)x(d+1) affine that maps voxel indices to world coordinates."""
        d = self.spatial_dims
        affine = np.eye(d + 1)
        affine[:d, :d] = np.asarray(self.direction, dtype=np.float64).T * np.asarray(self.spacing)
        affine[:d, d] = self.origin
        return affine

    def to_affine_4x4(self) -> np.ndarray:
        """The affine embedded in 4x4 (what NIfTI stores); 2D images get a unit third axis."""
        d = self.spatial_dims
        affine = np.eye(4)
        small = self.to_affine()
        affine[:d, :d] = small[:d, :d]
        affine[:d, 3] = small[:d, d]
        return affine

    def to_dict(self) -> dict:
        return {
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": [list(r) for r in self.direction],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Geometry:
        return cls(tuple(data["spacing"]), tuple(data["origin"]), tuple(tuple(r) for r in data["direction"]))

    def allclose(self, other: Geometry, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
        """Same spacing, origin and direction within tolerance."""
        return (
            self.spatial_dims == other.spatial_dims
            and np.allclose(self.spacing, other.spacing, rtol=rtol, atol=atol)
            and np.allclose(self.origin, other.origin, rtol=rtol, atol=atol)
            and np.allclose(self.direction, other.direction, rtol=rtol, atol=atol)
        )
