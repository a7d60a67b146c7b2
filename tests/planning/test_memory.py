from __future__ import annotations

import pytest
import torch

from medseglatdiff.planning import memory
from medseglatdiff.planning.memory import (
    GIB,
    MemoryEstimate,
    autoencoder_memory,
    default_memory_gb,
    denoiser_memory,
    largest_batch,
    usable_bytes,
)


def test_autoencoder_estimate_counts_parameters_and_scales_with_area():
    from monai.networks.nets import AutoencoderKL

    small = autoencoder_memory(2, 1, 1, (32, 64), 1, 1, 32, False, (32, 32))
    large = autoencoder_memory(2, 1, 1, (32, 64), 1, 1, 32, False, (64, 64))
    real = AutoencoderKL(
        spatial_dims=2,
        in_channels=1,
        out_channels=1,
        channels=(32, 64),
        latent_channels=1,
        num_res_blocks=1,
        attention_levels=(False, False),
        with_encoder_nonlocal_attn=False,
        with_decoder_nonlocal_attn=False,
    )
    assert small.fixed_bytes == 16 * sum(p.numel() for p in real.parameters())
    assert large.fixed_bytes == small.fixed_bytes
    assert large.per_sample_bytes / small.per_sample_bytes == pytest.approx(4.0, rel=0.05)


def test_denoiser_estimate_grows_with_attention():
    plain = denoiser_memory(2, 2, 1, (32, 64), (False, False), 1, (0, 32), 32, (32, 32))
    attended = denoiser_memory(2, 2, 1, (32, 64), (False, True), 1, (0, 32), 32, (32, 32))
    assert attended.per_sample_bytes > plain.per_sample_bytes > 0
    assert attended.fixed_bytes > plain.fixed_bytes


def test_peak_and_largest_batch():
    estimate = MemoryEstimate(fixed_bytes=int(0.5 * GIB), per_sample_bytes=int(0.25 * GIB), calibration=1.5)
    assert estimate.peak_gib(4) == pytest.approx(1.5 * 1.5)
    assert usable_bytes(4) == pytest.approx(3.5 * GIB)
    # (3.5 / 1.5 - 0.5) / 0.25 = 7.33
    assert largest_batch(estimate, 4) == 7
    assert largest_batch(MemoryEstimate(int(8 * GIB), 1), 4) == 0


def test_calibration_per_network_kind():
    ae = autoencoder_memory(2, 1, 1, (32, 64), 1, 1, 32, False, (32, 32))
    unet = denoiser_memory(2, 2, 1, (32, 64), (False, True), 1, (0, 32), 32, (16, 16))
    assert ae.calibration == memory.AUTOENCODER_CALIBRATION and unet.calibration == memory.DENOISER_CALIBRATION


@pytest.mark.parametrize("cuda, expected", [(True, 24.0), (False, 4.0)])
def test_default_memory(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_memory_gb() == expected
