"""The accuracy reports read 1c results: budget curves, DDIM-step tables and the variant table."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.budget_curves import budget_table, collect, plot, steps_table
from benchmarks.latent_variants import table


def _summary(dice: float, ged: float | None = None) -> dict:
    values = {"dice": {"mean": dice, "std": 0.1, "n": 2}}
    if ged is not None:
        values["ged"] = {"mean": ged, "std": 0.1, "n": 2}
    return values


def _entry(budget: float, latent: float, unet: float) -> dict:
    stage = {"iterations": 3, "seconds": 1.0}
    return {
        "dataset": "kvasir_seg_full",
        "ensemble_size": 5,
        "steps": 5,
        "num_val_scored": 2,
        "settings": {"budget_s": budget, "variant": "default"},
        "plan": {"autoencoder_channels": [16, 32, 32]},
        "methods": {
            "latent": {
                "training": {
                    "image_autoencoder": {**stage, "iterations": 0},
                    "mask_autoencoder": stage,
                    "denoiser": stage,
                    "variant": {"conditioning": "image_pixels", "prediction_type": "sample"},
                },
                "evaluation": {"summary": {"1": _summary(latent - 0.05), "5": _summary(latent)}, "seconds": 2.0},
                "mask_vae_reconstruction_dice": {"mean": 0.95},
                "steps_sweep": {"1": {"summary": {"5": _summary(latent + 0.01)}, "seconds": 0.5}},
            },
            "unet": {"training": {"iterations": 7}, "evaluation": {"summary": {"5": _summary(unet)}, "seconds": 0.1}},
        },
    }


def test_budget_curves_and_variant_table(tmp_path: Path) -> None:
    files = []
    for budget, latent, unet in ((120, 0.5, 0.6), (900, 0.7, 0.72)):
        path = tmp_path / f"run_{budget}.json"
        path.write_text(json.dumps({"datasets": {"kvasir_seg_full": _entry(budget, latent, unet)}}))
        files.append(path)
    data = collect(files)
    assert sorted(data["kvasir_seg_full"]["latent"]) == [120.0, 900.0]
    text = budget_table(data)
    assert (
        "| kvasir_seg_full | latent | 900 | 0.700 | 0.650 |" in text
        and "| kvasir_seg_full | unet | 120 | 0.600 |" in text
    )
    steps = steps_table(data)
    assert "| kvasir_seg_full | 900 | 1 | 0.710 |" in steps and "| kvasir_seg_full | 900 | 5 | 0.700 |" in steps
    assert plot(data, tmp_path / "curves.png").is_file()
    variants = table({"variants": {"default": _entry(900, 0.7, 0.72), "published": _entry(900, 0.3, 0.72)}})
    lines = variants.splitlines()
    assert (
        lines[2].startswith("| default | image_pixels | sample")
        and "**0.700**" in lines[2]
        and lines[3].startswith("| published")
    )
