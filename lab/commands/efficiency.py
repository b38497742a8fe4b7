"""``facelab efficiency``: the paper's Table 1 (params, MACs, latency of encoder and decoder) for any models."""

from __future__ import annotations

import argparse
import json

PAPER_TABLE1 = {  # the paper's own numbers, printed beside ours for reference (device unknown)
    ("fomm", "encoder"): (14.21e6, 1.280e9, 55.54),
    ("ultralight", "encoder"): (0.16e6, 14.62e6, 0.60),
    ("fomm", "decoder"): (45.56e6, 120.70e9, 299.10),
    ("ultralight", "decoder"): (16.16e6, 31.42e9, 81.77),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "efficiency",
        help="params, MACs and CPU latency of encoder/decoder (Table 1)",
        description="Measure parameters, MACs (FlopCounterMode FLOPs / 2) and latency (torch.utils.benchmark, "
        "median) of each model's encoder (extract_motion on one frame), decoder (encode_source + render, the whole "
        "generator forward) and render (per frame with a cached source), with ratios to the reference model.",
    )
    p.add_argument("--models", default="ultralight,fomm", help="comma-separated animator names")
    p.add_argument("--reference", default="fomm", help="model the ratios are taken against")
    p.add_argument("--no-latency", action="store_true", help="count params and MACs only")
    p.add_argument("--threads", type=int, help="torch threads for latency (default: torch's)")
    p.add_argument("--min-run-time", type=float, default=2.0, help="seconds of timing per measurement")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from lab.efficiency import animator_costs, efficiency_table
    from lab.registry import create_animator

    if args.threads:
        torch.set_num_threads(args.threads)
    costs = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        costs += animator_costs(create_animator(name), latency=not args.no_latency, min_run_time=args.min_run_time)
    rows = efficiency_table(costs, reference=args.reference)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows, args.reference))
    return 0


def format_table(rows: list[dict], reference: str) -> str:
    head = f"{'model':<12} {'part':<8} {'params':>12} {'MACs':>10} {'GFLOPs':>8} {'latency ms':>11} " \
           f"{'params/ref':>10} {'MACs/ref':>9} {'x faster':>9}   paper Table 1 (params, 'FLOPs', ms)"
    lines = [head, "-" * len(head)]
    for r in rows:
        lat = f"{r['latency_ms']:.2f}" if r.get("latency_ms") else "-"
        paper = PAPER_TABLE1.get((r["model"], r["part"]))
        ptxt = f"{paper[0] / 1e6:.2f} M, {_si(paper[1])}, {paper[2]} ms" if paper else ""
        lines.append(
            f"{r['model']:<12} {r['part']:<8} {r['params']:>12,} {_si(r['macs']):>10} {r['flops'] / 1e9:>8.2f} "
            f"{lat:>11} {_fmt(r, 'params_ratio', '{:.3f}'):>10} {_fmt(r, 'macs_ratio', '{:.3f}'):>9} "
            f"{_fmt(r, 'x_faster', '{:.1f}x'):>9}   {ptxt}"
        )
    lines.append(f"MACs = FlopCounterMode FLOPs / 2 (conv/matmul only); ratios against '{reference}' in the same run; "
                 f"'decoder' = encode_source + render, 'render' = per frame with the source encoded once.")
    return "\n".join(lines)


def _fmt(row: dict, key: str, fmt: str) -> str:
    return fmt.format(row[key]) if row.get(key) is not None else "-"


def _si(x: float) -> str:
    return f"{x / 1e9:.2f} G" if x >= 1e9 else f"{x / 1e6:.2f} M"
