"""The app's Failures tab: the failure flags of a (source, driving) run and its gallery."""

from __future__ import annotations

import uuid
from pathlib import Path

from lab.ui.common import Job, UserInputError, loaded_model, output_dir, read_driving, read_inputs, round3

__all__ = ["NO_MODEL", "failures_intro", "failures"]

NO_MODEL = "(none: flag the inputs only)"


def failures_intro() -> str:
    return (Path(__file__).with_name("failures.md")).read_text()


def failures(source_path: str | None, driving_path: str | None, model: str, reconstruction: bool, crop: bool,
             max_frames: int, max_yaw: float, max_pose_diff: float, progress=None):
    """Failure flags of a (source, driving) run and its gallery (:mod:`lab.evaluation.failures`).

    Args:
        reconstruction: take the source from the driving clip's first frame (self-reenactment, with per-frame
            L1 against the driving frames), instead of the source image.

    Returns:
        (gallery ``[(png path, caption)]``, per-frame rows, summary markdown, failures.csv path)
    """
    from lab.core.animate import animate_frames
    from lab.evaluation.failure_gallery import gallery_items, write_failures
    from lab.evaluation.failures import FailureThresholds, analyse_failures

    job = Job(driving_path, *(() if reconstruction else (source_path,)), progress=progress)
    if reconstruction:
        driving, fps = read_driving(job, driving_path, crop, max_frames)
        source = driving[0]
    elif not source_path:
        raise UserInputError("choose a source image (or tick 'source = first driving frame')")
    else:
        source, driving, fps = read_inputs(job, source_path, driving_path, crop, max_frames)
    preds = None
    la = None
    if model and model != NO_MODEL:
        la = loaded_model(model)
        preds = animate_frames(la.model, source, driving, progress=job.progress, what=model)
    # a separate source image (another moment, maybe another person) makes the appearance score low by
    # construction: only pose and landmark changes count then
    th = FailureThresholds(max_yaw=float(max_yaw), max_pose_diff=float(max_pose_diff),
                           min_appearance_corr=FailureThresholds.min_appearance_corr if reconstruction else None)
    rep = analyse_failures(source, driving, predictions=preds, fps=fps, thresholds=th,
                           ground_truth=driving if reconstruction and preds is not None else None,
                           source_index=0 if reconstruction else None, video=Path(driving_path).stem,
                           progress=job.progress)
    items = gallery_items(rep, source, driving, predictions=preds, max_items=24, per_reason=6)
    out = write_failures(rep, items, output_dir() / f"failures-{uuid.uuid4().hex[:8]}")
    from lab.reports import read_gallery

    gallery = [(str(g.path), g.caption) for g in read_gallery(out / "gallery.json")]
    cols = ("frame", "failed", "reasons", "yaw", "pitch", "roll", "pose_diff", "landmark_disp", "appearance_corr",
            "l1")
    rows = [[round3(r.get(c)) for c in cols] for r in rep.rows]
    s = rep.summary
    status = (f"{s['frames']} frames: **{s['failed']} flagged** — "
              + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items() if k not in ("frames", "failed"))
              + f". Landmarks: {rep.backend}.")
    if la is not None and la.weights.startswith("random"):
        status += f"\n\n**{model} is randomly initialised** (its output is not meaningful): {la.note}"
    return gallery, rows, job.status(status), str(out / "failures.csv")
