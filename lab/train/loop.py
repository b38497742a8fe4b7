"""The common trainer: every animator, one CPU, one GPU or many machines (torchrun + DDP).

``train(...)`` is what ``facelab train`` and ``torchrun -m lab.train`` call. It

* initialises ``torch.distributed`` when launched by torchrun (gloo on CPU, nccl on CUDA) and wraps the
  model's generator and discriminator sides (:mod:`lab.nn.objective`) in separate DDPs
  (:mod:`lab.train.distributed`);
* samples pairs of frames from the same video (:mod:`lab.train.data`) with a resumable distributed
  sampler, and seeds each step's RNG from ``(seed, step, rank)`` (:mod:`lab.train.step`), so a run killed and
  resumed from its last checkpoint follows the same trajectory as an uninterrupted one;
* runs the networks under bf16 autocast on CUDA and on CPUs with native bf16 (``amp`` / ``--precision``,
  :mod:`lab.train.precision`; losses and master weights fp32), gradient clipping, FOMM's Adam (betas 0.5,
  0.999) and MultiStepLR (milestones in epochs, or in steps with ``step_milestones``; :mod:`lab.train.optim`);
* counts training time and process CPU time apart from evaluation, stops at ``max_train_hours`` of training
  time (an equal budget for runs trained side by side) and scores the model on held-out clips every
  ``eval_every_minutes`` of training time (:mod:`lab.train.curve_schedule`, :mod:`lab.train.curves`: the
  learning curves);
* logs TensorBoard scalars and image grids, a CSV of losses and a tqdm bar on rank 0 (:mod:`lab.train.runlog`);
* writes ``weights_only``-safe checkpoints (model, discriminator, optimisers, step, config, data
  description, device time, losses used) and resumes from the newest one in the run folder
  (:mod:`lab.train.checkpointing`).

Imports only what a bare GPU machine has (torch, numpy, PIL, yaml, tqdm, tensorboard); the data layer
imports PyAV/dlib lazily and falls back to OpenCV for decoding.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from lab.train.checkpointing import Progress, checkpoint_state, resume, run_config, save_checkpoint, warm_start
from lab.train.cpu_batch import fit_cpu_batch
from lab.train.curve_schedule import CurveSchedule
from lab.train.data import EpochBatchSampler, PairDataset, describe_videos, load_videos
from lab.train.distributed import (
    agree_to_stop,
    barrier,
    device_for,
    dist_setup,
    reduce_losses,
    set_threads,
    teardown,
    wrap_ddp,
)
from lab.train.optim import Optimisers, build_optimisers
from lab.train.pause import PauseSwitch
from lab.train.runlog import RunLog
from lab.train.step import Networks, build_networks, train_step

__all__ = ["train"]

KILL_ENV = "FACELAB_TRAIN_KILL_AT_STEP"  # fault injection for resume tests: hard-exit after this step


def train(model: str, data: str | os.PathLike, out: str | os.PathLike, config: str | os.PathLike | dict | None = None,
          max_steps: int | None = None, split: str = "train", device: str | None = None, overrides: dict | None = None,
          progress: bool = True, time_budget_minutes: float | None = None, init_from: str | os.PathLike | None = None,
          threads: int | None = None, eval_data: str | os.PathLike | None = None) -> dict:
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
    rank, world, local = dist_setup()
    dev = device_for(local, device)
    n_threads = set_threads(threads)
    run_dir = Path(out)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    # SIGUSR1/SIGUSR2 handled from here on: a pause asked for during set-up (data loading) is held until the first
    # step boundary; before, SIGUSR1's default action ended the process (scripts/pause_training.sh killed a run
    # that was still loading its frames)
    pause = PauseSwitch(run_dir)

    # --- config (a checkpoint's when resuming), networks, data, optimisers
    ckpt_path, ckpt, cfg = run_config(run_dir, model, config, max_steps, overrides)
    tp, dp = cfg["train_params"], cfg["dataset_params"]
    if ckpt is None and dev.type == "cpu":
        fit_cpu_batch(tp, dp, explicit=(overrides or {}).get("batch_size") is not None, rank=rank)
    nets, amp_dtype, precision = build_networks(model, cfg, dev, rank, n_threads)
    videos, dataset = _dataset(data, split, nets.animator, tp, dp)
    bs = int(tp["batch_size"])
    steps_per_epoch = len(dataset) // (bs * world)
    total = int(tp["max_steps"]) if tp.get("max_steps") else steps_per_epoch * int(tp["num_epochs"])
    opts = build_optimisers(nets.animator, nets.gen_side, nets.disc_side, tp, steps_per_epoch)

    # --- where the run starts: its checkpoint, warm-start weights, or new (keypoints pretrained on landmarks)
    state = _start(ckpt, ckpt_path, init_from, nets, opts, dataset, tp, run_dir, rank, total, pause)
    nets.gen_run, nets.disc_run = wrap_ddp(nets.gen_side, nets.disc_side, dev, world)
    start = state.step

    # --- run folder (rank 0), loader, budgets, learning curve
    run = _Run(model, cfg, run_dir, rank, world, dev, n_threads, precision, bs, steps_per_epoch,
               describe_videos(videos, str(data), split), total)
    log = RunLog(run_dir, model, cfg, run.meta(nets.objective.description)) if rank == 0 else None
    loader = _loader(dataset, run, start)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    run.deadline = time.monotonic() + 60.0 * time_budget_minutes if time_budget_minutes is not None else None
    run.max_train_s = 3600.0 * float(tp["max_train_hours"]) if tp.get("max_train_hours") else None
    curve = CurveSchedule.open(model, cfg, data, eval_data, run_dir, state.train_seconds) if rank == 0 else None
    if run.budget_spent(state):
        run.total = start  # the budget is spent: nothing to run
        if rank == 0:
            print(f"facelab train: training budget of {tp['max_train_hours']} h already spent at step {start}",
                  flush=True)
    if log is not None and progress:
        log.open_bar(run.total, start, f"train {model}")

    last_losses = _steps(run, nets, opts, loader, scaler, state, log, curve, pause)
    teardown(world)
    return {"run_dir": str(run_dir), "step": state.step, "resumed_from": start if ckpt is not None else None,
            "total_steps": run.total, "losses": last_losses, "device_seconds": state.device_seconds,
            "train_hours": state.train_seconds / 3600, "cpu_hours": state.cpu_seconds / 3600, "precision": precision,
            "budget_spent": run.budget_spent(state)}

@dataclass
class _Run:
    """What the step loop and its checkpoints need of a run, fixed once it is set up."""

    model: str
    cfg: dict
    run_dir: Path
    rank: int
    world: int
    dev: torch.device
    threads: int
    precision: str
    bs: int
    steps_per_epoch: int
    data_desc: dict
    total: int  # the step to stop at
    deadline: float | None = None  # time.monotonic() of --time-budget-minutes
    max_train_s: float | None = None  # train_params.max_train_hours in seconds of training time

    def budget_spent(self, state: Progress) -> bool:
        """Whether ``state`` has spent the run's training-time budget (``max_train_hours``; none: never)."""
        return self.max_train_s is not None and state.train_seconds >= self.max_train_s

    def meta(self, objective: dict) -> dict:
        """meta.json: what the run is and where it runs."""
        return {"model": self.model, "world_size": self.world, "device": str(self.dev), "data": self.data_desc,
                "objective": objective, "total_steps": self.total, "steps_per_epoch": self.steps_per_epoch,
                "precision": self.precision, "threads": self.threads}


