"""``report.html``: the page is the Jinja2 template ``templates/report.html.j2`` (autoescaped), every table a pandas
``Styler`` (cell texts by :func:`lab.reports.cells.metric_cell` and :func:`lab.core.format.fmt`).

Templates load through :class:`jinja2.PackageLoader`, so they are found in the source tree and in an install.
The Styler renders with pandas' own table template extended by ``templates/styler_table.html.j2``, which only
gives each table a stable ``id`` (``table2``, ``paper-table2``, ...) instead of pandas' ``T_<uuid>``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape
from pandas.io.formats.style import Styler

from lab.core.format import fmt
from lab.reports.cells import cell_count, display_table, metric_cell
from lab.reports.paper import PAPER_CLAIM, PAPER_NOTE, paper_table2_rows
from lab.reports.runs import GalleryItem, RunData
from lab.reports.tables import BREAKDOWNS, claim_check

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["render_html", "styled_table", "text_table"]

GALLERY_MAX = 120  # images embedded in the HTML; the rest are counted
_RD_SHOWN = ("curve", "model", "codec", "weights", "level", "kbps", "ref_kbps", "motion_kbps", "psnr", "ssim", "lpips",
             "dists", "videos")
_BREAKDOWN_TITLES = {"pose_class": "By pose class", "split": "By split", "identity": "By identity"}
_OURS = "this run"


class _Styler(Styler):
    """pandas' Styler whose table carries its uuid as its id (``templates/styler_table.html.j2``)."""

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader("lab.reports", "templates"), Styler.loader]),
        trim_blocks=True,  # as pandas' own environment
    )
    template_html_table = env.get_template("styler_table.html.j2")


