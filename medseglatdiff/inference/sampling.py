"""Sample an ensemble of masks for one preprocessed image with one trained fold.

The N samples of a window run as one batch through DDIM (:func:`medseglatdiff.networks.sample_masks`);
images other than the training patch size go through MONAI's ``sliding_window_inference`` with the patch as
window (Gaussian-weighted overlaps; images smaller than the patch are padded), in 2D and 3D alike
(:class:`medseglatdiff.engines.LatentEnsembleInferer`). A 2D model of a 3D dataset (a plan with a
``slice_axis``) samples the volume slice by slice, the slices batched.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medseglatdiff.engines.inferers import LatentEnsembleInferer
from medseglatdiff.inference.model_loading import TrainedFold
from medseglatdiff.networks import sampling_scheduler
from medseglatdiff.preprocessing.case_io import RawCase
from medseglatdiff.preprocessing.inverse import restore_probabilities
from medseglatdiff.preprocessing.preprocess import preprocess_arrays
from medseglatdiff.training.model_info import model_label_scheme


def ensemble_inferer(
    fold: TrainedFold,
    num_samples: int,
    num_inference_steps: int,
    seed: int | None = 0,
    overlap: float = 0.25,
    max_batch: int | None = None,
) -> LatentEnsembleInferer:
    """The fold's sliding-window ensemble inferer with a DDIM sampler of ``num_inference_steps`` steps."""
    diffusion = fold.info["diffusion"]
    scheduler = sampling_scheduler(
        num_inference_steps=int(num_inference_steps),
        num_train_timesteps=int(diffusion["num_train_timesteps"]),
        beta_start=float(diffusion["beta_start"]),
        beta_end=float(diffusion["beta_end"]),
        schedule=str(diffusion["schedule"]),
        prediction_type=str(diffusion.get("prediction_type", "epsilon")),
    )
    model = fold.segmenter
    return LatentEnsembleInferer(
        model.image_autoencoder,
        model.mask_autoencoder,
        model.scaling,
        scheduler,
        num_samples=int(num_samples),
        max_batch=max_batch,
        seed=seed,
        roi_size=fold.info["patch_size"],
        overlap=overlap,
        conditioning=model.conditioning,
    )


@torch.no_grad()
def sample_image(
    fold: TrainedFold,
    image: np.ndarray,
    num_samples: int,
    num_inference_steps: int,
    seed: int | None = 0,
    overlap: float = 0.25,
    max_batch: int | None = None,
    slice_batch: int = 8,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Foreground probabilities ``(num_samples, K, *spatial)`` (K channels: one per class or region) of a
    preprocessed ``(C, *spatial)`` image.

    Args:
        fold: the trained fold.
        image: the image as preprocessing left it (normalised, resampled), channel first.
        num_samples: ensemble size.
        num_inference_steps: DDIM steps.
        seed: seed of the starting noise (the same seed gives the same samples).
        overlap: overlap of neighbouring windows.
        max_batch: largest number of latents denoised at once (default: all samples of a window).
        slice_batch: slices sampled together by a 2D model of a 3D volume.
        device: where the networks are.
    """
    if num_samples < 1:
        channels = model_label_scheme(fold.info).num_channels
        return np.zeros((0, channels, *image.shape[1:]), dtype=np.float32)
    inferer = ensemble_inferer(fold, num_samples, num_inference_steps, seed, overlap, max_batch)
    device = torch.device(device)
    tensor = torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32)
    slice_axis = fold.info.get("slice_axis")
    if int(fold.info["spatial_dims"]) == 2 and image.ndim == 4 and slice_axis is not None:
        axis = int(slice_axis) + 1  # skip the channel axis
        slices = tensor.movedim(axis, 0)  # (S, C, a, b)
        chunks = [
            inferer(slices[i : i + slice_batch].to(device), fold.segmenter.denoiser).float().cpu()
            for i in range(0, slices.shape[0], slice_batch)
        ]
        stacked = torch.cat(chunks, dim=0)  # (S, N, K, a, b)
        return stacked.movedim(0, slice_axis + 2).numpy()  # (N, K, ...) with the slices back in place
    return inferer(tensor[None].to(device), fold.segmenter.denoiser)[0].float().cpu().numpy()


@dataclass
class SampledCase:
    """One raw case's pooled samples on its original grid.

    Attributes:
        properties: its preprocessing properties (crop box, shapes, original geometry).
        samples: ``(N, K, *original shape)`` probabilities (K: one per class or region); 0 outside the crop box.
        seconds: time spent sampling (the networks only: no reading, preprocessing or mapping back).
    """

    properties: dict[str, Any]
    samples: np.ndarray
    seconds: float


def _synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def sample_raw_case(
    raw: RawCase,
    folds: Sequence[TrainedFold],
    shares: Sequence[int],
    num_inference_steps: int,
    seed: int = 0,
    overlap: float = 0.25,
    max_batch: int | None = None,
    device: str | torch.device = "cpu",
) -> SampledCase:
    """Preprocess ``raw`` as the folds' plan says, draw ``shares[k]`` samples with fold ``k`` (seed ``seed + k``),
    pool them and map every sample back onto the case's original grid.

    The one sampling path of ``medseg predict``, cross-validation, model selection and the bundles' run ids.
    """
    arrays, properties = preprocess_arrays(raw, folds[0].preprocessing)
    properties["case_id"] = raw.case_id
    _synchronize(device)
    started = time.perf_counter()
    pooled = [
        sample_image(
            fold,
            arrays["image"],
            share,
            num_inference_steps,
            seed=seed + k,
            overlap=overlap,
            max_batch=max_batch,
            device=device,
        )
        for k, (fold, share) in enumerate(zip(folds, shares))
        if share > 0
    ]
    _synchronize(device)
    seconds = time.perf_counter() - started
    pooled_samples = np.concatenate(pooled, axis=0)  # (N, K, *preprocessed shape)
    n, k = pooled_samples.shape[:2]
    samples = restore_probabilities(pooled_samples.reshape(n * k, *pooled_samples.shape[2:]), properties, fill=0.0)
    return SampledCase(properties, samples.reshape(n, k, *samples.shape[1:]), seconds)