def _steps(run: _Run, nets: Networks, opts: Optimisers, loader: DataLoader, scaler: torch.amp.GradScaler,
           state: Progress, log: RunLog | None, curve: CurveSchedule | None, pause: PauseSwitch) -> dict[str, float]:
    """Train from ``state.step`` to ``run.total`` or a budget (advancing ``state``); the last step's losses.

    Every step: a pause if one was asked for (outside the budgets), the update, its time counted, rank 0's log
    row; a checkpoint every ``checkpoint_every`` steps, at the end and when stopping; a curve point when due.
    """
    tp = run.cfg["train_params"]
    seed, clip = int(tp["seed"]), float(tp.get("grad_clip") or 0.0)
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    deadline, total, cuda = run.deadline, run.total, run.dev.type == "cuda"
    nets.animator.train()
    if curve is not None and curve.due(state.train_seconds):
        curve.evaluate(nets.animator, state, run.bs * run.world)
    last_losses: dict[str, float] = {}
    lr_f = 1.0  # the factor of the step before (the log line says when it changes)
    if log is not None:
        log.open_csv()
    try:
        for batch in loader:
            if state.step >= total:
                break
            waited = pause.wait_if_paused()
            if deadline is not None:
                deadline += waited
            t0 = time.perf_counter()
            c0 = time.process_time()
            res = train_step(nets, opts, batch, state.step, seed=seed, rank=run.rank, dev=run.dev, scaler=scaler,
                             clip=clip, train_hours=state.train_seconds / 3600)
            if res.lr_f != lr_f and run.rank == 0:  # the run's start, and each milestone passed
                print(f"facelab train: learning rate x{res.lr_f:g} from step {state.step} "
                      f"({state.train_seconds / 3600:.2f} training-hours)", flush=True)
            lr_f = res.lr_f
            state.step += 1
            if cuda:
                torch.cuda.synchronize(run.dev)
            last_losses = reduce_losses(res.losses, run.world)
            dt = time.perf_counter() - t0
            state.device_seconds += dt * (run.world if cuda else 0)
            state.train_seconds += dt
            state.cpu_seconds += time.process_time() - c0
            if log is not None:
                log.record(state.step, total, last_losses, opts.lr(res.lr_f), res.source, res.driving, res.generated)
            budget_spent = run.budget_spent(state)
            stop = (deadline is not None and time.monotonic() > deadline) or budget_spent
            stop = agree_to_stop(stop, run.world, run.dev)
            if run.rank == 0 and (state.step % int(tp.get("checkpoint_every", 500)) == 0 or state.step == total
                                  or stop):
                save_checkpoint(run.run_dir, checkpoint_state(
                    run.model, nets, opts, state, last_losses, cfg=run.cfg, data_desc=run.data_desc,
                    steps_per_epoch=run.steps_per_epoch, threads=run.threads, precision=run.precision,
                    device_type=run.dev.type, world=run.world))
            barrier(run.world)
            if curve is not None and (curve.due(state.train_seconds) or stop or state.step == total):
                curve.evaluate(nets.animator, state, run.bs * run.world)
            if kill_at and state.step == kill_at:
                os._exit(137)  # simulated kill -9 (tests of resume)
            if stop:
                if run.rank == 0:
                    what = (f"training budget of {tp['max_train_hours']} h spent at step {state.step}" if budget_spent
                            else f"time budget reached at step {state.step}; rerun to continue")
                    print(f"facelab train: {what}", flush=True)
                break
    finally:
        pause.close()
        if log is not None:
            log.close()
    return last_losses


