"""Autoencoder stages stop at a validation target or a plateau, and say why."""

from __future__ import annotations

import torch
from ignite.engine import Engine

from medseglatdiff.engines import AutoencoderStopper, reconstruction_score
from medseglatdiff.networks import mask_autoencoder


def _masks() -> list[dict[str, torch.Tensor]]:
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    return [{"mask": mask, "image": torch.randn(2, 1, 16, 16)}]


def _engine(epochs: int) -> Engine:
    engine = Engine(lambda e, b: None)
    engine.state.device = torch.device("cpu")
    return engine


def test_target_reached_ends_the_stage_with_a_reason() -> None:
    torch.manual_seed(0)
    vae = mask_autoencoder(2, channels=(8, 8), latent_channels=1, num_res_blocks=1)
    engine = _engine(10)
    stopper = AutoencoderStopper(vae, _masks(), "reconstruction_dice", target=0.0, tag="dice")
    stopper.attach(engine)
    engine.run([0, 1], max_epochs=10)
    assert engine.state.epoch == 1 and "reached the target 0" in engine.state.stop_reason
    assert engine.state.metrics["dice"] == reconstruction_score(vae, _masks(), "reconstruction_dice", "cpu")


def test_plateau_ends_the_stage_after_patience_and_state_round_trips() -> None:
    torch.manual_seed(0)
    vae = mask_autoencoder(2, channels=(8, 8), latent_channels=1, num_res_blocks=1)
    engine = _engine(20)
    stopper = AutoencoderStopper(vae, _masks(), "reconstruction_l1", patience=3, min_delta=0.01, tag="l1")
    stopper.attach(engine)
    engine.run([0], max_epochs=20)  # nothing trains: the score never improves
    assert engine.state.epoch == 4 and "plateaued" in engine.state.stop_reason
    restored = AutoencoderStopper(vae, _masks(), "reconstruction_l1")
    restored.load_state_dict(stopper.state_dict())
    assert restored.history == stopper.history and restored.flat == 3


def test_no_target_no_patience_never_stops() -> None:
    vae = mask_autoencoder(2, channels=(8, 8), latent_channels=1, num_res_blocks=1)
    engine = _engine(3)
    AutoencoderStopper(vae, _masks(), "reconstruction_dice").attach(engine)
    engine.run([0], max_epochs=3)
    assert engine.state.epoch == 3 and not hasattr(engine.state, "stop_reason")


class _Identity(torch.nn.Module):
    """A stand-in autoencoder that reconstructs large squares and misses everything smaller than 5x5."""

    activation = "sigmoid"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        kept = torch.nn.functional.max_pool2d(-torch.nn.functional.max_pool2d(-z, 5, 1, 2), 5, 1, 2)  # opening
        return 20 * kept - 10


def test_reconstruction_dice_weighs_every_case_alike() -> None:
    large, small, empty = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    large[..., 2:30, 2:30] = 1
    small[..., 10:13, 10:13] = 1  # 9 pixels, lost by the reconstruction
    batches = [{"mask": torch.cat([large, small, empty])}]
    # pooled over the cases the large square hides the lost one (~0.99); per case it is (1 + 0) / 2; empty: left out
    assert reconstruction_score(_Identity(), batches, "reconstruction_dice", "cpu") == 0.5


def test_a_plateau_ends_with_the_best_evaluated_weights() -> None:
    torch.manual_seed(0)
    vae = mask_autoencoder(2, channels=(8, 8), latent_channels=1, num_res_blocks=1)
    engine = _engine(10)
    scores = iter([0.5, 0.9, 0.7, 0.6])

    class Scripted(AutoencoderStopper):
        def __call__(self, engine: Engine) -> None:  # the network changes every epoch; scores as scripted
            with torch.no_grad():
                next(iter(self.network.parameters())).add_(1.0)
            score = next(scores)
            self.history.append((int(engine.state.epoch), score))
            if self.top is None or score > self.top[1]:
                self.top = (int(engine.state.epoch), score)
                self.top_weights = {k: v.clone() for k, v in self.network.state_dict().items()}
            if int(engine.state.epoch) == 4:
                engine.state.stop_reason = "plateaued"
                engine.terminate()

    stopper = Scripted(vae, _masks(), "reconstruction_dice", patience=2, tag="dice")
    stopper.attach(engine)
    engine.run([0, 1], max_epochs=10)
    first = next(iter(vae.parameters()))
    assert torch.equal(first, stopper.top_weights[next(iter(vae.state_dict()))])  # epoch 2's weights are back
    assert engine.state.stop_reason == "plateaued; the weights of epoch 2 (dice 0.9000) restored"
    restored = AutoencoderStopper(vae, _masks(), tag="dice")
    restored.load_state_dict(stopper.state_dict())  # the best weights travel with the checkpoint
    assert restored.top == (2, 0.9) and restored.top_weights is not None
