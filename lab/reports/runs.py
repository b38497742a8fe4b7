"""Run folders: read whichever files facelab's batch jobs wrote (:data:`RUN_FILES`) into one :class:`RunData`.

* **evaluation** (:func:`lab.evaluation.reconstruction.evaluate_reconstruction`): ``per_frame.csv`` (the source
of truth:
  every number of a report is recomputed from it), ``summary.csv``, ``per_video.csv``, ``table2.md``,
  ``provenance.json``;
* **rate–distortion** (:mod:`lab.evaluation.rate_distortion`): ``rd.csv``, ``rd_summary.csv``, ``bd_rate.csv``;
* **failures** (:mod:`lab.evaluation.failures`): ``failures.csv``, ``gallery.json`` (``[{file, caption, reason, video,
  frame, score}]``, ``file`` relative to the json), ``summary.json``;
* **cross-identity** (:mod:`lab.evaluation.cross_identity`): ``per_frame_cross.csv``, ``summary_cross.csv``,
  ``provenance_cross.json``.

A folder holding none of them is an error naming the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["RUN_FILES", "FAILURE_FLAGS", "GalleryItem", "RunData", "read_gallery", "load_run", "load_runs"]

RUN_FILES = {
    "evaluation": ("per_frame.csv", "summary.csv", "per_video.csv", "table2.md", "provenance.json"),
    "rate-distortion": ("rd.csv", "rd_summary.csv", "bd_rate.csv"),
    "failures": ("failures.csv", "gallery.json", "summary.json"),
    "cross-identity": ("per_frame_cross.csv", "summary_cross.csv", "provenance_cross.json"),
}
FAILURE_FLAGS = ("large_pose", "weak_correlation", "no_face", "no_face_prediction", "gate_rejected", "failed")
KEYS = ("model", "video", "frame")  # the key columns of per_frame.csv


@dataclass(frozen=True)
class GalleryItem:
    """One failure-gallery image (``gallery.json`` entry, ``path`` resolved against the json's folder)."""

    path: Path
    caption: str = ""
    reason: str = ""
    video: str = ""
    frame: int | None = None
    score: float | None = None


@dataclass
class RunData:
    """The tables of one or several run folders (None where a folder did not hold that file).

    Attributes:
        paths: the run folders read.
        per_frame: one row per model, video and frame (``per_frame.csv``; several evaluation runs are
            concatenated, see :func:`load_runs`).
        summary: ``summary.csv`` (used only when ``per_frame`` is absent).
        per_video: ``per_video.csv`` (used only when ``per_frame`` is absent).
        weights: model → weights label (``random init``, a file and hash, ...).
        provenance: run folder → its ``provenance.json`` (and a failures run's ``summary.json``, keyed by
            that file's path).
        rd, rd_summary, bd_rate: rate–distortion tables.
        failures: ``failures.csv``; gallery: ``gallery.json`` entries.
        cross: ``per_frame_cross.csv`` of a cross-identity evaluation (:mod:`lab.evaluation.cross_identity`).
        files: run folder → the run files found there.
    """

    paths: list[Path]
    per_frame: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    per_video: pd.DataFrame | None = None
    weights: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, dict] = field(default_factory=dict)
    rd: pd.DataFrame | None = None
    rd_summary: pd.DataFrame | None = None
    bd_rate: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    gallery: list[GalleryItem] = field(default_factory=list)
    cross: pd.DataFrame | None = None
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_eval(self) -> bool:
        """Whether reconstruction metrics are present (per-frame, or at least the summary)."""
        return self.per_frame is not None or self.summary is not None

    @property
    def models(self) -> list[str]:
        """Evaluated models, in evaluation order."""
        src = self.per_frame if self.per_frame is not None else self.summary
        return [] if src is None else list(dict.fromkeys(src["model"].astype(str)))

    @property
    def metrics(self) -> list[str]:
        """Metric columns of the evaluation, in the run's order (the order ``table2.md`` uses)."""
        src = self.per_frame if self.per_frame is not None else self.summary
        if src is None:
            return []
        skip = {*KEYS, "weights", "videos", "frames"}
        return [c for c in src.columns if c not in skip and not c.endswith(("_status", "_skipped"))
                and pd.api.types.is_numeric_dtype(src[c])]



def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}")
    if "video" in df.columns:
        df["video"] = df["video"].astype(str)
    if "model" in df.columns:
        df["model"] = df["model"].astype(str)
    return df


def read_gallery(path: str | os.PathLike) -> list[GalleryItem]:
    """The entries of a failures run's ``gallery.json`` (empty when absent), image paths resolved.

    Raises:
        ValueError: the file is not a list of ``{file, caption, ...}`` entries.
    """
    path = Path(path)
    if not path.is_file():
        return []
    entries = json.loads(path.read_text())
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "file" in e for e in entries):
        raise ValueError(f"{path} is not a list of {{file, caption, ...}} entries")
    items = []
    for e in entries:
        frame, score = e.get("frame"), e.get("score")
        items.append(GalleryItem(
            path=(path.parent / str(e["file"])).resolve(), caption=str(e.get("caption") or ""),
            reason=str(e.get("reason") or ""), video=str(e.get("video") or ""),
            frame=None if frame is None else int(frame), score=None if score is None else float(score),
        ))
    return items


