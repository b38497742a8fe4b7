"""``facelab train``, ``facelab export-weights``, ``facelab export-frames``, ``facelab prepare-data`` and
``facelab curves``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "add_train_arguments", "main_train"]

TRAIN_HELP = """\
Train a registered animator on VoxCeleb-format data with the common trainer. Rerunning the same command
resumes from the newest checkpoint in --out. Multi-process / multi-machine: launch the same arguments with
`torchrun --nproc_per_node K -m lab.train ...` (add --nnodes/--node_rank/--rdzv_endpoint for several machines).
"""


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="registered animator name (see `facelab models`)")
    p.add_argument("--data", required=True,
                   help="VoxCeleb-layout root (train/ test/), the shared data folder (MANIFEST.csv), or a .npz frame "
                        "archive from `facelab export-frames`")
    p.add_argument("--out", required=True, help="run folder: config.yaml, checkpoints/, tb/, log.csv")
    p.add_argument("--config", help="YAML deep-merged over the model's own config (FOMM layout: train_params, ...)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--split", default="train", help="data split to train on (default: train)")
    p.add_argument("--batch-size", type=int, help="per-process batch size (overrides train_params.batch_size)")
    p.add_argument("--num-workers", type=int, help="DataLoader workers per process")
    p.add_argument("--device", help="force a device, e.g. cpu or cuda:0 (default: this rank's GPU, else CPU)")
    p.add_argument("--time-budget-minutes", type=float,
                   help="stop at the first step boundary after this many minutes, with a checkpoint (rerun to go on)")
    p.add_argument("--init-from",
                   help="start a new run from these weights (.safetensors or checkpoint) with a fresh optimiser; the "
                        "step count and device time carry over from its metadata (warm restart across machines)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"),
                   help="autocast of the networks (default auto: bf16 on CUDA and on CPUs with native bf16)")
    p.add_argument("--size", type=int,
                   help="train at SIZE x SIZE frames (e.g. 128 for a CPU curriculum; the keypoint detector and dense "
                        "motion keep their 64x64 view, so the weights run at 256 too)")
    p.add_argument("--threads", type=int, help="torch threads of this process (torch.set_num_threads)")
    p.add_argument("--max-train-hours", type=float,
                   help="stop once this much training time is spent, over all resumes (equal-budget runs)")
    p.add_argument("--lr-drop-hours", type=float, nargs="+", metavar="H",
                   help="drop the learning rate 10x at each of these training-hours (a time budget's schedule; a "
                        "resumed run takes them too)")
    p.add_argument("--eval-every-minutes", type=float,
                   help="score held-out clips (L1, AKD) every N minutes of training time into RUN/curve.csv")
    p.add_argument("--eval-data", help="held-out data for the curve (default: --data's test split)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def _run_train(args: argparse.Namespace) -> int:
    from lab.train import train

    overrides = {"batch_size": args.batch_size, "num_workers": args.num_workers, "amp": args.precision,
                 "max_train_hours": args.max_train_hours, "frame_size": args.size,
                 "eval_every_minutes": args.eval_every_minutes, "hour_milestones": args.lr_drop_hours}
    summary = train(args.model, args.data, args.out, config=args.config, max_steps=args.max_steps, split=args.split,
                    device=args.device, overrides={k: v for k, v in overrides.items() if v is not None},
                    progress=not args.no_progress, time_budget_minutes=args.time_budget_minutes,
                    init_from=args.init_from, threads=args.threads, eval_data=args.eval_data)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, default=str))
    return 0


def _commit() -> str | None:
    """This checkout's commit (short hash, ``+dirty`` with uncommitted changes), or None outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _run_export_weights(args: argparse.Namespace) -> int:
    from lab.train import export_inference_weights

    extra = {}
    for item in args.meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"export-weights: --meta wants KEY=VALUE, got {item!r}")
        try:
            extra[key] = json.loads(value)  # numbers, lists and objects as JSON; anything else as text
        except json.JSONDecodeError:
            extra[key] = value
    extra.setdefault("commit", _commit())
    path = export_inference_weights(args.run, args.out, extra={k: v for k, v in extra.items() if v is not None})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, fp16)")
    return 0


