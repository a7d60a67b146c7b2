"""Ignite handlers of the latent diffusion training: latent scaling, ensemble post-processing and image grids."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.transforms import MapTransform
from torch import nn

from medseglatdiff.datasets.label_scheme import LabelScheme
from medseglatdiff.engines.distributed import broadcast_tensor_, summary_writer
from medseglatdiff.engines.ensemble_summary import binary_entropy
from medseglatdiff.networks.latent_diffusion import LatentScaling, encode_images, encode_masks

logger = logging.getLogger(__name__)


class LatentScaleHandler:
    """At the start of the denoiser's training, set ``scale_factor = 1 / std`` of each latent from training batches.

    Skipped when the factors are already set (a resumed checkpoint restores them, so they never change in
    the middle of a training). Under ``torchrun`` rank 0's values are broadcast, so every rank scales alike.

    Args:
        scaling: the :class:`LatentScaling` shared with the prepare-batch, inferer and checkpoint.
        image_autoencoder: trained image autoencoder; None when the conditioning does not use it (its factor is then 1:
            the image pixels are already normalised).
        mask_autoencoder: trained mask VAE.
        image_key: batch key of the images.
        mask_key: batch key of the (drawn rater) masks.
        num_batches: how many training batches to pool.
    """

    def __init__(
        self,
        scaling: LatentScaling,
        image_autoencoder: nn.Module | None,
        mask_autoencoder: nn.Module,
        image_key: str = "image",
        mask_key: str = "mask",
        num_batches: int = 1,
    ) -> None:
        self.scaling = scaling
        self.image_autoencoder = image_autoencoder
        self.mask_autoencoder = mask_autoencoder
        self.image_key = image_key
        self.mask_key = mask_key
        self.num_batches = max(int(num_batches), 1)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if self.scaling.is_set:
            logger.info("latent scale factors kept from the checkpoint: %s", self.scaling.extra_repr())
            return
        device = engine.state.device
        image_latents, mask_latents = [], []
        for index, batch in enumerate(engine.data_loader):
            if index >= self.num_batches:
                break
            images = torch.as_tensor(batch[self.image_key]).float().to(device)
            masks = torch.as_tensor(batch[self.mask_key]).float().to(device)
            if self.image_autoencoder is not None:
                image_latents.append(encode_images(self.image_autoencoder.eval(), images).flatten().cpu())
            mask_latents.append(encode_masks(self.mask_autoencoder.eval(), masks).flatten().cpu())
        self.scaling.fit(torch.cat(image_latents) if image_latents else None, torch.cat(mask_latents))
        broadcast_tensor_(self.scaling.image)
        broadcast_tensor_(self.scaling.mask)
        logger.info(
            "latent scale factors set from %d training batch(es): %s", len(image_latents), self.scaling.extra_repr()
        )


class EnsembleMeand(MapTransform):
    """Post-process sampled probabilities ``(N, K, *spatial)`` into ``pred_mean`` and ``pred_mask`` ``(K, *spatial)``.

    The mean over samples is the prediction; ``pred_mask`` holds the foreground channels of the label map it
    gives (the label scheme's rule: ``mean >= threshold`` for one class or regions, arg-max for classes; 0.5:
    thresholds are never averaged). ``label`` becomes its foreground channels for the Dice metric (ignored voxels
    zero in both), so the metric is the mean over classes/regions.

    Args:
        keys: the sampled probabilities.
        label_key: the reference label map ``(1, *spatial)``.
        threshold: probability at which a channel is foreground.
        labels: the label scheme (JSON form; None: one binary class, foreground = any non-zero value).
    """

    def __init__(
        self,
        keys: str = "pred",
        label_key: str = "label",
        threshold: float = 0.5,
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(keys)
        self.label_key = label_key
        self.threshold = float(threshold)
        self.scheme = LabelScheme.from_json(labels) if labels else None

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        valid = None
        if self.label_key in d:
            label = torch.as_tensor(d[self.label_key])
            if self.scheme is None:
                d[self.label_key] = (label > 0).float()
            else:
                array = label.cpu().numpy()[0]
                valid = torch.as_tensor(self.scheme.valid(array)[None]).float()
                d[self.label_key] = torch.as_tensor(self.scheme.channel_masks(array)).float() * valid
        for key in self.key_iterator(d):
            mean = torch.as_tensor(d[key]).float().mean(dim=0)
            d[f"{key}_mean"] = mean
            if self.scheme is None:
                mask = (mean >= self.threshold).float()
            else:
                label_map = self.scheme.label_map(mean.cpu().numpy(), self.threshold)
                mask = torch.as_tensor(self.scheme.channel_masks(label_map)).float()
            d[f"{key}_mask"] = mask * valid if valid is not None else mask
        return d


def _normalise(panel: np.ndarray) -> np.ndarray:
    lo, hi = float(panel.min()), float(panel.max())
    return (panel - lo) / (hi - lo) if hi > lo else np.zeros_like(panel)


def _display_slice(array: np.ndarray, index: int | None) -> np.ndarray:
    """(x, y[, z]) -> (y, x) panel for display (rows = y), taking slice ``index`` of 3D arrays."""
    if array.ndim == 3:
        array = array[..., index]
    return np.asarray(array, dtype=np.float32).T


def ensemble_grid(image: np.ndarray, raters: np.ndarray | None, samples: np.ndarray, gap: int = 2) -> np.ndarray:
    """One row of panels: image, every rater mask, every sample, the mean and the confidence map.

    Args:
        image: ``(C, *spatial)``; channels are averaged for display and min-max scaled.
        raters: ``(R, *spatial)`` binary masks, or None.
        samples: ``(N, *spatial)`` probabilities.
        gap: white pixels between panels.

    Returns:
        ``(H, W)`` float image in [0, 1]. 3D inputs show the slice (last axis) with the most sampled foreground.
    """
    mean = samples.mean(axis=0)
    index = None
    if mean.ndim == 3:
        weight = mean.reshape(-1, mean.shape[-1]).sum(axis=0)
        if raters is not None:
            weight = weight + raters.reshape(raters.shape[0], -1, raters.shape[-1]).sum(axis=(0, 1))
        index = int(np.argmax(weight))
    panels = [_normalise(_display_slice(np.asarray(image, dtype=np.float32).mean(axis=0), index))]
    panels += [_display_slice(r, index) for r in (raters if raters is not None else [])]
    panels += [_display_slice(s, index) for s in samples]
    panels += [_display_slice(mean, index), _display_slice(1.0 - binary_entropy(mean), index)]
    height = panels[0].shape[0]
    spacer = np.ones((height, gap), dtype=np.float32)
    row: list[np.ndarray] = []
    for panel in panels:
        row += [np.clip(panel, 0.0, 1.0), spacer]
    return np.concatenate(row[:-1], axis=1)


class EnsembleImageGridHandler:
    """Write TensorBoard image grids of validation cases: image | rater masks | samples | mean | confidence.

    Attach to a :class:`~monai.engines.SupervisedEvaluator` whose output is decollated and holds ``pred``
    (``(N, K, *spatial)`` samples; shown as any foreground channel); rater masks are read from the batch (the label
    when there are none).

    Args:
        log_dir: TensorBoard folder (a writer is created on the main process only).
        max_cases: number of cases (rows) per grid, from the last validation batch.
        tag: TensorBoard tag.
        global_step_transform: maps the evaluator to the step (default: its epoch, which the
            ``ValidationHandler`` sets to the trainer's epoch).
    """

    def __init__(
        self,
        log_dir: str,
        max_cases: int = 2,
        tag: str = "validation/ensemble",
        global_step_transform: Callable[[Engine], int] | None = None,
    ) -> None:
        self.writer = summary_writer(log_dir)
        self.max_cases = int(max_cases)
        self.tag = tag
        self.global_step_transform = global_step_transform or (lambda engine: int(engine.state.epoch))

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        outputs: Sequence[Mapping[str, Any]] = engine.state.output or []
        batches: Sequence[Mapping[str, Any]] = engine.state.batch or []
        rows = []
        for item, batch in list(zip(outputs, batches))[: self.max_cases]:
            raters = batch.get("raters", batch.get("label"))
            rows.append(
                ensemble_grid(
                    np.asarray(torch.as_tensor(item["image"]).cpu()),
                    None if raters is None else np.asarray(torch.as_tensor(raters).cpu()) > 0,
                    np.asarray(torch.as_tensor(item["pred"]).float().amax(dim=1).cpu()),  # any foreground channel
                )
            )
        if not rows:
            return
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 2), (0, width - r.shape[1])), constant_values=1.0) for r in rows]
        grid = np.concatenate(rows, axis=0)
        self.writer.add_image(self.tag, grid[None], self.global_step_transform(engine), dataformats="CHW")
        self.writer.flush()
