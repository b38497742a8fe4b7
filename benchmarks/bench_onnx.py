"""CPU latency of encoders and decoders in eager PyTorch and in ONNX Runtime, with ratios to FOMM (Table 1).

The paper's speed-ups (encoder 92×, decoder 3.7×; device unknown) come from a deployment engine, not eager
PyTorch, whose per-layer overhead dominates a 14.6 M-MAC encoder. This script exports each part with
:func:`lab.deploy.export.export_onnx` (checked against PyTorch) and times, in the same run and with the same thread
count, one 256×256 frame through: eager PyTorch (``torch.utils.benchmark``, as ``facelab efficiency``) and
ONNX Runtime's CPU provider (median of calls after warm-up). Weights are the models' own files when present,
else random (latency does not depend on the values).

Usage::

    .venv/bin/python benchmarks/bench_onnx.py [--models ultralight,fomm] [--threads 2] [--min-run-time 2]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from lab.core.animate import load_animator
    from lab.deploy.efficiency import measure_latency
    from lab.deploy.export import export_onnx, onnx_latency

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ultralight,fomm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-run-time", type=float, default=2.0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            model = load_animator(name).model.eval()
            for part in ("encoder", "decoder"):
                exp = export_onnx(model, part, Path(tmp) / f"{name}-{part}.onnx")
                graph_args = tuple(torch.from_numpy(a) for a in exp.inputs.values())
                if part == "encoder":
                    def fn(a=graph_args, m=model):
                        with torch.no_grad():
                            return m.extract_motion(a[0])
                else:
                    k = (len(graph_args) - 1) // 2
                    keys = [n.removeprefix("source_") for n in exp.input_names[1:1 + k]]

                    def fn(a=graph_args, m=model, keys=keys, k=k):
                        with torch.no_grad():
                            return m.render(m.encode_source(a[0]), dict(zip(keys, a[1:1 + k])),
                                            dict(zip(keys, a[1 + k:])))
                eager = measure_latency(fn, args.min_run_time, args.threads)
                ort = onnx_latency(exp, args.threads, args.min_run_time)
                rows.append((name, part, eager, ort, exp.max_abs_diff))
    ref = {part: (e, o) for name, part, e, o, _ in rows if name == "fomm"}
    print(f"CPU: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}")
    head = f"{'model':<12}{'part':<9}{'eager ms':>10}{'ORT ms':>10}{'ORT speed-up':>14}"
    head += f"{'FOMM/this eager':>17}{'FOMM/this ORT':>15}{'max|diff|':>11}"
    print(head)
    for name, part, e, o, d in rows:
        fe, fo = ref.get(part, (float("nan"), float("nan")))
        print(f"{name:<12}{part:<9}{e:>10.2f}{o:>10.2f}{e / o:>13.2f}x{fe / e:>16.2f}x{fo / o:>14.2f}x{d:>11.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
