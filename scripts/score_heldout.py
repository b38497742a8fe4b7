"""Score weights on the learning curves' fixed held-out subset at any resolution (issue 11's shipping check).

    python scripts/score_heldout.py WEIGHTS [WEIGHTS ...] [--size 256] [--static] [--data DIR]

WEIGHTS: a training run folder (its newest checkpoint), a checkpoint ``.pt`` or an exported ``.safetensors``.
The subset and metrics are the trainer's (``lab.train.curves.CurveEvaluator``: 16 test clips, source = frame 0,
driving frames 4, 8, ..., 40; pooled L1 and AKD with the offline dlib backend, and the frames where dlib finds
no face in the prediction). A run trained at 128² scores here at 256², the shipped resolution. Prints one JSON
line per input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _weights(spec: str):
    """(model name, state_dict, run config or None, label) of a run folder, a checkpoint or a weights file."""
    from lab.core.checkpoint import safe_load

    p = Path(spec).expanduser()
    if p.is_dir():
        cks = sorted((p / "checkpoints").glob("step_*.pt"))
        if not cks:
            raise SystemExit(f"{p}: no checkpoints/step_*.pt")
        p = cks[-1]
    if p.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(p), "pt") as f:
            meta = json.loads(f.metadata().get("facelab", "{}"))
        return meta["model"], load_file(str(p)), None, f"{p} (step {meta.get('steps')})"
    ck = safe_load(p)
    return ck["model_name"], ck["model"], ck.get("config"), f"{p} (step {ck.get('step')})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--static", action="store_true", help="also score the static floor (the source repeated)")
    ap.add_argument("--data", default=os.environ.get("FACELAB_DATA", "../shared/data"))
    args = ap.parse_args(argv)

    from lab.core.registry import create_animator
    from lab.train.curves import CurveEvaluator

    evaluators: dict[str, CurveEvaluator] = {}
    for spec in args.weights:
        model, state, cfg, label = _weights(spec)
        if model not in evaluators:
            cfg = cfg or dict(create_animator(model).config)
            evaluators[model] = CurveEvaluator(model, cfg, args.data, size=args.size)
        ev = evaluators[model]
        # an inference file leaves out the training-only modules (discriminator): keep the evaluator's own
        state = {**ev._eval_animator().state_dict(), **state}
        row = ev.score(state)
        print(json.dumps({"weights": label, "model": model, "size": args.size, **row}), flush=True)
    if args.static:
        ev = next(iter(evaluators.values()))
        print(json.dumps({"weights": "static", "size": args.size, **ev.score_static()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
