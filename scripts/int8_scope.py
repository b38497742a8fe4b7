"""Find which ops of a model's render graph int8 keeps float (NNCF accuracy control) and record them.

    .venv/bin/python scripts/int8_scope.py [MODEL] [--runtime onnxruntime|openvino] [--record] [--max-drop 0.012]
        [--iterations 8] [--threads 1]

Loads MODEL (default ``ultralight``) with its default weights, exports its graphs (cached), runs
:func:`lab.deploy.int8_scope.search_scope` on the 64 training calibration pairs of
:func:`lab.deploy.quantize.calibration_pairs` and prints the reverted ops with the validation L1 (fp32, int8
everywhere, int8 with those ops float). ``--record`` stores them in ``lab/deploy/int8_scope.json``, which int8
mode (``wrap_animator(..., "int8")``) reads; then re-measure the quality costs
(``benchmarks/bench_runtimes.py --quality DATA --record --no-latency``). Tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    import torch

    from lab.core.animate import load_animator
    from lab.deploy.int8_scope import SCOPE_FILE, record_scope, search_scope
    from lab.deploy.runtimes import exported_graphs

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="ultralight")
    p.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "openvino"),
                   help="the runtime whose int8 the scope is for (each runs the quantised graph its own way)")
    p.add_argument("--record", action="store_true", help=f"store the result in {SCOPE_FILE}")
    p.add_argument("--max-drop", type=float, default=0.012, help="allowed relative rise of the validation L1")
    p.add_argument("--iterations", type=int, default=8, help="most ops reverted to float")
    p.add_argument("--ranking-subset", type=int, default=12, help="pairs each op is ranked on")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--revalidate", action="store_true",
                   help="no search: measure the validation L1s of the scope recorded for MODEL and RUNTIME (e.g. a "
                        "search recorded as partial) and, with --record, complete its record")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    la = load_animator(args.model)
    print(f"{args.model}: {la.weights}", flush=True)
    model = la.model.eval()
    if args.revalidate:
        return _revalidate(args, model)

    def found(scope: dict) -> None:
        """The search's result as soon as it ends (recorded at once with --record: the final validations that
        follow rebuild the model and must not lose a search of tens of minutes)."""
        print(f"search ended; reverted: {json.dumps({k: scope[k] for k in ('ignored', 'quantizers')})}", flush=True)
        if args.record:
            record_scope(args.model, args.runtime, {**scope, "partial": "validation pending"})

    result = search_scope(model, exported_graphs(model), args.runtime, max_drop=args.max_drop,
                          ranking_subset_size=args.ranking_subset, max_iterations=args.iterations,
                          threads=args.threads, progress=found)
    print(json.dumps(result, indent=1))
    print(f"validation L1 on {result['pairs']} training pairs: fp32 {result['fp32_l1']:.5f}, int8 everywhere "
          f"{result['int8_l1']:.5f} ({100 * (result['int8_l1'] / result['fp32_l1'] - 1):+.2f} %), with "
          f"{len(result['ignored'])} ops float {result['scoped_l1']:.5f} "
          f"({100 * (result['scoped_l1'] / result['fp32_l1'] - 1):+.2f} %); {result['seconds'] / 60:.1f} min")
    if args.record:
        record_scope(args.model, args.runtime, result)
        print(f"recorded in {SCOPE_FILE}")
    return 0


def _revalidate(args, model) -> int:
    from lab.deploy.int8_scope import SCOPE_FILE, record_scope, validate_scope
    from lab.deploy.runtimes import exported_graphs

    rec = json.loads(SCOPE_FILE.read_text()).get(args.model, {}).get(f"render/{args.runtime}")
    if not rec:
        print(f"no scope recorded for {args.model} in {args.runtime}", file=sys.stderr)
        return 1
    from lab.deploy.export_cache import weights_hash

    weights = f"{args.model}-{weights_hash(model)}"
    if rec.get("weights") not in (None, weights):
        print(f"note: the scope was searched on {rec['weights']}, these weights are {weights}", flush=True)
    l1 = validate_scope(model, exported_graphs(model), args.runtime, rec, threads=args.threads)
    print(f"validation L1 on {l1['pairs']} training pairs: fp32 {l1['fp32_l1']:.5f}, int8 everywhere "
          f"{l1['int8_l1']:.5f} ({100 * (l1['int8_l1'] / l1['fp32_l1'] - 1):+.2f} %), with "
          f"{len(rec['ignored'])} ops float {l1['scoped_l1']:.5f} "
          f"({100 * (l1['scoped_l1'] / l1['fp32_l1'] - 1):+.2f} %)")
    if args.record:
        rec = {k: v for k, v in rec.items() if k != "partial"}
        record_scope(args.model, args.runtime, {**rec, **l1, "runtime": args.runtime, "weights": weights})
        print(f"recorded in {SCOPE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