@cache
def _page_template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("lab.reports", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


# ------------------------------------------------------------------------------------------------- tables


def styled_table(cells: pd.DataFrame, table_id: str, caption: str = "", classes: pd.DataFrame | None = None) -> Markup:
    """A table of text cells (escaped) as HTML, with ``class="t"`` and the given id.

    Args:
        cells: the cell texts; its columns (one or two levels) are the header rows; the index is not shown.
        table_id: the table's ``id``.
        caption: the table's caption.
        classes: CSS classes per cell (same shape as ``cells``): ``s`` (text, left-aligned), ``ratio``, ``paper``.
    """
    st = _Styler(cells, uuid=table_id, cell_ids=False).hide(axis="index").format(escape="html")
    st = st.format_index(escape="html", axis="columns")
    if classes is not None:
        st = st.set_td_classes(classes)
    if caption:
        st = st.set_caption(str(escape(caption)))
    with pd.option_context("styler.render.max_elements", max(2**18, cells.size + 1)):  # never trimmed
        return Markup(st.to_html(table_attributes='class="t"'))


def text_table(df: pd.DataFrame, table_id: str, caption: str = "", numeric: Sequence[str] = ()) -> Markup:
    """``df`` with every value formatted by :func:`fmt`; text cells are left-aligned, except in the ``numeric``
    columns (text that stands for numbers: :func:`metric_cell`)."""
    df = df.reset_index(drop=True)
    cells = pd.DataFrame({c: [fmt(v, column=str(c)) for v in df[c]] for c in df.columns}, index=df.index)
    classes = pd.DataFrame({c: ["s" if isinstance(v, str) and c not in numeric else "" for v in df[c]]
                            for c in df.columns}, index=df.index)
    return styled_table(cells, table_id, caption, classes)


def _table2_html(t: pd.DataFrame, run: RunData) -> Markup:
    """Table 2: our cells (:func:`metric_cell`: every blank or infinite cell says why), then ratio and paper
    column groups (two header rows: group, then column)."""
    t = t.reset_index(drop=True)
    cells: dict[tuple[str, str], list[str]] = {(_OURS, "method"): [str(m) for m in t["model"]]}
    for m in run.metrics:
        cells[_OURS, m.upper()] = [metric_cell(x, m) for _, x in t.iterrows()]
    cells[_OURS, "frames"] = [fmt(x.get("frames"), column="frames") for _, x in t.iterrows()]
    cells[_OURS, "weights"] = [str(x.get("weights", "?")) for _, x in t.iterrows()]
    kinds = {(_OURS, "method"): "s", (_OURS, "weights"): "s"}
    for c in t.columns:
        if "_vs_" in c:
            key, kind = (f"÷ {c.split('_vs_', 1)[1]}", c.split("_vs_")[0].upper()), "ratio"
        elif c.startswith("paper_"):
            key, kind = (PAPER_NOTE, c.removeprefix("paper_").upper()), "paper"
        else:
            continue
        cells[key] = [fmt(v, column=c) for v in t[c]]
        kinds[key] = kind
    frame = pd.DataFrame(cells)
    frame.columns = pd.MultiIndex.from_tuples(cells)
    classes = pd.DataFrame({k: [kinds.get(k, "")] * len(frame) for k in cells})
    classes.columns = frame.columns
    return styled_table(frame, "table2", classes=classes)


def _paper_html() -> Markup:
    rows = pd.DataFrame(paper_table2_rows(), columns=["method", "L1", "AKD", "AED"])
    claim = ", ".join(f"{m.upper()} {int(v * 100)} %" for m, v in PAPER_CLAIM.items())
    classes = pd.DataFrame({c: ["s" if c == "method" else ""] * len(rows) for c in rows.columns})
    return styled_table(rows, "paper-table2", f"The paper's Table 2 ({PAPER_NOTE}); its claim: Ours within {claim} "
                        "of FOMM", classes)


def _backends_html(run: RunData) -> Markup | str:
    rows = []
    for path, prov in run.provenance.items():
        metrics = prov.get("metrics")
        metrics = metrics.get("metrics") if isinstance(metrics, dict) else None
        for m, info in (metrics if isinstance(metrics, dict) else {}).items():
            if isinstance(info, dict):
                rows.append({"run": Path(path).name, "metric": m, "backend / definition": info.get("label", "")})
    if not rows:
        return ""
    return text_table(pd.DataFrame(rows), "backends", caption="What each number is (from provenance.json)")


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


def _rd_tables(summary: pd.DataFrame | None, bd: pd.DataFrame | None) -> list[Markup]:
    out = []
    if summary is not None:
        cols = [c for c in _RD_SHOWN if c in summary.columns]
        if "curve" in cols:  # the curve names model and codec already
            cols = [c for c in cols if c not in ("model", "codec")]
        out.append(text_table(summary[cols], "rd-summary",
                              "mean over clips per curve and level (all columns in rd_summary.csv)"))
    if bd is not None:
        if "video" in bd.columns and (bd["video"] == "mean").any():
            out.append(text_table(bd[bd["video"] == "mean"], "bd-rate", "BD deltas against each anchor: mean of the "
                                  "per-clip values (per clip in bd_rate.csv); negative BD-rate = fewer bits"))
        else:
            out.append(text_table(bd, "bd-rate", "BD deltas against each anchor; negative BD-rate = fewer bits"))
    return out


# ---------------------------------------------------------------------------------------------- sections


def _gallery(items: list[GalleryItem]) -> list[dict]:
    """The first :data:`GALLERY_MAX` images as ``{src, alt, caption, path}`` (``src`` empty: file missing)."""
    out = []
    for it in items[:GALLERY_MAX]:
        cap = " · ".join(x for x in (it.caption, it.reason, it.video and f"{it.video}, frame {it.frame}",
                                     "" if it.score is None else f"score {it.score:.3g}") if x)
        src = ""
        if it.path.is_file():
            mime = "image/png" if it.path.suffix.lower() == ".png" else "image/jpeg"
            src = f"data:{mime};base64,{base64.b64encode(it.path.read_bytes()).decode()}"
        out.append({"src": src, "alt": it.caption or it.path.name, "caption": cap, "path": str(it.path)})
    return out


def _figure_divs(figs: dict[str, go.Figure], names: Sequence[str]) -> Markup:
    return Markup("".join(figs[n].to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{n}")
                          for n in names if n in figs))


def _eval_notes(run: RunData, t2: pd.DataFrame) -> list[str]:
    notes = ["Pooled over all frames of all clips (FOMM's and pose-evaluation's convention); a frame whose "
             "prediction has no detected face is skipped for AKD/AED and counted."]
    if any(np.isinf(pd.to_numeric(t2[m], errors="coerce")).any() for m in run.metrics):
        notes.append("∞: at least one frame equals its ground truth exactly (an exact copy: frame 0 is the source "
                     "in the reconstruction protocol, and static renders it unchanged), so the PSNR of that frame, "
                     "and every mean over it, is infinite; the cell gives the mean over the other frames, and the "
                     "plots leave those frames out.")
    if any(cell_count(r, f"{m}_skipped") for _, r in t2.iterrows() for m in run.metrics):
        notes.append("skipped: frames where the landmark/identity backend finds no face in the prediction (or "
                     "in the ground truth) do not count for AKD/AED; the cell says in how many of the frames (a "
                     "randomly initialised model's output usually has no face in any frame).")
    claim = claim_check(t2)
    return [*notes, claim] if claim else notes


def _evaluation(run: RunData, tables: dict[str, pd.DataFrame], figs: dict[str, go.Figure]) -> dict | None:
    """The template's ``evaluation`` sections (None without Table 2)."""
    if "table2" not in tables:
        return None
    t2, metrics = tables["table2"], run.metrics
    ev = {"table2": _table2_html(t2, run), "notes": _eval_notes(run, t2), "paper": _paper_html(),
          "backends": _backends_html(run), "per_clip": None, "breakdowns": [], "distribution": None,
          "temporal": None}
    if "per_clip" in tables:
        wide = _wide_per_clip(tables["per_clip"], metrics)
        ev["per_clip"] = {"table": text_table(wide, "per-clip", numeric=[c for c in wide.columns if c != "video"]),
                          "figures": _figure_divs(figs, [f"per_clip_{m}" for m in metrics])}
    for by in BREAKDOWNS:
        if f"by_{by}" in tables:
            ev["breakdowns"].append({"title": _BREAKDOWN_TITLES[by], "table": text_table(
                display_table(tables[f"by_{by}"], metrics), f"by-{by}", numeric=metrics)})
    if any(f"distribution_{m}" in figs for m in metrics):
        ev["distribution"] = _figure_divs(figs, [f"distribution_{m}" for m in metrics])
        ev["temporal"] = _figure_divs(figs, [f"temporal_{m}" for m in metrics])
    return ev


def render_html(run: RunData, title: str, tables: dict[str, pd.DataFrame], figs: dict[str, go.Figure],
                figure_note: str, png_note: str, curves_note: str = "") -> str:
    """The whole page (plotly.js inlined once when there are figures)."""
    from lab import __version__

    rd = None
    if "rd_summary" in tables or "bd_rate" in tables:
        rd = {"figures": _figure_divs(figs, [n for n in figs if n.startswith("rd_")]),
              "tables": _rd_tables(tables.get("rd_summary"), tables.get("bd_rate"))}
    failures = None
    if "failure_counts" in tables or run.gallery:
        failures = {"figures": _figure_divs(figs, ["failures"]), "gallery": _gallery(run.gallery),
                    "more": max(0, len(run.gallery) - GALLERY_MAX),
                    "table": text_table(tables["failure_counts"], "failure-counts", "flagged frames per clip")
                    if "failure_counts" in tables else ""}
    curves = None
    if "learning_curves_summary" in tables:
        curves = {"figure": _figure_divs(figs, ["learning_curves"]), "note": curves_note,
                  "table": text_table(tables["learning_curves_summary"], "learning-curves",
                                      "each training run's latest held-out point",
                                      numeric=[c for c in tables["learning_curves_summary"].columns if c != "model"])}
    plotlyjs = ""
    if figs:
        from plotly.offline import get_plotlyjs

        plotlyjs = Markup(get_plotlyjs())
    return _page_template().render(
        title=title, version=__version__, generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        run_paths=[str(p) for p in run.paths], figure_note=figure_note, png_note=png_note, plotlyjs=plotlyjs,
        evaluation=_evaluation(run, tables, figs), curves=curves, rd=rd, failures=failures,
        cross=text_table(tables["cross_identity"], "cross-identity") if "cross_identity" in tables else None,
        files=list(run.files.items()),
        provenance=[(p, json.dumps(v, indent=2, default=str)) for p, v in run.provenance.items()],
    ) + "\n"