def _run_export_frames(args: argparse.Namespace) -> int:
    from lab.train.data import export_frames, load_videos

    videos = load_videos(args.data, split=args.split, frame_shape=(args.size, args.size, 3),
                         max_frames_per_video=args.max_frames, frame_stride=args.stride)
    path = export_frames(videos, args.out)
    n = sum(len(v.frames) for v in videos)
    print(f"wrote {path}: {len(videos)} videos, {n} frames, {path.stat().st_size / 1e6:.1f} MB")
    return 0


def _run_prepare_data(args: argparse.Namespace) -> int:
    from lab.train.data import load_videos, write_voxceleb

    total = 0
    for split in args.splits.split(","):
        videos = load_videos(args.data, split=split, frame_shape=(args.size, args.size, 3),
                             max_frames_per_video=args.max_frames)
        paths = write_voxceleb(videos, args.out, split, crf=args.crf)
        n = sum(len(v.frames) for v in videos)
        size = sum(p.stat().st_size for p in paths) / 1e6
        total += size
        print(f"{split}: {len(paths)} videos, {n} frames -> {args.out}/{split} ({size:.1f} MB)")
    print(f"total {total:.1f} MB")
    return 0


def _run_curves(args: argparse.Namespace) -> int:
    from lab.reports.learning_curves import write_curves_report

    paths = write_curves_report(args.runs, args.out, png=not args.no_png)
    print(Path(paths["md"]).read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an animator (resumable; torchrun for several processes)",
                       description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    p.set_defaults(func=_run_train)

    p = sub.add_parser("export-weights", help="write an fp16 inference file from a training run",
                       description="Export the newest checkpoint of a run folder (or a checkpoint file) as an fp16 "
                                   ".safetensors file with its metadata (data, steps, GPU-minutes, training and CPU "
                                   "hours, losses, recipe, warm start, commit, and any --meta).")
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("out", help="output .safetensors path")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE",
                   help="add to the metadata (VALUE as JSON where it parses, else text; repeatable), e.g. "
                        "--meta recipe='...' --meta held_out_256='{\"l1\": 0.04}'; the commit is added by default")
    p.set_defaults(func=_run_export_weights)

    p = sub.add_parser("export-frames", help="pack a data split into one .npz frame archive",
                       description="Decode (and face-crop where needed) every video of a split at SIZE x SIZE and "
                                   "write one uint8 .npz archive that `facelab train --data` reads: a compact file "
                                   "to carry a prepared data set to a GPU machine.")
    p.add_argument("data", help="VoxCeleb-layout root or the shared data folder")
    p.add_argument("out", help="output .npz path")
    p.add_argument("--split", default="train")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--max-frames", type=int, help="at most this many frames per video")
    p.add_argument("--stride", type=int, default=1, help="keep every k-th frame")
    p.set_defaults(func=_run_export_frames)

    p = sub.add_parser("prepare-data", help="face-crop a data set into a VoxCeleb-layout folder of 256x256 mp4s",
                       description="Decode every video of the given splits, face-crop/resize to SIZE x SIZE, and write "
                                   "OUT/<split>/<name>.mp4 (near-lossless H.264): the VoxCeleb layout `facelab train` "
                                   "and the evaluation read, small enough to carry to a GPU machine.")
    p.add_argument("data", help="the shared data folder or a VoxCeleb-layout root")
    p.add_argument("out", help="output root")
    p.add_argument("--splits", default="train,test", help="comma-separated splits (default: train,test)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--crf", type=int, default=14, help="x264 constant rate factor (lower = closer to lossless)")
    p.add_argument("--max-frames", type=int, help="at most this many frames per video")
    p.set_defaults(func=_run_prepare_data)

    p = sub.add_parser("curves", help="learning curves of training runs (held-out L1/AKD vs CPU-hours, static line)",
                       description="Draw the held-out curves (curve.csv, written with --eval-every-minutes) of run "
                                   "folders on one CPU-hours axis: curves.html, curves.png, curves.md, curves.csv.")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-png", action="store_true", help="skip the PNG (needs kaleido + chromium)")
    p.set_defaults(func=_run_curves)


def main_train(argv: list[str] | None = None) -> int:
    """Entry of ``python -m lab.train`` (torchrun): the ``facelab train`` arguments."""
    p = argparse.ArgumentParser(prog="python -m lab.train", description=TRAIN_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p)
    args = p.parse_args(argv)
    try:
        return _run_train(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"lab.train: error: {e}", file=sys.stderr)
        return 2
