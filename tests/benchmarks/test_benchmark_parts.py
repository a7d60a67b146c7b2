"""The benchmarks' building blocks: planned networks, baselines, memory and clocks."""

from __future__ import annotations

import pytest
import torch

from benchmarks.baselines import (
    PixelDiffusionSegmenter,
    deterministic_unet,
    dynunet_topology,
    pixel_denoiser,
    pixel_denoiser_plan,
)
from benchmarks.common import PeakMemory, clock, measure_calls
from benchmarks.planned import capped_planner, latent_segmenter, planned_configuration
from medseglatdiff.errors import MedsegError
from medseglatdiff.networks import sampling_scheduler


@pytest.mark.parametrize("kind, factor", [("polyp", 4), ("nodule", 2)])
def test_planned_networks_follow_the_object_sizes(kind, factor):
    config = planned_configuration(64, kind, memory_gb=24, planner=capped_planner(max_width=32))
    assert config["patch_size"] == [64, 64] and config["latent_factor"] == factor  # polyps: 8.7 px, nodules: 4.65 px
    model = latent_segmenter(config)  # the plan's recipe: image pixels (space-to-depth) and the image encoder
    channels = 3 if kind == "polyp" else 1
    assert model.conditioning == "image_pixels"
    assert model.denoiser.in_channels == model.mask_autoencoder.latent_channels + channels * factor**2
    assert len(model.denoiser.encoder) == factor.bit_length()  # one encoder level per halving, plus full resolution
    published = latent_segmenter(config, conditioning="image_latent")  # as the speed benchmarks 1b time the stages
    assert (
        published.denoiser.in_channels
        == published.image_autoencoder.latent_channels + published.mask_autoencoder.latent_channels
    )


def test_capped_planner_keeps_widths_and_inputs_small():
    config = planned_configuration(64, "polyp", memory_gb=24, planner=capped_planner(max_width=32))
    assert (
        config["denoiser"]["network"]["channels"][0] == 32
        and config["image_autoencoder"]["network"]["channels"][0] == 32
    )
    with pytest.raises(MedsegError, match="patch"):
        planned_configuration(128, "polyp", memory_gb=24, planner=capped_planner(max_input_size=64))
    attention = {
        tokens: planned_configuration(256, "polyp", memory_gb=24, planner=capped_planner(attention_tokens=tokens))[
            "denoiser"
        ]["network"]["attention_levels"]
        for tokens in (None, 1024)
    }
    assert attention == {None: [False, True, True, True], 1024: [True, True, True, True]}  # the 32x32 latent level


def test_pixel_baseline_uses_the_denoiser_rules_at_full_resolution():
    plan = pixel_denoiser_plan([64, 64], 3, memory_gb=4, max_width=32)
    assert plan["channels"] == [32, 64, 64, 128]  # 4 levels: bottleneck 8 px
    assert plan["attention_levels"] == [False, False, True, True]  # <= 256 positions
    assert pixel_denoiser_plan([64, 64], 3, memory_gb=4, base_width=64)["channels"][0] == 64
    small = pixel_denoiser_plan([16, 16], 1, memory_gb=4, max_width=32)
    assert small["channels"] == [32, 64, 64]  # 3 levels: bottleneck 4 px
    model = PixelDiffusionSegmenter(pixel_denoiser(small, 1))
    probs = model.sample(
        torch.rand(1, 1, 16, 16), sampling_scheduler(2), num_samples=2, generator=torch.Generator().manual_seed(0)
    )
    assert probs.shape == (1, 2, 16, 16) and float(probs.min()) >= 0 and float(probs.max()) <= 1


def test_dynunet_topology_is_nnunet_like():
    kernels, strides = dynunet_topology([64, 48])
    assert strides == [[1, 1], [2, 2], [2, 2], [2, 1]]  # the short axis stops at 12 px: 6 would be below 8
    assert len(kernels) == len(strides)
    net = deterministic_unet(3, [64, 48]).eval()
    assert net(torch.rand(1, 3, 64, 48)).shape == (1, 1, 64, 48)


