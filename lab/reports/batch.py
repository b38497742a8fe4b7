"""Batch jobs: evaluate models on a folder of clips, flag the failure cases, and write the report — one call.

The app's *Batch* tab and ``facelab batch`` run the same :func:`run_batch`:

1. :func:`lab.evaluation.reconstruction.evaluate_reconstruction` on every clip (FOMM's reconstruction protocol;
resumable
   ``per_frame.csv`` in ``out_dir``);
2. on the same predictions of one model (``failures_model``, default the first),
:func:`lab.evaluation.failures.analyse_failures`
   per clip (source = frame 0, as the protocol) and its gallery, in ``out_dir/failures/<clip>/``;
3. :func:`lab.reports.write_report` over all of it into ``out_dir/report/`` (``report.html``, CSV tables, PNGs).

It takes loaded animators (:func:`lab.core.animate.load_animator`: the CLI and the app resolve the names).
Clips come from the shared data set (a split of ``splits.csv``), a VoxCeleb-layout root
(``<root>/<split>/<clip>``) or, with ``data="demo"``, the embedded demo clip.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lab.core.animate import LoadedAnimator

__all__ = ["BatchResult", "batch_videos", "run_batch", "safe_name"]


@dataclass
class BatchResult:
    """What :func:`run_batch` produced.

    Attributes:
        run_dir: the evaluation run folder.
        failure_dirs: one failures folder per clip analysed (this call).
        report: the :class:`lab.reports.ReportFiles` written.
        summary: Table 2 rows of the evaluation (one dict per model).
    """

    run_dir: Path
    report: object
    summary: list[dict]
    failure_dirs: list[Path] = field(default_factory=list)


def batch_videos(data: str | os.PathLike, split: str = "test", max_videos: int | None = None,
                 max_frames: int | None = None, size: int = 256) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, (N, size, size, 3) uint8)`` clips of a batch.

    Args:
        data: the shared data folder, a VoxCeleb-layout root, or ``"demo"`` (the embedded clip, 50 frames).
        split: which split of the data.
        max_videos: at most this many clips (in the data's order).
        max_frames: at most this many frames per clip.
        size: frame side the models take.
    """
    if str(data) == "demo":
        from PIL import Image

        from datasets.demo import demo_driving

        frames = demo_driving(max_frames or 50)
        if frames.shape[1] != size:
            frames = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.LANCZOS)) for f in frames])
        yield "astronaut-demo", frames
        return
    from lab.evaluation.reconstruction import iter_eval_videos

    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {root}")
    yield from itertools.islice(iter_eval_videos(root, split=split, size=size, max_frames=max_frames), max_videos)


def safe_name(name: str) -> str:
    """A clip name as one file-name component (``owner+repo/clip`` → ``owner+repo__clip``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "__", name).strip("_") or "clip"


def run_batch(
    animators: Sequence[LoadedAnimator],
    videos,
    out_dir: str | os.PathLike,
    metrics: Sequence[str] = ("l1", "akd", "aed"),
    failures_model: str | None = None,
    fps: float = 25.0,
    png: bool = True,
    title: str = "facelab batch report",
    data_description: dict | None = None,
    progress=True,
    total_videos: int | None = None,
) -> BatchResult:
    """Evaluate, flag failures and write the report (module docstring).

    Args:
        animators: the loaded animators (:func:`lab.core.animate.load_animator`), one per model.
        videos: ``(name, frames)`` pairs (:func:`batch_videos`).
        out_dir: the run folder (rerun to resume the evaluation).
        metrics: evaluation metrics (Table 2: ``l1, akd, aed``).
        failures_model: the name of the model whose predictions the failure analysis looks at (default: the
            first; ``""`` skips the failure analysis).
        fps: frame rate of the clips (for the frame gap of the weak-correlation flag).
        png: also export the report's figures as PNG.
        title: the report's title.
        data_description: recorded in the provenance.
        progress: True: tqdm bars; a :data:`lab.core.progress.ProgressFn`: called as each clip starts and as each
            model has scored it (``what`` = ``"<clip>: <model>"``, counted in clips), then for the failure
            analysis and the report; False/None: nothing.
        total_videos: how many clips ``videos`` holds, for the progress (None: unknown).
    """
    from lab.core.progress import report as report_progress
    from lab.evaluation.failure_gallery import gallery_items, write_failures
    from lab.evaluation.failures import analyse_failures
    from lab.evaluation.reconstruction import animator_names, evaluate_reconstruction
    from lab.reports import write_report

    loaded = animator_names(animators)
    models = list(loaded)
    if not models:
        raise ValueError("choose at least one model")
    out = Path(out_dir)
    who = models[0] if failures_model is None else failures_model
    if who and who not in models:
        raise ValueError(f"failures_model '{who}' is not one of the evaluated models {list(models)}")
    failure_dirs: list[Path] = []
    step = progress if callable(progress) else None
    started: list[str] = []

    def counted(items):
        for name, frames in items:
            started.append(name)
            report_progress(step, f"{name}: {models[0]}", len(started) - 1, total_videos, "clip")
            yield name, frames

    def on_video(video: str, model: str, frames: np.ndarray, preds: np.ndarray) -> None:
        k = list(models).index(model) if model in models else len(models) - 1
        if k + 1 < len(models):  # the next model starts on this clip
            report_progress(step, f"{video}: {models[k + 1]}", len(started) - 1, total_videos, "clip")
        if model != who:
            return
        report_progress(step, f"{video}: failure flags of {who}", len(started) - 1, total_videos, "clip")
        rep = analyse_failures(frames[0], frames, predictions=preds, ground_truth=frames, source_index=0,
                               fps=fps, video=video)
        items = gallery_items(rep, frames[0], frames, predictions=preds, max_items=12, per_reason=3)
        failure_dirs.append(write_failures(rep, items, out / "failures" / safe_name(video)))

    result = evaluate_reconstruction(list(loaded.values()), counted(videos) if step else videos, out_dir=out,
                                     metrics=metrics, data_description=data_description, progress=progress is True,
                                     on_video=on_video)
    report_progress(step, "report", len(started), total_videos or len(started), "clip")
    folders = [out] + sorted(p for p in (out / "failures").glob("*") if (p / "failures.csv").is_file())
    report = write_report(folders, out / "report", title=title, png=png)
    return BatchResult(run_dir=out, report=report, summary=result.summary, failure_dirs=failure_dirs)
