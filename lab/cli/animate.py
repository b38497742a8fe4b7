"""``facelab animate``: several models on a source image + driving clip (or on every clip of a folder), side by side."""

from __future__ import annotations

import argparse

from lab.cli.options import job_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "animate",
        help="animate a source with a driving clip by several models, side by side (one pair, or every clip "
        "of a data folder in self-reenactment)",
        description="One pair: SOURCE (image or clip: its first frame) and DRIVING (clip), face-cropped unless "
        "--no-crop (inputs already 256x256 are taken as crops), written to --out as side_by_side.mp4 (driving | "
        "models) plus metrics.csv (L1/PSNR/SSIM of each model against the driving frames) and one mp4 per model. "
        "A folder: --data DIR (shared data set, VoxCeleb layout, or 'demo'): every clip of --split reconstructed "
        "from its frame 0 (FOMM's protocol), one side-by-side mp4 per clip in --out.",
        parents=[job_options("static,ultralight", out_help="output folder", max_frames=100,
                             max_frames_help="at most this many driving frames", split_help="with --data: which split",
                             data_help="a folder of clips instead of one pair (shared data, VoxCeleb layout, "
                                       "or 'demo')")],
    )
    p.add_argument("source", nargs="?", help="source image (or clip: its first frame)")
    p.add_argument("driving", nargs="?", help="driving clip")
    p.add_argument("--max-videos", type=int, help="with --data: at most this many clips")
    p.add_argument("--relative", action="store_true", help="FOMM's animation mode (relative motion) instead of "
                   "absolute motion (reconstruction)")
    p.add_argument("--no-crop", action="store_true", help="the inputs are already face crops")
    p.add_argument("--fps", type=float, help="output frame rate (default: the driving clip's, else 25)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from datasets.video import write_video
    from lab.cli.options import load_animators, split_list
    from lab.core.animate import side_by_side
    from lab.core.progress import cli_progress
    from lab.evaluation.compare import run_models

    models = split_list(args.models)
    if not models:
        raise ValueError("--models is empty")
    loaded = {la.model.name: la for la in load_animators(args.models, args.checkpoint)}
    for m, la in loaded.items():
        if not la.trained:
            print(f"note: {m} is randomly initialised (its output is not meaningful): {la.note}")
    out = Path(args.out)
    rows = []
    for name, source, driving, fps in _pairs(args):
        with cli_progress() as progress:
            results = run_models(models, source, driving, relative=args.relative, loaded=loaded, progress=progress)
        stem = out / name if args.data else out
        grid = side_by_side([("driving", driving)] + [(r.model, r.frames) for r in results])
        write_video(Path(f"{stem}.mp4") if args.data else stem / "side_by_side.mp4", grid, fps=args.fps or fps,
                    crf=16)
        for r in results:
            if not args.data:
                write_video(out / f"{r.model}.mp4", r.frames, fps=args.fps or fps, crf=16)
            rows.append({"clip": name, "model": r.model, "weights": r.weights, "frames": len(r.frames),
                         "seconds": round(r.seconds, 3), **r.metrics})
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "metrics.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out} ({'one mp4 per clip' if args.data else 'side_by_side.mp4 + one mp4 per model'}, metrics.csv)")
    return 0


def _pairs(args: argparse.Namespace):
    """``(name, source (H, W, 3), driving (N, H, W, 3), fps)`` for one pair or every clip of a folder."""
    from pathlib import Path

    if args.data:
        if args.source or args.driving:
            raise ValueError("give either SOURCE DRIVING or --data, not both")
        from lab.reports.batch import batch_videos, safe_name

        for name, frames in batch_videos(args.data, args.split, args.max_videos, args.max_frames):
            yield safe_name(name), frames[0], frames, 25.0
        return
    if not (args.source and args.driving):
        raise ValueError("give SOURCE and DRIVING (or --data DIR)")
    from datasets.uploads import frames_used_note, is_face_crop, prepare_upload, upload_image, validate_upload

    crop = not args.no_crop
    source = upload_image(args.source, crop=crop and not is_face_crop(args.source))
    media = validate_upload(args.driving, max_frames=args.max_frames)
    clip = prepare_upload(media, crop=crop and not is_face_crop(media), max_frames=args.max_frames)
    frames = clip.read()
    used = frames_used_note(media, len(frames))
    if used:
        print(f"note: {used} (--max-frames {args.max_frames})")
    yield Path(args.driving).stem, source, frames, clip.fps or 25.0
