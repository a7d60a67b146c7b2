"""A stage skips when finished, resumes from its checkpoint, and writes model.pt and done.json atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from medseglatdiff.engines import RNGState
from medseglatdiff.errors import MedsegError
from medseglatdiff.training import TrainingStage, load_trained, stage_finished


def _stage(stage_dir: Path, max_epochs: int) -> tuple[TrainingStage, torch.nn.Module]:
    torch.manual_seed(0)
    network = torch.nn.Linear(3, 1)
    x = torch.randn(12, 3)
    data = [{"image": x[i : i + 4], "label": x[i : i + 4].sum(dim=1, keepdim=True)} for i in range(0, 12, 4)]
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=data,
        network=network,
        optimizer=optimizer,
        loss_function=torch.nn.MSELoss(),
        decollate=False,
        epoch_length=3,
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: scheduler.step())
    checkpoint = {
        "network": network,
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "trainer": trainer,
        "rng": RNGState(),
    }
    return TrainingStage("toy", stage_dir, trainer, checkpoint, {"network": network}), network


def test_stage_trains_writes_marker_and_is_skipped_after(tmp_path: Path) -> None:
    stage, network = _stage(tmp_path / "toy", max_epochs=2)
    summary = stage.run()
    assert summary is not None and summary["epochs"] == 2 and summary["iterations"] == 6
    assert summary["epoch_losses"][1] < summary["epoch_losses"][0]
    assert (
        stage_finished(tmp_path / "toy") and json.loads((tmp_path / "toy" / "done.json").read_text())["stage"] == "toy"
    )
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["checkpoint.pt", "done.json", "model.pt"]
    again, _ = _stage(tmp_path / "toy", max_epochs=2)
    assert again.run() is None  # finished: skipped
    fresh = torch.nn.Linear(3, 1)
    load_trained(fresh, tmp_path / "toy")
    assert torch.equal(fresh.weight, network.weight) and not fresh.weight.requires_grad


def test_stage_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    first, _ = _stage(tmp_path / "toy", max_epochs=1)
    first.run()
    (tmp_path / "toy" / "done.json").unlink()  # as if the run had been killed after epoch 1
    (tmp_path / "toy" / "model.pt").unlink()
    resumed, network = _stage(tmp_path / "toy", max_epochs=3)
    summary = resumed.run()
    assert summary["epochs"] == 3 and summary["iterations"] == 9
    assert len(summary["epoch_losses"]) == 3 and summary["epoch_losses"][0] == first.history.epoch_losses[0]
    assert resumed.checkpoint_objects["lr_scheduler"].last_epoch == 3  # the LR schedule continued, not restarted
    uninterrupted, reference = _stage(tmp_path / "reference", max_epochs=3)
    uninterrupted.run()
    assert torch.allclose(network.weight, reference.weight, atol=1e-6)  # same result as an uninterrupted run


def test_load_trained_needs_a_finished_stage(tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="must finish"):
        load_trained(torch.nn.Linear(1, 1), tmp_path / "image_autoencoder")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_truncated_checkpoint_names_the_file_and_what_to_delete(tmp_path: Path) -> None:
    first, _ = _stage(tmp_path / "toy", max_epochs=1)
    first.run()
    (tmp_path / "toy" / "done.json").unlink()
    _truncate(tmp_path / "toy" / "checkpoint.pt")
    resumed, _ = _stage(tmp_path / "toy", max_epochs=2)
    with pytest.raises(MedsegError, match=r"checkpoint\.pt: unreadable .*delete it to restart this stage"):
        resumed.run()
    (tmp_path / "toy" / "checkpoint.pt").unlink()  # the advice works: the stage starts again
    restarted, _ = _stage(tmp_path / "toy", max_epochs=2)
    assert restarted.run()["epochs"] == 2


@pytest.mark.parametrize("damage", ["truncated", "not_a_zip"])
def test_an_unreadable_model_file_is_named_and_the_stage_is_trained_again(tmp_path: Path, damage: str) -> None:
    first, _ = _stage(tmp_path / "toy", max_epochs=1)
    first.run()
    model = tmp_path / "toy" / "model.pt"
    if damage == "truncated":
        _truncate(model)
    else:
        model.write_bytes(b"\x80\x04not a torch file at all")
    assert not stage_finished(tmp_path / "toy")
    with pytest.raises(MedsegError, match=r"model\.pt: unreadable .*re-run the training command"):
        load_trained(torch.nn.Linear(3, 1), tmp_path / "toy")
    again, network = _stage(tmp_path / "toy", max_epochs=2)
    summary = again.run()  # not skipped: retrained from the (readable) checkpoint
    assert summary is not None and summary["epochs"] == 2
    fresh = torch.nn.Linear(3, 1)
    load_trained(fresh, tmp_path / "toy")
    assert torch.equal(fresh.weight, network.weight)
