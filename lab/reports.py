"""Batch metric reports: Table 2, per-clip and per-pose-class tables, plots, CSV and one HTML file.

Reads the run folders that facelab's batch jobs write and turns them into tables and plotly figures, for
the CLI (``facelab report``), the app and ``write_report``'s folder:

* **evaluation** (:func:`lab.evaluate.evaluate_reconstruction`): ``per_frame.csv`` (the source of truth:
  every number here is recomputed from it, pooled over frames as FOMM and pose-evaluation pool),
  ``summary.csv``, ``per_video.csv``, ``table2.md``, ``provenance.json``;
* **rate–distortion** (``lab/ratedistortion.py``): ``rd.csv`` (model, codec, level, video, kbps, quality),
  ``rd_summary.csv`` (the same averaged per level), ``bd_rate.csv``;
* **failures** (``lab/failures.py``): ``failures.csv`` (one row per frame, boolean flags such as
  ``large_pose``, scores, ``reasons``) and ``gallery.json`` (``[{file, caption, reason, video, frame,
  score}]``, ``file`` relative to the json).

Whichever of these exist are read; a folder holding none of them is an error naming the folder. Videos
are matched to the shared data set's ``MANIFEST.csv`` by :attr:`datasets.shared.SharedItem.name` (the name
:func:`lab.train.data.iter_videos` gives a shared-set clip) for the breakdowns by pose class, split and
identity. The paper's Table 2 (VoxCeleb, ``../shared/spec/paper.md``) is printed beside ours for
reference only: it was measured on another copy of another data set and is not comparable.

>>> run = load_run("runs/eval")                                          # doctest: +SKIP
>>> table2_table(run, reference_model="fomm")[["model", "l1", "l1_vs_fomm"]]   # doctest: +SKIP
>>> write_report(["runs/eval", "runs/rd"], "runs/report").html           # doctest: +SKIP
PosixPath('runs/report/report.html')
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "PAPER_TABLE2",
    "PAPER_NAMES",
    "PAPER_NOTE",
    "PAPER_CLAIM",
    "RUN_FILES",
    "FAILURE_FLAGS",
    "BREAKDOWNS",
    "RunData",
    "GalleryItem",
    "ReportFiles",
    "load_run",
    "load_runs",
    "read_gallery",
    "table2_table",
    "table2_text",
    "metric_cell",
    "display_table",
    "per_clip_table",
    "match_manifest",
    "breakdown_table",
    "rd_summary_table",
    "failure_counts",
    "cross_identity_table",
    "fig_per_clip",
    "fig_distribution",
    "fig_temporal",
    "fig_rd",
    "fig_failures",
    "claim_check",
    "report_tables",
    "report_figures",
    "write_report",
]

# The paper's Table 2 (../shared/spec/paper.md, "Table 2 — reconstruction quality on VoxCeleb"). Shown for
# reference only: another (incomplete) copy of VoxCeleb, the protocol's face-alignment/OpenFace backends.
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "X2Face": {"l1": 0.078, "akd": 7.69, "aed": 0.405},
    "Monkey-Net": {"l1": 0.049, "akd": 1.89, "aed": 0.199},
    "FOMM": {"l1": 0.041, "akd": 1.27, "aed": 0.134},
    "Ours": {"l1": 0.043, "akd": 1.37, "aed": 0.147},
}
PAPER_NAMES = {"x2face": "X2Face", "monkey_net": "Monkey-Net", "fomm": "FOMM", "ultralight": "Ours"}
PAPER_NOTE = "paper, VoxCeleb, not comparable"
# the paper's claim (paper.md): ours within ~5 % of FOMM on L1, ~8 % on AKD, ~10 % on AED (lower is better)
PAPER_CLAIM = {"l1": 0.05, "akd": 0.08, "aed": 0.10}

RUN_FILES = {
    "evaluation": ("per_frame.csv", "summary.csv", "per_video.csv", "table2.md", "provenance.json"),
    "rate-distortion": ("rd.csv", "rd_summary.csv", "bd_rate.csv"),
    "failures": ("failures.csv", "gallery.json", "summary.json"),
    "cross-identity": ("per_frame_cross.csv", "summary_cross.csv", "provenance_cross.json"),
}
FAILURE_FLAGS = ("large_pose", "weak_correlation", "no_face", "no_face_prediction", "gate_rejected", "failed")
BREAKDOWNS = ("pose_class", "split", "identity")
_KEYS = ("model", "video", "frame")
_POSE_ORDER = ("large", "moderate", "frontal", "n/a")
_UNMATCHED = "(not in manifest)"
_GALLERY_MAX = 120  # images embedded in the HTML; the rest are counted


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
        cross: ``per_frame_cross.csv`` of a cross-identity evaluation (:mod:`lab.evaluate_cross`).
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
        skip = {*_KEYS, "weights", "videos", "frames"}
        return [c for c in src.columns if c not in skip and not c.endswith(("_status", "_skipped"))
                and pd.api.types.is_numeric_dtype(src[c])]


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote.

    Attributes:
        out_dir: the report folder.
        html: ``report.html``.
        tables: table name → CSV path (``table2``, ``per_clip``, ``by_pose_class``, ...).
        pngs: figure name → PNG path.
        png_error: why PNGs are missing (None when they were written or not asked for).
    """

    out_dir: Path
    html: Path
    tables: dict[str, Path] = field(default_factory=dict)
    pngs: dict[str, Path] = field(default_factory=dict)
    png_error: str | None = None


