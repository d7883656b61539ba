# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Single-process and torchrun (DDP) execution contexts.

Under `torchrun --nproc_per_node=N` the environment carries RANK, WORLD_SIZE and LOCAL_RANK;
the process group uses gloo on the CPU and nccl on CUDA. Without them, everything runs in one
process and these helpers do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: rank in [0, world_size), its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' -> a torch.device; clear error when CUDA is absent."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"train.device={preference} but torch {torch.__version__} sees no CUDA device; "
                "use train.device=cpu (or auto)"
            )
        if preference == "cuda":
            return torch.device("cuda", local_rank)
    return torch.device(preference)


def init_distributed(device_preference: str) -> DistContext:
    """Initialise the process group when launched by torchrun; return this process's context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistContext(rank, world_size, local_rank, device)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(ctx: DistContext, value: bool) -> bool:
    """Rank 0's `value` on every rank (e.g. 'a checkpoint exists to resume from')."""
    if not ctx.distributed:
        return value
    tensor = torch.tensor([1 if value else 0], dtype=torch.int64)
    if ctx.device.type == "cuda":
        tensor = tensor.to(ctx.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())
