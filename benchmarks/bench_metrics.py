"""Throughput of every metric and backend on 256x256 frames on this machine's CPU.

Prints one row per metric/backend: frame pairs scored per second (a pair = one generated and one
ground-truth frame; landmark/identity backends run on both). Frames are real (the styletalk Obama clip of
the shared data set, ``FACELAB_DATA``) when present, else scikit-image's astronaut resized to 256x256; the
generated frame is the ground truth shifted by 4 px. Protocol backends run only when their weights are in
place; otherwise the row says "weights absent". With ``--random-weights`` they run instead on random weights
written under the real file names in a temporary folder (timing only: the compute does not depend on the
weights; the S3FD heads are set so that it finds one face per frame, as a real face would give).
Timing: ``torch.utils.benchmark.Timer.blocked_autorange``.

Usage::

    .venv/bin/python benchmarks/bench_metrics.py [--frames 8] [--min-run-time 2] [--random-weights]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.benchmark import Timer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLIP = "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4"


def load_frames(n: int) -> tuple[np.ndarray, str]:
    """``(n, 256, 256, 3)`` uint8 ground-truth frames and where they came from."""
    root = Path(os.environ.get("FACELAB_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if (root / CLIP).is_file():
        from datasets.video import read_frames

        frames = read_frames(root / CLIP, max_frames=n)
        if frames.shape[1:3] == (256, 256):
            return frames, f"{CLIP} (shared data)"
    from skimage import data
    from skimage.transform import resize

    img = (resize(data.astronaut(), (256, 256), anti_aliasing=True) * 255).round().astype(np.uint8)
    return np.stack([np.roll(img, i, axis=1) for i in range(n)]), "skimage astronaut (shared data absent)"


def time_pairs(fn: Callable[[], object], n: int, min_run_time: float) -> float:
    """Frame pairs per second of ``fn`` (which scores ``n`` pairs per call)."""
    import time

    t0 = time.perf_counter()
    fn()  # warm-up: lazy loads, first-call allocations, numba compilation
    timer = Timer(stmt="fn()", globals={"fn": fn})
    if time.perf_counter() - t0 > min_run_time:  # slow backends: one measured call is enough
        return n / timer.timeit(1).median
    return n / timer.blocked_autorange(min_run_time=min_run_time).median


def write_random_protocol_weights(folder: Path) -> None:
    """Random weights under the protocol file names in ``folder`` (for timing only)."""
    import torchvision
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    from metrics.backends.face_alignment_backend import FAN_FILE, S3FD_FILE
    from metrics.backends.lpips_alex import ALEXNET_FILE
    from metrics.backends.openface import OPENFACE_FILE
    from metrics.backends.openface_net import OpenFaceNN4Small2

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.alexnet().state_dict().items()}
    torch.save({k: torch.randn(sh) * 0.05 for k, sh in shapes.items()}, folder / ALEXNET_FILE)
    torch.save(OpenFaceNN4Small2().state_dict(), folder / OPENFACE_FILE)
    torch.save(FAN(4).state_dict(), folder / FAN_FILE)
    sd = s3fd().state_dict()
    for k in sd:  # zero box offsets; background everywhere but at stride 128 -> one face after NMS
        if "mbox" in k:
            sd[k] = torch.zeros_like(sd[k])
        if "mbox_conf.bias" in k:
            sd[k] = torch.full_like(sd[k], 10.0)
            sd[k][-1] = 10.0 if k.startswith("conv7_2") else -10.0
            if k.startswith("conv7_2"):
                sd[k][0] = -10.0
    torch.save(sd, folder / S3FD_FILE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8, help="frame pairs per call (default 8)")
    ap.add_argument("--min-run-time", type=float, default=2.0, help="seconds per measurement (default 2)")
    ap.add_argument("--random-weights", action="store_true",
                    help="time protocol backends whose weights are absent on random weights (timing only)")
    return ap.parse_args(argv)


class RandomWeights:
    """Random protocol weights in a temporary folder, written on first use (``--random-weights``)."""

    def __init__(self) -> None:
        self.tmp = None

    def make(self, make: Callable[[], Callable[[], object]]) -> Callable[[], object]:
        """``make()`` with ``TORCH_HOME`` and ``FACELAB_WEIGHTS`` pointing at the random weights (restored after)."""
        import tempfile

        if self.tmp is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="facelab-bench-")
            write_random_protocol_weights(Path(self.tmp.name) / "hub" / "checkpoints")
        saved = {k: os.environ.get(k) for k in ("TORCH_HOME", "FACELAB_WEIGHTS")}
        os.environ["TORCH_HOME"] = self.tmp.name
        os.environ["FACELAB_WEIGHTS"] = str(Path(self.tmp.name) / "hub" / "checkpoints")
        try:
            return make()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def cleanup(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def bench_row(metric: str, backend: str, make: Callable[[], Callable[[], object]], protocol: bool, n: int,
              min_run_time: float, random_weights: RandomWeights | None) -> tuple[str, str, str]:
    """Time one metric/backend and print its row; a protocol backend without weights says so, or runs on
    ``random_weights`` when given."""
    try:
        fn, note = make(), ""
    except FileNotFoundError as e:
        if not (protocol and random_weights is not None):
            row = (metric, backend, f"weights absent ({str(e).split(':')[0]})")
            print(f"{metric:<6} {backend:<32} {row[2]}", flush=True)
            return row
        fn, note = random_weights.make(make), "  (random weights: timing only)"
    row = (metric, backend, f"{time_pairs(fn, n, min_run_time):10.1f}{note}")
    print(f"{row[0]:<6} {row[1]:<32} {row[2]}", flush=True)
    return row


def metric_rows(pred: np.ndarray, gt: np.ndarray) -> list[tuple[str, str, Callable[[], Callable[[], object]], bool]]:
    """``(metric, backend, make, protocol)`` per row: ``make()`` loads the backend and returns the call to time."""
    from metrics.backends.dlib_backend import DlibBackend
    from metrics.functional import aed, akd, l1, lpips, psnr, ssim

    def make_lpips():
        from metrics.backends.lpips_alex import load_lpips_alex

        net, _ = load_lpips_alex()
        return lambda: lpips(pred, gt, net=net)

    # dlib: the detection cache is off so every call detects anew (the CLI shares detections of AKD and AED)
    def make_dlib():
        b = DlibBackend(cache_size=0)
        b.embeddings(gt[:1])  # load the ResNet before timing
        return b

    def make_fa():
        from metrics.backends.face_alignment_backend import FaceAlignmentBackend

        b = FaceAlignmentBackend()
        return lambda: akd(pred, gt, backend=b)

    def make_openface():
        from metrics.backends.openface import OpenFaceBackend

        b = OpenFaceBackend()
        return lambda: aed(pred, gt, backend=b)

    return [
        ("l1", "numpy", lambda: lambda: l1(pred, gt), False),
        ("psnr", "skimage", lambda: lambda: psnr(pred, gt), False),
        ("ssim", "skimage", lambda: lambda: ssim(pred, gt), False),
        ("lpips", "alex v0.1", make_lpips, True),
        ("akd", "dlib (HOG + 68 landmarks)", lambda: (lambda b: lambda: akd(pred, gt, backend=b))(make_dlib()), False),
        ("aed", "dlib (HOG + 68 + ResNet 128-D)", lambda: (lambda b: lambda: aed(pred, gt, backend=b))(make_dlib()),
         False),
        ("akd", "face-alignment (S3FD + 2DFAN4)", make_fa, True),
        ("aed", "openface (nn4.small2.v1)", make_openface, True),
    ]


def print_header(gt: np.ndarray, origin: str) -> None:
    print(f"# metrics throughput: {len(gt)} pairs of {gt.shape[2]}x{gt.shape[1]} frames from {origin}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at start")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gt, origin = load_frames(args.frames)
    pred = np.roll(gt, (4, 4), axis=(1, 2))
    todo = metric_rows(pred, gt)
    print_header(gt, origin)
    random_weights = RandomWeights() if args.random_weights else None
    print(f"{'metric':<6} {'backend':<32} frame pairs/s")
    for metric, backend, make, protocol in todo:
        bench_row(metric, backend, make, protocol, len(gt), args.min_run_time, random_weights)
    if random_weights is not None:
        random_weights.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
