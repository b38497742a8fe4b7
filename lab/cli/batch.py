"""``facelab batch``: evaluate models on a folder of clips, flag failure cases, write the HTML/CSV report."""

from __future__ import annotations

import argparse

from lab.cli.options import job_options, split_list


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="evaluate + failure flags + report in one go, on a data split, a VoxCeleb-layout folder or 'demo'",
        description="Runs lab.reports.batch.run_batch: reconstruction metrics of every model on every clip (resumable "
        "per_frame.csv in --out), the failure flags and gallery of one model's predictions per clip "
        "(--out/failures/<clip>/), and the report (--out/report/report.html, CSV tables, PNG figures).",
        parents=[job_options("static,ultralight", out_help="run folder (rerun to resume)",
                             max_frames_help="at most this many frames per clip",
                             data_help="shared data folder, VoxCeleb-layout root, or 'demo' (default: $FACELAB_DATA)")],
    )
    p.add_argument("--metrics", default="l1,akd,aed", help="comma-separated: l1,psnr,ssim,lpips,akd,aed")
    p.add_argument("--failures-model", help="whose predictions the failure flags use (default: the first model; "
                   "'' to skip)")
    p.add_argument("--max-videos", type=int, help="at most this many clips")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the clips (frame-gap scores)")
    p.add_argument("--no-png", action="store_true", help="skip the PNG export of the figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datasets.shared import shared_data_root
    from lab.cli.options import load_animators
    from lab.reports.batch import batch_videos, run_batch

    data = args.data or str(shared_data_root())
    animators = load_animators(args.models, args.checkpoint)
    res = run_batch(animators, batch_videos(data, args.split, args.max_videos, args.max_frames), args.out,
                    metrics=split_list(args.metrics),
                    failures_model=args.failures_model, fps=args.fps, png=not args.no_png,
                    data_description={"data": data, "split": args.split, "max_videos": args.max_videos,
                                      "max_frames": args.max_frames})
    print((res.run_dir / "table2.md").read_text())
    print(f"failure analysis: {len(res.failure_dirs)} clip(s) in {res.run_dir / 'failures'}")
    print(f"report: {res.report.html}")
    if res.report.png_error:
        print(f"PNG figures missing: {res.report.png_error}")
    return 0
