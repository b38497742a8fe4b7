"""Report tables from loaded runs: Table 2, per clip, per pose class / split / identity, RD, failures, cross-identity.

Every evaluation number is recomputed from ``per_frame.csv``, pooled over frames as FOMM and pose-evaluation
pool. Videos are matched to the shared data set's ``MANIFEST.csv`` by :attr:`datasets.shared.SharedItem.name`
(the name :func:`datasets.frames.iter_videos` gives a shared-set clip) for the breakdowns. The paper's Table 2
(:mod:`lab.reports.paper`) is printed beside ours for reference only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lab.reports.paper import PAPER_CLAIM, PAPER_NAMES, PAPER_TABLE2
from lab.reports.runs import FAILURE_FLAGS, KEYS, RunData

__all__ = [
    "BREAKDOWNS",
    "table2_table",
    "table2_text",
    "per_clip_table",
    "match_manifest",
    "breakdown_table",
    "rd_summary_table",
    "failure_counts",
    "flag_columns",
    "cross_identity_table",
    "claim_check",
    "report_tables",
]

BREAKDOWNS = ("pose_class", "split", "identity")
_POSE_ORDER = ("large", "moderate", "frontal", "n/a")
_UNMATCHED = "(not in manifest)"


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
    """Table 2 as :func:`lab.evaluation.reconstruction.table2_markdown` writes it (frames, skipped counts,
    weights label)."""
    from lab.evaluation.reconstruction import table2_markdown

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
    the name :func:`datasets.frames.iter_videos` yields for the shared set; a manifest ``file`` also matches.

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


def flag_columns(df: pd.DataFrame) -> list[str]:
    """The boolean flag columns of ``failures.csv``: :data:`FAILURE_FLAGS` first, then any other bool column."""
    extra = [c for c in df.columns if c not in (*FAILURE_FLAGS, *KEYS) and pd.api.types.is_bool_dtype(df[c])]
    return [c for c in FAILURE_FLAGS if c in df.columns] + extra


def failure_counts(run: RunData) -> pd.DataFrame | None:
    """Flagged frames per clip and flag, with a last row ``all`` over every clip (None without failures)."""
    if run.failures is None:
        return None
    df = run.failures
    flags = flag_columns(df)
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
    from lab.evaluation.cross_identity import CROSS_METRICS

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

