"""What a dataset's label values mean, and how masks are encoded for the networks and decoded back (nnU-Net's rules).

Three kinds, chosen from ``dataset.json``'s ``labels`` (and ``regions_class_order``):

- ``binary``: one foreground class. One channel, sigmoid, weighted BCE (the method as published).
- ``classes``: several foreground classes, one integer each (``{"background": 0, "edema": 1, "tumour": 2}``).
  The networks see a one-hot mask with a background channel (softmax, weighted CE); predictions are label maps
  (arg-max of the mean class probabilities) with one probability and confidence map per foreground class.
- ``regions``: overlapping regions given as lists of label values (BraTS: whole tumour ``[1, 2, 3, 4]``, tumour
  core ``[1, 3, 4]``, enhancing ``[4]``). One sigmoid channel per region (weighted BCE each); the label map is
  written as nnU-Net does: each region in turn paints its ``regions_class_order`` value where its probability
  reaches the threshold, so later (inner) regions overwrite earlier ones.

An ``ignore`` label (nnU-Net: the key ``"ignore"``, the highest value) marks unannotated voxels: :meth:`encode`
sets them to -1 in every channel, the losses and reconstruction scores leave them out, and evaluation does not
score them.

"Channels" below are the foreground channels a prediction has (one per class or region); the mask VAE's input
and output have :attr:`LabelScheme.network_channels` (one more, the background, for ``classes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("binary", "classes", "regions")
IGNORE_KEY = "ignore"
IGNORED = -1.0  # value of ignored voxels in an encoded mask


class LabelSchemeError(ValueError):
    """``labels`` / ``regions_class_order`` that nnU-Net's rules do not allow; the message says what to change."""


def _values(value: int | Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),)


def label_values_of(labels: Mapping[str, int | Sequence[int]]) -> list[int]:
    """Every integer value of a ``labels`` object (regions' lists included), sorted."""
    return sorted({v for value in labels.values() for v in _values(value)})


