"""Several processes (``torchrun --nproc_per_node=N -m activevision train ...``): the process group, each process's
device, and the agent wrapped in DistributedDataParallel (gloo on the CPU, NCCL on GPUs), which averages every
gradient over the processes during backward.

Each process runs ``batch / N`` episodes of its own seeded world shard; DDP's average is the gradient of the loss
over the whole batch, so every process takes the same step and holds the same parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from activevision.checks import check_device

__all__ = ["RANK_SEED_STRIDE", "init_distributed", "resolve_device", "gather", "Forward", "data_parallel"]

# Rank r's seeds are rank 0's plus r * this (rank 0 seeds as a single process does). Torch's CPU generator keeps
# only a seed's low 32 bits, so the stride must change them: a prime near 2^30 keeps the ranks' streams apart.
RANK_SEED_STRIDE = 1_000_000_007


def init_distributed(device: str) -> tuple[int, int]:
    """``(rank, number of processes)``: joins the process group when started by torchrun (``WORLD_SIZE`` > 1;
    NCCL for CUDA, gloo for the CPU; rendezvous from torchrun's environment), else ``(0, 1)``."""
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes == 1:
        return 0, 1
    if not dist.is_initialized():
        cuda = device in ("auto", "cuda") and torch.cuda.is_available() or device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def resolve_device(device: str) -> torch.device:
    """ "auto" is cuda when present, else cpu; anything else is passed to torch (and must exist). Under torchrun,
    "auto" and "cuda" mean this process's GPU (``LOCAL_RANK``)."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def gather(value: Any, processes: int) -> list[Any]:
    """``value`` of every process, in rank order (collective: every process must call it)."""
    if processes == 1:
        return [value]
    values: list[Any] = [None] * processes
    dist.all_gather_object(values, value)
    return values


class Forward(nn.Module):
    """Runs ``loss_of(agent)`` as its forward: an episode steps the agent many times, so DDP wraps the whole loss
    (one forward, one backward per gradient step) rather than the agent's single step."""

    def __init__(self, agent: nn.Module) -> None:
        super().__init__()
        self.agent = agent

    def forward(self, loss_of: Callable[[nn.Module], Any]) -> Any:
        return loss_of(self.agent)


def data_parallel(agent: nn.Module, device: torch.device) -> DistributedDataParallel:
    """``agent`` in DistributedDataParallel. Parameters a loss does not reach (the location head under a fixed
    location policy) are found each step."""
    return DistributedDataParallel(
        Forward(agent), device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
    )
