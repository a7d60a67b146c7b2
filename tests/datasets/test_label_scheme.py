"""Label kinds (binary, classes, regions, ignore): the scheme, the mask VAE's loss and the ensemble maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseglatdiff.datasets.label_scheme import LabelScheme, LabelSchemeError
from medseglatdiff.engines import EnsembleMeand, LatentEnsembleInferer
from medseglatdiff.engines.ensemble_summary import summarize_ensemble
from medseglatdiff.losses import MaskAutoencoderLoss
from medseglatdiff.networks import LatentScaling, latent_denoiser, mask_autoencoder, sampling_scheduler

BRATS = {"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing_tumour": [4]}


def test_kinds_follow_nnunet_rules() -> None:
    assert LabelScheme.from_labels({"background": 0, "lesion": 1}).kind == "binary"
    classes = LabelScheme.from_labels({"background": 0, "liver": 1, "tumour": 2})
    assert (classes.kind, classes.network_channels, classes.activation) == ("classes", 3, "softmax")
    regions = LabelScheme.from_labels(BRATS, [2, 1, 4])
    assert (regions.kind, regions.num_channels, regions.network_channels) == ("regions", 3, 3)
    assert LabelScheme.from_json(regions.to_json()) == regions
    with pytest.raises(LabelSchemeError, match="regions_class_order"):
        LabelScheme.from_labels(BRATS)
    with pytest.raises(LabelSchemeError, match="highest"):
        LabelScheme.from_labels({"background": 0, "ignore": 1, "lesion": 2})
    assert LabelScheme.from_labels({"background": 0, "lesion": 1, "ignore": 2}).ignore == 2


def test_label_maps_are_nnunet_conventions() -> None:
    regions = LabelScheme.from_labels(BRATS, [2, 1, 4])
    p = np.zeros((3, 1, 4), dtype=np.float32)
    p[0] = [[0.9, 0.9, 0.9, 0.1]]  # whole tumour
    p[1] = [[0.1, 0.8, 0.8, 0.1]]  # tumour core
    p[2] = [[0.1, 0.2, 0.7, 0.1]]  # enhancing
    label_map = regions.label_map(p)
    np.testing.assert_array_equal(label_map, [[2, 1, 4, 0]])  # later regions paint over earlier ones
    np.testing.assert_array_equal(regions.channel_masks(label_map)[:, 0], [[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]])
    classes = LabelScheme.from_labels({"background": 0, "a": 1, "b": 3})
    probabilities = np.array([[[0.6, 0.3, 0.2]], [[0.3, 0.6, 0.2]]], dtype=np.float32)  # background: 0.1/0.1/0.6
    np.testing.assert_array_equal(classes.label_map(probabilities), [[1, 3, 0]])


def test_mask_loss_leaves_ignored_voxels_out() -> None:
    torch.manual_seed(0)
    target = torch.zeros(2, 3, 8, 8)
    target[:, 0] = 1.0  # background everywhere (one-hot of 3 classes)
    logits = torch.randn(2, 3, 8, 8)
    loss = MaskAutoencoderLoss([2.0, 3.0], 1.0, activation="softmax")
    base = loss.reconstruction(logits, target)
    ignored = target.clone()
    ignored[:, :, :4] = -1.0
    changed = logits.clone()
    changed[:, :, :4] = 100.0 * torch.randn(2, 3, 4, 8)  # whatever is predicted on ignored voxels
    only_rest = loss.reconstruction(logits[:, :, 4:], target[:, :, 4:])
    assert torch.isclose(loss.reconstruction(changed, ignored), only_rest)
    assert not torch.isclose(base, loss.reconstruction(changed, target))
    sigmoid = MaskAutoencoderLoss([5.0, 1.0, 1.0], 1.0)
    assert torch.isfinite(sigmoid.reconstruction(logits, ignored))


def test_several_channels_are_sampled_windowed_and_scored() -> None:
    torch.manual_seed(0)
    regions = LabelScheme.from_labels(BRATS, [2, 1, 4])
    mask_ae = mask_autoencoder(2, label_channels=3, channels=(8, 16), latent_channels=1, num_res_blocks=1).eval()
    denoiser = latent_denoiser(2, mask_latent_channels=1, image_latent_channels=4, channels=(8, 16), num_res_blocks=1)
    inferer = LatentEnsembleInferer(
        None,
        mask_ae,
        LatentScaling().fit(torch.randn(20), torch.randn(20)),
        sampling_scheduler(num_inference_steps=2),
        num_samples=2,
        roi_size=(16, 16),
        conditioning="image_pixels",
    )
    samples = inferer(torch.randn(1, 1, 16, 24), denoiser.eval())
    assert samples.shape == (1, 2, 3, 16, 24) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    summary = summarize_ensemble(samples[0].numpy(), regions)
    assert summary.mean.shape == (3, 16, 24) and summary.confidence.shape == (3, 16, 24)
    assert set(np.unique(summary.label_map)) <= {0, 1, 2, 4}
    label = torch.zeros(1, 16, 24, dtype=torch.uint8)
    label[0, 4:8, 4:8] = 4
    scored = EnsembleMeand(labels=regions.to_json())({"pred": samples[0], "label": label})
    assert scored["pred_mask"].shape == (3, 16, 24) and scored["label"].shape == (3, 16, 24)
    assert float(scored["label"][2].sum()) == 16  # enhancing voxels belong to every region
    softmax = mask_autoencoder(2, label_channels=3, activation="softmax", channels=(8, 16), latent_channels=1)
    probabilities = softmax.probabilities(torch.randn(1, 3, 4, 4))
    assert probabilities.shape == (1, 2, 4, 4) and float(probabilities.sum(1).max()) <= 1  # background dropped


def test_majority_vote_of_rater_label_maps() -> None:
    from medseglatdiff.datasets.raw_writer import majority_vote

    raters = [np.array([[0, 1, 2, 2]]), np.array([[0, 2, 2, 0]]), np.array([[1, 2, 0, 0]]), np.array([[0, 0, 0, 0]])]
    # foreground where half the raters marked any class, with the class most of them gave (ties: the smaller)
    np.testing.assert_array_equal(majority_vote(raters), [[0, 2, 2, 0]])
    binary = [np.array([[1, 1, 0]]), np.array([[0, 1, 0]])]
    np.testing.assert_array_equal(majority_vote(binary), [[1, 1, 0]])


def test_class_names_become_safe_file_names(tmp_path) -> None:
    from medseglatdiff.inference.layout import PredictionLayout

    layout = PredictionLayout(tmp_path, ".nii.gz")
    assert layout.probability("c1", "tumour core/left").name == "c1_tumour_core_left.nii.gz"
    assert layout.confidence("c1").name == "c1.nii.gz"
