"""Small helpers for runs under ``torchrun`` (DistributedDataParallel); all are no-ops in a single process."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """True in a single-process run and on rank 0 of a distributed one."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def broadcast_tensor_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s value (in place; no-op without a process group)."""
    if is_distributed():
        backend = dist.get_backend()
        moved = tensor.cuda() if backend == "nccl" and not tensor.is_cuda else tensor
        dist.broadcast(moved, src=src)
        if moved is not tensor:
            tensor.copy_(moved.to(tensor.device))
    return tensor


def init_process_group(device_type: str | None = None) -> torch.device:
    """Join the ``torchrun`` process group (NCCL on GPUs, gloo on CPU) and return this rank's device.

    Reads the variables ``torchrun`` sets (``LOCAL_RANK``, ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...)
    at call time. Calling it again in an initialised group only returns the device.
    """
    use_cuda = torch.cuda.is_available() if device_type is None else device_type == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not is_distributed():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def local_device() -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def ddp(network: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Wrap ``network`` in DistributedDataParallel (a no-op outside a process group).

    The wrapper shares the module's parameters, so optimizers built from the bare module keep working, and
    checkpoints save the bare module's ``state_dict``.
    """
    if not is_distributed():
        return network
    device = torch.device(device)
    device_ids = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    )
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)


def destroy_process_group() -> None:
    if is_distributed():
        dist.destroy_process_group()


class NullSummaryWriter:
    """Stands in for a TensorBoard ``SummaryWriter`` on ranks other than 0: accepts every call, writes nothing."""

    def __getattr__(self, name: str) -> Any:
        def _ignore(*args: Any, **kwargs: Any) -> None:
            return None

        return _ignore


def summary_writer(log_dir: str) -> Any:
    """A TensorBoard ``SummaryWriter`` on the main process, a :class:`NullSummaryWriter` elsewhere."""
    if not is_main_process():
        return NullSummaryWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)
