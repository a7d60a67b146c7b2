from __future__ import annotations

import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.fingerprint import extract_fingerprint
from medseglatdiff.planning.planner import Planner, parse_configurations
from medseglatdiff.planning.plans_io import validate_plans


@pytest.fixture(scope="module")
def fingerprints(lidc_raw, kvasir_raw, brats_raw):
    return {
        name: extract_fingerprint(raw, progress=False)
        for name, raw in (("lidc", lidc_raw), ("kvasir", kvasir_raw), ("brats", brats_raw))
    }


def _reasons_complete(block):
    if isinstance(block, dict) and "reasons" in block:
        assert set(block["reasons"]) == set(block) - {"reasons"}
        assert all(isinstance(r, str) and r for r in block["reasons"].values())
    if isinstance(block, dict):
        for value in block.values():
            _reasons_complete(value)


@pytest.mark.parametrize("memory_gb", [4, 24])
def test_small_structures_get_a_smaller_factor_and_a_larger_weight(fingerprints, memory_gb):
    lidc = Planner(fingerprints["lidc"], memory_gb).plan()["configurations"]["2d"]
    kvasir = Planner(fingerprints["kvasir"], memory_gb).plan()["configurations"]["2d"]
    assert lidc["latent_factor"] < kvasir["latent_factor"]
    assert lidc["mask_autoencoder"]["class_weights"][1] > kvasir["mask_autoencoder"]["class_weights"][1]
    assert lidc["mask_targets"] == "random_rater" and kvasir["mask_targets"] == "label"


@pytest.mark.parametrize("name", ["lidc", "kvasir", "brats"])
@pytest.mark.parametrize("memory_gb", [4, 24])
def test_plans_are_valid_and_consistent(fingerprints, name, memory_gb):
    plans = Planner(fingerprints[name], memory_gb).plan()
    validate_plans(plans)
    _reasons_complete(plans)
    for config in plans["configurations"].values():
        unet = config["denoiser"]["network"]
        divisor = config["latent_factor"] * 2 ** (len(unet["channels"]) - 1)
        assert all(p % divisor == 0 for p in config["patch_size"])
        assert max(config["patch_size"]) <= (256 if memory_gb >= 16 else 128)
        for stage in ("image_autoencoder", "mask_autoencoder", "denoiser"):
            assert 2 <= config[stage]["batch_size"] <= 32
            assert config["memory"][f"{stage}_gib"] <= memory_gb


def test_3d_dataset_gets_3d_and_slice_plans(fingerprints):
    plans = Planner(fingerprints["brats"], 4).plan()
    assert list(plans["configurations"]) == ["3d", "2d"]
    three, two = plans["configurations"]["3d"], plans["configurations"]["2d"]
    assert three["spatial_dims"] == 3 and len(three["patch_size"]) == 3
    assert three["preprocessing"]["target_spacing"] == [1.0, 1.0, 1.0] and three["preprocessing"]["slice_axis"] is None
    assert two["spatial_dims"] == 2 and len(two["patch_size"]) == 2
    assert two["preprocessing"]["slice_axis"] == 2 and two["preprocessing"]["target_spacing"] == [1.0, 1.0, None]
    assert three["mask_autoencoder"]["output_activation"] == "softmax"
    assert len(three["mask_autoencoder"]["class_weights"]) == 5
    assert three["mask_autoencoder"]["network"]["in_channels"] == 5
    assert [n["scheme"] for n in three["preprocessing"]["normalization"]] == ["zscore", "zscore"]


def test_more_memory_never_plans_smaller(fingerprints):
    small = Planner(fingerprints["kvasir"], 4).plan()["configurations"]["2d"]
    large = Planner(fingerprints["kvasir"], 24).plan()["configurations"]["2d"]
    assert large["patch_size"][0] > small["patch_size"][0]
    assert large["preprocessing"]["target_spacing"][0] < small["preprocessing"]["target_spacing"][0]
    assert large["denoiser"]["network"]["channels"][0] >= small["denoiser"]["network"]["channels"][0]


def test_rules_are_overridable(fingerprints):
    class CappedPlanner(Planner):
        MAX_LATENT_FACTOR = 4

        def determine_class_weights(self, fractions, label_values):
            decision = super().determine_class_weights(fractions, label_values)
            return decision._replace(value=[1.0] * len(decision.value), reason="flat weights")

    config = CappedPlanner(fingerprints["kvasir"], 4).plan()["configurations"]["2d"]
    assert config["latent_factor"] == 4
    assert config["mask_autoencoder"]["class_weights"] == [1.0, 1.0]
    assert config["mask_autoencoder"]["reasons"]["class_weights"] == "flat weights"


