"""Dictionary transforms that turn a preprocessed case into a training or validation sample.

A sample holds ``image`` ``(C, *spatial)`` float32, ``label`` ``(1, *spatial)`` (the reference label map),
``raters`` ``(R, *spatial)`` rater label maps (absent for single-label datasets) and, after
:class:`RandRaterMaskd`, ``mask`` ``(1, *spatial)``: the one label map the autoencoder and the denoiser learn from
in this iteration, which :class:`EncodeMaskd` turns into the mask VAE's channels (the plan's label scheme).

Multi-rater choice: each sample draws **one rater uniformly among all raters, empty masks included**. An
empty rater mask is real disagreement (that reader did not outline the lesion on this slice), so dropping
it would teach the model that every reader always sees the lesion; drawing it with the same probability
as the others makes the sampled masks reproduce the readers' spread, including "no lesion" answers.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.transforms import MapTransform, Randomizable

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.errors import MedsegError

MASK_KEYS = ("label", "raters")


def load_preprocessed_case(path: str | Path) -> dict[str, Any]:
    """Read one preprocessed ``<case>.npz`` into ``image``, ``label`` and ``raters`` (label maps) when present."""
    path = Path(path)
    try:
        with np.load(path) as npz:
            image = np.asarray(npz["image"], dtype=np.float32)
            label = np.asarray(npz["label"]).astype(np.uint8)
            raters = np.asarray(npz["raters"]).astype(np.uint8) if "raters" in npz.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise MedsegError(
            f"{path}: cannot read the preprocessed case ({exc}); run `medseg plan_and_preprocess` again"
        ) from exc
    sample: dict[str, Any] = {"image": image, "label": label, "case": path.stem}
    if raters is not None and raters.shape[0] > 0:
        sample["raters"] = raters
    return sample


class LoadPreprocessedCased(MapTransform):
    """Replace the ``path`` entry of a record with the arrays of that case (see :func:`load_preprocessed_case`)."""

    def __init__(self, path_key: str = "path") -> None:
        super().__init__([path_key])
        self.path_key = path_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d.update(load_preprocessed_case(d.pop(self.path_key)))
        return d


def crop_with_padding(array: np.ndarray, start: Sequence[int], size: Sequence[int], value: float = 0.0) -> np.ndarray:
    """``array[:, start:start+size]`` over the trailing spatial axes, padded with ``value`` where it leaves the
    array."""
    spatial = array.shape[1:]
    src, pad = [slice(None)], [(0, 0)]
    for s, n, dim in zip(start, size, spatial):
        lo, hi = max(int(s), 0), min(int(s) + int(n), dim)
        src.append(slice(lo, max(hi, lo)))
        pad.append((lo - int(s), int(s) + int(n) - max(hi, lo)))
    out = array[tuple(src)]
    if any(p != (0, 0) for p in pad):
        out = np.pad(out, pad, mode="constant", constant_values=value)
    return out


def _foreground(d: Mapping[Hashable, Any]) -> np.ndarray:
    """Union of the reference label and every rater mask, ``(*spatial)`` bool."""
    masks = [np.asarray(d[k]) > 0 for k in MASK_KEYS if k in d and d[k] is not None]
    return np.concatenate(masks, axis=0).any(axis=0)


def _crop_all(d: dict[Hashable, Any], start: Sequence[int], size: Sequence[int]) -> dict[Hashable, Any]:
    d["image"] = crop_with_padding(d["image"], start, size, 0.0)
    for key in MASK_KEYS:
        if key in d and d[key] is not None:
            d[key] = crop_with_padding(d[key], start, size, 0)
    return d


def _slice_axis_last(d: dict[Hashable, Any], axis: int | None) -> dict[Hashable, Any]:
    """Move spatial ``axis`` (None: already last) of the image and masks to the end."""
    if axis is not None:
        for key in ("image", *MASK_KEYS):
            if key in d and d[key] is not None:
                d[key] = np.moveaxis(d[key], int(axis) + 1, -1)
    return d


def _take_slice(d: dict[Hashable, Any], index: int) -> dict[Hashable, Any]:
    for key in ("image", *MASK_KEYS):
        if key in d and d[key] is not None:
            d[key] = np.ascontiguousarray(d[key][..., index])
    return d


class RandPatchCropd(Randomizable, MapTransform):
    """Cut a random region of ``size`` from the image and all masks, centred on foreground with
    ``foreground_probability``.

    As nnU-Net does, a share of the patches is forced to contain foreground (of the label or any rater),
    since lesions are small; the others are centred uniformly. Regions beyond the image are zero-padded.
    When the arrays have one spatial axis more than ``size`` (a 2D configuration of 3D volumes), a slice
    across ``slice_axis`` is drawn first, with the same foreground preference.

    Args:
        size: the region's size (use ``augmentation.initial_patch_size`` to leave room for rotation).
        foreground_probability: share of patches centred on a foreground voxel (when the case has one).
        slice_axis: spatial axis that 2D patches of 3D volumes are sliced across (None: the last).
    """

    def __init__(
        self, size: Sequence[int], foreground_probability: float = 0.33, slice_axis: int | None = None
    ) -> None:
        MapTransform.__init__(self, ["image", *MASK_KEYS], allow_missing_keys=True)
        self.size = tuple(int(s) for s in size)
        self.foreground_probability = float(foreground_probability)
        self.slice_axis = slice_axis

    def randomize(self, data: Any = None) -> None:
        self._use_foreground = self.R.rand() < self.foreground_probability

    def _pick_voxel(self, candidates: np.ndarray) -> np.ndarray:
        return candidates[self.R.randint(len(candidates))]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        fg = _foreground(d)
        if fg.ndim == len(self.size) + 1:
            d = _slice_axis_last(d, self.slice_axis)
            fg = _foreground(d)
        fg_voxels = np.argwhere(fg) if self._use_foreground else np.empty((0, fg.ndim), dtype=np.int64)
        if fg.ndim == len(self.size) + 1:
            if len(fg_voxels):
                index = int(self._pick_voxel(fg_voxels)[-1])
                fg_voxels = fg_voxels[fg_voxels[:, -1] == index][:, :-1]
            else:
                index = int(self.R.randint(fg.shape[-1]))
            d = _take_slice(d, index)
            fg = fg[..., index]
        if fg.ndim != len(self.size):
            raise ValueError(f"patch size {self.size} does not fit a case with spatial shape {fg.shape}")
        if len(fg_voxels):
            centre = self._pick_voxel(fg_voxels)
        else:
            # uniformly among the centres whose patch stays inside the image (the middle when it does not fit)
            centre = np.array(
                [self.R.randint(n // 2, s - (n - n // 2) + 1) if s > n else s // 2 for s, n in zip(fg.shape, self.size)]
            )
        start = [int(c) - n // 2 for c, n in zip(centre, self.size)]
        return _crop_all(d, start, self.size)


class CenteredPatchCropd(MapTransform):
    """Deterministic crop of ``size`` centred on the foreground's bounding box (image centre when empty).

    Used for validation during training: the same region of each case every time, containing the lesion.
    A 2D configuration of 3D volumes takes the slice (across ``slice_axis``) with the most foreground.
    """

    def __init__(self, size: Sequence[int], slice_axis: int | None = None) -> None:
        super().__init__(["image", *MASK_KEYS], allow_missing_keys=True)
        self.size = tuple(int(s) for s in size)
        self.slice_axis = slice_axis

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        fg = _foreground(d)
        if fg.ndim == len(self.size) + 1:
            d = _slice_axis_last(d, self.slice_axis)
            fg = _foreground(d)
            index = int(np.argmax(fg.reshape(-1, fg.shape[-1]).sum(axis=0))) if fg.any() else fg.shape[-1] // 2
            d = _take_slice(d, index)
            fg = fg[..., index]
        if fg.any():
            voxels = np.argwhere(fg)
            centre = (voxels.min(axis=0) + voxels.max(axis=0)) // 2
        else:
            centre = np.array(fg.shape) // 2
        start = [int(c) - n // 2 for c, n in zip(centre, self.size)]
        return _crop_all(d, start, self.size)


class RandRaterMaskd(Randomizable, MapTransform):
    """Set ``mask`` to one rater's mask drawn uniformly among all raters (empty ones included).

    Without raters (single-label datasets) the mask is the reference label. Masks stay label maps
    (:class:`EncodeMaskd` encodes them).
    """

    def __init__(self, raters_key: str = "raters", label_key: str = "label", output_key: str = "mask") -> None:
        MapTransform.__init__(self, [raters_key, label_key], allow_missing_keys=True)
        self.raters_key = raters_key
        self.label_key = label_key
        self.output_key = output_key

    def randomize(self, num_raters: int) -> None:
        self._rater = int(self.R.randint(num_raters))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        raters = d.get(self.raters_key)
        if raters is None or len(raters) == 0:
            d[self.output_key] = np.asarray(d[self.label_key]).astype(np.uint8)
            return d
        self.randomize(len(raters))
        d[self.output_key] = np.asarray(raters[self._rater : self._rater + 1]).astype(np.uint8)
        return d


class EncodeMaskd(MapTransform):
    """Encode the ``mask`` label map ``(1, *spatial)`` into the mask VAE's channels by a label scheme.

    With no scheme (None: callers that predate label kinds) the mask becomes binary, foreground = any non-zero
    value. Ignored voxels are -1 in every channel (see :mod:`medseglatdiff.datasets.label_scheme`).

    Args:
        labels: the scheme (:class:`LabelScheme` or its JSON form from the plan), or None.
        key: the label map to encode.
    """

    def __init__(self, labels: LabelScheme | Mapping[str, Any] | None = None, key: str = "mask") -> None:
        super().__init__([key])
        self.scheme = labels if isinstance(labels, LabelScheme) or labels is None else LabelScheme.from_json(labels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = np.asarray(d[key])
            d[key] = (label > 0).astype(np.float32) if self.scheme is None else self.scheme.encode(label)
        return d
