"""``facelab evaluate``: reconstruction metrics (Table 2) or cross-identity metrics of models on a data split."""

from __future__ import annotations

import argparse

from lab.cli.options import job_options, load_animators, split_list


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="reconstruction metrics (Table 2) or cross-identity metrics of models on a data split; resumable",
        description="--protocol reconstruction (FOMM's): for every video of the split, source = frame 0, every "
        "frame is reconstructed with absolute motion and compared with itself; L1/AKD/AED pooled over all frames. "
        "Writes per_frame.csv (resumable), per_video.csv, summary.csv, table2.md and provenance.json to --out. "
        "--protocol cross-identity: the split's cross_identity pairs of pairs.csv animated with relative motion; "
        "identity distance to source/driving, pose and mouth error vs driving "
        "(lab/evaluation/cross_identity.py); writes "
        "per_frame_cross.csv, summary_cross.csv, table_cross.md.",
        parents=[job_options("static,ultralight,fomm", out_help="run folder (rerun to resume)",
                             max_frames_help="at most this many frames per video (a documented subset)")],
    )
    p.add_argument("--protocol", default="reconstruction", choices=("reconstruction", "cross-identity"))
    p.add_argument("--metrics", default="l1,akd,aed", help="comma-separated: l1,psnr,ssim,lpips,akd,aed")
    p.add_argument("--backend", default="dlib", help="AKD landmarks: dlib (offline) or face-alignment (protocol)")
    p.add_argument("--aed-backend", default="dlib", help="AED identity: dlib (offline) or openface (protocol)")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datasets.shared import shared_data_root
    from lab.evaluation.reconstruction import evaluate_reconstruction, iter_eval_videos, table2_markdown

    data = args.data or str(shared_data_root())
    animators = load_animators(args.models, args.checkpoint)
    if args.protocol == "cross-identity":
        return _cross(args, data, animators)
    metrics = split_list(args.metrics)
    res = evaluate_reconstruction(
        animators, iter_eval_videos(data, args.split, max_frames=args.max_frames), out_dir=args.out,
        metrics=metrics, backend=args.backend, aed_backend=args.aed_backend, batch_size=args.batch_size,
        data_description={"data": data, "split": args.split, "max_frames_per_video": args.max_frames},
    )
    print(table2_markdown(res.summary, metrics))
    print(f"metrics backends: AKD {args.backend}, AED {args.aed_backend}"
          + (" (offline; not the pose-evaluation convention)" if "dlib" in (args.backend, args.aed_backend) else ""))
    print(f"written to {res.out_dir}")
    return 0


def _cross(args: argparse.Namespace, data: str, animators: list) -> int:
    from lab.evaluation.cross_identity import cross_table_markdown, evaluate_cross_identity, iter_cross_pairs

    summary = evaluate_cross_identity(animators, iter_cross_pairs(data, args.split, max_frames=args.max_frames),
                                      out_dir=args.out, backend=args.backend, batch_size=args.batch_size)
    print(cross_table_markdown(summary))
    print(f"landmarks and identity: {args.backend}; written to {args.out}")
    return 0