def _start(ckpt: dict | None, ckpt_path: Path | None, init_from, nets: Networks, opts: Optimisers,
           dataset: PairDataset, tp: dict, run_dir: Path, rank: int, total: int, pause: PauseSwitch) -> Progress:
    """Where the run starts: its checkpoint's state, the warm-start weights' step and time, or step 0 of a new
    run (with the keypoints pretrained on landmarks when ``train_params.keypoint_pretrain`` asks)."""
    if ckpt is not None:
        return resume(ckpt, ckpt_path, nets, opts, run_dir, rank, total)
    if init_from is not None:
        return warm_start(nets.animator, init_from, rank)
    state = Progress()
    _pretrain_keypoints(nets.animator, dataset, tp, state, rank, pause)
    return state


def _loader(dataset: PairDataset, run: _Run, start: int) -> DataLoader:
    """Batches of this rank's share of each epoch, from step ``start`` on (:class:`EpochBatchSampler`)."""
    tp = run.cfg["train_params"]
    sampler = EpochBatchSampler(len(dataset), run.bs, num_replicas=run.world, rank=run.rank, seed=tp["seed"],
                                start_step=start, total_steps=run.total)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=int(tp.get("num_workers", 0)),
                      pin_memory=run.dev.type == "cuda")


def _dataset(data, split: str, animator, tp: dict, dp: dict) -> tuple[list, PairDataset]:
    """(videos, pair dataset) of ``data``'s ``split``, with landmark targets when the animator wants them."""
    videos = load_videos(data, split=split, frame_shape=dp["frame_shape"],
                         max_frames_per_video=dp.get("max_frames_per_video"), frame_stride=dp.get("frame_stride", 1))
    wants = getattr(animator, "wants_landmark_targets", None)
    if wants is not None and wants(tp):
        from lab.train.data import attach_landmarks

        attach_landmarks(videos, data, frame_stride=dp.get("frame_stride", 1))
    dataset = PairDataset(videos, num_repeats=tp["num_repeats"], augmentation_params=dp.get("augmentation_params"),
                          seed=tp["seed"])
    return videos, dataset


def _pretrain_keypoints(animator, dataset: PairDataset, tp: dict, state: Progress, rank: int,
                        pause: PauseSwitch) -> None:
    """``train_params.keypoint_pretrain`` of a new run on landmarks: its time counts as training time, pauses
    between its steps do not."""
    pre = tp.get("keypoint_pretrain")
    if not pre or getattr(dataset.videos[0], "landmarks", None) is None:
        return
    from lab.train.landmarks import pretrain_keypoints

    t_pre, c_pre = time.perf_counter(), time.process_time()
    paused = [0.0]

    def between_steps() -> None:
        paused[0] += pause.wait_if_paused()

    hist = pretrain_keypoints(animator.kp_detector, dataset, steps=int(pre["steps"]), lr=float(pre.get("lr", 2e-3)),
                              batch_size=int(pre.get("batch_size", 16)), seed=int(tp["seed"]),
                              between_steps=between_steps)
    state.train_seconds += time.perf_counter() - t_pre - paused[0]  # part of the training budget
    state.cpu_seconds += time.process_time() - c_pre
    if rank == 0 and hist:
        print(f"facelab train: keypoints pretrained on landmarks, {len(hist)} steps: L1 {hist[0]:.3f} -> "
              f"{np.mean(hist[-50:]):.3f} ({time.perf_counter() - t_pre - paused[0]:.0f} s)", flush=True)