@dataclass(frozen=True)
class LabelScheme:
    """The meaning of a dataset's label values (see the module docstring).

    Args:
        kind: ``"binary"``, ``"classes"`` or ``"regions"``.
        names: one name per foreground channel.
        values: the label values each channel covers.
        label_values: the value each channel paints in a predicted label map.
        ignore: the ignore label's value, or None.
    """

    kind: str
    names: tuple[str, ...]
    values: tuple[tuple[int, ...], ...]
    label_values: tuple[int, ...]
    ignore: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LabelSchemeError(f"label kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not self.names or len({len(self.names), len(self.values), len(self.label_values)}) != 1:
            raise LabelSchemeError("a label scheme needs one name, value list and label value per channel")

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_labels(
        cls, labels: Mapping[str, int | Sequence[int]], regions_class_order: Sequence[int] | None = None
    ) -> LabelScheme:
        """The scheme of a ``dataset.json`` ``labels`` object (nnU-Net's format).

        Raises:
            LabelSchemeError: regions without a matching ``regions_class_order``, an ``ignore`` label that is not
                the highest value, or no foreground label.
        """
        ignore = labels.get(IGNORE_KEY)
        if ignore is not None and not isinstance(ignore, int):
            raise LabelSchemeError(f"'labels': 'ignore' must be one integer, got {ignore!r}")
        entries = [
            (str(name), _values(value))
            for name, value in labels.items()
            if name != IGNORE_KEY and _values(value) != (0,) and str(name) != "background"
        ]
        if not entries:
            raise LabelSchemeError("'labels' has no foreground label; add one, e.g. \"lesion\": 1")
        used = {v for _, vals in entries for v in vals} | {0}
        if ignore is not None and ignore <= max(used):
            raise LabelSchemeError(
                f"'labels': 'ignore' is {ignore} but must be the highest label value (nnU-Net's rule); "
                f"give it {max(used) + 1} and relabel those voxels"
            )
        regions = regions_class_order is not None or any(len(vals) > 1 for _, vals in entries)
        if regions:
            if regions_class_order is None or len(regions_class_order) != len(entries):
                have = "missing" if regions_class_order is None else f"has {len(regions_class_order)} entries"
                raise LabelSchemeError(
                    f"region labels ({', '.join(n for n, _ in entries)}) need 'regions_class_order' with one label "
                    f"value per region, in order ({have}); e.g. BraTS [2, 1, 4] for whole tumour, tumour core, "
                    "enhancing"
                )
            order = tuple(int(v) for v in regions_class_order)
            return cls("regions", tuple(n for n, _ in entries), tuple(v for _, v in entries), order, ignore)
        kind = "binary" if len(entries) == 1 else "classes"
        return cls(
            kind, tuple(n for n, _ in entries), tuple(v for _, v in entries), tuple(v[0] for _, v in entries), ignore
        )

    @classmethod
    def recorded_or_derived(
        cls, recorded: Mapping[str, Any] | None, labels: Mapping[str, int | Sequence[int]]
    ) -> LabelScheme:
        """The scheme a fingerprint or plan recorded; files written before label kinds: from their ``labels``.

        Raises:
            LabelSchemeError: nothing recorded and ``labels`` alone do not make a scheme (regions need their order).
        """
        return cls.from_json(recorded) if recorded else cls.from_labels(labels)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LabelScheme:
        """Read :meth:`to_json`'s form; None (plans and models written before label kinds) is one binary class."""
        if not data:
            return cls("binary", ("foreground",), ((1,),), (1,))
        return cls(
            str(data["kind"]),
            tuple(str(n) for n in data["names"]),
            tuple(_values(v) for v in data["values"]),
            tuple(int(v) for v in data["label_values"]),
            None if data.get("ignore") is None else int(data["ignore"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "names": list(self.names),
            "values": [list(v) for v in self.values],
            "label_values": list(self.label_values),
            "ignore": self.ignore,
            "activation": self.activation,
        }

    # ---- properties ---------------------------------------------------------------------------------------------
    @property
    def num_channels(self) -> int:
        """Foreground channels of a prediction (one per class or region)."""
        return len(self.names)

    @property
    def network_channels(self) -> int:
        """Channels of the mask VAE's input and output (``classes`` add the background)."""
        return self.num_channels + (1 if self.kind == "classes" else 0)

    @property
    def activation(self) -> str:
        return "softmax" if self.kind == "classes" else "sigmoid"

    def describe(self) -> str:
        if self.kind == "binary":
            return f"one foreground class ({self.names[0]}): sigmoid with weighted BCE"
        parts = ", ".join(f"{n} {list(v) if self.kind == 'regions' else v[0]}" for n, v in zip(self.names, self.values))
        how = "softmax with weighted CE" if self.kind == "classes" else "one sigmoid with weighted BCE per region"
        ignore = f"; value {self.ignore} is ignored" if self.ignore is not None else ""
        return f"{self.num_channels} {self.kind} ({parts}): {how}{ignore}"

    # ---- arrays -------------------------------------------------------------------------------------------------
    def valid(self, label: np.ndarray) -> np.ndarray:
        """Voxels that are not the ignore label (all True without one)."""
        label = np.asarray(label)
        return np.ones(label.shape, dtype=bool) if self.ignore is None else label != self.ignore

    def channel_masks(self, label: np.ndarray) -> np.ndarray:
        """``(K, *shape)`` bool: each foreground channel of a label map ``(*shape)`` (regions overlap)."""
        label = np.asarray(label)
        return np.stack([np.isin(label, v) for v in self.values], axis=0)

    def encode(self, label: np.ndarray) -> np.ndarray:
        """A label map ``(1, *shape)`` as the mask VAE's input ``(network_channels, *shape)`` float32.

        ``classes`` get a one-hot with the background first; ignored voxels are -1 in every channel.
        """
        label = np.asarray(label)
        if label.ndim < 2 or label.shape[0] != 1:
            raise ValueError(f"encode expects a label map (1, *spatial), got shape {label.shape}")
        channels = self.channel_masks(label[0])
        if self.kind == "classes":
            channels = np.concatenate([~channels.any(axis=0, keepdims=True), channels], axis=0)
        encoded = channels.astype(np.float32)
        if self.ignore is not None:
            encoded[:, label[0] == self.ignore] = IGNORED
        return encoded

    def label_map(self, probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Foreground probabilities ``(K, *shape)`` -> label map ``(*shape)`` uint8 in nnU-Net's convention.

        binary: ``p >= threshold``; classes: arg-max with the background's probability ``1 - sum(p)``; regions:
        each region paints its ``label_values`` entry where ``p >= threshold``, in order.
        """
        p = np.asarray(probabilities, dtype=np.float32)
        if p.shape[0] != self.num_channels:
            raise ValueError(f"{p.shape[0]} probability channels for a scheme of {self.num_channels}")
        out = np.zeros(p.shape[1:], dtype=np.uint8)
        if self.kind == "classes":
            full = np.concatenate([1.0 - p.sum(axis=0, keepdims=True), p], axis=0)
            winner = full.argmax(axis=0)
            lut = np.array([0, *self.label_values], dtype=np.uint8)
            return lut[winner]
        for k, value in enumerate(self.label_values):
            out[p[k] >= threshold] = value
        return out
