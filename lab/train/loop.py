"""The common trainer: every animator, one CPU, one GPU or many machines (torchrun + DDP).

``train(...)`` is what ``facelab train`` and ``torchrun -m lab.train`` call. It

* initialises ``torch.distributed`` when launched by torchrun (gloo on CPU, nccl on CUDA) and wraps the
  model's generator and discriminator sides (:mod:`lab.nn.objective`) in separate DDPs;
* samples pairs of frames from the same video (:mod:`lab.train.data`) with a resumable distributed
  sampler, and seeds each step's RNG from ``(seed, step, rank)``, so a run killed and resumed from its
  last checkpoint follows the same trajectory as an uninterrupted one;
* runs the networks under bf16 autocast on CUDA and on CPUs with native bf16 (``amp`` / ``--precision``,
  :mod:`lab.train.precision`; losses and master weights fp32), gradient clipping, FOMM's Adam (betas 0.5,
  0.999) and MultiStepLR (milestones in epochs, or in steps with ``step_milestones``);
* counts training time and process CPU time apart from evaluation, stops at ``max_train_hours`` of training
  time (an equal budget for runs trained side by side) and scores the model on held-out clips every
  ``eval_every_minutes`` of training time (:mod:`lab.train.curves`: the learning curves);
* logs TensorBoard scalars and image grids, a CSV of losses and a tqdm bar on rank 0;
* writes ``weights_only``-safe checkpoints (model, discriminator, optimisers, step, config, data
  description, device time, losses used) and resumes from the newest one in the run folder.

Imports only what a bare GPU machine has (torch, numpy, PIL, yaml, tqdm, tensorboard); the data layer
imports PyAV/dlib lazily and falls back to OpenCV for decoding.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from lab.core.config import load_yaml
from lab.core.registry import create_animator
from lab.train.config import resolve_run_config
from lab.train.curves import STATIC_FILE
from lab.train.data import EpochBatchSampler, PairDataset, describe_videos, load_videos
from lab.train.pause import PauseSwitch

__all__ = ["train", "latest_checkpoint", "export_inference_weights"]

log = logging.getLogger("facelab.train")

CKPT_DIR = "checkpoints"
RESUME_OVERRIDES = ("max_train_hours", "eval_every_minutes", "num_workers", "step_milestones")
KILL_ENV = "FACELAB_TRAIN_KILL_AT_STEP"  # fault injection for resume tests: hard-exit after this step


# ---------------------------------------------------------------------------------------------- setup
def _dist_setup() -> tuple[int, int, int]:
    """(rank, world, local_rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _device(local_rank: int, requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """Newest ``checkpoints/step_*.pt`` in a run folder, or None."""
    d = Path(run_dir) / CKPT_DIR
    cks = sorted(d.glob("step_*.pt")) if d.is_dir() else []
    return cks[-1] if cks else None


def _save_checkpoint(run_dir: Path, state: dict, keep: int = 3) -> Path:
    d = run_dir / CKPT_DIR
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"step_{state['step']:08d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written checkpoint under the real name
    for old in sorted(d.glob("step_*.pt"))[:-keep]:
        old.unlink()
    return path


#: peak training memory per sample at 256², measured (forward + backward of the model's own objective, fp32, one
#: thread, ru_maxrss at batch 2 minus batch 1): ultralight 660 MB, FOMM 437 MB; rounded up, scaled by pixels.
CPU_MB_PER_SAMPLE_256 = 700.0


def _mem_available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _fit_cpu_batch(tp: dict, dp: dict, explicit: bool, rank: int) -> None:
    """Size a CPU run's batch to this machine's memory: a YAML's GPU batch (FOMM's 20-40) is lowered to what fits
    (with a log line); an explicit ``--batch-size`` that does not fit is refused before anything is allocated."""
    avail = _mem_available_mb()
    if avail is None:
        return
    procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    h, w = dp["frame_shape"][:2]
    per_sample = CPU_MB_PER_SAMPLE_256 * (h * w) / (256 * 256)
    fit = max(0, int(0.8 * avail / procs / per_sample))
    bs = int(tp["batch_size"])
    if bs <= fit:
        return
    need = f"{bs} samples of {w}x{h} need about {bs * per_sample / 1024:.1f} GiB per process"
    have = f"{avail / 1024:.1f} GiB available for {procs} process{'es' if procs > 1 else ''}"
    if explicit or fit == 0:
        raise ValueError(f"--batch-size {bs} does not fit in this machine's memory ({need}, {have}): "
                         f"use --batch-size {max(1, fit)} or less")
    tp["batch_size"] = fit
    if rank == 0:
        print(f"facelab train: the config's batch of {bs} does not fit on this CPU ({need}, {have}); using "
              f"--batch-size {fit} (pass --batch-size to choose)", flush=True)


def _lr_factor(step: int, milestones_steps: list[int]) -> float:
    return 0.1 ** sum(step >= m for m in milestones_steps)


def _optimizer(groups: list[dict], tp: dict) -> torch.optim.Optimizer:
    """``train_params.optimizer``: ``adam`` (FOMM's betas 0.5, 0.999 by default) or ``sgd`` (X2Face's)."""
    spec = dict(tp.get("optimizer") or {"name": "adam"})
    name = spec.pop("name", "adam").lower()
    if name == "adam":
        return torch.optim.Adam(groups, betas=tuple(spec.get("betas", (0.5, 0.999))))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=float(spec.get("momentum", 0.0)))
    raise ValueError(f"train_params.optimizer.name must be 'adam' or 'sgd', got '{name}'")


def _set_threads(threads: int | None) -> int:
    if threads:
        torch.set_num_threads(int(threads))
        with contextlib.suppress(RuntimeError):  # only settable before the first parallel region
            torch.set_num_interop_threads(1)
    return torch.get_num_threads()


# ---------------------------------------------------------------------------------------------- train
def train(
    model: str,
    data: str | os.PathLike,
    out: str | os.PathLike,
    config: str | os.PathLike | dict | None = None,
    max_steps: int | None = None,
    split: str = "train",
    device: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    time_budget_minutes: float | None = None,
    init_from: str | os.PathLike | None = None,
    threads: int | None = None,
    eval_data: str | os.PathLike | None = None,
) -> dict:
    """Train ``model`` on ``data`` into the run folder ``out`` (resuming from its newest checkpoint).

    Args:
        model: a registered animator name.
        data: VoxCeleb-layout root, shared data root, or ``.npz`` frame archive.
        out: run folder (config.yaml, checkpoints/, tb/, log.csv, meta.json).
        config: a YAML path or dict deep-merged over the model's own config.
        max_steps: stop after this many steps (overrides ``train_params.max_steps`` / ``num_epochs``).
        split: data split to train on.
        device: force a device (default: this process's CUDA device, else CPU).
        overrides: extra ``train_params`` values (e.g. ``{"batch_size": 4}``).
        progress: tqdm bar on rank 0.
        time_budget_minutes: stop at the first step boundary after this much wall time, writing a checkpoint
            (rerunning the command goes on from there).
        init_from: for a new run, initial weights (facelab ``.safetensors`` or checkpoint) with a fresh optimiser;
            the step counter and device time continue from its metadata (a warm restart, e.g. on another
            machine when the optimiser state is too large to carry).
        threads: ``torch.set_num_threads`` for this process (default: torch's).
        eval_data: held-out data for the learning curve (``train_params.eval_every_minutes``; default: ``data``'s
            test split when ``data`` is a folder).

    Returns:
        summary dict (``step``, ``resumed_from``, ``losses`` of the last step, ``run_dir``, ...).
    """
    rank, world, local = _dist_setup()
    dev = _device(local, device)
    n_threads = _set_threads(threads)
    run_dir = Path(out)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)

    # --- config & resume
    ckpt_path = latest_checkpoint(run_dir)
    ckpt = None
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
    else:
        user = load_yaml(config) if isinstance(config, (str, os.PathLike)) else config
        base = create_animator(model).config
        ov = dict(overrides or {})
        size = ov.pop("frame_size", None)
        cfg = resolve_run_config(base, user, max_steps=max_steps, **ov)
        if size:  # e.g. 128² for a CPU curriculum: keypoint detector and dense motion keep their 64² view
            from lab.train.curves import config_at_resolution

            cfg = config_at_resolution(cfg, int(size))
    tp, dp = cfg["train_params"], cfg["dataset_params"]
    if ckpt is None and dev.type == "cpu":
        _fit_cpu_batch(tp, dp, explicit=(overrides or {}).get("batch_size") is not None, rank=rank)

    torch.manual_seed(int(tp["seed"]))  # same initial weights on every rank and every rerun
    animator = create_animator(model, config=cfg).to(dev)
    from lab.train.precision import autocast_networks, resolve_precision

    amp_dtype, precision = resolve_precision(tp.get("amp", "auto"), dev)
    autocast_networks([*animator.encoder_modules().values(), *animator.decoder_modules().values()], dev.type,
                      amp_dtype)
    if rank == 0:
        print(f"facelab train: {model} on {dev} ({n_threads} threads), precision: {precision}", flush=True)
    objective = animator.training_objective(tp)
    gen_side = objective.generator.to(dev)
    disc_side = objective.discriminator.to(dev) if objective.discriminator is not None else None
    gen_side.attach_discriminator(disc_side.discriminator if disc_side is not None else None)

    # --- data
    videos = load_videos(data, split=split, frame_shape=dp["frame_shape"],
                         max_frames_per_video=dp.get("max_frames_per_video"), frame_stride=dp.get("frame_stride", 1))
    wants = getattr(animator, "wants_landmark_targets", None)
    if wants is not None and wants(tp):
        from lab.train.data import attach_landmarks

        attach_landmarks(videos, data, frame_stride=dp.get("frame_stride", 1))
    dataset = PairDataset(videos, num_repeats=tp["num_repeats"], augmentation_params=dp.get("augmentation_params"),
                          seed=tp["seed"])
    bs = int(tp["batch_size"])
    steps_per_epoch = len(dataset) // (bs * world)
    total = int(tp["max_steps"]) if tp.get("max_steps") else steps_per_epoch * int(tp["num_epochs"])
    milestones = ([int(m) for m in tp["step_milestones"]] if tp.get("step_milestones") is not None
                  else [int(m) * steps_per_epoch for m in tp.get("epoch_milestones") or []])

    # --- optimisers
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
    opt = _optimizer(groups, tp)
    frozen = _frozen_params(gen_side, tp.get("freeze"))
    opt_d = None
    if disc_side is not None:
        opt_d = _optimizer([{"params": list(disc_side.parameters()), "lr": tp["lr_discriminator"]}], tp)
        for g in opt_d.param_groups:
            g["initial_lr"] = g["lr"]

    start = 0
    device_seconds = 0.0
    train_seconds = 0.0  # wall time of training steps (no evaluation, no checkpoint writing)
    cpu_seconds = 0.0  # process CPU time of those steps (all threads)
    warm_from = None
    if ckpt is None and init_from is not None:
        from lab.core.checkpoint import load_animator_weights

        meta = load_animator_weights(animator, init_from)  # an inference file's hours, or a checkpoint's seconds
        start = int(meta.get("steps") or meta.get("step") or 0)
        device_seconds = 60.0 * float(meta.get("gpu_minutes") or 0.0)
        train_seconds = float(meta.get("train_seconds") or 3600.0 * float(meta.get("train_hours") or 0.0))
        cpu_seconds = float(meta.get("cpu_seconds") or 3600.0 * float(meta.get("cpu_hours") or 0.0))
        warm_from = {"path": str(init_from), "step": start}
        if rank == 0:
            print(f"facelab train: warm start from {init_from} at step {start} (fresh optimiser)", flush=True)
    if ckpt is not None:
        from lab.core.checkpoint import load_state_dict_strict

        load_state_dict_strict(animator, ckpt["model"], what=f"resume {ckpt_path}")
        opt.load_state_dict(ckpt["optimizer"])
        if disc_side is not None and ckpt.get("discriminator") is not None:
            load_state_dict_strict(disc_side.discriminator, ckpt["discriminator"], what="discriminator")
            opt_d.load_state_dict(ckpt["optimizer_discriminator"])
        start = int(ckpt["step"])
        device_seconds = float(ckpt.get("device_seconds", 0.0))
        train_seconds = float(ckpt.get("train_seconds", 0.0))
        cpu_seconds = float(ckpt.get("cpu_seconds", 0.0))
        warm_from = ckpt.get("warm_from")
        if rank == 0:
            from lab.train.curves import truncate_curve

            _truncate_log(run_dir / "log.csv", start)
            truncate_curve(run_dir, start)
            print(f"facelab train: resuming from {ckpt_path.name} at step {start} (of {total})", flush=True)

    pre = tp.get("keypoint_pretrain")
    if ckpt is None and init_from is None and pre and getattr(dataset.videos[0], "landmarks", None) is not None:
        from lab.train.landmarks import pretrain_keypoints

        t_pre, c_pre = time.perf_counter(), time.process_time()
        hist = pretrain_keypoints(animator.kp_detector, dataset, steps=int(pre["steps"]), lr=float(pre.get("lr", 2e-3)),
                                  batch_size=int(pre.get("batch_size", 16)), seed=int(tp["seed"]))
        train_seconds += time.perf_counter() - t_pre  # part of the training budget
        cpu_seconds += time.process_time() - c_pre
        if rank == 0 and hist:
            print(f"facelab train: keypoints pretrained on landmarks, {len(hist)} steps: L1 {hist[0]:.3f} -> "
                  f"{np.mean(hist[-50:]):.3f} ({time.perf_counter() - t_pre:.0f} s)", flush=True)

    # --- DDP
    gen_run, disc_run = gen_side, disc_side
    if world > 1:
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
        if disc_side is not None:
            disc_run = DDP(disc_side, device_ids=ids)

    # --- run folder (rank 0)
    data_desc = describe_videos(videos, str(data), split)
    writer = None
    if rank == 0:
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": model, **cfg}, sort_keys=False))
        meta = {"model": model, "world_size": world, "device": str(dev), "data": data_desc,
                "objective": objective.description, "total_steps": total, "steps_per_epoch": steps_per_epoch,
                "precision": precision, "threads": n_threads}
        (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))

    sampler = EpochBatchSampler(len(dataset), bs, num_replicas=world, rank=rank, seed=tp["seed"], start_step=start,
                                total_steps=total)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=int(tp.get("num_workers", 0)),
                        pin_memory=dev.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    clip = float(tp.get("grad_clip") or 0.0)
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    deadline = time.monotonic() + 60.0 * time_budget_minutes if time_budget_minutes is not None else None
    max_train_s = 3600.0 * float(tp["max_train_hours"]) if tp.get("max_train_hours") else None
    curve = _curve_evaluator(model, cfg, data, eval_data, tp) if rank == 0 else None
    eval_every_s = 60.0 * float(tp.get("eval_every_minutes") or 0.0)
    next_eval = _next_eval(run_dir, train_seconds, eval_every_s) if curve is not None else None
    if curve is not None and not (run_dir / STATIC_FILE).is_file():
        from lab.train.curves import write_static

        write_static(run_dir, curve.score_static(), curve.description)

    def evaluate_now() -> None:
        from lab.train.curves import append_curve_row

        row = curve.score(animator.state_dict())
        row.update(step=step, samples=step * bs * world, train_hours=round(train_seconds / 3600, 4),
                   cpu_hours=round(cpu_seconds / 3600, 4), wall_time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        append_curve_row(run_dir, row)
        print(f"facelab train: eval at step {step} ({row['train_hours']:.2f} h): L1 {row['l1']:.4f}  "
              f"AKD {row['akd']:.3f}  ({row['eval_seconds']:.0f} s)", flush=True)
        animator.train()

    if max_train_s is not None and train_seconds >= max_train_s:
        total = start  # the budget is spent: nothing to run

    bar = None
    if rank == 0 and progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=f"train {model}", dynamic_ncols=True)

    animator.train()
    step = start
    if next_eval is not None and next_eval <= train_seconds:
        evaluate_now()
        next_eval = train_seconds + eval_every_s
    last_losses: dict[str, float] = {}
    csv_f = open(run_dir / "log.csv", "a", newline="") if rank == 0 else None  # noqa: SIM115
    csv_w = None
    pause = PauseSwitch(run_dir)  # SIGUSR1/SIGUSR2: a pause between steps, outside the budget
    try:
        for batch in loader:
            if step >= total:
                break
            waited = pause.wait_if_paused()
            if deadline is not None:
                deadline += waited
            t0 = time.perf_counter()
            c0 = time.process_time()
            torch.manual_seed(hash((int(tp["seed"]), step, rank)) % (2**63))
            lr_f = _lr_factor(step, milestones)
            for o in (opt, opt_d):
                if o is not None:
                    for g in o.param_groups:
                        g["lr"] = g["initial_lr"] * lr_f
            source = batch["source"].to(dev, non_blocking=True)
            driving = batch["driving"].to(dev, non_blocking=True)
            extras = {k: batch[k].to(dev) for k in ("kp_target_source", "kp_target_driving") if k in batch}
            losses, generated = gen_run(source, driving, **extras)  # the networks autocast themselves (precision)
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if frozen and step < int(tp["freeze"]["steps"]):
                for p in frozen:  # no gradient: Adam leaves these untouched (no state either)
                    p.grad = None
            if clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(gen_params, clip)
            scaler.step(opt)
            scaler.update()
            if disc_run is not None and opt_d is not None:
                opt_d.zero_grad(set_to_none=True)  # drop grads the generator's GAN loss left here
                d_losses = disc_run(source, driving, {k: _detach(v) for k, v in generated.items()})
                d_loss = sum(d_losses.values())
                d_loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(disc_side.parameters(), clip)
                opt_d.step()
                losses = {**losses, **d_losses}
            step += 1
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            last_losses = _reduce_losses(losses, world)
            dt = time.perf_counter() - t0
            device_seconds += dt * (world if dev.type == "cuda" else 0)
            train_seconds += dt
            cpu_seconds += time.process_time() - c0

            if rank == 0:
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{sum(last_losses.values()):.4f}")
                if step % int(tp.get("log_every", 10)) == 0 or step == total:
                    for k, v in last_losses.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                    writer.add_scalar("lr", groups[-1]["initial_lr"] * lr_f, step)
                if csv_w is None:
                    csv_w = csv.writer(csv_f)
                    if csv_f.tell() == 0:
                        csv_w.writerow(["step", "loss", *sorted(last_losses)])
                total_loss = sum(last_losses.values())
                csv_w.writerow([step, f"{total_loss:.6f}", *(f"{last_losses[k]:.6f}" for k in sorted(last_losses))])
                csv_f.flush()
                if step % int(tp.get("image_every", 250)) == 0 or step == total:
                    from lab.train.visual import training_grid

                    writer.add_image("source|driving|prediction", training_grid(source, driving, generated), step)
            stop = deadline is not None and time.monotonic() > deadline
            budget_spent = max_train_s is not None and train_seconds >= max_train_s
            stop = stop or budget_spent
            if world > 1:
                flag = torch.tensor([float(stop)], device=dev)
                dist.all_reduce(flag)  # every rank stops at the same step
                stop = bool(flag.item())
            if rank == 0 and (step % int(tp.get("checkpoint_every", 500)) == 0 or step == total or stop):
                _save_checkpoint(run_dir, {
                    "model_name": model,
                    "model": animator.state_dict(),
                    "discriminator": disc_side.discriminator.state_dict() if disc_side is not None else None,
                    "optimizer": opt.state_dict(),
                    "optimizer_discriminator": opt_d.state_dict() if opt_d is not None else None,
                    "step": step,
                    "epoch": step // max(1, steps_per_epoch),
                    "config": cfg,
                    "data": data_desc,
                    "objective": objective.description,
                    "device_seconds": device_seconds,
                    "train_seconds": train_seconds,
                    "cpu_seconds": cpu_seconds,
                    "threads": n_threads,
                    "precision": precision,
                    "device_type": dev.type,
                    "world_size": world,
                    "last_losses": last_losses,
                    "warm_from": warm_from,
                })
            if world > 1:
                dist.barrier()
            if curve is not None and (train_seconds >= next_eval or stop or step == total):
                evaluate_now()
                next_eval = train_seconds + eval_every_s
            if kill_at and step == kill_at:
                os._exit(137)  # simulated kill -9 (tests of resume)
            if stop:
                if rank == 0:
                    what = (f"training budget of {tp['max_train_hours']} h spent at step {step}" if budget_spent
                            else f"time budget reached at step {step}; rerun to continue")
                    print(f"facelab train: {what}", flush=True)
                break
    finally:
        pause.close()
        if bar is not None:
            bar.close()
        if csv_f is not None:
            csv_f.close()
        if writer is not None:
            writer.close()
    if world > 1:
        dist.destroy_process_group()
    return {"run_dir": str(run_dir), "step": step, "resumed_from": start if ckpt is not None else None,
            "total_steps": total, "losses": last_losses, "device_seconds": device_seconds,
            "train_hours": train_seconds / 3600, "cpu_hours": cpu_seconds / 3600, "precision": precision}