# ------------------------------------------------------------------------------------------------ loading


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
    run.per_frame = _read_csv(p / "per_frame.csv", _KEYS)
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


# ------------------------------------------------------------------------------------------------- tables


def _require_eval(run: RunData) -> None:
    if not run.has_eval:
        raise ValueError(f"no evaluation (per_frame.csv or summary.csv) in {', '.join(map(str, run.paths))}")


def _pooled(df: pd.DataFrame, metrics: Sequence[str], by: list[str]) -> pd.DataFrame:
    """Means over frames (NaN = skipped frame), frames/videos counts and skip counts per group.

    Beside each metric: ``<m>_skipped`` (frames whose status is not ``ok``), split into ``<m>_no_face_pred``
    and ``<m>_no_face_gt`` (no face detected in the prediction / the ground truth); where a frame's value is
    infinite (PSNR of an exact copy), ``<m>_exact`` counts those frames and ``<m>_finite`` is the mean over
    the others. :func:`metric_cell` turns them into the cell text that says why a cell is blank or ∞.
    """
    rows = []
    for key, d in df.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update(videos=int(d["video"].nunique()), frames=len(d))
        for m in metrics:
            vals = pd.to_numeric(d[m], errors="coerce")
            row[m] = float(vals.mean()) if vals.notna().any() else math.nan
            if f"{m}_status" in d:
                status = d[f"{m}_status"].astype(str)
                row[f"{m}_skipped"] = int((status != "ok").sum())
                row[f"{m}_no_face_pred"] = int((status == "no_face_pred").sum())
                row[f"{m}_no_face_gt"] = int((status == "no_face_gt").sum())
            inf = np.isinf(vals)
            if inf.any():
                finite = vals[~inf]
                row[f"{m}_exact"] = int(inf.sum())
                row[f"{m}_finite"] = float(finite.mean()) if finite.notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


# helper columns of _pooled's tables: shown through metric_cell, not as columns of their own
_CELL_SUFFIXES = ("_skipped", "_no_face_pred", "_no_face_gt", "_exact", "_finite")


def _count(row, key: str) -> int:
    v = row.get(key) if hasattr(row, "get") else None
    try:
        return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
    except (TypeError, ValueError):
        return 0


def _skip_reason(row, metric: str) -> str:
    """``no face in 96 of 96 predictions`` (or ground-truth frames, or frames when the split is unknown)."""
    n = _count(row, "frames")
    pred, gt = _count(row, f"{metric}_no_face_pred"), _count(row, f"{metric}_no_face_gt")
    of = f" of {n}" if n else ""
    parts = []
    if pred:
        parts.append(f"{pred}{of} predictions")
    if gt:
        parts.append(f"{gt}{of} ground-truth frames")
    if not parts:
        parts.append(f"{_count(row, f'{metric}_skipped')}{of} frames")
    return "no face in " + " and ".join(parts)


def metric_cell(row, metric: str) -> str:
    """The text of one metric cell of Table 2 / per clip / per group, saying why when there is no number.

    * a number: formatted as ``table2.md`` formats it, with ``(skipped: no face in 3 of 96 predictions)``
      when some frames did not count;
    * no number because every frame was skipped: ``skipped: no face in 96 of 96 predictions``;
    * infinite (PSNR of a frame equal to its ground truth, e.g. the source frame of a reconstruction):
      ``∞ (exact copy in 1 of 6 frames; 31.2 over the other 5)``;
    * no number and no skip recorded: ``– (not measured)``.

    Args:
        row: a row (mapping or Series) of :func:`table2_table`, :func:`per_clip_table` or
            :func:`breakdown_table`.
        metric: the metric column.
    """
    v = row.get(metric)
    try:
        v = None if v is None else float(v)
    except (TypeError, ValueError):
        return str(v)
    skipped = _count(row, f"{metric}_skipped")
    if v is None or math.isnan(v):
        return f"skipped: {_skip_reason(row, metric)}" if skipped else "– (not measured)"
    if math.isinf(v):
        exact, n = _count(row, f"{metric}_exact"), _count(row, "frames")
        parts = [f"exact copy in {exact} of {n} frames" if exact and n else "an exact copy"]
        finite = row.get(f"{metric}_finite")
        rest = n - exact - skipped
        if finite is not None and not (isinstance(finite, float) and math.isnan(finite)) and rest > 0:
            parts.append(f"{_fmt(float(finite), metric)} over the other {rest}")
        if skipped:
            parts.append(f"skipped: {_skip_reason(row, metric)}")
        return ("∞" if v > 0 else "-∞") + f" ({'; '.join(parts)})"
    text = _fmt(v, metric)
    return f"{text} (skipped: {_skip_reason(row, metric)})" if skipped else text


