"""What rank 0 writes into a run folder besides checkpoints, and how a resume rewinds it.

* ``config.yaml`` (the model name and the run's config) and ``meta.json`` (world, device, data, objective,
  steps, precision, threads), rewritten by every (re)start;
* ``tb/``: TensorBoard scalars (``loss/<term>`` and ``lr`` every ``log_every`` steps) and image grids
  (``source|driving|prediction`` every ``image_every`` steps);
* ``log.csv``: ``step, loss, <term>...`` for every step, appended to across resumes; a resume first drops the
  rows (and curve.csv's) of steps after its checkpoint, logged by a killed run (:func:`rewind`);
* the tqdm bar.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
import yaml

__all__ = ["RunLog", "rewind", "truncate_log"]

LOG_FILE = "log.csv"


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows of steps after ``step`` (logged by a killed run after its last checkpoint)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    path.write_text("".join(keep))


def rewind(run_dir: Path, step: int) -> None:
    """Cut log.csv and curve.csv back to ``step`` (a run resumed from its checkpoint at ``step``)."""
    from lab.train.curves import truncate_curve

    truncate_log(run_dir / LOG_FILE, step)
    truncate_curve(run_dir, step)


class RunLog:
    """Rank 0's record of a run: config.yaml and meta.json at the start, then TensorBoard, log.csv and the bar."""

    def __init__(self, run_dir: Path, model: str, cfg: dict, meta: dict):
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": model, **cfg}, sort_keys=False))
        (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.tp = cfg["train_params"]
        self.writer = SummaryWriter(str(run_dir / "tb"))
        self.bar = None
        self._csv_f = None
        self._csv_w = None

    def open_bar(self, total: int, initial: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)

    def open_csv(self) -> None:
        self._csv_f = open(self.run_dir / LOG_FILE, "a", newline="")  # noqa: SIM115

    def record(self, step: int, total: int, losses: dict[str, float], lr: float, source: torch.Tensor,
               driving: torch.Tensor, generated: dict) -> None:
        """Step ``step`` (1-based) done with ``losses`` (the ranks' means) at learning rate ``lr``."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{sum(losses.values()):.4f}")
        if step % int(self.tp.get("log_every", 10)) == 0 or step == total:
            for k, v in losses.items():
                self.writer.add_scalar(f"loss/{k}", v, step)
            self.writer.add_scalar("lr", lr, step)
        if self._csv_w is None:
            self._csv_w = csv.writer(self._csv_f)
            if self._csv_f.tell() == 0:
                self._csv_w.writerow(["step", "loss", *sorted(losses)])
        total_loss = sum(losses.values())
        self._csv_w.writerow([step, f"{total_loss:.6f}", *(f"{losses[k]:.6f}" for k in sorted(losses))])
        self._csv_f.flush()
        if step % int(self.tp.get("image_every", 250)) == 0 or step == total:
            from lab.train.visual import training_grid

            self.writer.add_image("source|driving|prediction", training_grid(source, driving, generated), step)

    def close(self) -> None:
        """The bar, log.csv, TensorBoard, in that order."""
        if self.bar is not None:
            self.bar.close()
        if self._csv_f is not None:
            self._csv_f.close()
        self.writer.close()