def _frozen_params(gen_side: torch.nn.Module, spec: dict | None) -> list[torch.nn.Parameter]:
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


def _curve_evaluator(model: str, cfg: dict, data, eval_data, tp: dict):
    """The learning-curve evaluator of ``train_params.eval_every_minutes`` (None when off)."""
    if not tp.get("eval_every_minutes"):
        return None
    from lab.train.curves import CurveEvaluator

    src = eval_data if eval_data is not None else data
    if str(src).endswith(".npz") and eval_data is None:
        raise ValueError("eval_every_minutes with a .npz training archive needs eval_data (the held-out clips)")
    ev = tp.get("eval") or {}
    return CurveEvaluator(model, cfg, src, split=ev.get("split", "test"), clips=ev.get("clips"),
                          frames=int(ev.get("frames", 40)), stride=int(ev.get("stride", 4)),
                          size=int(ev.get("size") or cfg["dataset_params"]["frame_shape"][0]),
                          backend=ev.get("backend", "dlib"))


def _next_eval(run_dir: Path, train_seconds: float, every_s: float) -> float:
    """Training time of the next evaluation: now if the curve has no row yet (the step-0 point), else one
    interval after the last row's."""
    from lab.train.curves import read_curve

    rows = read_curve(run_dir)
    if not rows:
        return train_seconds
    return 3600.0 * float(rows[-1]["train_hours"]) + every_s


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows of steps after ``step`` (logged by a killed run after its last checkpoint)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    path.write_text("".join(keep))


