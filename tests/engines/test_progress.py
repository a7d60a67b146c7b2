"""The run's time budget: durations, shares of what is left, epochs from the measured step time, progress.png."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from medseglatdiff.engines import TrainingProgress, parse_duration
from medseglatdiff.errors import MedsegError


@pytest.mark.parametrize(
    "text, seconds", [(600, 600.0), ("90s", 90.0), ("20m", 1200.0), ("1.5h", 5400.0), ("1h30m", 5400.0), (None, None)]
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten minutes", "-5", "0", "5 parsecs"])
def test_bad_durations_name_the_forms(text) -> None:
    with pytest.raises(MedsegError, match="time_budget"):
        parse_duration(text)


def test_a_skipped_stage_leaves_its_share_to_the_others(tmp_path: Path) -> None:
    progress = TrainingProgress(
        tmp_path, "100s", {"image_autoencoder": 0.25, "mask_autoencoder": 0.25, "denoiser": 0.5}, show_bar=False
    )
    progress.skip("image_autoencoder")
    assert progress.allotment("mask_autoencoder") == pytest.approx(100 / 3, rel=0.01)
    progress.skip("mask_autoencoder")  # it finished (or stopped early): the rest is the denoiser's
    assert progress.allotment("denoiser") == pytest.approx(100, rel=0.01)
    assert "time budget 1.7 min" in progress.describe(
        {"image_autoencoder": False, "mask_autoencoder": True, "denoiser": True}
    )
    assert TrainingProgress(tmp_path, None, show_bar=False).allotment("denoiser") is None


def test_stage_fits_its_epochs_and_schedule_to_the_budget_and_plots(tmp_path: Path) -> None:
    def step(engine: Engine, batch: int) -> dict:
        time.sleep(0.01)
        return {"loss": torch.tensor(1.0 / engine.state.iteration)}

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=1000)
    progress = TrainingProgress(
        tmp_path, 1.0, {"image_autoencoder": 0, "mask_autoencoder": 0, "denoiser": 1}, plot_interval=0, show_bar=False
    )
    engine = Engine(step)
    progress.stage("denoiser", optimizer, scheduler).attach(engine)
    started = time.perf_counter()
    engine.run(list(range(5)), max_epochs=10_000)
    took = time.perf_counter() - started
    assert 0.9 < took < 4.0, (
        took
    )  # stopped by its share of the budget (+ drawing progress.png), not by the 10 000 epochs
    assert "time budget" in engine.state.stop_reason
    assert 5 <= engine.state.max_epochs < 10_000 and scheduler.total_iters == engine.state.max_epochs
    assert (tmp_path / "progress.png").is_file() and progress.history["denoiser"]["loss"]