def display_table(t: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """``t`` (:func:`table2_table`, :func:`per_clip_table`, :func:`breakdown_table`) as text for people: each
    metric cell by :func:`metric_cell` (so no cell is blank without a reason), the helper count columns
    folded into them, other numbers formatted as the HTML report does.

    Args:
        t: the table.
        metrics: the metric columns (default: every column with helper counts or a known metric name).
    """
    if metrics is None:
        metrics = [c for c in t.columns if any(f"{c}{s}" in t.columns for s in _CELL_SUFFIXES)
                   or c in ("l1", "akd", "aed", "psnr", "ssim", "lpips", "dists")]
    metrics = [m for m in metrics if m in t.columns]
    helpers = {f"{m}{s}" for m in metrics for s in _CELL_SUFFIXES}
    cols = [c for c in t.columns if c not in helpers]
    out = pd.DataFrame(index=t.index)
    for c in cols:
        if c in metrics:
            out[c] = [metric_cell(r, c) for _, r in t.iterrows()]
        else:
            out[c] = [_fmt(v, c) if not isinstance(v, str) else v for v in t[c]]
    return out.reset_index(drop=True)


def _ratio(a: pd.Series, b: float) -> pd.Series:
    if b is None or not np.isfinite(b) or b == 0:
        return pd.Series(math.nan, index=a.index)
    return a / b


def _default_reference(run: RunData, reference_model: str | None) -> str | None:
    models = run.models
    if reference_model is None:
        return "fomm" if "fomm" in models else None
    if models and reference_model not in models:
        raise ValueError(f"reference model {reference_model!r} is not in the run (models: {', '.join(models)})")
    return reference_model


def table2_table(run: RunData, reference_model: str | None = None) -> pd.DataFrame:
    """Table 2 pooled over all frames of all videos, one row per model.

    Columns: ``model, weights, videos, frames``, each metric (pooled mean, skipped frames excluded) and
    ``<metric>_skipped`` where the metric reports skips, ``<metric>_vs_<reference>`` and
    ``<metric>_vs_static`` (value ÷ that model's value; the paper states its claim as ultralight within
    5 / 8 / 10 % of FOMM, and ``static`` is the no-motion floor), and ``paper_<metric>`` (the paper's
    VoxCeleb numbers for the models it reports: :data:`PAPER_NOTE`).

    Args:
        run: loaded run(s).
        reference_model: the ratios' reference; None → ``fomm`` when the run has it.

    Raises:
        ValueError: no evaluation in the run, or ``reference_model`` not among its models.
    """
    _require_eval(run)
    metrics = run.metrics
    if run.per_frame is not None:
        t = _pooled(run.per_frame, metrics, ["model"])
    else:
        t = run.summary.drop(columns=["weights"], errors="ignore").copy()
    t.insert(1, "weights", [run.weights.get(m, "?") for m in t["model"]])
    ref = _default_reference(run, reference_model)
    for base in dict.fromkeys(b for b in (ref, "static") if b is not None and b in set(t["model"])):
        brow = t[t["model"] == base].iloc[0]
        for m in metrics:
            t[f"{m}_vs_{base}"] = _ratio(t[m], brow[m])
    for m in ("l1", "akd", "aed"):
        if m in metrics:
            t[f"paper_{m}"] = [PAPER_TABLE2.get(PAPER_NAMES.get(x, ""), {}).get(m, math.nan) for x in t["model"]]
    return t


def table2_text(run: RunData) -> str:
    """Table 2 as :func:`lab.evaluate.table2_markdown` writes it (frames, skipped counts, weights label)."""
    from lab.evaluate import table2_markdown

    t = table2_table(run)
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in t.to_dict("records")]
    return table2_markdown(rows, run.metrics)


def per_clip_table(run: RunData) -> pd.DataFrame:
    """One row per model and clip: frames, metric means over the clip's frames, skipped counts."""
    _require_eval(run)
    if run.per_frame is None:
        if run.per_video is None:
            raise ValueError(f"no per-clip numbers (per_frame.csv or per_video.csv) in {run.paths[0]}")
        return run.per_video.copy()
    t = _pooled(run.per_frame, run.metrics, ["model", "video"]).drop(columns="videos")
    order = {m: i for i, m in enumerate(run.models)}
    return t.sort_values(["model", "video"], key=lambda s: s.map(order) if s.name == "model" else s,
                         ignore_index=True)


