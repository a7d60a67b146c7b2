"""The time of the planned epochs is estimated from timed steps of each network, and nothing of the run changes."""

from __future__ import annotations

import torch

from medseglatdiff.engines import TrainingProgress
from medseglatdiff.networks import mask_autoencoder
from medseglatdiff.training.estimate import first_input_channels, time_step


def test_time_step_times_a_copy_and_leaves_the_network_as_it_was() -> None:
    torch.manual_seed(0)
    network = mask_autoencoder(
        2, channels=[8, 16], latent_channels=1, num_res_blocks=1, attention_levels=[False, False]
    )
    before = {k: v.clone() for k, v in network.state_dict().items()}
    assert first_input_channels(network) == 1
    step, single = time_step(network, [torch.randn(2, 1, 16, 16)], repeats=1)
    assert step > 0 and single > 0
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    assert all(p.grad is None for p in network.parameters())


def test_without_a_budget_the_announcement_gives_the_planned_time(tmp_path) -> None:
    progress = TrainingProgress(tmp_path, show_bar=False)
    planned = {
        "mask_autoencoder": {"epochs": 100, "iterations": 1600, "step_s": 0.2, "validation_s": 0.0, "seconds": 320.0},
        "denoiser": {"epochs": 200, "iterations": 3200, "step_s": 1.5, "validation_s": 400.0, "seconds": 5200.0},
    }
    text = progress.describe({"image_autoencoder": False, "mask_autoencoder": True, "denoiser": True}, planned)
    assert text.startswith("no time budget: the planned epochs take about 1.5 h")
    assert "mask autoencoder 100 epochs, 1600 iterations x 0.2 s ~ 5.3 min" in text and "denoiser 200 epochs" in text
    assert "image autoencoder" not in text
