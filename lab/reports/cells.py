"""Cell texts of Table 2, per-clip and per-group tables: a number, or why there is none (issue 12).

The pooled tables (:func:`lab.reports.tables.table2_table` and friends) carry helper count columns beside each
metric (:data:`CELL_SUFFIXES`); :func:`metric_cell` folds them into one text, :func:`display_table` does so for
a whole table (the app's tables and the HTML report show the same cells).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from lab.core.format import fmt

__all__ = ["CELL_SUFFIXES", "cell_count", "metric_cell", "display_table"]

#: helper columns of the pooled tables: shown through metric_cell, not as columns of their own
CELL_SUFFIXES = ("_skipped", "_no_face_pred", "_no_face_gt", "_exact", "_finite")


def cell_count(row, key: str) -> int:
    """``row[key]`` as a count (0 when absent, NaN or not a number)."""
    v = row.get(key) if hasattr(row, "get") else None
    try:
        return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
    except (TypeError, ValueError):
        return 0


def _skip_reason(row, metric: str) -> str:
    """``no face in 96 of 96 predictions`` (or ground-truth frames, or frames when the split is unknown)."""
    n = cell_count(row, "frames")
    pred, gt = cell_count(row, f"{metric}_no_face_pred"), cell_count(row, f"{metric}_no_face_gt")
    of = f" of {n}" if n else ""
    parts = []
    if pred:
        parts.append(f"{pred}{of} predictions")
    if gt:
        parts.append(f"{gt}{of} ground-truth frames")
    if not parts:
        parts.append(f"{cell_count(row, f'{metric}_skipped')}{of} frames")
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
    skipped = cell_count(row, f"{metric}_skipped")
    if v is None or math.isnan(v):
        return f"skipped: {_skip_reason(row, metric)}" if skipped else "– (not measured)"
    if math.isinf(v):
        exact, n = cell_count(row, f"{metric}_exact"), cell_count(row, "frames")
        parts = [f"exact copy in {exact} of {n} frames" if exact and n else "an exact copy"]
        finite = row.get(f"{metric}_finite")
        rest = n - exact - skipped
        if finite is not None and not (isinstance(finite, float) and math.isnan(finite)) and rest > 0:
            parts.append(f"{fmt(float(finite), column=metric)} over the other {rest}")
        if skipped:
            parts.append(f"skipped: {_skip_reason(row, metric)}")
        return ("∞" if v > 0 else "-∞") + f" ({'; '.join(parts)})"
    text = fmt(v, column=metric)
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
        metrics = [c for c in t.columns if any(f"{c}{s}" in t.columns for s in CELL_SUFFIXES)
                   or c in ("l1", "akd", "aed", "psnr", "ssim", "lpips", "dists")]
    metrics = [m for m in metrics if m in t.columns]
    helpers = {f"{m}{s}" for m in metrics for s in CELL_SUFFIXES}
    cols = [c for c in t.columns if c not in helpers]
    out = pd.DataFrame(index=t.index)
    for c in cols:
        if c in metrics:
            out[c] = [metric_cell(r, c) for _, r in t.iterrows()]
        else:
            out[c] = [fmt(v, column=c) if not isinstance(v, str) else v for v in t[c]]
    return out.reset_index(drop=True)

