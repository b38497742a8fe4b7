"""Reconstruction evaluation (the protocol behind Table 2), resumable, with provenance.

FOMM's reconstruction protocol (``../shared/spec/protocol.md``): for every test video, source = frame 0,
every frame t is reconstructed from (source, driving = frame t) with **absolute** motion, and compared with
frame t itself, on decoded frames (never re-encoded). L1/AKD/AED are pooled over all frames of all videos
(FOMM's and pose-evaluation's convention); per-video means are reported too.

The run folder holds ``per_frame.csv`` (one row per model, video and frame: the resumable state — a
(model, video) already complete there is not recomputed; each row's ``weights_id`` says which weights made it:
``sha256:<16 hex>`` of the file, ``random-init seed 0`` or ``none needed``, and a rerun with other weights for
a model already there is refused rather than mixed), ``summary.csv``, ``per_video.csv``,
``table2.md`` (the paper's format) and ``provenance.json`` (metric backends and weight hashes, model
weights, data, facelab version). Videos are decoded one at a time; ground-truth landmarks/embeddings are
computed once per video and shared by all models (the dlib backend's cache).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lab.core.animate import LoadedAnimator

__all__ = ["reconstruct", "iter_eval_videos", "evaluate_reconstruction", "EvalResult", "table2_markdown",
           "done_counts", "append_rows", "check_resume_weights", "animator_names", "run_folder", "with_progress",
           "WEIGHTS_ID"]

PER_FRAME = "per_frame.csv"
WEIGHTS_ID = "weights_id"  # per-frame column: the identity of the weights that made the row
TABLE2_METRICS = ("l1", "akd", "aed")


def reconstruct(model, frames: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """FOMM's reconstruction: source = ``frames[0]``, absolute motion of every frame → ``(N, H, W, 3)`` uint8."""
    from lab.core.animate import animate_frames

    return animate_frames(model, frames[0], frames, relative=False, batch_size=batch_size)


def iter_eval_videos(data: str | os.PathLike, split: str = "test", size: int = 256,
                     max_frames: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, (N, size, size, 3) uint8)`` for each video of ``split``, decoded one at a time."""
    from datasets.frames import iter_videos

    for v in iter_videos(data, split=split, frame_shape=(size, size, 3), max_frames_per_video=max_frames):
        yield v.name, v.frames


@dataclass
class EvalResult:
    """Pooled and per-video numbers of an evaluation run."""

    summary: list[dict]  # one row per model: model, weights, frames, l1, akd, aed, ... , skipped counts
    per_video: list[dict]  # one row per model and video
    out_dir: Path | None = None
    provenance: dict = field(default_factory=dict)


def done_counts(csv: Path | None, key: str = "video") -> dict[tuple[str, str], int]:
    """``(model, <key>) -> rows`` already in a resumable per-frame CSV (empty when there is none)."""
    if csv is None or not csv.is_file():
        return {}
    import pandas as pd

    df = pd.read_csv(csv, usecols=["model", key])
    return {(str(m), str(v)): int(n) for (m, v), n in df.groupby(["model", key]).size().items()}


def check_resume_weights(csv: Path | None, loaded: dict) -> None:
    """Refuse to resume a run whose rows for a model were made with other weights than this run's.

    Args:
        csv: the run's resumable per-frame CSV (nothing to check when absent).
        loaded: model → :class:`lab.core.animate.LoadedAnimator` of this run.

    Raises:
        ValueError: a model already in ``csv`` with another ``weights_id`` (or with none: rows written before
            facelab recorded it), naming both and what to do.
    """
    if csv is None or not csv.is_file():
        return
    import pandas as pd

    df = pd.read_csv(csv, usecols=lambda c: c in ("model", WEIGHTS_ID), dtype=str)
    for m, la in loaded.items():
        rows = df[df.model == m]
        if rows.empty:
            continue
        now = la.weights_id
        before = sorted(set(rows[WEIGHTS_ID].fillna("unrecorded"))) if WEIGHTS_ID in rows else ["unrecorded"]
        if before != [now]:
            raise ValueError(
                f"cannot resume {csv.parent}: its {m} rows were made with weights {' and '.join(before)}, this "
                f"run's {m} weights are {now} ({la.weights}); rows of different weights are never mixed: write to "
                f"another --out, or delete {csv} to start over"
            )


def append_rows(csv: Path, df, model: str, name: str, key: str = "video", replace: bool = False) -> None:
    """Append one (model, item)'s per-frame rows to a resumable CSV; ``replace`` first drops a partial
    earlier attempt at the same (model, item)."""
    import pandas as pd

    if replace and csv.is_file():
        old = pd.read_csv(csv)
        old[~((old.model == model) & (old[key] == name))].to_csv(csv, index=False)
    df.to_csv(csv, mode="a", header=not csv.is_file(), index=False)


def animator_names(animators: Iterable[LoadedAnimator]) -> dict[str, LoadedAnimator]:
    """``name -> LoadedAnimator`` of the animators a job takes, in their order.

    Jobs take loaded animators (:class:`lab.core.animate.LoadedAnimator`, from
    :func:`lab.core.animate.load_animator`); names are resolved by their callers (the CLI, the app).

    Raises:
        TypeError: an item is not a loaded animator (e.g. a model name).
        ValueError: one model given twice (its rows could not be told apart).
    """
    from lab.core.animate import LoadedAnimator

    loaded = {}
    for la in animators:
        if not isinstance(la, LoadedAnimator):
            raise TypeError(f"expected loaded animators (lab.core.animate.load_animator), got {la!r}")
        name = la.model.name
        if name in loaded:
            raise ValueError(f"{name} is given twice: each model once (its rows are named by the model)")
        loaded[name] = la
    return loaded


def run_folder(out_dir: str | os.PathLike | None) -> Path | None:
    """The run folder as a :class:`~pathlib.Path`, created (None: the run stays in memory)."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def with_progress(items: Iterable, progress: bool, desc: str, unit: str) -> Iterable:
    """``items`` under a tqdm bar when ``progress``."""
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit)


