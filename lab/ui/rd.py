"""The app's Rate–distortion tab: animators as codecs against x264/x265 on one clip."""

from __future__ import annotations

import uuid
from pathlib import Path

from lab.ui.common import Job, UserInputError, loaded_model, output_dir, read_driving, round3

__all__ = ["rd_intro", "rate_distortion"]


def rd_intro() -> str:
    return (Path(__file__).with_name("rd.md")).read_text()


def rate_distortion(clip_path: str | None, models: list[str] | None, codecs: list[str] | None, crop: bool,
                    max_frames: int, progress=None):
    """Rate–distortion of animators as codecs against x264/x265 on one clip
    (:func:`lab.evaluation.rate_distortion.rd_over_videos`).

    Returns:
        (RD figure, RD points rows, BD-rate rows, status markdown)
    """
    from lab.evaluation.rate_distortion import rd_over_videos
    from lab.reports import fig_rd, load_runs, rd_summary_table

    if not models:
        raise UserInputError("tick at least one model")
    if not codecs:
        raise UserInputError("tick at least one codec")
    job = Job(clip_path, progress=progress)
    frames, fps = read_driving(job, clip_path, crop, max_frames, limit="Max frames")
    if len(frames) < 2:
        raise UserInputError("rate-distortion needs a clip of at least 2 frames")
    loaded = {m: loaded_model(m) for m in models}  # loaded once per app process, errors reported before the encodes
    run_dir = output_dir() / f"rd-{uuid.uuid4().hex[:8]}"
    res = rd_over_videos(loaded, [(Path(clip_path).stem, frames)], out_dir=run_dir, codecs=codecs, fps=fps,
                         progress=job.progress or False)
    run = load_runs([run_dir])
    points = rd_summary_table(run)
    cols = [c for c in ("curve", "level", "kbps", "ref_kbps", "motion_kbps", "psnr", "ssim") if c in points]
    points = points[cols].round(3)
    bd = [[r["model"], r["codec"], r["anchor"], round3(r.get("bd_rate")), round3(r.get("bd_quality")), r["status"]]
          for r in res.bd if r["video"] == "mean"]
    weights = {m: la.weights for m, la in loaded.items()}
    status = (f"{len(frames)} frames at {fps:g} fps; kbps = bits / 1000 / (frames / fps); models: "
              + ", ".join(f"{m} ({w})" for m, w in weights.items()) + f". Run folder `{run_dir}`.")
    return fig_rd(run), points, bd, job.status(status)
