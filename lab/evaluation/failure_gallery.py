"""The gallery of a failure analysis (:mod:`lab.evaluation.failures`) and the files of a failures folder.

:func:`gallery_items` picks the worst frames per reason of a :class:`~lab.evaluation.failures.FailureReport` and
renders ``source | driving | prediction`` tiles; :func:`write_failures` is the one function of the failure
analysis that writes files (``failures.csv``, one PNG per gallery item, ``gallery.json``, ``summary.json``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lab.evaluation.failures import FLAGS, FailureReport, FailureThresholds, check_frames, nanmax

__all__ = ["GALLERY_REASONS", "GalleryItem", "gallery_items", "write_failures"]

GALLERY_REASONS = FLAGS + ("worst_l1",)
"""The reasons of a gallery, in order: the :data:`~lab.evaluation.failures.FLAGS`, then the worst L1."""


@dataclass
class GalleryItem:
    """One gallery entry: a frame picked for a reason, rendered as a tile.

    Attributes:
        image: ``(H, W * k, 3)`` uint8: source | driving | prediction (k = 2 without predictions), caption
            drawn on a strip at the bottom.
        caption: the text on the strip.
        reason: a :data:`GALLERY_REASONS` entry.
        frame: driving frame index.
        score: the value it was ranked by (higher is worse).
        video: the driving clip's name.
    """

    image: np.ndarray
    caption: str
    reason: str
    frame: int
    score: float
    video: str = ""


def _score(row: dict[str, Any], reason: str, t: FailureThresholds) -> float:
    """How bad a frame is for ``reason`` (higher is worse), to rank the gallery."""
    def nz(x: float) -> float:
        return -math.inf if math.isnan(x) else x

    if reason == "large_pose":
        return nz(nanmax([abs(row["yaw"]) / t.max_yaw, abs(row["pitch"]) / t.max_pitch,
                           abs(row["roll"]) / t.max_roll]))
    if reason == "weak_correlation":
        return nz(row["weak_score"])
    if reason == "worst_l1":
        return nz(row["l1"])
    if reason == "gate_rejected":
        return float(len(row["gate_reasons"].split())) + (0.0 if math.isnan(row["l1"]) else row["l1"])
    return 0.0 if math.isnan(row["l1"]) else row["l1"]  # no face: rank by L1 when there is one


def _tile(columns: Sequence[tuple[str, np.ndarray]], caption: str) -> np.ndarray:
    """``(H, W * k, 3)`` tile with column labels at the top and the caption on a strip at the bottom."""
    from PIL import Image, ImageDraw

    from lab.codec.composition import resize_rgb

    h, w = columns[1][1].shape[:2]  # the driving frame's size
    img = Image.fromarray(np.concatenate([resize_rgb(c, w, h, Image.BICUBIC) for _, c in columns], axis=1))
    draw = ImageDraw.Draw(img, "RGBA")
    bar = 14
    for j, (label, _) in enumerate(columns):
        draw.rectangle((j * w, 0, j * w + 7 * len(label) + 6, bar), fill=(0, 0, 0, 150))
        draw.text((j * w + 3, 1), label, fill=(255, 255, 255, 255))
    width = w * len(columns)
    max_chars = max(8, width // 6)
    lines = [caption[k : k + max_chars] for k in range(0, len(caption), max_chars)][:3]
    top = h - bar * len(lines)
    draw.rectangle((0, top, width, h), fill=(0, 0, 0, 170))
    for k, line in enumerate(lines):
        draw.text((3, top + 1 + k * bar), line, fill=(255, 235, 120, 255))
    return np.asarray(img)


def gallery_items(
    report: FailureReport,
    source: np.ndarray,
    driving: np.ndarray,
    predictions: np.ndarray | None = None,
    max_items: int = 24,
    per_reason: int = 6,
) -> list[GalleryItem]:
    """The worst frames of each reason as captioned ``source | driving | prediction`` tiles.

    Reasons are taken in :data:`GALLERY_REASONS` order (``worst_l1``: the highest per-frame L1, flagged or
    not, when the report has L1); within a reason frames are ranked worst first by the reason's score
    (``large_pose``: the largest angle over its threshold; ``weak_correlation``: ``weak_score``;
    ``gate_rejected``: number of gate reasons, then L1; ``no_face``: L1). A frame appears once per reason.

    Args:
        report: from :func:`analyse_failures` on the same frames.
        source: ``(H, W, 3)`` uint8.
        driving: ``(N, H, W, 3)`` uint8.
        predictions: ``(N, H', W', 3)`` uint8 or None (then tiles are source | driving).
        max_items: at most this many items in all.
        per_reason: at most this many items per reason.

    Returns:
        list of :class:`GalleryItem`, grouped by reason, worst first within each.
    """
    drv = check_frames("driving", driving, len(report))
    pred = None if predictions is None else check_frames("predictions", predictions, len(report))
    t = report.thresholds
    items: list[GalleryItem] = []
    has_l1 = any(not math.isnan(r["l1"]) for r in report.rows)
    for reason in GALLERY_REASONS:
        if reason == "worst_l1":
            if not has_l1:
                continue
            cand = [r for r in report.rows if not math.isnan(r["l1"])]
        else:
            cand = [r for r in report.rows if r[reason]]
        cand.sort(key=lambda r: (-_score(r, reason, t), r["frame"]))
        for r in cand[:per_reason]:
            if len(items) >= max_items:
                return items
            score = _score(r, reason, t)
            head = f"{report.video + ' ' if report.video else ''}#{r['frame']} {reason}"
            detail = r["reasons"] or "no flag"
            if not math.isnan(r["l1"]):
                detail += f"; L1 {r['l1']:.3f}"
            caption = f"{head}: {detail}"
            cols = [("source", np.asarray(source)), ("driving", drv[r["frame"]])]
            if pred is not None:
                cols.append(("prediction", pred[r["frame"]]))
            items.append(GalleryItem(_tile(cols, caption), caption, reason, int(r["frame"]),
                                     float(score) if math.isfinite(score) else float("nan"), report.video))
    return items


def write_failures(report: FailureReport, items: Sequence[GalleryItem], out_dir: str | os.PathLike) -> Path:
    """Write ``failures.csv`` (the report's rows), one PNG per gallery item, ``gallery.json`` and ``summary.json``.

    ``gallery.json`` is a list of ``{file, caption, reason, video, frame, score}`` (``file`` relative to
    ``out_dir``); ``summary.json`` holds the flag counts, thresholds, backend, fps and source index.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path` (created if needed).
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.to_frame().to_csv(out / "failures.csv", index=False)
    entries = []
    for k, it in enumerate(items):
        name = f"{k:03d}_{it.reason}_f{it.frame:06d}.png"
        Image.fromarray(np.ascontiguousarray(it.image)).save(out / name)
        score = None if math.isnan(it.score) else round(it.score, 6)
        entries.append({"file": name, "caption": it.caption, "reason": it.reason, "video": it.video,
                        "frame": it.frame, "score": score})
    (out / "gallery.json").write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    summary = {"video": report.video, "summary": report.summary, "thresholds": report.thresholds.as_dict(),
               "backend": report.backend, "fps": report.fps, "source_index": report.source_index,
               "source_pose": None if report.source_pose is None else report.source_pose.as_dict()}
    (out / "summary.json").write_text(json.dumps(_json_clean(summary), indent=2, ensure_ascii=False) + "\n")
    return out


def _json_clean(o: Any) -> Any:
    """NaN/inf to None, numpy scalars to Python (strict JSON)."""
    if isinstance(o, dict):
        return {k: _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