def test_tight_memory_shrinks_the_3d_patch(fingerprints):
    roomy = Planner(fingerprints["brats"], 4).plan(["3d"])["configurations"]["3d"]
    tight = Planner(fingerprints["brats"], 0.65).plan(["3d"])["configurations"]["3d"]
    assert sum(tight["patch_size"]) < sum(roomy["patch_size"])
    assert "shrunk" in tight["reasons"]["patch_size"]


def test_configuration_errors(fingerprints):
    with pytest.raises(MedsegError, match="'3d' is not available for a 2D dataset"):
        Planner(fingerprints["lidc"], 4).plan(["3d"])
    with pytest.raises(MedsegError, match="memory_gb"):
        Planner(fingerprints["lidc"], -1)


def test_default_memory_budget(fingerprints, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plans = Planner(fingerprints["lidc"]).plan()
    assert plans["memory_gb"] == 4.0 and "default" in plans["reasons"]["memory_gb"]


@pytest.mark.parametrize(
    "value, more, expected",
    [
        (None, (), None),
        ("2d", (), ["2d"]),
        ("2d", ("3d",), ["2d", "3d"]),
        ("2d,3d", (), ["2d", "3d"]),
        (["3d", "2d"], (), ["3d", "2d"]),
        ("2d 2d", (), ["2d"]),
    ],
)
def test_parse_configurations(value, more, expected):
    assert parse_configurations(value, *more) == expected


def test_parse_configurations_rejects_unknown():
    with pytest.raises(MedsegError, match="unknown configuration"):
        parse_configurations("3d_fullres")


def test_recipes_set_the_denoiser_levers_with_reasons(fingerprints):
    from medseglatdiff.planning.recipes import DENOISER_KEYS

    default = Planner(fingerprints["kvasir"], 4).plan()["configurations"]["2d"]
    published = Planner(fingerprints["kvasir"], 4, recipe="published").plan()["configurations"]["2d"]
    assert default["denoiser"]["conditioning"] == "image_pixels" and default["diffusion"]["prediction_type"] == "sample"
    assert (
        published["denoiser"]["conditioning"] == "image_latent"
        and published["diffusion"]["prediction_type"] == "epsilon"
    )
    assert default["inference"]["num_inference_steps"] == 5 and published["inference"]["num_inference_steps"] == 50
    assert all(
        key in default["denoiser"] and "recipe 'default'" in default["denoiser"]["reasons"][key]
        for key in DENOISER_KEYS
    )
    # masks are simple: the mask VAE is narrower and shallower than the image autoencoder
    mask, image = default["mask_autoencoder"]["network"], default["image_autoencoder"]["network"]
    assert mask["channels"][0] == 16 < image["channels"][0] and mask["num_res_blocks"] == 1
    assert not mask["with_encoder_nonlocal_attn"] and not mask["with_decoder_nonlocal_attn"]
    # the default's image encoder: one level per halving from the image to the latent grid, base 32 doubling
    levels = int(default["latent_factor"]).bit_length()  # log2(factor) + 1
    assert default["denoiser"]["image_encoder_channels"] == [32 * 2**i for i in range(levels)]
    assert "full resolution to the latent grid" in default["denoiser"]["reasons"]["image_encoder_channels"]
    assert published["denoiser"]["image_encoder_channels"] == []
    # and the memory estimate counts it (full-resolution activations)
    assert default["memory"]["denoiser_gib"] > published["memory"]["denoiser_gib"]
    with pytest.raises(MedsegError, match="unknown denoiser recipe"):
        Planner(fingerprints["kvasir"], 4, recipe="fastest")


def test_label_kinds_set_the_mask_vae_channels_and_activation(fingerprints):
    import copy

    from medseglatdiff.datasets.label_scheme import LabelScheme
    from medseglatdiff.planning.plans_io import PlansError

    classes = Planner(fingerprints["brats"], 4).plan()  # labels 0..4: four classes
    regions_fingerprint = copy.deepcopy(fingerprints["brats"])
    scheme = LabelScheme.from_labels(
        {"background": 0, "whole_tumour": [1, 2, 3, 4], "tumour_core": [1, 3, 4], "enhancing_tumour": [4]}, [2, 1, 4]
    )
    regions_fingerprint["dataset"]["label_scheme"] = scheme.to_json()
    regions = Planner(regions_fingerprint, 4).plan()
    for plans, kind, channels, activation in ((classes, "classes", 5, "softmax"), (regions, "regions", 3, "sigmoid")):
        assert plans["label_scheme"]["kind"] == kind and plans["reasons"]["label_scheme"]
        mask = plans["configurations"]["3d"]["mask_autoencoder"]
        assert mask["network"]["in_channels"] == mask["network"]["out_channels"] == channels
        assert mask["output_activation"] == activation
    broken = copy.deepcopy(regions)
    broken["configurations"]["3d"]["mask_autoencoder"]["output_activation"] = "softmax"
    with pytest.raises(PlansError, match="output_activation"):
        validate_plans(broken)
