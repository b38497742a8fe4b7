"""The measured quality cost of a runtime/precision mode against the fp32 PyTorch model.

FOMM's self-reenactment protocol on the held-out subset of :class:`lab.train.curves.CurveEvaluator` (test
clips × frames ``stride, 2·stride, …, frames``; source = frame 0, absolute motion, compared with the driving
frame itself): **L1** and **AKD** (offline dlib backend) of the mode's output and of the fp32 PyTorch output
on the same frames, plus the mean |mode − PyTorch fp32| of the rendered frames. A mode is kept as
lossless if its L1 worsens by at most :data:`L1_BUDGET` (2 %) relative to PyTorch fp32; otherwise it is
labelled lossy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["L1_BUDGET", "QUALITY_FILE", "quality_cost", "record_costs", "recorded_costs"]

L1_BUDGET = 0.02
#: measured costs, keyed by the weights hash (written by ``benchmarks/bench_runtimes.py --quality DATA --record``)
QUALITY_FILE = Path(__file__).resolve().parent / "quality.json"


def record_costs(animator, rows: list[dict], description: dict, path: str | os.PathLike = QUALITY_FILE) -> None:
    """Store :func:`quality_cost` rows for ``animator``'s weights in ``path`` (other weights' entries kept)."""
    from lab.deploy.runtimes import weights_hash

    p = Path(path)
    data = json.loads(p.read_text()) if p.is_file() else {}
    data[f"{animator.name}-{weights_hash(animator)}"] = {"subset": description, "modes": rows}
    p.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def recorded_costs(animator, path: str | os.PathLike = QUALITY_FILE) -> dict[tuple[str, str], dict]:
    """``{(runtime, precision): row}`` recorded for ``animator``'s weights (empty when none is); int8 rows
    measured with another quantisation recipe than today's (:func:`lab.deploy.quantize.recipe_id`) are left out."""
    from lab.deploy.quantize import recipe_id
    from lab.deploy.runtimes import weights_hash

    p = Path(path)
    if not p.is_file():
        return {}
    entry = json.loads(p.read_text()).get(f"{animator.name}-{weights_hash(animator)}") or {}
    return {(r["runtime"], r["precision"]): r for r in entry.get("modes", [])
            if r["precision"] != "int8" or r.get("recipe") == recipe_id(animator.name, r["runtime"])}


def quality_cost(animator, modes: list[tuple[str, str]], data: str | os.PathLike, clips: int | None = None,
                 frames: int = 40, stride: int = 4, threads: int | None = None, calibration=None) -> list[dict]:
    """Quality of each ``(runtime, precision)`` mode against fp32 PyTorch on the held-out subset.

    Args:
        animator: the trained PyTorch model (fp32 reference).
        modes: ``(runtime, precision)`` pairs (:func:`lab.deploy.runtimes.wrap_animator` arguments).
        data: the shared data folder (its ``test`` split) or a ``.npz`` archive of the test split.
        clips, frames, stride: the subset (:class:`~lab.train.curves.CurveEvaluator`).
        calibration: int8 calibration (default: training frames).

    Returns:
        One row per mode and one for ``torch fp32`` first: ``runtime``, ``precision``, ``l1``, ``akd``,
        ``akd_skipped``, ``frames``, ``l1_to_fp32`` (mean |output − fp32 output| in [0, 1] units),
        ``l1_change`` (relative change of L1 vs fp32), ``akd_change``, ``lossy`` (``l1_change > L1_BUDGET``);
        int8 rows also ``recipe`` (:func:`lab.deploy.quantize.recipe_id`).
    """
    import torch

    from lab.deploy.runtimes import wrap_animator
    from lab.evaluation.reconstruction import reconstruct
    from lab.train.curves import CurveEvaluator

    ev = CurveEvaluator(animator.name, animator.config, data, split="test", clips=clips, frames=frames,
                        stride=stride, size=animator.input_size[0])
    outputs: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def scorer(model, key):
        def render(src, drv):
            pred = reconstruct(model, np.concatenate([src[None], drv]))[1:]
            outputs.setdefault(key, {})[str(len(outputs.get(key, {})))] = pred
            return pred
        return render

    rows = []
    ref_key = ("torch", "fp32")
    for runtime, precision in [ref_key] + [m for m in modes if m != ref_key]:
        model = animator if (runtime, precision) == ref_key else wrap_animator(
            animator, runtime, precision, threads, calibration=calibration)
        with torch.inference_mode():
            score = ev.score_frames(scorer(model, (runtime, precision)))
        rows.append({"runtime": runtime, "precision": precision, **score})
        if precision == "int8":
            from lab.deploy.quantize import recipe_id

            rows[-1]["recipe"] = recipe_id(animator.name, runtime)
    ref = rows[0]
    for r in rows:
        got, want = outputs[(r["runtime"], r["precision"])], outputs[ref_key]
        r["l1_to_fp32"] = float(np.mean([np.abs(got[k].astype(np.float64) - want[k]).mean() / 255 for k in want]))
        r["l1_change"] = r["l1"] / ref["l1"] - 1
        r["akd_change"] = r["akd"] / ref["akd"] - 1 if ref["akd"] else float("nan")
        r["lossy"] = bool(r["l1_change"] > L1_BUDGET)
    quality_cost.description = ev.description
    return rows
