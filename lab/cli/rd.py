"""``facelab rd``: rate–distortion of animators as codecs against H.264/H.265 on a data split, with BD-rate."""

from __future__ import annotations

import argparse
import itertools

from lab.cli.options import job_options

__all__ = ["register", "run"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from e


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``rd`` parser to ``sub`` (``set_defaults(func=run)``).

    Args:
        sub: the subparsers of the ``facelab`` parser.
    """
    p = sub.add_parser(
        "rd",
        help="rate-distortion of animators as codecs vs libx264/libx265 (JVET GFVC protocol), with BD-rate",
        description="For every video of the split: frame 0 is intra-coded at several CRFs (the quality levels), the "
        "motion of the other frames is closed-loop residual + exp-Golomb coded and rendered from the decoded "
        "reference; anchors are the codecs alone. Rate = reference + motion bits (kbps at --fps); PSNR/SSIM per "
        "frame, averaged per video then over videos. Writes rd.csv, rd_summary.csv, bd_rate.csv, rd.md and "
        "provenance.json to --out.",
        parents=[job_options("static,ultralight", out_help="output folder",
                             max_frames_help="at most this many frames per video (a documented subset)")],
    )
    p.add_argument("--codecs", default="libx264,libx265", help="anchors and reference codecs: libx264,libx265")
    p.add_argument("--max-videos", type=int, help="at most this many videos of the split")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate for the rates (the protocol's 25)")
    p.add_argument("--metrics", default="psnr,ssim", help="comma-separated: psnr,ssim,lpips (psnr is required)")
    p.add_argument("--quant-factor", type=float, default=64.0, help="motion quantisation factor (GFVC: 64)")
    p.add_argument("--ref-crfs", type=_floats, help="reference CRFs for every codec (default: per codec)")
    p.add_argument("--anchor-crfs", type=_floats, help="anchor CRFs for every codec (default: per codec)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="torch device of the models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``facelab rd``; prints the markdown tables and the output folder.

    Args:
        args: the parsed arguments.

    Returns:
        0 on success.
    """
    from datasets.shared import shared_data_root
    from lab.cli.options import load_animators, split_list
    from lab.evaluation.rate_distortion import rd_over_videos
    from lab.evaluation.rd_tables import rd_markdown
    from lab.evaluation.reconstruction import iter_eval_videos

    data = args.data or str(shared_data_root())
    codecs = split_list(args.codecs)
    metrics = split_list(args.metrics)
    if args.max_videos is not None and args.max_videos < 1:
        raise ValueError(f"--max-videos must be >= 1, got {args.max_videos}")
    loaded = load_animators(args.models, args.checkpoint)
    videos = iter_eval_videos(data, args.split, max_frames=args.max_frames)
    if args.max_videos is not None:
        videos = itertools.islice(videos, args.max_videos)
    res = rd_over_videos(
        loaded, videos, out_dir=args.out, codecs=codecs, fps=args.fps,
        ref_crfs={c: args.ref_crfs for c in codecs} if args.ref_crfs else None,
        anchor_crfs={c: args.anchor_crfs for c in codecs} if args.anchor_crfs else None,
        quant_factor=args.quant_factor, metrics=metrics, batch_size=args.batch_size, device=args.device,
        data_description={"data": data, "split": args.split, "max_frames_per_video": args.max_frames,
                          "max_videos": args.max_videos},
    )
    print(rd_markdown(res.summary, res.bd, metrics))
    untrained = sorted({r["model"] for r in res.rows if r["weights"] == "random init"})
    if untrained:
        print(f"randomly initialised (no weights found): {', '.join(untrained)}")
    print(f"written to {res.out_dir}")
    return 0
