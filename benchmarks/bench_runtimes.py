"""Encoder and render latency of ultralight and FOMM in every inference runtime and precision, side by side.

The same measurement as ``facelab efficiency --runtime all`` (:func:`lab.deploy.efficiency.runtime_costs`): each model
with its own weights (random, seeded, where none are found) is exported once (:mod:`lab.deploy.runtimes`,
cached), then one 256×256 frame is timed through eager PyTorch, ONNX Runtime and OpenVINO at fp32, bf16 (where
the runtime and the CPU have it) and int8 (NNCF, calibrated on training frames); medians of repeated calls
with a fixed thread count. Ratios: ours vs FOMM on the same runtime and precision, and vs FOMM in eager fp32
PyTorch; the last lines hold the fastest rows against issue 14's targets. ``--quality DATA`` also measures
each lossy mode's quality cost on the test split (:func:`lab.deploy.quality.quality_cost`; slow: dlib AKD).

Pause the training runs while timing (``bash scripts/pause_training.sh stop`` / ``cont``).

Usage::

    .venv/bin/python benchmarks/bench_runtimes.py [--models ultralight,fomm] [--threads 2] [--min-run-time 2]
        [--runtime all] [--precision all] [--json] [--quality ~/.cache/facelab/data/test-256.npz]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from lab.cli.efficiency import run_runtimes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ultralight,fomm")
    p.add_argument("--reference", default="fomm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-run-time", type=float, default=2.0)
    p.add_argument("--runtime", default="all", choices=("torch", "onnxruntime", "openvino", "all"))
    p.add_argument("--precision", default="all", choices=("fp32", "bf16", "int8", "all"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--quality", metavar="DATA", help="also measure the quality cost of each mode of the first model")
    p.add_argument("--record", action="store_true", help="with --quality: store the costs in lab/deploy/quality.json")
    p.add_argument("--no-latency", action="store_true", help="with --quality: skip the timing")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.json:
        print(f"CPU: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}")
    rc = 0 if args.no_latency else run_runtimes(args)
    if args.quality:
        from lab.core.animate import load_animator
        from lab.deploy.quality import quality_cost
        from lab.deploy.runtimes import RUNTIMES, supported_precisions

        la = load_animator(args.models.split(",")[0].strip())
        modes = [(rt, pr) for rt in RUNTIMES for pr, why in supported_precisions(rt).items() if why is None]
        rows = quality_cost(la.model, modes, args.quality, clips=16, threads=args.threads)
        if args.record:
            from lab.deploy.quality import record_costs

            record_costs(la.model, rows, {**quality_cost.description, "weights": la.weights})
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"\nquality on the held-out subset ({la.weights}), against torch fp32:")
            print(f"{'runtime':<12} {'prec':<5} {'L1':>8} {'AKD px':>7} {'L1 change':>10} {'|out - fp32|':>13}  label")
            for r in rows:
                print(f"{r['runtime']:<12} {r['precision']:<5} {r['l1']:>8.4f} {r['akd']:>7.2f} "
                      f"{100 * r['l1_change']:>+9.2f}% {r['l1_to_fp32']:>13.5f}  {'lossy' if r['lossy'] else 'kept'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
