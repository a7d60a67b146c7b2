"""Factories for the three networks and two schedulers of the latent diffusion segmenter.

Each takes plain arguments (the adapter in :mod:`medseglatdiff.training.plans` maps ``plans.json`` onto them)
and returns MONAI's own classes: :class:`~monai.networks.nets.AutoencoderKL` for the image autoencoder and the
mask VAE, :class:`~monai.networks.nets.DiffusionModelUNet` for the latent denoiser (behind a trainable image
encoder when planned, :mod:`medseglatdiff.networks.image_encoder`), and
:class:`~monai.networks.schedulers.DDPMScheduler` / :class:`~monai.networks.schedulers.DDIMScheduler`.
What the factories add is only what is awkward in a config: a GroupNorm group count that divides every
width, attention flags defaulting to "none", and the denoiser's input width (mask latent + condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch import nn

from medseglatdiff.networks.image_encoder import EncodedConditionDenoiser

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def check_prediction_type(prediction_type: str) -> str:
    """``prediction_type`` if MONAI's schedulers know it, else a ``ValueError`` naming the choices."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction_type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}")
    return prediction_type


def norm_groups_for(channels: Sequence[int], preferred: int = 32) -> int:
    """The largest GroupNorm group count <= ``preferred`` that divides every entry of ``channels``."""
    for groups in range(min(preferred, *channels), 0, -1):
        if all(c % groups == 0 for c in channels):
            return groups
    return 1


def _attention(levels: Sequence[bool] | None, n: int) -> tuple[bool, ...]:
    if levels is None:
        return (False,) * n
    if len(levels) != n:
        raise ValueError(f"attention_levels has {len(levels)} entries but channels has {n}; give one flag per level")
    return tuple(bool(a) for a in levels)


def autoencoder(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int] = (32, 64, 64),
    latent_channels: int = 3,
    num_res_blocks: int | Sequence[int] = 1,
    attention_levels: Sequence[bool] | None = None,
    norm_num_groups: int | None = None,
    with_encoder_nonlocal_attn: bool = False,
    with_decoder_nonlocal_attn: bool = False,
    network_class: type[AutoencoderKL] = AutoencoderKL,
    **network_kwargs: Any,
) -> AutoencoderKL:
    """An :class:`AutoencoderKL` whose spatial downsampling factor is ``2 ** (len(channels) - 1)``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (image channels, or the encoded mask's channels).
        out_channels: output channels (image channels, or one logit map per mask channel).
        channels: width of each level.
        latent_channels: channels of the latent.
        num_res_blocks: residual blocks per level.
        attention_levels: one flag per level (default: no attention).
        norm_num_groups: GroupNorm groups (default: :func:`norm_groups_for` ``channels``).
        with_encoder_nonlocal_attn: self-attention in the encoder's middle (latent-resolution) block.
        with_decoder_nonlocal_attn: self-attention in the decoder's middle block.
        network_class: the class built (a subclass such as :class:`MaskAutoencoderKL`).
        network_kwargs: its own further arguments.
    """
    channels = tuple(int(c) for c in channels)
    return network_class(
        spatial_dims=spatial_dims,
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        channels=channels,
        latent_channels=int(latent_channels),
        num_res_blocks=num_res_blocks,
        attention_levels=_attention(attention_levels, len(channels)),
        norm_num_groups=norm_num_groups or norm_groups_for(channels),
        with_encoder_nonlocal_attn=bool(with_encoder_nonlocal_attn),
        with_decoder_nonlocal_attn=bool(with_decoder_nonlocal_attn),
        **network_kwargs,
    )


def image_autoencoder(spatial_dims: int, in_channels: int, **kwargs) -> AutoencoderKL:
    """The image autoencoder: reconstructs the ``in_channels`` image; see :func:`autoencoder` for ``kwargs``."""
    return autoencoder(spatial_dims, in_channels=in_channels, out_channels=in_channels, **kwargs)


class MaskAutoencoderKL(AutoencoderKL):
    """:class:`AutoencoderKL` for masks: knows its output activation and the ignore convention.

    Input voxels below 0 (ignored voxels of an encoded mask) are seen as 0 by the encoder.

    Args:
        activation: ``"sigmoid"`` (binary, regions) or ``"softmax"`` (classes, background channel first).
        kwargs: :class:`AutoencoderKL` arguments.
    """

    def __init__(self, activation: str = "sigmoid", **kwargs: Any) -> None:
        if activation not in MASK_ACTIVATIONS:
            raise ValueError(f"activation {activation!r}; use one of {', '.join(MASK_ACTIVATIONS)}")
        super().__init__(**kwargs)
        self.activation = activation

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().encode(x.clamp(min=0))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoder logits ``(B, C, ...)`` -> foreground probabilities (softmax: the background channel dropped)."""
        if self.activation == "softmax":
            return torch.softmax(logits, dim=1)[:, 1:]
        return torch.sigmoid(logits)


MASK_ACTIVATIONS = ("sigmoid", "softmax")


def mask_probabilities(mask_autoencoder: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """Foreground probabilities of a mask VAE's logits (a plain AutoencoderKL: sigmoid)."""
    if isinstance(mask_autoencoder, MaskAutoencoderKL):
        return mask_autoencoder.probabilities(logits)
    return torch.sigmoid(logits)


