"""Training throughput on this machine: steps/s and samples/s of the common trainer's step, side by side.

One run prints one table: for each model, frame size, precision and thread count, the median time of a
full training step (the model's own objective forward, backward, Adam step) on random frames, after warm-up
steps (the first steps of a shape set up kernels and are slow). Precision ``bf16`` is the trainer's
(:mod:`lab.train.precision`: networks under bf16 autocast, losses and weights fp32). At 128² the keypoint
detector and the dense motion see the same 64² view as at 256² (:func:`lab.train.curves.config_at_resolution`),
as in the CPU curriculum.

    python benchmarks/bench_train.py                        # ultralight + fomm, 128/256, fp32/bf16, 1/2 threads
    python benchmarks/bench_train.py --models ultralight --sizes 128 --threads 1 --steps 4

Pause training processes first (``kill -STOP``) or the figures measure the contention, not the model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def step_times(model: str, size: int, precision: str, threads: int, batch: int, steps: int, warmup: int) -> list[float]:
    from lab.core.registry import create_animator
    from lab.train.config import resolve_run_config
    from lab.train.curves import config_at_resolution
    from lab.train.optim import make_optimizer
    from lab.train.precision import autocast_networks, resolve_precision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = create_animator(model).config
    cfg = config_at_resolution(resolve_run_config(base, None, batch_size=batch), size)
    animator = create_animator(model, config=cfg)
    dtype, _ = resolve_precision(precision, torch.device("cpu"))
    autocast_networks([*animator.encoder_modules().values(), *animator.decoder_modules().values()], "cpu", dtype)
    objective = animator.training_objective(cfg["train_params"])
    gen = objective.generator
    params = [p for p in gen.parameters() if p.requires_grad]
    opt = make_optimizer([{"params": params, "lr": 1e-4}], cfg["train_params"])
    animator.train()
    src = torch.rand(batch, 3, size, size)
    drv = (src + 0.05 * torch.randn_like(src)).clamp(0, 1)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        losses, _ = gen(src, drv)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{model} {size}² {precision}: loss {float(loss)} at step {i}")
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="ultralight,fomm")
    p.add_argument("--sizes", default="128,256")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps per setting (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    from lab.train.precision import cpu_bf16_native

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_bf16_native()}; batch {args.batch_size}, median of {args.steps} steps after "
          f"{args.warmup} warm-up")
    rows = []
    header = f"| {'model':<10} | size | precision | threads | s/step | steps/s | samples/s | bf16 speed-up |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for model in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                fp32 = None
                for prec in args.precisions.split(","):
                    t = statistics.median(step_times(model, size, prec, threads, args.batch_size, args.steps,
                                                     args.warmup))
                    fp32 = t if prec == "fp32" else fp32
                    speed = f"{fp32 / t:.2f}x" if prec != "fp32" and fp32 else ""
                    rows.append((model, size, prec, threads, t))
                    print(f"| {model:<10} | {size:>4} | {prec:>9} | {threads:>7} | {t:6.2f} | {1 / t:7.2f} | "
                          f"{args.batch_size / t:9.2f} | {speed:>13} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
