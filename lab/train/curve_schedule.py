"""When a run scores its learning curve (:mod:`lab.train.curves`): every ``eval_every_minutes`` of training time.

The first point is the untrained (or resumed, or warm-started) model when curve.csv has no row yet, the next
one interval of training time after the last row's; a point is also taken at the last step and when a run
stops on its time budget. The static line (``curve_static.json``) is scored once per run folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab.train.checkpointing import Progress
from lab.train.curves import STATIC_FILE

__all__ = ["CurveSchedule", "curve_evaluator", "next_eval"]


def curve_evaluator(model: str, cfg: dict, data, eval_data, tp: dict):
    """The learning-curve evaluator of ``train_params.eval_every_minutes`` (None when off)."""
    if not tp.get("eval_every_minutes"):
        return None
    from lab.train.curves import CurveEvaluator

    src = eval_data if eval_data is not None else data
    if str(src).endswith(".npz") and eval_data is None:
        raise ValueError("eval_every_minutes with a .npz training archive needs eval_data (the held-out clips)")
    ev = tp.get("eval") or {}
    return CurveEvaluator(model, cfg, src, split=ev.get("split", "test"), clips=ev.get("clips"),
                          frames=int(ev.get("frames", 40)), stride=int(ev.get("stride", 4)),
                          size=int(ev.get("size") or cfg["dataset_params"]["frame_shape"][0]),
                          backend=ev.get("backend", "dlib"))


def next_eval(run_dir: Path, train_seconds: float, every_s: float) -> float:
    """Training time of the next evaluation: now if the curve has no row yet (the step-0 point), else one
    interval after the last row's."""
    from lab.train.curves import read_curve

    rows = read_curve(run_dir)
    if not rows:
        return train_seconds
    return 3600.0 * float(rows[-1]["train_hours"]) + every_s


class CurveSchedule:
    """A run's learning-curve evaluator and the training time of its next point."""

    def __init__(self, curve, run_dir: Path, tp: dict, train_seconds: float):
        self.curve = curve
        self.run_dir = run_dir
        self.every_s = 60.0 * float(tp.get("eval_every_minutes") or 0.0)
        self.next_eval = next_eval(run_dir, train_seconds, self.every_s)
        if not (run_dir / STATIC_FILE).is_file():
            from lab.train.curves import write_static

            write_static(run_dir, curve.score_static(), curve.description)

    @classmethod
    def open(cls, model: str, cfg: dict, data, eval_data, run_dir: Path, train_seconds: float) -> CurveSchedule | None:
        """The schedule of ``train_params.eval_every_minutes`` (None when off)."""
        tp = cfg["train_params"]
        curve = curve_evaluator(model, cfg, data, eval_data, tp)
        return cls(curve, run_dir, tp, train_seconds) if curve is not None else None

    def due(self, train_seconds: float) -> bool:
        return train_seconds >= self.next_eval

    def evaluate(self, animator, progress: Progress, samples_per_step: int) -> None:
        """Score ``animator`` now, append the row to curve.csv, and schedule the next point one interval on."""
        from lab.train.curves import append_curve_row

        step = progress.step
        row = self.curve.score(animator.state_dict())
        row.update(step=step, samples=step * samples_per_step, train_hours=round(progress.train_seconds / 3600, 6),
                   cpu_hours=round(progress.cpu_seconds / 3600, 6), wall_time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        append_curve_row(self.run_dir, row)
        print(f"facelab train: eval at step {step} ({row['train_hours']:.2f} h): L1 {row['l1']:.4f}  "
              f"AKD {row['akd']:.3f}  ({row['eval_seconds']:.0f} s)", flush=True)
        animator.train()
        self.next_eval = progress.train_seconds + self.every_s
