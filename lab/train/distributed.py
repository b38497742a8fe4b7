"""This process's place in a training run: rank, world and device, threads, DDP, what the ranks agree on.

Launched alone (``facelab train``) a process is rank 0 of a world of 1 and nothing here talks to other
processes. Under torchrun (``WORLD_SIZE`` > 1) :func:`dist_setup` initialises ``torch.distributed`` (gloo on
CPU, nccl on CUDA), :func:`wrap_ddp` wraps the model's generator and discriminator sides
(:mod:`lab.nn.objective`) in separate DDPs, and the losses of a step and the decision to stop are reduced
across ranks, so that every rank logs the same numbers and stops at the same step.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

__all__ = ["dist_setup", "device_for", "set_threads", "wrap_ddp", "reduce_losses", "agree_to_stop", "barrier",
           "teardown"]


def dist_setup() -> tuple[int, int, int]:
    """(rank, world, local_rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def device_for(local_rank: int, requested: str | None) -> torch.device:
    """``requested`` if given, else this process's CUDA device, else the CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def set_threads(threads: int | None) -> int:
    """``torch.set_num_threads(threads)`` when given; the number of threads torch uses."""
    if threads:
        torch.set_num_threads(int(threads))
        with contextlib.suppress(RuntimeError):  # only settable before the first parallel region
            torch.set_num_interop_threads(1)
    return torch.get_num_threads()


def wrap_ddp(gen_side: torch.nn.Module, disc_side: torch.nn.Module | None, dev: torch.device,
             world: int) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """The modules a step runs: the two sides themselves in a world of 1, else a DDP of each."""
    if world <= 1:
        return gen_side, disc_side
    # A discriminator registered inside the animator (official checkpoints hold one) is trained by its
    # own DDP below; the generator-side DDP must not reduce it.
    disc_tensors = {id(t) for t in [*disc_side.parameters(), *disc_side.buffers()]} if disc_side else set()
    ignore = [n for n, t in [*gen_side.named_parameters(), *gen_side.named_buffers()] if id(t) in disc_tensors]
    if ignore:
        DDP._set_params_and_buffers_to_ignore_for_model(gen_side, ignore)
    ids = [dev.index] if dev.type == "cuda" else None
    if dev.type == "cuda":  # FOMM trains with synchronised BatchNorm across GPUs
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(gen_side)
        if disc_side is not None:
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(disc_side)
    gen_run = DDP(gen_side, device_ids=ids)
    disc_run = DDP(disc_side, device_ids=ids) if disc_side is not None else disc_side
    return gen_run, disc_run


def reduce_losses(losses: dict[str, torch.Tensor], world: int) -> dict[str, float]:
    """The step's losses as floats, averaged over the ranks."""
    names = sorted(losses)
    vec = torch.stack([losses[k].detach().float() for k in names])
    if world > 1:
        dist.all_reduce(vec)
        vec /= world
    return {k: float(v) for k, v in zip(names, vec.cpu())}


def agree_to_stop(stop: bool, world: int, dev: torch.device) -> bool:
    """True on every rank when any rank wants to stop (every rank stops at the same step)."""
    if world > 1:
        flag = torch.tensor([float(stop)], device=dev)
        dist.all_reduce(flag)
        stop = bool(flag.item())
    return stop


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def teardown(world: int) -> None:
    if world > 1:
        dist.destroy_process_group()
