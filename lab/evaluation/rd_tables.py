"""The tables and files of a rate–distortion run: per-video rows, their summary over videos, markdown, CSV.

:func:`lab.evaluation.rate_distortion.rd_over_videos` fills an :class:`RDResult` (its ``bd`` rows come from
:func:`lab.evaluation.bjontegaard.bd_table`, its ``provenance`` from :func:`rd_provenance`) and writes it with
:func:`write_rd_outputs`: ``rd.csv``, ``rd_summary.csv``, ``bd_rate.csv``, ``rd.md`` and ``provenance.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lab.codec.h26x import ENCODER_OPTIONS

if TYPE_CHECKING:
    from lab.core.animate import LoadedAnimator

__all__ = ["RDResult", "summarise_rd", "rd_markdown", "write_rd_outputs", "rd_provenance"]


@dataclass
class RDResult:
    """The rows of an RD run.

    Attributes:
        rows: one per video, curve and level (``rd.csv``).
        summary: one per curve and level, averaged over videos (``rd_summary.csv``).
        bd: one per model curve, anchor and video, plus a ``"mean"`` row per pair (``bd_rate.csv``).
        provenance: settings, weights, versions (``provenance.json``).
        out_dir: where the files were written (None: in memory only).
    """

    rows: list[dict]
    summary: list[dict]
    bd: list[dict]
    provenance: dict = field(default_factory=dict)
    out_dir: Path | None = None


def summarise_rd(rows: Sequence[dict], metrics: Sequence[str] = ("psnr", "ssim")) -> list[dict]:
    """Average per-video rows over videos for each curve and level (rates and quality alike).

    Args:
        rows: :func:`~lab.evaluation.rate_distortion.animation_rd`/:func:`~lab.evaluation.rate_distortion.anchor_rd`
            rows with a ``video`` key.
        metrics: quality columns to average.

    Returns:
        One dict per (curve, level), in first-seen order, with ``videos`` (count) and the means.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["curve"], r["level"]), []).append(r)
    out = []
    for rs in groups.values():
        first = rs[0]
        s = {k: first.get(k) for k in ("model", "kind", "weights", "codec", "curve", "level", "crf", "bit_rate")}
        s["videos"] = len(rs)
        for k in ("kbps", "ref_kbps", "motion_kbps", "kbps_packets", *metrics):
            vals = [float(r[k]) for r in rs if r.get(k) is not None]
            s[k] = float(np.mean(vals)) if vals else None
        out.append(s)
    return out


def rd_markdown(summary: Sequence[dict], bd: Sequence[dict], metrics: Sequence[str] = ("psnr", "ssim")) -> str:
    """Markdown tables: the RD points averaged over videos, and the mean BD deltas.

    Args:
        summary: :func:`summarise_rd` rows.
        bd: :func:`lab.evaluation.bjontegaard.bd_table` rows (only the ``"mean"`` rows are shown).
        metrics: quality columns of the first table.

    Returns:
        Markdown text (no number, or an infinite one, shows as ``–``).
    """
    from lab.core.format import MISSING, fmt, markdown_table

    def num(v, spec: str) -> str:
        return fmt(v, spec, inf=MISSING)

    points = markdown_table(
        ["curve", "weights", "level", "kbps", "ref kbps", "motion kbps", *(m.upper() for m in metrics), "videos"],
        ([s["curve"], s.get("weights") or "", s["level"], num(s["kbps"], ".2f"), num(s.get("ref_kbps"), ".2f"),
          num(s.get("motion_kbps"), ".2f"), *(num(s.get(m), ".2f" if m == "psnr" else ".4f") for m in metrics),
          s["videos"]] for s in summary))
    deltas = markdown_table(
        ["model", "codec", "anchor", "quality", "BD-rate (%)", "BD-quality", "videos", "status"],
        ([b["model"], b["codec"], b["anchor"], b["quality"], num(b["bd_rate"], "+.1f"), num(b["bd_quality"], "+.3f"),
          b["videos"], b["status"]] for b in bd if b["video"] == "mean"))
    return (f"## Rate–distortion (averaged per sequence, then over sequences)\n\n{points}\n\n"
            f"## Bjøntegaard deltas (mean of per-sequence values; negative BD-rate = fewer bits)\n\n{deltas}\n")


