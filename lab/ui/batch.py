"""The app's Batch report tab: evaluation + failure flags + report on a folder of clips, and the cross-identity
pairs of the shared set."""

from __future__ import annotations

import uuid
from pathlib import Path

from lab.ui.common import Job, UserInputError, loaded_model, output_dir

__all__ = ["batch_intro", "default_batch_data", "batch", "cross_identity"]


def batch_intro() -> str:
    return (Path(__file__).with_name("batch.md")).read_text()


def default_batch_data() -> str:
    """The shared data folder when present, else ``demo`` (the embedded clip)."""
    from datasets.shared import shared_data_root

    root = shared_data_root()
    return str(root) if (root / "MANIFEST.csv").is_file() else "demo"


def batch(data: str, split: str, models: list[str] | None, max_videos: int, max_frames: int,
          metrics: list[str] | None, progress=None):
    """Evaluate + failure flags + report on a folder of clips (:func:`lab.reports.batch.run_batch`).

    Returns:
        (Table 2 rows, per-clip rows, per-clip L1 figure, gallery, report.html path, status markdown); the
        tables' metric cells are text (:func:`lab.reports.metric_cell`): a number, or why there is none
        (``skipped: no face in 6 of 6 predictions``), or ``∞ (exact copy in ...)``, as in the HTML report.
    """
    from datasets.errors import DataError
    from lab.reports import display_table, fig_per_clip, load_runs, per_clip_table, read_gallery, table2_table
    from lab.reports.batch import batch_videos, run_batch

    if not models:
        raise UserInputError("tick at least one model")
    if not metrics:
        raise UserInputError("tick at least one metric")
    data = (data or "").strip() or default_batch_data()
    animators = [loaded_model(m) for m in models]  # loaded once per app process
    job = Job(progress=progress)
    run_dir = output_dir() / f"batch-{uuid.uuid4().hex[:8]}"
    try:
        res = run_batch(animators, batch_videos(data, split, int(max_videos), int(max_frames)), run_dir,
                        metrics=metrics, png=False, progress=job.progress or False,
                        total_videos=1 if data == "demo" else None,
                        data_description={"data": data, "split": split, "max_videos": int(max_videos),
                                          "max_frames": int(max_frames)})
    except (DataError, FileNotFoundError) as e:
        raise job.error(e) from e
    run = load_runs([run_dir])
    t2 = display_table(table2_table(run), metrics)
    t2 = t2[[c for c in ("model", "weights", "videos", "frames", *metrics) if c in t2]]
    clips = display_table(per_clip_table(run), metrics)
    clips = clips[[c for c in ("model", "video", "frames", *metrics) if c in clips]]
    fig = fig_per_clip(run, metrics[0])
    gallery = []
    for d in res.failure_dirs:
        gallery += [(str(g.path), g.caption) for g in read_gallery(d / "gallery.json")]
    n = int(t2["videos"].max()) if len(t2) else 0
    status = f"{n} clip(s) from `{data}` ({split}); run folder `{run_dir}`."
    return t2, clips, fig, gallery, str(res.report.html), status


def cross_identity(data: str, split: str, models: list[str] | None, max_pairs: int, max_frames: int,
                   progress=None):
    """Cross-identity evaluation of the shared set's ``cross_identity`` pairs (:mod:`lab.evaluation.cross_identity`).

    Returns:
        (per-model and per-pair rows, report.html path, status markdown)
    """
    import itertools

    from lab.evaluation.cross_identity import evaluate_cross_identity, iter_cross_pairs
    from lab.reports import cross_identity_table, load_runs, write_report

    if not models:
        raise UserInputError("tick at least one model")
    data = (data or "").strip() or default_batch_data()
    if not (Path(data) / "pairs.csv").is_file():
        raise UserInputError(f"cross-identity needs the shared data set's pairs.csv; {data} has none")
    animators = [loaded_model(m) for m in models]  # loaded once per app process
    run_dir = output_dir() / f"cross-{uuid.uuid4().hex[:8]}"
    pairs = itertools.islice(iter_cross_pairs(data, split, max_frames=int(max_frames)), int(max_pairs))
    job = Job(progress=progress)
    if job.progress is not None:
        def counted(items):
            for k, (name, source, driving) in enumerate(items):
                job.progress(f"{name}: {', '.join(models)}", k, int(max_pairs), "pair")
                yield name, source, driving

        pairs = counted(pairs)
    try:
        evaluate_cross_identity(animators, pairs, out_dir=run_dir, progress=False)
    except ValueError as e:
        raise UserInputError(f"{e} (split '{split}' of {data})") from e
    rep = write_report([run_dir], run_dir / "report", title="facelab cross-identity report", png=False)
    table = cross_identity_table(load_runs([run_dir])).round(4)
    weights = ", ".join(f"{la.model.name} ({la.weights})" for la in animators)
    status = f"{table['pair'].nunique() - 1} pair(s) from `{data}` ({split}); models: {weights}."
    return table, str(rep.html), status