def load_run(path: str | os.PathLike) -> RunData:
    """Read whichever run files (:data:`RUN_FILES`) a folder holds.

    Raises:
        FileNotFoundError: the folder does not exist or holds none of the run files.
        ValueError: a file lacks a column the report needs.
    """
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"run folder {p} does not exist")
    found = [f for group in RUN_FILES.values() for f in group if (p / f).is_file()]
    if not found:
        expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in RUN_FILES.items())
        raise FileNotFoundError(f"{p} holds none of the files a report reads ({expected})")
    run = RunData(paths=[p], files={str(p): found})
    run.per_frame = _read_csv(p / "per_frame.csv", KEYS)
    run.summary = _read_csv(p / "summary.csv", ("model",))
    run.per_video = _read_csv(p / "per_video.csv", ("model", "video"))
    if (p / "provenance.json").is_file():
        run.provenance[str(p)] = json.loads((p / "provenance.json").read_text())
    run.rd = _read_csv(p / "rd.csv", ("model", "kbps"))
    run.rd_summary = _read_csv(p / "rd_summary.csv", ("model", "kbps"))
    run.bd_rate = _read_csv(p / "bd_rate.csv", ("model",))
    run.failures = _read_csv(p / "failures.csv", ("video", "frame"))
    run.gallery = read_gallery(p / "gallery.json")
    run.cross = _read_csv(p / "per_frame_cross.csv", ("model", "pair", "frame"))
    if (p / "provenance_cross.json").is_file():
        run.provenance[str(p / "provenance_cross.json")] = json.loads((p / "provenance_cross.json").read_text())
    if (p / "summary.json").is_file():  # a failures run's thresholds, backend and counts
        run.provenance[str(p / "summary.json")] = json.loads((p / "summary.json").read_text())
    run.weights = _weights(run)
    return run


def _weights(run: RunData) -> dict[str, str]:
    """Weights label of each evaluated model (an RD run's provenance also lists models: not these)."""
    out: dict[str, str] = {}
    for prov in run.provenance.values():
        models = prov.get("models")
        if isinstance(models, dict):
            out.update({m: str(v.get("weights", "?")) for m, v in models.items() if isinstance(v, dict)})
    if run.summary is not None and "weights" in run.summary:
        out.update(dict(zip(run.summary["model"], run.summary["weights"].astype(str))))
    return {m: w for m, w in out.items() if m in run.models}


def _concat(frames: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    frames = [f for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else None


def load_runs(paths: Sequence[str | os.PathLike]) -> RunData:
    """Read several run folders into one :class:`RunData` (e.g. an evaluation, an RD and a failures run).

    Evaluation tables are concatenated. A model scored in two runs on disjoint videos pools (a split
    evaluation); a model that two runs score on the same video, or with different weights, is kept apart
    as ``model [run folder name]``.

    Raises:
        FileNotFoundError: no path given, or a folder holds none of the run files.
    """
    if not paths:
        raise FileNotFoundError("no run folder given")
    runs = [load_run(p) for p in paths]
    if len(runs) == 1:
        return runs[0]
    clash = _clashing_models(runs)
    for r in runs:
        ren = {m: f"{m} [{r.paths[0].name}]" for m in clash if m in r.models}
        if ren:
            for attr in ("per_frame", "summary", "per_video"):
                df = getattr(r, attr)
                if df is not None:
                    df["model"] = df["model"].replace(ren)
            r.weights = {ren.get(m, m): w for m, w in r.weights.items()}
    out = RunData(paths=[p for r in runs for p in r.paths])
    for attr in ("per_frame", "summary", "per_video", "rd", "rd_summary", "bd_rate", "failures", "cross"):
        setattr(out, attr, _concat([getattr(r, attr) for r in runs]))
    for r in runs:
        out.weights.update(r.weights)
        out.provenance.update(r.provenance)
        out.files.update(r.files)
        out.gallery += r.gallery
    return out


def _clashing_models(runs: list[RunData]) -> set[str]:
    seen: dict[str, tuple[set[str], str]] = {}
    clash = set()
    for r in runs:
        src = r.per_frame if r.per_frame is not None else r.per_video
        for m in r.models:
            videos = set(src.loc[src["model"] == m, "video"]) if src is not None else {"?"}
            w = r.weights.get(m, "?")
            if m in seen and (seen[m][0] & videos or seen[m][1] != w):
                clash.add(m)
            prev = seen.get(m, (set(), w))
            seen[m] = (prev[0] | videos, w)
    return clash

