"""The optimisers of a training run: parameter groups, learning-rate steps, modules frozen for the first steps.

* the generator side's trainable parameters (its discriminator's excepted) in two groups, the encoder's at
  ``lr_kp_detector`` and the rest at ``lr_generator``; the discriminator's at ``lr_discriminator``;
* ``train_params.optimizer``: FOMM's Adam (betas 0.5, 0.999) or X2Face's SGD;
* MultiStepLR as a factor 0.1 per milestone passed, milestones in epochs (``epoch_milestones``) or in steps
  (``step_milestones``), and in training-hours (``hour_milestones``), applied to each group's ``initial_lr``
  before every step (a resumed run computes the same rate from its step and its hours);
* ``train_params.freeze``: parameters held at their initial values for the first steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Optimisers", "build_optimisers", "frozen_params", "lr_factor", "make_optimizer", "step_milestones"]


def lr_factor(step: int, milestones_steps: list[int], train_hours: float = 0.0,
              milestones_hours: list[float] | None = None) -> float:
    """0.1 per milestone passed: steps (``step >= m``) and training-hours (``train_hours >= h``)."""
    return 0.1 ** (sum(step >= m for m in milestones_steps) + sum(train_hours >= h for h in milestones_hours or []))


def step_milestones(tp: dict, steps_per_epoch: int) -> list[int]:
    """The learning-rate milestones in steps: ``step_milestones`` as given, else ``epoch_milestones`` in steps."""
    if tp.get("step_milestones") is not None:
        return [int(m) for m in tp["step_milestones"]]
    return [int(m) * steps_per_epoch for m in tp.get("epoch_milestones") or []]


def make_optimizer(groups: list[dict], tp: dict) -> torch.optim.Optimizer:
    """``train_params.optimizer``: ``adam`` (FOMM's betas 0.5, 0.999 by default) or ``sgd`` (X2Face's)."""
    spec = dict(tp.get("optimizer") or {"name": "adam"})
    name = spec.pop("name", "adam").lower()
    if name == "adam":
        return torch.optim.Adam(groups, betas=tuple(spec.get("betas", (0.5, 0.999))))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=float(spec.get("momentum", 0.0)))
    raise ValueError(f"train_params.optimizer.name must be 'adam' or 'sgd', got '{name}'")


def frozen_params(gen_side: torch.nn.Module, spec: dict | None) -> list[torch.nn.Parameter]:
    """``train_params.freeze: {steps: N, modules: [name, ...]}``: parameters held at their initial values for the
    first N steps (module names as in the generator side, e.g. ``generator.dense_motion_network``)."""
    if not spec:
        return []
    mods = dict(gen_side.named_modules())
    missing = [m for m in spec.get("modules", []) if m not in mods]
    if missing:
        raise ValueError(f"train_params.freeze.modules: no module {', '.join(missing)} in the objective "
                         f"(e.g. {', '.join(list(mods)[1:6])})")
    return [p for m in spec.get("modules", []) for p in mods[m].parameters()]


@dataclass
class Optimisers:
    """The generator side's optimiser and groups, the discriminator's optimiser, milestones and frozen parameters."""

    groups: list[dict]
    gen_params: list[torch.nn.Parameter]  # what the generator's gradient clipping sees
    opt: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    frozen: list[torch.nn.Parameter]
    freeze: dict | None  # train_params.freeze
    milestones: list[int]
    hour_milestones: list[float]

    def set_lr(self, step: int, train_hours: float = 0.0) -> float:
        """Set every group's rate for ``step``, ``train_hours`` into the run (``initial_lr`` × the milestone
        factor); returns the factor."""
        lr_f = lr_factor(step, self.milestones, train_hours, self.hour_milestones)
        for o in (self.opt, self.opt_d):
            if o is not None:
                for g in o.param_groups:
                    g["lr"] = g["initial_lr"] * lr_f
        return lr_f

    def frozen_at(self, step: int) -> list[torch.nn.Parameter]:
        """The parameters to hold at ``step``: the frozen ones for the first ``freeze.steps`` steps, then none."""
        return self.frozen if self.frozen and step < int(self.freeze["steps"]) else []

    def lr(self, lr_f: float) -> float:
        """The rate logged to TensorBoard: the generator's last group's at factor ``lr_f``."""
        return self.groups[-1]["initial_lr"] * lr_f


def build_optimisers(animator, gen_side: torch.nn.Module, disc_side: torch.nn.Module | None, tp: dict,
                     steps_per_epoch: int) -> Optimisers:
    """The optimisers of ``train_params`` over the generator side and the discriminator side."""
    enc_ids = {id(p) for m in animator.encoder_modules().values() for p in m.parameters()}
    disc_ids = {id(p) for p in disc_side.parameters()} if disc_side is not None else set()
    gen_params = [p for p in gen_side.parameters() if p.requires_grad and id(p) not in disc_ids]
    groups = [
        {"params": [p for p in gen_params if id(p) in enc_ids], "lr": tp.get("lr_kp_detector", tp["lr_generator"])},
        {"params": [p for p in gen_params if id(p) not in enc_ids], "lr": tp["lr_generator"]},
    ]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["initial_lr"] = g["lr"]
    opt = make_optimizer(groups, tp)
    frozen = frozen_params(gen_side, tp.get("freeze"))
    opt_d = None
    if disc_side is not None:
        opt_d = make_optimizer([{"params": list(disc_side.parameters()), "lr": tp["lr_discriminator"]}], tp)
        for g in opt_d.param_groups:
            g["initial_lr"] = g["lr"]
    return Optimisers(groups, gen_params, opt, opt_d, frozen, tp.get("freeze"), step_milestones(tp, steps_per_epoch),
                      [float(h) for h in tp.get("hour_milestones") or []])
