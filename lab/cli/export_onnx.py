"""``facelab export-onnx``: an animator's encoder or decoder as an ONNX graph, checked with ONNX Runtime."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from lab.deploy.export import PARTS

    p = sub.add_parser(
        "export-onnx",
        help="export an animator's encoder (sender) or decoder (server) to ONNX, checked against PyTorch",
        description="Writes an opset-18 ONNX graph of the part (lab/deploy/export.py documents its inputs and "
                    "outputs), "
        "runs it with ONNX Runtime on an example and prints the largest difference from PyTorch.",
    )
    p.add_argument("--model", default="ultralight")
    p.add_argument("--part", default="encoder", choices=PARTS)
    p.add_argument("--checkpoint", default="default", help="weights path (default: the model's own file)")
    p.add_argument("--out", required=True, help="the .onnx file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lab.core.animate import load_animator
    from lab.deploy.export import export_onnx

    la = load_animator(args.model, args.checkpoint)
    res = export_onnx(la.model, args.part, args.out)
    print(f"{res.model} {res.part} ({la.weights}) -> {res.path} in {res.seconds:.1f} s")
    print(f"inputs: {', '.join(res.input_names)}; outputs: {', '.join(res.output_names)}")
    print(f"ONNX Runtime vs PyTorch on an example: max |diff| = {res.max_abs_diff:.2e}")
    return 0
