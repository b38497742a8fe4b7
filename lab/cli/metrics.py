"""``facelab metrics``: L1, PSNR, SSIM, LPIPS, AKD, AED of a generated video against its ground truth.

Reads two videos or frame folders of equal length with :func:`datasets.video.open_media`, scores them frame by
frame with :class:`metrics.MetricCollection`, and prints a summary table, or with ``--json`` one JSON document
``{"frames": [...], "summary": {...}, "provenance": {...}}``. Every number is labelled with the backend that
made it: ``--backend dlib`` / ``--aed-backend dlib`` (the offline default) are **not** the FOMM/pose-evaluation
convention; ``face-alignment`` / ``openface`` are, and need their weight files placed by hand.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

ALL_METRICS = ("l1", "psnr", "ssim", "lpips", "akd", "aed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="score a generated video against its ground truth (L1, PSNR, SSIM, LPIPS, AKD, AED)",
        description="Score PRED against GT frame by frame. AKD/AED follow pose-evaluation only with "
        "--backend face-alignment / --aed-backend openface (weights placed by hand in "
        "$FACELAB_WEIGHTS or $TORCH_HOME/hub/checkpoints); the offline dlib backend is labelled as "
        "not comparable with papers. Values are pooled over frames; skipped frames (no face) are counted. "
        "In --json output a skipped value is null and an infinite PSNR (identical frames) is \"inf\".",
    )
    p.add_argument("pred", help="generated video or folder of frames")
    p.add_argument("gt", help="ground-truth video or folder of frames (same length and frame size)")
    p.add_argument("--backend", default="dlib", choices=("dlib", "face-alignment"),
                   help="landmark backend for AKD (default: dlib, offline)")
    p.add_argument("--aed-backend", default="dlib", choices=("dlib", "openface"),
                   help="identity backend for AED (default: dlib, offline)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated subset of " + ",".join(ALL_METRICS) + " (default: all; lpips only "
                   "when its AlexNet weights are present)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    p.add_argument("--max-frames", type=int, default=None,
                   help="score only the first N frames (then PRED and GT may differ in length)")
    p.add_argument("--csv", default=None, metavar="PATH",
                   help="also write per-frame values with provenance columns to PATH (+ PATH.provenance.json)")
    p.add_argument("--batch-size", type=int, default=16, help="frames scored per batch (default 16)")
    p.set_defaults(func=run)


def _parse_metrics(spec: str | None) -> tuple[list[str], str | None]:
    """Metric names to run and a note for stderr (LPIPS left out of the default set when unavailable)."""
    if spec is None:
        from lab.core.weights import weights_dirs
        from metrics.backends.lpips_alex import ALEXNET_FILE

        names = list(ALL_METRICS)
        dirs = weights_dirs()
        if not any((d / ALEXNET_FILE).is_file() for d in dirs):
            names.remove("lpips")
            return names, (f"note: lpips left out: {ALEXNET_FILE} not found in {' or '.join(map(str, dirs))} (put "
                           "it there to score LPIPS, or ask for it with --metrics)")
        return names, None
    names = [m.strip().lower() for m in spec.split(",") if m.strip()]
    bad = [m for m in names if m not in ALL_METRICS]
    if bad or not names:
        raise ValueError(f"--metrics must be a comma-separated subset of {','.join(ALL_METRICS)}, got {spec!r}")
    return list(dict.fromkeys(names)), None


def _open(path: str, max_frames: int | None) -> Any:
    from datasets.video import open_media

    return open_media(path, max_frames=max_frames)


def _paired_batches(pred: Any, gt: Any, n: int, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(B, H, W, 3)`` uint8 batches of the first ``n`` frames of both media in lockstep.

    Raises:
        DataError: a medium yields fewer than ``n`` frames (decoding stopped early).
    """
    from datasets.errors import DataError
    from datasets.video import DataWarning

    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # a clip shorter than its header says is an error here
        try:
            pairs = zip(pred.iter_frames(0, n), gt.iter_frames(0, n))
            while chunk := list(itertools.islice(pairs, batch_size)):
                done += len(chunk)
                yield np.stack([c[0] for c in chunk]), np.stack([c[1] for c in chunk])
        except DataWarning as w:
            raise DataError(str(w)) from None
    if done != n:
        raise DataError(f"decoding stopped after {done} of {n} frames of {pred.path} / {gt.path}")


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        return "inf" if math.isinf(x) else f"{x:.4f}"
    return str(x)


def _print_table(report: Any) -> None:
    header = ("metric", "value", "frames", "skipped (no face gen/gt)", "how (backend)")
    rows = []
    for name, s in report.summary.items():
        arrow = "↑" if s["higher_is_better"] else "↓"
        unit = f" {s['unit']}" if s["unit"] else ""
        skipped = f"{s['skipped_no_face_pred']} / {s['skipped_no_face_gt']}" if name in ("akd", "aed") else "-"
        rows.append((f"{name} {arrow}", _fmt(s["value"]) + unit, f"{s['frames_used']}/{s['frames']}", skipped,
                     s["backend"]))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[4]
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    prov = report.provenance
    size = "x".join(str(v) for v in prov["image_size"][::-1]) if prov.get("image_size") else "?"
    print(f"\nfacelab {prov['facelab_version']}; {prov['frames']} frames of {size} (W x H); values pooled over "
          "frames; --json for per-frame values and weight hashes")


def run(args: argparse.Namespace) -> int:
    from metrics import MetricCollection

    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    names, note = _parse_metrics(args.metrics)
    pred, gt = _open(args.pred, args.max_frames), _open(args.gt, args.max_frames)
    if args.max_frames is None and len(pred) != len(gt):
        raise ValueError(
            f"PRED has {len(pred)} frames but GT has {len(gt)}: they must have equal length "
            "(or pass --max-frames N to score the first N)"
        )
    if (pred.info.width, pred.info.height) != (gt.info.width, gt.info.height):
        raise ValueError(
            f"frame sizes differ: PRED is {pred.info.width}x{pred.info.height}, GT is "
            f"{gt.info.width}x{gt.info.height}; resize or crop them to the same size first"
        )
    n = min(len(pred), len(gt))
    # loads the backends (a missing weight file fails here, before any decoding)
    collection = MetricCollection(names, backend=args.backend, aed_backend=args.aed_backend)
    if note:
        print(note, file=sys.stderr)
    for bp, bg in _paired_batches(pred, gt, n, args.batch_size):
        collection.update(bp, bg, video=str(pred.path.name))
    report = collection.report(inputs={"pred": str(pred.path), "gt": str(gt.path)})
    if args.csv:
        report.to_csv(args.csv)
    if args.json:
        print(report.to_json())
    else:
        _print_table(report)
    return 0