def write_rd_outputs(result: RDResult, out_dir: str | os.PathLike, metrics: Sequence[str] = ("psnr", "ssim")) -> Path:
    """Write ``rd.csv``, ``rd_summary.csv``, ``bd_rate.csv``, ``rd.md`` and ``provenance.json`` to ``out_dir``.

    Args:
        result: the rows to write.
        out_dir: folder (created).
        metrics: quality columns of ``rd.md``.

    Returns:
        The folder.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(result.rows).to_csv(out / "rd.csv", index=False)
    pd.DataFrame(result.summary).to_csv(out / "rd_summary.csv", index=False)
    pd.DataFrame(result.bd).to_csv(out / "bd_rate.csv", index=False)
    (out / "rd.md").write_text(rd_markdown(result.summary, result.bd, metrics))
    (out / "provenance.json").write_text(json.dumps(result.provenance, indent=2, default=str))
    result.out_dir = out
    return out


def rd_provenance(
    loaded: Mapping[str, LoadedAnimator],
    codecs: Sequence[str],
    ref_crfs: Mapping[str, Sequence[float]],
    anchor_crfs: Mapping[str, Sequence[float]],
    *,
    fps: float,
    quant_factor: float,
    eg_order: int,
    metrics: Sequence[str],
    preset: str | None,
    data_description: dict | None,
    seconds: Mapping[str, float],
) -> dict:
    """``provenance.json`` of an RD run: the protocol and rate accounting, settings, weights, time, versions.

    Args:
        loaded: ``name -> LoadedAnimator`` of the run.
        codecs: the conventional codecs run.
        ref_crfs: per codec, the reference CRFs used.
        anchor_crfs: per codec, the anchor CRFs used.
        fps: frame rate of the rates.
        quant_factor: motion quantisation factor.
        eg_order: exp-Golomb order of the motion codes.
        metrics: quality columns.
        preset: encoder preset (None: the encoder's default).
        data_description: what the videos were.
        seconds: wall time per curve (``codec`` or ``model+codec``), over all videos.
    """
    import av

    from metrics.provenance import facelab_version, package_versions

    return {
        "protocol": "JVET GFVC rate-distortion: frame 0 intra-coded and shown decoded; motion of frames 1..N-1 "
        "extracted from the original frames, closed-loop residual + exp-Golomb coded (predictor: motion of the "
        "decoded reference), rendered from the decoded reference with absolute motion; anchors: the codec alone; "
        "quality per frame in RGB, averaged per sequence then over sequences; BD deltas per sequence, then mean",
        "rate_accounting": "kbps = bits / 1000 / (frames / fps); H.264/H.265 bits = parameter sets + slice NAL "
        "units with 4 framing bytes each, SEI/AUD/filler excluded (kbps_packets: muxed packet bytes as "
        "EncodeStats counts them); motion bits = byte-aligned packets per frame; the motion session header "
        "(motion_header_bits) is sent once and not counted",
        "motion_codec": {"quant_factor": quant_factor, "exp_golomb_order": eg_order,
                         "key_order": "sorted keys, C order", "rounding": "round half to even"},
        "codecs": {c: {"options": ENCODER_OPTIONS[c], "preset": preset or "encoder default (medium)",
                       "ref_crfs": list(ref_crfs[c]), "anchor_crfs": list(anchor_crfs[c])} for c in codecs},
        "fps": fps,
        "metrics": list(metrics),
        "models": {m: {"weights": la.weights, "note": la.note,
                       "checkpoint_meta": getattr(la.model, "checkpoint_meta", {})} for m, la in loaded.items()},
        "data": dict(data_description or {}),
        "seconds": seconds,
        "facelab_version": facelab_version(),
        "packages": {**package_versions(("torch", "numpy", "scikit-image")), "av": av.__version__,
                     "ffmpeg_libraries": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}},
    }