def test_peak_memory_sees_an_allocation_and_clocks_refuse_cuda_cpu_time():
    with PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(16 * 2**20 // 4)  # 16 MiB
        del block
    assert memory.peak_mib >= 12
    measured = measure_calls(
        {"a": lambda: None, "b": lambda: None}, torch.device("cpu"), repeats=2, warmup=0, clock_name="process"
    )
    assert measured["a"]["repeats"] == 2 and measured["b"]["median_s"] >= 0
    with pytest.raises(MedsegError, match="wall"):
        clock("process", torch.device("cuda"))


def test_presets_set_defaults_and_explicit_flags_win():
    import argparse

    from benchmarks.common import parse_with_presets

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("--device", default="cpu")
        p.add_argument("--steps", type=int, default=None)
        return p

    presets = {"cpu": {"steps": 1}, "gpu": {"device": "cuda"}}
    assert parse_with_presets(parser(), presets, []).steps is None
    assert parse_with_presets(parser(), presets, ["--preset", "cpu"]).steps == 1
    assert parse_with_presets(parser(), presets, ["--preset", "cpu", "--steps", "7"]).steps == 7
    assert parse_with_presets(parser(), presets, ["--steps", "7", "--preset", "gpu"]).device == "cuda"
    with pytest.raises(ValueError, match="unknown options"):
        parse_with_presets(parser(), {"bad": {"nope": 1}}, ["--preset", "bad"])


@pytest.fixture(scope="module")
def demo_work(tmp_path_factory: pytest.TempPathFactory):
    from medseglatdiff.datasets.demo_data import generate_demo_dataset
    from medseglatdiff.planning.pipeline import plan_and_preprocess

    root = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(root / "raw", num_cases=12)
    plan_and_preprocess(root / "raw", root / "work", memory_gb=4, progress=False)
    return root / "work"


def test_the_latent_benchmark_is_built_from_the_training_config(demo_work) -> None:
    from benchmarks.budget_training import VARIANTS, latent_parser, train_latent
    from medseglatdiff.training import data_loader, fold_split, training_dataset, training_plan

    plan = training_plan(demo_work, "2d")
    variant = VARIANTS["both_sample_light"]
    parser = latent_parser(plan, variant, torch.device("cpu"))
    assert parser.get_parsed_content("denoiser#prediction_type") == "sample"
    assert parser.get_parsed_content("mask_autoencoder#network_def#num_res_blocks") == 1  # the variant's mask VAE
    wide = latent_parser(plan, VARIANTS["default_wide"], torch.device("cpu"))
    assert wide.get_parsed_content("denoiser#network_def#channels") == [2 * c for c in plan["denoiser"]["channels"]]
    planned = latent_parser(plan, VARIANTS["default"], torch.device("cpu"))
    encoder = planned.get_parsed_content("denoiser#network_def#image_encoder_channels")
    assert encoder == plan["denoiser"]["image_encoder_channels"] != []
    assert type(planned.get_parsed_content("denoiser#network")).__name__ == "EncodedConditionDenoiser"
    plain = latent_parser(plan, VARIANTS["default_no_encoder"], torch.device("cpu"))
    assert plain.get_parsed_content("denoiser#network_def#image_encoder_channels") == []
    narrower = latent_parser(plan, VARIANTS["default_encoder16"], torch.device("cpu"))
    assert narrower.get_parsed_content("denoiser#network_def#image_encoder_channels")[0] == 16

    train, _ = fold_split(demo_work, plan, 0)
    loader = data_loader(
        training_dataset(plan["data_folder"], train, plan["patch_size"], augment=False), 2, shuffle=True, num_workers=0
    )
    model, stats = train_latent(plan, loader, torch.device("cpu"), 0.003, clock="process", variant=variant)
    assert all(stats[stage]["iterations"] >= 1 for stage in ("image_autoencoder", "mask_autoencoder", "denoiser"))
    assert type(model.mask_autoencoder).__name__ == "MaskAutoencoderKL"
    assert type(model.denoiser).__name__ == "DiffusionModelUNet"
    assert not any(p.requires_grad for p in model.mask_autoencoder.parameters()), "trained, then frozen"
