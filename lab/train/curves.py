"""Learning curves: score a training run on a fixed subset of the test split at regular training-time intervals.

Every ``train_params.eval_every_minutes`` of *training* time (evaluation time is not counted), the trainer
copies its weights into an inference copy of the model at the evaluation resolution and scores
self-reenactment on a fixed subset of held-out clips (FOMM's protocol: source = frame 0, absolute motion,
compared with the driving frame itself): **L1** and **AKD** (offline dlib backend). Rows go to
``RUN_DIR/curve.csv`` with the step, samples seen, training hours and CPU-hours, so two runs trained side by
side (``scripts/cpu_train.sh``) draw comparable curves; ``static`` (the source frame repeated) is scored
once on the same frames and written as ``RUN_DIR/curve_static.json``: the horizontal line every model must
get under.

The subset is ``clips`` test clips (all of them by default) × the frames ``stride, 2·stride, …, frames``
(frame 0 is the source; with the defaults 10 frames of each clip's first 1.6 s at 25 fps), decoded and
face-cropped once at ``size``².
"""

from __future__ import annotations

import copy
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["config_at_resolution", "CurveEvaluator", "read_curve", "CURVE_FILE", "STATIC_FILE"]

CURVE_FILE = "curve.csv"
STATIC_FILE = "curve_static.json"
COLUMNS = ("step", "samples", "train_hours", "cpu_hours", "l1", "akd", "akd_skipped", "frames", "eval_seconds",
           "wall_time")


def config_at_resolution(cfg: dict, size: int) -> dict:
    """``cfg`` for ``size``² frames, with the keypoint detector and the dense motion seeing the same view as before.

    FOMM-layout configs downscale the frame by ``kp_detector_params.scale_factor`` and
    ``generator_params.dense_motion_params.scale_factor`` (0.25 at 256²: both see 64²). A network trained at
    one frame size then runs at another on the same 64² views (only the generator's encoder/decoder change
    resolution): the scale factors are rescaled here, e.g. 0.5 at 128².
    """
    out = copy.deepcopy(cfg)
    dp = out.setdefault("dataset_params", {})
    old = int((dp.get("frame_shape") or [256])[0])
    dp["frame_shape"] = [int(size), int(size), 3]
    mp = out.get("model_params") or {}
    sections = [mp.get("kp_detector_params"), (mp.get("generator_params") or {}).get("dense_motion_params")]
    for sec in sections:
        if sec is not None and "scale_factor" in sec:
            view = float(sec["scale_factor"]) * old
            sf = view / size
            if sf > 1 or abs(1 / sf - round(1 / sf)) > 1e-6:
                raise ValueError(f"a {view:g}² view of {size}² frames needs scale factor {sf:g}, not 1/integer")
            sec["scale_factor"] = sf
    return out


class CurveEvaluator:
    """Scores a model's weights on the fixed held-out subset (see the module docstring).

    Args:
        model: registered animator name (the run's).
        run_config: the run's resolved config (weights are copied into ``config_at_resolution(run_config, size)``).
        data: the shared data folder, a VoxCeleb-layout root or a ``.npz`` archive of the eval split.
        split: the held-out split.
        clips: use the first N clips (sorted by name); None = all.
        frames: last driving frame index; ``stride``: every k-th frame from ``stride`` on.
        size: evaluation frame size (the trainer uses the run's own frame size).
        backend: landmark backend of AKD.
    """

    def __init__(self, model: str, run_config: dict, data: str | os.PathLike, split: str = "test",
                 clips: int | None = None, frames: int = 40, stride: int = 4, size: int = 256,
                 backend: str = "dlib") -> None:
        from datasets.frames import load_videos

        videos = load_videos(data, split=split, frame_shape=(size, size, 3), max_frames_per_video=frames + 1)
        videos = sorted(videos, key=lambda v: v.name)[: clips or None]
        idx = np.arange(stride, frames + 1, stride)
        self.clips = [(v.name, v.frames[0], v.frames[idx[idx < len(v.frames)]]) for v in videos]
        self.model = model
        self.size = int(size)
        self.config = config_at_resolution(run_config, size)
        self.backend_name = backend
        self._backend = None
        self.description = {"data": str(data), "split": split, "clips": len(self.clips), "frames": frames,
                            "stride": stride, "size": self.size, "akd_backend": backend,
                            "driving_frames": int(sum(len(d) for _, _, d in self.clips))}
        self._animator = None

    def _landmarks_backend(self):
        if self._backend is None:
            from metrics.backends import get_landmark_backend

            self._backend = get_landmark_backend(self.backend_name)
            if hasattr(self._backend, "_cache_size"):  # keep the ground truth's detections across evaluations
                self._backend._cache_size = max(self._backend._cache_size, 4 * self.description["driving_frames"])
        return self._backend

    def _eval_animator(self):
        if self._animator is None:
            from lab.core.registry import create_animator

            self._animator = create_animator(self.model, config=self.config)
        return self._animator

    def score_frames(self, render) -> dict:
        """Pooled L1 and AKD of ``render(source (H,W,3), driving (N,H,W,3)) -> (N,H,W,3)`` uint8 over the subset."""
        from metrics.collection import MetricCollection

        col = MetricCollection(("l1", "akd"), backend=self._landmarks_backend())
        t0 = time.perf_counter()
        for name, src, drv in self.clips:
            pred = render(src, drv)
            col.update(pred, drv, video=name)
        summary = {n: m.summary() for n, m in col.metrics.items()}
        values = col.compute()
        akd = summary["akd"]
        return {"l1": float(values["l1"]), "akd": float(values["akd"]),
                "akd_skipped": int(akd["frames"] - akd["frames_used"]),
                "frames": self.description["driving_frames"], "eval_seconds": round(time.perf_counter() - t0, 1)}

    def score(self, state_dict) -> dict:
        """Score weights (a state_dict of the run's model) at the evaluation resolution, in fp32."""
        import torch

        from lab.core.checkpoint import load_state_dict_strict
        from lab.evaluation.reconstruction import reconstruct

        animator = self._eval_animator()
        load_state_dict_strict(animator, {k: v.detach().float() if v.is_floating_point() else v
                                          for k, v in state_dict.items()}, what="curve evaluation")
        animator.eval()
        with torch.inference_mode():
            return self.score_frames(lambda src, drv: reconstruct(animator, np.concatenate([src[None], drv]))[1:])

    def score_static(self) -> dict:
        return self.score_frames(lambda src, drv: np.repeat(src[None], len(drv), axis=0))


def append_curve_row(run_dir: Path, row: dict) -> None:
    path = Path(run_dir) / CURVE_FILE
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def truncate_curve(run_dir: Path, step: int) -> None:
    """Drop curve rows after ``step`` (written by a killed run after its last checkpoint)."""
    path = Path(run_dir) / CURVE_FILE
    if not path.is_file():
        return
    rows = read_curve(run_dir)
    keep = [r for r in rows if int(r["step"]) <= step]
    if len(keep) != len(rows):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(keep)


def read_curve(run_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``RUN_DIR/curve.csv`` (numbers as floats; empty when absent)."""
    path = Path(run_dir) / CURVE_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (float(v) if v not in ("", None) and k != "wall_time" else v) for k, v in r.items()} for r in rows]


def write_static(run_dir: Path, row: dict, description: dict) -> None:
    (Path(run_dir) / STATIC_FILE).write_text(json.dumps({"static": row, "subset": description}, indent=2))
