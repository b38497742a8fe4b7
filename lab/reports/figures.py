"""Report figures (plotly): per clip, distribution over frames, over time, rate–distortion, failure flags.

plotly is imported when a figure is made; infinite values (PSNR of an exact copy) are not drawn and the
title says how many were left out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lab.reports.runs import RunData
from lab.reports.tables import failure_counts, flag_columns, per_clip_table, rd_summary_table

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["fig_per_clip", "fig_distribution", "fig_temporal", "fig_rd", "fig_failures", "report_figures"]


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
    """The curve's name: ``curve`` (lab/evaluation/rate_distortion.py: ``model+codec``, or the anchor codec),
    else built."""
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
    if run.failures is not None and flag_columns(run.failures):
        figs["failures"] = fig_failures(run)
    return figs
