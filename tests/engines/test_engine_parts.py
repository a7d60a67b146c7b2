"""prepare_batch callables, the ensemble inferer, handlers and checkpoint helpers on tiny in-memory networks."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from medseglatdiff.engines import (
    EnsembleMeand,
    KeyPrepareBatch,
    LatentDiffusionPrepareBatch,
    LatentEnsembleInferer,
    LatentScaleHandler,
    NullSummaryWriter,
    RNGState,
    ensemble_grid,
    load_checkpoint,
    save_checkpoint,
    summary_writer,
)
from medseglatdiff.networks import (
    LatentScaling,
    image_autoencoder,
    latent_denoiser,
    mask_autoencoder,
    sampling_scheduler,
)


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "image": image_autoencoder(2, in_channels=1, channels=(8, 16), latent_channels=2, num_res_blocks=1).eval(),
        "mask": mask_autoencoder(2, channels=(8, 16), latent_channels=1, num_res_blocks=1).eval(),
        "denoiser": latent_denoiser(
            2, mask_latent_channels=1, image_latent_channels=2, channels=(8, 16), num_res_blocks=1
        ).eval(),
    }


def _batch(n: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 4:9, 4:9] = 1
    return {"image": torch.randn(n, 1, size, size), "mask": mask, "label": mask.clone()}


def test_key_prepare_batch_selects_keys() -> None:
    batch = _batch()
    inputs, target = KeyPrepareBatch("mask", "mask")(batch, torch.device("cpu"))
    assert inputs is target and torch.equal(inputs, batch["mask"])
    inputs, target = KeyPrepareBatch("image", "label")(batch)
    assert torch.equal(inputs, batch["image"]) and torch.equal(target, batch["label"])


def test_latent_diffusion_prepare_batch(nets: dict) -> None:
    scaling = LatentScaling()
    prepare = LatentDiffusionPrepareBatch(nets["image"], nets["mask"], scaling, num_train_timesteps=1000)
    with pytest.raises(RuntimeError, match="scale factors"):
        prepare(_batch())
    scaling.fit(torch.randn(100) * 2, torch.randn(100) * 4)
    latents, targets, args, kwargs = prepare(_batch(), torch.device("cpu"))
    assert latents.shape == (2, 1, 8, 8) and torch.equal(targets["target"], kwargs["noise"])
    assert torch.equal(targets["latents"], latents) and targets["masks"].shape == (2, 1, 16, 16)
    assert kwargs["condition"].shape == (2, 2, 8, 8) and kwargs["mode"] == "concat" and args == ()
    assert kwargs["timesteps"].shape == (2,) and int(kwargs["timesteps"].max()) < 1000
    assert not any(p.requires_grad for p in nets["image"].parameters())  # frozen


@pytest.mark.parametrize("prediction_type", ["sample", "v_prediction"])
def test_prepare_batch_targets_follow_the_prediction_type(nets: dict, prediction_type: str) -> None:
    from medseglatdiff.networks import noise_scheduler

    scaling = LatentScaling().fit(torch.randn(100), torch.randn(100))
    ddpm = noise_scheduler(prediction_type=prediction_type)
    prepare = LatentDiffusionPrepareBatch(
        nets["image"],
        nets["mask"],
        scaling,
        conditioning="image_pixels",
        prediction_type=prediction_type,
        scheduler=ddpm,
    )
    latents, targets, _, kwargs = prepare(_batch())
    expected = (
        latents if prediction_type == "sample" else ddpm.get_velocity(latents, kwargs["noise"], kwargs["timesteps"])
    )
    assert torch.allclose(targets["target"], expected)
    assert kwargs["condition"].shape == (
        2,
        1 * 2 * 2,
        8,
        8,
    )  # the grey image, space-to-depth by the mask VAE's factor 2


def test_pixel_conditioning_needs_no_image_autoencoder(nets: dict) -> None:
    scaling = LatentScaling()
    engine = SimpleNamespace(state=SimpleNamespace(device=torch.device("cpu")), data_loader=[_batch(4)])
    LatentScaleHandler(scaling, None, nets["mask"])(engine)
    assert float(scaling.image) == 1.0 and scaling.is_set
    denoiser = latent_denoiser(
        2, mask_latent_channels=1, image_latent_channels=4, channels=(8, 16), num_res_blocks=1
    ).eval()
    inferer = LatentEnsembleInferer(
        None,
        nets["mask"],
        scaling,
        sampling_scheduler(2, prediction_type="sample"),
        num_samples=3,
        conditioning="image_pixels",
    )
    out = inferer(torch.randn(2, 1, 16, 16), denoiser)
    assert out.shape == (2, 3, 1, 16, 16) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_latent_scale_handler_sets_factors_once(nets: dict) -> None:
    scaling = LatentScaling()
    engine = SimpleNamespace(state=SimpleNamespace(device=torch.device("cpu")), data_loader=[_batch(4), _batch(4)])
    handler = LatentScaleHandler(scaling, nets["image"], nets["mask"], num_batches=2)
    handler(engine)
    assert scaling.is_set
    first = float(scaling.image)
    handler(engine)  # a resumed run keeps the factors it restored
    assert float(scaling.image) == first


def test_inferer_samples_reproducibly_and_by_windows(nets: dict) -> None:
    scaling = LatentScaling().fit(torch.randn(50), torch.randn(50))
    inferer = LatentEnsembleInferer(
        nets["image"], nets["mask"], scaling, sampling_scheduler(num_inference_steps=2), num_samples=3, seed=5
    )
    images = torch.randn(2, 1, 16, 16)
    first = inferer(images, nets["denoiser"])
    assert first.shape == (2, 3, 1, 16, 16) and torch.allclose(first, inferer(images, nets["denoiser"]))
    windows = LatentEnsembleInferer(
        nets["image"],
        nets["mask"],
        scaling,
        sampling_scheduler(num_inference_steps=2),
        num_samples=2,
        roi_size=(16, 16),
    )
    large = windows(torch.randn(1, 1, 24, 40), nets["denoiser"])
    assert large.shape == (1, 2, 1, 24, 40) and float(large.min()) >= 0 and float(large.max()) <= 1


def test_ensemble_mean_and_grid() -> None:
    samples = torch.stack([torch.ones(8, 8), torch.zeros(8, 8), torch.ones(8, 8)])
    out = EnsembleMeand(keys="pred")({"pred": samples, "label": torch.full((1, 8, 8), 3)})
    assert torch.allclose(out["pred_mean"], torch.full((1, 8, 8), 2 / 3))
    assert out["pred_mask"].sum() == 64 and set(out["label"].unique().tolist()) == {1.0}
    grid = ensemble_grid(np.random.rand(3, 8, 8), np.ones((4, 8, 8)), samples.numpy(), gap=2)
    panels = 1 + 4 + 3 + 2  # image, raters, samples, mean, confidence
    assert grid.shape == (8, panels * 8 + (panels - 1) * 2) and 0.0 <= grid.min() and grid.max() <= 1.0
    volume = ensemble_grid(np.random.rand(1, 8, 8, 5), None, np.random.rand(2, 8, 8, 5))
    assert volume.shape[0] == 8


def test_rng_state_round_trip() -> None:
    state = RNGState().state_dict()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    RNGState().load_state_dict(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_checkpoint_restores_progress_but_keeps_the_new_epoch_budget(tmp_path: Path) -> None:
    engine = Engine(lambda e, b: None)
    engine.state.max_epochs, engine.state.epoch_length, engine.state.iteration, engine.state.epoch = 2, 3, 6, 2
    net = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path / "c.pt", {"trainer": engine, "network": net})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left
    resumed = Engine(lambda e, b: None)
    resumed.state.max_epochs, resumed.state.epoch_length = 5, 3
    other = torch.nn.Linear(2, 2)
    load_checkpoint(tmp_path / "c.pt", {"trainer": resumed, "network": other})
    assert resumed.state.iteration == 6 and resumed.state.epoch == 2 and resumed.state.max_epochs == 5
    assert torch.equal(other.weight, net.weight)


def test_summary_writer_is_real_on_the_main_process(tmp_path: Path) -> None:
    writer = summary_writer(str(tmp_path))
    writer.add_scalar("x", 1.0, 1)
    writer.close()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert NullSummaryWriter().add_image("anything", None) is None
