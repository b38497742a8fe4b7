"""The networks a run trains and one optimisation step of them.

:func:`build_networks` seeds torch from ``train_params.seed`` (the same initial weights on every rank and every
rerun), builds the animator on its device with its networks under the run's precision
(:mod:`lab.train.precision`) and splits its training objective into the generator side and the discriminator
side (:mod:`lab.nn.objective`). :func:`train_step` seeds the step's RNG from ``(seed, step, rank)`` (a resumed
run draws what an uninterrupted one would), sets the learning rates for the step, and updates the generator
side (gradient scaling for fp16, frozen parameters, clipping), then the discriminator on detached outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from lab.core.registry import create_animator
from lab.train.optim import Optimisers

__all__ = ["Networks", "StepResult", "build_networks", "train_step"]


@dataclass
class Networks:
    """The animator, its training objective's two sides, and what a step runs (the sides or their DDPs)."""

    animator: Any
    objective: Any
    gen_side: torch.nn.Module
    disc_side: torch.nn.Module | None
    gen_run: torch.nn.Module | None = None
    disc_run: torch.nn.Module | None = None

    def __post_init__(self):
        if self.gen_run is None:
            self.gen_run, self.disc_run = self.gen_side, self.disc_side


class StepResult(NamedTuple):
    losses: dict[str, torch.Tensor]  # this rank's, generator's and discriminator's terms
    generated: dict
    source: torch.Tensor  # the batch on the device
    driving: torch.Tensor
    lr_f: float  # the learning-rate factor of the step


def build_networks(model: str, cfg: dict, dev: torch.device, rank: int,
                   threads: int) -> tuple[Networks, torch.dtype | None, str]:
    """(networks, autocast dtype, precision description) of a run of ``model`` with ``cfg`` on ``dev``."""
    tp = cfg["train_params"]
    torch.manual_seed(int(tp["seed"]))  # same initial weights on every rank and every rerun
    animator = create_animator(model, config=cfg).to(dev)
    from lab.train.precision import autocast_networks, resolve_precision

    amp_dtype, precision = resolve_precision(tp.get("amp", "auto"), dev)
    autocast_networks([*animator.encoder_modules().values(), *animator.decoder_modules().values()], dev.type,
                      amp_dtype)
    if rank == 0:
        print(f"facelab train: {model} on {dev} ({threads} threads), precision: {precision}", flush=True)
    objective = animator.training_objective(tp)
    gen_side = objective.generator.to(dev)
    disc_side = objective.discriminator.to(dev) if objective.discriminator is not None else None
    gen_side.attach_discriminator(disc_side.discriminator if disc_side is not None else None)
    return Networks(animator, objective, gen_side, disc_side), amp_dtype, precision


def train_step(nets: Networks, opts: Optimisers, batch: dict, step: int, *, seed: int, rank: int,
               dev: torch.device, scaler: torch.amp.GradScaler, clip: float, train_hours: float = 0.0) -> StepResult:
    """One update of the generator side, then of the discriminator, on ``batch`` (step ``step``, 0-based,
    ``train_hours`` of training time before it: the learning rate's milestones)."""
    torch.manual_seed(hash((seed, step, rank)) % (2**63))
    lr_f = opts.set_lr(step, train_hours)
    source = batch["source"].to(dev, non_blocking=True)
    driving = batch["driving"].to(dev, non_blocking=True)
    extras = {k: batch[k].to(dev) for k in ("kp_target_source", "kp_target_driving") if k in batch}
    losses, generated = nets.gen_run(source, driving, **extras)  # the networks autocast themselves (precision)
    loss = sum(losses.values())
    opts.opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    for p in opts.frozen_at(step):  # no gradient: Adam leaves these untouched (no state either)
        p.grad = None
    if clip > 0:
        scaler.unscale_(opts.opt)
        torch.nn.utils.clip_grad_norm_(opts.gen_params, clip)
    scaler.step(opts.opt)
    scaler.update()
    if nets.disc_run is not None and opts.opt_d is not None:
        opts.opt_d.zero_grad(set_to_none=True)  # drop grads the generator's GAN loss left here
        d_losses = nets.disc_run(source, driving, {k: _detach(v) for k, v in generated.items()})
        d_loss = sum(d_losses.values())
        d_loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(nets.disc_side.parameters(), clip)
        opts.opt_d.step()
        losses = {**losses, **d_losses}
    return StepResult(losses, generated, source, driving, lr_f)


def _detach(v):
    if isinstance(v, torch.Tensor):
        return v.detach()
    if isinstance(v, dict):
        return {k: _detach(x) for k, x in v.items()}
    return v