def evaluate_reconstruction(
    animators: Sequence[LoadedAnimator],
    videos: Iterable[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike | None = None,
    metrics: Sequence[str] = TABLE2_METRICS,
    backend: str = "dlib",
    aed_backend: str = "dlib",
    batch_size: int = 8,
    data_description: dict | None = None,
    progress: bool = True,
    on_video: Callable[[str, str, np.ndarray, np.ndarray], None] | None = None,
) -> EvalResult:
    """Reconstruct every video with every animator and score it.

    Args:
        animators: the loaded animators (:func:`lab.core.animate.load_animator`), one per model; rows are
            named by the model's name and record its ``weights`` and ``weights_id`` (an animator without
            trained weights is evaluated as it is, labelled so).
        videos: ``(name, frames)`` pairs, frames ``(N, H, W, 3)`` uint8 at the models' input size.
        out_dir: run folder (resumable); None keeps everything in memory.
        metrics: names from :mod:`metrics` (Table 2: ``l1, akd, aed``).
        backend: landmark backend for AKD (``dlib`` offline, or ``face-alignment``: the protocol).
        aed_backend: identity backend for AED (``dlib`` offline, or ``openface``: the protocol).
        batch_size: frames per forward pass.
        data_description: recorded in the provenance.
        progress: a tqdm bar over videos.
        on_video: called as ``on_video(video, model, frames, predictions)`` after each (model, video) is
            rendered and scored (e.g. failure analysis on the same predictions); not called for pairs a
            resumed run skips.
    """
    import pandas as pd

    loaded = animator_names(animators)
    out = run_folder(out_dir)
    csv = out / PER_FRAME if out is not None else None
    done = done_counts(csv)
    check_resume_weights(csv, loaded)
    lm, idb = _metric_backends(backend, aed_backend)
    frames_rows: list[pd.DataFrame] = []
    prov: dict = {}
    seconds: dict[str, float] = dict.fromkeys(loaded, 0.0)
    for name, frames in with_progress(videos, progress, "evaluate", "video"):
        for m, la in loaded.items():
            if done.get((m, name)) == len(frames):
                continue
            t0 = time.perf_counter()
            preds = reconstruct(la.model, frames, batch_size=batch_size)
            seconds[m] += time.perf_counter() - t0
            df, prov = _score_video(la, name, frames, preds, metrics, lm, idb)
            if csv is not None:
                append_rows(csv, df, m, name, replace=bool(done.get((m, name))))
            else:
                frames_rows.append(df)
            if on_video is not None:
                on_video(name, m, frames, preds)
    all_rows = pd.read_csv(csv) if csv is not None else pd.concat(frames_rows, ignore_index=True)
    result = _summarise(all_rows, list(loaded), metrics, {m: la.weights for m, la in loaded.items()})
    result.provenance = _provenance(loaded, prov, data_description, seconds)
    if out is not None:
        _write_run(result, out, metrics)
    return result


def _metric_backends(backend: str, aed_backend: str):
    """The AKD landmark backend and the AED identity backend: one dlib backend for both when both are dlib,
    with a cache large enough that a video's ground truth is analysed once for all models."""
    from metrics.backends.dlib_backend import DlibBackend

    lm = DlibBackend(cache_size=8192) if backend == "dlib" else backend
    return lm, (lm if aed_backend == "dlib" and backend == "dlib" else aed_backend)


def _score_video(la: LoadedAnimator, name: str, frames: np.ndarray, preds: np.ndarray, metrics: Sequence[str],
                 lm, idb):
    """One (model, video)'s per-frame rows (``model``, the metrics, ``video``, ``weights_id``) and the metrics'
    provenance."""
    import pandas as pd

    from metrics import MetricCollection

    col = MetricCollection(metrics, backend=lm, aed_backend=idb)
    col.update(preds, frames, video=name)
    rep = col.report()
    df = pd.DataFrame(rep.frames)
    df.insert(0, "model", la.model.name)
    df["video"] = name
    df[WEIGHTS_ID] = la.weights_id
    return df, rep.provenance


def _provenance(loaded: dict[str, LoadedAnimator], metrics_prov: dict, data_description: dict | None,
                seconds: dict[str, float]) -> dict:
    return {
        "metrics": metrics_prov,
        "models": {m: {"weights": la.weights, "weights_id": la.weights_id, "note": la.note,
                       "checkpoint_meta": getattr(la.model, "checkpoint_meta", {})} for m, la in loaded.items()},
        "protocol": "reconstruction: source = frame 0, absolute motion, every frame vs itself; pooled over frames",
        "data": data_description or {},
        "render_seconds_this_run": seconds,
    }


def _write_run(result: EvalResult, out: Path, metrics: Sequence[str]) -> None:
    """``summary.csv``, ``per_video.csv``, ``table2.md`` and ``provenance.json`` of a run in ``out``."""
    import pandas as pd

    result.out_dir = out
    pd.DataFrame(result.summary).to_csv(out / "summary.csv", index=False)
    pd.DataFrame(result.per_video).to_csv(out / "per_video.csv", index=False)
    (out / "table2.md").write_text(table2_markdown(result.summary, metrics))
    (out / "provenance.json").write_text(json.dumps(result.provenance, indent=2, default=str))


def _summarise(df, models: Sequence[str], metrics: Sequence[str], weights: dict[str, str]) -> EvalResult:
    summary, per_video = [], []
    for m in models:
        d = df[df.model == m]
        row = {"model": m, "weights": weights[m], "videos": int(d.video.nunique()), "frames": len(d)}
        for k in metrics:
            vals = d[k].astype(float)
            row[k] = float(vals.mean()) if vals.notna().any() else None  # pooled over frames (NaN = skipped)
            if f"{k}_status" in d:
                row[f"{k}_skipped"] = int((d[f"{k}_status"] != "ok").sum())
        summary.append(row)
        for v, dv in d.groupby("video", sort=True):
            r = {"model": m, "video": v, "frames": len(dv)}
            r.update({k: float(dv[k].astype(float).mean()) for k in metrics})
            per_video.append(r)
    return EvalResult(summary=summary, per_video=per_video)


def table2_markdown(summary: Sequence[dict], metrics: Sequence[str] = TABLE2_METRICS) -> str:
    """The paper's Table 2 layout: ``| method | L1 | AKD | AED |`` with frames and skip counts."""
    head = "| method | " + " | ".join(k.upper() for k in metrics) + " | frames | weights |"
    lines = [head, "|" + "---|" * (len(metrics) + 3)]
    for r in summary:
        cells = []
        for k in metrics:
            v = r.get(k)
            txt = "–" if v is None else (f"{v:.4f}" if k in ("l1", "aed", "ssim", "lpips") else f"{v:.3f}")
            if r.get(f"{k}_skipped"):
                txt += f" ({r[f'{k}_skipped']} skipped)"
            cells.append(txt)
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {r['frames']} | {r['weights']} |")
    return "\n".join(lines) + "\n"
