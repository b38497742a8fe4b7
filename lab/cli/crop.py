"""``facelab crop``: face-crop a clip, frame folder or image to 256×256 PNG frames plus ``box.json``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

_FRAME_RE = re.compile(r"^\d{6}\.png$")


def register(sub: argparse._SubParsersAction) -> None:
    from datasets.crop import DEFAULT_MARGIN, DEFAULT_SIZE, MAX_DETECTIONS

    p = sub.add_parser(
        "crop",
        help="face-crop a video/image to square PNG frames",
        description="Detect the face on frames sampled over the clip (dlib HOG; the CNN as a fallback), take "
        "one square box for the whole clip (the face box enlarged by --margin on each side, kept inside the "
        "frame), and write every frame cropped and resized: OUT_DIR/000000.png, 000001.png, ... plus "
        "OUT_DIR/box.json (box in source pixels, source size, fps, frames written, detector, margin, the "
        "detections used). The box lets results be pasted back at full resolution "
        "(datasets.crop.paste_back).",
        epilog="Inputs: mp4/mov/m4v/webm/avi/mkv, png/jpg/jpeg/webp/bmp, or a folder of png/jpg frames. "
        "Example: facelab crop talk.mp4 out/talk --max-frames 250",
    )
    p.add_argument("input", metavar="INPUT", help="video file, image, or folder of frames")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help="side of the square output frames (default %(default)s)")
    p.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="space added on each side of the face box, in face-box sides (default %(default)s: the crop is 1.8x "
        "the dlib face box, whole head with some hair, like VoxCeleb crops)",
    )
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="crop only the first N frames (also lifts the 20000-frame limit)")
    p.add_argument("--detector", choices=("auto", "hog", "cnn", "none"), default="auto",
                   help="auto: HOG, CNN on a few frames if HOG finds nothing; none: centred square, no "
                   "detection (default %(default)s)")
    p.add_argument("--max-detections", type=int, default=MAX_DETECTIONS, metavar="K",
                   help="frames sampled for detection (default %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the NNNNNN.png frames and box.json already in OUT_DIR")
    p.set_defaults(func=run)


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out} is not empty (pass --overwrite to replace its frames)")
        for f in out.iterdir():
            if f.is_file() and (_FRAME_RE.match(f.name) or f.name == "box.json"):
                f.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    from datasets.crop import crop_media
    from datasets.video import write_frames

    if args.size < 8:
        raise ValueError(f"--size must be at least 8, got {args.size}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.margin < 0:
        raise ValueError(f"--margin must be >= 0, got {args.margin}")
    out = Path(args.out_dir)
    result = crop_media(args.input, size=args.size, margin=args.margin, max_frames=args.max_frames,
                        detector=args.detector, max_detections=max(1, args.max_detections))
    _prepare_out(out, args.overwrite)
    n = write_frames(out, result.iter_frames())
    meta = result.to_dict()
    meta["frames_written"] = n
    (out / "box.json").write_text(json.dumps(meta, indent=2) + "\n")
    w, h = result.source_size
    x0, y0, x1, y1 = result.box
    print(f"wrote {n} frames {args.size}x{args.size} to {out} (box {x0},{y0},{x1},{y1} of {w}x{h}, "
          f"detector {result.detector})")
    return 0
