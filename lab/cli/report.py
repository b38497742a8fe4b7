"""``facelab report``: Table 2, per-clip and per-pose-class tables, plots and one HTML file from run folders."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="tables (Table 2, per clip, per pose class), plots and an HTML report from run folders",
        description="Read the run folders of facelab evaluate (per_frame.csv, ...), the rate-distortion runs "
        "(rd.csv, rd_summary.csv, bd_rate.csv) and the failure runs (failures.csv, gallery.json), whichever exist, "
        "and write to --out: report.html (one self-contained file), table2.csv/.md, per_clip.csv, by_pose_class.csv "
        "(when the clips are in the shared set's MANIFEST.csv) and PNGs of the figures (kaleido, chromium).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (several are combined)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--reference-model", help="model the ratio columns are taken against (default: fomm if present)")
    p.add_argument("--title", default="facelab report", help="the HTML page's title")
    p.add_argument("--no-png", action="store_true", help="skip the PNG export of the figures")
    p.add_argument("--data", help="shared data folder for the pose-class join (default: the run's, $FACELAB_DATA)")
    p.add_argument("--training-runs", nargs="+", metavar="TRAIN_DIR", default=None,
                   help="training run folders (curve.csv, facelab train --eval-every-minutes) whose learning "
                        "curves the report shows: held-out L1/AKD against CPU-hours with the static line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.reports import load_runs, table2_text, write_report

    data = load_runs(args.runs)
    files = write_report(data, args.out, title=args.title, reference_model=args.reference_model,
                         png=not args.no_png, data_root=args.data,
                         training_runs=args.training_runs)
    if data.has_eval:
        print(table2_text(data))
    for name, path in files.tables.items():
        print(f"{name:<15} {path}")
    if files.pngs:
        print(f"{len(files.pngs)} figures as PNG in {files.out_dir / 'figures'}")
    elif files.png_error:
        print(f"no PNG figures: {files.png_error}")
    print(f"written to {files.html}")
    return 0