def match_manifest(videos: Sequence[str], data_root: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Manifest columns of the videos that are shared-set clips (None: no manifest, or no video in it).

    A run's video name is :attr:`datasets.shared.SharedItem.name` (``FuxiVirtualHuman+styletalk/nice_clip1``),
    the name :func:`lab.train.data.iter_videos` yields for the shared set; a manifest ``file`` also matches.

    Returns:
        One row per given video: ``video, file, pose_class, split, identity`` (``identity`` is the
        manifest's ``identity_group``, or the video itself where that is empty: a person seen once);
        unmatched videos get :data:`_UNMATCHED` in every column.
    """
    from datasets.errors import DataError
    from datasets.shared import SharedData

    try:
        sd = SharedData(data_root)
    except DataError:
        return None
    by_name = {it.name: it for it in sd.clips()} | {it.file: it for it in sd.clips()}
    rows = []
    for v in dict.fromkeys(videos):
        it = by_name.get(v)
        if it is None:
            rows.append({"video": v, "file": _UNMATCHED, "pose_class": _UNMATCHED, "split": _UNMATCHED,
                         "identity": _UNMATCHED})
        else:
            rows.append({"video": v, "file": it.file, "pose_class": it.pose_class, "split": it.split or "(none)",
                         "identity": it.identity_group or v})
    df = pd.DataFrame(rows)
    return None if (df["file"] == _UNMATCHED).all() else df


def breakdown_table(run: RunData, by: str, manifest: pd.DataFrame | None = None,
                    data_root: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Metrics pooled over the frames of each group of clips (``by``: pose_class, split or identity).

    Args:
        run: loaded run(s) with ``per_frame``.
        by: one of :data:`BREAKDOWNS`.
        manifest: :func:`match_manifest`'s table (computed from ``data_root`` when None).
        data_root: the shared data folder (default ``$FACELAB_DATA``).

    Returns:
        ``model, <by>, videos, frames, <metrics>, <metric>_skipped``; None when no clip is in the manifest.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {BREAKDOWNS}, got {by!r}")
    _require_eval(run)
    if run.per_frame is None:
        return None
    if manifest is None:
        manifest = match_manifest(run.per_frame["video"].unique().tolist(), data_root)
    if manifest is None:
        return None
    df = run.per_frame.merge(manifest[["video", by]], on="video", how="left")
    df[by] = df[by].fillna(_UNMATCHED)
    t = _pooled(df, run.metrics, ["model", by])
    order = {m: i for i, m in enumerate(run.models)}
    rank = {c: i for i, c in enumerate(_POSE_ORDER)} if by == "pose_class" else {}
    return t.sort_values(
        ["model", by],
        key=lambda s: s.map(order) if s.name == "model" else s.map(lambda x: f"{rank.get(x, len(rank)):02d}{x}"),
        ignore_index=True,
    )


def rd_summary_table(run: RunData) -> pd.DataFrame | None:
    """Rate–distortion points averaged over videos per curve (model + codec) and level.

    ``rd_summary.csv`` when present, else computed from ``rd.csv`` (mean over videos of every numeric column).
    """
    if run.rd_summary is not None:
        return run.rd_summary
    if run.rd is None:
        return None
    names = ("curve", "level") if "curve" in run.rd.columns else ("model", "codec", "level")
    keys = [c for c in names if c in run.rd.columns]
    num = [c for c in run.rd.columns if c not in keys and pd.api.types.is_numeric_dtype(run.rd[c])]
    t = run.rd.groupby(keys, sort=False, dropna=False)[num].mean().reset_index()
    if "video" in run.rd.columns:
        t.insert(len(keys), "videos", run.rd.groupby(keys, sort=False, dropna=False)["video"].nunique().values)
    return t


def _as_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(bool)
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def _flag_columns(df: pd.DataFrame) -> list[str]:
    extra = [c for c in df.columns if c not in (*FAILURE_FLAGS, *_KEYS) and pd.api.types.is_bool_dtype(df[c])]
    return [c for c in FAILURE_FLAGS if c in df.columns] + extra


def failure_counts(run: RunData) -> pd.DataFrame | None:
    """Flagged frames per clip and flag, with a last row ``all`` over every clip (None without failures)."""
    if run.failures is None:
        return None
    df = run.failures
    flags = _flag_columns(df)
    keys = ["model", "video"] if "model" in df.columns else ["video"]
    b = df[keys].copy()
    for f in flags:
        b[f] = _as_bool(df[f]).astype(int)
    g = b.groupby(keys, sort=False)
    t = g[flags].sum()
    t.insert(0, "frames", g.size())
    t = t.reset_index()
    total = {k: "all" for k in keys} | {"frames": len(df)} | {f: int(b[f].sum()) for f in flags}
    return pd.concat([t, pd.DataFrame([total])], ignore_index=True)


def claim_check(table2: pd.DataFrame, model: str = "ultralight", reference: str = "fomm") -> str:
    """The paper's claim against our numbers: ``model ÷ reference`` per metric beside the claimed bound.

    Args:
        table2: :func:`table2_table`'s output, taken against ``reference``.
        model: the proposed model's registry name.
        reference: the model the paper compares with.

    Returns:
        One sentence (empty when the table has no ``<metric>_vs_<reference>`` row for ``model``).
    """
    rows = table2[table2["model"] == model]
    parts = []
    for m, bound in PAPER_CLAIM.items():
        col = f"{m}_vs_{reference}"
        if rows.empty or col not in rows or not np.isfinite(rows[col].iloc[0]):
            continue
        r = float(rows[col].iloc[0])
        parts.append(f"{m.upper()} {r:.3f} (claim ≤ {1 + bound:.2f}: {'met' if r <= 1 + bound else 'not met'})")
    return f"The paper's claim, {model} ÷ {reference}: " + "; ".join(parts) + "." if parts else ""


def report_tables(run: RunData, reference_model: str | None = None,
                  data_root: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the report, by file stem: ``table2, per_clip, by_pose_class, by_split, by_identity,
    rd_summary, bd_rate, failure_counts`` (each only when its data are there)."""
    out: dict[str, pd.DataFrame] = {}
    if run.has_eval:
        out["table2"] = table2_table(run, reference_model)
        if run.per_frame is not None or run.per_video is not None:
            out["per_clip"] = per_clip_table(run)
        if run.per_frame is not None:
            manifest = match_manifest(run.per_frame["video"].unique().tolist(), data_root or _data_root_of(run))
            for by in BREAKDOWNS:
                t = breakdown_table(run, by, manifest=manifest)
                if t is not None:
                    out[f"by_{by}"] = t
    rd = rd_summary_table(run)
    if rd is not None:
        out["rd_summary"] = rd
    if run.bd_rate is not None:
        out["bd_rate"] = run.bd_rate
    fc = failure_counts(run)
    if fc is not None:
        out["failure_counts"] = fc
    if run.cross is not None:
        out["cross_identity"] = cross_identity_table(run)
    return out


def cross_identity_table(run: RunData) -> pd.DataFrame:
    """Cross-identity metrics pooled over frames with a face, per model (and per pair below each model)."""
    from lab.evaluate_cross import CROSS_METRICS

    d = run.cross
    metrics = [m for m in CROSS_METRICS if m in d]
    rows = []
    for m, dm in d.groupby("model", sort=False):
        rows.append({"model": m, "pair": "(all)", "frames": len(dm), **dm[metrics].mean().to_dict(),
                     "no_face": int((dm["status"] == "no_face_output").sum()) if "status" in dm else 0})
        for pair, dp in dm.groupby("pair", sort=True):
            rows.append({"model": m, "pair": pair, "frames": len(dp), **dp[metrics].mean().to_dict(),
                         "no_face": int((dp["status"] == "no_face_output").sum()) if "status" in dp else 0})
    return pd.DataFrame(rows)


def _data_root_of(run: RunData) -> str | None:
    """The data folder a run's provenance names, when it holds a MANIFEST.csv (else None: the default)."""
    for prov in run.provenance.values():
        d = (prov.get("data") or {}).get("data")
        if d and (Path(d) / "MANIFEST.csv").is_file():
            return d
    return None


# ------------------------------------------------------------------------------------------------ figures


def _finite(df: pd.DataFrame, col: str) -> tuple[pd.DataFrame, int]:
    """``df`` with infinite ``col`` values set to NaN (plotly cannot draw them), and how many there were."""
    vals = pd.to_numeric(df[col], errors="coerce")
    inf = np.isinf(vals)
    out = df.copy()
    out[col] = vals.where(~inf)
    return out, int(inf.sum())


def _note(n_inf: int) -> str:
    return f" ({n_inf} infinite values not drawn)" if n_inf else ""


def fig_per_clip(run: RunData, metric: str) -> go.Figure:
    """Grouped bars: ``metric`` per clip (x) and model (colour)."""
    import plotly.express as px

    t, n_inf = _finite(per_clip_table(run), metric)
    fig = px.bar(t, x="video", y=metric, color="model", barmode="group", category_orders={"model": run.models},
                 hover_data=["frames"], title=f"{metric.upper()} per clip{_note(n_inf)}")
    return fig.update_layout(height=420, xaxis_title="clip", yaxis_title=metric.upper())


def fig_distribution(run: RunData, metric: str) -> go.Figure:
    """Box plot of ``metric`` over all frames, one box per model (skipped frames are not drawn)."""
    import plotly.express as px

    if run.per_frame is None:
        raise ValueError("the per-frame distribution needs per_frame.csv")
    t, n_inf = _finite(run.per_frame, metric)
    fig = px.box(t, x="model", y=metric, color="model", points="outliers", category_orders={"model": run.models},
                 hover_data=["video", "frame"], title=f"{metric.upper()} over frames{_note(n_inf)}")
    return fig.update_layout(height=420, showlegend=False, yaxis_title=metric.upper())


def fig_temporal(run: RunData, metric: str, wrap: int = 3) -> go.Figure:
    """``metric`` against the frame index, one panel per clip, one line per model."""
    import plotly.express as px

    if run.per_frame is None:
        raise ValueError("the temporal plot needs per_frame.csv")
    t, n_inf = _finite(run.per_frame.sort_values(["model", "video", "frame"]), metric)
    n = t["video"].nunique()
    fig = px.line(t, x="frame", y=metric, color="model", facet_col="video", facet_col_wrap=wrap,
                  labels={metric: metric.upper()},
                  markers=len(t) <= 2000, category_orders={"model": run.models},
                  facet_row_spacing=min(0.08, 0.6 / n), title=f"{metric.upper()} over time{_note(n_inf)}")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return fig.update_layout(height=180 + 220 * math.ceil(n / wrap))


def _rd_label(df: pd.DataFrame) -> pd.Series:
    """The curve's name: ``curve`` (lab/ratedistortion.py: ``model+codec``, or the anchor codec), else built."""
    if "curve" in df.columns:
        return df["curve"].astype(str)
    if "codec" not in df.columns:
        return df["model"].astype(str)
    codec = df["codec"].fillna("").astype(str)
    model = df["model"].astype(str)
    return model.where((codec == "") | (codec == model), model + " · " + codec)


def fig_rd(run: RunData, metric: str = "psnr") -> go.Figure:
    """Rate–distortion curves: kbps (log axis) against ``metric``, one line per model/anchor codec."""
    import plotly.express as px

    t = rd_summary_table(run)
    if t is None or metric not in t.columns:
        raise ValueError(f"no rate–distortion points with {metric} in {', '.join(map(str, run.paths))}")
    t = t.assign(curve=_rd_label(t)).sort_values(["curve", "kbps"])
    fig = px.line(t, x="kbps", y=metric, color="curve", markers=True, log_x=True,
                  line_dash="kind" if "kind" in t.columns else None,
                  hover_data=[c for c in ("level", "videos") if c in t.columns],
                  title=f"Rate–distortion: {metric.upper()} against bitrate (mean over clips)")
    return fig.update_layout(height=440, xaxis_title="kbps", yaxis_title=metric.upper(), legend_title="")


def fig_failures(run: RunData) -> go.Figure:
    """Flagged frames per failure flag, stacked by clip."""
    import plotly.express as px

    t = failure_counts(run)
    if t is None:
        raise ValueError(f"no failures.csv in {', '.join(map(str, run.paths))}")
    keys = ["model", "video"] if "model" in t.columns else ["video"]
    flags = [c for c in t.columns if c not in (*keys, "frames")]
    long = t[t["video"] != "all"].melt(id_vars=keys, value_vars=flags, var_name="flag", value_name="frames flagged")
    total = int(t.loc[t["video"] == "all", "frames"].sum())
    fig = px.bar(long, x="flag", y="frames flagged", color="video", title=f"Failure flags ({total} frames)",
                 category_orders={"flag": flags})
    return fig.update_layout(height=420, xaxis_title="")


def report_figures(run: RunData) -> dict[str, go.Figure]:
    """Every figure of the report by file stem (``per_clip_l1``, ``distribution_l1``, ``temporal_l1``, ...,
    ``rd_psnr``, ``failures``), each only when its data are there."""
    figs: dict[str, go.Figure] = {}
    if run.has_eval:
        for m in run.metrics:
            if run.per_frame is not None or run.per_video is not None:
                figs[f"per_clip_{m}"] = fig_per_clip(run, m)
            if run.per_frame is not None:
                figs[f"distribution_{m}"] = fig_distribution(run, m)
                figs[f"temporal_{m}"] = fig_temporal(run, m)
    rd = rd_summary_table(run)
    if rd is not None:
        for m in ("psnr", "ssim", "lpips", "dists"):
            if m in rd.columns and rd[m].notna().any():
                figs[f"rd_{m}"] = fig_rd(run, m)
    if run.failures is not None and _flag_columns(run.failures):
        figs["failures"] = fig_failures(run)
    return figs


# --------------------------------------------------------------------------------------------------- HTML


def _fmt(v: object, col: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        name = col.removeprefix("paper_").split(" · ")[0]
        if "_vs_" in col or col.endswith("percent") or col.endswith("_db"):
            return f"{v:.3f}"
        if name in ("l1", "aed", "ssim", "lpips", "dists"):
            return f"{v:.4f}"
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def _td(text: str, text_cell: bool = False, cls: str = "") -> str:
    classes = " ".join(x for x in ("s" if text_cell else "", cls) if x)
    return f'<td class="{classes}">{html.escape(text)}</td>' if classes else f"<td>{html.escape(text)}</td>"


def _html_table(df: pd.DataFrame, caption: str = "", headers: dict[str, str] | None = None,
                numeric: Sequence[str] = ()) -> str:
    """A table; ``numeric`` columns hold text that is right-aligned like numbers (:func:`metric_cell`)."""
    headers = headers or {}
    head = "".join(f"<th>{html.escape(headers.get(c, c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(_td(_fmt(v, c), text_cell=isinstance(v, str) and c not in numeric)
                         for c, v in zip(df.columns, row)) + "</tr>"
        for row in df.itertuples(index=False)
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="t">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _table2_html(t: pd.DataFrame, run: RunData) -> str:
    """Table 2: our cells (:func:`metric_cell`: every blank or infinite cell says why), then ratio and paper
    column groups."""
    metrics = run.metrics
    head = ["method", *(m.upper() for m in metrics), "frames", "weights"]
    rows = [[str(x["model"]), *(metric_cell(x, m) for m in metrics), _fmt(x.get("frames"), "frames"),
             str(x.get("weights", "?"))] for _, x in t.iterrows()]
    groups: dict[str, list[str]] = {}  # group title -> columns
    for c in t.columns:
        if "_vs_" in c:
            groups.setdefault(f"÷ {c.split('_vs_', 1)[1]}", []).append(c)
        elif c.startswith("paper_"):
            groups.setdefault(PAPER_NOTE, []).append(c)
    top = "".join(f'<th rowspan="2">{html.escape(h)}</th>' for h in head)
    top += "".join(f'<th colspan="{len(cs)}">{html.escape(g)}</th>' for g, cs in groups.items())
    sub = "".join(f"<th>{html.escape(c.split('_vs_')[0].removeprefix('paper_').upper())}</th>"
                  for cs in groups.values() for c in cs)
    body = ""
    for r, (_, x) in zip(rows, t.iterrows()):
        body += "<tr>" + "".join(_td(v, text_cell=i in (0, len(r) - 1)) for i, v in enumerate(r))
        body += "".join(_td(_fmt(x[c], c), cls="paper" if c.startswith("paper_") else "ratio")
                        for cs in groups.values() for c in cs) + "</tr>"
    return f'<table class="t" id="table2"><thead><tr>{top}</tr><tr>{sub}</tr></thead><tbody>{body}</tbody></table>'


def _paper_html() -> str:
    ours, fomm = PAPER_TABLE2["Ours"], PAPER_TABLE2["FOMM"]
    rows = [[k, *(f"{v[m]:.4f}" if m != "akd" else f"{v[m]:.2f}" for m in ("l1", "akd", "aed"))]
            for k, v in PAPER_TABLE2.items()]
    rows.append(["Ours ÷ FOMM", *(f"{ours[m] / fomm[m]:.3f}" for m in ("l1", "akd", "aed"))])
    claim = ", ".join(f"{m.upper()} {int(v * 100)} %" for m, v in PAPER_CLAIM.items())
    body = "".join("<tr>" + _td(r[0], text_cell=True) + "".join(_td(c) for c in r[1:]) + "</tr>" for r in rows)
    return (f'<table class="t" id="paper-table2"><caption>The paper\'s Table 2 ({PAPER_NOTE}); its claim: Ours '
            f"within {claim} of FOMM</caption><thead><tr><th>method</th><th>L1</th><th>AKD</th><th>AED</th></tr>"
            f"</thead><tbody>{body}</tbody></table>")


def _backends_html(run: RunData) -> str:
    rows = []
    for path, prov in run.provenance.items():
        metrics = prov.get("metrics")
        metrics = metrics.get("metrics") if isinstance(metrics, dict) else None
        for m, info in (metrics if isinstance(metrics, dict) else {}).items():
            if isinstance(info, dict):
                rows.append({"run": Path(path).name, "metric": m, "backend / definition": info.get("label", "")})
    return _html_table(pd.DataFrame(rows), caption="What each number is (from provenance.json)") if rows else ""


def _wide_per_clip(t: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per clip, one ``metric · model`` column each, cells by :func:`metric_cell`."""
    metrics = [m for m in metrics if m in t.columns]
    cells = t[["model", "video"]].copy()
    for m in metrics:
        cells[m] = [metric_cell(r, m) for _, r in t.iterrows()]
    models, videos = list(dict.fromkeys(t["model"])), list(dict.fromkeys(t["video"]))
    w = cells.pivot(index="video", columns="model", values=metrics)
    w = w.reindex(index=videos, columns=pd.MultiIndex.from_product([metrics, models]))
    w.columns = [f"{m} · {model}" for m, model in w.columns]
    return w.fillna("– (not evaluated on this clip)").rename_axis("video").reset_index()


_RD_SHOWN = ("curve", "model", "codec", "weights", "level", "kbps", "ref_kbps", "motion_kbps", "psnr", "ssim", "lpips",
             "dists", "videos")


def _rd_html(summary: pd.DataFrame | None, bd: pd.DataFrame | None) -> str:
    out = ""
    if summary is not None:
        cols = [c for c in _RD_SHOWN if c in summary.columns]
        if "curve" in cols:  # the curve names model and codec already
            cols = [c for c in cols if c not in ("model", "codec")]
        out += _html_table(summary[cols], "mean over clips per curve and level (all columns in rd_summary.csv)")
    if bd is not None:
        if "video" in bd.columns and (bd["video"] == "mean").any():
            out += _html_table(bd[bd["video"] == "mean"], "BD deltas against each anchor: mean of the per-clip "
                               "values (per clip in bd_rate.csv); negative BD-rate = fewer bits")
        else:
            out += _html_table(bd, "BD deltas against each anchor; negative BD-rate = fewer bits")
    return out


def _gallery_html(items: list[GalleryItem]) -> str:
    figs = []
    for it in items[:_GALLERY_MAX]:
        cap = " · ".join(x for x in (it.caption, it.reason, it.video and f"{it.video}, frame {it.frame}",
                                     "" if it.score is None else f"score {it.score:.3g}") if x)
        if it.path.is_file():
            mime = "image/png" if it.path.suffix.lower() == ".png" else "image/jpeg"
            src = f"data:{mime};base64,{base64.b64encode(it.path.read_bytes()).decode()}"
            img = f'<img src="{src}" alt="{html.escape(it.caption or it.path.name)}">'
        else:
            img = f'<div class="missing">missing: {html.escape(str(it.path))}</div>'
        figs.append(f"<figure>{img}<figcaption>{html.escape(cap)}</figcaption></figure>")
    more = len(items) - _GALLERY_MAX
    tail = f"<p>{more} more images are listed in gallery.json and not shown here.</p>" if more > 0 else ""
    return f'<div class="gallery">{"".join(figs)}</div>{tail}'


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table.t{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
table.t th,table.t td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
table.t td.s{text-align:left}
table.t th{text-align:center}
table.t caption{text-align:left;font-style:italic;padding:.2em 0}
td.paper{color:#777;background:#f6f6f6}td.ratio{background:#f3f8ff}
.meta{color:#555}.note{color:#555;font-size:.9em}.warn{color:#a40}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1em}
.gallery figure{margin:0}.gallery img{width:100%}.gallery figcaption{font-size:.8em;color:#444}
details pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.8em}"""


def _section(title: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def _figure_divs(figs: dict[str, go.Figure], names: Sequence[str]) -> str:
    return "".join(figs[n].to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{n}")
                   for n in names if n in figs)


def _eval_sections(run: RunData, tables: dict[str, pd.DataFrame], figs: dict[str, go.Figure]) -> list[str]:
    t2, metrics = tables["table2"], run.metrics
    notes = ["Pooled over all frames of all clips (FOMM's and pose-evaluation's convention); a frame whose "
             "prediction has no detected face is skipped for AKD/AED and counted."]
    if any(np.isinf(pd.to_numeric(t2[m], errors="coerce")).any() for m in metrics):
        notes.append("∞: at least one frame equals its ground truth exactly (an exact copy: frame 0 is the source "
                     "in the reconstruction protocol, and static renders it unchanged), so the PSNR of that frame, "
                     "and every mean over it, is infinite; the cell gives the mean over the other frames, and the "
                     "plots leave those frames out.")
    if any(_count(r, f"{m}_skipped") for _, r in t2.iterrows() for m in metrics):
        notes.append("skipped: frames where the landmark/identity backend finds no face in the prediction (or "
                     "in the ground truth) do not count for AKD/AED; the cell says in how many of the frames (a "
                     "randomly initialised model's output usually has no face in any frame).")
    claim = claim_check(t2)
    if claim:
        notes.append(claim)
    out = [_section(
        "Table 2: reconstruction", _table2_html(t2, run),
        "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes), _paper_html(), _backends_html(run))]
    if "per_clip" in tables:
        wide = _wide_per_clip(tables["per_clip"], metrics)
        out.append(_section("Per clip", _html_table(wide, numeric=[c for c in wide.columns if c != "video"]),
                            _figure_divs(figs, [f"per_clip_{m}" for m in metrics])))
    for by, title in (("pose_class", "By pose class"), ("split", "By split"), ("identity", "By identity")):
        if f"by_{by}" in tables:
            out.append(_section(f"{title} (clips matched to the shared set's MANIFEST.csv)",
                                _html_table(display_table(tables[f"by_{by}"], metrics), numeric=metrics)))
    if any(f"distribution_{m}" in figs for m in metrics):
        out.append(_section("Distribution over frames", _figure_divs(figs, [f"distribution_{m}" for m in metrics])))
        out.append(_section("Over time", _figure_divs(figs, [f"temporal_{m}" for m in metrics])))
    return out


def _render_html(run: RunData, title: str, tables: dict[str, pd.DataFrame], figs: dict[str, go.Figure],
                 figure_note: str, png_note: str) -> str:
    from lab import __version__

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">generated {now} by facelab {__version__} from '
             + ", ".join(f"<code>{html.escape(str(p))}</code>" for p in run.paths) + "</p>"]
    if figure_note:
        parts.append(f'<p class="warn">{html.escape(figure_note)}</p>')
    if "table2" in tables:
        parts += _eval_sections(run, tables, figs)
    if "rd_summary" in tables or "bd_rate" in tables:
        parts.append(_section(
            "Rate–distortion", _figure_divs(figs, [n for n in figs if n.startswith("rd_")]),
            _rd_html(tables.get("rd_summary"), tables.get("bd_rate"))))
    if "cross_identity" in tables:
        parts.append(_section(
            "Cross-identity reenactment", _html_table(tables["cross_identity"]),
            '<p class="note">Relative motion (FOMM animate mode); pooled over frames whose output has a face. '
            "ID distance: squared L2 of 128-D identity embeddings (to the source: lower = identity kept; to the "
            "driver: higher = less leaked). Pose error: mean |yaw|, |pitch|, |roll| difference to the driving "
            "frame (degrees). Mouth error: |mouth aspect ratio| difference to the driving frame.</p>"))
    if "failure_counts" in tables or run.gallery:
        parts.append(_section(
            "Failure cases", _figure_divs(figs, ["failures"]),
            _html_table(tables["failure_counts"], "flagged frames per clip") if "failure_counts" in tables else "",
            _gallery_html(run.gallery) if run.gallery else ""))
    prov = "".join(f"<details><summary>provenance: {html.escape(p)}</summary><pre>"
                   f"{html.escape(json.dumps(v, indent=2, default=str))}</pre></details>"
                   for p, v in run.provenance.items())
    files = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(', '.join(f))}</li>"
                    for p, f in run.files.items())
    parts.append(_section("Provenance", f"<ul>{files}</ul>", prov, f'<p class="note">{html.escape(png_note)}</p>'))
    js = ""
    if figs:
        from plotly.offline import get_plotlyjs

        js = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style>{js}</head><body>{''.join(parts)}</body></html>\n")


# -------------------------------------------------------------------------------------------------- write


def _write_pngs(figs: dict[str, go.Figure], folder: Path) -> dict[str, Path]:
    """All figures as PNG in one kaleido (chromium) session; raises when any file is not a PNG."""
    import plotly.io as pio

    folder.mkdir(parents=True, exist_ok=True)
    paths = {n: folder / f"{n}.png" for n in figs}
    pio.write_images(list(figs.values()), list(paths.values()), format="png", width=1000)
    bad = [str(p) for p in paths.values() if not p.is_file() or p.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"]
    if bad:
        raise RuntimeError(f"kaleido wrote no valid PNG at {', '.join(bad)}")
    return paths


def write_report(
    runs: str | os.PathLike | Sequence[str | os.PathLike] | RunData,
    out_dir: str | os.PathLike,
    title: str = "facelab report",
    reference_model: str | None = None,
    png: bool = True,
    data_root: str | os.PathLike | None = None,
) -> ReportFiles:
    """Write the report folder: CSV tables, ``table2.md``, ``report.html`` and (optionally) PNG figures.

    The tables are written first; when the figures or their PNG export (kaleido, which drives chromium)
    fail, ``report.html`` is still written and says why they are missing.

    Args:
        runs: a run folder, several (see :func:`load_runs`), or loaded :class:`RunData`.
        out_dir: the report folder (created).
        title: the HTML page's title.
        reference_model: the ratios' reference model (None → ``fomm`` when present).
        png: also write ``figures/<name>.png``.
        data_root: the shared data folder for the pose-class / split / identity join (default: the data
            folder the run's provenance names when it holds a manifest, else ``$FACELAB_DATA``).

    Returns:
        The paths written.
    """
    if isinstance(runs, RunData):
        run = runs
    else:
        run = load_runs([runs] if isinstance(runs, (str, os.PathLike)) else list(runs))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = report_tables(run, reference_model, data_root)
    files = ReportFiles(out_dir=out, html=out / "report.html")
    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv", index=False)
        files.tables[name] = out / f"{name}.csv"
    if "table2" in tables:
        (out / "table2.md").write_text(table2_text(run))
    figure_note, figs = "", {}
    try:
        figs = report_figures(run)
    except Exception as e:  # noqa: BLE001 -- never lose the finished tables to a plotting failure
        figure_note = f"figures are missing: {type(e).__name__}: {e}"
    png_note = "PNG export turned off."
    if png and figs:
        try:
            files.pngs = _write_pngs(figs, out / "figures")
            png_note = f"{len(files.pngs)} figures written as PNG to {out / 'figures'} (kaleido, chromium)."
        except Exception as e:  # noqa: BLE001 -- kaleido/chromium failures are many and varied
            files.png_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            png_note = f"PNG figures are missing: {files.png_error}"
    files.html.write_text(_render_html(run, title, tables, figs, figure_note, png_note), encoding="utf-8")
    return files