def mask_autoencoder(
    spatial_dims: int, label_channels: int = 1, activation: str = "sigmoid", **kwargs: Any
) -> MaskAutoencoderKL:
    """The mask VAE: the encoded mask (``label_channels``, see ``LabelScheme.network_channels``) in, as many logit
    maps out; see :func:`autoencoder` for ``kwargs``."""
    channels = int(label_channels)
    net = autoencoder(
        spatial_dims, channels, channels, network_class=MaskAutoencoderKL, activation=activation, **kwargs
    )
    return net  # type: ignore[return-value]


def latent_denoiser(
    spatial_dims: int,
    mask_latent_channels: int,
    image_latent_channels: int,
    channels: Sequence[int] = (64, 128, 128),
    attention_levels: Sequence[bool] | None = None,
    num_res_blocks: int | Sequence[int] = 1,
    num_head_channels: int | Sequence[int] = 8,
    norm_num_groups: int | None = None,
    image_encoder_channels: Sequence[int] = (),
    image_channels: int = 0,
    latent_factor: int = 1,
) -> nn.Module:
    """The latent denoiser: input = noisy mask latent concatenated (on channels) with the condition.

    It predicts the noise, the clean latent or the velocity of the mask latent (the schedulers' ``prediction_type``),
    so ``out_channels = mask_latent_channels``. With ``image_encoder_channels`` it is a MONAI ``DiffusionModelUNet``
    behind a trainable image encoder
    (:class:`~medseglatdiff.networks.image_encoder.EncodedConditionDenoiser`, same inputs and outputs); without,
    the ``DiffusionModelUNet`` itself.

    Args:
        spatial_dims: 2 or 3.
        mask_latent_channels: channels of the mask VAE's latent.
        image_latent_channels: channels of the condition
            (:func:`~medseglatdiff.networks.conditioning.condition_channels`; the image autoencoder's latent
            channels for the published conditioning).
        channels: width of each level.
        attention_levels: one flag per level (default: no attention).
        num_res_blocks: residual blocks per level.
        num_head_channels: channels per attention head (one int, or one per level).
        norm_num_groups: GroupNorm groups (default: :func:`norm_groups_for` ``channels``).
        image_encoder_channels: widths of the image encoder, full resolution down to the latent grid
            (``log2(latent_factor) + 1`` levels; empty: no encoder). Needs a condition that ends with the image's
            space-to-depth pixels (``image_pixels`` conditionings).
        image_channels: the image's channels (with an encoder).
        latent_factor: the mask VAE's downsampling factor (with an encoder).
    """
    channels = tuple(int(c) for c in channels)
    encoder = tuple(int(c) for c in image_encoder_channels or ())
    if encoder and int(image_channels) < 1:
        raise ValueError("an image encoder (image_encoder_channels) needs image_channels >= 1")
    if encoder and int(image_latent_channels) < int(image_channels) * int(latent_factor) ** int(spatial_dims):
        raise ValueError(
            f"an image encoder reads the image's space-to-depth pixels ({image_channels} x {latent_factor}^"
            f"{spatial_dims} channels) at the end of the condition, which has only {image_latent_channels} channels: "
            "use the image_pixels conditioning"
        )
    if not isinstance(num_head_channels, int):
        if len(num_head_channels) != len(channels):
            raise ValueError(
                f"num_head_channels has {len(num_head_channels)} entries but channels has {len(channels)}; "
                "give one per level or a single int"
            )
        num_head_channels = tuple(max(int(h), 1) for h in num_head_channels)
    unet = DiffusionModelUNet(
        spatial_dims=spatial_dims,
        in_channels=int(mask_latent_channels) + int(image_latent_channels) + (encoder[-1] if encoder else 0),
        out_channels=int(mask_latent_channels),
        channels=channels,
        attention_levels=_attention(attention_levels, len(channels)),
        num_res_blocks=num_res_blocks,
        num_head_channels=num_head_channels,
        norm_num_groups=norm_num_groups or norm_groups_for(channels),
    )
    if not encoder:
        return unet
    return EncodedConditionDenoiser(unet, spatial_dims, int(image_channels), int(latent_factor), encoder)


def noise_scheduler(
    num_train_timesteps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 2e-2,
    schedule: str = "linear_beta",
    prediction_type: str = "epsilon",
) -> DDPMScheduler:
    """DDPM forward process for training over ``num_train_timesteps`` steps; the denoiser predicts
    ``prediction_type``."""
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        schedule=schedule,
        beta_start=beta_start,
        beta_end=beta_end,
        clip_sample=False,
        prediction_type=check_prediction_type(prediction_type),
    )


def sampling_scheduler(
    num_inference_steps: int = 50,
    num_train_timesteps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 2e-2,
    schedule: str = "linear_beta",
    prediction_type: str = "epsilon",
) -> DDIMScheduler:
    """DDIM sampler over the same noise schedule, ``num_inference_steps`` steps, no clipping (latents are unbounded).

    ``prediction_type`` must be the one the denoiser was trained with.
    """
    scheduler = DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        schedule=schedule,
        beta_start=beta_start,
        beta_end=beta_end,
        clip_sample=False,
        prediction_type=check_prediction_type(prediction_type),
    )
    scheduler.set_timesteps(num_inference_steps=int(num_inference_steps))
    return scheduler
