"""A training run's checkpoints, and where a run starts: resumed, warm-started or new.

``RUN_DIR/checkpoints/step_%08d.pt``: ``weights_only``-safe dicts (model, discriminator, optimisers, step,
config, data description, device, training and CPU time, losses used), written atomically, the newest three
kept. A run folder that holds one is resumed from the newest: its config, weights, optimiser states, step
and time spent, with log.csv and curve.csv cut back to that step (:func:`lab.train.runlog.rewind`). A new run
may instead start from weights (``init_from``: a warm start with a fresh optimiser, the step counter and time
continuing from the weights' metadata).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lab.core.config import load_yaml
from lab.core.registry import create_animator
from lab.train.config import resolve_run_config

__all__ = ["CKPT_DIR", "RESUME_OVERRIDES", "Progress", "checkpoint_state", "latest_checkpoint", "resume",
           "run_config", "save_checkpoint", "warm_start"]

CKPT_DIR = "checkpoints"
RESUME_OVERRIDES = ("max_train_hours", "eval_every_minutes", "num_workers", "step_milestones", "hour_milestones")


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """Newest ``checkpoints/step_*.pt`` in a run folder, or None."""
    d = Path(run_dir) / CKPT_DIR
    cks = sorted(d.glob("step_*.pt")) if d.is_dir() else []
    return cks[-1] if cks else None


def save_checkpoint(run_dir: Path, state: dict, keep: int = 3) -> Path:
    d = run_dir / CKPT_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"step_{state['step']:08d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written checkpoint under the real name
    for old in sorted(d.glob("step_*.pt"))[:-keep]:
        old.unlink()
    return path


def run_config(run_dir: Path, model: str, config: str | os.PathLike | dict | None, max_steps: int | None,
               overrides: dict | None) -> tuple[Path | None, dict | None, dict]:
    """(newest checkpoint, its contents, the run's config); no checkpoint: (None, None, a new run's config).

    A resumed run keeps its checkpoint's config, except ``max_steps`` and :data:`RESUME_OVERRIDES` (a longer
    budget, another evaluation cadence); a new one is the model's config with ``config`` and ``overrides`` over it.
    """
    ckpt_path = latest_checkpoint(run_dir)
    if ckpt_path is not None:
        from lab.core.checkpoint import safe_load

        ckpt = safe_load(ckpt_path)
        if ckpt.get("model_name") != model:
            raise ValueError(f"{run_dir} holds a run of '{ckpt.get('model_name')}', not '{model}': use another --out")
        cfg = ckpt["config"]
        if max_steps is not None:
            cfg["train_params"]["max_steps"] = max_steps
        for k in RESUME_OVERRIDES:  # a resumed run may extend its budget or change its evaluation cadence
            if (overrides or {}).get(k) is not None:
                cfg["train_params"][k] = overrides[k]
        return ckpt_path, ckpt, cfg
    user = load_yaml(config) if isinstance(config, (str, os.PathLike)) else config
    base = create_animator(model).config
    ov = dict(overrides or {})
    size = ov.pop("frame_size", None)
    cfg = resolve_run_config(base, user, max_steps=max_steps, **ov)
    if size:  # e.g. 128² for a CPU curriculum: keypoint detector and dense motion keep their 64² view
        from lab.train.curves import config_at_resolution

        cfg = config_at_resolution(cfg, int(size))
    return None, None, cfg


@dataclass
class Progress:
    """Where a run stands: the steps done and the time they took (carried on by checkpoints and warm starts)."""

    step: int = 0
    device_seconds: float = 0.0
    train_seconds: float = 0.0  # wall time of training steps (no evaluation, no checkpoint writing)
    cpu_seconds: float = 0.0  # process CPU time of those steps (all threads)
    warm_from: dict | None = None


def warm_start(animator, init_from: str | os.PathLike, rank: int) -> Progress:
    """Load ``init_from``'s weights into ``animator``; the step and time of its metadata."""
    from lab.core.checkpoint import load_animator_weights

    meta = load_animator_weights(animator, init_from)  # an inference file's hours, or a checkpoint's seconds
    start = int(meta.get("steps") or meta.get("step") or 0)
    progress = Progress(
        step=start,
        device_seconds=60.0 * float(meta.get("gpu_minutes") or 0.0),
        train_seconds=float(meta.get("train_seconds") or 3600.0 * float(meta.get("train_hours") or 0.0)),
        cpu_seconds=float(meta.get("cpu_seconds") or 3600.0 * float(meta.get("cpu_hours") or 0.0)),
        warm_from={"path": str(init_from), "step": start},
    )
    if rank == 0:
        print(f"facelab train: warm start from {init_from} at step {start} (fresh optimiser)", flush=True)
    return progress


def resume(ckpt: dict, ckpt_path: Path, nets, opts, run_dir: Path, rank: int, total: int) -> Progress:
    """Load the checkpoint's weights and optimiser states; rank 0 cuts the run's logs back to its step."""
    from lab.core.checkpoint import load_state_dict_strict
    from lab.train.runlog import rewind

    load_state_dict_strict(nets.animator, ckpt["model"], what=f"resume {ckpt_path}")
    opts.opt.load_state_dict(ckpt["optimizer"])
    if nets.disc_side is not None and ckpt.get("discriminator") is not None:
        load_state_dict_strict(nets.disc_side.discriminator, ckpt["discriminator"], what="discriminator")
        opts.opt_d.load_state_dict(ckpt["optimizer_discriminator"])
    progress = Progress(step=int(ckpt["step"]), device_seconds=float(ckpt.get("device_seconds", 0.0)),
                        train_seconds=float(ckpt.get("train_seconds", 0.0)),
                        cpu_seconds=float(ckpt.get("cpu_seconds", 0.0)), warm_from=ckpt.get("warm_from"))
    if rank == 0:
        rewind(run_dir, progress.step)
        print(f"facelab train: resuming from {ckpt_path.name} at step {progress.step} (of {total})", flush=True)
    return progress


def checkpoint_state(model: str, nets, opts, progress: Progress, last_losses: dict[str, float], *, cfg: dict,
                     data_desc: dict, steps_per_epoch: int, threads: int, precision: str, device_type: str,
                     world: int) -> dict:
    """The checkpoint of a run at ``progress.step`` (keys in the order every checkpoint has them)."""
    return {
        "model_name": model,
        "model": nets.animator.state_dict(),
        "discriminator": nets.disc_side.discriminator.state_dict() if nets.disc_side is not None else None,
        "optimizer": opts.opt.state_dict(),
        "optimizer_discriminator": opts.opt_d.state_dict() if opts.opt_d is not None else None,
        "step": progress.step,
        "epoch": progress.step // max(1, steps_per_epoch),
        "config": cfg,
        "data": data_desc,
        "objective": nets.objective.description,
        "device_seconds": progress.device_seconds,
        "train_seconds": progress.train_seconds,
        "cpu_seconds": progress.cpu_seconds,
        "threads": threads,
        "precision": precision,
        "device_type": device_type,
        "world_size": world,
        "last_losses": last_losses,
        "warm_from": progress.warm_from,
    }
