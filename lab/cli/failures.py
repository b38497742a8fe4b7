"""``facelab failures``: flag the paper's failure cases per driving frame and write a gallery of the worst ones."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``failures`` subcommand to ``sub``."""
    p = sub.add_parser(
        "failures",
        help="flag large pose / weak source-driving correlation / no face / gate rejections per frame, with a gallery",
        description="For every driving frame: large head pose (yaw/pitch/roll by solvePnP of 68 dlib landmarks), "
        "weak correlation with the source (pose difference, landmark displacement, face-box correlation, frame "
        "gap), no face, and whether the sender's quality gate would drop it; with --model, the model animates the "
        "source and the predictions are checked too (per-frame L1 when SOURCE is DRIVING: reconstruction). "
        "Writes failures.csv, summary.json, gallery.json and one PNG per gallery item (source | driving | "
        "prediction) to --out. See lab/evaluation/failures.py for the scores and thresholds.",
        epilog="Example: facelab failures clip.mp4 clip.mp4 --out runs/fail --model fomm --max-frames 100 "
        "(reconstruction: source = frame --source-frame of the clip)",
    )
    p.add_argument("source", metavar="SOURCE", help="source image, or a clip (frame --source-frame is used)")
    p.add_argument("driving", metavar="DRIVING", help="driving clip, frame folder or image")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--model", help="animate with this registered animator (see facelab models)")
    p.add_argument("--checkpoint", help="weights for --model (default: the model's own file when found)")
    p.add_argument("--relative", action="store_true",
                   help="relative motion (FOMM's animate mode) instead of absolute (reconstruction)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="use only the first N driving frames")
    p.add_argument("--source-frame", type=int, default=0, metavar="K",
                   help="frame of a SOURCE clip used as the source (default %(default)s)")
    p.add_argument("--crop", action=argparse.BooleanOptionalAction, default=True,
                   help="face-crop inputs (one box per clip); inputs already 256x256 are taken as crops "
                   "(default: crop)")
    p.add_argument("--size", type=int, default=256, help="side of the frames analysed (default %(default)s; "
                   "the model's input size with --model)")
    p.add_argument("--max-items", type=int, default=24, help="gallery items in all (default %(default)s)")
    p.add_argument("--per-reason", type=int, default=6, help="gallery items per reason (default %(default)s)")
    p.add_argument("--backend", default="dlib", help="landmark backend: dlib (offline) or face-alignment")
    p.add_argument("--no-appearance", action="store_true",
                   help="leave the face-box correlation out of the weak-correlation rule (cross-identity runs)")
    p.set_defaults(func=run)


def _read(path: str, size: int, crop: bool, max_frames: int | None, say_used: bool = False):
    """Frames ``(N, size, size, 3)`` of a clip or image, face-cropped like the app does, and its fps
    (``say_used``: print ``note: used N of M frames`` when ``max_frames`` cut the clip)."""
    from datasets.crop import crop_media
    from datasets.uploads import frames_used_note
    from datasets.video import open_media

    media = open_media(path, max_frames=max_frames)
    already = (media.info.width, media.info.height) == (size, size)
    result = crop_media(media, size=size, detector="auto" if crop and not already else "none")
    frames = result.read()
    used = frames_used_note(media, len(frames)) if say_used else None
    if used:
        print(f"note: {used} (--max-frames {max_frames})")
    return frames, (media.info.fps or None)


def run(args: argparse.Namespace) -> int:
    """Run the analysis and write the report; returns the exit code."""
    from dataclasses import replace

    from lab.core.progress import cli_progress
    from lab.evaluation.failure_gallery import gallery_items, write_failures
    from lab.evaluation.failures import FailureThresholds, analyse_failures

    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.source_frame < 0:
        raise ValueError(f"--source-frame must be >= 0, got {args.source_frame}")
    size = args.size
    loaded = None
    if args.model:
        from lab.core.animate import load_animator

        loaded = load_animator(args.model, args.checkpoint or "default")
        h, w = loaded.model.input_size
        if h != w:
            raise ValueError(f"{args.model} takes {w}x{h} frames; failures works on square crops")
        size = h
        if not loaded.trained:
            print(f"warning: {args.model} is randomly initialised; its predictions are not meaningful. {loaded.note}")
    if size < 32:
        raise ValueError(f"--size must be at least 32, got {size}")

    reconstruction = Path(args.source).resolve() == Path(args.driving).resolve()
    driving, fps = _read(args.driving, size, args.crop, args.max_frames, say_used=True)
    if reconstruction:
        if args.source_frame >= len(driving):
            raise ValueError(f"--source-frame {args.source_frame} is past the {len(driving)} frames read")
        source, source_index = driving[args.source_frame], args.source_frame
    else:
        frames, _ = _read(args.source, size, args.crop, args.source_frame + 1)
        if args.source_frame >= len(frames):
            raise ValueError(f"--source-frame {args.source_frame}: {args.source} has {len(frames)} frames")
        source, source_index = frames[args.source_frame], None

    progress = cli_progress()
    predictions = None
    if loaded is not None:
        from lab.core.animate import animate_frames

        predictions = animate_frames(loaded.model, source, driving, relative=args.relative, progress=progress,
                                     what=args.model)

    thresholds = FailureThresholds()
    if args.no_appearance:
        thresholds = replace(thresholds, min_appearance_corr=None)
    video = Path(args.driving).name
    with progress:
        report = analyse_failures(source, driving, predictions, fps=fps, thresholds=thresholds, backend=args.backend,
                                  ground_truth=driving if reconstruction and predictions is not None else None,
                                  source_index=source_index, video=video, progress=progress)
    items = gallery_items(report, source, driving, predictions, max_items=args.max_items,
                          per_reason=args.per_reason)
    out = write_failures(report, items, args.out)
    s = report.summary
    counts = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("frames", "failed"))
    print(f"{video}: {s['failed']} of {s['frames']} frames flagged ({counts}); landmarks: {report.backend}")
    if loaded is not None:
        print(f"model {args.model} ({loaded.weights}), {'relative' if args.relative else 'absolute'} motion")
    print(f"wrote failures.csv, summary.json, gallery.json and {len(items)} PNGs to {out}")
    return 0
