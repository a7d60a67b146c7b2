from __future__ import annotations

import copy
import json

import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.fingerprint import extract_fingerprint
from medseglatdiff.planning.planner import Planner
from medseglatdiff.planning.plans_io import (
    PlansError,
    load_plans,
    plans_schema,
    preprocessing_hash,
    save_plans,
    strip_reasons,
)


@pytest.fixture(scope="module")
def valid_plans(brats_raw):
    return Planner(extract_fingerprint(brats_raw, progress=False), memory_gb=4).plan()


def test_schema_is_package_data():
    schema = plans_schema()
    assert schema["title"] == "medseglatdiff plans.json" and "configuration" in schema["$defs"]


def test_save_and_load_round_trip(valid_plans, tmp_path):
    path = save_plans(valid_plans, tmp_path)
    assert path == tmp_path / "plans.json"
    assert load_plans(tmp_path) == valid_plans == load_plans(path)


def test_a_version_1_plan_is_read_as_the_current_version(valid_plans, tmp_path):
    old = copy.deepcopy(valid_plans)
    old["plans_version"] = 1
    for config in old["configurations"].values():  # version 1 called the samples per image ensemble_size
        inference = config["inference"]
        inference["ensemble_size"] = inference.pop("num_samples")
        inference["reasons"]["ensemble_size"] = inference["reasons"].pop("num_samples")
    (tmp_path / "plans.json").write_text(json.dumps(old))
    loaded = load_plans(tmp_path)
    assert loaded == valid_plans and loaded["plans_version"] == 2
    assert all("ensemble_size" not in c["inference"] for c in loaded["configurations"].values())


def _set(plans, keys, value):
    target = plans
    for key in keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


@pytest.mark.parametrize(
    "keys, value, expected",
    [
        (
            ["configurations", "3d", "patch_size"],
            [44, 40, 40],
            "configurations.3d.patch_size: [44, 40, 40] not divisible by latent_factor x 2^(denoiser levels - 1) = 8",
        ),
        (
            ["configurations", "3d", "image_autoencoder", "batch_size"],
            -2,
            "configurations.3d.image_autoencoder.batch_size: -2 is less than the minimum of 1",
        ),
        (
            ["configurations", "2d", "preprocessing", "normalization", 0, "scheme"],
            "minmax",
            "normalization.0.scheme: 'minmax' is not one of",
        ),
        (
            ["configurations", "2d", "preprocessing", "normalization", 0, "params"],
            {},
            "normalization.0.params: 'use_nonzero_mask' is a required property",
        ),
        (
            ["configurations", "2d", "reasons", "latent_factor"],
            KeyError,
            "configurations.2d.reasons: 'latent_factor' is a required property",
        ),
        (["configurations", "3d", "latent_factor"], 3, "configurations.3d.latent_factor: 3 is not one of"),
        (["configurations", "3d", "diffusion", "beta_start"], 0.5, "beta_start: 0.5 must be below beta_end"),
        (
            ["configurations", "3d", "denoiser", "network", "in_channels"],
            7,
            "denoiser.network.in_channels: 7 is not mask + image latent channels",
        ),
        (
            ["configurations", "3d", "denoiser", "network", "num_head_channels"],
            [0, 0, 0, 0],
            "the last entry sizes the middle block's attention",
        ),
        (
            ["configurations", "3d", "mask_autoencoder", "class_weights"],
            [1.0, 2.0],
            "class_weights: 2 weights for 5 label values",
        ),
        (
            ["configurations", "3d", "image_autoencoder", "network", "channels"],
            [32, 64, 64],
            "3 levels downsample by 4, not latent_factor 2",
        ),
        (
            ["configurations", "3d", "image_autoencoder", "network", "norm_num_groups"],
            24,
            "not divisible by norm_num_groups 24",
        ),
        (["configurations", "3d", "spatial_dims"], 2, "configurations.3d.spatial_dims: 2 for configuration '3d'"),
        (
            ["configurations", "2d", "preprocessing", "target_spacing"],
            [1.0, 1.0, 1.0],
            "null entries [] must match slice_axis 2",
        ),
        (["configurations", "3d", "surprise"], 1, "Additional properties are not allowed ('surprise' was unexpected)"),
    ],
)
def test_bad_values_are_named_with_their_fix(valid_plans, tmp_path, keys, value, expected):
    plans = copy.deepcopy(valid_plans)
    _set(plans, keys, value)
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(PlansError) as info:
        load_plans(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "plans.json") in message and expected in message and "fix:" in message
    assert isinstance(info.value, MedsegError)


def test_every_problem_is_listed_at_once(valid_plans):
    plans = copy.deepcopy(valid_plans)
    plans["configurations"]["3d"]["image_autoencoder"]["batch_size"] = 0
    plans["configurations"]["3d"]["denoiser"]["batch_size"] = "8"
    with pytest.raises(PlansError) as info:
        save_plans(plans, "plans.json")
    assert str(info.value).count("\n  - ") == 2


@pytest.mark.parametrize(
    "content, expected",
    [(None, "not found; create it with `medseg plan"), ("{", "not valid JSON"), ("[]", "must hold a JSON object")],
)
def test_unreadable_files(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "plans.json").write_text(content)
    with pytest.raises(PlansError, match=expected):
        load_plans(tmp_path / "plans.json")


def test_strip_reasons_and_hash(valid_plans):
    config = copy.deepcopy(valid_plans["configurations"]["3d"])
    network = strip_reasons(config["image_autoencoder"]["network"])
    assert "reasons" not in network and network["channels"] == config["image_autoencoder"]["network"]["channels"]
    before = preprocessing_hash(config)
    config["image_autoencoder"]["batch_size"] = 64  # training values do not change preprocessed data
    config["preprocessing"]["reasons"]["target_spacing"] = "edited text"
    assert preprocessing_hash(config) == before
    config["preprocessing"]["target_spacing"] = [2.0, 2.0, 2.0]
    assert preprocessing_hash(config) != before


def test_networks_build_from_plans(valid_plans):
    """The network blocks are MONAI keyword arguments: both networks build and run on the planned grid."""
    import torch
    from monai.networks.nets import AutoencoderKL, DiffusionModelUNet

    config = valid_plans["configurations"]["2d"]
    dims = config["spatial_dims"]
    ae = AutoencoderKL(spatial_dims=dims, **strip_reasons(config["mask_autoencoder"]["network"]))
    unet = DiffusionModelUNet(spatial_dims=dims, **strip_reasons(config["denoiser"]["network"]))
    patch = config["patch_size"]
    with torch.no_grad():
        recon, _, _ = ae(torch.zeros(1, ae.encoder.in_channels, *patch))
        latent = ae.encode_stage_2_inputs(torch.zeros(1, ae.encoder.in_channels, *patch))
        assert recon.shape[2:] == tuple(patch) and list(latent.shape[2:]) == config["latent_shape"]
        noise = unet(
            torch.zeros(1, config["denoiser"]["network"]["in_channels"], *config["latent_shape"]),
            torch.zeros(1, dtype=torch.long),
        )
        assert noise.shape[1] == config["denoiser"]["network"]["out_channels"]
