"""Each benchmark's ``--quick`` mode runs end to end and writes its JSON and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import attention_rule, equal_budget_accuracy, sampling_speed, training_throughput


def test_sampling_speed_quick(tmp_path: Path) -> None:
    out = tmp_path / "sampling.json"
    assert sampling_speed.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    entry = result["sizes"][0]
    assert set(entry["by_ensemble"]) == {"1", "2"}
    assert entry["by_ensemble"]["2"]["speedup"]["pixel"] > 0 and entry["by_ensemble"]["2"]["latent"]["peak_mib"] >= 0
    latent = entry["by_ensemble"]["2"]["latent"]
    assert latent["projected_s"] == pytest.approx(
        latent["encode_decode_s"] + entry["planned_steps"] * latent["per_step_s"], abs=0.01
    )
    assert out.with_suffix(".png").stat().st_size > 1000


def test_training_throughput_quick(tmp_path: Path) -> None:
    out = tmp_path / "training.json"
    assert training_throughput.main(["--quick", "--out", str(out)]) == 0
    entry = json.loads(out.read_text())["sizes"][0]
    assert {"image_autoencoder", "mask_autoencoder", "denoiser", "pixel"} <= set(entry["stages"])
    assert entry["all_stages"]["images_per_s"] < entry["stages"]["denoiser"]["images_per_s"]
    assert out.with_suffix(".png").is_file()


def test_attention_rule_compares_two_bounds_of_one_plan(tmp_path: Path) -> None:
    out = tmp_path / "attention.json"
    assert (
        attention_rule.main(
            ["--size", "32", "--ensemble", "2", "--repeats", "1", "--tokens", "64", "4", "--out", str(out)]
        )
        == 0
    )
    bounds = json.loads(out.read_text())["bounds"]
    assert bounds["64"]["plan"]["denoiser_attention_levels"] == [
        False,
        True,
        True,
    ]  # 32 px / 2 = 16x16 latent: 64 positions at level 2
    assert bounds["4"]["plan"]["denoiser_attention_levels"] == [False, False, False]
    assert all(v["step_s"] > 0 and v["at_planned_steps_s"] > v["step_s"] for v in bounds.values())


@pytest.mark.slow
def test_equal_budget_accuracy_quick(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "accuracy.json"
    args = ["--quick", "--out", str(out), "--work", str(tmp_path / "work"), "--data_root", str(shared_data)]
    assert equal_budget_accuracy.main(args) == 0
    entry = json.loads(out.read_text())["datasets"]["lidc_idri"]
    assert set(entry["methods"]) == {"latent", "pixel", "unet"}
    for method in entry["methods"].values():
        summary = method["evaluation"]["summary"]["4"]
        assert 0 <= summary["dice"]["mean"] <= 1 and summary["ged"]["mean"] >= 0 and 0 <= summary["hm_iou"]["mean"] <= 1
    assert entry["split"].endswith("patients")
    assert out.with_suffix(".png").is_file()


def test_converted_data_never_goes_into_the_repository(shared_data: Path) -> None:
    repo = Path(equal_budget_accuracy.__file__).resolve().parents[1]
    assert (
        equal_budget_accuracy.main(
            ["--quick", "--prepare_only", "--work", str(repo / "tmp_bench"), "--data_root", str(shared_data)]
        )
        == 1
    )
    assert not (repo / "tmp_bench").exists()