def _detach(v):
    if isinstance(v, torch.Tensor):
        return v.detach()
    if isinstance(v, dict):
        return {k: _detach(x) for k, x in v.items()}
    return v


def _reduce_losses(losses: dict[str, torch.Tensor], world: int) -> dict[str, float]:
    names = sorted(losses)
    vec = torch.stack([losses[k].detach().float() for k in names])
    if world > 1:
        dist.all_reduce(vec)
        vec /= world
    return {k: float(v) for k, v in zip(names, vec.cpu())}


# ---------------------------------------------------------------------------------------------- export
def export_inference_weights(run_dir_or_ckpt: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write an fp16 ``.safetensors`` inference file from a run's newest checkpoint, with its metadata.

    The metadata records the model, its config, the data it saw, steps, device-minutes and losses used.
    """
    from lab import __version__
    from lab.core.checkpoint import load_state_dict_strict, safe_load, save_inference_weights

    src = Path(run_dir_or_ckpt)
    ck_path = latest_checkpoint(src) if src.is_dir() else src
    if ck_path is None:
        raise FileNotFoundError(f"no checkpoint in {src}/{CKPT_DIR}")
    ck = safe_load(ck_path)
    animator = create_animator(ck["model_name"], config=ck["config"])
    load_state_dict_strict(animator, ck["model"], what=str(ck_path))
    minutes = ck.get("device_seconds", 0.0) / 60.0
    data = dict(ck.get("data") or {})
    meta = {
        "model": ck["model_name"],
        "steps": ck["step"],
        "device_type": ck.get("device_type"),
        "world_size": ck.get("world_size"),
        "gpu_minutes": round(minutes, 2) if ck.get("device_type") == "cuda" else 0.0,
        "train_hours": round(float(ck.get("train_seconds", 0.0)) / 3600, 3),
        "cpu_hours": round(float(ck.get("cpu_seconds", 0.0)) / 3600, 3),
        "precision": ck.get("precision"),
        "threads": ck.get("threads"),
        "data": data,
        "losses": ck.get("objective"),
        "last_losses": ck.get("last_losses"),
        "model_params": ck["config"].get("model_params"),
        "facelab_version": __version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_checkpoint": ck_path.name,
    }
    return save_inference_weights(animator, out, meta=meta, dtype=torch.float16)

