"""A CPU run's batch, sized to this machine's memory before anything is allocated."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CPU_MB_PER_SAMPLE_256", "fit_cpu_batch", "mem_available_mb"]

#: peak training memory per sample at 256², measured (forward + backward of the model's own objective, fp32, one
#: thread, ru_maxrss at batch 2 minus batch 1): ultralight 660 MB, FOMM 437 MB; rounded up, scaled by pixels.
CPU_MB_PER_SAMPLE_256 = 700.0


def mem_available_mb() -> float | None:
    """``MemAvailable`` of ``/proc/meminfo`` in MB, or None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fit_cpu_batch(tp: dict, dp: dict, explicit: bool, rank: int) -> None:
    """Size a CPU run's batch to this machine's memory: a YAML's GPU batch (FOMM's 20-40) is lowered to what fits
    (with a log line); an explicit ``--batch-size`` that does not fit is refused before anything is allocated."""
    avail = mem_available_mb()
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
