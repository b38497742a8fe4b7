"""The app's Animate tab: a source image animated by a driving clip with each chosen model, side by side."""

from __future__ import annotations

import uuid

from lab.core.animate import side_by_side
from lab.evaluation.compare import run_models
from lab.ui import common
from lab.ui.common import MAX_FRAMES_DEFAULT, Job, UserInputError, output_dir, read_inputs

__all__ = ["MODES", "animate"]

MODES = ("reconstruction (absolute motion)", "animation (relative motion)")


def animate(source_path: str | None, driving_path: str | None, models: list[str] | None, mode: str = MODES[0],
            crop: bool = True, max_frames: int = MAX_FRAMES_DEFAULT, progress=None):
    """Animate the source with the driving clip by each selected model.

    Returns:
        (path of the side-by-side mp4, metric rows ``[model, weights, L1, PSNR, SSIM, seconds]``, status markdown)
    """
    from datasets.video import write_video

    job = Job(source_path, driving_path, progress=progress)
    if not models:
        raise UserInputError("tick at least one model")
    source, driving, fps = read_inputs(job, source_path, driving_path, crop, max_frames)
    results = run_models(models, source, driving, relative=mode == MODES[1], loaded=common.LOADED,
                         progress=job.progress)
    grid = side_by_side([("driving", driving)] + [(r.model, r.frames) for r in results])
    out = output_dir() / f"animate-{uuid.uuid4().hex[:8]}.mp4"
    write_video(out, grid, fps=fps, crf=16)  # pads odd sizes to even itself
    rows = [[r.model, r.weights, round(r.metrics["l1"], 4), round(r.metrics["psnr"], 2), round(r.metrics["ssim"], 4),
             round(r.seconds, 2)] for r in results]
    status = f"{len(driving)} frames at {driving.shape[2]}x{driving.shape[1]}."
    for r in results:
        if r.weights.startswith("random"):
            note = common.LOADED[r.model].note
            status += f"\n\n**{r.model} is randomly initialised** (its output is not meaningful): {note}"
    return str(out), rows, job.status(status)
