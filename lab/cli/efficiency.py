"""``facelab efficiency``: the paper's Table 1 (params, MACs, latency of encoder and decoder) for any models."""

from __future__ import annotations

import argparse
import json

from lab.cli.options import split_list


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
    p.add_argument("--runtime", choices=("torch", "onnxruntime", "openvino", "all"),
                   help="time encoder and render (cached source) per 256² frame in this inference runtime (all: each "
                   "one), with the models' own weights, instead of Table 1 (lab/deploy/runtimes.py)")
    p.add_argument("--precision", default="all", choices=("fp32", "bf16", "int8", "all"),
                   help="with --runtime: precision (all: each one the runtime supports on this CPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from lab.core.registry import create_animator
    from lab.deploy.efficiency import animator_costs, efficiency_table

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.runtime:
        return run_runtimes(args)
    costs = []
    for name in split_list(args.models):
        costs += animator_costs(create_animator(name), latency=not args.no_latency, min_run_time=args.min_run_time)
    rows = efficiency_table(costs, reference=args.reference)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows, args.reference))
    return 0


def format_table(rows: list[dict], reference: str) -> str:
    from lab.reports.paper import PAPER_TABLE1  # the paper's own numbers, printed beside ours (device unknown)

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


def run_runtimes(args: argparse.Namespace) -> int:
    from lab.core.animate import load_animator
    from lab.deploy.efficiency import runtime_costs, runtime_table
    from lab.deploy.runtimes import RUNTIMES, supported_precisions

    runtimes = RUNTIMES if args.runtime == "all" else (args.runtime,)
    precisions = ("fp32", "bf16", "int8") if args.precision == "all" else (args.precision,)
    modes, skipped = [], []
    for rt in runtimes:
        support = supported_precisions(rt)
        for pr in precisions:
            (skipped.append(f"{rt} {pr}: {support[pr]}") if support[pr] else modes.append((rt, pr)))
    if not modes:
        raise ValueError("nothing to time: " + "; ".join(skipped))
    ref_modes = list(modes) if ("torch", "fp32") in modes else [("torch", "fp32"), *modes]
    rows, weights, failed = [], {}, []
    for name in split_list(args.models):
        la = load_animator(name)
        weights[name] = la.weights
        rows += runtime_costs(la.model, ref_modes if name == args.reference else modes, threads=args.threads,
                              min_run_time=args.min_run_time, failures=failed)
    table, summary = runtime_table(rows, reference=args.reference)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(format_runtime_table(table, summary, args.reference, weights, skipped + failed))
    return 1 if failed else 0


def format_runtime_table(rows: list[dict], summary: dict, reference: str, weights: dict, skipped: list[str]) -> str:
    from lab.deploy.efficiency import TARGETS

    head = f"{'model':<12} {'part':<8} {'runtime':<12} {'prec':<5} {'ms':>9} {'frames/s':>9} " \
           f"{'x vs ' + reference + ' same':>15} {'x vs ' + reference + ' eager fp32':>21}  quality"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<12} {r['part']:<8} {r['runtime']:<12} {r['precision']:<5} {r['ms']:>9.2f} "
                     f"{r['fps']:>9.1f} {_fmt(r, 'x_vs_ref_same', '{:.1f}x'):>15} "
                     f"{_fmt(r, 'x_vs_ref_eager', '{:.1f}x'):>21}  {r.get('quality') or '-'}")
    lines.append(f"per 256² frame, median of repeated calls, {rows[0]['threads']} threads; 'render' = per frame "
                 f"with the source state cached, 'decoder' = encode_source + render; weights: "
                 + ", ".join(f"{k} {v}" for k, v in weights.items()))
    for (model, part), best in summary.items():
        mode = f"{best['runtime']} {best['precision']}" + (f", {best['quality']}" if best.get("quality") else "")
        if part == "encoder":
            lines.append(f"fastest {model} encoder: {best['ms']:.2f} ms ({mode}) = "
                         f"{_fmt(best, 'x_vs_ref_eager', '{:.1f}x')} {reference} eager fp32 "
                         f"(target {TARGETS['encoder_x_vs_fomm_eager']:g}x), {_fmt(best, 'x_vs_ref_same', '{:.1f}x')} "
                         f"{reference} on {mode} (target {TARGETS['encoder_x_vs_fomm_same_runtime']:g}x)")
        else:
            lines.append(f"fastest {model} render: {best['ms']:.1f} ms ({mode}; "
                         f"target <= {TARGETS['render_ms']:g} ms), "
                         f"{_fmt(best, 'x_vs_ref_same', '{:.1f}x')} {reference} on {mode} "
                         f"(target {TARGETS['render_x_vs_fomm_same_runtime']:g}x)")
    lines.append("quality: kept / lossy = L1 within / over 2 % of fp32 PyTorch on the held-out subset "
                 "(lab/deploy/quality.json; '-' = not measured for these weights); the fastest rows are of kept modes")
    if skipped:
        lines.append("not run here: " + "; ".join(skipped))
    return "\n".join(lines)
