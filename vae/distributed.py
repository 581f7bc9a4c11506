"""Where training runs: the device, and data-parallel training across processes, as
`torchrun --nproc_per_node=N -m vae train ...` starts them.

Every process holds the whole data set and draws the same shuffles and the same
eps from the same seeded generators; each computes the gradient of its slice of
the global minibatch (`DistContext.shard`), and DistributedDataParallel, which
wraps the objective as a module (`wrap_objective`), averages the gradients. The
loss of a slice is scaled so that the average equals the gradient of the global
batch's mean: training matches a single process with the same global batch, up
to the order of floating-point sums. Rank 0 alone writes the run folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import ConfigError, RunSettings
from .model import VAE, elbo_parts, minibatch_loss


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of n: contiguous, sizes differing by at most one."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when present): CPU is the default everywhere."""
    RunSettings(device=name)  # the name's one check (vae.config): cpu, cuda, cuda:N or auto, else one sentence
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("CUDA was asked for but no CUDA device is available here; use --device cpu or auto.")
    return torch.device(name)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> DistContext:
    """Join the process group torchrun describes: gloo on CPU, nccl on CUDA (one GPU per local rank)."""
    if not launched_by_torchrun():
        return DistContext(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


class Objective(nn.Module):
    """The minibatch objective as a module, because DistributedDataParallel wraps modules: its forward
    returns `vae.model.minibatch_loss` of this rank's rows, with `scale` = world_size / global batch
    making it this rank's share of the global batch's mean, and the per-example elbo, recon and kl."""

    def __init__(self, model: VAE, estimator: str):
        super().__init__()
        self.model, self.estimator = model, estimator

    def forward(self, x, eps, beta: float, scale: float):
        parts = elbo_parts(self.model, x, estimator=self.estimator, beta=beta, eps=eps)
        loss = minibatch_loss(parts, beta, scale)
        return loss, parts.elbo.detach(), parts.recon.detach(), parts.kl.detach()


def wrap_objective(model: VAE, estimator: str, ctx: DistContext) -> nn.Module:
    """The objective of `model`, wrapped in DistributedDataParallel when several processes train: its
    backward pass then averages the gradients across them (one GPU per process on CUDA)."""
    objective = Objective(model, estimator)
    if not ctx.active:
        return objective
    return DistributedDataParallel(objective, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
